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
  type PromptApi,
  PromptDetachedError,
  PromptLostError,
  PromptOutcomeUnknownError,
  PromptRejectedError,
  type RunEvent,
  runPrompt,
  type RunResult,
  SharedSocket,
} from "../backends/comfyui/mod.ts";
import { HealthMonitor } from "../backends/health.ts";
import { isTransient, NoBackendError, selectBackend } from "../backends/scheduler.ts";
import { readBackends } from "../backends/registry.ts";
import { isApiPrompt, isUiWorkflow, toApiPrompt } from "../workflow/convert/mod.ts";
import { UnknownNodeError } from "../workflow/errors.ts";
import { patchPrompt } from "../workflow/patch.ts";
import { promptRequirements } from "../workflow/requirements.ts";
import type { ObjectInfo } from "../comfyui/object_info.ts";
import type { ApiPrompt } from "../comfyui/prompt.ts";
import type { JobOutput } from "./types.ts";

export {
  BackendUnreachableError,
  ComfyUIClient,
  HealthMonitor,
  isApiPrompt,
  isTransient,
  isUiWorkflow,
  NoBackendError,
  patchPrompt,
  PromptDetachedError,
  PromptLostError,
  PromptOutcomeUnknownError,
  PromptRejectedError,
  promptRequirements,
  readBackends,
  runPrompt,
  selectBackend,
  SharedSocket,
  toApiPrompt,
  UnknownNodeError,
};
export type { ApiPrompt, ObjectInfo, PromptApi, RunEvent, RunResult };

/**
 * A client for a backend, named by its id in error messages. Aborting `signal` ends its
 * requests in flight at once (a job moving off a wedged backend must not wait for a
 * request timeout).
 *
 * @example
 * ```ts
 * import type { BackendConfig } from "../backends/types.ts";
 * declare const backend: BackendConfig;
 * const detach = new AbortController();
 * const client = clientFor(backend, detach.signal);
 * ```
 */
export function clientFor(b: BackendConfig, signal?: AbortSignal): ComfyUIClient {
  return new ComfyUIClient({ ...b, id: b.id, ...(signal ? { signal } : {}) });
}

/**
 * Fetches an output file from a backend's `/view` as a response whose body streams (the
 * gateway passes it through without holding a video in memory). Throws
 * {@linkcode BackendUnreachableError} when the backend does not answer.
 *
 * @example
 * ```ts
 * import type { BackendConfig } from "../backends/types.ts";
 * import type { Job } from "./types.ts";
 * declare const backend: BackendConfig;
 * declare const job: Job;
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
 * import type { BackendConfig } from "../backends/types.ts";
 * import type { Job } from "./types.ts";
 * declare const backend: BackendConfig;
 * declare const job: Job;
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
 * Merges the node definitions of several backends for converting and validating a
 * workflow before a backend is chosen: the first definition of a class wins, except that
 * COMBO choices are pooled, so a model any backend has passes `--set` validation (the
 * scheduler then sends the prompt only where that model is).
 *
 * @example
 * ```ts
 * import type { ObjectInfo } from "../comfyui/object_info.ts";
 * declare const a: ObjectInfo;
 * declare const b: ObjectInfo;
 * const info = mergeObjectInfo([a, b]);
 * ```
 */
export function mergeObjectInfo(infos: (ObjectInfo | undefined)[]): ObjectInfo | undefined {
  const present = infos.filter((i): i is ObjectInfo => !!i);
  if (present.length === 0) return undefined;
  if (present.length === 1) return present[0];
  const merged: ObjectInfo = {};
  // Classes copied before pooling: the monitor's object_info stays as the backend sent it.
  const copied = new Set<string>();
  for (const info of present) {
    for (const [name, def] of Object.entries(info)) {
      if (!merged[name]) {
        merged[name] = def;
        continue;
      }
      for (const section of ["required", "optional"] as const) {
        for (const [input, spec] of Object.entries(def.input?.[section] ?? {})) {
          const pooled = poolCombo(merged[name].input?.[section]?.[input], spec);
          if (!pooled) continue;
          if (!copied.has(name)) {
            merged[name] = structuredClone(merged[name]);
            copied.add(name);
          }
          merged[name].input![section]![input] = pooled;
        }
      }
    }
  }
  return merged;
}

type Spec = [unknown, Record<string, unknown>?];

/** The union of two COMBO specs (either list form), or undefined when not both COMBOs. */
function poolCombo(a: Spec | undefined, b: Spec | undefined): Spec | undefined {
  const choices = (s: Spec | undefined): unknown[] | undefined => {
    if (!Array.isArray(s) || (s as unknown[]).length === 0) return undefined;
    if (Array.isArray(s[0])) return s[0];
    if (s[0] === "COMBO" && Array.isArray(s[1]?.options)) return s[1]!.options as unknown[];
    return undefined;
  };
  const ca = choices(a);
  const cb = choices(b);
  if (!ca || !cb) return undefined;
  const extra = cb.filter((x) => !ca.includes(x));
  if (extra.length === 0) return undefined;
  const all = [...ca, ...extra];
  if (Array.isArray(a![0])) return [all, ...(a!.length > 1 ? [a![1]] : [])] as Spec;
  return ["COMBO", { ...a![1], options: all }];
}

/**
 * The node definitions the monitor learned from a backend, typed for the workflow layer.
 *
 * @example
 * ```ts
 * const monitor = new HealthMonitor([]);
 * const info = learnedObjectInfo(monitor, "gpu1");
 * ```
 */
export function learnedObjectInfo(
  monitor: { objectInfo(id: string): ObjectInfo | undefined },
  id: string,
): ObjectInfo | undefined {
  return monitor.objectInfo(id);
}

/**
 * Whether an error is "the backend did not answer" (fail over), as opposed to "the
 * backend answered no" (no retry).
 *
 * @example
 * ```ts
 * declare const err: unknown;
 * declare function failover(): void;
 * if (isUnreachable(err)) failover();
 * ```
 */
export function isUnreachable(err: unknown): boolean {
  return err instanceof BackendUnreachableError;
}
