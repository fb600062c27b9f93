/**
 * What the supervisor of a workspace is doing, read from its state files (for `gov status`,
 * `gov switch`, `gov stop`, and the panel).
 *
 * @module
 */
import { readOrchestratorPid } from "../ipc/pid.ts";
import { isPidAlive } from "../process/run.ts";
import { readStartupState } from "../ipc/startup.ts";
import { isActiveSwitchState, readSwitchStatus, type SwitchStatus } from "../ipc/switch.ts";
import { metadataPaths } from "../ipc/files.ts";
import { readTextIfExists } from "../fs/atomic.ts";
import type { Workspace } from "../workspace/root.ts";
import { processInfo } from "./procinfo.ts";
import { readSupervisorState, type SupervisorState } from "./state.ts";

/** Snapshot of a workspace's supervisor. Times are float seconds since the epoch. */
export interface SupervisorStatus {
  /** A supervisor process is alive for this workspace. */
  running: boolean;
  /** Its pid, when running. */
  pid: number | null;
  /** Environment it runs (or ran last). */
  environment: string | null;
  /** Pid of ComfyUI, when one runs. */
  child_pid: number | null;
  /** ComfyUI's port. */
  port: number | null;
  /** ComfyUI answered its health checks since it last started. */
  healthy: boolean;
  /** Seconds since the supervisor started, when running. */
  uptime_s: number | null;
  /** Starts after the first (exit 42, `.cmd` restart, Manager reboot, crash restarts). */
  restarts: number;
  /** Crashes since the supervisor started. */
  crashes: number;
  /** `.switch_status.json` (idle when none). */
  switch: SwitchStatus;
  /** When the supervisor started. */
  started_at: number | null;
  /** Loop phase (`running`, `backoff`, `switching`, ... or `stopped`). */
  phase: string | null;
  /** How ComfyUI last exited. */
  last_exit: SupervisorState["last_exit"] | null;
  /** Why the last supervisor stopped, when it is not running. */
  stop_reason: string | null;
  /** Log of a detached supervisor. */
  log_file: string | null;
  /** Workspace root. */
  workspace: string;
  /**
   * What makes the fields above stale or unknown, one sentence each: an unreadable state
   * file, a supervisor that died without recording why, a switch left half done.
   */
  problems: string[];
}

/** Why a JSON state file that exists cannot be used, or null when it can (or is absent). */
async function unreadable(path: string, ok: (v: Record<string, unknown>) => boolean) {
  const text = await readTextIfExists(path);
  if (text === undefined) return null;
  try {
    const v = JSON.parse(text);
    if (typeof v === "object" && v !== null && ok(v)) return null;
    return `${path} does not hold the expected record`;
  } catch {
    return `${path} is unreadable (${text.length} bytes, truncated or not JSON)`;
  }
}

async function statusProblems(
  ws: Workspace,
  running: boolean,
  state: SupervisorState | undefined,
  sw: SwitchStatus,
): Promise<string[]> {
  const files = metadataPaths(ws.metadataDir);
  const problems: string[] = [];
  const stateFile = await unreadable(files.supervisorState, (v) => typeof v.pid === "number");
  if (stateFile) {
    problems.push(
      `${stateFile}: restarts, crashes, port and last exit are unknown${
        running ? " until the supervisor next writes it" : ""
      }`,
    );
  }
  const switchFile = await unreadable(files.switchStatus, (v) => typeof v.state === "string");
  if (switchFile) problems.push(`${switchFile}: the state of the last switch is unknown`);
  if (!running && state?.running) {
    problems.push(
      `the supervisor (pid ${state.pid}) ended without recording why (killed?); what is shown is from before that`,
    );
  }
  if (!running && isActiveSwitchState(sw.state)) {
    const target = sw.target_env ?? "<env>";
    problems.push(
      `the switch to ${target} stopped at ${sw.state} ${sw.progress}%: no supervisor is running to finish it; run \`gov switch ${target}\` again`,
    );
  }
  return problems;
}

