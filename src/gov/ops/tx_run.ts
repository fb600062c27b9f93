/**
 * `gov tx run`: tries a custom node's requirements in a candidate venv
 * (`.venv-candidate/<txid>`) built from the current truth plus the node's group, starts
 * ComfyUI with it, and records the freezes, the diff, the core impact and the outcome in
 * `state/transactions/<txid>.json`. Production is never touched.
 *
 * The environment lock is held only while the truth files are copied and while the final
 * record is written, so a long test start does not block the supervisor's syncs.
 *
 * @module
 */
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { ConfigError, GovError, NotFoundError } from "../errors.ts";
import { exists, writeFileAtomic } from "../fs/atomic.ts";
import type { Environment } from "../workspace/environment.ts";
import { validateName } from "../workspace/names.ts";
import { UvConflictError } from "../uv/errors.ts";
import { testStartComfyUI } from "./comfyrun.ts";
import { type GovContext, type GovOptions, withLockedEnv } from "./context.ts";
import { coreImpact, corePackages, diffFreeze, freezeLines } from "./freeze.ts";
import { candidatePath } from "./paths.ts";
import { nodeGroup, readPyproject } from "./pyproject.ts";
import { nodeRequirements } from "./requirements.ts";
import type { Transaction } from "./schema.ts";
import { newId, nowIso, readPlugins, readTx, writeTx } from "./store.ts";
import { applyNodePlan, dropWorkdir, freshWorkdir, recordConflict } from "./workdir.ts";

/** Cap of ComfyUI output kept inside the transaction JSON (the whole log is in state/logs). */
export const OUTPUT_CAP = 64 * 1024;

function tail(text: string): string {
  return text.length <= OUTPUT_CAP ? text : `[... ${text.length - OUTPUT_CAP} bytes cut]\n` +
    text.slice(-OUTPUT_CAP);
}

/**
 * Throws unless the environment was initialised (`gov init`) and its pyproject.toml and
 * uv.lock parse.
 *
 * @example
 * ```ts
 * await requireInitialised(ctx);
 * ```
 */
export async function requireInitialised(ctx: GovContext): Promise<void> {
  if (!(await exists(ctx.paths.pyproject)) || !(await exists(ctx.paths.lock))) {
    throw new GovError(`environment ${ctx.env.name} is not initialised (${ctx.paths.dir})`, {
      hint: "run `gov init` in it first",
    });
  }
  // Validate both before uv sees them: a hand-edited file gets an error naming it and the
  // field, not a uv parse error half-way through an operation.
  await readPyproject(ctx.paths.pyproject);
  const lockText = await Deno.readTextFile(ctx.paths.lock);
  let lock: Record<string, unknown>;
  try {
    lock = parseToml(lockText) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(
      ctx.paths.lock,
      "",
      `is not valid TOML (${(err as Error).message.split("\n")[0]})`,
    );
  }
  if (typeof lock.version !== "number") {
    throw new ConfigError(ctx.paths.lock, "version", "a number");
  }
}

/**
 * Throws unless the custom node's code folder exists (its requirements live there).
 *
 * @example
 * ```ts
 * await requireNodeCode(ctx, "impact");
 * ```
 */
export async function requireNodeCode(ctx: GovContext, nodeId: string): Promise<void> {
  const dir = join(ctx.paths.customNodesDir, nodeId);
  if (!(await exists(dir))) {
    throw new GovError(`the code of custom node ${nodeId} is missing (${dir})`, {
      hint: (await exists(`${dir}.disabled`))
        ? `it was disabled by \`gov node remove\`; remove and add it again with \`gov node add\``
        : `remove it with \`gov node remove ${nodeId}\` and add it again with \`gov node add\``,
    });
  }
}

/**
 * Runs a transaction for custom node `nodeId` and returns its record.
 *
 * @example
 * ```ts
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
  const begun = await withLockedEnv(env, "tx run", gopts, async (ctx) => {
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
    return { ctx, tx, workdir };
  });
  const { ctx, workdir } = begun;
  let tx = begun.tx;
  let failure: unknown;
  try {
    tx = await buildAndRun(ctx, tx, workdir, opts);
  } catch (err) {
    failure = err;
    if (err instanceof UvConflictError) {
      tx.status = "needs_resolution";
      tx.conflict_report = await recordConflict(ctx, tx, err, "tx run");
      tx.error = err.message;
    } else {
      tx.status = "failed";
      tx.error = (err as Error)?.message ?? String(err);
    }
  }
  tx.ended_at = nowIso();
  delete tx.pid;
  // The record must be written: wait for a long promotion rather than leave it "running".
  await withLockedEnv(env, "tx run", {
    ...gopts,
    lockWaitMs: gopts.lockWaitMs ?? 10 * 60_000,
  }, async (c) => {
    // `gov tx abort` refuses a running transaction whose gov is alive, so nobody else
    // wrote this record meanwhile; recovery would only have touched it had we died.
    const current = await readTx(c.paths, tx.txid);
    if (current.status !== "running") {
      throw new GovError(`transaction ${tx.txid} was changed to ${current.status} meanwhile`);
    }
    await writeTx(c.paths, tx);
    // The workdir marks a running transaction (see recovery.ts); its job is done.
    await dropWorkdir(c, tx.txid);
  });
  // A conflict is a normal outcome with its own status; other failures are errors.
  if (failure && !(failure instanceof UvConflictError)) throw failure;
  return tx;
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
  nodeId: string,
  failures: string[],
): Promise<{ counted: string[]; ignored: string[] }> {
  const reg = await readPlugins(ctx.paths);
  const groups = (await readPyproject(ctx.paths.pyproject)).groups;
  const counted: string[] = [];
  const ignored: string[] = [];
  for (const f of failures) {
    const pending = f !== nodeId && reg.plugins[f] !== undefined && !(nodeGroup(f) in groups) &&
      (await nodeRequirements(join(ctx.paths.customNodesDir, f))).requirements.length > 0;
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
  tx.requirements = reqs.requirements;
  tx.requirements_sha256 = reqs.sha256;
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
  const { counted, ignored } = await judgeImportFailures(ctx, tx.node_id, run.importFailures);
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
