/**
 * The operation journal (`state/journal.json`). A multi-step command (promote, node remove,
 * rollback, node add) records each step it completes, atomically, before starting the
 * next. If gov dies anywhere (SIGKILL, power loss) the next gov command on the environment
 * finds the journal and finishes or undoes the operation (see recovery.ts), so the truth
 * files, snapshots, plugins.json and transaction statuses always agree.
 *
 * Test-only fault injection: `GOV_FAULT=<op>:<step>` (comma-separated for several) makes
 * gov SIGKILL itself right after that step is journaled, exactly like an operator's
 * `kill -9` or a power cut at that instant. Never set it outside tests.
 *
 * @module
 */
import { writeJsonAtomic } from "../../fs/atomic.ts";
import { readJsonFile } from "../../fs/json.ts";
import { removeIfExists } from "../../fs/atomic.ts";
import type { GovPaths } from "./paths.ts";
import { type Journal, type JournalOp, validateJournal } from "./schema.ts";
import { newId, nowIso } from "./store.ts";

/**
 * Kills gov with SIGKILL when `GOV_FAULT` names this step (tests only).
 *
 * @example
 * ```ts
 * import { faultPoint } from "@/gov/state/journal.ts";
 *
 * faultPoint(Deno.env.get, "promote", "truth-copied");
 * ```
 */
export function faultPoint(
  getenv: (name: string) => string | undefined,
  op: string,
  step: string,
): void {
  const want = getenv("GOV_FAULT");
  if (!want) return;
  if (want.split(",").map((s) => s.trim()).includes(`${op}:${step}`)) {
    Deno.kill(Deno.pid, "SIGKILL");
  }
}

/**
 * Reads the journal; undefined when no operation is in flight.
 *
 * @example
 * ```ts
 * import { readJournal } from "@/gov/state/journal.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 *
 * const j = await readJournal(paths);
 * ```
 */
export async function readJournal(p: GovPaths): Promise<Journal | undefined> {
  return await readJsonFile(p.journal, validateJournal);
}

/** An operation being journaled. */
export class JournalHandle {
  /** The current journal content. */
  journal: Journal;
  private paths: GovPaths;
  private getenv: (name: string) => string | undefined;

  constructor(paths: GovPaths, journal: Journal, getenv: (name: string) => string | undefined) {
    this.paths = paths;
    this.journal = journal;
    this.getenv = getenv;
  }

  /** The operation's data (pre snapshot id, txid, ...). */
  get data(): Record<string, unknown> {
    return this.journal.data;
  }

  /**
   * Records that `step` is complete (merging `data`), then honours `GOV_FAULT`.
   *
   * @example
   * ```ts
   * import { type JournalHandle } from "@/gov/state/journal.ts";
   * import { type SnapshotMeta } from "@/gov/state/schema.ts";
   * declare const j: JournalHandle;
   * declare const snap: SnapshotMeta;
   *
   * await j.step("snapshot-pre", { pre_snapshot: snap.id });
   * ```
   */
  async step(step: string, data: Record<string, unknown> = {}): Promise<void> {
    this.journal = {
      ...this.journal,
      step,
      steps: [...this.journal.steps, { step, at: nowIso() }],
      data: { ...this.journal.data, ...data },
    };
    await writeJsonAtomic(this.paths.journal, this.journal);
    faultPoint(this.getenv, this.journal.op, step);
  }

  /**
   * Ends the operation: the journal file goes away.
   *
   * @example
   * ```ts
   * import { type JournalHandle } from "@/gov/state/journal.ts";
   * declare const j: JournalHandle;
   *
   * await j.finish();
   * ```
   */
  async finish(): Promise<void> {
    await removeIfExists(this.paths.journal);
  }
}

/**
 * Starts journaling operation `op` (step "begun"). The caller holds the environment lock
 * and has run recovery, so no other journal exists.
 *
 * @example
 * ```ts
 * import { beginJournal } from "@/gov/state/journal.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const paths: GovPaths;
 * declare const txid: string;
 *
 * const j = await beginJournal(paths, "promote", { txid }, Deno.env.get);
 * ```
 */
export async function beginJournal(
  p: GovPaths,
  op: JournalOp,
  data: Record<string, unknown>,
  getenv: (name: string) => string | undefined,
): Promise<JournalHandle> {
  const at = nowIso();
  const journal: Journal = {
    version: 1,
    op,
    op_id: newId(op),
    pid: Deno.pid,
    started_at: at,
    step: "begun",
    steps: [{ step: "begun", at }],
    data,
  };
  await writeJsonAtomic(p.journal, journal);
  faultPoint(getenv, op, "begun");
  return new JournalHandle(p, journal, getenv);
}

/**
 * Resumes a journal found on disk (recovery).
 *
 * @example
 * ```ts
 * import { resumeJournal } from "@/gov/state/journal.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * import { type Journal } from "@/gov/state/schema.ts";
 * declare const journal: Journal;
 * declare const paths: GovPaths;
 *
 * const j = resumeJournal(paths, journal, Deno.env.get);
 * ```
 */
export function resumeJournal(
  p: GovPaths,
  journal: Journal,
  getenv: (name: string) => string | undefined,
): JournalHandle {
  return new JournalHandle(p, journal, getenv);
}
