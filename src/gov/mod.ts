/**
 * Dependency governance: the entry points the CLI and the supervisor call, one per verb.
 * Each checks its arguments (bad input changes nothing, not even the lock file), then runs
 * its operation in a session: lock, recover what a killed gov left, run.
 *
 * The layers below only import downward:
 *
 * | layer          | holds                                                         | imports       |
 * |----------------|---------------------------------------------------------------|---------------|
 * | `state/`       | paths, file schemas, store, lock, journal, snapshots, pyproject, freeze | nothing of gov |
 * | `steps/`       | context, workdir, prod sync, smoke test, undo, guards, node code | `state/`   |
 * | `ops/`         | one file per verb, with its own finish/undo for recovery      | `steps/`, `state/` |
 * | `recovery.ts`  | reads the journal, calls the op's recovery handler            | `ops/`        |
 * | `session.ts`   | `withLockedEnv` / `withReadEnv`: lock, recover, run           | `recovery.ts` |
 * | `mod.ts`       | these entry points                                            | all of them   |
 *
 * A new operation: a file in `ops/` taking a {@linkcode GovContext}; if it is journaled,
 * its op name in `JOURNAL_OPS` (state/schema.ts) and a `recover...` handler in recovery.ts's
 * table; then its entry point here.
 *
 * @module
 */
import { storageErrorOf } from "../fs/errors.ts";
import type { Environment } from "../workspace/environment.ts";
import { validateName } from "../workspace/names.ts";
import { withLockedEnv, withReadEnv } from "./session.ts";
import { type GovContext, type GovOptions, makeContext } from "./steps/context.ts";
import { requireInitialised } from "./steps/guards.ts";
import type { NodeInfo } from "./steps/node_code.ts";
import type { ConflictReport, SnapshotMeta, Transaction } from "./state/schema.ts";
import { init, type InitOptions, type InitResult, prepareInit } from "./ops/init.ts";
import { checkNodeAdd, nodeAdd, type NodeSource } from "./ops/node_add.ts";
import { nodeList } from "./ops/node_list.ts";
import { nodeRemove, type RemoveResult } from "./ops/node_remove.ts";
import { promote, type PromoteOptions } from "./ops/promote.ts";
import { conflictOf, parsePin, resolve } from "./ops/resolve.ts";
import { rollback, type RollbackResult } from "./ops/rollback.ts";
import { snapshotInspect, snapshotList } from "./ops/snapshot_query.ts";
import type { EnvironmentStatus } from "./ops/status.ts";
import { sync, syncOptions, type SyncProgress } from "./ops/sync.ts";
import { txAbort } from "./ops/tx_abort.ts";
import { txInspect } from "./ops/tx_inspect.ts";
import { txList } from "./ops/tx_list.ts";
import { checkRegistryAdd, nodeAddRegistry } from "./ops/node_add_registry.ts";
import { parseManagerSnapshot, renderManagerSnapshot } from "./ops/snapshot_format.ts";
import {
  type ImportOptions,
  type ImportResult,
  planSnapshotImport,
  snapshotImport,
} from "./ops/snapshot_import.ts";
import {
  diffGovStates,
  exportContent,
  readGovState,
  type SnapshotDiff,
} from "./ops/snapshot_export.ts";
import { UsageError } from "../errors.ts";
import { beginTxRun, recordTxRun, testTxRun } from "./ops/tx_run.ts";

export type {
  ConflictReport,
  EnvironmentStatus,
  GovContext,
  GovOptions,
  ImportOptions,
  ImportResult,
  InitOptions,
  InitResult,
  NodeInfo,
  NodeSource,
  PromoteOptions,
  RemoveResult,
  RollbackResult,
  SnapshotDiff,
  SnapshotMeta,
  SyncProgress,
  Transaction,
};
export {
  CoreImpactError,
  NeedsResolutionError,
  NoSuchVersionError,
  PromoteFailedError,
  PromoteGateError,
  RemoveFailedError,
  RollbackFailedError,
} from "./errors.ts";
export { mergePins, parsePin, requireResolvable } from "./ops/resolve.ts";
export { type TxSummary, txSummary } from "./ops/tx_list.ts";
export { environmentStatus, listTransactionSummaries } from "./read.ts";

/**
 * Initialises (or re-checks) the environment in folder `dir` (`gov init`).
 *
 * @example
 * ```ts
 * import { initEnvironment } from "@/gov/mod.ts";
 *
 * const r = await initEnvironment("/srv/comfy/environments/prod", {});
 * console.log(r.prod, r.snapshot);
 * ```
 */
