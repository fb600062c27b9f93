/**
 * Reading a prompt's outcome from ComfyUI's `/history` entry: its status, ComfyUI's
 * exception when it failed, and every file its output nodes listed.
 *
 * @module
 */
import type { HistoryEntry, OutputRef } from "../../comfyui/api.ts";

/** How a prompt ended. */
export interface RunResult {
  /** The prompt id. */
  promptId: string;
  /** success, error (ComfyUI's `execution_error`), or interrupted (cancelled). */
  status: "success" | "error" | "interrupted";
  /** Every file the output nodes listed, in node order. */
  outputs: OutputRef[];
  /** ComfyUI's exception, when the status is error (or a note when interrupted). */
  error?: { message: string; nodeId?: string; nodeType?: string; exceptionType?: string };
  /** How the end was observed: over `/ws`, or by polling `/history`. */
  transport: "ws" | "poll";
}

/** Output lists in a node's history outputs that hold files (images, gifs, audio, ...). */
export function outputsFromHistory(entry: HistoryEntry): OutputRef[] {
  const refs: OutputRef[] = [];
  for (const [nodeId, out] of Object.entries(entry.outputs ?? {})) {
    refs.push(...outputsFromNode(nodeId, out));
  }
  return refs;
}

/** The files one node's output lists (`images`, `gifs`, `audio`, ...) name. */
export function outputsFromNode(nodeId: string, out: Record<string, unknown>): OutputRef[] {
  const refs: OutputRef[] = [];
  for (const [kind, list] of Object.entries(out ?? {})) {
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      if (typeof item !== "object" || item === null) continue;
      const f = item as Record<string, unknown>;
      if (typeof f.filename !== "string") continue;
      refs.push({
        nodeId,
        filename: f.filename,
        subfolder: typeof f.subfolder === "string" ? f.subfolder : "",
        type: typeof f.type === "string" ? f.type : "output",
        kind,
      });
    }
  }
  return refs;
}

/**
 * Reads the outcome of a finished prompt from its history entry.
 *
 * @example
 * ```ts
 * import { ComfyUIClient } from "./client.ts";
 * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
 * const r = resultFromHistory("p1", await client.history("p1") ?? {}, "poll");
 * ```
 */
export function resultFromHistory(
  promptId: string,
  entry: HistoryEntry,
  transport: "ws" | "poll",
): RunResult {
  const messages = entry.status?.messages ?? [];
  const find = (t: string) => messages.find((m) => Array.isArray(m) && m[0] === t)?.[1];
  const outputs = outputsFromHistory(entry);
  const interrupted = find("execution_interrupted");
  if (interrupted) {
    return {
      promptId,
      status: "interrupted",
      outputs,
      error: {
        message: "interrupted",
        nodeId: strOrUndef(interrupted.node_id),
        nodeType: strOrUndef(interrupted.node_type),
      },
      transport,
    };
  }
  const failed = find("execution_error");
  if (entry.status?.status_str === "error" || failed) {
    return {
      promptId,
      status: "error",
      outputs,
      error: errorFromEvent(failed ?? {}),
      transport,
    };
  }
  return { promptId, status: "success", outputs, transport };
}

function strOrUndef(v: unknown): string | undefined {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : undefined;
}

function errorFromEvent(d: Record<string, unknown>): NonNullable<RunResult["error"]> {
  const message = typeof d.exception_message === "string" && d.exception_message.trim() !== ""
    ? d.exception_message.trim()
    : "ComfyUI reported an execution error";
  const e: NonNullable<RunResult["error"]> = { message };
  const nodeId = strOrUndef(d.node_id);
  if (nodeId !== undefined) e.nodeId = nodeId;
  const nodeType = strOrUndef(d.node_type);
  if (nodeType !== undefined) e.nodeType = nodeType;
  const exType = strOrUndef(d.exception_type);
  if (exType !== undefined) e.exceptionType = exType;
  return e;
}
