/**
 * `gov tx promote`: seed 003 §4.5 step by step, journaled so a crash at any step is
 * finished or undone by the next gov command.
 *
 * 1. status gate (`completed`/`resolved`; `failed` with `--allow-failed-run`)
 * 2. core gate (`core_impact` needs `--approve-core`)
 * 3. pre-promote snapshot                                   journal: snapshot-pre
 * 4-5. plan, isolated workdir: `uv add --group node-<id> --no-sync --raw -r ...` with the
 *    resolution pins as `[tool.uv] override-dependencies`, `uv lock`   journal: locked
 *    (a conflict: `needs_resolution` + `state/conflicts/<txid>.json`, production untouched;
 *    a lock that moves core packages without `--approve-core`: refused, nothing changed)
 * 6. copy pyproject.toml and uv.lock over the truth, each atomically   journal: truth-copied
 * 7. `uv sync --locked --all-groups` of `.venv-prod` in place           journal: prod-synced
 * 8. smoke test                                                          journal: smoke-passed
 * 9. plugin record (managed_deps, commit), post-promote snapshot, status `promoted`
 *                                        journal: plugins-updated, snapshot-post
 * 10. a failure in 6-8 restores the pre snapshot, re-syncs, sets `promote_failed`
 *                                                                        journal: undoing
 *
 * Recovery rule: interrupted before the truth files changed, nothing is undone: the
 * transaction gets its status back and can be promoted again. Interrupted after that but
 * before the smoke test passed, the promotion is undone (restore pre snapshot, re-sync,
 * `promote_failed` with reason "interrupted"); after it passed, it is finished (plugin
 * record, post snapshot, `promoted`).
 *
 * @module
 */
import { join } from "node:path";
import { GovError, NotFoundError, RefusedError } from "../../errors.ts";
import { isEnvironmentFailure, UvConflictError } from "../../uv/errors.ts";
import type { GovContext } from "../steps/context.ts";
import {
  CoreImpactError,
  NeedsResolutionError,
  PromoteFailedError,
  PromoteGateError,
} from "../errors.ts";
import { coreImpact, corePackages, describeDiff } from "../state/freeze.ts";
import { beginJournal, type JournalHandle } from "../state/journal.ts";
import { candidatePath, conflictPath } from "../state/paths.ts";
import { syncProd } from "../steps/prod.ts";
import { nodeGroup, readPyproject } from "../state/pyproject.ts";
import { nodeRequirements } from "../steps/requirements.ts";
import { extraGroups, txNodeIds } from "../steps/multi_node.ts";
import type { SnapshotMeta, Transaction, TxDiff } from "../state/schema.ts";
import { smokeTest } from "../steps/smoke.ts";
import {
  createSnapshot,
  deleteSnapshot,
  readSnapshotIndex,
  readSnapshotMeta,
  snapshotExists,
  truthFiles,
} from "../state/snapshots.ts";
import {
  copyFileAtomic,
  fileSha256,
  newId,
  nowIso,
  readConflict,
  readPlugins,
  readTx,
  writePlugins,
  writeTx,
} from "../state/store.ts";
import { requireGovManagedPython, requireInitialised, requireNodeCode } from "../steps/guards.ts";
import {
  applyNodePlan,
  dropWorkdir,
  freshWorkdir,
  lockDiff,
  recordConflict,
} from "../steps/workdir.ts";
import { type RecoverJournal, restorePreSnapshot } from "../steps/undo.ts";

/** Flags of `gov tx promote`. */
export interface PromoteOptions {
  /** Allow a change to a core package (torch, numpy, ...). */
  approveCore?: boolean;
  /** Allow promoting a transaction whose ComfyUI test start failed. */
  allowFailedRun?: boolean;
}

function gateStatus(tx: Transaction, opts: PromoteOptions): void {
  if (tx.status === "completed" || tx.status === "resolved") return;
  if (tx.status === "failed" && opts.allowFailedRun) return;
  throw new PromoteGateError(
    tx.txid,
    tx.status,
    tx.status === "failed" ? (tx.error ?? `exit ${tx.run_exit_code}`) : undefined,
  );
}

