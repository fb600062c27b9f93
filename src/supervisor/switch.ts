/**
 * The switch protocol: ComfyUI exits 43 (or `gov switch` leaves a request while it runs),
 * and under the switch lock the supervisor moves from the source environment to the target,
 * publishing each state in `.switch_status.json`:
 *
 * preparing → syncing → starting → validating → complete, or on a failure or
 * `abort_switch` → rolling_back (the source started again) → failed | aborted.
 *
 * {@linkcode SWITCH_STATES} is the table of allowed moves; every write is checked against
 * it. A stop request during a switch ends it `aborted`.
 *
 * @module
 */
import { GovError } from "../errors.ts";
import type { Environment } from "../workspace/environment.ts";
import { readSwitchRequest, type SwitchState, writeSwitchStatus } from "../ipc/switch.ts";
import { SWITCH_STATES, transition } from "./phases.ts";
import type { Running, SupervisorContext, SupervisorResult } from "./context.ts";
import { spawnChild, startChild, stopChild, syncEnv, watch } from "./child.ts";

/** Where a switch left the supervisor. */
export interface SwitchOutcome {
  /** The environment now current (target, or source after a rollback). */
  env: Environment;
  /** The ComfyUI running now, if any. */
  child?: Running;
  /** The environment left running failed too: apply the crash policy. */
  crash?: { code: number; reason: string };
  /** The supervisor was stopped during the switch. */
  stop?: SupervisorResult;
}

/**
 * Carries out the pending switch request. Called with the switch lock held; releases it.
 * `current` is the running child (stopped once the request is known to be valid), `env`
 * the environment to roll back to (none at the first start).
 *
 * @example
 * ```ts ignore
 * const outcome = await performSwitch(ctx, running, env);
 * ```
 */
export async function performSwitch(
  ctx: SupervisorContext,
  current: Running | undefined,
  env: Environment | undefined,
): Promise<SwitchOutcome> {
  try {
    return await new Switch(ctx).run(current, env);
  } finally {
    ctx.switchInFlight = undefined;
    await ctx.releaseLock();
  }
}

/** One switch, its state guarded by {@linkcode SWITCH_STATES}. */
class Switch {
  private state: SwitchState = "idle";
  private target = "";
  private source?: string;

  constructor(private readonly ctx: SupervisorContext) {}

  /** Publishes the next state of this switch. */
  private async to(next: SwitchState, extra: Record<string, unknown> = {}): Promise<void> {
    this.state = transition("switch state", SWITCH_STATES, this.state, next);
    await writeSwitchStatus(this.ctx.ws.metadataDir, next, {
      target_env: this.target,
      source_env: this.source,
      supervisor_pid: Deno.pid,
      ...extra,
    });
    if (!["complete", "failed", "aborted"].includes(next)) {
      this.ctx.emit("switch_progress", `switch to ${this.target}: ${next}`, {
        state: next,
        target: this.target,
      });
    }
  }

  /** `.cmd` between the steps: shutdown stops, abort_switch aborts, the rest continues. */
  private async checkpoint(rollingBack: boolean): Promise<"continue" | "abort" | "stop"> {
    const ctx = this.ctx;
    if (ctx.stopReason) return "stop";
    const cmd = await ctx.nextCommand(rollingBack ? "rollback" : "switch");
    if (cmd === "shutdown") {
      ctx.requestStop("shutdown requested (.cmd)");
      return "stop";
    }
    return cmd === "abort_switch" ? "abort" : "continue";
  }

  /** The supervisor is stopping: end the switch `aborted`. */
  private async stopped(target: Environment, child?: Running): Promise<SwitchOutcome> {
    const ctx = this.ctx;
    if (child) await stopChild(ctx, child, ctx.stopReason ?? "stopping");
    await this.to("aborted", {
      error: `the supervisor stopped during the switch (${ctx.stopReason})`,
    });
    ctx.switchInFlight = undefined;
    return { env: target, stop: { exitCode: 0, reason: ctx.stopReason ?? "stop requested" } };
  }

  async run(current: Running | undefined, env: Environment | undefined): Promise<SwitchOutcome> {
    const ctx = this.ctx;
    const keep = (): SwitchOutcome => ({ env: env!, child: current });
    const req = await readSwitchRequest(ctx.ws.metadataDir);
    if (!req) {
      ctx.emit("warning", "no valid switch request found; keeping the current environment");
      if (!env) throw new GovError("no environment to run");
      return keep();
    }
    this.target = req.target_env;
    let source: Environment | undefined = env;
    if (!source && req.source_env && req.source_env !== this.target) {
      try {
        source = ctx.deps.loadEnvironment(ctx.ws, req.source_env);
      } catch {
        source = undefined;
      }
    }
    this.source = source?.name;
    ctx.emit(
      "switch_requested",
      `switch requested: ${this.source ?? "(nothing running)"} -> ${this.target}`,
      { target: this.target, source: this.source },
    );
    let target: Environment;
    try {
      target = ctx.deps.loadEnvironment(ctx.ws, this.target);
    } catch (err) {
      const msg = (err as Error).message;
      await this.to("failed", { error: msg });
      ctx.emit("switch_failed", `switch to ${this.target} refused: ${msg}`, {
        target: this.target,
      });
      if (!env) throw err;
      return keep();
    }
    if (current && !current.handle.exited() && env && env.name === this.target) {
      await this.to("complete", { message: `${this.target} is already running` });
      ctx.emit("switch_complete", `${this.target} is already running; nothing to do`);
      return keep();
    }
    ctx.switchInFlight = { target: this.target, source: this.source };
    await ctx.persist({}, "switching");
    await this.to("preparing");
    if (current) await stopChild(ctx, current, `switching to ${this.target}`);
    const tried = await this.tryTarget(target);
    if ("outcome" in tried) return tried.outcome;
    if ((await this.checkpoint(true)) === "stop") return await this.stopped(target);
    return await this.rollBack(target, source, tried);
  }