export async function initEnvironment(
  dir: string,
  opts: InitOptions,
  gopts: GovOptions = {},
): Promise<InitResult> {
  let plan;
  try {
    plan = await prepareInit(dir, opts, gopts);
  } catch (err) {
    throw storageErrorOf(err) ?? err;
  }
  return await withLockedEnv(plan.env, "init", gopts, (ctx) => init(ctx, plan, opts));
}

/**
 * Refuses an environment gov manages that was never initialised, or whose truth files are
 * damaged: what the supervisor's first sync would refuse, checked without the lock and
 * without writing, so a caller can refuse before it starts anything.
 *
 * @example
 * ```ts
 * import { checkInitialised } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * await checkInitialised(loadEnvironment("/srv/comfy/environments/prod"));
 * ```
 */
export async function checkInitialised(env: Environment): Promise<void> {
  if (env.hostManagedPython) return;
  await requireInitialised(makeContext(env));
}

/**
 * Brings `.venv-prod` in line with `uv.lock` before a start (the supervisor's call). A
 * no-op for an environment whose `[paths] python` is managed by the host. Holds the lock,
 * so it never races a promotion, and recovers first.
 *
 * @example
 * ```ts
 * import { syncEnvironment } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * await syncEnvironment(env, (step) => console.error(step));
 * ```
 */
export async function syncEnvironment(env: Environment, onStep?: SyncProgress): Promise<void> {
  if (env.hostManagedPython) return;
  await withLockedEnv(env, "sync", syncOptions(onStep), (ctx) => sync(ctx, onStep));
}

/**
 * Clones custom node `id` from `url` (at `opts.ref`) and registers it (`gov node add`).
 *
 * @example
 * ```ts
 * import { addNode } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * await addNode(env, "impact", "https://github.com/ltdrdata/ComfyUI-Impact-Pack", {});
 * ```
 */
export async function addNode(
  env: Environment,
  id: string,
  url: string,
  opts: { ref?: string },
  gopts: GovOptions = {},
): Promise<NodeInfo> {
  const src: NodeSource = { url, ref: opts.ref };
  checkNodeAdd(id, src);
  return await withLockedEnv(env, "node add", gopts, (ctx) => nodeAdd(ctx, id, src));
}

/**
 * The registered custom nodes, sorted by id (`gov node list`).
 *
 * @example
 * ```ts
 * import { listNodes } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * for (const n of await listNodes(env)) console.log(n.id, n.managed_deps);
 * ```
 */
export async function listNodes(env: Environment, gopts: GovOptions = {}): Promise<NodeInfo[]> {
  return await withReadEnv(env, "node list", gopts, nodeList);
}

/**
 * Removes custom node `id`, its packages and its record; parks its code, or deletes it with
 * `purgeCode` (`gov node remove`).
 *
 * @example
 * ```ts
 * import { removeNode } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * await removeNode(env, "impact", { purgeCode: true });
 * ```
 */
export async function removeNode(
  env: Environment,
  id: string,
  opts: { purgeCode?: boolean },
  gopts: GovOptions = {},
): Promise<RemoveResult> {
  validateName("custom node id", id);
  return await withLockedEnv(env, "node remove", gopts, (ctx) => nodeRemove(ctx, id, opts));
}

/**
 * Runs a transaction for custom node `nodeId` and returns its record (`gov tx run`). The
 * lock is held only to begin it and to record its end: the candidate's build and test
 * start in between can take minutes, and the supervisor's syncs must not wait for them.
 *
 * @example
 * ```ts
 * import { runTransaction } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * const tx = await runTransaction(env, "impact", { timeoutSec: 120 });
 * console.log(tx.status, tx.diff.added);
 * ```
 */
export async function runTransaction(
  env: Environment,
  nodeId: string,
  opts: { timeoutSec?: number },
  gopts: GovOptions = {},
): Promise<Transaction> {
  validateName("custom node id", nodeId);
  const begun = await withLockedEnv(env, "tx run", gopts, async (ctx) => ({
    ctx,
    ...(await beginTxRun(ctx, nodeId)),
  }));
  const { tx, failure } = await testTxRun(begun.ctx, begun.tx, begun.workdir, opts);
  // The record must be written: wait for a long promotion rather than leave it "running".
  await withLockedEnv(
    env,
    "tx run",
    { ...gopts, lockWaitMs: gopts.lockWaitMs ?? 10 * 60_000 },
    (ctx) => recordTxRun(ctx, tx),
  );
  // A conflict is a normal outcome with its own status; other failures are errors.
  if (failure) throw failure;
  return tx;
}

