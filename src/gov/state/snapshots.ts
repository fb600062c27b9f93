/**
 * Snapshots of the three truth files (pyproject.toml, uv.lock, plugins.json) with a
 * `meta.json` {id, created_at, reason, ref, files} (seed 003 §3.3). A snapshot is built in a
 * hidden temporary folder and renamed into place, so a crash never leaves half of one; each
 * file's sha256 is recorded and checked before a restore, so a damaged snapshot is refused
 * instead of "restoring" something else.
 *
 * @module
 */
import { join } from "node:path";
import { ConfigError, GovError, NotFoundError } from "../../errors.ts";
import { exists, syncDir, writeFileAtomic, writeJsonAtomic } from "../../fs/atomic.ts";
import { readJsonFile } from "../../fs/json.ts";
import { type GovPaths, snapshotDir } from "./paths.ts";
import { parsePyproject } from "./pyproject.ts";
import {
  type SnapshotIndex,
  type SnapshotMeta,
  validatePlugins,
  validateSnapshotIndex,
  validateSnapshotMeta,
} from "./schema.ts";
import { newId, nowIso, sha256 } from "./store.ts";
import { isValidName } from "../../workspace/names.ts";

/**
 * The truth files a snapshot holds, and where each lives in the environment.
 *
 * @example
 * ```ts
 * import { truthFiles } from "@/gov/state/snapshots.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * for (const f of truthFiles(paths)) console.log(f.name, f.path);
 * ```
 */
export function truthFiles(p: GovPaths): { name: string; path: string }[] {
  return [
    { name: "pyproject.toml", path: p.pyproject },
    { name: "uv.lock", path: p.lock },
    { name: "plugins.json", path: p.plugins },
  ];
}

/**
 * The snapshot index, oldest first; empty when there is none yet.
 *
 * @example
 * ```ts
 * import { readSnapshotIndex } from "@/gov/state/snapshots.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * const idx = await readSnapshotIndex(paths);
 * ```
 */
export async function readSnapshotIndex(p: GovPaths): Promise<SnapshotIndex> {
  return (await readJsonFile(p.snapshotsIndex, validateSnapshotIndex)) ??
    { version: 1, snapshots: [] };
}

