/**
 * The supervisor loop behind `gov run`: keeps one ComfyUI of one workspace alive.
 *
 * ComfyUI's exit code says what to do next (ComfyGit's contract, `EXIT_ACTIONS` in
 * `phases.ts`): 42 resync and start again, 43 switch to the environment named in
 * `.switch_request.json`, 0 stop (unless ComfyUI-Manager left its `<session>.reboot` marker:
 * then restart), anything else is a crash: wait (10 s, doubling, capped) and restart, and
 * give up after too many crashes in a window so systemd's `Restart=` takes over. Between
 * exits it polls `.cmd` (restart, shutdown, abort_switch) and `.switch_request.json`, so
 * `gov switch` works whether or not ComfyUI itself exits 43.
 *
 * The loop is a table of steps ({@linkcode LOOP} in `phases.ts`); `run()` moves from step
 * to step and asserts each move against the table. Only the `restart` step (the rate gate)
 * and the `crash` step (count, back off, give up) lead back to `start`: whatever ended
 * ComfyUI, it is not restarted without passing the crash policy.
 *
 * The parts: `child.ts` (sync, port check, spawn, watch, stop), `switch.ts` (the switch
 * protocol), `start.ts` (choosing the environment, claiming the workspace, what a dead
 * supervisor left), `deps.ts` (the injected world), `context.ts` (what they share).
 *
 * @module
 */
import { exists, removeIfExists } from "../fs/atomic.ts";
import { GovError } from "../errors.ts";
import type { Environment } from "../workspace/environment.ts";
import { cleanupOrchestratorPid } from "../ipc/pid.ts";
import { cleanupSwitchRequest, writeSwitchStatus } from "../ipc/switch.ts";
import { crashDelayS, type SupervisorSettings } from "./settings.ts";
import {
  EXIT_CLEAN,
  EXIT_RESTART,
  EXIT_SWITCH_ENV,
  exitAction,
  LOOP,
  type LoopStep,
  transition,
} from "./phases.ts";
import {
  type Running,
  SupervisorContext,
  type SupervisorOptions,
  type SupervisorResult,
} from "./context.ts";
import { startChild, stopChild, watch } from "./child.ts";
import { performSwitch, type SwitchOutcome } from "./switch.ts";
import { claimWorkspace, clearLeftovers } from "./start.ts";

export { EXIT_CLEAN, EXIT_RESTART, EXIT_SWITCH_ENV };
export type { SupervisorOptions, SupervisorResult };
export { chooseStartEnvironment, type StartChoice } from "./start.ts";
export {
  type ChildHandle,
  defaultDeps,
  defaultSpawn,
  type SpawnRequest,
  type SupervisorDeps,
} from "./deps.ts";

/** One step of the loop with what it works on (kinds and moves: {@linkcode LOOP}). */
type Step =
  | { kind: "start"; why?: string }
  | { kind: "supervise"; child: Running }
  | { kind: "exited"; child: Running; code: number; signal: Deno.Signal | null }
  | { kind: "restart"; why: string; code: number; ended?: Running }
  | { kind: "crash"; code: number; reason: string }
  | { kind: "switch"; current?: Running; ended?: Running; first?: boolean }
  | { kind: "end"; result: SupervisorResult };

const LOCK_WAIT_MS = 15_000;

/**
 * One supervisor of one workspace. `run()` resolves when supervision ends; `stop()` (from a
 * signal handler) ends it: ComfyUI's process group gets SIGTERM, the grace period, SIGKILL.
 *
 * @example
 * ```ts
 * import { workspaceAt } from "../workspace/root.ts";
 * const sup = new Supervisor({ workspace: workspaceAt("/srv/comfy"), env: "prod" });
 * Deno.addSignalListener("SIGTERM", () => sup.stop("SIGTERM"));
 * const { exitCode } = await sup.run();
 * ```
 */
export class Supervisor {
  /** The settings in force (defaults, then `gov.toml`, then flags). */
  readonly settings: SupervisorSettings;
  private readonly ctx: SupervisorContext;
  private env!: Environment;
  private crashTimes: number[] = [];
  private pendingBackoffMs = 0;
  /** A switch a dead supervisor left mid-way, marked failed once ComfyUI runs. */
  private interrupted?: string;

  /** @param opts how `gov run` was configured */
  constructor(opts: SupervisorOptions) {
    this.ctx = new SupervisorContext(opts);
    this.settings = this.ctx.settings;
  }

  /** The `__COMFY_CLI_SESSION__` value given to ComfyUI; Manager's marker is this + `.reboot`. */
  get session(): string {
    return this.ctx.sessionPath;
  }