/**
 * Whether `pid` is the supervisor described by `state` and alive. A live pid whose start
 * time does not match the one the supervisor recorded is another process that reused the
 * pid (after a reboot), not a supervisor.
 *
 * @example
 * ```ts
 * import { isSupervisorAlive } from "@/supervisor/status.ts";
 * import { readSupervisorState } from "@/supervisor/state.ts";
 *
 * const alive = await isSupervisorAlive(4242, await readSupervisorState("/ws/.metadata"));
 * ```
 */
export async function isSupervisorAlive(pid: number, state?: SupervisorState): Promise<boolean> {
  if (!isPidAlive(pid)) return false;
  if (!state || state.pid !== pid || state.pid_started_at === undefined || !state.running) {
    return true;
  }
  // Pollers (`gov switch --wait`) ask several times a second; `ps` once per pid is enough.
  const key = `${pid}:${state.pid_started_at}`;
  const known = identityCache.get(key);
  if (known !== undefined) return known;
  const info = await processInfo(pid);
  if (!info) return true;
  const started = Date.now() / 1000 - info.elapsedS;
  const same = Math.abs(started - state.pid_started_at) <= 5;
  identityCache.set(key, same);
  return same;
}

const identityCache = new Map<string, boolean>();

/**
 * Pid of the live supervisor of a workspace, or `undefined`.
 *
 * @example
 * ```ts
 * import { runningSupervisorPid } from "@/supervisor/status.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const ws: Workspace;
 *
 * const pid = await runningSupervisorPid(ws);
 * ```
 */
export async function runningSupervisorPid(ws: Workspace): Promise<number | undefined> {
  const pid = await readOrchestratorPid(ws.metadataDir);
  if (pid === undefined) return undefined;
  const state = await readSupervisorState(ws.metadataDir);
  return (await isSupervisorAlive(pid, state)) ? pid : undefined;
}

/**
 * Reads the supervisor's status for a workspace.
 *
 * @example
 * ```ts
 * import { supervisorStatus } from "@/supervisor/status.ts";
 * import { workspaceAt } from "@/workspace/root.ts";
 *
 * const s = await supervisorStatus(workspaceAt("/srv/comfy"));
 * if (s.running) console.log(`${s.environment} on port ${s.port}, healthy: ${s.healthy}`);
 * ```
 */
export async function supervisorStatus(ws: Workspace): Promise<SupervisorStatus> {
  const [pid, state, sw, startup] = await Promise.all([
    readOrchestratorPid(ws.metadataDir),
    readSupervisorState(ws.metadataDir),
    readSwitchStatus(ws.metadataDir),
    readStartupState(ws.metadataDir),
  ]);
  const running = pid !== undefined && await isSupervisorAlive(pid, state);
  // The state file describes this supervisor only if it was written by it.
  const current = state && running && state.pid === pid ? state : undefined;
  const now = Date.now() / 1000;
  const environment = current?.environment ?? state?.environment ??
    (typeof startup?.environment_name === "string" ? startup.environment_name : undefined);
  return {
    running,
    pid: running ? pid! : null,
    environment: environment ?? null,
    child_pid: current?.child_pid ?? null,
    port: current?.port ?? state?.port ??
      (typeof startup?.port === "number" ? startup.port : null),
    healthy: Boolean(current?.healthy && current.child_pid),
    uptime_s: current ? Math.max(0, Math.round((now - current.started_at) * 10) / 10) : null,
    restarts: state?.restarts ?? 0,
    crashes: state?.crashes ?? 0,
    switch: sw,
    started_at: current?.started_at ?? null,
    phase: running ? current?.phase ?? null : (state ? "stopped" : null),
    last_exit: state?.last_exit ?? null,
    stop_reason: running ? null : state?.stop_reason ?? null,
    log_file: state?.log_file ?? null,
    workspace: ws.root,
    problems: await statusProblems(ws, running, state, sw),
  };
}
