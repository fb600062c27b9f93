/**
 * Transactions that carry several custom nodes (`gov snapshot import`): the transaction's
 * `node_id` is planned as always, and every other node of `node_ids` (plus the groups of
 * `extra_groups`, which belong to no node) rides along in the same workdir, the same lock,
 * the same candidate venv and the same promotion. A transaction without `node_ids` has no
 * extra groups, so the one-node path is unchanged.
 *
 * @module
 */
import { join } from "node:path";
import { GovError, NotFoundError } from "../../errors.ts";
import { nodeGroup } from "../state/pyproject.ts";
import type { PluginsFile, Transaction } from "../state/schema.ts";
import type { GovContext } from "./context.ts";
import { requireNodeCode } from "./guards.ts";
import { nodeRequirements } from "./requirements.ts";

/** One more dependency group to set in a workdir besides the transaction's own. */
export interface ExtraGroup {
  /** The group, `node-<id>` or an extra group's name. */
  group: string;
  /** The node it belongs to, when it belongs to one. */
  node?: string;
  /** Its requirement lines. */
  requirements: string[];
  /** sha256 of those lines, for nodes (see `NodeRequirements.sha256`). */
  sha256?: string;
}

/**
 * Every node whose group transaction `tx` sets.
 *
 * @example
 * ```ts
 * import { txNodeIds } from "@/gov/steps/multi_node.ts";
 * import type { Transaction } from "@/gov/state/schema.ts";
 * declare const tx: Transaction;
 *
 * for (const id of txNodeIds(tx)) console.log(id);
 * ```
 */
export function txNodeIds(tx: Transaction): string[] {
  return tx.node_ids?.length ? tx.node_ids : [tx.node_id];
}

/**
 * The groups of `tx` besides its `node_id`'s, read from the nodes' code as it is now. With
 * `reg`, each node must still be registered with its code present, and with `check` its
 * requirements must be the ones the test run saw (`tx.node_requirements_sha256`), as
 * promote demands of the transaction's own node.
 *
 * @example
 * ```ts
 * import { extraGroups } from "@/gov/steps/multi_node.ts";
 * import type { Transaction } from "@/gov/state/schema.ts";
 * import type { GovContext } from "@/gov/steps/context.ts";
 * declare const ctx: GovContext;
 * declare const tx: Transaction;
 *
 * const extra = await extraGroups(ctx, tx);
 * ```
 */
export async function extraGroups(
  ctx: GovContext,
  tx: Transaction,
  opts: { reg?: PluginsFile; check?: boolean } = {},
): Promise<ExtraGroup[]> {
  const out: ExtraGroup[] = [];
  const seen = (tx.node_requirements_sha256 ?? {}) as Record<string, string>;
  for (const id of txNodeIds(tx)) {
    if (id === tx.node_id) continue;
    if (opts.reg && !opts.reg.plugins[id]) {
      throw new NotFoundError("custom node", id, "it was removed; run the import again");
    }
    if (opts.reg) await requireNodeCode(ctx, id);
    const reqs = await nodeRequirements(join(ctx.paths.customNodesDir, id));
    if (opts.check && seen[id] !== undefined && seen[id] !== reqs.sha256) {
      throw new GovError(
        `the requirements of custom node ${id} changed since transaction ${tx.txid} was run`,
        { hint: "run the import again and promote that" },
      );
    }
    out.push({
      group: nodeGroup(id),
      node: id,
      requirements: reqs.requirements,
      sha256: reqs.sha256,
    });
  }
  for (const [group, requirements] of Object.entries(tx.extra_groups ?? {})) {
    out.push({ group, requirements });
  }
  return out;
}