async function readBytes(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/**
 * Snapshots the current truth files. Prunes the oldest beyond `retention`, never those in
 * `keep` (snapshots an operation in flight still needs).
 *
 * @example
 * ```ts
 * import { createSnapshot } from "@/gov/state/snapshots.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 * declare const txid: string;
 *
 * const snap = await createSnapshot(paths, "pre-promote", txid, { retention: 50 });
 * ```
 */
export async function createSnapshot(
  p: GovPaths,
  reason: string,
  ref: string | null,
  opts: { retention: number; keep?: string[]; id?: string },
): Promise<SnapshotMeta> {
  const id = opts.id ?? newId("snap");
  const dir = snapshotDir(p, id);
  const tmp = join(p.snapshotsDir, `.tmp-${id}`);
  await Deno.mkdir(tmp, { recursive: true });
  const files: Record<string, string> = {};
  for (const f of truthFiles(p)) {
    let data = await readBytes(f.path);
    if (data === undefined && f.name === "plugins.json") {
      data = new TextEncoder().encode(JSON.stringify({ version: 1, plugins: {} }, null, 2) + "\n");
    }
    if (data === undefined) {
      throw new GovError(`cannot snapshot: ${f.path} does not exist`, {
        hint: "initialise the environment with `gov init`",
      });
    }
    await writeFileAtomic(join(tmp, f.name), data);
    files[f.name] = sha256(data);
  }
  const meta: SnapshotMeta = { id, created_at: nowIso(), reason, ref, files };
  await writeJsonAtomic(join(tmp, "meta.json"), meta);
  await Deno.rename(tmp, dir);
  await syncDir(p.snapshotsDir);
  const idx = await readSnapshotIndex(p);
  idx.snapshots.push(meta);
  await writeJsonAtomic(p.snapshotsIndex, idx);
  await pruneSnapshots(p, opts.retention, [id, ...(opts.keep ?? [])]);
  return meta;
}

/**
 * Deletes the oldest snapshots so at most `retention` remain (those in `keep` always
 * stay). Folders go first, then the index: a crash in between leaves index entries without
 * folders, which {@linkcode reconcileSnapshots} drops.
 *
 * @example
 * ```ts
 * import { pruneSnapshots } from "@/gov/state/snapshots.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * const removed = await pruneSnapshots(paths, 50);
 * ```
 */
export async function pruneSnapshots(
  p: GovPaths,
  retention: number,
  keep: string[] = [],
): Promise<string[]> {
  const idx = await readSnapshotIndex(p);
  const excess = idx.snapshots.length - retention;
  if (excess <= 0) return [];
  const drop: string[] = [];
  for (const s of idx.snapshots) {
    if (drop.length >= excess) break;
    if (!keep.includes(s.id)) drop.push(s.id);
  }
  for (const id of drop) await Deno.remove(snapshotDir(p, id), { recursive: true }).catch(() => {});
  idx.snapshots = idx.snapshots.filter((s) => !drop.includes(s.id));
  await writeJsonAtomic(p.snapshotsIndex, idx);
  return drop;
}

/**
 * Whether snapshot `id` is in the index and its folder exists.
 *
 * @example
 * ```ts
 * import { restoreSnapshot, snapshotExists } from "@/gov/state/snapshots.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const id: string;
 * declare const paths: GovPaths;
 *
 * if (await snapshotExists(paths, id)) await restoreSnapshot(paths, id);
 * ```
 */
export async function snapshotExists(p: GovPaths, id: string): Promise<boolean> {
  const idx = await readSnapshotIndex(p);
  return idx.snapshots.some((s) => s.id === id) && (await exists(snapshotDir(p, id)));
}

/**
 * Deletes one snapshot (index entry first, then folder).
 *
 * @example
 * ```ts
 * import { deleteSnapshot } from "@/gov/state/snapshots.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const id: string;
 * declare const paths: GovPaths;
 *
 * await deleteSnapshot(paths, id);
 * ```
 */
export async function deleteSnapshot(p: GovPaths, id: string): Promise<void> {
  const idx = await readSnapshotIndex(p);
  idx.snapshots = idx.snapshots.filter((s) => s.id !== id);
  await writeJsonAtomic(p.snapshotsIndex, idx);
  await Deno.remove(snapshotDir(p, id), { recursive: true }).catch(() => {});
}

/**
 * A snapshot's meta.json, validated; {@linkcode NotFoundError} when it does not exist.
 *
 * @example
 * ```ts
 * import { readSnapshotMeta } from "@/gov/state/snapshots.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const id: string;
 * declare const paths: GovPaths;
 *
 * const meta = await readSnapshotMeta(paths, id);
 * ```
 */
export async function readSnapshotMeta(p: GovPaths, id: string): Promise<SnapshotMeta> {
  const dir = snapshotDir(p, id);
  const file = join(dir, "meta.json");
  const meta = await readJsonFile(file, (v, f) => validateSnapshotMeta(v, f));
  if (!meta) throw new NotFoundError("snapshot", id, "list them with `gov snapshot list`");
  if (meta.id !== id) throw new ConfigError(file, "id", `'${id}' (its folder name)`);
  return meta;
}

/** What a snapshot holds of one truth file: as recorded, gone, or changed since. */
export type SnapshotFileState = "ok" | "missing" | "edited";

/**
 * Each truth file of snapshot `id` against the sha256 its meta.json recorded, so a reader
 * (`gov snapshot inspect`) can say a snapshot is damaged before anyone tries to restore it.
 *
 * @example
 * ```ts
 * import { snapshotFileStates } from "@/gov/state/snapshots.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * import { type SnapshotMeta } from "@/gov/state/schema.ts";
 * declare const paths: GovPaths;
 * declare const meta: SnapshotMeta;
 *
 * const states = await snapshotFileStates(paths, meta); // { "uv.lock": "missing", ... }
 * ```
 */
export async function snapshotFileStates(
  p: GovPaths,
  meta: SnapshotMeta,
): Promise<Record<string, SnapshotFileState>> {
  const dir = snapshotDir(p, meta.id);
  const out: Record<string, SnapshotFileState> = {};
  for (const f of truthFiles(p)) {
    const data = await readBytes(join(dir, f.name));
    const want = meta.files?.[f.name];
    out[f.name] = data === undefined
      ? "missing"
      : want !== undefined && want !== sha256(data)
      ? "edited"
      : "ok";
  }
  return out;
}

/**
 * Reads and checks a snapshot's files (present, hashes as recorded, pyproject and
 * plugins.json valid) without changing anything.
 *
 * @example
 * ```ts
 * import { loadSnapshot } from "@/gov/state/snapshots.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const id: string;
 * declare const paths: GovPaths;
 *
 * const { meta, contents } = await loadSnapshot(paths, id);
 * ```
 */
export async function loadSnapshot(
  p: GovPaths,
  id: string,
): Promise<{ meta: SnapshotMeta; contents: Map<string, Uint8Array> }> {
  const meta = await readSnapshotMeta(p, id);
  const dir = snapshotDir(p, id);
  const contents = new Map<string, Uint8Array>();
  for (const f of truthFiles(p)) {
    const path = join(dir, f.name);
    const data = await readBytes(path);
    if (data === undefined) {
      throw new GovError(`snapshot ${id} is damaged: ${f.name} is missing`, {
        hint: "pick another snapshot with `gov snapshot list`",
      });
    }
    const want = meta.files?.[f.name];
    if (want !== undefined && want !== sha256(data)) {
      throw new GovError(
        `snapshot ${id} is damaged: ${f.name} does not match the sha256 in its meta.json`,
        { hint: "the file was edited after the snapshot was taken; pick another snapshot" },
      );
    }
    contents.set(f.name, data);
  }
  const text = new TextDecoder();
  parsePyproject(text.decode(contents.get("pyproject.toml")!), join(dir, "pyproject.toml"));
  try {
    validatePlugins(
      JSON.parse(text.decode(contents.get("plugins.json")!)),
      join(dir, "plugins.json"),
    );
  } catch (err) {
    if (err instanceof SyntaxError) {
      throw new ConfigError(join(dir, "plugins.json"), "", `is not valid JSON (${err.message})`);
    }
    throw err;
  }
  return { meta, contents };
}

/**
 * Writes a snapshot's truth files back into the environment (each atomically). Checks the
 * whole snapshot first, so a damaged one changes nothing.
 *
 * @example
 * ```ts
 * import { restoreSnapshot } from "@/gov/state/snapshots.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * await restoreSnapshot(paths, "snap-20260101-120000-000-ab12");
 * ```
 */
export async function restoreSnapshot(p: GovPaths, id: string): Promise<SnapshotMeta> {
  const { meta, contents } = await loadSnapshot(p, id);
  for (const f of truthFiles(p)) await writeFileAtomic(f.path, contents.get(f.name)!);
  return meta;
}

/**
 * Brings the index and the snapshot folders back in agreement after a crash: removes
 * half-built temporary folders, adds complete snapshots the index missed, drops entries
 * whose folder is gone. Returns what it changed.
 *
 * @example
 * ```ts
 * import { reconcileSnapshots } from "@/gov/state/snapshots.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * const notes = await reconcileSnapshots(paths);
 * ```
 */
export async function reconcileSnapshots(p: GovPaths): Promise<string[]> {
  const notes: string[] = [];
  if (!(await exists(p.snapshotsDir))) return notes;
  const idx = await readSnapshotIndex(p);
  const known = new Set(idx.snapshots.map((s) => s.id));
  const dirs = new Set<string>();
  let changed = false;
  for await (const e of Deno.readDir(p.snapshotsDir)) {
    if (!e.isDirectory) continue;
    if (e.name.startsWith(".tmp-")) {
      await Deno.remove(join(p.snapshotsDir, e.name), { recursive: true });
      notes.push(`removed half-written snapshot ${e.name.slice(5)}`);
      continue;
    }
    if (!isValidName(e.name)) continue;
    dirs.add(e.name);
    if (!known.has(e.name)) {
      try {
        const meta = await readSnapshotMeta(p, e.name);
        idx.snapshots.push(meta);
        changed = true;
        notes.push(`indexed snapshot ${e.name}`);
      } catch {
        // Not a gov snapshot folder; leave it alone.
      }
    }
  }
  const before = idx.snapshots.length;
  idx.snapshots = idx.snapshots.filter((s) => dirs.has(s.id));
  if (idx.snapshots.length !== before) {
    changed = true;
    notes.push(`dropped ${before - idx.snapshots.length} index entries without a folder`);
  }
  if (changed) {
    idx.snapshots.sort((a, b) =>
      a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0
    );
    await writeJsonAtomic(p.snapshotsIndex, idx);
  }
  return notes;
}
