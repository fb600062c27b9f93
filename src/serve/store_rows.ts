/**
 * How the job store lays jobs out in SQLite: the schema, the column of each job field,
 * and the mapping between rows and {@linkcode Job}s (large JSON fields parsed only when
 * read).
 *
 * @module
 */
import type { SQLInputValue } from "node:sqlite";
import type { Refusal } from "../backends/types.ts";
import type { Job, JobOutput, JobProgress, JobState, JobSummary } from "./types.ts";
import { JOB_STATES } from "./types.ts";

/** Version of the schema below (`PRAGMA user_version`). */
export const SCHEMA_VERSION = 3;

/** Tables and indexes of a store (idempotent). */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN (${JOB_STATES.map((s) => `'${s}'`).join(", ")})),
  workflow TEXT NOT NULL,
  sets TEXT NOT NULL,
  prompt TEXT,
  pinned_backend TEXT,
  backend TEXT,
  prompt_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  error TEXT,
  refusals TEXT,
  outputs TEXT NOT NULL DEFAULT '[]',
  progress TEXT,
  failed_backends TEXT NOT NULL DEFAULT '[]',
  queue_timeout_ms INTEGER,
  created_at INTEGER NOT NULL,
  ready_at INTEGER NOT NULL,
  dispatched_at INTEGER,
  queued_at INTEGER,
  started_at INTEGER,
  finished_at INTEGER,
  updated_at INTEGER NOT NULL,
  idempotency_key TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state_created ON jobs (state, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency_key ON jobs (idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_job ON events (job_id, seq);
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;

/** Column of each {@linkcode Job} field, and how it is stored. */
export const COLUMNS: Record<keyof Job, [string, "text" | "json" | "int"]> = {
  id: ["id", "text"],
  state: ["state", "text"],
  workflow: ["workflow", "json"],
  sets: ["sets", "json"],
  prompt: ["prompt", "json"],
  pinnedBackend: ["pinned_backend", "text"],
  backend: ["backend", "text"],
  promptId: ["prompt_id", "text"],
  clientId: ["client_id", "text"],
  attempts: ["attempts", "int"],
  maxAttempts: ["max_attempts", "int"],
  error: ["error", "text"],
  refusals: ["refusals", "json"],
  outputs: ["outputs", "json"],
  progress: ["progress", "json"],
  failedBackends: ["failed_backends", "json"],
  queueTimeoutMs: ["queue_timeout_ms", "int"],
  createdAt: ["created_at", "int"],
  readyAt: ["ready_at", "int"],
  dispatchedAt: ["dispatched_at", "int"],
  queuedAt: ["queued_at", "int"],
  startedAt: ["started_at", "int"],
  finishedAt: ["finished_at", "int"],
  updatedAt: ["updated_at", "int"],
  idempotencyKey: ["idempotency_key", "text"],
};

/** Columns a list needs: everything but the workflow, the prompt and the `set` pairs. */
export const SUMMARY_COLUMNS = Object.entries(COLUMNS)
  .filter(([f]) => !["workflow", "prompt", "sets"].includes(f))
  .map(([, [col]]) => col).join(", ");

/** A row as node:sqlite returns it. */
export type Row = Record<string, SQLInputValue>;

/** The stored form of a job field's value. */
export function toColumn(field: keyof Job, value: unknown): SQLInputValue {
  const [, kind] = COLUMNS[field];
  if (value === null || value === undefined) return null;
  if (kind === "json") return JSON.stringify(value);
  return value as SQLInputValue;
}

const parse = <T>(v: SQLInputValue, fallback: T): T =>
  v === null || v === undefined ? fallback : JSON.parse(String(v)) as T;

/**
 * Defines `key` on `obj` as the JSON `text`, parsed on first read: the workflow and prompt
 * can be megabytes, and most reads of a job (a dispatch pass, a state change, a progress
 * event) never look at them.
 */
function lazyJson<T>(obj: object, key: string, text: SQLInputValue, fallback: T): void {
  let parsed = false;
  let value: T;
  Object.defineProperty(obj, key, {
    enumerable: true,
    configurable: true,
    get() {
      if (!parsed) {
        value = parse(text, fallback);
        parsed = true;
      }
      return value;
    },
    set(v: T) {
      value = v;
      parsed = true;
    },
  });
}

/** A job from a full row; its workflow, prompt and sets are parsed on first read. */
export function fromRow(row: Row): Job {
  const job = summaryFromRow(row) as Job;
  lazyJson(job, "workflow", row.workflow, null);
  lazyJson(job, "sets", row.sets, []);
  lazyJson(job, "prompt", row.prompt, null);
  return job;
}

/** A copy of a job with `set` applied, leaving its unread JSON fields unparsed. */
export function withChanges(job: Job, set: Partial<Job>): Job {
  // Plain fields by value; only the lazy ones keep their descriptor (copying every
  // descriptor was a tenth of an update's cost).
  const next = {} as Record<string, unknown>;
  for (const k of Object.keys(job)) {
    if (LAZY.has(k)) Object.defineProperty(next, k, Object.getOwnPropertyDescriptor(job, k)!);
    else next[k] = (job as unknown as Record<string, unknown>)[k];
  }
  return Object.assign(next, set) as unknown as Job;
}

const LAZY = new Set(["workflow", "sets", "prompt"]);

/** A job summary from a row of {@linkcode SUMMARY_COLUMNS}. */
export function summaryFromRow(row: Row): JobSummary {
  const int = (v: SQLInputValue) => v === null || v === undefined ? null : Number(v);
  return {
    id: String(row.id),
    state: String(row.state) as JobState,
    pinnedBackend: row.pinned_backend === null ? null : String(row.pinned_backend),
    backend: row.backend === null ? null : String(row.backend),
    promptId: String(row.prompt_id),
    clientId: String(row.client_id),
    attempts: Number(row.attempts),
    maxAttempts: Number(row.max_attempts),
    error: row.error === null ? null : String(row.error),
    refusals: parse<Refusal[] | null>(row.refusals, null),
    outputs: parse<JobOutput[]>(row.outputs, []),
    progress: parse<JobProgress | null>(row.progress, null),
    failedBackends: parse<string[]>(row.failed_backends, []),
    queueTimeoutMs: int(row.queue_timeout_ms),
    createdAt: Number(row.created_at),
    readyAt: Number(row.ready_at),
    dispatchedAt: int(row.dispatched_at),
    queuedAt: int(row.queued_at),
    startedAt: int(row.started_at),
    finishedAt: int(row.finished_at),
    updatedAt: Number(row.updated_at),
    idempotencyKey: row.idempotency_key == null ? null : String(row.idempotency_key),
  };
}

/** A queued job as a dispatch pass first sees it. */
export interface QueuedRef {
  /** Job id. */
  id: string;
  /** Backend it is pinned to. */
  pinnedBackend: string | null;
  /** Backends that failed it. */
  failedBackends: string[];
  /** Whether its prompt is prepared. */
  hasPrompt: boolean;
  /** When it last entered the queue (ms since epoch). */
  readyAt: number;
  /** Its own queue timeout (see {@linkcode Job.queueTimeoutMs}). */
  queueTimeoutMs: number | null;
}

/** A {@linkcode QueuedRef} from its row (failed backends are most often none: no parse). */
export function queuedRefFromRow(r: Row): QueuedRef {
  return {
    id: String(r.id),
    pinnedBackend: r.pinned_backend === null ? null : String(r.pinned_backend),
    failedBackends: r.failed_backends === null || r.failed_backends === "[]"
      ? []
      : JSON.parse(String(r.failed_backends)),
    hasPrompt: Number(r.has_prompt) === 1,
    readyAt: Number(r.ready_at),
    queueTimeoutMs: r.queue_timeout_ms === null ? null : Number(r.queue_timeout_ms),
  };
}
