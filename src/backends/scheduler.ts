/**
 * Picking the backend for a prompt.
 *
 * A backend is eligible when it is up, has learned its capabilities, has every node class
 * and every model file the prompt needs, and its queue is below `max_queue`. Among the
 * eligible ones the least loaded wins, by this score:
 *
 * ```text
 * load  = max(queueRemaining, inFlight)
 * score = (load + 1) / weight
 * ```
 *
 * `queueRemaining` is what ComfyUI reports (every prompt it holds, gov's and anyone else's)
 * and may be a probe interval old; `inFlight` counts gov's own dispatches and is current.
 * gov's prompts are part of ComfyUI's queue, so adding the two would count them twice; the
 * larger of the two is the best estimate of what is waiting. The `+ 1` is the prompt being
 * placed: `score` is roughly how many prompts per unit of capacity will be ahead of and
 * including it, so an idle weight-2 backend (0.5) beats an idle weight-1 one (1.0), and a
 * weight-2 backend with one prompt (1.0) ties with an idle weight-1 one. Ties go to fewer
 * in-flight prompts, then the shorter ComfyUI queue, then the higher weight, then the id,
 * so the choice is deterministic.
 *
 * A prompt that fits nowhere raises {@linkcode NoBackendError}, which says per backend why
 * it was refused.
 *
 * @module
 */
import { GovError } from "../errors.ts";
import { sameModelName } from "./capabilities.ts";
import type {
  BackendConfig,
  BackendStatus,
  PromptRequirements,
  Refusal,
  RefusalKind,
} from "./types.ts";

/** Options of {@linkcode selectBackend}. */
export interface SelectOptions {
  /** Backends not to use (they already failed this job). */
  exclude?: string[];
  /** Use this backend only (still refused, with its reason, when it is unfit). */
  only?: string;
}

/** An eligible backend with its score (lower is better). */
export interface Candidate {
  backend: BackendConfig;
  status: BackendStatus;
  load: number;
  score: number;
}

/**
 * No backend can take the prompt. `refusals` holds one reason per backend considered, and
 * the message lists them all, e.g.
 * `no backend can run this prompt: gpu1: down (connection refused); gpu2: missing node Foo`.
 *
 * @example
 * ```ts
 * import { NoBackendError, selectBackend } from "@/backends/scheduler.ts";
 * import { type HealthMonitor } from "@/backends/health.ts";
 * import { type BackendConfig, type PromptRequirements } from "@/backends/types.ts";
 * declare const backends: BackendConfig[];
 * declare const monitor: HealthMonitor;
 * declare const req: PromptRequirements;
 *
 * try {
 *   selectBackend(req, backends, monitor.statuses());
 * } catch (e) {
 *   if (e instanceof NoBackendError && e.retryable) console.log("requeue later");
 * }
 * ```
 */
export class NoBackendError extends GovError {
  /** One refusal per backend considered. */
  refusals: Refusal[];
  constructor(refusals: Refusal[], configured: number) {
    super(
      configured === 0
        ? "no backend can run this prompt: no backends are configured"
        : `no backend can run this prompt: ${
          refusals.map((r) => `${r.backend}: ${r.reason}`).join("; ")
        }`,
      {
        hint: configured === 0
          ? "add one with `gov backend add <id> --host H --port N`"
          : "see `gov backend list` for each backend's health, node classes and models",
      },
    );
    this.name = "NoBackendError";
    this.refusals = refusals;
  }

  /**
   * Whether waiting could help: some refusal is transient (down, not probed yet, queue
   * full), so the prompt may fit later. False when no backend is configured, or when every
   * backend lacks a node or model, or was excluded.
   */
  get retryable(): boolean {
    return this.refusals.some(isTransient);
  }
}

const TRANSIENT: RefusalKind[] = ["queue_full", "down", "unknown"];

function list(items: string[], max = 5): string {
  return items.length <= max
    ? items.join(", ")
    : `${items.slice(0, max).join(", ")} and ${items.length - max} more`;
}

/**
 * Why `backend` cannot take a prompt with requirements `req`, or undefined when it can.
 *
 * @example
 * ```ts
 * import { refusalFor } from "@/backends/scheduler.ts";
 * import { type HealthMonitor } from "@/backends/health.ts";
 * import { type BackendConfig, type PromptRequirements } from "@/backends/types.ts";
 * declare const backend: BackendConfig;
 * declare const monitor: HealthMonitor;
 * declare const req: PromptRequirements;
 *
 * const why = refusalFor(req, backend, monitor.status(backend.id));
 * if (why) console.log(why.reason);
 * ```
 */
export function refusalFor(
  req: PromptRequirements,
  backend: BackendConfig,
  status: BackendStatus | undefined,
): Refusal | undefined {
  const refuse = (kind: RefusalKind, reason: string): Refusal => ({
    backend: backend.id,
    reason,
    kind,
  });
  if (!status || status.state === "unknown") {
    return refuse("unknown", "health unknown yet (not probed)");
  }
  if (status.state === "down") {
    return refuse("down", status.lastError ? `down (${status.lastError})` : "down");
  }
  if (status.capabilitiesAt === undefined && status.nodeClasses.length === 0) {
    return refuse("unknown", "node classes unknown yet (object_info not loaded)");
  }
  const have = new Set(status.nodeClasses);
  const missingNodes = [...new Set(req.classTypes)].filter((c) => !have.has(c)).sort();
  const missingModels: string[] = [];
  for (const m of req.models) {
    const offered = status.models[m.input];
    // An input the backend does not list as a model COMBO cannot be judged here; the node
    // class check covers a missing loader, and ComfyUI validates the value itself.
    if (offered === undefined) continue;
    if (!offered.some((o) => sameModelName(o, m.name))) {
      const label = `${m.name} (${m.input})`;
      if (!missingModels.includes(label)) missingModels.push(label);
    }
  }
  if (missingNodes.length || missingModels.length) {
    const parts: string[] = [];
    if (missingNodes.length) {
      parts.push(`missing node${missingNodes.length > 1 ? "s" : ""} ${list(missingNodes)}`);
    }
    if (missingModels.length) {
      parts.push(`missing model${missingModels.length > 1 ? "s" : ""} ${list(missingModels)}`);
    }
    return refuse(missingNodes.length ? "missing_node" : "missing_model", parts.join("; "));
  }
  const load = loadOf(status);
  if (load >= backend.max_queue) {
    return refuse("queue_full", `queue full (${load}/${backend.max_queue})`);
  }
  return undefined;
}

