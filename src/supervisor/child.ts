/**
 * One ComfyUI under supervision: syncing its environment, checking its port, spawning it in
 * its own process group, watching it (health probes, `.cmd`, switch requests, exit) and
 * stopping the group (SIGTERM, grace period, SIGKILL).
 *
 * @module
 */
import { join } from "node:path";
import { exists, removeIfExists } from "../fs/atomic.ts";
import { ConfigError, GovError, UsageError } from "../errors.ts";
import { SpawnError } from "../process/run.ts";
import type { Environment } from "../workspace/environment.ts";
import { writeStartupState } from "../ipc/startup.ts";
import type { SupervisorCommandName } from "../ipc/cmd.ts";
import {
  HealthTracker,
  isListeningLine,
  type ListenTarget,
  listenTarget,
  nextProbeDelay,
} from "./health.ts";
import type { ChildHandle } from "./deps.ts";
import type { CommandMode, Running, SupervisorContext } from "./context.ts";

/** Why {@linkcode watch} returned. */
export type WatchOutcome =
  | { kind: "exit"; code: number; signal: Deno.Signal | null }
  | { kind: "healthy" }
  | { kind: "health_timeout" }
  | { kind: "cmd"; command: SupervisorCommandName }
  | { kind: "switch" }
  | { kind: "stop" };

/** A start that did not happen: why, and the configuration error behind it if any. */
export interface StartFailure {
  error: string;
  /** A configuration that cannot start ComfyUI at all (ends `gov run` at the first start). */
  config?: GovError;
}

/**
 * Syncs `env` and starts its ComfyUI.
 *
 * @example
 * ```ts ignore
 * const started = await startChild(ctx, env);
 * if ("error" in started) console.log(started.error);
 * ```
 */
export async function startChild(
  ctx: SupervisorContext,
  env: Environment,
  mode: "run" | "rollback" = "run",
): Promise<{ child: Running } | StartFailure> {
  const synced = await syncEnv(ctx, env, mode);
  if (synced.error) return { error: synced.error };
  if (ctx.stopReason) return { error: "stopping" };
  return await spawnChild(ctx, env);
}

/**
 * Brings the environment in line with its lock. A sync can take minutes (first wheels,
 * a promotion holding the environment's lock), so `.cmd` and stop requests are still
 * honoured meanwhile: shutdown and SIGTERM wait at most the grace period for the sync to
 * end, and `abort_switch` (mode `switch`) stops waiting at once. `error` says why ComfyUI
 * must not start; `aborted` that the switch was aborted.
 *
 * @example
 * ```ts ignore
 * const { error, aborted } = await syncEnv(ctx, env, "switch");
 * ```
 */
export async function syncEnv(
  ctx: SupervisorContext,
  env: Environment,
  mode: CommandMode,
): Promise<{ error?: string; aborted?: boolean }> {
  const { deps, settings } = ctx;
  await ctx.persist({ environment: env.name, healthy: false }, "syncing");
  const t0 = deps.now();
  ctx.emit("sync_started", `syncing ${env.name}`, { environment: env.name });
  let outcome: { err?: unknown } | undefined;
  const syncing = deps.sync(env, (step) => ctx.emit("sync_step", `${env.name}: ${step}`))
    .then(() => outcome = {}, (err) => outcome = { err });
  let stopDeadline: number | undefined;
  while (!outcome) {
    if (ctx.stopReason) {
      stopDeadline ??= deps.now() + settings.graceS * 1000;
      if (ctx.forced || deps.now() >= stopDeadline) {
        ctx.emit(
          "warning",
          `stopping without waiting any longer for the sync of ${env.name} (still running)`,
          { environment: env.name },
        );
        return { error: "stopping" };
      }
    } else {
      const cmd = await ctx.nextCommand(mode);
      if (cmd === "shutdown") ctx.requestStop("shutdown requested (.cmd)");
      else if (cmd === "abort_switch") {
        ctx.emit(
          "warning",
          `no longer waiting for the sync of ${env.name} (switch aborted); it finishes alone`,
          { environment: env.name },
        );
        return { aborted: true };
      } else if (cmd === "restart") {
        ctx.emit("warning", `restart ignored: ${env.name} is being synced and started`);
      }
    }
    await untilSettled(syncing, Math.min(settings.pollIntervalMs, 100));
  }
  if (outcome.err !== undefined) {
    const err = outcome.err;
    const hint = err instanceof GovError && err.hint ? ` (${err.hint})` : "";
    const msg = `${(err as Error)?.message ?? String(err)}${hint}`;
    ctx.emit("sync_failed", `syncing ${env.name} failed: ${msg}`, { environment: env.name });
    // A configuration error at the very first start will not heal by retrying: say so now.
    if (err instanceof GovError && err.exitCode === 2 && ctx.state.starts === 0) throw err;
    return { error: `sync of ${env.name} failed: ${msg}` };
  }
  ctx.emit("sync_done", `${env.name} in sync (${deps.now() - t0} ms)`, {
    environment: env.name,
    ms: deps.now() - t0,
  });
  return {};
}

