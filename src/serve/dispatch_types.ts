/**
 * What the dispatcher is given and what it answers with: a job request, the errors a caller
 * sees, the options, and the dependencies it takes from outside (the backend client, the
 * clock, the health view), so tests can run it against an in-memory backend.
 *
 * @module
 */
import { GovError, UsageError } from "../errors.ts";
import type { BackendConfig, BackendStatus, Refusal } from "../backends/types.ts";
import { ComfyUIClient, type ObjectInfo, type PromptApi } from "./backend_api.ts";
import type { JobStore } from "./store.ts";

/** A job submission: the body of `POST /v1/jobs`. */
export interface JobRequest {
  /** UI-format workflow or API-format prompt. */
  workflow: unknown;
  /** `KEY=VALUE` parameter changes, in order. */
  sets?: [string, string][];
  /** Pin the job to this backend id. */
  backend?: string;
  /**
   * Most milliseconds the job may wait in the queue for a backend before it fails; 0 = no
   * limit. Default: the dispatcher's `queueTimeoutMs`.
   */
  queueTimeoutMs?: number;
  /** The client's `Idempotency-Key`, stored with the job (see `JobStore.byIdempotencyKey`). */
  idempotencyKey?: string;
}

/**
 * The submission is wrong (bad workflow, unknown parameter, out-of-range value, unknown
 * backend, or no backend could ever run it). HTTP 400; no job was created.
 *
 * @example
 * ```ts
 * throw new JobInputError("unknown parameter 'sead'");
 * ```
 */
export class JobInputError extends UsageError {
  /** Per-backend reasons, when no backend can run the prompt. */
  refusals?: Refusal[];
  constructor(message: string, options?: { hint?: string; refusals?: Refusal[] }) {
    super(message, { hint: options?.hint });
    this.name = "JobInputError";
    this.refusals = options?.refusals;
  }
}

/**
 * The job is in a state that does not allow the operation (cancelling a finished job).
 * HTTP 409.
 *
 * @example
 * ```ts
 * throw new JobStateError("job 'x' is already completed");
 * ```
 */
export class JobStateError extends GovError {
  constructor(message: string) {
    super(message);
    this.name = "JobStateError";
  }
}

/**
 * What the dispatcher reads of backend health and tells it back. `HealthMonitor` is the real
 * one; tests give a plain object.
 */
export interface BackendHealth {
  /** Current status of every backend. */
  statuses(): BackendStatus[];
  /** Calls `fn` on every change of a backend's status; returns the unsubscribe function. */
  onChange(fn: (s: BackendStatus) => void): () => void;
  /** Counts prompts gov has on a backend (its load, between probes). */
  adjustInFlight(id: string, delta: number): void;
  /** Marks a backend down at once (it failed a job), without waiting for probes. */
  markDown(id: string, reason: string): void;
  /** The node definitions learned from a backend, if any. */
  objectInfo(id: string): ObjectInfo | undefined;
}

/**
 * What the dispatcher takes from the world, injected like the supervisor's `SupervisorDeps`:
 * the defaults ({@linkcode defaultDispatcherDeps}) are the real backend client and clock.
 */
export interface DispatcherDeps {
  /**
   * A client for a backend. Aborting `signal` ends its requests in flight at once;
   * `timeoutMs` bounds each request.
   */
  client: (
    backend: BackendConfig,
    opts?: { signal?: AbortSignal; timeoutMs?: number },
  ) => PromptApi;
  /** Milliseconds since the epoch. */
  now: () => number;
}

/**
 * The real dependencies: ComfyUI over HTTP and `Date.now`.
 *
 * @example
 * ```ts
 * const deps = { ...defaultDispatcherDeps(), now: () => 0 };
 * ```
 */
export function defaultDispatcherDeps(): DispatcherDeps {
  return {
    client: (b, opts) =>
      new ComfyUIClient({
        ...b,
        id: b.id,
        ...(opts?.signal ? { signal: opts.signal } : {}),
        ...(opts?.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
      }),
    now: () => Date.now(),
  };
}

/** Options of the dispatcher. */
export interface DispatcherOptions {
  /** Where jobs live. */
  store: JobStore;
  /** Health, load and node definitions of the backends (a `HealthMonitor`). */
  monitor: BackendHealth;
  /** The backends currently configured. */
  backends: () => BackendConfig[];
  /** Most dispatches of one job (first run plus failovers). Default 3. */
  maxAttempts?: number;
  /** One line per notable change, for the operator's log. */
  log?: (line: string) => void;
  /** `/history` poll interval while following a prompt. Default 1000 ms. */
  pollIntervalMs?: number;
  /** Safety-net dispatch pass interval. Default 2000 ms. */
  passIntervalMs?: number;
  /**
   * Most milliseconds a job waits in the queue (since it was accepted, or re-queued after a
   * failover) before it fails with the reasons no backend took it. 0 (default) = no limit:
   * jobs wait for a backend to come up or gain room, however long that takes.
   */
  queueTimeoutMs?: number;
  /** The backend client and the clock; the real ones by default. */
  deps?: Partial<DispatcherDeps>;
}

/** Where a prompt can go now: a backend, or refusals that may pass (wait) or not (never). */
export type Placement =
  | { kind: "ok"; backend: BackendConfig }
  | { kind: "wait"; refusals: Refusal[]; message: string }
  | { kind: "never"; refusals: Refusal[]; message: string };
