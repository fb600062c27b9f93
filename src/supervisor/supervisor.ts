/**
 * The supervisor loop behind `gov run`: keeps one ComfyUI of one workspace alive.
 *
 * ComfyUI's exit code says what to do next (ComfyGit's contract): 42 resync and start
 * again, 43 switch to the environment named in `.switch_request.json`, 0 stop (unless
 * ComfyUI-Manager left its `<session>.reboot` marker: then restart), anything else is a
 * crash: wait (10 s, doubling, capped) and restart, and give up after too many crashes in a
 * window so systemd's `Restart=` takes over. Between exits it polls `.cmd` (restart,
 * shutdown, abort_switch) and `.switch_request.json`, so `gov switch` works whether or not
 * ComfyUI itself exits 43.
 *
 * Everything the loop touches outside the file system is injected ({@linkcode SupervisorDeps})
 * so tests can drive it with fake children and probes; the defaults are the real thing.
 *
 * @module
 */
import { join } from "node:path";
import { exists, removeIfExists } from "../fs/atomic.ts";
import { ConfigError, GovError, UsageError } from "../errors.ts";
import { syncEnvironment } from "../gov/mod.ts";
import { isPidAlive, signalPid, SpawnError, spawnProcess } from "../process/run.ts";
import { type Environment, workspaceEnvironment } from "../workspace/environment.ts";
import { listEnvironments, type Workspace } from "../workspace/root.ts";
import { type MetadataPaths, metadataPaths } from "../ipc/files.ts";
import { claimOrchestratorPid, cleanupOrchestratorPid, readOrchestratorPid } from "../ipc/pid.ts";
import { acquireSwitchLock, refreshSwitchLock, releaseSwitchLock } from "../ipc/lock.ts";
import {
  cleanupSwitchRequest,
  isActiveSwitchState,
  peekSwitchRequest,
  readSwitchRequest,
  readSwitchStatus,
  type SwitchRequest,
  type SwitchState,
  writeSwitchStatus,
} from "../ipc/switch.ts";
import { readStartupState, writeStartupState } from "../ipc/startup.ts";
import { clearCommand, type SupervisorCommandName, takeCommand } from "../ipc/cmd.ts";
import type { SupervisorEvent, SupervisorEventType } from "./events.ts";
import { type HealthProbe, HealthTracker, httpHealthProbe, listenTarget } from "./health.ts";
import { portListenerPids, type ProcessInfo, processInfo } from "./procinfo.ts";
import { crashDelayS, DEFAULT_SUPERVISOR_SETTINGS, type SupervisorSettings } from "./settings.ts";
import {
  readSupervisorState,
  type SupervisorPhase,
  type SupervisorState,
  writeSupervisorState,
} from "./state.ts";
import { isPortOpen } from "../net/port.ts";

/** Exit codes of ComfyUI under supervision (ComfyGit's contract). */
export const EXIT_CLEAN = 0;
/** ComfyUI asks to be resynced and started again. */
export const EXIT_RESTART = 42;
/** ComfyUI asks to switch to the environment in `.switch_request.json`. */
export const EXIT_SWITCH_ENV = 43;

/** A started ComfyUI as the loop sees it. `SpawnedProcess` satisfies it. */
export interface ChildHandle {
  pid: number;
  /** Pid of the orphan guard watching the child's group, when one runs. */
  guardPid?: number;
  status: Promise<{ code: number; signal: Deno.Signal | null }>;
  exited(): boolean;
  /** Sends a signal to the child's whole process group (SIGKILL on a second stop request). */
  signalGroup?(signal: Deno.Signal): void;
  /** SIGTERM to the group, `graceMs`, SIGKILL; also kills stragglers of an exited leader. */
  terminate(
    graceMs: number,
  ): Promise<{ status: { code: number; signal: Deno.Signal | null }; killed: boolean }>;
}

/** What the loop asks its spawn function to start. */
export interface SpawnRequest {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Line sink for the child's output; `undefined` = inherit gov's stdout/stderr. */
  output?: (line: string, stream: "stdout" | "stderr") => void;
  /**
   * Grace period of the orphan guard that ends the child's group should gov die without
   * stopping it (`command` is ComfyUI's Python, which also runs the guard).
   */
  guardGraceMs?: number;
}

/** Everything the loop needs from the outside world. */
export interface SupervisorDeps {
  spawn: (req: SpawnRequest) => ChildHandle;
  sync: (env: Environment, onStep?: (step: string) => void) => Promise<void>;
  probe: HealthProbe;
  /** Milliseconds since the epoch. */
  now: () => number;
  pidAlive: (pid: number) => boolean;
  processInfo: (pid: number) => Promise<ProcessInfo | undefined>;
  portListenerPids: (port: number) => Promise<number[] | undefined>;
  loadEnvironment: (ws: Workspace, name: string) => Environment;
}

/**
 * The real spawn: `spawnProcess` (own session and process group, watched by an orphan guard
 * when `req.guardGraceMs` is set), output inherited or piped line by line into `req.output`.
 *
 * @example
 * ```ts
 * import { defaultSpawn } from "@/supervisor/supervisor.ts";
 * declare const cwd: string;
 *
 * const child = defaultSpawn({ command: "python3", args: ["main.py"], cwd, env: {} });
 * ```
 */
export function defaultSpawn(req: SpawnRequest): ChildHandle {
  const mode = req.output ? "piped" : "inherit";
  const p = spawnProcess(req.command, req.args, {
    cwd: req.cwd,
    env: req.env,
    stdout: mode,
    stderr: mode,
    orphanGuard: req.guardGraceMs === undefined
      ? undefined
      : { python: req.command, graceMs: req.guardGraceMs },
  });
  if (req.output) {
    pumpLines(p.process.stdout, (l) => req.output!(l, "stdout"));
    pumpLines(p.process.stderr, (l) => req.output!(l, "stderr"));
  }
  return p;
}

function pumpLines(stream: ReadableStream<Uint8Array> | null, sink: (line: string) => void) {
  if (!stream) return;
  (async () => {
    const dec = new TextDecoder();
    let pending = "";
    for await (const chunk of stream) {
      pending += dec.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const l of lines) sink(l);
    }
    pending += dec.decode();
    if (pending) sink(pending);
  })().catch(() => {});
}

/**
 * The real dependencies: process spawning, uv sync, HTTP health probe, wall clock.
 *
 * @example
 * ```ts
 * const deps = { ...defaultDeps(), sync: () => Promise.resolve() };
 * ```
 */
export function defaultDeps(): SupervisorDeps {
  return {
    spawn: defaultSpawn,
    sync: syncEnvironment,
    probe: httpHealthProbe(),
    now: Date.now,
    pidAlive: isPidAlive,
    processInfo,
    portListenerPids,
    loadEnvironment: workspaceEnvironment,
  };
}

