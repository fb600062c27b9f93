/**
 * Controlling a running supervisor from another process: switch requests, `.cmd` commands,
 * waiting for their effect, and starting a detached supervisor.
 *
 * @module
 */
import { GovError, RefusedError } from "../errors.ts";
import { readTextIfExists } from "../fs/atomic.ts";
import { selfCommand } from "../process/self.ts";
import { isPidAlive, spawnProcess } from "../process/run.ts";
import { workspaceEnvironment } from "../workspace/environment.ts";
import { checkStartable } from "./start.ts";
import type { Workspace } from "../workspace/root.ts";
import { metadataPaths, nowSeconds } from "../ipc/files.ts";
import { acquireSwitchLock, readSwitchLock, releaseSwitchLock } from "../ipc/lock.ts";
import { readOrchestratorPid } from "../ipc/pid.ts";
import { readStartupState } from "../ipc/startup.ts";
import {
  cleanupSwitchRequest,
  isActiveSwitchState,
  peekSwitchRequest,
  readSwitchStatus,
  type SwitchRequest,
  type SwitchStatus,
  TERMINAL_SWITCH_STATES,
  writeSwitchRequest,
  writeSwitchStatus,
} from "../ipc/switch.ts";
import { type SupervisorCommandName, writeCommand } from "../ipc/cmd.ts";
import { readSupervisorState } from "./state.ts";
import { runningSupervisorPid } from "./status.ts";

/** Another switch holds the lock or is still pending. Exit 1. */
export class SwitchInProgressError extends GovError {
  constructor(detail: string) {
    super(`switch in progress: ${detail}`, {
      hint: "follow it with `gov status` (or `gov switch <its env> --wait`), or abort it " +
        "with `gov switch --abort`",
    });
    this.name = "SwitchInProgressError";
  }
}

/** No supervisor runs for the workspace. Exit 1. */
export class NoSupervisorError extends RefusedError {
  constructor(ws: Workspace) {
    super(`no gov supervisor is running for ${ws.root}`, {
      hint: `start one with \`gov run --workspace ${ws.root}\` (add --detach to background it)`,
    });
    this.name = "NoSupervisorError";
  }
}

/**
 * Whether a switch must start a supervisor (ComfyGit's `should_spawn_orchestrator_for_switch`):
 * only when none runs for the workspace and the caller is not itself running under one
 * (`COMFYGIT_SUPERVISED=1` means the supervisor already exists and will act on exit 43).
 *
 * @example
 * ```ts
 * import { shouldSpawnSupervisorForSwitch } from "@/supervisor/control.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const ws: Workspace;
 *
 * if (await shouldSpawnSupervisorForSwitch(ws, Deno.env.get)) console.log("will start gov run");
 * ```
 */
export async function shouldSpawnSupervisorForSwitch(
  ws: Workspace,
  getenv: (name: string) => string | undefined,
): Promise<boolean> {
  if (getenv("COMFYGIT_SUPERVISED") === "1") return false;
  return (await runningSupervisorPid(ws)) === undefined;
}

/** A request pending longer than this with no live supervisor is abandoned. */
const PENDING_REQUEST_TTL_S = 60;

/** What {@linkcode requestSwitch} did. */
export interface SwitchRequestResult {
  /**
   * `requested`: a running supervisor will switch; `started`: no supervisor ran, one was
   * started detached and starts the target; `already`: the target is already running;
   * `in_progress`: a switch to this same target is under way (nothing new was written).
   */
  outcome: "requested" | "started" | "already" | "in_progress";
  target_env: string;
  source_env?: string;
  supervisor_pid?: number;
  request?: SwitchRequest;
  /** Float seconds: the switch's final status is written after this (for waitForSwitch). */
  since: number;
}

/**
 * Requests a switch to environment `target`. Exactly one of several concurrent callers
 * wins: the others get {@linkcode SwitchInProgressError}, or `in_progress` when the switch
 * under way goes to this same target. When no supervisor runs, one is
 * started detached (through `startSupervisor`) and brings up the target.
 *
 * @example
 * ```ts
 * import { requestSwitch, waitForSwitch } from "@/supervisor/control.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const ws: Workspace;
 *
 * const r = await requestSwitch(ws, "staging");
 * if (r.outcome !== "already") await waitForSwitch(ws, { since: r.since });
 * ```
 */