  /** Syncs, starts and validates the target; a failure or abort says why. */
  private async tryTarget(
    target: Environment,
  ): Promise<{ outcome: SwitchOutcome } | { aborted: boolean; error?: string }> {
    const ctx = this.ctx;
    let error: string | undefined;
    let aborted = false;
    let child: Running | undefined;
    await this.to("syncing");
    let p = await this.checkpoint(false);
    if (p === "stop") return { outcome: await this.stopped(target) };
    if (p === "abort") aborted = true;
    else {
      const synced = await syncEnv(ctx, target, "switch");
      error = synced.error;
      p = synced.aborted ? "abort" : await this.checkpoint(!!error);
      if (p === "stop" || ctx.stopReason) return { outcome: await this.stopped(target) };
      if (p === "abort") aborted = true;
      else if (!error) {
        await this.to("starting");
        const started = await spawnChild(ctx, target);
        if ("error" in started) error = started.error;
        else child = started.child;
      }
    }
    if (ctx.stopReason) return { outcome: await this.stopped(target, child) };
    if (!child) return { aborted, error };
    await this.to("validating");
    const out = await watch(ctx, child, { untilHealthy: true, phase: "switch" });
    if (out.kind === "healthy") {
      await this.to("complete", {
        message: `switched to ${this.target}`,
        port: child.port,
        child_pid: child.handle.pid,
      });
      ctx.emit("switch_complete", `switched ${this.source ?? "(nothing)"} -> ${this.target}`, {
        target: this.target,
        source: this.source,
      });
      ctx.switchInFlight = undefined;
      return { outcome: { env: target, child } };
    }
    if (out.kind === "stop") return { outcome: await this.stopped(target, child) };
    if (out.kind === "cmd" && out.command === "shutdown") {
      ctx.requestStop("shutdown requested (.cmd)");
      return { outcome: await this.stopped(target, child) };
    }
    if (out.kind === "cmd" && out.command === "abort_switch") aborted = true;
    else if (out.kind === "exit") {
      await child.handle.terminate(0).catch(() => {});
      error = `ComfyUI in ${this.target} exited with code ${out.code} before answering`;
    } else {
      error = `ComfyUI in ${this.target} did not answer within ${ctx.settings.healthTimeoutS} s`;
    }
    await stopChild(ctx, child, aborted ? "switch aborted" : "switch failed");
    return { aborted, error };
  }

  /** Starts the source again after a failed or aborted switch. */
  private async rollBack(
    target: Environment,
    source: Environment | undefined,
    failed: { aborted: boolean; error?: string },
  ): Promise<SwitchOutcome> {
    const ctx = this.ctx;
    const { aborted } = failed;
    const why = aborted ? "aborted by request" : failed.error ?? "unknown error";
    ctx.emit(
      aborted ? "switch_aborted" : "switch_failed",
      `switch to ${this.target} ${aborted ? "aborted" : `failed: ${why}`}`,
      { target: this.target, error: why },
    );
    const endState: SwitchState = aborted ? "aborted" : "failed";
    if (!source) {
      await this.to(endState, { error: `${why}; no environment to roll back to` });
      ctx.switchInFlight = undefined;
      return { env: target, crash: { code: 1, reason: why } };
    }
    await this.to("rolling_back", { error: why, message: `rolling back to ${source.name}` });
    const back = await startChild(ctx, source, "rollback");
    if (ctx.stopReason) return await this.stopped(target, "child" in back ? back.child : undefined);
    if ("error" in back) {
      await this.to(endState, {
        error: `${why}; rollback to ${source.name} failed too: ${back.error}`,
      });
      ctx.switchInFlight = undefined;
      return { env: source, crash: { code: 1, reason: back.error } };
    }
    const out = await watch(ctx, back.child, { untilHealthy: true, phase: "rollback" });
    if (out.kind === "stop" || (out.kind === "cmd" && out.command === "shutdown")) {
      if (out.kind === "cmd") ctx.requestStop("shutdown requested (.cmd)");
      return await this.stopped(target, back.child);
    }
    if (out.kind !== "healthy") {
      const detail = out.kind === "exit" ? `exited with code ${out.code}` : "did not answer";
      await stopChild(ctx, back.child, "rollback failed");
      await this.to(endState, {
        error: `${why}; rollback to ${source.name} failed too: ComfyUI ${detail}`,
      });
      ctx.switchInFlight = undefined;
      return {
        env: source,
        crash: { code: out.kind === "exit" ? out.code : 1, reason: `rollback ${detail}` },
      };
    }
    await this.to(endState, {
      error: why,
      rolled_back_to: source.name,
      message: aborted
        ? `switch to ${this.target} aborted; ${source.name} is running again`
        : `switch to ${this.target} failed; rolled back to ${source.name}`,
    });
    ctx.switchInFlight = undefined;
    return { env: source, child: back.child };
  }
}
