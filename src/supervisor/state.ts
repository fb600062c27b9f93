/**
 * `.metadata/.supervisor_state.json`: the running supervisor's own snapshot (environment,
 * child pid, health, counters), rewritten atomically on every change so `gov status` and
 * the panel can read it at any time. It stays after the supervisor stops, marked
 * `running: false`, so the last outcome ("gave up after 3 crashes") can still be shown.
 *
 * @module
 */
import { readTextIfExists, writeJsonAtomic } from "../fs/atomic.ts";
import type { SupervisorPhase } from "./phases.ts";
import { metadataPaths } from "../ipc/files.ts";

/** Content of `.supervisor_state.json`. Times are float seconds since the epoch. */
export interface SupervisorState {
  running: boolean;
  pid: number;
  /** When the supervisor process started (from `ps`), to detect pid reuse. */
  pid_started_at?: number;
  started_at: number;
  updated_at: number;
  workspace: string;
  phase: SupervisorPhase;
  environment?: string;
  child_pid?: number;
  /** Pid of the process that ends ComfyUI's group should this supervisor die unannounced. */
  guard_pid?: number;
  child_started_at?: number;
  port?: number;
  host?: string;
  healthy: boolean;
  healthy_at?: number;
  starts: number;
  restarts: number;
  crashes: number;
  last_exit?: { code: number; signal?: string | null; at: number; meaning: string };
  log_file?: string;
  stop_reason?: string;
  exit_code?: number;
}

/**
 * Writes the supervisor state atomically.
 *
 * @example
 * ```ts
 * import { writeSupervisorState } from "@/supervisor/state.ts";
 * import { type SupervisorState } from "@/supervisor/state.ts";
 * declare const state: SupervisorState;
 *
 * await writeSupervisorState("/ws/.metadata", state);
 * ```
 */
export async function writeSupervisorState(
  metadataDir: string,
  state: SupervisorState,
): Promise<void> {
  await writeJsonAtomic(metadataPaths(metadataDir).supervisorState, state);
}

/**
 * Reads the supervisor state; `undefined` when missing or unreadable.
 *
 * @example
 * ```ts
 * import { readSupervisorState } from "@/supervisor/state.ts";
 *
 * const s = await readSupervisorState("/ws/.metadata");
 * console.log(s?.environment, s?.healthy);
 * ```
 */
export async function readSupervisorState(
  metadataDir: string,
): Promise<SupervisorState | undefined> {
  const text = await readTextIfExists(metadataPaths(metadataDir).supervisorState);
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || typeof v.pid !== "number") return undefined;
    return v as SupervisorState;
  } catch {
    return undefined;
  }
}
