/**
 * Listing, inspecting and aborting transactions.
 *
 * @module
 */
import { GovError } from "../errors.ts";
import { isPidAlive } from "../process/run.ts";
import type { Environment } from "../workspace/environment.ts";
import { validateName } from "../workspace/names.ts";
import { type GovOptions, withLockedEnv, withReadEnv } from "./context.ts";
import { candidatePath } from "./paths.ts";
import type { Transaction } from "./schema.ts";
import { listTxs, nowIso, readTx, writeTx } from "./store.ts";
import { dropWorkdir } from "./workdir.ts";

/** One line of `gov tx list`. */
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

/**
 * The short form of a transaction.
 *
 * @example
 * ```ts
 * txSummary(tx).status;
 * ```
 */
export function txSummary(tx: Transaction): TxSummary {
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

/**
 * Every transaction, oldest first.
 *
 * @example
 * ```ts
 * const list = await listTransactions(env);
 * ```
 */
export async function listTransactions(
  env: Environment,
  gopts: GovOptions = {},
): Promise<Transaction[]> {
  return await withReadEnv(env, "tx list", gopts, (ctx) => listTxs(ctx.paths));
}

/**
 * One transaction.
 *
 * @example
 * ```ts
 * const tx = await inspectTransaction(env, txid);
 * ```
 */
export async function inspectTransaction(
  env: Environment,
  txid: string,
  gopts: GovOptions = {},
): Promise<Transaction> {
  validateName("transaction id", txid);
  return await withReadEnv(env, "tx inspect", gopts, (ctx) => readTx(ctx.paths, txid));
}

/**
 * Aborts a transaction that is not promoted: removes its candidate venv and workdir and
 * sets status `aborted`. A transaction still running in a live gov is refused.
 *
 * @example
 * ```ts
 * await abortTransaction(env, txid);
 * ```
 */
export async function abortTransaction(
  env: Environment,
  txid: string,
  gopts: GovOptions = {},
): Promise<Transaction> {
  validateName("transaction id", txid);
  return await withLockedEnv(env, "tx abort", gopts, async (ctx) => {
    const tx = await readTx(ctx.paths, txid);
    if (tx.status === "promoted") {
      throw new GovError(`transaction ${txid} is promoted; it cannot be aborted`, {
        hint: "undo it with `gov rollback <pre-promote snapshot>` (see `gov snapshot list`)",
      });
    }
    if (tx.status === "running" && tx.pid !== undefined && isPidAlive(tx.pid)) {
      throw new GovError(`transaction ${txid} is still running (gov pid ${tx.pid})`, {
        hint: "wait for `gov tx run` to finish or stop it, then abort",
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
  });
}