/**
 * Starts ComfyUI of an already synced environment, once its port is free: a ComfyUI that
 * cannot bind its port would only crash, so a port another process holds is a failed start
 * naming the port and, where it can be found, the holder.
 *
 * @example
 * ```ts ignore
 * const started = await spawnChild(ctx, env);
 * ```
 */
export async function spawnChild(
  ctx: SupervisorContext,
  env: Environment,
): Promise<{ child: Running } | StartFailure> {
  const { deps, settings } = ctx;
  const args = ctx.opts.comfyuiArgs ?? settings.comfyuiArgs ?? env.config.comfyui.args;
  const target = listenTarget(args);
  await removeIfExists(ctx.rebootMarker);
  if (!(await exists(join(env.comfyuiDir, "main.py")))) {
    const err = new ComfyUIMissingError(env.comfyuiDir, env.configPath);
    ctx.emit("spawn_failed", err.message, { environment: env.name });
    return { error: err.message, config: err };
  }
  const held = await portHeld(ctx, target, env.python);
  if (held) return { error: held };
  const argv = ["main.py", ...args];
  // With the output piped, ComfyUI's "To see the GUI go to" line (printed once bound) asks
  // for a probe at once instead of at the next poll.
  let listening = () => {};
  const ready = new Promise<void>((r) => listening = r);
  const sink = ctx.opts.childOutput;
  const output = sink &&
    ((line: string, stream: "stdout" | "stderr") => {
      if (isListeningLine(line)) listening();
      sink(line, stream);
    });
  let handle: ChildHandle;
  try {
    handle = deps.spawn({
      command: env.python,
      args: argv,
      cwd: env.comfyuiDir,
      env: childEnv(ctx, env),
      output,
      guardGraceMs: settings.graceS * 1000,
    });
  } catch (err) {
    return spawnFailure(ctx, env, err);
  }
  const now = deps.now();
  const exitCtl = new AbortController();
  handle.status.then(() => exitCtl.abort(), () => exitCtl.abort());
  const child: Running = {
    handle,
    env,
    host: target.host,
    port: target.port,
    argv: [env.python, ...argv],
    startedAt: now,
    healthDeadline: now + settings.healthTimeoutS * 1000,
    nextProbeAt: now,
    healthy: false,
    tracker: new HealthTracker(
      deps.probe,
      { ...target, childPid: handle.pid, portWasBusy: false },
      settings.healthSuccesses,
    ),
    exitSignal: exitCtl.signal,
    ready: output &&
      ready.then(() => {
        // Once: a settled promise would wake every later pause at once.
        child.ready = undefined;
        child.nextProbeAt = Math.min(child.nextProbeAt, deps.now());
        if (child.probe) child.probeAgainAtOnce = true;
      }),
  };
  ctx.current = child;
  ctx.state.starts++;
  await ctx.persist({
    environment: env.name,
    child_pid: handle.pid,
    guard_pid: handle.guardPid,
    child_started_at: now / 1000,
    port: target.port,
    host: target.host,
    healthy: false,
    healthy_at: undefined,
  }, "waiting_health");
  await writeStartupState(ctx.ws.metadataDir, {
    python_executable: env.python,
    working_directory: env.comfyuiDir,
    argv: child.argv,
    comfyui_args: args,
    environment_name: env.name,
    workspace_root: ctx.ws.root,
    port: target.port,
    listen_host: target.host,
    supervisor_pid: Deno.pid,
    child_pid: handle.pid,
  });
  ctx.emit(
    "child_started",
    `started ComfyUI pid ${handle.pid} in ${env.name}: ${env.python} ${argv.join(" ")} ` +
      `(port ${target.port})`,
    { pid: handle.pid, environment: env.name, port: target.port, argv: child.argv },
  );
  return { child };
}

