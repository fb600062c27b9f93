/**
 * Reading and writing the environment's JSON state with validation on every read and
 * atomic writes, plus ids and hashes.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ConfigError, EXIT_USAGE, GovError, NotFoundError } from "../../errors.ts";
import { exists, writeFileAtomic, writeJsonAtomic } from "../../fs/atomic.ts";
import { readJsonFile } from "../../fs/json.ts";
import { validateName } from "../../workspace/names.ts";
import { conflictPath, type GovPaths, txPath } from "./paths.ts";
import {
  type ConflictReport,
  type PluginsFile,
  type Transaction,
  validateConflictReport,
  validatePlugins,
  validateTransaction,
} from "./schema.ts";
import { indexTx } from "./tx_index.ts";

/**
 * Current time as ISO 8601 (UTC, milliseconds).
 *
 * @example
 * ```ts
 * import { nowIso } from "@/gov/state/store.ts";
 *
 * nowIso(); // "2026-01-01T12:00:00.000Z"
 * ```
 */
export function nowIso(): string {
  return new Date().toISOString();
}

/**
 * A new sortable id: `<prefix>-YYYYMMDD-HHMMSS-mmm-<4 hex>`.
 *
 * @example
 * ```ts
 * import { newId } from "@/gov/state/store.ts";
 *
 * newId("tx"); // "tx-20260101-120000-123-ab12"
 * ```
 */
