/**
 * Where a job's prompt can run: conversion and patching of the submitted workflow against
 * the node definitions the backends reported, and the placement verdict (a backend now,
 * wait, or never) with one reason per refusing backend.
 *
 * @module
 */
import { GovError } from "../errors.ts";
import type {
  BackendConfig,
  BackendStatus,
  PromptRequirements,
  Refusal,
} from "../backends/types.ts";
import {
  type ApiPrompt,
  isApiPrompt,
  isTransient,
  isUiWorkflow,
  learnedObjectInfo,
  mergeObjectInfo,
  NoBackendError,
  type ObjectInfo,
  patchPrompt,
  promptRequirements,
  selectBackend,
  toApiPrompt,
  UnknownNodeError,
} from "./backend_api.ts";
import { type BackendHealth, JobInputError, type Placement } from "./dispatch_types.ts";
import type { JobChange } from "./store.ts";
import type { Job } from "./types.ts";

/**
 * Decides where prompts go, from the configured backends and what the health view knows.
 *
 * @example
 * ```ts
 * import { HealthMonitor } from "./backend_api.ts";
 * const monitor = new HealthMonitor([]);
 * const prompt = {};
 * const placer = new Placer(() => [], monitor);
 * const v = placer.placeFor(prompt, null, []);
 * ```
 */
export class Placer {
  #backends: () => BackendConfig[];
  #monitor: BackendHealth;
  /** The last merge of the backends' definitions, and what it was made from. */
  #merged?: { parts: (ObjectInfo | undefined)[]; info: ObjectInfo | undefined };

  constructor(backends: () => BackendConfig[], monitor: BackendHealth) {
    this.#backends = backends;
    this.#monitor = monitor;
  }

