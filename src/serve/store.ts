/**
 * The gateway's durable job store: SQLite (Deno's built-in `node:sqlite`) in
 * `<workspace>/.metadata/serve/jobs.sqlite`.
 *
 * Why SQLite: jobs need atomic multi-row changes (a state change plus its event), indexed
 * queries (the queue in FIFO order, jobs by state, a job's event history) and crash safety
 * without a second process to run; SQLite's WAL journal gives all three in one file next
 * to the rest of the workspace state, readable with the stock `sqlite3` tool.
 *
 * Durability: the database runs in WAL mode with `synchronous=NORMAL`, which never
 * corrupts and survives any crash of gov itself (SIGKILL, OOM): a committed transaction is
 * in the WAL file, which the kernel already holds. Only an OS crash or power loss can drop
 * the newest NORMAL commits. The two commits nothing else can reconstruct, a job accepted
 * (the client got 201) and a cancel (the client was told it is cancelled), use
 * `synchronous=FULL`, which fsyncs the WAL and with it every earlier commit. Everything
 * else can be rebuilt: a job rolled back to `running` is re-attached on the next start and
 * its backend's `/history` gives the outcome again. Fsyncing every progress event and
 * state change instead would cost a disk flush per event on the gateway's only thread.
 *
 * @module
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { dirname } from "node:path";
import { mkdirSync } from "node:fs";
import type { Refusal } from "../backends/types.ts";
import type { Job, JobEvent, JobEventType, JobOutput, JobProgress, JobState } from "./types.ts";
import { JOB_STATES } from "./types.ts";

const SCHEMA_VERSION = 2;

const SCHEMA = `
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
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state_created ON jobs (state, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
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
const COLUMNS: Record<keyof Job, [string, "text" | "json" | "int"]> = {
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
};

const JOB_FIELDS = Object.keys(COLUMNS) as (keyof Job)[];
const INSERT_JOB = `INSERT INTO jobs (${JOB_FIELDS.map((f) => COLUMNS[f][0]).join(", ")})
  VALUES (${JOB_FIELDS.map(() => "?").join(", ")})`;

type Row = Record<string, SQLInputValue>;

function toColumn(field: keyof Job, value: unknown): SQLInputValue {
  const [, kind] = COLUMNS[field];
  if (value === null || value === undefined) return null;
  if (kind === "json") return JSON.stringify(value);
  return value as SQLInputValue;
}

function fromRow(row: Row): Job {
  const parse = <T>(v: SQLInputValue, fallback: T): T =>
    v === null || v === undefined ? fallback : JSON.parse(String(v)) as T;
  const int = (v: SQLInputValue) => v === null || v === undefined ? null : Number(v);
  return {
    id: String(row.id),
    state: String(row.state) as JobState,
    workflow: parse<unknown>(row.workflow, null),
    sets: parse<[string, string][]>(row.sets, []),
    prompt: parse<Record<string, unknown> | null>(row.prompt, null),
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
  };
}

/** A change to a job: new field values and, usually, the event that records why. */
export interface JobChange {
  /** Fields to set. */
  set: Partial<Omit<Job, "id">>;
  /** Event to append in the same transaction. */
  event?: { type: JobEventType; data?: Record<string, unknown> };
  /** Only apply when the job is in one of these states (guards against races). */
  from?: readonly JobState[];
  /** Commit with `synchronous=FULL` (the client relies on it surviving power loss). */
  durable?: boolean;
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

/** Filter of {@linkcode JobStore.list}. */
export interface JobQuery {
  /** Only these states. */
  states?: JobState[];
  /** Most jobs returned (newest first). Default 100. */
  limit?: number;
  /** Only jobs created before this job id's creation (paging). */
  before?: string;
}

/**
 * Jobs and their event history in one SQLite file. Synchronous (node:sqlite), so a read
 * followed by a write in the same tick cannot interleave with another task of the gateway.
 *
 * @example
 * ```ts
 * import { JobStore } from "@/serve/store.ts";
 *
 * const store = JobStore.open("/ws/.metadata/serve/jobs.sqlite");
 * const job = store.get("lx2k3j4a-9f3e1c");
 * store.close();
 * ```
 */
export class JobStore {
  #db: DatabaseSync;
  #stmts = new Map<string, StatementSync>();
  #onEvent: ((e: JobEvent, job: Job) => void)[] = [];
  /** Path of the database file, or ":memory:". */
  readonly path: string;

