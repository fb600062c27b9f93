/**
 * `gov resolve`: settles a dependency conflict with exact pins. Pins are merged into the
 * transaction's `resolution_pins` and tried as `[tool.uv] override-dependencies` (uv's
 * override mechanism; the seed's `dependency-groups.overrides` does not exist in uv) in an
 * isolated workdir. A lock that succeeds makes the transaction `resolved` (promote it
 * next); one that fails keeps it `needs_resolution` with a new conflict report.
 *
 * @module
 */
import { join } from "node:path";
import { valid as validVersion } from "@renovatebot/pep440";
import { NotFoundError, RefusedError, UsageError } from "../../errors.ts";
import { UvConflictError } from "../../uv/errors.ts";
import type { GovContext } from "../steps/context.ts";
import { NeedsResolutionError } from "../errors.ts";
import { nodeGroup, requirementName } from "../state/pyproject.ts";
import { nodeRequirements } from "../steps/requirements.ts";
import type { ConflictReport, Transaction } from "../state/schema.ts";
import { nowIso, readConflict, readPlugins, readTx, writeTx } from "../state/store.ts";
import { requireInitialised } from "../steps/guards.ts";
import {
  applyNodePlan,
  dropWorkdir,
  freshWorkdir,
  lockDiff,
  recordConflict,
} from "../steps/workdir.ts";
import { coreImpact, corePackages } from "../state/freeze.ts";

/** Statuses `gov resolve` accepts (seed 003 §4.4). */
export const RESOLVABLE = ["needs_resolution", "promote_failed", "resolved"];

/**
 * Throws unless `gov resolve` applies to the transaction's status (seed 003 §4.4).
 *
 * @example
 * ```ts
 * import { requireResolvable } from "@/gov/ops/resolve.ts";
 * import { readTx } from "@/gov/state/store.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * requireResolvable(await readTx(ctx.paths, "tx-20260101-120000-000-ab12"));
 * ```
 */
export function requireResolvable(tx: Transaction): void {
  if (RESOLVABLE.includes(tx.status)) return;
  throw new RefusedError(
    `transaction ${tx.txid} is ${tx.status}; only ${RESOLVABLE.join(", ")} can be resolved`,
    {
      hint: tx.status === "completed"
        ? `promote it: gov tx promote ${tx.txid}`
        : tx.status === "failed"
        ? `its test run failed; see \`gov tx inspect ${tx.txid}\``
        : undefined,
    },
  );
}

/**
 * Validates a pin `package==version` and returns it normalised (`Numpy == 1.26.4` gives
 * `numpy==1.26.4`); a {@linkcode UsageError} otherwise.
 *
 * @example
 * ```ts
 * import { parsePin } from "@/gov/ops/resolve.ts";
 *
 * parsePin("Numpy == 1.26.4"); // "numpy==1.26.4"
 * ```
 */
export function parsePin(pin: string): string {
  const m = /^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*==\s*([^\s;,]+)\s*$/.exec(pin);
  if (!m || validVersion(m[2]) === null) {
    throw new UsageError(`invalid pin '${pin}'`, {
      hint: "write it as <package>==<version>, e.g. numpy==1.26.4",
    });
  }
  return `${requirementName(m[1])}==${m[2]}`;
}

/**
 * Merges new pins over old ones (a new pin replaces an old pin of the same package).
 *
 * @example
 * ```ts
 * import { mergePins } from "@/gov/ops/resolve.ts";
 *
 * mergePins(["numpy==2.1.0"], ["numpy==1.26.4"]); // ["numpy==1.26.4"]
 * ```
 */
export function mergePins(old: string[], added: string[]): string[] {
  const names = new Set(added.map((p) => requirementName(p)));
  return [...old.filter((p) => !names.has(requirementName(p))), ...added];
}

/**
 * The conflict report of a transaction (for showing before prompting), if any.
 *
 * @example
 * ```ts
 * import { conflictOf } from "@/gov/ops/resolve.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const { tx, report } = await conflictOf(ctx, "tx-20260101-120000-000-ab12");
 * ```
 */
export async function conflictOf(
  ctx: GovContext,
  txid: string,
): Promise<{ tx: Transaction; report?: ConflictReport }> {
  const tx = await readTx(ctx.paths, txid);
  return { tx, report: await readConflict(ctx.paths, txid) };
}

/**
 * Applies `pins` (checked with {@linkcode parsePin}) to transaction `txid` and retries the
 * lock. The pins are kept in `resolution_pins` only when the lock succeeds.
 *
 * @example
 * ```ts
 * import { parsePin, resolve } from "@/gov/ops/resolve.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const tx = await resolve(ctx, "tx-20260101-120000-000-ab12", [parsePin("numpy==1.26.4")]);
 * ```
 */
export async function resolve(
  ctx: GovContext,
  txid: string,
  parsed: string[],
): Promise<Transaction> {
  const tx = await readTx(ctx.paths, txid);
  requireResolvable(tx);
  await requireInitialised(ctx);
  if (!(await readPlugins(ctx.paths)).plugins[tx.node_id]) {
    throw new NotFoundError(
      "custom node",
      tx.node_id,
      "it was removed; run `gov node add` again",
    );
  }
  const merged = mergePins(tx.resolution_pins, parsed);
  const reqs = await nodeRequirements(join(ctx.paths.customNodesDir, tx.node_id));
  const group = nodeGroup(tx.node_id);
  const workdir = await freshWorkdir(ctx, txid);
  try {
    const plan = await applyNodePlan(ctx, workdir, {
      group,
      requirements: reqs.requirements,
      pins: merged,
    });
    // Pins can move core packages the test run never touched (an override on torch):
    // they join core_impact, so promote asks for --approve-core.
    const change = await lockDiff(ctx, workdir);
    const core = coreImpact(change, corePackages(ctx.env.config.tx.core_packages));
    tx.core_impact = [...new Set([...tx.core_impact, ...core])].sort();
    tx.status = "resolved";
    tx.resolution_pins = merged;
    tx.error = null;
    tx.promotion_plan = {
      group,
      source: reqs.source,
      requirements: reqs.requirements,
      ignored_options: reqs.ignoredOptions,
      overrides: plan.overrides,
      pins: merged,
      managed_deps: plan.managedDeps,
      lock_diff: change,
      resolved_at: nowIso(),
    };
    await writeTx(ctx.paths, tx);
    return tx;
  } catch (err) {
    if (err instanceof UvConflictError) {
      // Pins that did not work are not kept (the report records them): the next attempt
      // starts from the pins that are known to be needed, not from a failed guess.
      tx.status = "needs_resolution";
      tx.conflict_report = await recordConflict(ctx, tx, err, "resolve", merged);
      tx.error = err.message;
      await writeTx(ctx.paths, tx);
      throw new NeedsResolutionError(
        txid,
        tx.conflict_report.nodes,
        tx.conflict_report.path,
        tx.conflict_report.summary,
      );
    }
    throw err;
  } finally {
    await dropWorkdir(ctx, txid);
  }
}
