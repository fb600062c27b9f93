/**
 * What the parts of the supervisor share: settings, the injected world, the published
 * state, the stop request, the switch lock, and the primitives every part uses (events,
 * state writes checked against {@linkcode PHASES}, interruptible pauses, `.cmd` polling).
 * The loop (`supervisor.ts`), the switch protocol (`switch.ts`), child handling
 * (`child.ts`) and start-up (`start.ts`) each take one {@linkcode SupervisorContext}.
 *
 * @module
 */
import { join } from "node:path";
import { exists } from "../fs/atomic.ts";
import type { Environment } from "../workspace/environment.ts";
import type { Workspace } from "../workspace/root.ts";
import { type MetadataPaths, metadataPaths } from "../ipc/files.ts";
import { acquireSwitchLock, refreshSwitchLock, releaseSwitchLock } from "../ipc/lock.ts";
import { cleanupSwitchRequest, peekSwitchRequest } from "../ipc/switch.ts";
import { type SupervisorCommandName, takeCommand } from "../ipc/cmd.ts";
import type { SupervisorEvent, SupervisorEventType } from "./events.ts";
import type { HealthTracker } from "./health.ts";
import { DEFAULT_SUPERVISOR_SETTINGS, type SupervisorSettings } from "./settings.ts";
import { type SupervisorState, writeSupervisorState } from "./state.ts";
import { type ChildHandle, defaultDeps, type SupervisorDeps } from "./deps.ts";
import { PHASES, type SupervisorPhase, transition } from "./phases.ts";

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

/** The ComfyUI currently supervised. */
export interface Running {
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
  /** No new probe before this time (spaced by `nextProbeDelay` of health.ts). */
  nextProbeAt: number;
  /** Declared healthy (event emitted, state written). */
  healthy: boolean;
  /** Aborted when the child exits, so sleeps wake at once. */
  exitSignal: AbortSignal;
  /** Settles when ComfyUI printed that it listens (piped output only): probe at once. */
  ready?: Promise<void>;
  /**
   * ComfyUI said it listens while a probe was under way: that probe's answer predates the
   * line, so the next probe goes at once rather than after the usual pause.
   */
  probeAgainAtOnce?: boolean;
}

/** Which `.cmd` commands apply: `restart` only while running, `abort_switch` only in a switch. */
export type CommandMode = "run" | "switch" | "rollback";

/** The state and primitives shared by the supervisor's parts. */
export class SupervisorContext {
  readonly settings: SupervisorSettings;
  readonly deps: SupervisorDeps;
  readonly ws: Workspace;
  readonly paths: MetadataPaths;
  /** `__COMFY_CLI_SESSION__`; ComfyUI-Manager's reboot marker is this + `.reboot`. */
  readonly sessionPath: string;
  /** Set once a stop was requested (signal, `.cmd` shutdown): every wait ends early. */
  stopReason?: string;
  /** A second stop request: no more grace periods. */
  forced = false;
  readonly state: SupervisorState;
  /** The last ComfyUI spawned (stopped at the end if still alive). */
  current?: Running;
  /** Times of restart requests from ComfyUIs that never answered (the loop's rate gate). */
  earlyRestarts: number[] = [];
  /** The switch under way, marked aborted should the supervisor end in the middle. */
  switchInFlight?: { target: string; source?: string };
  private wake = new AbortController();
  private stateWrite: Promise<void> = Promise.resolve();
  private holdsLock = false;
  private lockBeat?: ReturnType<typeof setInterval>;

  /** @param opts the options of `gov run` */
  constructor(readonly opts: SupervisorOptions) {
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

  /** Manager's reboot marker of this supervisor's session. */
  get rebootMarker(): string {
    return this.sessionPath + ".reboot";
  }

  /** Records a stop request and wakes every pause. */
  requestStop(reason: string): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.wake.abort();
  }

  /** Sends an event to the sink; a broken sink must not take the supervisor down. */
  emit(type: SupervisorEventType, message: string, fields: Record<string, unknown> = {}): void {
    try {
      this.opts.onEvent?.({ type, time: this.deps.now(), message, ...fields });
    } catch {
      // Ignored on purpose (see above).
    }
  }

  /**
   * Updates and writes the state file (writes are queued, never concurrent). A new `phase`
   * must be allowed by {@linkcode PHASES} from the current one.
   */
  persist(patch: Partial<SupervisorState> = {}, phase?: SupervisorPhase): Promise<void> {
    if (phase) this.state.phase = transition("supervisor phase", PHASES, this.state.phase, phase);
    Object.assign(this.state, patch);
    this.state.updated_at = this.deps.now() / 1000;
    const snapshot = structuredClone(this.state);
    this.stateWrite = this.stateWrite.then(() =>
      writeSupervisorState(this.ws.metadataDir, snapshot).catch(() => {})
    );
    return this.stateWrite;
  }

  /** Sleeps `ms`, waking early on a stop request, when `child` exits or when `also` settles. */
  pause(ms: number, child?: Running, also?: Promise<unknown>): Promise<void> {
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

  /** Takes one pending `.cmd`, logging it; invalid ones and those `mode` excludes are dropped. */
  async nextCommand(mode: CommandMode): Promise<SupervisorCommandName | undefined> {
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
  async switchRequested(): Promise<boolean> {
    if (!(await exists(this.paths.switchRequest))) return false;
    const req = await peekSwitchRequest(this.ws.metadataDir);
    if (!req) {
      await cleanupSwitchRequest(this.ws.metadataDir);
      this.emit("warning", `dropped an invalid switch request (${this.paths.switchRequest})`);
      return false;
    }
    return await this.takeLock(0);
  }

  /** Keeps the switch lock fresh while it is held (between the heartbeats). */
  async refreshLock(): Promise<void> {
    if (this.holdsLock) await refreshSwitchLock(this.ws.metadataDir).catch(() => false);
  }

  /** Takes the switch lock, waiting up to `waitMs`; false when it stays held or on stop. */
  async takeLock(waitMs: number): Promise<boolean> {
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

  /** Releases the switch lock if held. */
  async releaseLock(): Promise<void> {
    if (this.lockBeat !== undefined) clearInterval(this.lockBeat);
    this.lockBeat = undefined;
    if (!this.holdsLock) return;
    this.holdsLock = false;
    await releaseSwitchLock(this.ws.metadataDir).catch(() => {});
  }
}
