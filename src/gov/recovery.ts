/**
 * Crash recovery: run by every gov command on an environment (holding its lock) before it
 * does anything else. Finishes or undoes the operation a killed gov left in the journal,
 * marks transactions whose `gov tx run` died as failed, removes leftover workdirs, and
 * brings the snapshot index and folders back in agreement.
 *
 * | journaled op | interrupted before                   | then                              |
 * |--------------|--------------------------------------|-----------------------------------|
 * | promote      | truth-copied (truth files unchanged) | nothing changed: tx keeps its status, promote again |
 * | promote      | smoke-passed                         | undo: pre snapshot, re-sync, tx `promote_failed` ("interrupted") |
 * | promote      | (at/after smoke-passed)              | finish: plugin record, post snapshot, tx `promoted` |
 * | promote      | (at conflict: lock failed, prod untouched) | finish: tx `needs_resolution` |
 * | remove       | prod-synced                          | undo: pre snapshot, re-sync, node stays |
 * | remove       | (at/after prod-synced)               | finish: record removed, post snapshot, code disabled/purged |
 * | rollback     | prod-synced                          | undo: pre-rollback snapshot, re-sync |
 * | node-add     | the registry write                   | undo: the clone is removed        |
 *
 * Each operation's module decides finish-or-undo for its own journal (its `recover...`
 * handler); this module only reads the journal and dispatches. It sits above the
 * operations and below the session, which is what keeps the import graph one-way.
 *
 * @module
 */
import type { JournalOp } from "./state/schema.ts";
import { readJournal, resumeJournal } from "./state/journal.ts";
import { reconcileSnapshots } from "./state/snapshots.ts";
import type { GovContext } from "./steps/context.ts";
import type { RecoverJournal } from "./steps/undo.ts";
import { listWorkdirs } from "./steps/workdir.ts";

/**
 * Who recovers each journaled operation (the type makes a new op without one an error).
 * Imported only when a journal names it: every read runs recovery, and loading every
 * operation would cost `gov status` more than its work.
 */
const HANDLERS: Record<JournalOp, () => Promise<RecoverJournal>> = {
  "promote": async () => (await import("./ops/promote.ts")).recoverPromote,
  "remove": async () => (await import("./ops/node_remove.ts")).recoverNodeRemove,
  "rollback": async () => (await import("./ops/rollback.ts")).recoverRollback,
  "node-add": async () => (await import("./ops/node_add.ts")).recoverNodeAdd,
};

/**
 * Recovers environment state after an interrupted gov. The caller holds the lock.
 *
 * @example
 * ```ts
 * import { recover } from "@/gov/recovery.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * await recover(makeContext(loadEnvironment("/srv/comfy/environments/prod")));
 * ```
 */
export async function recover(ctx: GovContext): Promise<void> {
  for (const n of await reconcileSnapshots(ctx.paths)) ctx.note(`recovery: ${n}`);
  const journal = await readJournal(ctx.paths);
  if (journal && journal.pid !== Deno.pid) {
    const j = resumeJournal(ctx.paths, journal, ctx.getenv);
    const why = `interrupted (gov pid ${journal.pid} was killed after step "${journal.step}")`;
    const handler = await HANDLERS[journal.op]();
    ctx.note(`recovery: ${await handler(ctx, j, why)}`);
  }
  // A test run gov died in leaves its workdir behind; without one there is nothing to do.
  if ((await listWorkdirs(ctx)).length > 0) {
    const { recoverTxRuns } = await import("./ops/tx_run.ts");
    await recoverTxRuns(ctx);
  }
}