/**
 * Every transaction, oldest first (`gov tx list`).
 *
 * @example
 * ```ts
 * import { listTransactions } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const list = await listTransactions(loadEnvironment("/srv/comfy/environments/prod"));
 * ```
 */
export async function listTransactions(
  env: Environment,
  gopts: GovOptions = {},
): Promise<Transaction[]> {
  return await withReadEnv(env, "tx list", gopts, txList);
}

/**
 * One transaction (`gov tx inspect`).
 *
 * @example
 * ```ts
 * import { inspectTransaction } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * const tx = await inspectTransaction(env, "tx-20260101-120000-000-ab12");
 * ```
 */
export async function inspectTransaction(
  env: Environment,
  txid: string,
  gopts: GovOptions = {},
): Promise<Transaction> {
  validateName("transaction id", txid);
  return await withReadEnv(env, "tx inspect", gopts, (ctx) => txInspect(ctx, txid));
}

/**
 * Aborts a transaction that is not promoted (`gov tx abort`).
 *
 * @example
 * ```ts
 * import { abortTransaction } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * await abortTransaction(env, "tx-20260101-120000-000-ab12");
 * ```
 */
export async function abortTransaction(
  env: Environment,
  txid: string,
  gopts: GovOptions = {},
): Promise<Transaction> {
  validateName("transaction id", txid);
  return await withLockedEnv(env, "tx abort", gopts, (ctx) => txAbort(ctx, txid));
}

/**
 * Promotes transaction `txid` into production (`gov tx promote`).
 *
 * @example
 * ```ts
 * import { promoteTransaction } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * const tx = await promoteTransaction(env, "tx-20260101-120000-000-ab12", { approveCore: true });
 * ```
 */
export async function promoteTransaction(
  env: Environment,
  txid: string,
  opts: PromoteOptions,
  gopts: GovOptions = {},
): Promise<Transaction> {
  validateName("transaction id", txid);
  return await withLockedEnv(env, "tx promote", gopts, (ctx) => promote(ctx, txid, opts));
}

/**
 * The conflict report of a transaction (for showing before prompting), if any.
 *
 * @example
 * ```ts
 * import { conflictReport } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * const { report } = await conflictReport(env, "tx-20260101-120000-000-ab12");
 * ```
 */
export async function conflictReport(
  env: Environment,
  txid: string,
  gopts: GovOptions = {},
): Promise<{ tx: Transaction; report?: ConflictReport }> {
  validateName("transaction id", txid);
  return await withReadEnv(env, "resolve", gopts, (ctx) => conflictOf(ctx, txid));
}

/**
 * Applies `pins` to transaction `txid` and retries the lock (`gov resolve`).
 *
 * @example
 * ```ts
 * import { resolveTransaction } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * await resolveTransaction(env, "tx-20260101-120000-000-ab12", ["sortedcontainers==2.4.0"]);
 * ```
 */
export async function resolveTransaction(
  env: Environment,
  txid: string,
  pins: string[],
  gopts: GovOptions = {},
): Promise<Transaction> {
  validateName("transaction id", txid);
  const parsed = pins.map(parsePin);
  return await withLockedEnv(env, "resolve", gopts, (ctx) => resolve(ctx, txid, parsed));
}

/**
 * Rolls the environment back to snapshot `snapshotId` (`gov rollback`).
 *
 * @example
 * ```ts
 * import { rollbackTo } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * const r = await rollbackTo(env, "snap-20260101-120000-000-ab12");
 * ```
 */
export async function rollbackTo(
  env: Environment,
  snapshotId: string,
  gopts: GovOptions = {},
): Promise<RollbackResult> {
  validateName("snapshot id", snapshotId);
  return await withLockedEnv(env, "rollback", gopts, (ctx) => rollback(ctx, snapshotId));
}

/**
 * The snapshot index entries, oldest first (`gov snapshot list`).
 *
 * @example
 * ```ts
 * import { listSnapshots } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const snaps = await listSnapshots(loadEnvironment("/srv/comfy/environments/prod"));
 * ```
 */
export async function listSnapshots(
  env: Environment,
  gopts: GovOptions = {},
): Promise<SnapshotMeta[]> {
  return await withReadEnv(env, "snapshot list", gopts, snapshotList);
}