/**
 * The load of a backend: the larger of ComfyUI's queue_remaining and gov's in-flight count.
 *
 * @example
 * ```ts
 * import { loadOf } from "@/backends/scheduler.ts";
 * import { type BackendStatus } from "@/backends/types.ts";
 * declare const status: BackendStatus;
 *
 * loadOf({ ...status, queueRemaining: 2, inFlight: 3 }); // 3
 * ```
 */
export function loadOf(status: BackendStatus): number {
  return Math.max(status.queueRemaining, status.inFlight);
}

/**
 * The score of a backend (lower is better): `(load + 1) / weight`.
 *
 * @example
 * ```ts
 * import { scoreOf } from "@/backends/scheduler.ts";
 * import { type BackendConfig, type BackendStatus } from "@/backends/types.ts";
 * declare const backend: BackendConfig;
 * declare const status: BackendStatus;
 *
 * scoreOf(backend, status);
 * ```
 */
export function scoreOf(backend: BackendConfig, status: BackendStatus): number {
  return (loadOf(status) + 1) / backend.weight;
}

function compare(a: Candidate, b: Candidate): number {
  return a.score - b.score ||
    a.status.inFlight - b.status.inFlight ||
    a.status.queueRemaining - b.status.queueRemaining ||
    b.backend.weight - a.backend.weight ||
    (a.backend.id < b.backend.id ? -1 : a.backend.id > b.backend.id ? 1 : 0);
}

/**
 * Every backend considered, split into eligible candidates (best first) and refusals.
 * {@linkcode selectBackend} takes the first candidate; `gov backend list` and the gateway
 * use the rest to explain.
 *
 * @example
 * ```ts
 * import { rankBackends } from "@/backends/scheduler.ts";
 * import { type HealthMonitor } from "@/backends/health.ts";
 * import { type BackendConfig, type PromptRequirements } from "@/backends/types.ts";
 * declare const backends: BackendConfig[];
 * declare const monitor: HealthMonitor;
 * declare const req: PromptRequirements;
 *
 * const { candidates, refusals } = rankBackends(req, backends, monitor.statuses());
 * ```
 */
export function rankBackends(
  req: PromptRequirements,
  backends: BackendConfig[],
  statuses: BackendStatus[],
  opts: SelectOptions = {},
): { candidates: Candidate[]; refusals: Refusal[] } {
  const byId = new Map(statuses.map((s) => [s.id, s]));
  const refusals: Refusal[] = [];
  const candidates: Candidate[] = [];
  let pool = backends;
  if (opts.only !== undefined) {
    pool = backends.filter((b) => b.id === opts.only);
    if (pool.length === 0) {
      refusals.push({
        backend: opts.only,
        reason: "not in backends.toml",
        kind: "not_found",
      });
    }
  }
  const exclude = new Set(opts.exclude ?? []);
  for (const b of pool) {
    if (exclude.has(b.id)) {
      refusals.push({
        backend: b.id,
        reason: "excluded (already failed this job)",
        kind: "excluded",
      });
      continue;
    }
    const status = byId.get(b.id);
    const refusal = refusalFor(req, b, status);
    if (refusal) {
      refusals.push(refusal);
      continue;
    }
    candidates.push({
      backend: b,
      status: status!,
      load: loadOf(status!),
      score: scoreOf(b, status!),
    });
  }
  candidates.sort(compare);
  return { candidates, refusals };
}

/**
 * Picks the backend for a prompt: eligible (up, capable, queue not full) and least loaded
 * by `(max(queueRemaining, inFlight) + 1) / weight`. Throws {@linkcode NoBackendError}
 * with one refusal per backend when none fits, including when there are no backends.
 *
 * @example
 * ```ts
 * import { selectBackend } from "@/backends/scheduler.ts";
 * import { type HealthMonitor } from "@/backends/health.ts";
 * import { type BackendConfig } from "@/backends/types.ts";
 * import { promptRequirements } from "@/workflow/requirements.ts";
 * import { type ApiPrompt } from "@/workflow/types.ts";
 * declare const prompt: ApiPrompt;
 *
 * declare const backends: BackendConfig[];
 * declare const monitor: HealthMonitor;
 *
 * const backend = selectBackend(promptRequirements(prompt), backends, monitor.statuses());
 * ```
 */
export function selectBackend(
  req: PromptRequirements,
  backends: BackendConfig[],
  statuses: BackendStatus[],
  opts: SelectOptions = {},
): BackendConfig {
  const { candidates, refusals } = rankBackends(req, backends, statuses, opts);
  if (candidates.length === 0) throw new NoBackendError(refusals, backends.length);
  return candidates[0].backend;
}

/** Whether a refusal may pass by itself (down, not probed yet, queue full). */
export function isTransient(r: Refusal): boolean {
  return r.kind !== undefined && TRANSIENT.includes(r.kind);
}