  private constructor(path: string) {
    this.path = path;
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.#db = new DatabaseSync(path);
    // A second gateway or a `sqlite3` shell may hold a lock for a moment.
    this.#db.exec("PRAGMA busy_timeout = 5000");
    if (path !== ":memory:") this.#db.exec("PRAGMA journal_mode = WAL");
    this.#db.exec("PRAGMA synchronous = NORMAL");
    this.#db.exec("PRAGMA foreign_keys = ON");
    const version = Number(
      (this.#db.prepare("PRAGMA user_version").get() as Row).user_version ?? 0,
    );
    if (version > SCHEMA_VERSION) {
      this.#db.close();
      throw new Error(
        `${path} has schema version ${version}; this gov knows ${SCHEMA_VERSION} (newer gov?)`,
      );
    }
    this.#db.exec(SCHEMA);
    // Version 1 stores lack the per-job queue timeout; their jobs keep the gateway's.
    if (version === 1) this.#db.exec("ALTER TABLE jobs ADD COLUMN queue_timeout_ms INTEGER");
    this.#db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  }

  /**
   * Opens (creating when missing) the store at `path`; ":memory:" for a throw-away one.
   *
   * @example
   * ```ts
   * import { JobStore } from "@/serve/store.ts";
   *
   * const store = JobStore.open(":memory:");
   * ```
   */
  static open(path: string): JobStore {
    return new JobStore(path);
  }

  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  #tx<T>(durable: boolean, fn: () => T): T {
    if (durable) this.#db.exec("PRAGMA synchronous = FULL");
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      this.#db.exec("COMMIT");
      return out;
    } catch (err) {
      this.#db.exec("ROLLBACK");
      throw err;
    } finally {
      if (durable) this.#db.exec("PRAGMA synchronous = NORMAL");
    }
  }

  /**
   * Calls `cb` after every committed event (the gateway's live SSE fan-out).
   *
   * @example
   * ```ts
   * import { type JobStore } from "@/serve/store.ts";
   * declare const store: JobStore;
   * const off = store.onEvent((e, job) => console.log(e.type, job.state));
   * ```
   */
  onEvent(cb: (e: JobEvent, job: Job) => void): () => void {
    this.#onEvent.push(cb);
    return () => {
      this.#onEvent = this.#onEvent.filter((c) => c !== cb);
    };
  }

  #appendEvent(jobId: string, type: JobEventType, data: Record<string, unknown>, at: number) {
    const r = this.#stmt("INSERT INTO events (job_id, type, data, at) VALUES (?, ?, ?, ?)")
      .run(jobId, type, JSON.stringify(data), at);
    return { seq: Number(r.lastInsertRowid), jobId, type, data, at } satisfies JobEvent;
  }

