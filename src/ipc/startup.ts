/**
 * `.startup_state.json`: how ComfyUI was last started, so the panel can show it and a later
 * `gov run` without `--env` resumes the environment that was active.
 *
 * @module
 */
import { readTextIfExists, writeJsonAtomic } from "../fs/atomic.ts";
import { metadataPaths, nowSeconds } from "./files.ts";

/** Content of `.startup_state.json` (ComfyGit's keys, plus whatever gov adds). */
export interface StartupState {
  /** When it was written, float seconds. */
  timestamp: number;
  python_executable?: string;
  working_directory?: string;
  argv?: string[];
  environment_name?: string;
  workspace_root?: string;
  port?: number;
  [extra: string]: unknown;
}

/**
 * Writes the startup state atomically; `timestamp` is set to now.
 *
 * @example
 * ```ts
 * import { writeStartupState } from "@/ipc/startup.ts";
 *
 * await writeStartupState("/ws/.metadata", { environment_name: "prod", port: 8188 });
 * ```
 */
export async function writeStartupState(
  metadataDir: string,
  fields: Omit<StartupState, "timestamp">,
): Promise<StartupState> {
  const state: StartupState = { timestamp: nowSeconds() };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) state[k] = v;
  await writeJsonAtomic(metadataPaths(metadataDir).startupState, state);
  return state;
}

/**
 * Reads the startup state; `undefined` when missing or not a JSON object.
 *
 * @example
 * ```ts
 * import { readStartupState } from "@/ipc/startup.ts";
 *
 * const last = await readStartupState("/ws/.metadata");
 * console.log(last?.environment_name);
 * ```
 */
export async function readStartupState(metadataDir: string): Promise<StartupState | undefined> {
  const text = await readTextIfExists(metadataPaths(metadataDir).startupState);
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
    return { ...v, timestamp: typeof v.timestamp === "number" ? v.timestamp : 0 };
  } catch {
    return undefined;
  }
}
