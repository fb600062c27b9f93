/**
 * `gov tx run`: tries a custom node's requirements in a candidate venv
 * (`.venv-candidate/<txid>`) built from the current truth plus the node's group, starts
 * ComfyUI with it, and records the freezes, the diff, the core impact and the outcome in
 * `state/transactions/<txid>.json`. Production is never touched.
 *
 * Three phases: the environment lock is held only while the run is begun (checks, record,
 * workdir) and while the final record is written, so a long test start does not block the
 * supervisor's syncs. mod.ts runs them in that order.
 *
 * @module
 */
import { join } from "node:path";
import { GovError, NotFoundError } from "../../errors.ts";
import { exists, writeFileAtomic } from "../../fs/atomic.ts";
import { isPidAlive } from "../../process/run.ts";
import { UvConflictError } from "../../uv/errors.ts";
import { testStartComfyUI } from "../steps/comfyrun.ts";
import type { GovContext } from "../steps/context.ts";
import { requireInitialised, requireNodeCode } from "../steps/guards.ts";
import { coreImpact, corePackages, diffFreeze, freezeLines } from "../state/freeze.ts";
import { candidatePath } from "../state/paths.ts";
import { nodeGroup, readPyproject } from "../state/pyproject.ts";
import { nodeRequirements } from "../steps/requirements.ts";
import { inspectCode } from "../steps/node_code.ts";
import { extraGroups, txNodeIds } from "../steps/multi_node.ts";
import type { Transaction } from "../state/schema.ts";
import { newId, nowIso, readPlugins, readTx, writeTx } from "../state/store.ts";
import {
  applyNodePlan,
  dropWorkdir,
  freshWorkdir,
  listWorkdirs,
  recordConflict,
} from "../steps/workdir.ts";

/** Cap of ComfyUI output kept inside the transaction JSON (the whole log is in state/logs). */
export const OUTPUT_CAP = 64 * 1024;

function tail(text: string): string {
  return text.length <= OUTPUT_CAP ? text : `[... ${text.length - OUTPUT_CAP} bytes cut]\n` +
    text.slice(-OUTPUT_CAP);
}

/**
 * First phase of `gov tx run`, holding the lock: checks the node and writes the
 * transaction's `running` record and its workdir (which marks it running for recovery).
 *
 * @example
 * ```ts
 * import { beginTxRun, recordTxRun, testTxRun } from "@/gov/ops/tx_run.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const { tx, workdir } = await beginTxRun(ctx, "impact");
 * const { failure } = await testTxRun(ctx, tx, workdir, { timeoutSec: 120 });
 * await recordTxRun(ctx, tx);
 * console.log(tx.status, tx.diff.added, failure);
 * ```
 */
export async function beginTxRun(
  ctx: GovContext,
  nodeId: string,
): Promise<{ tx: Transaction; workdir: string }> {
  await requireInitialised(ctx);
  const reg = await readPlugins(ctx.paths);
  if (!reg.plugins[nodeId]) {
    throw new NotFoundError(
      "custom node",
      nodeId,
      "register it first with `gov node add <id> <git-url>` (see `gov node list`)",
    );
  }
  await requireNodeCode(ctx, nodeId);
  ctx.uv(); // uv must exist before anything is recorded.
  const txid = newId("tx");
  const workdir = await freshWorkdir(ctx, txid);
  const tx: Transaction = {
    txid,
    node_id: nodeId,
    started_at: nowIso(),
    ended_at: null,
    candidate_env: candidatePath(ctx.paths, txid),
    status: "running",
    pre_freeze: [],
    post_freeze: [],
    diff: { added: [], removed: [], changed: [] },
    core_impact: [],
    stdout: "",
    stderr: "",
    run_exit_code: null,
    conflict_report: null,
    resolution_pins: [],
    promotion_plan: null,
    promotion: null,
    pid: Deno.pid,
    group: nodeGroup(nodeId),
    requirements: [],
    error: null,
    run: null,
  };
  await writeTx(ctx.paths, tx);
  return { tx, workdir };
}

/**
 * Second phase, without the lock (a long test start must not block the supervisor's
 * syncs): builds the candidate venv and test-starts ComfyUI with it. Never throws: the
 * outcome is the transaction's status; `failure` is an error other than a dependency
 * conflict, for the caller to raise once the record is written.
 *
 * @example
 * ```ts
 * import { beginTxRun, recordTxRun, testTxRun } from "@/gov/ops/tx_run.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const { tx, workdir } = await beginTxRun(ctx, "impact");
 * const { failure } = await testTxRun(ctx, tx, workdir, { timeoutSec: 120 });
 * await recordTxRun(ctx, tx);
 * console.log(tx.status, tx.diff.added, failure);
 * ```
 */