export async function requestSwitch(
  ws: Workspace,
  target: string,
  opts: {
    lockTimeoutS?: number;
    startSupervisor?: (ws: Workspace) => Promise<number>;
  } = {},
): Promise<SwitchRequestResult> {
  workspaceEnvironment(ws, target);
  const meta = ws.metadataDir;
  await Deno.mkdir(meta, { recursive: true });
  // A second `gov switch` to the same target joins the switch under way instead of failing.
  const joinSwitch = (detail: { pid?: number; since: number; source?: string }) =>
    ({
      outcome: "in_progress",
      target_env: target,
      source_env: detail.source,
      supervisor_pid: detail.pid,
      since: detail.since,
    }) as const;
  const locked = await acquireSwitchLock(meta, {
    timeoutS: opts.lockTimeoutS,
    extra: { holder: "gov switch", target_env: target },
  });
  if (!locked) {
    const info = await readSwitchLock(meta);
    const status = await readSwitchStatus(meta);
    const heading = info?.extra.target_env ??
      (isActiveSwitchState(status.state) ? status.target_env : undefined);
    if (heading === target) {
      return joinSwitch({
        pid: await runningSupervisorPid(ws),
        since: isActiveSwitchState(status.state) ? status.updated_at : nowSeconds(),
        source: status.source_env,
      });
    }
    const to = heading ? ` to '${heading}'` : "";
    throw new SwitchInProgressError(
      `a switch${to} holds ${metadataPaths(meta).lock}${info?.pid ? ` (pid ${info.pid})` : ""}`,
    );
  }
  let supervisorPid: number | undefined;
  let result: SwitchRequestResult;
  try {
    supervisorPid = await runningSupervisorPid(ws);
    const pending = await peekSwitchRequest(meta);
    const status = await readSwitchStatus(meta);
    if (pending && (supervisorPid || nowSeconds() - pending.timestamp < PENDING_REQUEST_TTL_S)) {
      if (pending.target_env === target) {
        return joinSwitch({
          pid: supervisorPid,
          since: pending.timestamp,
          source: pending.source_env,
        });
      }
      throw new SwitchInProgressError(
        `a request to switch to '${pending.target_env}' is still pending`,
      );
    }
    if (supervisorPid && isActiveSwitchState(status.state)) {
      if (status.target_env === target) {
        return joinSwitch({
          pid: supervisorPid,
          since: status.updated_at,
          source: status.source_env,
        });
      }
      throw new SwitchInProgressError(
        `switching to '${status.target_env ?? "?"}' (${status.state}, ${status.progress}%)`,
      );
    }
    const state = supervisorPid ? await readSupervisorState(meta) : undefined;
    const startup = await readStartupState(meta);
    const current = (state && state.pid === supervisorPid ? state.environment : undefined) ??
      (typeof startup?.environment_name === "string" ? startup.environment_name : undefined);
    if (supervisorPid && current === target && state?.child_pid) {
      return {
        outcome: "already",
        target_env: target,
        source_env: current,
        supervisor_pid: supervisorPid,
        since: nowSeconds(),
      };
    }
    // With no supervisor, one is started for the target: refuse now what it would refuse.
    if (!supervisorPid) await checkStartable(workspaceEnvironment(ws, target));
    const source = current !== target ? current : undefined;
    const request = await writeSwitchRequest(meta, target, source);
    await writeSwitchStatus(meta, "preparing", {
      target_env: target,
      source_env: source,
      message: supervisorPid
        ? `switch to ${target} requested`
        : `starting a supervisor for ${target}`,
      requested_by: Deno.pid,
    });
    result = {
      outcome: supervisorPid ? "requested" : "started",
      target_env: target,
      source_env: source,
      supervisor_pid: supervisorPid,
      request,
      since: request.timestamp,
    };
  } finally {
    await releaseSwitchLock(meta);
  }
  if (!supervisorPid) {
    const start = opts.startSupervisor ??
      (async (w: Workspace) => (await startDetachedSupervisor(w, [])).pid);
    result.supervisor_pid = await start(ws);
  }
  return result;
}