  /**
   * Asks the loop to stop: the child's group is terminated and `run()` resolves with exit
   * code 0. Safe to call from a signal handler, more than once: a second call SIGKILLs the
   * group at once instead of waiting out the grace period.
   */
  stop(reason = "stop requested"): void {
    const ctx = this.ctx;
    if (!ctx.stopReason) return ctx.requestStop(reason);
    // A second request (Ctrl-C again) means "now": skip the rest of the grace period.
    if (ctx.forced) return;
    ctx.forced = true;
    const child = ctx.current;
    if (child && !child.handle.exited() && child.handle.signalGroup) {
      ctx.emit("warning", `stop requested again: SIGKILL to ComfyUI pid ${child.handle.pid} now`);
      child.handle.signalGroup("SIGKILL");
    }
  }

  /**
   * Runs the supervisor until ComfyUI exits 0, a shutdown is requested, `stop()` is called,
   * or crashes exceed the limit. Throws {@linkcode GovError}s for problems found before
   * anything started (another supervisor is alive, unknown environment).
   */
  async run(): Promise<SupervisorResult> {
    const ctx = this.ctx;
    const claim = await claimWorkspace(ctx);
    this.env = claim.firstEnv;
    let result: SupervisorResult = { exitCode: 0, reason: "stopped" };
    try {
      await ctx.persist({ environment: claim.choice.name }, "starting");
      this.interrupted = await clearLeftovers(ctx, claim);
      result = await this.loop(await this.begin(claim.choice.request !== undefined));
    } catch (err) {
      result = {
        exitCode: err instanceof GovError ? err.exitCode : 1,
        reason: (err as Error)?.message ?? String(err),
      };
      throw err;
    } finally {
      await this.cleanup(result);
    }
    return result;
  }

  /** The first step: a pending switch request is carried out before anything starts. */
  private async begin(request: boolean): Promise<Step> {
    if (!request) return { kind: "start" };
    this.interrupted = undefined;
    if (await this.ctx.takeLock(LOCK_WAIT_MS)) return { kind: "switch", first: true };
    this.ctx.emit("warning", "the switch lock stayed held; starting without publishing progress");
    await cleanupSwitchRequest(this.ctx.ws.metadataDir);
    return { kind: "start" };
  }

  /** Moves from step to step, each move checked against {@linkcode LOOP}. */
  private async loop(first: Step): Promise<SupervisorResult> {
    let step = first;
    transition("loop", LOOP, "begin" as LoopStep, step.kind);
    while (step.kind !== "end") {
      const next = await this.act(step);
      transition("loop", LOOP, step.kind as LoopStep, next.kind);
      step = next;
    }
    return step.result;
  }

  private act(step: Exclude<Step, { kind: "end" }>): Promise<Step> {
    switch (step.kind) {
      case "start":
        return this.start(step.why);
      case "supervise":
        return this.supervise(step.child);
      case "exited":
        return this.exited(step.child, step.code, step.signal);
      case "restart":
        return Promise.resolve(this.restartGate(step));
      case "crash":
        return this.crash(step.code, step.reason);
      case "switch":
        return this.switchTo(step);
    }
  }

  private stopped(): Step {
    return {
      kind: "end",
      result: { exitCode: 0, reason: this.ctx.stopReason ?? "stop requested" },
    };
  }

  // -- the steps ------------------------------------------------------------------------------

  /** Syncs and starts the current environment. */
  private async start(why: string | undefined): Promise<Step> {
    const ctx = this.ctx;
    const env = this.env;
    if (ctx.stopReason) return this.stopped();
    if (why) {
      ctx.state.restarts++;
      ctx.emit("restart", `starting ${env.name} again (${why})`, {
        reason: why,
        environment: env.name,
      });
    }
    const started = await startChild(ctx, env);
    if (ctx.stopReason) {
      if ("child" in started) await stopChild(ctx, started.child, ctx.stopReason);
      return this.stopped();
    }
    if ("error" in started) {
      // A configuration that cannot start ComfyUI at all will not heal by retrying: at
      // the very first start, end with it (exit 2) instead of crash-looping.
      if (started.config && ctx.state.starts === 0) throw started.config;
      return { kind: "crash", code: 1, reason: started.error };
    }
    if (this.interrupted !== undefined) {
      const target = this.interrupted;
      this.interrupted = undefined;
      await writeSwitchStatus(ctx.ws.metadataDir, "failed", {
        target_env: target,
        error: `the supervisor stopped during the switch to ${target}; now running ${env.name}`,
      });
    }
    return { kind: "supervise", child: started.child };
  }

