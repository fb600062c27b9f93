/**
 * Shared shapes of the multi-backend layer: what a backend is (its `backends.toml` entry),
 * what gov knows of it at run time, and what a prompt needs from one.
 *
 * @module
 */
import type { NodeDefinition, ObjectInfo } from "../comfyui/object_info.ts";

export type { PromptRequirements } from "../comfyui/requirements.ts";

/** One ComfyUI backend as declared in `<workspace>/backends.toml` (`[[backend]]` tables). */
export interface BackendConfig {
  /** Stable id, a safe name (see `validateName`). */
  id: string;
  /** Human name; defaults to the id. */
  name: string;
  /** Host name or address. */
  host: string;
  /** TCP port of ComfyUI. */
  port: number;
  /** Relative capacity for scheduling; higher takes more work. Default 1. */
  weight: number;
  /** Free-form labels (e.g. "sdxl", "a100"). */
  tags: string[];
  /** Most prompts gov lets wait on this backend (ComfyUI's queue_remaining). Default 4. */
  max_queue: number;
  /** Bearer token sent to the backend, when it sits behind an authenticating proxy. */
  token?: string;
  /** Reach the backend over https/wss (e.g. behind a TLS proxy). Default false. */
  tls?: boolean;
}

/** One node class as `/object_info` describes it (the workflow layer's definition). */
export type ObjectInfoNode = NodeDefinition;

/** A backend's `/object_info`: node class name to its definition. */
export type BackendObjectInfo = ObjectInfo;

/** Health as the monitor sees it. */
export type BackendState = "unknown" | "up" | "down";

/** What gov currently knows about a backend. */
export interface BackendStatus {
  /** The backend's id. */
  id: string;
  /** Health after hysteresis. */
  state: BackendState;
  /** When the last probe finished (ms since epoch), or 0. */
  lastProbeAt: number;
  /** Why the last probe failed, when it did. */
  lastError?: string;
  /** Consecutive failed probes. */
  failures: number;
  /** Consecutive successful probes. */
  successes: number;
  /** ComfyUI's queue_remaining (running + pending), from `/prompt` or `/ws` status. */
  queueRemaining: number;
  /** Prompts gov has dispatched there and not yet seen finish. */
  inFlight: number;
  /** First device's VRAM in bytes, from `/system_stats`. */
  vram?: { total: number; free: number };
  /** ComfyUI version from `/system_stats`, when reported. */
  comfyuiVersion?: string;
  /** Node classes from `/object_info`. */
  nodeClasses: string[];
  /** Model names by loader input (e.g. `ckpt_name`), from COMBO choices in `/object_info`. */
  models: Record<string, string[]>;
  /** When `nodeClasses` and `models` were learned (ms since epoch); absent until then. */
  capabilitiesAt?: number;
  /** Whether a `/ws` socket is open, so `queueRemaining` is live rather than per probe. */
  statusSocket?: boolean;
}

/** One refusal reason per backend, for {@linkcode PromptRequirements} that fit nowhere. */
export interface Refusal {
  /** The backend's id. */
  backend: string;
  /** Human reason: "down", "missing node X", "missing model Y", "queue full (4/4)". */
  reason: string;
  /**
   * Machine-readable kind. `down`, `unknown` and `queue_full` may pass (retry later);
   * `missing_node` and `missing_model` will not until the backend changes; `excluded` and
   * `not_found` come from the caller's options.
   */
  kind?: RefusalKind;
}

/** Why a backend was refused; see {@linkcode Refusal}. */
export type RefusalKind =
  | "down"
  | "unknown"
  | "queue_full"
  | "missing_node"
  | "missing_model"
  | "excluded"
  | "not_found";