export function newId(prefix: string): string {
  const d = new Date();
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const stamp = `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}-${
      p(d.getUTCMilliseconds(), 3)
    }`;
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(2)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${prefix}-${stamp}-${rand}`;
}

/**
 * sha256 of a string or bytes, hex.
 *
 * @example
 * ```ts
 * import { sha256 } from "@/gov/state/store.ts";
 *
 * sha256("abc");
 * ```
 */
export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * sha256 of a file, or null when it does not exist.
 *
 * @example
 * ```ts
 * import { fileSha256 } from "@/gov/state/store.ts";
 *
 * await fileSha256("/env/uv.lock");
 * ```
 */
export async function fileSha256(path: string): Promise<string | null> {
  try {
    return sha256(await Deno.readFile(path));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/**
 * A truth file of an initialised environment is missing (plugins.json, pyproject.toml).
 * Read as empty or rebuilt from scratch, the next write would forget every registered node
 * (and their dependency groups could never be removed). Names the snapshot copy to restore.
 *
 * @example
 * ```ts
 * import { MissingTruthFileError } from "@/gov/state/store.ts";
 *
 * throw new MissingTruthFileError("/env/state/plugins.json");
 * ```
 */
export class MissingTruthFileError extends GovError {
  constructor(path: string, snapshotCopy?: string) {
    super(`${path} is missing, though the environment is initialised; gov changed nothing`, {
      hint: snapshotCopy
        ? `restore it from the newest snapshot: cp ${snapshotCopy} ${path}`
        : "restore it from a backup; gov will not rebuild it, as that would forget every registered node",
    });
    this.name = "MissingTruthFileError";
    // Like a corrupt state file (ConfigError): nothing changed, and only the user's restore
    // can help, so a retry loop (systemd, a script) must not spin on it.
    this.exitCode = EXIT_USAGE;
  }
}

/**
 * The copy of truth file `name` ("plugins.json", "pyproject.toml", "uv.lock") in the newest
 * snapshot holding one, or undefined.
 *
 * @example
 * ```ts
 * import { newestSnapshotCopy } from "@/gov/state/store.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * const copy = await newestSnapshotCopy(paths, "plugins.json");
 * ```
 */
export async function newestSnapshotCopy(p: GovPaths, name: string): Promise<string | undefined> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(p.snapshotsDir)) {
      if (e.isDirectory && e.name.startsWith("snap-")) names.push(e.name);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  // Ids sort by creation time.
  for (const n of names.sort().reverse()) {
    const f = join(p.snapshotsDir, n, name);
    if (await exists(f)) return f;
  }
  return undefined;
}

/**
 * The plugin registry; an empty one before `gov init` wrote it (no uv.lock yet). In an
 * initialised environment a missing registry is a {@linkcode MissingTruthFileError}.
 *
 * @example
 * ```ts
 * import { readPlugins } from "@/gov/state/store.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * const reg = await readPlugins(paths);
 * ```
 */
export async function readPlugins(p: GovPaths): Promise<PluginsFile> {
  const reg = await readJsonFile(p.plugins, validatePlugins);
  if (reg) return reg;
  if (await exists(p.lock)) {
    throw new MissingTruthFileError(p.plugins, await newestSnapshotCopy(p, "plugins.json"));
  }
  return { version: 1, plugins: {} };
}

/**
 * Writes the plugin registry atomically.
 *
 * @example
 * ```ts
 * import { writePlugins } from "@/gov/state/store.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * import { type PluginsFile } from "@/gov/state/schema.ts";
 * declare const paths: GovPaths;
 * declare const reg: PluginsFile;
 *
 * await writePlugins(paths, reg);
 * ```
 */
export async function writePlugins(p: GovPaths, reg: PluginsFile): Promise<void> {
  await writeJsonAtomic(p.plugins, reg);
}

/**
 * Reads a transaction; {@linkcode NotFoundError} when there is none with that id.
 *
 * @example
 * ```ts
 * import { readTx } from "@/gov/state/store.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * const tx = await readTx(paths, "tx-20260101-120000-123-ab12");
 * ```
 */
export async function readTx(p: GovPaths, txid: string): Promise<Transaction> {
  const tx = await readJsonFile(txPath(p, txid), validateTransaction);
  if (!tx) {
    throw new NotFoundError("transaction", txid, "list them with `gov tx list`");
  }
  if (tx.txid !== txid) {
    throw new ConfigError(txPath(p, txid), "txid", `'${txid}' (its file name)`);
  }
  return tx;
}

/**
 * Writes a transaction atomically, then records it in the transaction index (which a
 * reader rebuilds if gov dies between the two).
 *
 * @example
 * ```ts
 * import { writeTx } from "@/gov/state/store.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * import { type Transaction } from "@/gov/state/schema.ts";
 * declare const paths: GovPaths;
 * declare const tx: Transaction;
 *
 * await writeTx(paths, tx);
 * ```
 */
export async function writeTx(p: GovPaths, tx: Transaction): Promise<void> {
  await writeJsonAtomic(txPath(p, tx.txid), tx);
  // Test-only, as journal.ts's fault points: a kill between the file and its index entry.
  if (Deno.env.get("GOV_FAULT")?.split(",").some((s) => s.trim() === "tx:written")) {
    Deno.kill(Deno.pid, "SIGKILL");
  }
  // The transaction is written; an index that cannot follow (a full disk) is found behind
  // the file by the next read and rebuilt, so it must not fail the operation.
  await indexTx(p, tx).catch(() => {});
}

/**
 * Ids of every transaction, oldest first (ids sort by time).
 *
 * @example
 * ```ts
 * import { listTxIds } from "@/gov/state/store.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * const ids = await listTxIds(paths);
 * ```
 */
export async function listTxIds(p: GovPaths): Promise<string[]> {
  const ids: string[] = [];
  try {
    for await (const e of Deno.readDir(p.transactionsDir)) {
      if (e.isFile && e.name.endsWith(".json") && !e.name.startsWith(".")) {
        ids.push(e.name.slice(0, -".json".length));
      }
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  return ids.sort();
}

/**
 * Every transaction, oldest first, validated.
 *
 * @example
 * ```ts
 * import { listTxs } from "@/gov/state/store.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * for (const tx of await listTxs(paths)) console.log(tx.txid, tx.status);
 * ```
 */
export async function listTxs(p: GovPaths): Promise<Transaction[]> {
  const ids = await listTxIds(p);
  const out: Transaction[] = [];
  for (const id of ids) {
    validateName("transaction id", id);
    const tx = await readJsonFile(txPath(p, id), validateTransaction);
    if (tx) out.push(tx);
  }
  return out;
}

/**
 * Reads a conflict report, or undefined when there is none.
 *
 * @example
 * ```ts
 * import { readConflict } from "@/gov/state/store.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 * declare const txid: string;
 *
 * const c = await readConflict(paths, txid);
 * ```
 */
export async function readConflict(
  p: GovPaths,
  txid: string,
): Promise<ConflictReport | undefined> {
  return await readJsonFile(conflictPath(p, txid), validateConflictReport);
}

/**
 * Writes a conflict report atomically.
 *
 * @example
 * ```ts
 * import { writeConflict } from "@/gov/state/store.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * import { type ConflictReport } from "@/gov/state/schema.ts";
 * declare const paths: GovPaths;
 * declare const report: ConflictReport;
 *
 * await writeConflict(paths, report);
 * ```
 */
export async function writeConflict(p: GovPaths, report: ConflictReport): Promise<string> {
  const path = conflictPath(p, report.txid);
  await writeJsonAtomic(path, report);
  return path;
}

/**
 * Copies a file atomically (temp + rename) so a reader never sees half of it.
 *
 * @example
 * ```ts
 * import { copyFileAtomic } from "@/gov/state/store.ts";
 * import { type Environment } from "@/workspace/environment.ts";
 * declare const env: Environment;
 * declare const work: string;
 *
 * await copyFileAtomic(`${work}/uv.lock`, `${env.dir}/uv.lock`);
 * ```
 */
export async function copyFileAtomic(from: string, to: string): Promise<void> {
  await writeFileAtomic(to, await Deno.readFile(from));
}
