/**
 * The read-only entry points that `gov status` and `gov tx list` need, apart from `mod.ts`
 * (which re-exports them): importing `mod.ts` loads every operation and its packages (the
 * YAML and PEP 440 parsers among them), which costs those commands more than their work.
 * Same sessions as every verb: lock when free, recover, read.
 *
 * @module
 */
import type { Environment } from "../workspace/environment.ts";
import { withReadEnv } from "./session.ts";
import type { GovOptions } from "./steps/context.ts";
import { type EnvironmentStatus, status } from "./ops/status.ts";
import { type TxSummary, txSummaryList } from "./ops/tx_list.ts";

export type { EnvironmentStatus, TxSummary };

/**
 * The governance state of `env` at a glance, without running uv (`gov status`).
 *
 * @example
 * ```ts
 * import { environmentStatus } from "@/gov/read.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const s = await environmentStatus(loadEnvironment("/srv/comfy/environments/prod"));
 * if (!s.prod.in_sync) console.log(s.prod.reason);
 * ```
 */
export async function environmentStatus(
  env: Environment,
  gopts: GovOptions = {},
): Promise<EnvironmentStatus> {
  return await withReadEnv(env, "status", gopts, status);
}

/**
 * The summary of every transaction, oldest first (`gov tx list`), read from the
 * transaction index instead of every transaction file.
 *
 * @example
 * ```ts
 * import { listTransactionSummaries } from "@/gov/read.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const list = await listTransactionSummaries(loadEnvironment("/srv/comfy/environments/prod"));
 * ```
 */
export async function listTransactionSummaries(
  env: Environment,
  gopts: GovOptions = {},
): Promise<TxSummary[]> {
  return await withReadEnv(env, "tx list", gopts, txSummaryList);
}
