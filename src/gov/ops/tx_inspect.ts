/**
 * `gov tx inspect`: one transaction's record.
 *
 * @module
 */
import type { Transaction } from "../state/schema.ts";
import { readTx } from "../state/store.ts";
import type { GovContext } from "../steps/context.ts";

/**
 * One transaction.
 *
 * @example
 * ```ts
 * import { txInspect } from "@/gov/ops/tx_inspect.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const tx = await txInspect(ctx, "tx-20260101-120000-000-ab12");
 * ```
 */
export function txInspect(ctx: GovContext, txid: string): Promise<Transaction> {
  return readTx(ctx.paths, txid);
}