  #emit(event: JobEvent | undefined, job: Job) {
    if (!event) return;
    for (const cb of this.#onEvent) {
      try {
        cb(event, job);
      } catch {
        // A listener's failure must not undo a committed change.
      }
    }
  }

  /**
   * Inserts a new job with its first event (`queued`, or `failed` for a job no backend
   * could ever run), durably: the caller answers 201 after it.
   *
   * @example
   * ```ts
   * import { type JobStore } from "@/serve/store.ts";
   * import { type Job } from "@/serve/types.ts";
   * declare const job: Job;
   * declare const store: JobStore;
   * store.create(job);
   * ```
   */
  create(job: Job, eventData: Record<string, unknown> = {}): Job {
    return this.createMany([{ job, eventData }])[0];
  }

  /** {@linkcode JobStore.create} for many jobs in one durable transaction (group commit). */
  createMany(items: { job: Job; eventData?: Record<string, unknown> }[]): Job[] {
    const events = this.#tx(true, () =>
      items.map(({ job, eventData }) => {
        this.#stmt(INSERT_JOB).run(...JOB_FIELDS.map((f) => toColumn(f, job[f])));
        const type: JobEventType = job.state === "failed" ? "failed" : "queued";
        return this.#appendEvent(job.id, type, { state: job.state, ...eventData }, job.createdAt);
      }));
    items.forEach(({ job }, i) => this.#emit(events[i], job));
    return items.map((i) => i.job);
  }

  /**
   * Applies a change (and appends its event) atomically; returns the updated job, or null
   * when the job is missing or not in one of `change.from`.
   *
   * @example
   * ```ts
   * import { type JobStore } from "@/serve/store.ts";
   * declare const id: string;
   * declare const store: JobStore;
   * store.update(id, { set: { state: "cancelled" }, event: { type: "cancelled" }, from: ["queued"] });
   * ```
   */
  update(id: string, change: JobChange): Job | null {
    const now = Date.now();
    let event: JobEvent | undefined;
    const job = this.#tx(change.durable ?? false, () => {
      const current = this.get(id);
      if (!current) return null;
      if (change.from && !change.from.includes(current.state)) return null;
      const set = { ...change.set, updatedAt: now } as Partial<Job>;
      const fields = (Object.keys(set) as (keyof Job)[]).filter((f) => f !== "id");
      this.#stmt(
        `UPDATE jobs SET ${fields.map((f) => `${COLUMNS[f][0]} = ?`).join(", ")} WHERE id = ?`,
      ).run(...fields.map((f) => toColumn(f, set[f])), id);
      if (change.event) {
        event = this.#appendEvent(id, change.event.type, change.event.data ?? {}, now);
      }
      return { ...current, ...set } as Job;
    });
    if (job) this.#emit(event, job);
    return job;
  }

  /**
   * The job with this id, or undefined.
   *
   * @example
   * ```ts
   * import { type JobStore } from "@/serve/store.ts";
   * declare const store: JobStore;
   * const job = store.get("lx2k3j4a-9f3e1c");
   * ```
   */
  get(id: string): Job | undefined {
    const row = this.#stmt("SELECT * FROM jobs WHERE id = ?").get(id) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /**
   * Jobs, newest first.
   *
   * @example
   * ```ts
   * import { type JobStore } from "@/serve/store.ts";
   * declare const store: JobStore;
   * const running = store.list({ states: ["dispatched", "running"], limit: 10 });
   * ```
   */
  list(q: JobQuery = {}): Job[] {
    const where: string[] = [];
    const args: SQLInputValue[] = [];
    if (q.states?.length) {
      where.push(`state IN (${q.states.map(() => "?").join(", ")})`);
      args.push(...q.states);
    }
    if (q.before) {
      where.push("(created_at, id) < (SELECT created_at, id FROM jobs WHERE id = ?)");
      args.push(q.before);
    }
    const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY created_at DESC, id DESC LIMIT ?`;
    args.push(q.limit ?? 100);
    return (this.#stmt(sql).all(...args) as Row[]).map(fromRow);
  }

  /**
   * The queue in dispatch order, oldest submission first (a job coming back after a
   * failover goes ahead of newer ones), without the (possibly large) workflow and prompt:
   * what a dispatch pass walks many times a second.
   *
   * @example
   * ```ts
   * import { type JobStore } from "@/serve/store.ts";
   * declare const store: JobStore;
   * for (const ref of store.queuedRefs()) console.log(ref.id, ref.hasPrompt);
   * ```
   */
  queuedRefs(limit = 10_000): QueuedRef[] {
    return (this.#stmt(
      `SELECT id, pinned_backend, failed_backends, prompt IS NOT NULL AS has_prompt, ready_at,
       queue_timeout_ms FROM jobs WHERE state = 'queued' ORDER BY created_at, id LIMIT ?`,
    ).all(limit) as Row[]).map((r) => ({
      id: String(r.id),
      pinnedBackend: r.pinned_backend === null ? null : String(r.pinned_backend),
      failedBackends: JSON.parse(String(r.failed_backends ?? "[]")),
      hasPrompt: Number(r.has_prompt) === 1,
      readyAt: Number(r.ready_at),
      queueTimeoutMs: r.queue_timeout_ms === null ? null : Number(r.queue_timeout_ms),
    }));
  }

  /**
   * Jobs a previous gateway left dispatched or running (restart recovery).
   *
   * @example
   * ```ts
   * import { type JobStore } from "@/serve/store.ts";
   * declare const store: JobStore;
   * const orphans = store.inFlight();
   * ```
   */
  inFlight(): Job[] {
    return (this.#stmt(
      "SELECT * FROM jobs WHERE state IN ('dispatched', 'running') ORDER BY created_at, id",
    ).all() as Row[]).map(fromRow);
  }

  /**
   * A job's events after sequence number `afterSeq` (0 = all), oldest first.
   *
   * @example
   * ```ts
   * import { type JobStore } from "@/serve/store.ts";
   * import { type Job } from "@/serve/types.ts";
   * declare const job: Job;
   * declare const store: JobStore;
   * const history = store.events(job.id);
   * ```
   */
  events(jobId: string, afterSeq = 0): JobEvent[] {
    return (this.#stmt(
      "SELECT seq, job_id, type, data, at FROM events WHERE job_id = ? AND seq > ? ORDER BY seq",
    ).all(jobId, afterSeq) as Row[]).map((r) => ({
      seq: Number(r.seq),
      jobId: String(r.job_id),
      type: String(r.type) as JobEventType,
      data: JSON.parse(String(r.data)),
      at: Number(r.at),
    }));
  }

  /**
   * Jobs by current state (every state present, 0 when none).
   *
   * @example
   * ```ts
   * import { type JobStore } from "@/serve/store.ts";
   * declare const store: JobStore;
   * store.countByState().queued;
   * ```
   */
  countByState(): Record<JobState, number> {
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const r of this.#stmt("SELECT state, count(*) AS n FROM jobs GROUP BY state").all()) {
      out[String((r as Row).state) as JobState] = Number((r as Row).n);
    }
    return out;
  }

  /**
   * How many events of each type were ever recorded (monotonic counters for /metrics).
   *
   * @example
   * ```ts
   * import { type JobStore } from "@/serve/store.ts";
   * declare const store: JobStore;
   * store.countEvents().retry;
   * ```
   */
  countEvents(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.#stmt("SELECT type, count(*) AS n FROM events GROUP BY type").all()) {
      out[String((r as Row).type)] = Number((r as Row).n);
    }
    // Events of pruned jobs still count: a Prometheus counter must never go down.
    for (
      const r of this.#stmt("SELECT key, value FROM meta WHERE key LIKE 'pruned_events:%'").all()
    ) {
      const type = String((r as Row).key).slice("pruned_events:".length);
      out[type] = (out[type] ?? 0) + Number((r as Row).value);
    }
    return out;
  }

  /**
   * Deletes terminal jobs (and their events) that finished before `cutoff` (ms since
   * epoch); returns how many.
   *
   * @example
   * ```ts
   * import { type JobStore } from "@/serve/store.ts";
   * declare const store: JobStore;
   * store.prune(Date.now() - 7 * 86_400_000);
   * ```
   */
  prune(cutoff: number): number {
    return this.#tx(false, () => {
      // Keep the event counts of what goes (countEvents feeds monotonic counters).
      this.#stmt(
        `INSERT INTO meta (key, value)
         SELECT 'pruned_events:' || e.type, count(*) FROM events e JOIN jobs j ON j.id = e.job_id
         WHERE j.state IN ('completed', 'failed', 'cancelled') AND j.finished_at < ?
         GROUP BY e.type
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value`,
      ).run(cutoff);
      return Number(
        this.#stmt(
          "DELETE FROM jobs WHERE state IN ('completed', 'failed', 'cancelled') AND finished_at < ?",
        ).run(cutoff).changes,
      );
    });
  }

  /**
   * Makes this process the store's one dispatcher, atomically across processes (SQLite's
   * write lock serialises the check and the claim). Returns undefined when claimed, or the
   * pid of another live owner, which keeps it.
   *
   * @example
   * ```ts
   * import { isPidAlive } from "@/process/run.ts";
   * import { type JobStore } from "@/serve/store.ts";
   * declare const store: JobStore;
   * const other = store.claim(Deno.pid, isPidAlive);
   * if (other) throw new Error(`gov serve ${other} owns this store`);
   * ```
   */
  claim(pid: number, isAlive: (pid: number) => boolean): number | undefined {
    return this.#tx(true, () => {
      const row = this.#stmt("SELECT value FROM meta WHERE key = 'owner'").get() as
        | Row
        | undefined;
      const owner = row ? Number(row.value) : 0;
      if (owner && owner !== pid && isAlive(owner)) return owner;
      this.#stmt("INSERT OR REPLACE INTO meta (key, value) VALUES ('owner', ?)").run(String(pid));
      return undefined;
    });
  }

  /**
   * Gives up ownership taken with {@linkcode JobStore.claim} (when still ours).
   *
   * @example
   * ```ts
   * import { type JobStore } from "@/serve/store.ts";
   * declare const store: JobStore;
   * store.release(Deno.pid);
   * ```
   */
  release(pid: number): void {
    this.#tx(false, () => {
      this.#stmt("DELETE FROM meta WHERE key = 'owner' AND value = ?").run(String(pid));
    });
  }

  /**
   * Closes the database (checkpointing the WAL).
   *
   * @example
   * ```ts
   * import { type JobStore } from "@/serve/store.ts";
   * declare const store: JobStore;
   * store.close();
   * ```
   */
  close(): void {
    this.#stmts.clear();
    if (this.#db.isOpen) this.#db.close();
  }
}
