/**
 * `gov tx list`: every transaction, and the short form each is listed in.
 *
 * @module
 */
import type { Transaction } from "../state/schema.ts";
import { listTxs } from "../state/store.ts";
import { listTxSummaries, summarizeTx, type TxSummary } from "../state/tx_index.ts";
import type { GovContext } from "../steps/context.ts";

export type { TxSummary };

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
  return summarizeTx(tx);
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

/**
 * The summary of every transaction, oldest first, from the transaction index (kept
 * current with the files), without parsing each transaction.
 *
 * @example
 * ```ts
 * import { txSummaryList } from "@/gov/ops/tx_list.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * for (const s of await txSummaryList(ctx)) console.log(s.txid, s.status);
 * ```
 */
export function txSummaryList(ctx: GovContext): Promise<TxSummary[]> {
  return listTxSummaries(ctx.paths);
}
