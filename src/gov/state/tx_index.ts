/**
 * The transaction index (`state/transactions/.index.json`): the summary fields of every
 * transaction, so `gov status` and `gov tx list` need not parse every transaction file
 * (each holds a test start's output). It is a cache, never a truth: each entry records the
 * identity of the file it was taken from (inode, size, change and modification times), and
 * a read that finds any file added, removed, replaced or edited since rebuilds the index
 * from the files. So a kill between writing a transaction and the index, a deleted or
 * truncated index, or a hand edit all read correctly.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../../fs/atomic.ts";
import { readJsonFile } from "../../fs/json.ts";
import { validateName } from "../../workspace/names.ts";
import type { GovPaths } from "./paths.ts";
import { type Transaction, validateTransaction } from "./schema.ts";

/** The summary of one transaction, as `gov tx list` shows it. */
export interface TxSummary {
  txid: string;
  node_id: string;
  status: string;
  started_at: string;
  ended_at: string | null;
  run_exit_code: number | null;
  core_impact: string[];
  added: number;
  removed: number;
  changed: number;
}

/** Identity of a transaction file when its entry was taken. */
interface FileStamp {
  ino: number | null;
  size: number;
  mtime: number | null;
  ctime: number | null;
}

interface IndexEntry extends TxSummary {
  file: FileStamp;
}

interface IndexFile {
  version: 1;
  entries: IndexEntry[];
}

/** The index's file name; a leading dot keeps it out of the listing of transaction files. */
const INDEX_NAME = ".index.json";

/**
 * Path of the transaction index.
 *
 * @example
 * ```ts
 * import { txIndexPath } from "@/gov/state/tx_index.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * txIndexPath(paths); // ".../state/transactions/.index.json"
 * ```
 */
export function txIndexPath(p: GovPaths): string {
  return join(p.transactionsDir, INDEX_NAME);
}

/**
 * The short form of a transaction.
 *
 * @example
 * ```ts
 * import { summarizeTx } from "@/gov/state/tx_index.ts";
 * import { type Transaction } from "@/gov/state/schema.ts";
 * declare const tx: Transaction;
 *
 * summarizeTx(tx).added;
 * ```
 */
export function summarizeTx(tx: Transaction): TxSummary {
  return {
    txid: tx.txid,
    node_id: tx.node_id,
    status: tx.status,
    started_at: tx.started_at,
    ended_at: tx.ended_at,
    run_exit_code: tx.run_exit_code,
    core_impact: tx.core_impact,
    added: tx.diff.added.length,
    removed: tx.diff.removed.length,
    changed: tx.diff.changed.length,
  };
}

function stampOf(info: Deno.FileInfo): FileStamp {
  return {
    ino: info.ino,
    size: info.size,
    mtime: info.mtime?.getTime() ?? null,
    ctime: info.ctime?.getTime() ?? null,
  };
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtime === b.mtime && a.ctime === b.ctime;
}

const isStr = (v: unknown): v is string => typeof v === "string";
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const orNull = <T>(v: unknown, f: (v: unknown) => v is T) => v === null || f(v);

function validEntry(v: unknown): v is IndexEntry {
  if (typeof v !== "object" || v === null) return false;
  const e = v as Record<string, unknown>;
  const f = e.file as Record<string, unknown> | null;
  return isStr(e.txid) && isStr(e.node_id) && isStr(e.status) && isStr(e.started_at) &&
    orNull(e.ended_at, isStr) && orNull(e.run_exit_code, isNum) &&
    Array.isArray(e.core_impact) && e.core_impact.every(isStr) &&
    isNum(e.added) && isNum(e.removed) && isNum(e.changed) &&
    typeof f === "object" && f !== null && isNum(f.size) &&
    orNull(f.ino, isNum) && orNull(f.mtime, isNum) && orNull(f.ctime, isNum);
}

/** The stored index, or undefined when it is missing or not a valid index (then rebuilt). */
async function readStored(p: GovPaths): Promise<Map<string, IndexEntry> | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(txIndexPath(p));
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as IndexFile;
    if (v?.version !== 1 || !Array.isArray(v.entries) || !v.entries.every(validEntry)) {
      return undefined;
    }
    return new Map(v.entries.map((e) => [e.txid, e]));
  } catch {
    return undefined;
  }
}