/**
 * Promotes transaction `txid` into production. The caller holds the lock (session.ts).
 *
 * @example
 * ```ts
 * import { promote } from "@/gov/ops/promote.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const tx = await promote(ctx, "tx-20260101-120000-000-ab12", { approveCore: true });
 * ```
 */
export async function promote(
  ctx: GovContext,
  txid: string,
  opts: PromoteOptions,
): Promise<Transaction> {
  const t0 = performance.now();
  let tx = await readTx(ctx.paths, txid);
  gateStatus(tx, opts);
  if (tx.core_impact.length && !opts.approveCore) {
    throw new PromoteGateError(txid, "core", tx.core_impact.join(", "));
  }
  requireGovManagedPython(ctx);
  await requireInitialised(ctx);
  const reg = await readPlugins(ctx.paths);
  if (!reg.plugins[tx.node_id]) {
    throw new NotFoundError("custom node", tx.node_id, "it was removed; run `gov node add` again");
  }
  await requireNodeCode(ctx, tx.node_id);
  const reqs = await nodeRequirements(join(ctx.paths.customNodesDir, tx.node_id));
  if (tx.requirements_sha256 !== undefined && reqs.sha256 !== tx.requirements_sha256) {
    throw new RefusedError(
      `the requirements of custom node ${tx.node_id} changed since transaction ${txid} was run`,
      { hint: `test the new requirements with \`gov tx run ${tx.node_id}\` and promote that` },
    );
  }
  const extra = await extraGroups(ctx, tx, { reg, check: true });
  const uv = ctx.uv();
  const uvBefore = uv.totalMs;
  const group = nodeGroup(tx.node_id);
  const j = await beginJournal(ctx.paths, "promote", { txid, prev_status: tx.status }, ctx.getenv);
  const promotion: Record<string, unknown> = {
    started_at: nowIso(),
    result: "in_progress",
    pre_snapshot: null as string | null,
    post_snapshot: null,
    approve_core: !!opts.approveCore,
    allow_failed_run: !!opts.allowFailedRun,
  };
  let workdir: string;
  let plan;
  let lockChange: TxDiff;
  let pre: SnapshotMeta | undefined;
  try {
    pre = await createSnapshot(ctx.paths, "pre-promote", txid, { retention: ctx.retention });
    await j.step("snapshot-pre", { pre_snapshot: pre.id });
    promotion.pre_snapshot = pre.id;
    workdir = await freshWorkdir(ctx, txid);
    plan = await applyNodePlan(ctx, workdir, {
      group,
      requirements: reqs.requirements,
      pins: tx.resolution_pins,
      extra,
    });
    // The core gate again, on what production will really get: the transaction's own diff
    // came from its test run, but resolution pins (an override can move torch) and promotions
    // made since then decide the lock being promoted.
    lockChange = await lockDiff(ctx, workdir);
    const core = coreImpact(lockChange, corePackages(ctx.env.config.tx.core_packages));
    if (core.length && !opts.approveCore) {
      tx.core_impact = [...new Set([...tx.core_impact, ...core])].sort();
      throw new CoreImpactError(txid, describeDiff(lockChange, core));
    }
  } catch (err) {
    // Production was not touched: the truth files are what the pre snapshot holds, so that
    // snapshot would only crowd older, useful ones out of the retention window. It goes
    // after the journal ends (a crash in between leaves a harmless extra snapshot).
    await dropWorkdir(ctx, txid);
    const dropPre = async () => {
      if (pre) await deleteSnapshot(ctx.paths, pre.id);
    };
    if (err instanceof UvConflictError) {
      // The report first, then the journal step: recovery at "conflict" finds it.
      tx.conflict_report = await recordConflict(ctx, tx, err, "tx promote");
      await j.step("conflict");
      tx.status = "needs_resolution";
      tx.promotion = {
        ...promotion,
        pre_snapshot: null,
        result: "needs_resolution",
        ended_at: nowIso(),
      };
      tx.error = err.message;
      await writeTx(ctx.paths, tx);
      await j.finish();
      await dropPre();
      throw new NeedsResolutionError(
        txid,
        tx.conflict_report.nodes,
        tx.conflict_report.path,
        tx.conflict_report.summary,
        tx.conflict_report.packages,
      );
    }
    // uv missing, network off, a package missing from the index, ...: not a conflict. The
    // status stays so the same command can simply be retried once the cause is fixed.
    tx.promotion = {
      ...promotion,
      pre_snapshot: null,
      result: err instanceof CoreImpactError
        ? "core_gate"
        : isEnvironmentFailure(err)
        ? "environment_error"
        : "error",
      error: (err as Error).message,
      ended_at: nowIso(),
    };
    await writeTx(ctx.paths, tx);
    await j.finish();
    await dropPre();
    throw err;
  }
  tx.promotion_plan = {
    group,
    source: reqs.source,
    requirements: reqs.requirements,
    ignored_options: reqs.ignoredOptions,
    overrides: plan.overrides,
    pins: tx.resolution_pins,
    managed_deps: plan.managedDeps,
    expected: tx.diff,
    lock_diff: lockChange,
    ...(extra.length ? { extra_groups: extra.map((g) => g.group) } : {}),
  };
  tx.promotion = promotion;
  await writeTx(ctx.paths, tx);
  await j.step("locked");
  try {
    await copyFileAtomic(join(workdir, "pyproject.toml"), ctx.paths.pyproject);
    await copyFileAtomic(join(workdir, "uv.lock"), ctx.paths.lock);
    await j.step("truth-copied");
    await syncProd(ctx, { force: true });
    await j.step("prod-synced");
    const smoke = await smokeTest(ctx, plan.managedDeps);
    promotion.smoke = {
      cmd: smoke.cmd,
      code: smoke.code,
      stdout: smoke.stdout.slice(-8192),
      stderr: smoke.stderr.slice(-8192),
      imported: smoke.imported,
    };
    tx.promotion = promotion;
    if (!smoke.ok) {
      throw new GovError(
        `smoke test failed (exit ${smoke.code}): ${
          smoke.stderr.trim().split("\n").slice(-1)[0] ?? ""
        }`,
      );
    }
    await writeTx(ctx.paths, tx);
    await j.step("smoke-passed");
  } catch (err) {
    const reason = (err as Error).message;
    tx.promotion = promotion;
    await writeTx(ctx.paths, tx);
    const resyncError = await undoPromote(ctx, j, reason);
    throw new PromoteFailedError(txid, reason, pre.id, resyncError);
  }
  tx = await finishPromote(ctx, j);
  tx.promotion = {
    ...tx.promotion,
    timings: {
      total_ms: Math.round(performance.now() - t0),
      uv_ms: Math.round(uv.totalMs - uvBefore),
      overhead_ms: Math.round(performance.now() - t0 - (uv.totalMs - uvBefore)),
    },
  };
  await writeTx(ctx.paths, tx);
  return tx;
}