/**
 * `undefined` when `target` is free (after giving a closing holder a moment), else the
 * reason ComfyUI is not started, naming the port and the holder when it can be found.
 */
async function portHeld(
  ctx: SupervisorContext,
  target: ListenTarget,
  python: string,
): Promise<string | undefined> {
  const { deps } = ctx;
  const open = () => deps.portOpen(target.host, target.port, 500);
  if (!(await open())) return undefined;
  // The previous holder (our own ComfyUI a moment ago) may still be closing.
  const end = deps.now() + Math.min(ctx.settings.graceS, 5) * 1000;
  while (deps.now() < end && !ctx.stopReason) {
    await ctx.pause(100);
    if (!(await open())) return undefined;
  }
  const pids = await deps.portListenerPids(target.port, python);
  let who = "another process (its pid is not visible to this user)";
  if (pids?.length) {
    const info = await deps.processInfo(pids[0]);
    who = `pid ${pids.join(", ")}${info ? ` (${info.args.slice(0, 80)})` : ""}`;
  }
  const reason = `port ${target.port} on ${target.host} is held by ${who}`;
  ctx.emit(
    "port_busy",
    `${reason}; ComfyUI is not started until it is free (stop that process, or give ` +
      `ComfyUI another --port)`,
    { port: target.port, host: target.host, pids },
  );
  return reason;
}

function spawnFailure(ctx: SupervisorContext, env: Environment, err: unknown): StartFailure {
  const msg = err instanceof SpawnError
    ? `${err.message} (check [paths] python in ${env.configPath})`
    : String((err as Error)?.message ?? err);
  ctx.emit("spawn_failed", `cannot start ComfyUI in ${env.name}: ${msg}`, {
    environment: env.name,
  });
  let config: GovError | undefined;
  if (err instanceof SpawnError && env.hostManagedPython) {
    config = new ConfigError(
      env.configPath,
      "paths.python",
      `a Python that can start (${err.message})`,
    );
  } else if (err instanceof SpawnError) {
    config = new UsageError(`cannot start ComfyUI in ${env.name}: ${err.message}`, {
      hint: `\`gov status -e ${env.name}\` shows the state of its .venv-prod`,
    });
  }
  return { error: msg, config };
}

/**
 * ComfyUI's `main.py` is not where the environment says ComfyUI lives. Usually ComfyUI was
 * never installed there; a wrong `[paths] comfyui_dir` is the rarer cause, so the message
 * names the missing file first and the setting only as the other fix.
 *
 * @example
 * ```ts
 * throw new ComfyUIMissingError("/srv/comfy/environments/prod/ComfyUI", "/srv/comfy/environments/prod/config.toml");
 * ```
 */
export class ComfyUIMissingError extends UsageError {
  constructor(comfyuiDir: string, configPath: string) {
    super(`ComfyUI's main.py is missing in ${comfyuiDir}`, {
      hint:
        `install ComfyUI there (git clone https://github.com/comfyanonymous/ComfyUI ${comfyuiDir}), ` +
        `or point [paths] comfyui_dir in ${configPath} at the ComfyUI folder`,
    });
    this.name = "ComfyUIMissingError";
  }
}

function childEnv(ctx: SupervisorContext, env: Environment): Record<string, string> {
  return {
    COMFYGIT_SUPERVISED: "1",
    __COMFY_CLI_SESSION__: ctx.sessionPath,
    COMFYGIT_HOME: ctx.ws.root,
    GOV_WORKSPACE: ctx.ws.root,
    GOV_ENVIRONMENT: env.name,
    GOV_SUPERVISOR_PID: String(Deno.pid),
    // Piped output must reach the log line by line, not in 8 KiB blocks.
    ...(ctx.opts.childOutput ? { PYTHONUNBUFFERED: "1" } : {}),
  };
}

/**
 * Stops ComfyUI's process group: SIGTERM, the grace period, SIGKILL. An exited child only
 * has the stragglers of its group killed.
 *
 * @example
 * ```ts ignore
 * await stopChild(ctx, child, "shutdown requested");
 * ```
 */
