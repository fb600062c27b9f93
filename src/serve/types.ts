/**
 * Shapes of the gateway's jobs: one ComfyUI prompt submitted to `gov serve` (or run by
 * `gov submit` in-process), its life cycle, its events and its outputs.
 *
 * @module
 */
import type { Refusal } from "../backends/types.ts";

/**
 * Where a job is in its life:
 * - `queued`: accepted, waiting for a backend with room (also after a failover);
 * - `dispatched`: a backend was chosen and the prompt is being (or was) queued there;
 * - `running`: the backend reported that it started executing it;
 * - `completed` / `failed` / `cancelled`: terminal.
 */
export type JobState = "queued" | "dispatched" | "running" | "completed" | "failed" | "cancelled";

/** Every state, in life-cycle order (for metrics and validation of `?state=`). */
export const JOB_STATES: readonly JobState[] = [
  "queued",
  "dispatched",
  "running",
  "completed",
  "failed",
  "cancelled",
];

/** States a job never leaves. */
export const TERMINAL_STATES: readonly JobState[] = ["completed", "failed", "cancelled"];

/**
 * Whether a state is terminal.
 *
 * @example
 * ```ts
 * import { isTerminal } from "@/serve/types.ts";
 *
 * isTerminal("failed"); // true
 * ```
 */
export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.includes(state);
}

/** One output file of a finished prompt, as ComfyUI's `/view` addresses it. */
export interface JobOutput {
  /** The output node's id in the prompt. */
  nodeId: string;
  /** File name. */
  filename: string;
  /** Subfolder under ComfyUI's output (or temp) folder; "" for none. */
  subfolder: string;
  /** `output` or `temp`. */
  type: string;
}

/** Last progress a backend reported for a running job. */
export interface JobProgress {
  /** Step done. */
  value: number;
  /** Steps in total. */
  max: number;
  /** Node that reports it. */
  node?: string;
}

/** A job as the store keeps it. Times are milliseconds since the epoch, or null. */
export interface Job {
  /** Gateway job id (sortable by creation time). */
  id: string;
  /** Life-cycle state. */
  state: JobState;
  /** The workflow as submitted (UI or API format). */
  workflow: unknown;
  /** `--set KEY=VALUE` pairs, in order. */
  sets: [string, string][];
  /**
   * The API prompt to queue, once converted and patched; null while that waits for node
   * definitions from a backend that is up.
   */
  prompt: Record<string, unknown> | null;
  /** Backend the caller pinned the job to, if any. */
  pinnedBackend: string | null;
  /** Backend of the current or last attempt. */
  backend: string | null;
  /** ComfyUI prompt id: one per job for its whole life (idempotent retries). */
  promptId: string;
  /** ComfyUI client id the job's `/ws` uses. */
  clientId: string;
  /** Dispatches so far (1 after the first). */
  attempts: number;
  /** Most dispatches allowed before the job fails. */
  maxAttempts: number;
  /** Why it failed (or a note on a retry), human text. */
  error: string | null;
  /** Per-backend reasons when no backend could take it. */
  refusals: Refusal[] | null;
  /** Output files, once completed. */
  outputs: JobOutput[];
  /** Latest progress, while running. */
  progress: JobProgress | null;
  /**
   * Longest wait in `queued` for a backend, in ms, counted from `readyAt`: the job fails
   * when no backend took it by then. 0 = no limit; null = the gateway's `--queue-timeout`.
   */
  queueTimeoutMs: number | null;
  /** Backends a failover moved the job away from (tried last, not never). */
  failedBackends: string[];
  /** When the gateway accepted it. */
  createdAt: number;
  /** When it last (re)entered `queued` (creation or failover): dispatch latency starts here. */
  readyAt: number;
  /** When its latest attempt was dispatched. */
  dispatchedAt: number | null;
  /** When the latest attempt's backend accepted the prompt (`POST /prompt` answered). */
  queuedAt: number | null;
  /** When the backend started executing it. */
  startedAt: number | null;
  /** When it reached a terminal state. */
  finishedAt: number | null;
  /** Last change of any kind. */
  updatedAt: number;
  /**
   * The client's `Idempotency-Key` of the request that created it: a repeat of that
   * request answers with this job instead of creating another.
   */
  idempotencyKey?: string | null;
}

/**
 * A job without what can be large (workflow, prompt, `set` pairs): what lists and live
 * feeds carry, read without parsing the stored workflow.
 */
export type JobSummary = Omit<Job, "workflow" | "prompt" | "sets">;

/** Types of job events (the SSE `event:` field). */
export type JobEventType =
  | "queued"
  | "waiting"
  | "dispatched"
  | "accepted"
  | "running"
  | "progress"
  | "executed"
  | "retry"
  | "completed"
  | "failed"
  | "cancelled";

/** One entry of a job's history, streamed by `GET /v1/jobs/{id}/events`. */
export interface JobEvent {
  /** Increasing sequence number across all jobs (the SSE `id:`). */
  seq: number;
  /** The job. */
  jobId: string;
  /** What happened. */
  type: JobEventType;
  /** Details (backend, attempt, progress value/max, error, outputs...). */
  data: Record<string, unknown>;
  /** When (ms since epoch). */
  at: number;
}

/** Event types that end a job's stream. */
export const TERMINAL_EVENTS: readonly JobEventType[] = ["completed", "failed", "cancelled"];
