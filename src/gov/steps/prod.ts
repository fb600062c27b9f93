/**
 * The production venv `.venv-prod`: synced in place from the truth files with
 * `uv sync --locked --all-groups` (exact, so packages no group declares any more are
 * removed). A candidate venv is never renamed into production: venvs are not relocatable.
 * It is created with `uv venv --seed`, so pip is there for ComfyUI-Manager; what Manager
 * installs with it is drift the next sync removes (changes go through transactions).
 *
 * After every successful sync gov records what it synced (`state/prod_sync.json`: hashes of
 * pyproject.toml and uv.lock, and a fingerprint of the installed distributions). When
 * nothing changed since, the venv is in sync and the next sync is skipped without running
 * uv; a package installed behind gov's back (pip inside ComfyUI-Manager) changes the
 * fingerprint and forces a sync.
 *
 * @module
 */
import { join } from "node:path";
import { exists, removeIfExists, writeJsonAtomic } from "../../fs/atomic.ts";
import { readJsonFile } from "../../fs/json.ts";
import type { GovContext } from "./context.ts";
import type { GovPaths } from "../state/paths.ts";
import { type SyncMarker, validateSyncMarker } from "../state/schema.ts";
import { fileSha256, nowIso, sha256 } from "../state/store.ts";

/**
 * The site-packages folder of a venv, or undefined when there is none.
 *
 * @example
 * ```ts
 * import { sitePackages } from "@/gov/steps/prod.ts";
 *
 * await sitePackages("/env/.venv-prod"); // "/env/.venv-prod/lib/python3.11/site-packages"
 * ```
 */
export async function sitePackages(venv: string): Promise<string | undefined> {
  try {
    for await (const e of Deno.readDir(join(venv, "lib"))) {
      if (e.isDirectory && e.name.startsWith("python")) {
        const sp = join(venv, "lib", e.name, "site-packages");
        if (await exists(sp)) return sp;
      }
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/**
 * Fingerprint of what is installed in a venv: sha256 of its sorted `*.dist-info` folder
 * names (name and version of every distribution). Python's own `__pycache__` writes do not
 * change it; any install, upgrade or removal does.
 *
 * @example
 * ```ts
 * import { installedFingerprint } from "@/gov/steps/prod.ts";
 *
 * await installedFingerprint("/env/.venv-prod");
 * ```
 */
export async function installedFingerprint(venv: string): Promise<string | null> {
  const sp = await sitePackages(venv);
  if (!sp) return null;
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(sp)) {
      if (e.name.endsWith(".dist-info") || e.name.endsWith(".egg-info")) names.push(e.name);
    }
  } catch {
    return null;
  }
  return sha256(names.sort().join("\n"));
}

/** Whether `.venv-prod` matches the truth files, and why not. */
export interface ProdState {
  inSync: boolean;
  reason: string;
  marker?: SyncMarker;
}

/**
 * Compares `.venv-prod` with the truth files using the sync marker (no uv run).
 *
 * @example
 * ```ts
 * import { prodState } from "@/gov/steps/prod.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * const s = await prodState(paths);
 * if (!s.inSync) console.log(s.reason);
 * ```
 */
export async function prodState(p: GovPaths): Promise<ProdState> {
  if (!(await exists(join(p.prodVenv, "bin", "python")))) {
    return { inSync: false, reason: ".venv-prod does not exist" };
  }
  const marker = await readJsonFile(p.syncMarker, validateSyncMarker);
  if (!marker) return { inSync: false, reason: "never synced by gov (or a sync was interrupted)" };
  const [py, lock] = await Promise.all([fileSha256(p.pyproject), fileSha256(p.lock)]);
  if (py !== marker.pyproject_sha256 || lock !== marker.lock_sha256) {
    return { inSync: false, reason: "truth files changed since the last sync", marker };
  }
  if ((await installedFingerprint(p.prodVenv)) !== marker.installed_sha256) {
    return { inSync: false, reason: "packages were installed or removed outside gov", marker };
  }
  return { inSync: true, reason: "in sync", marker };
}

/**
 * Syncs `.venv-prod` from the truth files unless it is already in sync (`force` syncs
 * anyway). Creates the venv when missing. The marker is removed before uv starts, so an
 * interrupted sync is never mistaken for a finished one.
 *
 * @example
 * ```ts
 * import { syncProd } from "@/gov/steps/prod.ts";
 * import { type GovContext } from "@/gov/steps/context.ts";
 * declare const ctx: GovContext;
 *
 * const did = await syncProd(ctx); // "synced" | "in-sync"
 * ```
 */
export async function syncProd(
  ctx: GovContext,
  opts: { force?: boolean } = {},
): Promise<"synced" | "in-sync"> {
  const p = ctx.paths;
  if (!opts.force && (await prodState(p)).inSync) return "in-sync";
  const uv = ctx.uv();
  await removeIfExists(p.syncMarker);
  if (!(await exists(join(p.prodVenv, "bin", "python")))) {
    // A folder without an interpreter is a venv whose creation was cut short; uv refuses to
    // create a venv over a non-empty folder, so it goes first.
    await Deno.remove(p.prodVenv, { recursive: true }).catch(() => {});
    await uv.venv(p.prodVenv, { cwd: p.dir, step: "uv venv .venv-prod", seed: true });
  }
  await uv.sync({ cwd: p.dir, projectEnvironment: p.prodVenv, step: "uv sync .venv-prod" });
  await writeSyncMarker(p);
  return "synced";
}

/**
 * Records that `.venv-prod` now matches the truth files.
 *
 * @example
 * ```ts
 * import { writeSyncMarker } from "@/gov/steps/prod.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * await writeSyncMarker(paths);
 * ```
 */
export async function writeSyncMarker(p: GovPaths): Promise<void> {
  const marker: SyncMarker = {
    pyproject_sha256: (await fileSha256(p.pyproject)) ?? "",
    lock_sha256: (await fileSha256(p.lock)) ?? "",
    installed_sha256: await installedFingerprint(p.prodVenv),
    synced_at: nowIso(),
  };
  await writeJsonAtomic(p.syncMarker, marker);
}