export async function testTxRun(
  ctx: GovContext,
  begun: Transaction,
  workdir: string,
  opts: { timeoutSec?: number },
): Promise<{ tx: Transaction; failure?: unknown }> {
  let tx = begun;
  let failure: unknown;
  try {
    tx = await buildAndRun(ctx, tx, workdir, opts);
  } catch (err) {
    if (err instanceof UvConflictError) {
      tx.status = "needs_resolution";
      tx.conflict_report = await recordConflict(ctx, tx, err, "tx run");
      tx.error = err.message;
    } else {
      failure = err;
      tx.status = "failed";
      tx.error = (err as Error)?.message ?? String(err);
    }
  }
  tx.ended_at = nowIso();
  delete tx.pid;
  return { tx, failure };
}

/**
 * Last phase, holding the lock again: writes the final record and drops the workdir.
 *
 * @example
 * ```ts
 * import { beginTxRun, recordTxRun, testTxRun } from "@/gov/ops/tx_run.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const { tx, workdir } = await beginTxRun(ctx, "impact");
 * const { failure } = await testTxRun(ctx, tx, workdir, { timeoutSec: 120 });
 * await recordTxRun(ctx, tx);
 * console.log(tx.status, tx.diff.added, failure);
 * ```
 */
export async function recordTxRun(ctx: GovContext, tx: Transaction): Promise<void> {
  // `gov tx abort` refuses a running transaction whose gov is alive, so nobody else
  // wrote this record meanwhile; recovery would only have touched it had we died.
  const current = await readTx(ctx.paths, tx.txid);
  if (current.status !== "running") {
    throw new GovError(`transaction ${tx.txid} was changed to ${current.status} meanwhile`);
  }
  await writeTx(ctx.paths, tx);
  // The workdir marks a running transaction (see recoverTxRuns); its job is done.
  await dropWorkdir(ctx, tx.txid);
}

/**
 * Recovery of `tx run`: workdirs of `tx run` exist only while it runs; one whose gov is
 * gone means the run was killed: the transaction becomes `failed` ("interrupted").
 * Leftover workdirs of other operations go too (their journal was handled first).
 *
 * @example
 * ```ts
 * import { recoverTxRuns } from "@/gov/ops/tx_run.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * await recoverTxRuns(makeContext(loadEnvironment("/srv/comfy/environments/prod")));
 * ```
 */
export async function recoverTxRuns(ctx: GovContext): Promise<void> {
  const names = await listWorkdirs(ctx);
  for (const name of names) {
    if (!name.startsWith("tx-")) {
      // remove-<id> workdirs belong to a journaled removal, finished before this.
      await dropWorkdir(ctx, name);
      continue;
    }
    let tx;
    try {
      tx = await readTx(ctx.paths, name);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      // Killed between creating the workdir and writing the record: nothing to mark.
      await dropWorkdir(ctx, name);
      continue;
    }
    if (tx.status === "running") {
      if (tx.pid !== undefined && isPidAlive(tx.pid)) continue;
      tx.status = "failed";
      tx.error = `interrupted (gov pid ${tx.pid ?? "?"} died during the test run)`;
      tx.ended_at = nowIso();
      delete tx.pid;
      await writeTx(ctx.paths, tx);
      ctx.note(
        `recovery: transaction ${tx.txid} was interrupted during its test run; marked failed`,
      );
    }
    await dropWorkdir(ctx, name);
  }
}

/**
 * Which import failures count against the transaction: all of them, except registered
 * nodes still waiting for their own promotion (they declare requirements but their group is
 * not in the truth files yet, so they cannot import in any candidate but their own). Those
 * are recorded as ignored. A folder gov does not manage counts: gov cannot tell whether the
 * candidate broke it, and `--allow-failed-run` exists for breakage that predates it.
 */
async function judgeImportFailures(
  ctx: GovContext,
  nodeIds: string[],
  failures: string[],
): Promise<{ counted: string[]; ignored: string[] }> {
  const reg = await readPlugins(ctx.paths);
  const groups = (await readPyproject(ctx.paths.pyproject)).groups;
  const counted: string[] = [];
  const ignored: string[] = [];
  for (const f of failures) {
    const pending = !nodeIds.includes(f) && reg.plugins[f] !== undefined &&
      !(nodeGroup(f) in groups) &&
      (await nodeRequirements(join(ctx.paths.customNodesDir, f)).then(
        (r) => r.requirements.length > 0,
        () => false,
      ));
    (pending ? ignored : counted).push(f);
  }
  return { counted, ignored };
}

