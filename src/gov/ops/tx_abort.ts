/**
 * `gov tx abort`: ends a transaction that is not promoted, removing its candidate venv and
 * workdir.
 *
 * @module
 */
import { RefusedError } from "../../errors.ts";
import { exists } from "../../fs/atomic.ts";
import { isPidAlive } from "../../process/run.ts";
import { candidatePath } from "../state/paths.ts";
import type { Transaction } from "../state/schema.ts";
import { nowIso, readTx, writeTx } from "../state/store.ts";
import type { GovContext } from "../steps/context.ts";
import { dropWorkdir } from "../steps/workdir.ts";

/**
 * Aborts a transaction that is not promoted: removes its candidate venv and workdir and
 * sets status `aborted`. A transaction still running in a live gov is refused.
 *
 * @example
 * ```ts
 * import { txAbort } from "@/gov/ops/tx_abort.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * await txAbort(ctx, "tx-20260101-120000-000-ab12");
 * ```
 */
export async function txAbort(ctx: GovContext, txid: string): Promise<Transaction> {
  const tx = await readTx(ctx.paths, txid);
  if (tx.status === "promoted") {
    throw new RefusedError(`transaction ${txid} is promoted; it cannot be aborted`, {
      hint: "undo it with `gov rollback <pre-promote snapshot>` (see `gov snapshot list`)",
    });
  }
  if (tx.status === "running" && tx.pid !== undefined && isPidAlive(tx.pid)) {
    throw new RefusedError(`transaction ${txid} is still running (gov pid ${tx.pid})`, {
      hint: "wait for `gov tx run` to finish or stop it, then abort",
    });
  }
  if (tx.status === "aborted" && !(await exists(candidatePath(ctx.paths, txid)))) {
    throw new RefusedError(`transaction ${txid} is already aborted; nothing to do`, {
      hint: "see `gov tx list`",
    });
  }
  // The path comes from the txid, never from the (editable) JSON: a hand-edited
  // candidate_env must not make gov delete anything else.
  await Deno.remove(candidatePath(ctx.paths, txid), { recursive: true }).catch(() => {});
  await dropWorkdir(ctx, txid);
  if (tx.status !== "aborted") {
    tx.error = tx.error ?? `aborted from status ${tx.status}`;
    tx.status = "aborted";
    tx.ended_at = tx.ended_at ?? nowIso();
    delete tx.pid;
    await writeTx(ctx.paths, tx);
  }
  return tx;
}
