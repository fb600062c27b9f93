/**
 * Crash recovery: run by every gov command on an environment (holding its lock) before it
 * does anything else. Finishes or undoes the operation a killed gov left in the journal,
 * marks transactions whose `gov tx run` died as failed, removes leftover workdirs, and
 * brings the snapshot index and folders back in agreement.
 *
 * | journaled op | interrupted before                   | then                              |
 * |--------------|--------------------------------------|-----------------------------------|
 * | promote      | smoke-passed                         | undo: pre snapshot, re-sync, tx `promote_failed` ("interrupted") |
 * | promote      | (at/after smoke-passed)              | finish: plugin record, post snapshot, tx `promoted` |
 * | promote      | (at conflict: lock failed, prod untouched) | finish: tx `needs_resolution` |
 * | remove       | prod-synced                          | undo: pre snapshot, re-sync, node stays |
 * | remove       | (at/after prod-synced)               | finish: record removed, post snapshot, code disabled/purged |
 * | rollback     | prod-synced                          | undo: pre-rollback snapshot, re-sync |
 * | node-add     | the registry write                   | undo: the clone is removed        |
 *
 * @module
 */
import { isPidAlive } from "../process/run.ts";
import type { GovContext } from "./context.ts";
import { readJournal, resumeJournal } from "./journal.ts";
import { finishRemove, undoNodeAdd, undoRemove } from "./nodes.ts";
import { finishConflict, finishPromote, undoPromote } from "./promote.ts";
import { finishRollback, undoRollback } from "./rollback.ts";
import { reconcileSnapshots } from "./snapshots.ts";
import { nowIso, readTx, writeTx } from "./store.ts";
import { dropWorkdir, listWorkdirs } from "./workdir.ts";
import { NotFoundError } from "../errors.ts";

const PROMOTE_DONE = ["smoke-passed", "plugins-updated", "snapshot-post"];
const REMOVE_DONE = ["prod-synced", "record-removed", "snapshot-post", "code"];

/**
 * Recovers environment state after an interrupted gov. The caller holds the lock.
 *
 * @example
 * ```ts
 * await recover(ctx);
 * ```
 */
export async function recover(ctx: GovContext): Promise<void> {
  for (const n of await reconcileSnapshots(ctx.paths)) ctx.note(`recovery: ${n}`);
  const journal = await readJournal(ctx.paths);
  if (journal && journal.pid !== Deno.pid) {
    const j = resumeJournal(ctx.paths, journal, ctx.getenv);
    const why = `interrupted (gov pid ${journal.pid} was killed after step "${journal.step}")`;
    switch (journal.op) {
      case "promote": {
        const txid = String(journal.data.txid);
        if (journal.step === "conflict") {
          await finishConflict(ctx, j);
          ctx.note(`recovery: recorded the dependency conflict of ${txid} (production unchanged)`);
        } else if (PROMOTE_DONE.includes(journal.step)) {
          await finishPromote(ctx, j);
          ctx.note(
            `recovery: finished the interrupted promotion of ${txid} (its smoke test had passed)`,
          );
        } else {
          const err = await undoPromote(ctx, j, why);
          ctx.note(
            `recovery: undid the interrupted promotion of ${txid}${
              journal.data.pre_snapshot ? ` (restored snapshot ${journal.data.pre_snapshot})` : ""
            }; it is now promote_failed${err ? `; re-sync failed: ${err}` : ""}`,
          );
        }
        break;
      }
      case "remove": {
        const id = String(journal.data.node_id);
        if (REMOVE_DONE.includes(journal.step)) {
          await finishRemove(ctx, j);
          ctx.note(`recovery: finished the interrupted removal of custom node ${id}`);
        } else {
          const err = await undoRemove(ctx, j, why);
          ctx.note(
            `recovery: undid the interrupted removal of custom node ${id}; it is still registered${
              err ? `; re-sync failed: ${err}` : ""
            }`,
          );
        }
        break;
      }
      case "rollback": {
        const target = String(journal.data.target);
        if (journal.step === "prod-synced") {
          await finishRollback(ctx, j);
          ctx.note(`recovery: finished the interrupted rollback to ${target}`);
        } else {
          const err = await undoRollback(ctx, j, why);
          ctx.note(
            `recovery: undid the interrupted rollback to ${target}${
              journal.data.pre_snapshot
                ? ` (restored pre-rollback snapshot ${journal.data.pre_snapshot})`
                : ""
            }${err ? `; re-sync failed: ${err}` : ""}`,
          );
        }
        break;
      }
      case "node-add":
        ctx.note(`recovery: ${await undoNodeAdd(ctx, j)}`);
        break;
    }
  }
  await recoverTxRuns(ctx);
}

/**
 * Workdirs of `tx run` exist only while it runs; one whose gov is gone means the run was
 * killed: the transaction becomes `failed` ("interrupted").
 */
async function recoverTxRuns(ctx: GovContext): Promise<void> {
  const names = await listWorkdirs(ctx);
  for (const name of names) {
    if (!name.startsWith("tx-")) {
      // remove-<id> workdirs belong to a journaled removal, finished above.
      await dropWorkdir(ctx, name);
      continue;
    }
    let tx;
    try {
      tx = await readTx(ctx.paths, name);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      // Killed between creating the workdir and writing the record: nothing to mark.
      await dropWorkdir(ctx, name);
      continue;
    }
    if (tx.status === "running") {
      if (tx.pid !== undefined && isPidAlive(tx.pid)) continue;
      tx.status = "failed";
      tx.error = `interrupted (gov pid ${tx.pid ?? "?"} died during the test run)`;
      tx.ended_at = nowIso();
      delete tx.pid;
      await writeTx(ctx.paths, tx);
      ctx.note(
        `recovery: transaction ${tx.txid} was interrupted during its test run; marked failed`,
      );
    }
    await dropWorkdir(ctx, name);
  }
}