/**
 * Undo of a promotion (failure or interrupted): restores the pre-promote snapshot,
 * re-syncs `.venv-prod`, marks the transaction `promote_failed`. Returns the re-sync
 * error, if that failed too.
 */
async function undoPromote(
  ctx: GovContext,
  j: JournalHandle,
  reason: string,
): Promise<string | undefined> {
  const txid = j.data.txid as string;
  const pre = j.data.pre_snapshot as string | undefined;
  const resyncError = await restorePreSnapshot(ctx, j, pre, reason);
  let tx: Transaction | undefined;
  try {
    tx = await readTx(ctx.paths, txid);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  if (tx) {
    tx.status = "promote_failed";
    tx.error = reason;
    tx.promotion = {
      ...(tx.promotion ?? {}),
      result: "promote_failed",
      error: reason,
      restored_snapshot: pre ?? null,
      resync_error: resyncError ?? null,
      ended_at: nowIso(),
    };
    await writeTx(ctx.paths, tx);
  }
  await dropWorkdir(ctx, txid);
  await j.finish();
  return resyncError;
}

/**
 * Completes a promotion interrupted while recording a lock conflict: the transaction ends
 * `needs_resolution` when its conflict report was written, else `promote_failed`.
 * Production was never touched on this path.
 */
async function finishConflict(ctx: GovContext, j: JournalHandle): Promise<void> {
  const txid = j.data.txid as string;
  const tx = await readTx(ctx.paths, txid);
  const report = await readConflict(ctx.paths, txid);
  if (report && report.created_at >= j.journal.started_at) {
    tx.status = "needs_resolution";
    tx.conflict_report = {
      path: conflictPath(ctx.paths, txid),
      nodes: report.nodes,
      packages: report.packages,
      summary: report.summary,
      created_at: report.created_at,
    };
  } else {
    tx.status = "promote_failed";
    tx.error = "interrupted while recording a dependency conflict";
  }
  tx.promotion = { ...(tx.promotion ?? {}), result: tx.status, ended_at: nowIso() };
  await writeTx(ctx.paths, tx);
  await dropWorkdir(ctx, txid);
  await j.finish();
  const pre = j.data.pre_snapshot as string | undefined;
  if (pre && (await snapshotExists(ctx.paths, pre))) await deleteSnapshot(ctx.paths, pre);
}

/**
 * Completes a promotion whose smoke test passed: plugin record, post-promote snapshot,
 * status `promoted`, candidate venv and workdir removed. Idempotent, so recovery can call it
 * after a crash at any of these steps.
 */
async function finishPromote(ctx: GovContext, j: JournalHandle): Promise<Transaction> {
  const txid = j.data.txid as string;
  const tx = await readTx(ctx.paths, txid);
  const group = nodeGroup(tx.node_id);
  if (j.journal.step === "smoke-passed") {
    const reg = await readPlugins(ctx.paths);
    const rec = reg.plugins[tx.node_id];
    if (rec) {
      const py = await readPyproject(ctx.paths.pyproject);
      rec.managed_deps = py.groups[group] ?? [];
      rec.pins = tx.resolution_pins;
      rec.last_txid = txid;
      if (typeof tx.node_commit === "string") rec.commit = tx.node_commit;
      rec.updated_at = nowIso();
    }
    // The other nodes of a multi-node transaction get their records the same way.
    for (const id of txNodeIds(tx).filter((n) => n !== tx.node_id && reg.plugins[n])) {
      const other = reg.plugins[id];
      other.managed_deps = (await readPyproject(ctx.paths.pyproject)).groups[nodeGroup(id)] ?? [];
      other.pins = tx.resolution_pins;
      other.last_txid = txid;
      other.updated_at = nowIso();
    }
    if (rec || txNodeIds(tx).length > 1) {
      await writePlugins(ctx.paths, reg);
    }
    await j.step("plugins-updated", { post_snapshot: newId("snap") });
  }
  let post = j.data.post_snapshot as string;
  if (j.journal.step === "plugins-updated") {
    const idx = await readSnapshotIndex(ctx.paths);
    if (!idx.snapshots.some((s) => s.id === post)) {
      post = (await createSnapshot(ctx.paths, "post-promote", txid, {
        retention: ctx.retention,
        id: post,
      })).id;
    }
    await j.step("snapshot-post");
  }
  tx.status = "promoted";
  tx.error = null;
  tx.promotion = {
    ...(tx.promotion ?? {}),
    result: "promoted",
    post_snapshot: post,
    ended_at: nowIso(),
  };
  await writeTx(ctx.paths, tx);
  await Deno.remove(candidatePath(ctx.paths, txid), { recursive: true }).catch(() => {});
  await dropWorkdir(ctx, txid);
  await j.finish();
  return tx;
}

/** Steps at which the truth files and `.venv-prod` have not been written yet. */
const BEFORE_TRUTH = ["begun", "snapshot-pre", "locked"];

/**
 * Whether an interrupted promotion never changed production: killed before the truth files
 * were copied, and (the copy of each file being atomic but the pair not) both still as the
 * pre-promote snapshot holds them.
 */
async function truthUntouched(ctx: GovContext, j: JournalHandle): Promise<boolean> {
  if (!BEFORE_TRUTH.includes(j.journal.step)) return false;
  const pre = j.data.pre_snapshot as string | undefined;
  if (!pre) return true; // the copy comes after the snapshot
  if (!(await snapshotExists(ctx.paths, pre))) return false;
  const meta = await readSnapshotMeta(ctx.paths, pre);
  for (const f of truthFiles(ctx.paths)) {
    const want = meta.files?.[f.name];
    if (want === undefined || want !== (await fileSha256(f.path))) return false;
  }
  return true;
}

/**
 * Ends a promotion interrupted before production changed: the transaction gets its status
 * back (so it can simply be promoted again), the promotion is recorded as interrupted, and
 * the pre snapshot, which equals the truth, goes.
 */
async function abandonPromote(ctx: GovContext, j: JournalHandle, why: string): Promise<void> {
  const txid = j.data.txid as string;
  const prev = j.data.prev_status;
  let tx: Transaction | undefined;
  try {
    tx = await readTx(ctx.paths, txid);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  if (tx) {
    if (prev === "completed" || prev === "resolved" || prev === "failed") tx.status = prev;
    tx.promotion = {
      ...(tx.promotion ?? {}),
      result: "interrupted",
      error: `${why}; nothing had changed`,
      pre_snapshot: null,
      ended_at: nowIso(),
    };
    await writeTx(ctx.paths, tx);
  }
  await dropWorkdir(ctx, txid);
  await j.finish();
  const pre = j.data.pre_snapshot as string | undefined;
  if (pre && (await snapshotExists(ctx.paths, pre))) await deleteSnapshot(ctx.paths, pre);
}

/** Steps after which an interrupted promotion is finished rather than undone. */
const PROMOTE_DONE = ["smoke-passed", "plugins-updated", "snapshot-post"];

/**
 * Recovery of an interrupted promotion: at the conflict step its report is recorded
 * (production unchanged); once the smoke test passed it is finished; before, it is undone
 * and the transaction becomes `promote_failed`.
 *
 * @example
 * ```ts
 * import { recoverPromote } from "@/gov/ops/promote.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { readJournal, resumeJournal } from "@/gov/state/journal.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const journal = await readJournal(ctx.paths);
 * if (journal?.op === "promote") {
 *   const j = resumeJournal(ctx.paths, journal, ctx.getenv);
 *   console.log(await recoverPromote(ctx, j, "interrupted"));
 * }
 * ```
 */
export const recoverPromote: RecoverJournal = async (ctx, j, why) => {
  const txid = String(j.data.txid);
  if (j.journal.step === "conflict") {
    await finishConflict(ctx, j);
    return `recorded the dependency conflict of ${txid} (production unchanged)`;
  }
  if (PROMOTE_DONE.includes(j.journal.step)) {
    await finishPromote(ctx, j);
    return `finished the interrupted promotion of ${txid} (its smoke test had passed)`;
  }
  if (await truthUntouched(ctx, j)) {
    await abandonPromote(ctx, j, why);
    return `the promotion of ${txid} was interrupted before production changed: nothing changed; it is ${
      String(j.data.prev_status)
    } again, promote it again with \`gov tx promote ${txid}\``;
  }
  const err = await undoPromote(ctx, j, why);
  return `undid the interrupted promotion of ${txid}${
    j.data.pre_snapshot ? ` (restored snapshot ${j.data.pre_snapshot})` : ""
  }; it is now promote_failed${err ? `; re-sync failed: ${err}` : ""}`;
};
