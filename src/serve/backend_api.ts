/**
 * The gateway's one doorway to the backends and workflow layers: re-exports what it uses,
 * plus the two small things it needs beyond them (`/view` as a stream to pass through,
 * and node definitions merged across backends), so the rest of `src/serve/` depends on
 * one file.
 *
 * @module
 */
import type { BackendConfig } from "../backends/types.ts";
import {
  BackendUnreachableError,
  ComfyUIClient,
  PromptDetachedError,
  PromptLostError,
  PromptRejectedError,
  type RunEvent,
  type RunResult,
} from "../backends/client.ts";
import { HealthMonitor } from "../backends/health.ts";
import { isTransient, NoBackendError, selectBackend } from "../backends/scheduler.ts";
import { readBackends } from "../backends/registry.ts";
import { isApiPrompt, toApiPrompt } from "../workflow/convert.ts";
import { UnknownNodeError } from "../workflow/errors.ts";
import { patchPrompt } from "../workflow/patch.ts";
import { promptRequirements } from "../workflow/requirements.ts";
import type { ObjectInfo } from "../workflow/object_info.ts";
import type { ApiPrompt } from "../workflow/types.ts";
import type { JobOutput } from "./types.ts";

export {
  BackendUnreachableError,
  ComfyUIClient,
  HealthMonitor,
  isApiPrompt,
  isTransient,
  NoBackendError,
  patchPrompt,
  PromptDetachedError,
  PromptLostError,
  PromptRejectedError,
  promptRequirements,
  readBackends,
  selectBackend,
  toApiPrompt,
  UnknownNodeError,
};
export type { ApiPrompt, ObjectInfo, RunEvent, RunResult };

/**
 * A client for a backend, named by its id in error messages.
 *
 * @example
 * ```ts
 * const client = clientFor(backend);
 * ```
 */
export function clientFor(b: BackendConfig): ComfyUIClient {
  return new ComfyUIClient({ ...b, id: b.id });
}

/**
 * Fetches an output file from a backend's `/view` as a response whose body streams (the
 * gateway passes it through without holding a video in memory). Throws
 * {@linkcode BackendUnreachableError} when the backend does not answer.
 *
 * @example
 * ```ts
 * const res = await viewResponse(backend, job.outputs[0]);
 * ```
 */
export async function viewResponse(b: BackendConfig, out: JobOutput): Promise<Response> {
  const client = clientFor(b);
  const q = new URLSearchParams({
    filename: out.filename,
    subfolder: out.subfolder,
    type: out.type,
  });
  try {
    return await fetch(`${client.baseUrl}/view?${q}`, {
      headers: b.token ? { Authorization: `Bearer ${b.token}` } : {},
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new BackendUnreachableError(
      client.label,
      client.baseUrl,
      (err as Error)?.message ?? String(err),
    );
  }
}

/**
 * The `/view` URL of an output on its backend (what in-process `gov submit` prints).
 *
 * @example
 * ```ts
 * viewUrl(backend, job.outputs[0]); // http://10.0.0.5:8188/view?filename=...
 * ```
 */
export function viewUrl(b: BackendConfig, out: JobOutput): string {
  const q = new URLSearchParams({
    filename: out.filename,
    subfolder: out.subfolder,
    type: out.type,
  });
  return `${clientFor(b).baseUrl}/view?${q}`;
}

/**
 * Merges the node definitions of several backends (first wins per class), for converting
 * UI workflows when any of them may run the prompt.
 *
 * @example
 * ```ts
 * const info = mergeObjectInfo([a, b]);
 * ```
 */
export function mergeObjectInfo(infos: (ObjectInfo | undefined)[]): ObjectInfo | undefined {
  const present = infos.filter((i): i is ObjectInfo => !!i);
  if (present.length === 0) return undefined;
  if (present.length === 1) return present[0];
  const merged: ObjectInfo = {};
  for (const info of present) {
    for (const [k, v] of Object.entries(info)) if (!(k in merged)) merged[k] = v;
  }
  return merged;
}

/**
 * The node definitions the monitor learned from a backend, typed for the workflow layer.
 *
 * @example
 * ```ts
 * const info = learnedObjectInfo(monitor, "gpu1");
 * ```
 */
export function learnedObjectInfo(monitor: HealthMonitor, id: string): ObjectInfo | undefined {
  return monitor.objectInfo(id) as ObjectInfo | undefined;
}

/**
 * Whether an error is "the backend did not answer" (fail over), as opposed to "the
 * backend answered no" (no retry).
 *
 * @example
 * ```ts
 * if (isUnreachable(err)) failover();
 * ```
 */
export function isUnreachable(err: unknown): boolean {
  return err instanceof BackendUnreachableError;
}