  /**
   * Node definitions for converting UI workflows: every backend's that the monitor has
   * learned, backends that are up first (first wins per class).
   *
   * @example
   * ```ts
   * declare const placer: Placer;
   * const info = placer.objectInfo();
   * ```
   */
  objectInfo(): ObjectInfo | undefined {
    const statuses = this.#monitor.statuses();
    const order = [
      ...statuses.filter((s) => s.state === "up"),
      ...statuses.filter((s) => s.state !== "up"),
    ];
    const parts = order.map((s) => learnedObjectInfo(this.#monitor, s.id));
    // Merging walks every class of every backend: done again only when a backend's
    // definitions (kept by the monitor until it learns them anew) or the order changed,
    // not for every submitted job.
    const last = this.#merged;
    if (last && last.parts.length === parts.length && last.parts.every((p, i) => p === parts[i])) {
      return last.info;
    }
    const info = mergeObjectInfo(parts);
    this.#merged = { parts, info };
    return info;
  }

  /**
   * Converts and patches. Undefined when that must wait: a UI workflow and no node
   * definitions yet, or node classes unknown while some backend has not been learned.
   * With `keysOnly`, a prompt patched without definitions is not returned (its ranges
   * are checked again once definitions exist).
   *
   * @example
   * ```ts
   * const workflow = {};
   * declare const placer: Placer;
   * const p = placer.prepare(workflow, [["seed", "1"]], placer.objectInfo(), false);
   * ```
   */
  prepare(
    workflow: unknown,
    sets: [string, string][],
    info: ObjectInfo | undefined,
    keysOnly: boolean,
  ): ApiPrompt | undefined {
    if (workflow === null || typeof workflow !== "object" || Array.isArray(workflow)) {
      throw new JobInputError("workflow must be a JSON object (UI workflow or API prompt)");
    }
    // Only a UI workflow waits for node definitions; anything that is neither form is
    // refused now, not stored to fail once a backend is up.
    const w = workflow as Record<string, unknown>;
    if (!info && !isApiPrompt(workflow) && (isUiWorkflow(w) || isUiWorkflow(w.workflow))) {
      return undefined;
    }
    try {
      const prompt = patchPrompt(toApiPrompt(workflow, info), sets, info);
      return !info && keysOnly ? undefined : prompt;
    } catch (err) {
      if (err instanceof UnknownNodeError && this.#someUnlearned()) return undefined;
      if (err instanceof GovError) throw new JobInputError(err.message, { hint: err.hint });
      throw err;
    }
  }

  #someUnlearned(): boolean {
    return this.#backends().some((b) => !learnedObjectInfo(this.#monitor, b.id));
  }

  /**
   * Chooses a backend for a prompt now, or says why not and whether that can change
   * (`wait`) or not (`never`). Backends in `avoid` are tried last.
   *
   * @example
   * ```ts
   * const prompt = {};
   * declare const placer: Placer;
   * const v = placer.placeFor(prompt, null, []);
   * if (v.kind === "ok") console.log(v.backend.id);
   * ```
   */
  placeFor(prompt: ApiPrompt, only: string | null, avoid: string[]): Placement {
    return this.placeReq(promptRequirements(prompt), only, avoid, this.#monitor.statuses());
  }

  /**
   * {@linkcode Placer.placeFor} for requirements already computed, against given statuses
   * (one snapshot per dispatch pass).
   *
   * @example
   * ```ts
   * import { HealthMonitor } from "./backend_api.ts";
   * import type { PromptRequirements } from "../comfyui/requirements.ts";
   * const monitor = new HealthMonitor([]);
   * declare const placer: Placer;
   * declare const req: PromptRequirements;
   * const v = placer.placeReq(req, null, [], monitor.statuses());
   * ```
   */
  placeReq(
    req: PromptRequirements,
    only: string | null,
    avoid: string[],
    statuses: BackendStatus[],
  ): Placement {
    const backends = this.#backends();
    const base = only ? { only } : {};
    const attempt = (exclude: string[]) =>
      selectBackend(req, backends, statuses, exclude.length ? { ...base, exclude } : base);
    let refusals: Refusal[] = [];
    for (const exclude of avoid.length ? [avoid, []] : [[]]) {
      // Backends that failed this job are tried last, not never: they may be back.
      try {
        return { kind: "ok", backend: attempt(exclude) };
      } catch (err) {
        if (!(err instanceof NoBackendError)) throw err;
        refusals = err.refusals;
      }
    }
    refusals = refusals.map((r) => explain(r, req, statuses));
    const never = backends.length === 0 || !refusals.some(mayPass);
    const what = backends.length === 0
      ? "no backends are configured"
      : refusals.map((r) => `${r.backend}: ${r.reason}`).join("; ");
    return never
      ? { kind: "never", refusals, message: `no backend can run this prompt: ${what}` }
      : { kind: "wait", refusals, message: `waiting for a backend: ${what}` };
  }

  /**
   * Whether some backend that is up has a free slot.
   *
   * @example
   * ```ts
   * import { HealthMonitor } from "./backend_api.ts";
   * import type { BackendConfig } from "../backends/types.ts";
   * const monitor = new HealthMonitor([]);
   * declare const backend: BackendConfig;
   * declare const placer: Placer;
   * if (!placer.hasRoom(monitor.statuses())) console.log("every backend is full");
   * ```
   */
  hasRoom(statuses: BackendStatus[]): boolean {
    const backends = this.#backends();
    return statuses.some((s) => {
      const b = backends.find((x) => x.id === s.id);
      return b !== undefined && s.state === "up" &&
        Math.max(s.queueRemaining, s.inFlight) < b.max_queue;
    });
  }
}

/**
 * A down backend known (from an earlier probe) to lack a node class will not grow it by
 * coming back: its refusal becomes permanent and says so.
 */
function explain(r: Refusal, req: PromptRequirements, statuses: BackendStatus[]): Refusal {
  if (r.kind !== "down") return r;
  const s = statuses.find((x) => x.id === r.backend);
  if (!s || s.nodeClasses.length === 0) return r;
  const missing = req.classTypes.filter((c) => !s.nodeClasses.includes(c));
  if (missing.length === 0) return r;
  return {
    backend: r.backend,
    reason: `${r.reason}; missing node${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`,
    kind: "missing_node",
  };
}

function mayPass(r: Refusal): boolean {
  if (r.kind === undefined) return !/missing (node|model)/i.test(r.reason);
  return isTransient(r);
}

/** Why a job left the queue unplaced after `limitMs`, worded for the person who sent it. */
export function expiryReason(job: Job, limitMs: number): string {
  const secs = Math.round(limitMs / 100) / 10;
  const why = job.refusals?.length
    ? job.refusals.map((r) => `${r.backend}: ${r.reason}`).join("; ")
    : job.prompt
    ? "no backend had room for it"
    : "no backend has reported its node definitions yet";
  return `no backend took the job within the queue timeout (${secs} s): ${why}`;
}

/**
 * The change that records the `waiting` event of a UI workflow that no backend's node definitions can convert yet
 * (none has answered `/object_info`): sent once, so `gov submit` says why nothing happens.
 */
export const WAITING_FOR_DEFINITIONS: JobChange = {
  set: {},
  event: {
    type: "waiting",
    data: { reason: "waiting for node definitions: no backend answered /object_info yet" },
  },
  from: ["queued"],
};
