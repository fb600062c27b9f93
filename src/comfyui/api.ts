/**
 * Shapes of ComfyUI's HTTP and WebSocket answers that gov reads: `/system_stats`,
 * `/history`, `/queue` positions, `/ws` messages, and the errors of `POST /prompt`.
 *
 * @module
 */

/** What `GET /system_stats` answers (the parts gov reads; the rest is kept). */
export interface SystemStats {
  system: {
    os?: string;
    ram_total?: number;
    ram_free?: number;
    comfyui_version?: string;
    python_version?: string;
    pytorch_version?: string;
    embedded_python?: boolean;
    argv?: string[];
    [key: string]: unknown;
  };
  devices: {
    name?: string;
    type?: string;
    index?: number;
    vram_total?: number;
    vram_free?: number;
    torch_vram_total?: number;
    torch_vram_free?: number;
    [key: string]: unknown;
  }[];
}

/** One file a prompt produced, as `/history` lists it and `/view` serves it. */
export interface OutputRef {
  /** The node that produced it. */
  nodeId: string;
  /** File name inside the output folder. */
  filename: string;
  /** Sub-folder, "" for none. */
  subfolder: string;
  /** "output" for saved files, "temp" for previews. */
  type: string;
  /** Which list of the node's output it came from: "images", "gifs", "audio", ... */
  kind?: string;
}

/** One `/history/{id}` entry. */
export interface HistoryEntry {
  prompt?: unknown[];
  outputs?: Record<string, Record<string, unknown>>;
  status?: {
    status_str?: string;
    completed?: boolean;
    messages?: [string, Record<string, unknown>][];
  };
  meta?: Record<string, unknown>;
}

/** Where a prompt is on a backend. */
export type PromptLocation = "pending" | "running" | "done";

/** A message of ComfyUI's `/ws`. */
export interface WsMessage {
  type: string;
  data: Record<string, unknown>;
}

/** ComfyUI's top-level error object of a 400 from `POST /prompt`. */
export interface PromptErrorInfo {
  type: string;
  message: string;
  details: string;
  extra_info?: Record<string, unknown>;
}

/** ComfyUI's per-node validation errors of a 400 from `POST /prompt`. */
export type NodeErrors = Record<string, {
  errors: { type?: string; message?: string; details?: string; extra_info?: unknown }[];
  dependent_outputs?: string[];
  class_type?: string;
}>;