/** How `gov run` was configured. */
export interface SupervisorOptions {
  workspace: Workspace;
  /** `--env`: environment to start (else a pending switch request, the remembered one, ...). */
  env?: string;
  /** ComfyUI arguments after `--` (else `[supervisor] comfyui_args`, else the env's own). */
  comfyuiArgs?: string[];
  settings?: Partial<SupervisorSettings>;
  /** Receives every event (the CLI prints them). */
  onEvent?: (e: SupervisorEvent) => void;
  /** Receives ComfyUI's output lines; absent = ComfyUI inherits gov's stdout/stderr. */
  childOutput?: (line: string, stream: "stdout" | "stderr") => void;
  /** Recorded in the state file so `gov status` can point at the log. */
  logFile?: string;
  deps?: Partial<SupervisorDeps>;
}

/** How the supervisor ended. */
export interface SupervisorResult {
  /** Exit code for `gov run`: 0 for a clean stop, the child's code after giving up. */
  exitCode: number;
  reason: string;
}

/** Where the first environment came from. */
export interface StartChoice {
  name: string;
  from: "flag" | "request" | "remembered" | "default" | "only";
  /** The pending switch request the start fulfils. */
  request?: SwitchRequest;
  /** A pending request the start does not fulfil (discarded with a warning). */
  discarded?: SwitchRequest;
}

/**
 * Decides which environment `gov run` starts: `--env`; else a pending switch request
 * (written by `gov switch` when no supervisor ran); else the environment that was active
 * last time (`.startup_state.json`); else `[supervisor] default_env`; else the only
 * environment. Throws a {@linkcode UsageError} listing the choices when none applies.
 *
 * @example
 * ```ts
 * import { chooseStartEnvironment } from "@/supervisor/supervisor.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const ws: Workspace;
 *
 * const choice = await chooseStartEnvironment(ws, { explicit: undefined });
 * console.log(choice.name, choice.from);
 * ```
 */
export async function chooseStartEnvironment(
  ws: Workspace,
  opts: { explicit?: string; defaultEnv?: string },
): Promise<StartChoice> {
  const known = listEnvironments(ws);
  const pending = await peekSwitchRequest(ws.metadataDir);
  if (opts.explicit !== undefined) {
    if (pending && pending.target_env === opts.explicit) {
      return { name: opts.explicit, from: "flag", request: pending };
    }
    return { name: opts.explicit, from: "flag", discarded: pending };
  }
  if (pending && known.includes(pending.target_env)) {
    return { name: pending.target_env, from: "request", request: pending };
  }
  const discarded = pending;
  const last = (await readStartupState(ws.metadataDir))?.environment_name;
  if (typeof last === "string" && known.includes(last)) {
    return { name: last, from: "remembered", discarded };
  }
  if (opts.defaultEnv !== undefined) return { name: opts.defaultEnv, from: "default", discarded };
  if (known.length === 1) return { name: known[0], from: "only", discarded };
  throw new UsageError(
    known.length === 0
      ? `no environment to run in ${ws.environmentsDir}`
      : "no environment to run: several exist and none was chosen",
    {
      hint: known.length === 0
        ? `create ${ws.environmentsDir}/<name>/ with a config.toml and ComfyUI/`
        : `pass --env NAME (one of: ${known.join(", ")}), or set [supervisor] default_env in ${
          join(ws.root, "gov.toml")
        }`,
    },
  );
}

/** The ComfyUI currently supervised. */
interface Running {
  handle: ChildHandle;
  env: Environment;
  host: string;
  port: number;
  argv: string[];
  startedAt: number;
  healthDeadline: number;
  tracker: HealthTracker;
  /** The health probe in flight (a slow answer must not delay `.cmd` or a stop). */
  probe?: { promise: Promise<boolean>; result?: boolean };
  /** No new probe before this time (probes stay one poll interval apart). */
  nextProbeAt: number;
  /** Declared healthy (event emitted, state written). */
  healthy: boolean;
  /** Aborted when the child exits, so sleeps wake at once. */
  exitSignal: AbortSignal;
}

type WatchOutcome =
  | { kind: "exit"; code: number; signal: Deno.Signal | null }
  | { kind: "healthy" }
  | { kind: "health_timeout" }
  | { kind: "cmd"; command: SupervisorCommandName }
  | { kind: "switch" }
  | { kind: "stop" };

interface SwitchOutcome {
  env: Environment;
  child?: Running;
  /** The environment left running failed too: apply the crash policy. */
  crash?: { code: number; reason: string };
  stop?: SupervisorResult;
}

const LOCK_WAIT_MS = 15_000;

/**
 * One supervisor of one workspace. `run()` resolves when supervision ends; `stop()` (from a
 * signal handler) ends it: ComfyUI's process group gets SIGTERM, the grace period, SIGKILL.
 *
 * @example
 * ```ts
 * import { Supervisor } from "@/supervisor/supervisor.ts";
 * import { workspaceAt } from "@/workspace/root.ts";
 *
 * const sup = new Supervisor({ workspace: workspaceAt("/srv/comfy"), env: "prod" });
 * Deno.addSignalListener("SIGTERM", () => sup.stop("SIGTERM"));
 * const { exitCode } = await sup.run();
 * ```
 */
export class Supervisor {
  readonly settings: SupervisorSettings;
  private readonly deps: SupervisorDeps;
  private readonly ws: Workspace;
  private readonly paths: MetadataPaths;
  private readonly sessionPath: string;
  private stopReason?: string;
  private forced = false;
  private wake = new AbortController();
  private crashTimes: number[] = [];
  private earlyRestarts: number[] = [];
  private holdsLock = false;
  private lockBeat?: ReturnType<typeof setInterval>;
  private state: SupervisorState;
  private stateWrite: Promise<void> = Promise.resolve();
  private current?: Running;
  private switchInFlight?: { target: string; source?: string };

  constructor(private readonly opts: SupervisorOptions) {
    this.settings = { ...DEFAULT_SUPERVISOR_SETTINGS, ...(opts.settings ?? {}) };
    this.deps = { ...defaultDeps(), ...(opts.deps ?? {}) };
    this.ws = opts.workspace;
    this.paths = metadataPaths(this.ws.metadataDir);
    this.sessionPath = join(this.ws.metadataDir, `comfy-session-${Deno.pid}`);
    const now = this.deps.now() / 1000;
    this.state = {
      running: true,
      pid: Deno.pid,
      started_at: now,
      updated_at: now,
      workspace: this.ws.root,
      phase: "starting",
      healthy: false,
      starts: 0,
      restarts: 0,
      crashes: 0,
      log_file: opts.logFile,
    };
  }

