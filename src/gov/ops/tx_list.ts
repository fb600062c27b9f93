/**
 * `gov tx list`: every transaction, and the short form each is listed in.
 *
 * @module
 */
import type { Transaction } from "../state/schema.ts";
import { listTxs } from "../state/store.ts";
import type { GovContext } from "../steps/context.ts";

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
 * import { txList, txSummary } from "@/gov/ops/tx_list.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * for (const tx of await txList(ctx)) console.log(txSummary(tx).status);
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
 * import { txList } from "@/gov/ops/tx_list.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const list = await txList(ctx);
 * ```
 */
export function txList(ctx: GovContext): Promise<Transaction[]> {
  return listTxs(ctx.paths);
}
