/**
 * The switch request (`.switch_request.json`) and switch progress (`.switch_status.json`)
 * files, in ComfyGit's format.
 *
 * @module
 */
import { readTextIfExists, removeIfExists, writeJsonAtomic } from "../fs/atomic.ts";
import { metadataPaths, nowSeconds } from "./files.ts";

/** A request to switch the supervised ComfyUI to another environment. */
export interface SwitchRequest {
  /** Environment to switch to. */
  target_env: string;
  /** Environment running when the request was made, when known. */
  source_env?: string;
  /** When the request was written, float seconds since the epoch. */
  timestamp: number;
  /** Anything else a writer added (kept, ignored). */
  [extra: string]: unknown;
}

/**
 * Writes a switch request atomically and returns what was written.
 *
 * @example
 * ```ts
 * import { writeSwitchRequest } from "@/ipc/switch.ts";
 *
 * await writeSwitchRequest("/ws/.metadata", "staging", "prod");
 * ```
 */
export async function writeSwitchRequest(
  metadataDir: string,
  targetEnv: string,
  sourceEnv?: string,
): Promise<SwitchRequest> {
  const req: SwitchRequest = { target_env: targetEnv, timestamp: nowSeconds() };
  if (sourceEnv !== undefined) req.source_env = sourceEnv;
  await writeJsonAtomic(metadataPaths(metadataDir).switchRequest, req);
  return req;
}

function parseRequest(text: string | undefined): SwitchRequest | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.target_env !== "string" || o.target_env === "") return undefined;
  const req: SwitchRequest = {
    ...o,
    target_env: o.target_env,
    timestamp: typeof o.timestamp === "number" && Number.isFinite(o.timestamp)
      ? o.timestamp
      : nowSeconds(),
  };
  if (typeof o.source_env === "string" && o.source_env !== "") req.source_env = o.source_env;
  else delete req.source_env;
  return req;
}

/**
 * Reads and deletes the pending switch request. A missing file, bad JSON or a missing
 * `target_env` all mean "no valid request" (`undefined`); an invalid file is deleted too so
 * it cannot trigger again.
 *
 * @example
 * ```ts
 * import { readSwitchRequest } from "@/ipc/switch.ts";
 *
 * const req = await readSwitchRequest("/ws/.metadata");
 * if (req) console.log(`switching to ${req.target_env}`);
 * ```
 */
export async function readSwitchRequest(metadataDir: string): Promise<SwitchRequest | undefined> {
  const path = metadataPaths(metadataDir).switchRequest;
  const text = await readTextIfExists(path);
  if (text === undefined) return undefined;
  await removeIfExists(path);
  return parseRequest(text);
}

/**
 * Reads the pending switch request without consuming it.
 *
 * @example
 * ```ts
 * import { peekSwitchRequest } from "@/ipc/switch.ts";
 *
 * if (await peekSwitchRequest("/ws/.metadata")) console.log("a switch is pending");
 * ```
 */
export async function peekSwitchRequest(metadataDir: string): Promise<SwitchRequest | undefined> {
  return parseRequest(await readTextIfExists(metadataPaths(metadataDir).switchRequest));
}

/**
 * Deletes a pending switch request, if any.
 *
 * @example
 * ```ts
 * import { cleanupSwitchRequest } from "@/ipc/switch.ts";
 *
 * await cleanupSwitchRequest("/ws/.metadata");
 * ```
 */
export async function cleanupSwitchRequest(metadataDir: string): Promise<void> {
  await removeIfExists(metadataPaths(metadataDir).switchRequest);
}

/** The states a switch goes through, with ComfyGit's progress figures. */
export const SWITCH_PROGRESS = {
  idle: 0,
  preparing: 10,
  syncing: 30,
  recovering: 50,
  starting: 60,
  validating: 80,
  rolling_back: 90,
  complete: 100,
  failed: 100,
  aborted: 100,
} as const;

/** A switch state name. */
export type SwitchState = keyof typeof SWITCH_PROGRESS;

/** States after which nothing more happens to a switch. */
export const TERMINAL_SWITCH_STATES: readonly SwitchState[] = ["complete", "failed", "aborted"];