/**
 * A snapshot's meta.json plus its folder (`gov snapshot inspect`).
 *
 * @example
 * ```ts
 * import { inspectSnapshot } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * const { meta, dir, files } = await inspectSnapshot(env, "snap-20260101-120000-000-ab12");
 * ```
 */
export async function inspectSnapshot(
  env: Environment,
  id: string,
  gopts: GovOptions = {},
): Promise<
  { meta: SnapshotMeta; dir: string; files: Record<string, "ok" | "missing" | "edited"> }
> {
  validateName("snapshot id", id);
  return await withReadEnv(env, "snapshot inspect", gopts, (ctx) => snapshotInspect(ctx, id));
}

/**
 * Installs custom node `<registry-id>[@version]` from the Comfy Registry and registers it
 * (`gov node add <registry-id>[@version]`).
 *
 * @example
 * ```ts
 * import { addRegistryNode } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * const n = await addRegistryNode(env, "comfyui-kjnodes@1.1.0");
 * console.log(n.version, n.hash);
 * ```
 */
export async function addRegistryNode(
  env: Environment,
  spec: string,
  gopts: GovOptions = {},
): Promise<NodeInfo> {
  const src = checkRegistryAdd(spec);
  return await withLockedEnv(env, "node add", gopts, (ctx) => nodeAddRegistry(ctx, src));
}

/**
 * Imports a ComfyUI-Manager or comfy-cli snapshot file as one transaction, or with
 * `dryRun` says what would change and touches nothing (`gov snapshot import`). The file is
 * read and checked before the environment is locked.
 *
 * @example
 * ```ts
 * import { importSnapshot } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * const r = await importSnapshot(env, "snapshot.json", { dryRun: true });
 * for (const n of r.nodes) console.log(n.id, n.action);
 * ```
 */
export async function importSnapshot(
  env: Environment,
  file: string,
  opts: ImportOptions,
  gopts: GovOptions = {},
): Promise<ImportResult> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    throw new UsageError(`cannot read snapshot file ${file}: ${(err as Error).message}`, {
      hint: "pass the path of a snapshot saved by ComfyUI-Manager or comfy-cli",
    });
  }
  const snap = parseManagerSnapshot(text, file);
  opts = { ...opts, pins: (opts.pins ?? []).map(parsePin) };
  if (opts.dryRun) {
    return await withReadEnv(
      env,
      "snapshot import",
      gopts,
      (ctx) => planSnapshotImport(ctx, snap, file, opts),
    );
  }
  return await withLockedEnv(
    env,
    "snapshot import",
    gopts,
    (ctx) => snapshotImport(ctx, snap, file, opts),
  );
}

/**
 * Renders the current state, or gov snapshot `id`, as a snapshot ComfyUI-Manager
 * (`manager`, JSON) or comfy-cli (`comfy-cli`, YAML) restores (`gov snapshot export`).
 *
 * @example
 * ```ts
 * import { exportSnapshot } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * const { text } = await exportSnapshot(env, "current", "manager");
 * ```
 */
export async function exportSnapshot(
  env: Environment,
  id: string,
  format: "manager" | "comfy-cli",
  gopts: GovOptions = {},
): Promise<{ text: string; left_out: string[] }> {
  if (id !== "current") validateName("snapshot id", id);
  return await withReadEnv(env, "snapshot export", gopts, async (ctx) => {
    const { content, left_out } = await exportContent(ctx, await readGovState(ctx, id));
    return { text: renderManagerSnapshot(content, format), left_out };
  });
}

/**
 * Nodes and packages that differ from state `a` to state `b` (snapshot ids or `current`)
 * (`gov snapshot diff`).
 *
 * @example
 * ```ts
 * import { diffSnapshots } from "@/gov/mod.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * const d = await diffSnapshots(env, "snap-20260101-120000-000-ab12", "current");
 * console.log(d.packages.upgraded);
 * ```
 */
export async function diffSnapshots(
  env: Environment,
  a: string,
  b: string,
  gopts: GovOptions = {},
): Promise<SnapshotDiff> {
  for (const id of [a, b]) if (id !== "current") validateName("snapshot id", id);
  return await withReadEnv(
    env,
    "snapshot diff",
    gopts,
    async (ctx) => diffGovStates(ctx, await readGovState(ctx, a), await readGovState(ctx, b)),
  );
}