  /** The `__COMFY_CLI_SESSION__` value given to ComfyUI; Manager's marker is this + `.reboot`. */
  get session(): string {
    return this.sessionPath;
  }

  /**
   * Asks the loop to stop: the child's group is terminated and `run()` resolves with exit
   * code 0. Safe to call from a signal handler, more than once: a second call SIGKILLs the
   * group at once instead of waiting out the grace period.
   */
  stop(reason = "stop requested"): void {
    if (this.stopReason) {
      // A second request (Ctrl-C again) means "now": skip the rest of the grace period.
      if (this.forced) return;
      this.forced = true;
      const child = this.current;
      if (child && !child.handle.exited() && child.handle.signalGroup) {
        this.emit(
          "warning",
          `stop requested again: SIGKILL to ComfyUI pid ${child.handle.pid} now`,
        );
        child.handle.signalGroup("SIGKILL");
      }
      return;
    }
    this.stopReason = reason;
    this.wake.abort();
  }

  private emit(type: SupervisorEventType, message: string, fields: Record<string, unknown> = {}) {
    try {
      this.opts.onEvent?.({ type, time: this.deps.now(), message, ...fields });
    } catch {
      // A broken sink must not take the supervisor down.
    }
  }

  private persist(patch: Partial<SupervisorState> = {}, phase?: SupervisorPhase): Promise<void> {
    Object.assign(this.state, patch);
    if (phase) this.state.phase = phase;
    this.state.updated_at = this.deps.now() / 1000;
    const snapshot = structuredClone(this.state);
    this.stateWrite = this.stateWrite.then(() =>
      writeSupervisorState(this.ws.metadataDir, snapshot).catch(() => {})
    );
    return this.stateWrite;
  }