  /** Watches the running ComfyUI until it exits or something asks for a change. */
  private async supervise(child: Running): Promise<Step> {
    const ctx = this.ctx;
    const out = await watch(ctx, child, { acceptRequests: true });
    switch (out.kind) {
      case "stop":
        return this.stopped();
      case "cmd":
        await stopChild(ctx, child, `${out.command} requested`);
        if (out.command === "shutdown") {
          return { kind: "end", result: { exitCode: 0, reason: "shutdown requested (.cmd)" } };
        }
        // The operator's decision: not a restart request of ComfyUI, so not rate-counted.
        return { kind: "restart", why: "restart requested (.cmd)", code: 0 };
      case "switch":
        return { kind: "switch", current: child };
      case "health_timeout": {
        const secs = this.settings.healthTimeoutS;
        ctx.emit(
          "health_timeout",
          `ComfyUI in ${child.env.name} did not answer within ${secs} s (${
            child.tracker.lastReason ?? "no answer"
          })`,
          { environment: child.env.name, timeoutS: secs },
        );
        await stopChild(ctx, child, "health timeout");
        return { kind: "crash", code: 1, reason: `not healthy after ${secs} s` };
      }
      case "healthy":
        return { kind: "supervise", child };
      case "exit":
        return { kind: "exited", child, code: out.code, signal: out.signal };
    }
  }

  /** Acts on ComfyUI's exit code (`EXIT_ACTIONS` in `phases.ts`). */
  private async exited(child: Running, code: number, signal: Deno.Signal | null): Promise<Step> {
    const ctx = this.ctx;
    const env = child.env;
    // Stragglers of the group (ComfyUI's own subprocesses) must not outlive it.
    await child.handle.terminate(0).catch(() => {});
    const marker = code === EXIT_CLEAN && await exists(ctx.rebootMarker);
    const { meaning, action } = exitAction(code, marker);
    ctx.emit(
      "child_exited",
      `ComfyUI pid ${child.handle.pid} (${env.name}) exited with code ${code}${
        signal ? ` (${signal})` : ""
      }: ${meaning}`,
      { pid: child.handle.pid, code, signal, meaning, environment: env.name },
    );
    await ctx.persist({
      healthy: false,
      child_pid: undefined,
      guard_pid: undefined,
      last_exit: { code, signal, at: ctx.deps.now() / 1000, meaning },
    }, "restarting");
    switch (action) {
      case "stop":
        return { kind: "end", result: { exitCode: 0, reason: "ComfyUI exited 0" } };
      case "restart":
        if (marker) await removeIfExists(ctx.rebootMarker);
        return {
          kind: "restart",
          why: marker ? "ComfyUI-Manager reboot marker" : "ComfyUI exited 42",
          code,
          ended: child,
        };
      case "switch":
        if (!(await ctx.takeLock(LOCK_WAIT_MS))) {
          ctx.emit("warning", "ComfyUI exited 43 but the switch lock stays held; restarting");
          return { kind: "restart", why: "exit 43 without the switch lock", code, ended: child };
        }
        return { kind: "switch", ended: child };
      case "crash":
        return { kind: "crash", code, reason: `exit code ${code}` };
    }
  }

  /** Runs the switch protocol and goes on from where it left the supervisor. */
  private async switchTo(step: Extract<Step, { kind: "switch" }>): Promise<Step> {
    const res: SwitchOutcome = await performSwitch(
      this.ctx,
      step.current,
      step.first ? undefined : this.env,
    );
    if (res.stop) return { kind: "end", result: res.stop };
    this.env = res.env;
    if (res.crash) return { kind: "crash", code: res.crash.code, reason: res.crash.reason };
    if (res.child) return { kind: "supervise", child: res.child };
    // Nothing runs (no valid request after an exit 43, an unknown target): start again,
    // through the rate gate like any restart ComfyUI asked for.
    return { kind: "restart", why: "after a switch", code: EXIT_SWITCH_ENV, ended: step.ended };
  }

  // -- crash policy ---------------------------------------------------------------------------