/** Content of `.switch_status.json`. */
export interface SwitchStatus {
  state: SwitchState | string;
  progress: number;
  message: string;
  /** Float seconds since the epoch. */
  updated_at: number;
  target_env?: string;
  source_env?: string;
  error?: string;
  [extra: string]: unknown;
}

/**
 * Whether a switch in this state is still running.
 *
 * @example
 * ```ts
 * import { isActiveSwitchState } from "@/ipc/switch.ts";
 *
 * isActiveSwitchState("syncing"); // true
 * isActiveSwitchState("complete"); // false
 * ```
 */
export function isActiveSwitchState(state: string): boolean {
  return state !== "idle" && !(TERMINAL_SWITCH_STATES as readonly string[]).includes(state);
}

/**
 * Publishes switch progress atomically. `progress` defaults to the state's standard figure.
 *
 * @example
 * ```ts
 * import { writeSwitchStatus } from "@/ipc/switch.ts";
 *
 * await writeSwitchStatus("/ws/.metadata", "syncing", { target_env: "staging" });
 * ```
 */
export async function writeSwitchStatus(
  metadataDir: string,
  state: SwitchState,
  extra: { progress?: number; message?: string; [k: string]: unknown } = {},
): Promise<SwitchStatus> {
  const { progress, message, ...rest } = extra;
  const status: SwitchStatus = {
    state,
    progress: progress ?? SWITCH_PROGRESS[state],
    message: message ?? defaultMessage(state, rest.target_env as string | undefined),
    updated_at: nowSeconds(),
  };
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) status[k] = v;
  await writeJsonAtomic(metadataPaths(metadataDir).switchStatus, status);
  return status;
}

function defaultMessage(state: SwitchState, target?: string): string {
  const t = target ? ` ${target}` : "";
  switch (state) {
    case "preparing":
      return `preparing switch to${t}`;
    case "syncing":
      return `syncing${t}`;
    case "starting":
      return `starting ComfyUI in${t}`;
    case "validating":
      return `waiting for ComfyUI in${t} to answer`;
    case "complete":
      return `switched to${t}`;
    case "rolling_back":
      return "switch failed, rolling back";
    case "failed":
      return `switch to${t} failed`;
    case "recovering":
      return "recovering";
    case "aborted":
      return `switch to${t} aborted`;
    default:
      return "";
  }
}

/**
 * What readers see when no switch status exists or it cannot be read.
 *
 * @example
 * ```ts
 * import { idleSwitchStatus } from "@/ipc/switch.ts";
 *
 * idleSwitchStatus(); // { state: "idle", progress: 0, message: "", updated_at: 0 }
 * ```
 */
export function idleSwitchStatus(): SwitchStatus {
  return { state: "idle", progress: 0, message: "", updated_at: 0 };
}

/**
 * Reads the switch status; a missing or unreadable file reads as
 * `{"state": "idle", "progress": 0, ...}`.
 *
 * @example
 * ```ts
 * import { readSwitchStatus } from "@/ipc/switch.ts";
 *
 * const s = await readSwitchStatus("/ws/.metadata");
 * console.log(s.state, s.progress);
 * ```
 */
export async function readSwitchStatus(metadataDir: string): Promise<SwitchStatus> {
  const text = await readTextIfExists(metadataPaths(metadataDir).switchStatus);
  if (text === undefined) return idleSwitchStatus();
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || typeof v.state !== "string") {
      return idleSwitchStatus();
    }
    return {
      ...v,
      progress: typeof v.progress === "number" ? v.progress : 0,
      message: typeof v.message === "string" ? v.message : "",
      updated_at: typeof v.updated_at === "number" ? v.updated_at : 0,
    };
  } catch {
    return idleSwitchStatus();
  }
}

/**
 * Deletes the switch status file (readers then see "idle").
 *
 * @example
 * ```ts
 * import { cleanupSwitchStatus } from "@/ipc/switch.ts";
 *
 * await cleanupSwitchStatus("/ws/.metadata");
 * ```
 */
export async function cleanupSwitchStatus(metadataDir: string): Promise<void> {
  await removeIfExists(metadataPaths(metadataDir).switchStatus);
}