/** Names (without `.json`) and identities of the transaction files, oldest id first. */
function listFiles(p: GovPaths): { txid: string; stamp: FileStamp }[] {
  const out: { txid: string; stamp: FileStamp }[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(p.transactionsDir)];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  for (const e of entries) {
    if (!e.isFile || !e.name.endsWith(".json") || e.name.startsWith(".")) continue;
    // Synchronous stats: a thousand of them take a few milliseconds, where as many
    // asynchronous ones each pay a round trip through the runtime's thread pool.
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(join(p.transactionsDir, e.name));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue; // removed meanwhile
      throw err;
    }
    out.push({ txid: e.name.slice(0, -".json".length), stamp: stampOf(info) });
  }
  return out.sort((a, b) => a.txid < b.txid ? -1 : a.txid > b.txid ? 1 : 0);
}

async function writeIndex(p: GovPaths, entries: IndexEntry[]): Promise<void> {
  const file: IndexFile = { version: 1, entries };
  // One line per entry, not indented: half the bytes to parse on every status.
  const lines = entries.map((e) => JSON.stringify(e));
  const text = `{"version":${file.version},"entries":[\n${lines.join(",\n")}\n]}\n`;
  await writeFileAtomic(txIndexPath(p), text);
}

/**
 * Summaries of every transaction, oldest first, from the index when it matches the files,
 * else from the files themselves (then the index is rewritten, when the folder is
 * writable). A transaction file that is not valid fails the same way as reading it does.
 *
 * @example
 * ```ts
 * import { listTxSummaries } from "@/gov/state/tx_index.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * for (const s of await listTxSummaries(paths)) console.log(s.txid, s.status);
 * ```
 */
export async function listTxSummaries(p: GovPaths): Promise<TxSummary[]> {
  const files = listFiles(p);
  const stored = await readStored(p);
  const entries: IndexEntry[] = [];
  let changed = !stored || stored.size !== files.length;
  for (const f of files) {
    const known = stored?.get(f.txid);
    if (known && sameStamp(known.file, f.stamp)) {
      entries.push(known);
      continue;
    }
    changed = true;
    validateName("transaction id", f.txid);
    const path = join(p.transactionsDir, `${f.txid}.json`);
    const tx = await readJsonFile(path, validateTransaction);
    if (!tx) continue; // removed meanwhile
    // Stat again after the read: a write in between makes the next read re-check.
    let stamp = f.stamp;
    try {
      stamp = stampOf(await Deno.stat(path));
    } catch { /* removed meanwhile: the next read drops it */ }
    entries.push({ ...summarizeTx(tx), file: stamp });
  }
  if (changed && files.length > 0) {
    // The index is a cache: a read-only folder or a full disk only costs the next reader
    // the same parse.
    await writeIndex(p, entries).catch(() => {});
  }
  return entries.map(({ file: _, ...summary }) => summary);
}

/**
 * Records a transaction just written in the index. Only brings an index that is already
 * current up to date; any other (missing, invalid, behind the files) is left for the next
 * read to rebuild, so this never parses the other transactions.
 *
 * @example
 * ```ts
 * import { indexTx } from "@/gov/state/tx_index.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * import { type Transaction } from "@/gov/state/schema.ts";
 * declare const paths: GovPaths;
 * declare const tx: Transaction;
 *
 * await indexTx(paths, tx);
 * ```
 */
export async function indexTx(p: GovPaths, tx: Transaction): Promise<void> {
  const stored = await readStored(p);
  if (!stored) return;
  const stamp = stampOf(await Deno.stat(join(p.transactionsDir, `${tx.txid}.json`)));
  stored.set(tx.txid, { ...summarizeTx(tx), file: stamp });
  const entries = [...stored.values()].sort((a, b) =>
    a.txid < b.txid ? -1 : a.txid > b.txid ? 1 : 0
  );
  await writeIndex(p, entries);
}