export async function stopChild(ctx: SupervisorContext, child: Running, why: string) {
  if (child.handle.exited()) {
    await child.handle.terminate(0).catch(() => {});
    return;
  }
  const graceS = ctx.settings.graceS;
  await ctx.persist({}, "stopping");
  ctx.emit("stopping", `stopping ComfyUI pid ${child.handle.pid} (${why})`, {
    pid: child.handle.pid,
  });
  const { status, killed } = await child.handle.terminate(graceS * 1000);
  ctx.emit(
    "child_stopped",
    `ComfyUI pid ${child.handle.pid} stopped (exit ${status.code}${
      killed ? `, SIGKILL after ${graceS} s grace` : ""
    })`,
    { pid: child.handle.pid, code: status.code, killed },
  );
  await ctx.persist({ healthy: false, child_pid: undefined, guard_pid: undefined });
}

async function markHealthy(ctx: SupervisorContext, child: Running): Promise<void> {
  child.healthy = true;
  // A ComfyUI that answered ends a run of restart requests (see the loop's rate gate).
  ctx.earlyRestarts = [];
  const after = ctx.deps.now() - child.startedAt;
  // State first, so whoever reads the log line finds the state file already updated.
  await ctx.persist({ healthy: true, healthy_at: ctx.deps.now() / 1000 }, "running");
  ctx.emit(
    "healthy",
    `ComfyUI pid ${child.handle.pid} (${child.env.name}) answers on ${child.host}:${child.port} ` +
      `after ${(after / 1000).toFixed(2)} s`,
    { pid: child.handle.pid, environment: child.env.name, port: child.port, afterMs: after },
  );
}

/** What {@linkcode watch} waits for. */
export interface WatchMode {
  /** Return once ComfyUI is healthy (a switch's validation). */
  untilHealthy?: boolean;
  /** Return when a valid switch request is pending (and its lock taken). */
  acceptRequests?: boolean;
  /** Which `.cmd` commands apply. */
  phase?: "switch" | "rollback";
}

/**
 * Watches a started ComfyUI until it exits, a stop or `.cmd` arrives, a switch is requested
 * (with `acceptRequests`), it becomes healthy (with `untilHealthy`) or misses its health
 * deadline. Probes run in the background so `.cmd` is read while one waits for an answer.
 *
 * @example
 * ```ts ignore
 * const out = await watch(ctx, child, { untilHealthy: true, phase: "switch" });
 * ```
 */
export async function watch(
  ctx: SupervisorContext,
  child: Running,
  mode: WatchMode,
): Promise<WatchOutcome> {
  const { deps, settings } = ctx;
  while (true) {
    if (ctx.stopReason) return { kind: "stop" };
    if (child.handle.exited()) {
      const s = await child.handle.status;
      return { kind: "exit", code: s.code, signal: s.signal };
    }
    const cmd = await ctx.nextCommand(mode.phase ?? "run");
    if (cmd) return { kind: "cmd", command: cmd };
    if (mode.acceptRequests && await ctx.switchRequested()) return { kind: "switch" };
    if (child.probe?.result !== undefined) {
      const ok = child.probe.result;
      child.probe = undefined;
      // Once the port answers, the remaining answers of the streak are asked for at once;
      // so is the next one when ComfyUI said it listens while this probe was under way.
      child.nextProbeAt = child.probeAgainAtOnce ? deps.now() : deps.now() + nextProbeDelay({
        ok: child.tracker.streak > 0,
        sinceStartMs: deps.now() - child.startedAt,
        pollIntervalMs: settings.pollIntervalMs,
      });
      child.probeAgainAtOnce = false;
      if (ok) {
        if (child.handle.exited()) continue;
        await markHealthy(ctx, child);
      }
    }
    if (child.healthy) {
      if (mode.untilHealthy) return { kind: "healthy" };
    } else {
      if (deps.now() >= child.healthDeadline) return { kind: "health_timeout" };
      if (!child.probe && deps.now() >= child.nextProbeAt) {
        // Probed in the background: the loop keeps reading .cmd while a probe waits for a
        // slow answer (connect and GET time out only after seconds).
        const probe: Running["probe"] = { promise: child.tracker.probe() };
        probe.promise.then((ok) => probe.result = ok, () => probe.result = false);
        child.probe = probe;
      }
    }
    await ctx.refreshLock();
    const poll = settings.pollIntervalMs;
    const untilNextProbe = child.nextProbeAt - deps.now();
    const ms = child.probe || child.healthy ? poll : Math.max(1, untilNextProbe);
    await ctx.pause(ms, child, child.probe?.promise ?? (child.healthy ? undefined : child.ready));
  }
}

/** Waits until `p` settles or `ms` pass, whichever is first, leaving no timer behind. */
async function untilSettled(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise((r) => timer = setTimeout(r, ms))]);
  clearTimeout(timer);
}