/** What {@linkcode abortSwitch} did. */
export interface AbortResult {
  /**
   * `withdrawn`: the request was still pending and is gone (status `aborted` already);
   * `aborting`: the supervisor was told (`.cmd abort_switch`) and rolls back.
   */
  outcome: "withdrawn" | "aborting";
  target_env?: string;
  supervisor_pid?: number;
}

/**
 * Aborts the switch in progress. A request no supervisor has picked up yet is withdrawn
 * under the switch lock (a `.cmd` would arrive before the request is read and be ignored,
 * and the switch would go ahead); a switch under way gets `abort_switch`. Throws a
 * {@linkcode RefusedError} when there is nothing to abort.
 *
 * @example
 * ```ts
 * import { abortSwitch, waitForSwitch } from "@/supervisor/control.ts";
 * import { nowSeconds } from "@/ipc/files.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const ws: Workspace;
 *
 * const r = await abortSwitch(ws);
 * if (r.outcome === "aborting") await waitForSwitch(ws, { since: Date.now() / 1000 });
 * ```
 */
export async function abortSwitch(ws: Workspace): Promise<AbortResult> {
  const meta = ws.metadataDir;
  if (await acquireSwitchLock(meta, { extra: { holder: "gov switch --abort" } })) {
    try {
      const pending = await peekSwitchRequest(meta);
      if (!pending) {
        const s = await readSwitchStatus(meta);
        throw new RefusedError(`no switch to abort (switch state: ${s.state})`, {
          hint: "`gov status` shows the supervisor and the last switch",
        });
      }
      await cleanupSwitchRequest(meta);
      await writeSwitchStatus(meta, "aborted", {
        target_env: pending.target_env,
        source_env: pending.source_env,
        error: "aborted before the supervisor started the switch",
        message: `switch to ${pending.target_env} withdrawn`,
      });
      return {
        outcome: "withdrawn",
        target_env: pending.target_env,
        supervisor_pid: await runningSupervisorPid(ws),
      };
    } finally {
      await releaseSwitchLock(meta);
    }
  }
  // The lock is held: the supervisor is switching (or a `gov switch` is writing its request).
  const s = await readSwitchStatus(meta);
  const pid = await sendSupervisorCommand(ws, "abort_switch");
  return { outcome: "aborting", target_env: s.target_env, supervisor_pid: pid };
}

/**
 * Follows `.switch_status.json` until the switch requested at `since` (float seconds) is
 * complete, failed or aborted, calling `onUpdate` on every change. Throws when the
 * supervisor disappears or `timeoutMs` passes.
 *
 * @example
 * ```ts
 * import { waitForSwitch } from "@/supervisor/control.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const ws: Workspace;
 *
 * const final = await waitForSwitch(ws, { since: Date.now() / 1000, onUpdate: (s) => console.log(s.state) });
 * ```
 */
export async function waitForSwitch(
  ws: Workspace,
  opts: {
    since: number;
    timeoutMs?: number;
    pollMs?: number;
    onUpdate?: (s: SwitchStatus) => void;
  },
): Promise<SwitchStatus> {
  const end = Date.now() + (opts.timeoutMs ?? 900_000);
  let last = "";
  let goneSince: number | undefined;
  while (true) {
    const s = await readSwitchStatus(ws.metadataDir);
    const key = `${s.state}|${s.progress}|${s.message}|${s.updated_at}`;
    if (key !== last) {
      last = key;
      opts.onUpdate?.(s);
    }
    const fresh = s.updated_at >= opts.since - 1;
    if (fresh && (TERMINAL_SWITCH_STATES as readonly string[]).includes(s.state)) return s;
    if (await runningSupervisorPid(ws)) goneSince = undefined;
    else {
      goneSince ??= Date.now();
      // A detached supervisor needs a moment to write its pid file.
      if (Date.now() - goneSince > 15_000) {
        throw new GovError("the supervisor exited before the switch finished", {
          hint: `see ${metadataPaths(ws.metadataDir).log} and \`gov status\``,
        });
      }
    }
    if (Date.now() > end) {
      throw new GovError(`the switch did not finish in time (last state: ${s.state})`, {
        hint: "it may still finish; follow it with `gov status`",
      });
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 200));
  }
}

