/**
 * `gov rollback <snapshot-id>` (seed 003 §4.7): pre-rollback snapshot, restore the target's
 * truth files, rebuild `.venv-prod`; when the rebuild fails, restore the pre-rollback
 * snapshot and re-sync, so a rollback never leaves production on a half-applied state.
 * Journaled: interrupted before production was rebuilt, it is undone.
 *
 * @module
 */
import { join } from "node:path";
import { exists } from "../../fs/atomic.ts";
import { EXIT_USAGE, GovError } from "../../errors.ts";
import { StorageError } from "../../fs/errors.ts";
import type { GovContext } from "../steps/context.ts";
import { RollbackFailedError } from "../errors.ts";
import { beginJournal, type JournalHandle } from "../state/journal.ts";
import { syncProd } from "../steps/prod.ts";
import { requireGovManagedPython } from "../steps/guards.ts";
import type { SnapshotMeta } from "../state/schema.ts";
import { createSnapshot, loadSnapshot, restoreSnapshot } from "../state/snapshots.ts";
import { readPlugins } from "../state/store.ts";
import { disableCode, reenableCode } from "../steps/node_code.ts";
import { type RecoverJournal, restorePreSnapshot } from "../steps/undo.ts";

/** What a rollback did. */
export interface RollbackResult {
  target: SnapshotMeta;
  pre_snapshot: string;
  prod: "synced" | "in-sync";
  /** Registered nodes whose code folder is missing (rollback restores records, not code). */
  missing_code: string[];
  /** Nodes registered before the rollback and not after (their code stays in custom_nodes/). */
  unregistered: string[];
  /** Nodes registered after the rollback and not before. */
  reregistered: string[];
  /** Of those, nodes whose `<id>.disabled` folder was renamed back into place. */
  reenabled: string[];
  /** Nodes no longer registered whose folder was parked as `<id>.disabled`. */
  disabled: string[];
}

/**
 * Rolls the environment back to snapshot `snapshotId`. The caller holds the lock.
 *
 * @example
 * ```ts
 * import { rollback } from "@/gov/ops/rollback.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const r = await rollback(ctx, "snap-20260101-120000-000-ab12");
 * ```
 */
export async function rollback(ctx: GovContext, snapshotId: string): Promise<RollbackResult> {
  requireGovManagedPython(ctx);
  // Check the whole target first: a damaged snapshot must change nothing.
  let meta;
  try {
    ({ meta } = await loadSnapshot(ctx.paths, snapshotId));
  } catch (err) {
    // Nothing has changed yet: a damaged target is refused (pick another one), exit 2 like
    // a corrupt state file, not a failure that a retry could fix.
    if (err instanceof GovError && !(err instanceof StorageError)) err.exitCode = EXIT_USAGE;
    throw err;
  }
  const before = Object.keys((await readPlugins(ctx.paths)).plugins);
  ctx.uv();
  const j = await beginJournal(
    ctx.paths,
    "rollback",
    { target: snapshotId, nodes_before: before },
    ctx.getenv,
  );
  let pre;
  try {
    pre = await createSnapshot(ctx.paths, "pre-rollback", snapshotId, {
      retention: ctx.retention,
      keep: [snapshotId],
    });
  } catch (err) {
    await j.finish();
    throw err;
  }
  await j.step("snapshot-pre", { pre_snapshot: pre.id });
  let prod: "synced" | "in-sync";
  try {
    await restoreSnapshot(ctx.paths, snapshotId);
    await j.step("truth-restored");
    prod = await syncProd(ctx);
    await j.step("prod-synced");
  } catch (err) {
    const reason = (err as Error).message;
    const resyncError = await undoRollback(ctx, j, reason);
    throw new RollbackFailedError(snapshotId, reason, pre.id, resyncError);
  }
  const { reenabled, disabled } = await finishRollback(ctx, j);
  const reg = await readPlugins(ctx.paths);
  const missing: string[] = [];
  for (const id of Object.keys(reg.plugins).sort()) {
    if (!(await exists(join(ctx.paths.customNodesDir, id)))) missing.push(id);
  }
  const after = Object.keys(reg.plugins);
  return {
    target: meta,
    pre_snapshot: pre.id,
    prod,
    missing_code: missing,
    unregistered: before.filter((id) => !after.includes(id)).sort(),
    reregistered: after.filter((id) => !before.includes(id)).sort(),
    reenabled,
    disabled,
  };
}

/**
 * Completes a rollback whose production sync succeeded: code follows the registry (a node
 * the target snapshot does not register loses its packages, so ComfyUI must not import it
 * and its folder is parked as `<id>.disabled`; one it registers again gets its parked code
 * back). Idempotent, for recovery.
 */
async function finishRollback(
  ctx: GovContext,
  j: JournalHandle,
): Promise<{ reenabled: string[]; disabled: string[] }> {
  const before = (j.data.nodes_before as string[] | undefined) ?? [];
  const reg = await readPlugins(ctx.paths);
  const reenabled = await reenableCode(
    ctx,
    Object.keys(reg.plugins).filter((id) => !before.includes(id)),
  );
  const disabled = await disableCode(ctx, before.filter((id) => !(id in reg.plugins)));
  await j.finish();
  return { reenabled, disabled };
}

/**
 * Undo of a rollback: restores the pre-rollback snapshot and re-syncs. Returns the re-sync
 * error, if that failed too.
 */
async function undoRollback(
  ctx: GovContext,
  j: JournalHandle,
  reason: string,
): Promise<string | undefined> {
  const pre = j.data.pre_snapshot as string | undefined;
  const resyncError = await restorePreSnapshot(ctx, j, pre, reason);
  await j.finish();
  return resyncError;
}

/**
 * Recovery of an interrupted rollback: finished once production was rebuilt from the
 * target, else undone (the pre-rollback snapshot is restored and synced).
 *
 * @example
 * ```ts
 * import { recoverRollback } from "@/gov/ops/rollback.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { readJournal, resumeJournal } from "@/gov/state/journal.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const journal = await readJournal(ctx.paths);
 * if (journal?.op === "rollback") {
 *   const j = resumeJournal(ctx.paths, journal, ctx.getenv);
 *   console.log(await recoverRollback(ctx, j, "interrupted"));
 * }
 * ```
 */
export const recoverRollback: RecoverJournal = async (ctx, j, why) => {
  const target = String(j.data.target);
  if (j.journal.step === "prod-synced") {
    await finishRollback(ctx, j);
    return `finished the interrupted rollback to ${target}`;
  }
  const err = await undoRollback(ctx, j, why);
  return `undid the interrupted rollback to ${target}${
    j.data.pre_snapshot ? ` (restored pre-rollback snapshot ${j.data.pre_snapshot})` : ""
  }${err ? `; re-sync failed: ${err}` : ""}`;
};