async function buildAndRun(
  ctx: GovContext,
  tx: Transaction,
  workdir: string,
  opts: { timeoutSec?: number },
): Promise<Transaction> {
  const uv = ctx.uv();
  const p = ctx.paths;
  const group = nodeGroup(tx.node_id);
  const nodeDir = join(p.customNodesDir, tx.node_id);
  const reqs = await nodeRequirements(nodeDir);
  // Lines uv never sees must not vanish silently: a node whose only line is an index URL
  // or `-e .` would otherwise "complete" with none of what it meant to install.
  tx.warnings = reqs.ignoredOptions.map((o) => `requirement line not passed to uv: ${o}`);
  for (const w of tx.warnings) ctx.note(w);
  tx.requirements = reqs.requirements;
  tx.requirements_sha256 = reqs.sha256;
  // The code this run tested: what the node's record says once it is promoted.
  tx.node_commit = (await inspectCode(ctx.env.config.tools.git ?? "git", nodeDir, null)).commit;
  const extra = await extraGroups(ctx, tx);
  if (tx.node_ids) {
    tx.node_requirements_sha256 = Object.fromEntries(
      extra.filter((g) => g.node).map((g) => [g.node, g.sha256]),
    );
  }
  const candidate = tx.candidate_env;
  await Deno.mkdir(p.candidatesDir, { recursive: true });
  const prodPython = join(p.prodVenv, "bin", "python");
  await uv.venv(candidate, {
    cwd: workdir,
    python: (await exists(prodPython)) ? prodPython : undefined,
    step: "uv venv (candidate)",
    seed: true,
  });
  await uv.sync({
    cwd: workdir,
    projectEnvironment: candidate,
    step: "uv sync (candidate, current truth)",
  });
  const py = join(candidate, "bin", "python");
  tx.pre_freeze = freezeLines(await uv.pipList(py, { cwd: workdir }));
  const plan = await applyNodePlan(ctx, workdir, {
    group,
    requirements: reqs.requirements,
    pins: tx.resolution_pins,
    projectEnvironment: candidate,
    extra,
  });
  await uv.sync({
    cwd: workdir,
    projectEnvironment: candidate,
    step: `uv sync (candidate + ${group})`,
  });
  tx.post_freeze = freezeLines(await uv.pipList(py, { cwd: workdir }));
  tx.diff = diffFreeze(tx.pre_freeze, tx.post_freeze);
  tx.core_impact = coreImpact(tx.diff, corePackages(ctx.env.config.tx.core_packages));
  tx.promotion_plan = {
    group,
    source: reqs.source,
    requirements: reqs.requirements,
    ignored_options: reqs.ignoredOptions,
    managed_deps: plan.managedDeps,
    overrides: plan.overrides,
    ...(extra.length ? { extra_groups: extra.map((g) => g.group) } : {}),
  };
  const timeoutSec = opts.timeoutSec ?? ctx.env.config.tx.timeout;
  const run = await testStartComfyUI({
    python: py,
    comfyuiDir: ctx.env.comfyuiDir,
    args: ctx.env.config.comfyui.args,
    timeoutMs: timeoutSec * 1000,
    onStep: ctx.onStep,
    env: ctx.childEnv,
  });
  const log = join(p.logsDir, `${tx.txid}.log`);
  await writeFileAtomic(
    log,
    `# gov tx run ${tx.txid}: ${py} main.py (port ${run.port})\n# --- stdout ---\n${run.stdout}\n# --- stderr ---\n${run.stderr}`,
  );
  tx.stdout = tail(run.stdout);
  tx.stderr = tail(run.stderr);
  tx.run_exit_code = run.exitCode;
  tx.run = {
    outcome: run.outcome,
    came_up: run.cameUp,
    timed_out: run.timedOut,
    timeout_sec: timeoutSec,
    duration_ms: run.durationMs,
    import_failures: run.importFailures,
    log,
  };
  const { counted, ignored } = await judgeImportFailures(ctx, txNodeIds(tx), run.importFailures);
  (tx.run as Record<string, unknown>).import_failures = counted;
  (tx.run as Record<string, unknown>).ignored_import_failures = ignored;
  const ok = run.exitCode === 0 && counted.length === 0;
  tx.status = ok ? "completed" : "failed";
  if (!ok) {
    tx.error = counted.length
      ? `custom node import failed: ${counted.join(", ")}`
      : run.outcome === "timeout"
      ? `ComfyUI did not come up within ${timeoutSec} s`
      : run.outcome === "missing-main"
      ? `ComfyUI's main.py is missing in ${ctx.env.comfyuiDir}`
      : `ComfyUI exited with code ${run.exitCode} before coming up`;
  }
  return tx;
}