  /**
   * The way back to start for everything but a crash. Restart requests (42, Manager's
   * marker, an exit 43 that led nowhere) from a ComfyUI that never answered would restart
   * it forever without a pause (a node asking for a restart on every boot): `crash_limit`
   * of them within `crash_window` count as one crash, so backoff and giving up apply.
   */
  private restartGate(step: Extract<Step, { kind: "restart" }>): Step {
    if (step.ended && !step.ended.healthy) {
      const ctx = this.ctx;
      const now = ctx.deps.now();
      const windowMs = this.settings.crashWindowS * 1000;
      ctx.earlyRestarts = [...ctx.earlyRestarts.filter((t) => now - t <= windowMs), now];
      const n = ctx.earlyRestarts.length;
      if (n >= this.settings.crashLimit) {
        ctx.earlyRestarts = [];
        return {
          kind: "crash",
          code: step.code,
          reason: `${n} restart requests within ${this.settings.crashWindowS} s before ` +
            `ComfyUI ever answered`,
        };
      }
    }
    return { kind: "start", why: step.why };
  }

  /**
   * Counts a crash: at `crash_limit` within `crash_window`, gives up with the child's code
   * (1 for a code 0); else waits the backoff, honouring stop, `.cmd` and switch requests.
   */
  private async crash(code: number, reason: string): Promise<Step> {
    const ctx = this.ctx;
    const now = ctx.deps.now();
    const windowMs = this.settings.crashWindowS * 1000;
    this.crashTimes = [...this.crashTimes, now].filter((t) => now - t <= windowMs);
    ctx.state.crashes++;
    const n = this.crashTimes.length;
    if (n >= this.settings.crashLimit) {
      const exitCode = code === 0 ? 1 : code;
      ctx.emit(
        "give_up",
        `giving up: ${n} crashes within ${this.settings.crashWindowS} s (last: ${reason}); ` +
          `exiting ${exitCode} so the service manager can take over`,
        { crashes: n, code: exitCode },
      );
      return {
        kind: "end",
        result: { exitCode, reason: `gave up after ${n} crashes (${reason})` },
      };
    }
    const delay = crashDelayS(this.settings, n);
    this.pendingBackoffMs = delay * 1000;
    ctx.emit(
      "crash",
      `crash ${n}/${this.settings.crashLimit} within ${this.settings.crashWindowS} s (${reason}); ` +
        `restarting in ${delay} s`,
      { crashes: n, code, delayS: delay },
    );
    await ctx.persist({}, "backoff");
    switch (await this.backoff()) {
      case "stop":
        return this.stopped();
      case "switch":
        return { kind: "switch" };
      case "restart":
        return { kind: "start", why: "restart requested (.cmd)" };
      case "elapsed":
        return { kind: "start", why: "after a crash" };
    }
  }

  /** Waits the pending crash delay while honouring stop, `.cmd` and switch requests. */
  private async backoff(): Promise<"elapsed" | "stop" | "restart" | "switch"> {
    const ctx = this.ctx;
    const end = ctx.deps.now() + this.pendingBackoffMs;
    this.pendingBackoffMs = 0;
    while (ctx.deps.now() < end) {
      if (ctx.stopReason) return "stop";
      const cmd = await ctx.nextCommand("run");
      if (cmd === "shutdown") {
        ctx.requestStop("shutdown requested (.cmd)");
        return "stop";
      }
      if (cmd === "restart") return "restart";
      if (await ctx.switchRequested()) return "switch";
      await ctx.pause(Math.min(this.settings.pollIntervalMs, end - ctx.deps.now()));
    }
    return ctx.stopReason ? "stop" : "elapsed";
  }

  // -- the end --------------------------------------------------------------------------------

  private async cleanup(result: SupervisorResult): Promise<void> {
    const ctx = this.ctx;
    if (ctx.current && !ctx.current.handle.exited()) {
      await stopChild(ctx, ctx.current, result.reason);
    } else if (ctx.current) {
      await ctx.current.handle.terminate(0).catch(() => {});
    }
    if (ctx.switchInFlight) {
      await writeSwitchStatus(ctx.ws.metadataDir, "aborted", {
        target_env: ctx.switchInFlight.target,
        source_env: ctx.switchInFlight.source,
        error: `the supervisor stopped during the switch (${result.reason})`,
      }).catch(() => {});
    }
    await ctx.releaseLock();
    await removeIfExists(ctx.rebootMarker).catch(() => {});
    await cleanupOrchestratorPid(ctx.ws.metadataDir, { onlyIf: Deno.pid }).catch(() => {});
    await ctx.persist({
      running: false,
      healthy: false,
      child_pid: undefined,
      guard_pid: undefined,
      stop_reason: result.reason,
      exit_code: result.exitCode,
    }, "stopped");
    ctx.emit("stopped", `supervisor stopped: ${result.reason} (exit ${result.exitCode})`, {
      exitCode: result.exitCode,
    });
  }
}