  /** Sleeps `ms`, waking early on stop(), when `child` exits or when `also` settles. */
  private pause(ms: number, child?: Running, also?: Promise<unknown>): Promise<void> {
    return new Promise((resolve) => {
      let done = false;
      const signals = [this.wake.signal, child?.exitSignal].filter(Boolean) as AbortSignal[];
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        for (const s of signals) s.removeEventListener("abort", finish);
        resolve();
      };
      const timer = setTimeout(finish, Math.max(0, ms));
      also?.then(finish, finish);
      for (const s of signals) {
        if (s.aborted) return finish();
        s.addEventListener("abort", finish);
      }
    });
  }

  /**
   * Runs the supervisor until ComfyUI exits 0, a shutdown is requested, `stop()` is called,
   * or crashes exceed the limit. Throws {@linkcode GovError}s for problems found before
   * anything started (another supervisor is alive, unknown environment).
   */
  async run(): Promise<SupervisorResult> {
    await Deno.mkdir(this.ws.metadataDir, { recursive: true });
    const choice = await chooseStartEnvironment(this.ws, {
      explicit: this.opts.env,
      defaultEnv: this.settings.defaultEnv,
    });
    const firstEnv = this.deps.loadEnvironment(this.ws, choice.name);
    const previousState = await readSupervisorState(this.ws.metadataDir);
    const stalePid = await this.staleIdentityPid(previousState);
    const { previous } = await claimOrchestratorPid(this.ws.metadataDir, {
      isAlive: (pid) => pid !== stalePid && this.deps.pidAlive(pid),
    });
    const self = await this.deps.processInfo(Deno.pid);
    if (self) this.state.pid_started_at = Math.round(this.deps.now() / 1000 - self.elapsedS);
    this.emit(
      "supervisor_started",
      `gov supervisor pid ${Deno.pid} for ${this.ws.root} (environment ${choice.name}, ${
        describeChoice(choice.from)
      })`,
      { pid: Deno.pid, workspace: this.ws.root, environment: choice.name, from: choice.from },
    );
    if (previous !== undefined) {
      this.emit(
        "takeover",
        `took over from supervisor pid ${previous}, which is no longer running`,
        {
          previous,
        },
      );
    }
    let result: SupervisorResult = { exitCode: 0, reason: "stopped" };
    try {
      await this.persist({ environment: choice.name }, "starting");
      if (previous !== undefined || previousState?.running) await this.reapOrphan(previousState);
      // Only a .cmd written before our claim is a leftover: `gov stop` may already have
      // addressed this supervisor (it found our pid file), e.g. right after `run --detach`.
      const claimedAt = (await Deno.stat(this.paths.pid).catch(() => undefined))?.mtime;
      if (await clearCommand(this.ws.metadataDir, { olderThanMs: claimedAt?.getTime() })) {
        this.emit("warning", `ignored a ${this.paths.cmd} left from before this supervisor`);
      }
      await removeIfExists(this.sessionPath + ".reboot");
      // A pending request explains an active status (gov switch started us): not stale.
      const interrupted = choice.request ? undefined : await this.staleSwitchStatus();
      if (choice.discarded) {
        await cleanupSwitchRequest(this.ws.metadataDir);
        this.emit(
          "warning",
          `discarded a pending switch request to '${choice.discarded.target_env}': ${
            choice.from === "flag" ? "--env was given" : "that environment does not exist"
          }`,
        );
      }
      result = await this.loop(firstEnv, choice.request, interrupted);
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

  /** A pid file naming a live process that is not the supervisor that wrote it (pid reuse). */
  private async staleIdentityPid(prev?: SupervisorState): Promise<number | undefined> {
    const pid = await readOrchestratorPid(this.ws.metadataDir);
    if (pid === undefined || pid === Deno.pid || !this.deps.pidAlive(pid)) return undefined;
    if (!prev || prev.pid !== pid || prev.pid_started_at === undefined || !prev.running) {
      return undefined;
    }
    const info = await this.deps.processInfo(pid);
    if (!info) return undefined;
    const started = this.deps.now() / 1000 - info.elapsedS;
    return Math.abs(started - prev.pid_started_at) > 5 ? pid : undefined;
  }

  /** A ComfyUI left behind by a supervisor that died holds the port and VRAM: end it. */
  private async reapOrphan(prev?: SupervisorState): Promise<void> {
    const pid = prev?.child_pid;
    if (!prev || pid === undefined || !this.deps.pidAlive(pid)) return;
    const info = await this.deps.processInfo(pid);
    if (!info || info.pgid !== pid || !/main\.py/.test(info.args)) return;
    if (prev.child_started_at !== undefined) {
      const started = this.deps.now() / 1000 - info.elapsedS;
      if (Math.abs(started - prev.child_started_at) > 5) return;
    }
    // A zombie has exited already; only its (init) parent has not collected it yet.
    const running = async () =>
      this.deps.pidAlive(pid) && !(await this.deps.processInfo(pid))?.state.startsWith("Z");
    signalPid(-pid, "SIGTERM");
    const end = this.deps.now() + this.settings.graceS * 1000;
    while (await running() && this.deps.now() < end) await this.pause(100);
    const killed = await running();
    // The group may hold more than the leader (ComfyUI's own subprocesses).
    signalPid(-pid, "SIGKILL");
    this.emit(
      "orphan_killed",
      `ended ComfyUI pid ${pid} left behind by dead supervisor pid ${prev.pid}${
        killed ? " (SIGKILL)" : ""
      }`,
      { pid, supervisor: prev.pid },
    );
  }

  /** A switch status stuck mid-way by a dead supervisor is marked recovering, then failed. */
  private async staleSwitchStatus(): Promise<string | undefined> {
    const s = await readSwitchStatus(this.ws.metadataDir);
    if (!isActiveSwitchState(s.state)) return undefined;
    await writeSwitchStatus(this.ws.metadataDir, "recovering", {
      target_env: s.target_env,
      source_env: s.source_env,
      message: "the previous supervisor stopped during a switch; recovering",
    });
    return s.target_env ?? "?";
  }

  private async cleanup(result: SupervisorResult): Promise<void> {
    if (this.current && !this.current.handle.exited()) {
      await this.stopChild(this.current, result.reason);
    } else if (this.current) {
      await this.current.handle.terminate(0).catch(() => {});
    }
    if (this.switchInFlight) {
      await writeSwitchStatus(this.ws.metadataDir, "aborted", {
        target_env: this.switchInFlight.target,
        source_env: this.switchInFlight.source,
        error: `the supervisor stopped during the switch (${result.reason})`,
      }).catch(() => {});
    }
    await this.releaseLock();
    await removeIfExists(this.sessionPath + ".reboot").catch(() => {});
    await cleanupOrchestratorPid(this.ws.metadataDir, { onlyIf: Deno.pid }).catch(() => {});
    await this.persist({
      running: false,
      healthy: false,
      child_pid: undefined,
      guard_pid: undefined,
      stop_reason: result.reason,
      exit_code: result.exitCode,
    }, "stopped");
    this.emit("stopped", `supervisor stopped: ${result.reason} (exit ${result.exitCode})`, {
      exitCode: result.exitCode,
    });
  }

  // -- the loop ------------------------------------------------------------------------------

  private async loop(
    firstEnv: Environment,
    request: SwitchRequest | undefined,
    interrupted: string | undefined,
  ): Promise<SupervisorResult> {
    let env = firstEnv;
    let child: Running | undefined;
    let restartReason: string | undefined;
    const stopResult = (): SupervisorResult => ({
      exitCode: 0,
      reason: this.stopReason ?? "stop requested",
    });
    // Each helper returns a result when supervision must end, else updates env/child.
    const applySwitch = async (res: SwitchOutcome): Promise<SupervisorResult | undefined> => {
      if (res.stop) return res.stop;
      env = res.env;
      child = res.child;
      if (res.crash) return await crashed(res.crash.code, res.crash.reason);
      if (!child) restartReason = "after a switch";
      return undefined;
    };
    const crashed = async (code: number, reason: string): Promise<SupervisorResult | undefined> => {
      const r = await this.onCrash(code, reason);
      if (r) return r;
      const next = await this.afterBackoff();
      if (next === "stop") return stopResult();
      if (next === "switch") return await applySwitch(await this.performSwitch(undefined, env));
      restartReason = next === "restart" ? "restart requested (.cmd)" : "after a crash";
      return undefined;
    };

    if (request) {
      interrupted = undefined;
      if (await this.takeLock(LOCK_WAIT_MS)) {
        const r = await applySwitch(await this.performSwitch(undefined, undefined));
        if (r) return r;
      } else {
        this.emit("warning", "the switch lock stayed held; starting without publishing progress");
        await cleanupSwitchRequest(this.ws.metadataDir);
      }
    }
    while (true) {
      if (this.stopReason) return stopResult();
      if (!child) {
        if (restartReason) {
          this.state.restarts++;
          this.emit("restart", `starting ${env.name} again (${restartReason})`, {
            reason: restartReason,
            environment: env.name,
          });
          restartReason = undefined;
        }
        const started = await this.startChild(env);
        if (this.stopReason) {
          if ("child" in started) await this.stopChild(started.child, this.stopReason);
          return stopResult();
        }
        if ("error" in started) {
          // A configuration that cannot start ComfyUI at all will not heal by retrying: at
          // the very first start, end with it (exit 2) instead of crash-looping.
          if (started.config && this.state.starts === 0) throw started.config;
          const r = await crashed(1, started.error);
          if (r) return r;
          continue;
        }
        child = started.child;
        if (interrupted !== undefined) {
          const target = interrupted;
          interrupted = undefined;
          await writeSwitchStatus(this.ws.metadataDir, "failed", {
            target_env: target,
            error: `the supervisor stopped during the switch to ${target}; now running ${env.name}`,
          });
        }
      }
      const running: Running = child;
      const out = await this.watch(running, { acceptRequests: true });
      let r: SupervisorResult | undefined;
      switch (out.kind) {
        case "stop":
          return stopResult();
        case "cmd":
          await this.stopChild(running, `${out.command} requested`);
          if (out.command === "shutdown") {
            return { exitCode: 0, reason: "shutdown requested (.cmd)" };
          }
          child = undefined;
          restartReason = "restart requested (.cmd)";
          break;
        case "switch":
          r = await applySwitch(await this.performSwitch(running, env));
          break;
        case "health_timeout": {
          const secs = this.settings.healthTimeoutS;
          this.emit(
            "health_timeout",
            `ComfyUI in ${env.name} did not answer within ${secs} s (${
              running.tracker.lastReason ?? "no answer"
            })`,
            { environment: env.name, timeoutS: secs },
          );
          await this.stopChild(running, "health timeout");
          child = undefined;
          r = await crashed(1, `not healthy after ${secs} s`);
          break;
        }
        case "healthy":
          break;
        case "exit":
          child = undefined;
          r = await this.onExit(running, out.code, out.signal, {
            restart: (why) => restartReason = why,
            switched: applySwitch,
            crashed,
          });
          break;
      }
      if (r) return r;
    }
  }

  /** Acts on ComfyUI's exit code. */
  private async onExit(
    child: Running,
    code: number,
    signal: Deno.Signal | null,
    then: {
      restart: (why: string) => void;
      switched: (res: SwitchOutcome) => Promise<SupervisorResult | undefined>;
      crashed: (code: number, reason: string) => Promise<SupervisorResult | undefined>;
    },
  ): Promise<SupervisorResult | undefined> {
    const env = child.env;
    // Stragglers of the group (ComfyUI's own subprocesses) must not outlive it.
    await child.handle.terminate(0).catch(() => {});
    const marker = this.sessionPath + ".reboot";
    const manager = code === EXIT_CLEAN && await exists(marker);
    const meaning = code === EXIT_RESTART
      ? "restart requested"
      : code === EXIT_SWITCH_ENV
      ? "switch requested"
      : manager
      ? "ComfyUI-Manager restart"
      : code === EXIT_CLEAN
      ? "clean stop"
      : "crash";
    this.emit(
      "child_exited",
      `ComfyUI pid ${child.handle.pid} (${env.name}) exited with code ${code}${
        signal ? ` (${signal})` : ""
      }: ${meaning}`,
      { pid: child.handle.pid, code, signal, meaning, environment: env.name },
    );
    await this.persist({
      healthy: false,
      child_pid: undefined,
      guard_pid: undefined,
      last_exit: { code, signal, at: this.deps.now() / 1000, meaning },
    }, "restarting");
    if (code === EXIT_RESTART || manager) {
      if (manager) await removeIfExists(marker);
      const storm = this.earlyRestart(child);
      if (storm) return await then.crashed(code, storm);
      then.restart(manager ? "ComfyUI-Manager reboot marker" : "ComfyUI exited 42");
      return undefined;
    }
    if (code === EXIT_CLEAN) return { exitCode: 0, reason: "ComfyUI exited 0" };
    if (code === EXIT_SWITCH_ENV) {
      if (!(await this.takeLock(LOCK_WAIT_MS))) {
        this.emit("warning", "ComfyUI exited 43 but the switch lock stays held; restarting");
        then.restart("exit 43 without the switch lock");
        return undefined;
      }
      const r = await then.switched(await this.performSwitch(undefined, env));
      return r;
    }
    return await then.crashed(code, `exit code ${code}`);
  }

  private pendingBackoffMs = 0;

  /**
   * Restart requests from a ComfyUI that never answered (a node asking for a restart on
   * every boot) would restart it forever without a pause. `crash_limit` of them within
   * `crash_window` count as one crash, so backoff and giving up apply. Returns the reason
   * when that happens.
   */
  private earlyRestart(child: Running): string | undefined {
    if (child.healthy) return undefined;
    const now = this.deps.now();
    const windowMs = this.settings.crashWindowS * 1000;
    this.earlyRestarts = [...this.earlyRestarts.filter((t) => now - t <= windowMs), now];
    const n = this.earlyRestarts.length;
    if (n < this.settings.crashLimit) return undefined;
    this.earlyRestarts = [];
    return `${n} restart requests within ${this.settings.crashWindowS} s before ComfyUI ever answered`;
  }

  /**
   * Counts a crash. Returns a result when the limit is reached (give up), else schedules the
   * backoff that {@linkcode afterBackoff} then waits out.
   */
  private onCrash(code: number, reason: string): Promise<SupervisorResult | undefined> {
    const now = this.deps.now();
    this.crashTimes.push(now);
    const windowMs = this.settings.crashWindowS * 1000;
    this.crashTimes = this.crashTimes.filter((t) => now - t <= windowMs);
    this.state.crashes++;
    const n = this.crashTimes.length;
    if (n >= this.settings.crashLimit) {
      const exitCode = code === 0 ? 1 : code;
      this.emit(
        "give_up",
        `giving up: ${n} crashes within ${this.settings.crashWindowS} s (last: ${reason}); ` +
          `exiting ${exitCode} so the service manager can take over`,
        { crashes: n, code: exitCode },
      );
      return Promise.resolve({ exitCode, reason: `gave up after ${n} crashes (${reason})` });
    }
    const delay = crashDelayS(this.settings, n);
    this.pendingBackoffMs = delay * 1000;
    this.emit(
      "crash",
      `crash ${n}/${this.settings.crashLimit} within ${this.settings.crashWindowS} s (${reason}); ` +
        `restarting in ${delay} s`,
      { crashes: n, code, delayS: delay },
    );
    return this.persist({}, "backoff").then(() => undefined);
  }

  /** Waits the pending crash delay while honouring stop, `.cmd` and switch requests. */
  private async afterBackoff(): Promise<"elapsed" | "stop" | "restart" | "switch"> {
    const end = this.deps.now() + this.pendingBackoffMs;
    this.pendingBackoffMs = 0;
    while (this.deps.now() < end) {
      if (this.stopReason) return "stop";
      const cmd = await this.nextCommand("run");
      if (cmd === "shutdown") {
        this.stop("shutdown requested (.cmd)");
        return "stop";
      }
      if (cmd === "restart") return "restart";
      if (await this.switchRequested()) return "switch";
      await this.pause(Math.min(this.settings.pollIntervalMs, end - this.deps.now()));
    }
    return this.stopReason ? "stop" : "elapsed";
  }

  private argsFor(env: Environment): string[] {
    return this.opts.comfyuiArgs ?? this.settings.comfyuiArgs ?? env.config.comfyui.args;
  }

  /** Syncs `env` and starts its ComfyUI; an error string when either fails. */
  private async startChild(
    env: Environment,
    mode: "run" | "rollback" = "run",
  ): Promise<{ child: Running } | { error: string; config?: GovError }> {
    const synced = await this.syncEnv(env, mode);
    if (synced.error) return { error: synced.error };
    if (this.stopReason) return { error: "stopping" };
    return await this.spawnChild(env);
  }

  /**
   * Brings the environment in line with its lock. A sync can take minutes (first wheels,
   * a promotion holding the environment's lock), so `.cmd` and stop() are still honoured
   * meanwhile: shutdown and SIGTERM wait at most the grace period for the sync to end, and
   * `abort_switch` (mode `switch`) stops waiting at once. `error` says why ComfyUI must not
   * start; `aborted` that the switch was aborted.
   */
  private async syncEnv(
    env: Environment,
    mode: "run" | "switch" | "rollback",
  ): Promise<{ error?: string; aborted?: boolean }> {
    await this.persist({ environment: env.name, healthy: false }, "syncing");
    const t0 = this.deps.now();
    this.emit("sync_started", `syncing ${env.name}`, { environment: env.name });
    let outcome: { err?: unknown } | undefined;
    const syncing = this.deps.sync(env, (step) => this.emit("sync_step", `${env.name}: ${step}`))
      .then(() => outcome = {}, (err) => outcome = { err });
    let stopDeadline: number | undefined;
    while (!outcome) {
      if (this.stopReason) {
        stopDeadline ??= this.deps.now() + this.settings.graceS * 1000;
        if (this.forced || this.deps.now() >= stopDeadline) {
          this.emit(
            "warning",
            `stopping without waiting any longer for the sync of ${env.name} (still running)`,
            { environment: env.name },
          );
          return { error: "stopping" };
        }
      } else {
        const cmd = await this.nextCommand(mode);
        if (cmd === "shutdown") this.stop("shutdown requested (.cmd)");
        else if (cmd === "abort_switch") {
          this.emit(
            "warning",
            `no longer waiting for the sync of ${env.name} (switch aborted); it finishes alone`,
            { environment: env.name },
          );
          return { aborted: true };
        } else if (cmd === "restart") {
          this.emit("warning", `restart ignored: ${env.name} is being synced and started`);
        }
      }
      await untilSettled(syncing, Math.min(this.settings.pollIntervalMs, 100));
    }
    if (outcome.err !== undefined) {
      const err = outcome.err;
      const hint = err instanceof GovError && err.hint ? ` (${err.hint})` : "";
      const msg = `${(err as Error)?.message ?? String(err)}${hint}`;
      this.emit("sync_failed", `syncing ${env.name} failed: ${msg}`, { environment: env.name });
      // A configuration error at the very first start will not heal by retrying: say so now.
      if (err instanceof GovError && err.exitCode === 2 && this.state.starts === 0) throw err;
      return { error: `sync of ${env.name} failed: ${msg}` };
    }
    this.emit("sync_done", `${env.name} in sync (${this.deps.now() - t0} ms)`, {
      environment: env.name,
      ms: this.deps.now() - t0,
    });
    return {};
  }

  /** Starts ComfyUI of an already synced environment. */
  private async spawnChild(
    env: Environment,
  ): Promise<{ child: Running } | { error: string; config?: GovError }> {
    const args = this.argsFor(env);
    const target = listenTarget(args);
    let portWasBusy = await isPortOpen(target.host, target.port, 500);
    if (portWasBusy) {
      // The previous holder may still be closing; give it a moment before starting.
      const end = this.deps.now() + Math.min(this.settings.graceS, 5) * 1000;
      while (portWasBusy && this.deps.now() < end && !this.stopReason) {
        await this.pause(100);
        portWasBusy = await isPortOpen(target.host, target.port, 500);
      }
      if (portWasBusy) {
        const pids = await this.deps.portListenerPids(target.port);
        const who = pids?.length
          ? `pid ${pids.join(", ")}${await this.describePid(pids[0])}`
          : "an unknown process";
        this.emit(
          "port_busy",
          `port ${target.port} is already held by ${who}; ComfyUI will not be able to bind it`,
          { port: target.port, pids },
        );
      }
    }
    await removeIfExists(this.sessionPath + ".reboot");
    if (!(await exists(join(env.comfyuiDir, "main.py")))) {
      const msg = `no ComfyUI in ${env.comfyuiDir} (main.py missing)`;
      this.emit("spawn_failed", msg, { environment: env.name });
      return {
        error: msg,
        config: new ConfigError(
          env.configPath,
          "paths.comfyui_dir",
          `a folder with ComfyUI's main.py (${msg})`,
        ),
      };
    }
    const argv = ["main.py", ...args];
    let handle: ChildHandle;
    try {
      handle = this.deps.spawn({
        command: env.python,
        args: argv,
        cwd: env.comfyuiDir,
        env: this.childEnv(env),
        output: this.opts.childOutput,
        guardGraceMs: this.settings.graceS * 1000,
      });
    } catch (err) {
      const msg = err instanceof SpawnError
        ? `${err.message} (check [paths] python in ${env.configPath})`
        : String((err as Error)?.message ?? err);
      this.emit("spawn_failed", `cannot start ComfyUI in ${env.name}: ${msg}`, {
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
        config = new GovError(`cannot start ComfyUI in ${env.name}: ${err.message}`, {
          hint: `\`gov status -e ${env.name}\` shows the state of its .venv-prod`,
        });
        config.exitCode = 2;
      }
      return { error: msg, config };
    }
    const now = this.deps.now();
    const exitCtl = new AbortController();
    handle.status.then(() => exitCtl.abort(), () => exitCtl.abort());
    const child: Running = {
      handle,
      env,
      host: target.host,
      port: target.port,
      argv: [env.python, ...argv],
      startedAt: now,
      healthDeadline: now + this.settings.healthTimeoutS * 1000,
      nextProbeAt: now,
      healthy: false,
      tracker: new HealthTracker(
        this.deps.probe,
        { ...target, childPid: handle.pid, portWasBusy },
        this.settings.healthSuccesses,
      ),
      exitSignal: exitCtl.signal,
    };
    this.current = child;
    this.state.starts++;
    await this.persist({
      environment: env.name,
      child_pid: handle.pid,
      guard_pid: handle.guardPid,
      child_started_at: now / 1000,
      port: target.port,
      host: target.host,
      healthy: false,
      healthy_at: undefined,
    }, "waiting_health");
    await writeStartupState(this.ws.metadataDir, {
      python_executable: env.python,
      working_directory: env.comfyuiDir,
      argv: child.argv,
      comfyui_args: args,
      environment_name: env.name,
      workspace_root: this.ws.root,
      port: target.port,
      listen_host: target.host,
      supervisor_pid: Deno.pid,
      child_pid: handle.pid,
    });
    this.emit(
      "child_started",
      `started ComfyUI pid ${handle.pid} in ${env.name}: ${env.python} ${argv.join(" ")} ` +
        `(port ${target.port})`,
      { pid: handle.pid, environment: env.name, port: target.port, argv: child.argv },
    );
    return { child };
  }

  private async describePid(pid: number): Promise<string> {
    const info = await this.deps.processInfo(pid);
    return info ? ` (${info.args.slice(0, 80)})` : "";
  }

  private childEnv(env: Environment): Record<string, string> {
    return {
      COMFYGIT_SUPERVISED: "1",
      __COMFY_CLI_SESSION__: this.sessionPath,
      COMFYGIT_HOME: this.ws.root,
      GOV_WORKSPACE: this.ws.root,
      GOV_ENVIRONMENT: env.name,
      GOV_SUPERVISOR_PID: String(Deno.pid),
      // Piped output must reach the log line by line, not in 8 KiB blocks.
      ...(this.opts.childOutput ? { PYTHONUNBUFFERED: "1" } : {}),
    };
  }

  private async stopChild(child: Running, why: string): Promise<void> {
    if (child.handle.exited()) {
      await child.handle.terminate(0).catch(() => {});
      return;
    }
    await this.persist({}, "stopping");
    this.emit("stopping", `stopping ComfyUI pid ${child.handle.pid} (${why})`, {
      pid: child.handle.pid,
    });
    const { status, killed } = await child.handle.terminate(this.settings.graceS * 1000);
    this.emit(
      "child_stopped",
      `ComfyUI pid ${child.handle.pid} stopped (exit ${status.code}${
        killed ? `, SIGKILL after ${this.settings.graceS} s grace` : ""
      })`,
      { pid: child.handle.pid, code: status.code, killed },
    );
    await this.persist({ healthy: false, child_pid: undefined, guard_pid: undefined });
  }

  private async markHealthy(child: Running): Promise<void> {
    child.healthy = true;
    this.earlyRestarts = [];
    const after = this.deps.now() - child.startedAt;
    // State first, so whoever reads the log line finds the state file already updated.
    await this.persist({ healthy: true, healthy_at: this.deps.now() / 1000 }, "running");
    this.emit(
      "healthy",
      `ComfyUI pid ${child.handle.pid} (${child.env.name}) answers on ${child.host}:${child.port} ` +
        `after ${(after / 1000).toFixed(2)} s`,
      { pid: child.handle.pid, environment: child.env.name, port: child.port, afterMs: after },
    );
  }

  /** Takes one pending `.cmd`, logging it; invalid ones are reported and dropped. */
  private async nextCommand(
    mode: "run" | "switch" | "rollback",
  ): Promise<SupervisorCommandName | undefined> {
    let cmd;
    try {
      cmd = await takeCommand(this.ws.metadataDir);
    } catch (err) {
      this.emit("warning", `cannot read ${this.paths.cmd}: ${(err as Error).message}`);
      return undefined;
    }
    if (!cmd) return undefined;
    if ("invalid" in cmd) {
      this.emit("warning", `ignored an unknown command in ${this.paths.cmd}: ${cmd.invalid}`);
      return undefined;
    }
    if (cmd.command === "abort_switch" && mode !== "switch") {
      this.emit(
        "warning",
        mode === "rollback"
          ? "abort_switch ignored: already rolling back"
          : "abort_switch ignored: no switch in progress",
      );
      return undefined;
    }
    if (cmd.command === "restart" && mode !== "run") {
      this.emit("warning", "restart ignored: a switch is in progress");
      return undefined;
    }
    this.emit("command", `received ${cmd.command}`, { command: cmd.command });
    return cmd.command;
  }

  /** A valid switch request is pending and the lock is ours now. Drops invalid requests. */
  private async switchRequested(): Promise<boolean> {
    if (!(await exists(this.paths.switchRequest))) return false;
    const req = await peekSwitchRequest(this.ws.metadataDir);
    if (!req) {
      await cleanupSwitchRequest(this.ws.metadataDir);
      this.emit("warning", `dropped an invalid switch request (${this.paths.switchRequest})`);
      return false;
    }
    return await this.takeLock(0);
  }

  private async watch(
    child: Running,
    mode: { untilHealthy?: boolean; acceptRequests?: boolean; phase?: "switch" | "rollback" },
  ): Promise<WatchOutcome> {
    while (true) {
      if (this.stopReason) return { kind: "stop" };
      if (child.handle.exited()) {
        const s = await child.handle.status;
        return { kind: "exit", code: s.code, signal: s.signal };
      }
      const cmd = await this.nextCommand(mode.phase ?? "run");
      if (cmd) return { kind: "cmd", command: cmd };
      if (mode.acceptRequests && await this.switchRequested()) return { kind: "switch" };
      if (child.probe?.result !== undefined) {
        const ok = child.probe.result;
        child.probe = undefined;
        child.nextProbeAt = this.deps.now() + this.settings.pollIntervalMs;
        if (ok) {
          if (child.handle.exited()) continue;
          await this.markHealthy(child);
        }
      }
      if (child.healthy) {
        if (mode.untilHealthy) return { kind: "healthy" };
      } else {
        if (this.deps.now() >= child.healthDeadline) return { kind: "health_timeout" };
        if (!child.probe && this.deps.now() >= child.nextProbeAt) {
          // Probed in the background: the loop keeps reading .cmd while a probe waits for a
          // slow answer (connect and GET time out only after seconds).
          const probe: Running["probe"] = { promise: child.tracker.probe() };
          probe.promise.then((ok) => probe.result = ok, () => probe.result = false);
          child.probe = probe;
        }
      }
      if (this.holdsLock) await refreshSwitchLock(this.ws.metadataDir).catch(() => false);
      const poll = this.settings.pollIntervalMs;
      const untilNextProbe = child.nextProbeAt - this.deps.now();
      const ms = child.probe || child.healthy ? poll : Math.max(1, untilNextProbe);
      await this.pause(ms, child, child.probe?.promise);
    }
  }

  // -- switching -----------------------------------------------------------------------------

  private async takeLock(waitMs: number): Promise<boolean> {
    if (this.holdsLock) return true;
    const end = this.deps.now() + waitMs;
    while (true) {
      const ok = await acquireSwitchLock(this.ws.metadataDir, {
        timeoutS: this.settings.lockTimeoutS,
        isAlive: this.deps.pidAlive,
        extra: { holder: "gov supervisor" },
      });
      if (ok) {
        this.holdsLock = true;
        const beat = Math.max(1000, Math.min(30_000, (this.settings.lockTimeoutS * 1000) / 4));
        this.lockBeat = setInterval(() => {
          refreshSwitchLock(this.ws.metadataDir).catch(() => {});
        }, beat);
        return true;
      }
      if (this.deps.now() >= end || this.stopReason) return false;
      await this.pause(Math.min(this.settings.pollIntervalMs, 200));
    }
  }

  private async releaseLock(): Promise<void> {
    if (this.lockBeat !== undefined) clearInterval(this.lockBeat);
    this.lockBeat = undefined;
    if (!this.holdsLock) return;
    this.holdsLock = false;
    await releaseSwitchLock(this.ws.metadataDir).catch(() => {});
  }

  private async status(
    state: SwitchState,
    target: string,
    source: string | undefined,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    await writeSwitchStatus(this.ws.metadataDir, state, {
      target_env: target,
      source_env: source,
      supervisor_pid: Deno.pid,
      ...extra,
    });
    if (!["complete", "failed", "aborted"].includes(state)) {
      this.emit("switch_progress", `switch to ${target}: ${state}`, { state, target });
    }
  }

  /**
   * Carries out the pending switch request. Called with the switch lock held; releases it.
   * `current` is the running child (stopped once the request is known to be valid), `env`
   * the environment to roll back to.
   */
  private async performSwitch(
    current: Running | undefined,
    env: Environment | undefined,
  ): Promise<SwitchOutcome> {
    try {
      return await this.switchLocked(current, env);
    } finally {
      this.switchInFlight = undefined;
      await this.releaseLock();
    }
  }

  private async switchLocked(
    current: Running | undefined,
    env: Environment | undefined,
  ): Promise<SwitchOutcome> {
    const keep = (): SwitchOutcome => ({ env: env!, child: current });
    const req = await readSwitchRequest(this.ws.metadataDir);
    if (!req) {
      this.emit("warning", "no valid switch request found; keeping the current environment");
      if (!env) throw new GovError("no environment to run");
      return keep();
    }
    const targetName = req.target_env;
    let source: Environment | undefined = env;
    if (!source && req.source_env && req.source_env !== targetName) {
      try {
        source = this.deps.loadEnvironment(this.ws, req.source_env);
      } catch {
        source = undefined;
      }
    }
    const sourceName = source?.name;
    this.emit(
      "switch_requested",
      `switch requested: ${sourceName ?? "(nothing running)"} -> ${targetName}`,
      { target: targetName, source: sourceName },
    );
    let target: Environment;
    try {
      target = this.deps.loadEnvironment(this.ws, targetName);
    } catch (err) {
      const msg = (err as Error).message;
      await this.status("failed", targetName, sourceName, { error: msg });
      this.emit("switch_failed", `switch to ${targetName} refused: ${msg}`, { target: targetName });
      if (!env) throw err;
      return keep();
    }
    if (current && !current.handle.exited() && env && env.name === targetName) {
      await this.status("complete", targetName, sourceName, {
        message: `${targetName} is already running`,
      });
      this.emit("switch_complete", `${targetName} is already running; nothing to do`);
      return keep();
    }
    this.switchInFlight = { target: targetName, source: sourceName };
    await this.persist({}, "switching");
    await this.status("preparing", targetName, sourceName);
    if (current) await this.stopChild(current, `switching to ${targetName}`);

    let error: string | undefined;
    let aborted = false;
    const phase = async (): Promise<"continue" | "abort" | "stop"> => {
      if (this.stopReason) return "stop";
      const cmd = await this.nextCommand(aborted || error ? "rollback" : "switch");
      if (cmd === "shutdown") {
        this.stop("shutdown requested (.cmd)");
        return "stop";
      }
      return cmd === "abort_switch" ? "abort" : "continue";
    };
    const stopped = async (child?: Running): Promise<SwitchOutcome> => {
      if (child) await this.stopChild(child, this.stopReason ?? "stopping");
      await this.status("aborted", targetName, sourceName, {
        error: `the supervisor stopped during the switch (${this.stopReason})`,
      });
      this.switchInFlight = undefined;
      return {
        env: target,
        stop: { exitCode: 0, reason: this.stopReason ?? "stop requested" },
      };
    };

    await this.status("syncing", targetName, sourceName);
    let child: Running | undefined;
    let p = await phase();
    if (p === "stop") return await stopped();
    if (p === "abort") aborted = true;
    else {
      const synced = await this.syncEnv(target, "switch");
      error = synced.error;
      p = synced.aborted ? "abort" : await phase();
      if (p === "stop" || this.stopReason) return await stopped();
      if (p === "abort") aborted = true;
      else if (!error) {
        await this.status("starting", targetName, sourceName);
        const started = await this.spawnChild(target);
        if ("error" in started) error = started.error;
        else child = started.child;
      }
    }
    if (this.stopReason) return await stopped(child);
    if (child) {
      await this.status("validating", targetName, sourceName);
      const out = await this.watch(child, { untilHealthy: true, phase: "switch" });
      if (out.kind === "healthy") {
        await this.status("complete", targetName, sourceName, {
          message: `switched to ${targetName}`,
          port: child.port,
          child_pid: child.handle.pid,
        });
        this.emit("switch_complete", `switched ${sourceName ?? "(nothing)"} -> ${targetName}`, {
          target: targetName,
          source: sourceName,
        });
        this.switchInFlight = undefined;
        return { env: target, child };
      }
      if (out.kind === "stop") return await stopped(child);
      if (out.kind === "cmd" && out.command === "shutdown") {
        this.stop("shutdown requested (.cmd)");
        return await stopped(child);
      }
      if (out.kind === "cmd" && out.command === "abort_switch") aborted = true;
      else if (out.kind === "exit") {
        await child.handle.terminate(0).catch(() => {});
        error = `ComfyUI in ${targetName} exited with code ${out.code} before answering`;
      } else {error =
          `ComfyUI in ${targetName} did not answer within ${this.settings.healthTimeoutS} s`;}
      await this.stopChild(child, aborted ? "switch aborted" : "switch failed");
      child = undefined;
    }
    p = await phase();
    if (p === "stop") return await stopped();

    // Roll back.
    const why = aborted ? "aborted by request" : error ?? "unknown error";
    this.emit(
      aborted ? "switch_aborted" : "switch_failed",
      `switch to ${targetName} ${aborted ? "aborted" : `failed: ${why}`}`,
      { target: targetName, error: why },
    );
    const endState: SwitchState = aborted ? "aborted" : "failed";
    if (!source) {
      await this.status(endState, targetName, sourceName, {
        error: `${why}; no environment to roll back to`,
      });
      this.switchInFlight = undefined;
      return { env: target, crash: { code: 1, reason: why } };
    }
    await this.status("rolling_back", targetName, sourceName, {
      error: why,
      message: `rolling back to ${source.name}`,
    });
    const back = await this.startChild(source, "rollback");
    if (this.stopReason) return await stopped("child" in back ? back.child : undefined);
    if ("error" in back) {
      await this.status(endState, targetName, sourceName, {
        error: `${why}; rollback to ${source.name} failed too: ${back.error}`,
      });
      this.switchInFlight = undefined;
      return { env: source, crash: { code: 1, reason: back.error } };
    }
    const out = await this.watch(back.child, { untilHealthy: true, phase: "rollback" });
    if (out.kind === "stop" || (out.kind === "cmd" && out.command === "shutdown")) {
      if (out.kind === "cmd") this.stop("shutdown requested (.cmd)");
      return await stopped(back.child);
    }
    if (out.kind !== "healthy") {
      const detail = out.kind === "exit" ? `exited with code ${out.code}` : "did not answer";
      await this.stopChild(back.child, "rollback failed");
      await this.status(endState, targetName, sourceName, {
        error: `${why}; rollback to ${source.name} failed too: ComfyUI ${detail}`,
      });
      this.switchInFlight = undefined;
      return {
        env: source,
        crash: { code: out.kind === "exit" ? out.code : 1, reason: `rollback ${detail}` },
      };
    }
    await this.status(endState, targetName, sourceName, {
      error: why,
      rolled_back_to: source.name,
      message: aborted
        ? `switch to ${targetName} aborted; ${source.name} is running again`
        : `switch to ${targetName} failed; rolled back to ${source.name}`,
    });
    this.switchInFlight = undefined;
    return { env: source, child: back.child };
  }
}

/** Waits until `p` settles or `ms` pass, whichever is first, leaving no timer behind. */
async function untilSettled(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise((r) => timer = setTimeout(r, ms))]);
  clearTimeout(timer);
}

function describeChoice(from: StartChoice["from"]): string {
  switch (from) {
    case "flag":
      return "--env";
    case "request":
      return "pending switch request";
    case "remembered":
      return "active last time";
    case "default":
      return "[supervisor] default_env";
    case "only":
      return "the only environment";
  }
}