/**
 * Writes a `.cmd` for the running supervisor; throws {@linkcode NoSupervisorError} when none
 * runs. Returns the supervisor's pid.
 *
 * @example
 * ```ts
 * import { sendSupervisorCommand } from "@/supervisor/control.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const ws: Workspace;
 *
 * const pid = await sendSupervisorCommand(ws, "restart");
 * ```
 */
export async function sendSupervisorCommand(
  ws: Workspace,
  command: SupervisorCommandName,
): Promise<number> {
  const pid = await runningSupervisorPid(ws);
  if (!pid) throw new NoSupervisorError(ws);
  await writeCommand(ws.metadataDir, command);
  return pid;
}

/**
 * Waits until process `pid` has exited; false on timeout.
 *
 * @example
 * ```ts
 * import { waitForExit } from "@/supervisor/control.ts";
 *
 * if (!await waitForExit(4242, 30_000)) console.log("still running");
 * ```
 */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (isPidAlive(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/**
 * Waits until the supervisor has started ComfyUI again (its start counter passed `starts`)
 * and the new ComfyUI is healthy. Throws when the supervisor exits or time runs out.
 *
 * @example
 * ```ts
 * import { sendSupervisorCommand, waitForRestart } from "@/supervisor/control.ts";
 * import { readSupervisorState } from "@/supervisor/state.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const ws: Workspace;
 *
 * const before = (await readSupervisorState(ws.metadataDir))?.starts ?? 0;
 * const pid = await sendSupervisorCommand(ws, "restart");
 * await waitForRestart(ws, pid, before, 600_000);
 * ```
 */
export async function waitForRestart(
  ws: Workspace,
  pid: number,
  starts: number,
  timeoutMs: number,
): Promise<{ child_pid?: number; port?: number }> {
  const end = Date.now() + timeoutMs;
  while (true) {
    const s = await readSupervisorState(ws.metadataDir);
    if (s && s.pid === pid && s.starts > starts && s.healthy && s.child_pid) {
      return { child_pid: s.child_pid, port: s.port };
    }
    if (!isPidAlive(pid)) {
      throw new GovError(`the supervisor (pid ${pid}) exited during the restart`, {
        hint: `see ${metadataPaths(ws.metadataDir).log} and \`gov status\``,
      });
    }
    if (Date.now() > end) {
      throw new GovError("ComfyUI did not come back healthy in time", {
        hint: "follow it with `gov status`",
      });
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

/**
 * Starts `gov run <runArgs>` detached: its own session, stdin closed, events and ComfyUI's
 * output appended to `.metadata/orchestrator.log`. Resolves with its pid once it wrote the
 * pid file; throws with the log's last lines when it exits first.
 *
 * @example
 * ```ts
 * import { startDetachedSupervisor } from "@/supervisor/control.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const ws: Workspace;
 *
 * const { pid, logFile } = await startDetachedSupervisor(ws, ["--env", "prod"]);
 * ```
 */
export async function startDetachedSupervisor(
  ws: Workspace,
  runArgs: string[],
  opts: { timeoutMs?: number } = {},
): Promise<{ pid: number; logFile: string }> {
  const paths = metadataPaths(ws.metadataDir);
  await Deno.mkdir(ws.metadataDir, { recursive: true });
  const self = selfCommand();
  const args = [
    ...self.args,
    "run",
    "--workspace",
    ws.root,
    ...runArgs,
    "--log-file",
    paths.log,
  ];
  const child = spawnProcess(self.command, args, { cwd: ws.root, stdout: "null", stderr: "null" });
  const end = Date.now() + (opts.timeoutMs ?? 60_000);
  while (true) {
    const pid = await readOrchestratorPid(ws.metadataDir);
    if (pid === child.pid) return { pid, logFile: paths.log };
    if (child.exited()) {
      const status = await child.status;
      const tail = ((await readTextIfExists(paths.log)) ?? "").trimEnd().split("\n").slice(-3);
      throw new GovError(
        `the detached supervisor exited with code ${status.code} before it started`,
        { hint: tail.length ? `${paths.log} ends with:\n    ${tail.join("\n    ")}` : undefined },
      );
    }
    if (Date.now() > end) {
      throw new GovError(`the detached supervisor (pid ${child.pid}) did not start in time`, {
        hint: `see ${paths.log}`,
      });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
