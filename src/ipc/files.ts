/**
 * Names of the state files in `<workspace>/.metadata/` that gov, ComfyGit's panel and gov's
 * own panel node share. The names are ComfyGit's, so either tool reads the other's files.
 *
 * @module
 */
import { join } from "node:path";

/** Pending switch request: `{target_env, source_env, timestamp}`. */
export const SWITCH_REQUEST_FILE = ".switch_request.json";
/** Progress of the current or last switch: `{state, progress, message, updated_at, ...}`. */
export const SWITCH_STATUS_FILE = ".switch_status.json";
/** How ComfyUI was last started: `{timestamp, python_executable, argv, ...}`. */
export const STARTUP_STATE_FILE = ".startup_state.json";
/** Plain-text pid of the running supervisor. */
export const ORCHESTRATOR_PID_FILE = ".orchestrator.pid";
/** Switch lock: `{pid, created}`; its mtime is the holder's heartbeat. */
export const SWITCH_LOCK_FILE = ".switch.lock";
/** A command for the supervisor: `{command: "restart" | "shutdown" | "abort_switch"}`. */
export const CMD_FILE = ".cmd";
/** gov's own supervisor snapshot for `gov status` (not part of ComfyGit's contract). */
export const SUPERVISOR_STATE_FILE = ".supervisor_state.json";
/** Log of a detached supervisor. */
export const ORCHESTRATOR_LOG_FILE = "orchestrator.log";
/**
 * flock(2) guard serialising every lock and pid-file decision among gov processes. Never
 * removed: removing a flock'd file would let two processes lock two different inodes.
 */
export const GUARD_FILE = ".gov.guard";

/** Absolute paths of every state file of one `.metadata/` folder. */
export interface MetadataPaths {
  dir: string;
  switchRequest: string;
  switchStatus: string;
  startupState: string;
  pid: string;
  lock: string;
  cmd: string;
  supervisorState: string;
  log: string;
  guard: string;
}

/**
 * The state file paths of a `.metadata/` folder.
 *
 * @example
 * ```ts
 * import { metadataPaths } from "@/ipc/files.ts";
 *
 * const p = metadataPaths("/srv/comfy/.metadata");
 * console.log(p.pid); // /srv/comfy/.metadata/.orchestrator.pid
 * ```
 */
export function metadataPaths(metadataDir: string): MetadataPaths {
  return {
    dir: metadataDir,
    switchRequest: join(metadataDir, SWITCH_REQUEST_FILE),
    switchStatus: join(metadataDir, SWITCH_STATUS_FILE),
    startupState: join(metadataDir, STARTUP_STATE_FILE),
    pid: join(metadataDir, ORCHESTRATOR_PID_FILE),
    lock: join(metadataDir, SWITCH_LOCK_FILE),
    cmd: join(metadataDir, CMD_FILE),
    supervisorState: join(metadataDir, SUPERVISOR_STATE_FILE),
    log: join(metadataDir, ORCHESTRATOR_LOG_FILE),
    guard: join(metadataDir, GUARD_FILE),
  };
}

/**
 * Seconds since the epoch as a float, the unit ComfyGit's Python (`time.time()`) writes.
 *
 * @example
 * ```ts
 * import { nowSeconds } from "@/ipc/files.ts";
 *
 * const ts = nowSeconds(); // 1767225600.123
 * ```
 */
export function nowSeconds(): number {
  return Date.now() / 1000;
}

/**
 * Runs `fn` while holding an exclusive flock on `guardPath`. The kernel drops the flock when
 * the holder dies, so a crashed gov never leaves this guard behind.
 *
 * @example
 * ```ts
 * import { withGuard } from "@/ipc/files.ts";
 *
 * await withGuard("/ws/.metadata/.gov.guard", async () => {
 *   // read-check-write of a lock file, safe from other gov processes
 * });
 * ```
 */
export async function withGuard<T>(guardPath: string, fn: () => Promise<T>): Promise<T> {
  await Deno.mkdir(join(guardPath, ".."), { recursive: true });
  const file = await Deno.open(guardPath, { read: true, write: true, create: true });
  try {
    await file.lock(true);
    try {
      return await fn();
    } finally {
      await file.unlock();
    }
  } finally {
    file.close();
  }
}
