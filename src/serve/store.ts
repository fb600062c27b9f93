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
export type { QueuedRef } from "./store_rows.ts";
import { TxGroup } from "./store_tx.ts";
import type { Job, JobEvent, JobEventType, JobState, JobSummary } from "./types.ts";
import { JOB_STATES } from "./types.ts";
import {
  COLUMNS,
  fromRow,
  type QueuedRef,
  queuedRefFromRow,
  type Row,
  SCHEMA,
  SCHEMA_VERSION,
  SUMMARY_COLUMNS,
  summaryFromRow,
  toColumn,
  withChanges,
} from "./store_rows.ts";

const JOB_FIELDS = Object.keys(COLUMNS) as (keyof Job)[];
const INSERT_JOB = `INSERT INTO jobs (${JOB_FIELDS.map((f) => COLUMNS[f][0]).join(", ")})
  VALUES (${JOB_FIELDS.map(() => "?").join(", ")})`;

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
  /**
   * The job as the caller read it from this store in the same synchronous stretch (no
   * await since): spares reading it back. Nothing else can have changed it meanwhile.
   */
  current?: Job;
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
  /**
   * Jobs dispatched or running, as last written: their every event updates them, so an
   * update reads its guard state here instead of reading and parsing the row back. Only
   * this process writes the store (see {@linkcode JobStore.claim}), and the map stays as
   * small as the backends' queues (queued jobs, maybe many and large, are not kept).
   */
  #live = new Map<string, Job>();
  #group: TxGroup;
  /** Path of the database file, or ":memory:". */
  readonly path: string;

  private constructor(path: string) {
    this.path = path;
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.#db = new DatabaseSync(path);
    this.#group = new TxGroup(this.#db, (sql) => this.#stmt(sql));
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
    // Older stores gain their new columns before SCHEMA creates indexes over them.
    // Version 1 lacks the per-job queue timeout (its jobs keep the gateway's); versions 1
    // and 2 lack the idempotency key and the event counters.
    if (version >= 1 && version < 3) {
      const have = new Set(
        (this.#db.prepare("PRAGMA table_info(jobs)").all() as Row[]).map((r) => String(r.name)),
      );
      if (!have.has("queue_timeout_ms")) {
        this.#db.exec("ALTER TABLE jobs ADD COLUMN queue_timeout_ms INTEGER");
      }
      if (!have.has("idempotency_key")) {
        this.#db.exec("ALTER TABLE jobs ADD COLUMN idempotency_key TEXT");
      }
    }
    this.#db.exec(SCHEMA);
    if (version < 3) this.#countPastEvents();
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
    return this.#group.run(durable, fn);
  }

  /**
   * Commits the open group of non-durable changes now (it otherwise commits when the
   * current turn ends; see {@linkcode TxGroup}).
   *
   * @example
   * ```ts
   * declare const store: JobStore;
   * store.flush();
   * ```
   */
  flush(): void {
    this.#group.flush();
  }

  /**
   * Calls `cb` after every committed event (the gateway's live SSE fan-out).
   *
   * @example
   * ```ts
   * import type { Job } from "./types.ts";
   * declare const store: JobStore, job: Job;
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
    // A counter per event type, in the same transaction: /metrics reads these instead of
    // counting every event ever recorded.
    this.#group.bump(`events:${type}`, 1);
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
   * import type { Job } from "./types.ts";
   * declare const store: JobStore, job: Job;
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
        this.#countState(job.state, 1);
        const type: JobEventType = job.state === "failed" ? "failed" : "queued";
        return this.#appendEvent(job.id, type, { state: job.state, ...eventData }, job.createdAt);
      }));
    items.forEach(({ job }, i) => {
      this.#remember(job);
      this.#emit(events[i], job);
    });
    return items.map((i) => i.job);
  }

  /**
   * Applies a change (and appends its event) atomically; returns the updated job, or null
   * when the job is missing or not in one of `change.from`.
   *
   * @example
   * ```ts
   * declare const store: JobStore, id: string;
   * store.update(id, { set: { state: "cancelled" }, event: { type: "cancelled" }, from: ["queued"] });
   * ```
   */
  update(id: string, change: JobChange): Job | null {
    const now = Date.now();
    let event: JobEvent | undefined;
    const job = this.#tx(change.durable ?? false, () => {
      const current = this.#live.get(id) ?? change.current ?? this.#read(id);
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
      if (set.state !== undefined && set.state !== current.state) {
        this.#countState(current.state, -1);
        this.#countState(set.state, 1);
      }
      return withChanges(current, set);
    });
    if (job) {
      this.#remember(job);
      this.#emit(event, job);
    }
    return job;
  }

  #remember(job: Job): void {
    if (job.state === "dispatched" || job.state === "running") this.#live.set(job.id, job);
    else this.#live.delete(job.id);
  }

  #read(id: string): Job | undefined {
    const row = this.#stmt("SELECT * FROM jobs WHERE id = ?").get(id) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /**
   * The job with this id, or undefined.
   *
   * @example
   * ```ts
   * declare const store: JobStore;
   * const job = store.get("lx2k3j4a-9f3e1c");
   * ```
   */
  get(id: string): Job | undefined {
    return this.#live.get(id) ?? this.#read(id);
  }

  /**
   * Jobs, newest first, as summaries: a list never reads (or parses) the stored workflows,
   * prompts and `set` pairs.
   *
   * @example
   * ```ts
   * declare const store: JobStore;
   * const running = store.list({ states: ["dispatched", "running"], limit: 10 });
   * ```
   */
  list(q: JobQuery = {}): JobSummary[] {
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
    const sql = `SELECT ${SUMMARY_COLUMNS} FROM jobs ${
      where.length ? `WHERE ${where.join(" AND ")}` : ""
    } ORDER BY created_at DESC, id DESC LIMIT ?`;
    args.push(q.limit ?? 100);
    return (this.#stmt(sql).all(...args) as Row[]).map(summaryFromRow);
  }

  /**
   * The queue in dispatch order, oldest submission first (a job coming back after a
   * failover goes ahead of newer ones), without the (possibly large) workflow and prompt:
   * what a dispatch pass walks many times a second.
   *
   * @example
   * ```ts
   * declare const store: JobStore, id: string;
   * for (const ref of store.queuedRefs()) console.log(ref.id, ref.hasPrompt);
   * ```
   */
  queuedRefs(limit = 10_000): QueuedRef[] {
    return (this.#stmt(
      `SELECT id, pinned_backend, failed_backends, prompt IS NOT NULL AS has_prompt, ready_at,
       queue_timeout_ms FROM jobs WHERE state = 'queued' ORDER BY created_at, id LIMIT ?`,
    ).all(limit) as Row[]).map(queuedRefFromRow);
  }

  /**
   * Jobs a previous gateway left dispatched or running (restart recovery).
   *
   * @example
   * ```ts
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
   * import type { Job } from "./types.ts";
   * declare const store: JobStore, job: Job, id: string;
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
   * declare const store: JobStore;
   * store.countByState().queued;
   * ```
   */
  countByState(): Record<JobState, number> {
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    this.#group.writeCounters();
    // Kept as jobs change (every list, metrics scrape and status feed tick reads them),
    // rather than counted over every job each time.
    for (const r of this.#stmt("SELECT key, value FROM meta WHERE key LIKE 'jobs:%'").all()) {
      out[String((r as Row).key).slice("jobs:".length) as JobState] = Number((r as Row).value);
    }
    return out;
  }

  #countState(state: JobState, delta: number): void {
    this.#group.bump(`jobs:${state}`, delta);
  }

  /**
   * How many events of each type were ever recorded, pruned jobs' included (monotonic
   * counters for /metrics), read from counters kept as events are appended.
   *
   * @example
   * ```ts
   * const store = JobStore.open(":memory:");
   * store.countEvents().retry; // undefined: none yet
   * ```
   */
  countEvents(): Record<string, number> {
    const out: Record<string, number> = {};
    this.#group.writeCounters();
    for (const r of this.#stmt("SELECT key, value FROM meta WHERE key LIKE 'events:%'").all()) {
      out[String((r as Row).key).slice("events:".length)] = Number((r as Row).value);
    }
    return out;
  }

  /** Starts the event and state counters of a store made before them (once, at open). */
  #countPastEvents(): void {
    this.#tx(false, () => {
      this.#stmt(
        `INSERT INTO meta (key, value)
         SELECT 'events:' || type, count(*) FROM events WHERE true GROUP BY type
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value`,
      ).run();
      // Version 2 kept the counts of pruned jobs' events apart.
      this.#stmt(
        `INSERT INTO meta (key, value)
         SELECT 'events:' || substr(key, length('pruned_events:') + 1), value FROM meta
         WHERE key LIKE 'pruned_events:%'
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value`,
      ).run();
      this.#stmt("DELETE FROM meta WHERE key LIKE 'pruned_events:%'").run();
      this.#stmt(
        `INSERT OR REPLACE INTO meta (key, value)
         SELECT 'jobs:' || state, count(*) FROM jobs WHERE true GROUP BY state`,
      ).run();
    });
  }

  /**
   * Deletes terminal jobs (and their events) that finished before `cutoff` (ms since
   * epoch); returns how many. The event counters keep counting what went.
   *
   * @example
   * ```ts
   * const store = JobStore.open(":memory:");
   * store.prune(Date.now() - 7 * 86_400_000); // 0
   * ```
   */
  prune(cutoff: number): number {
    return this.#tx(false, () => {
      const gone = this.#stmt(
        `SELECT state, count(*) AS n FROM jobs
         WHERE state IN ('completed', 'failed', 'cancelled') AND finished_at < ? GROUP BY state`,
      ).all(cutoff) as Row[];
      for (const r of gone) this.#countState(String(r.state) as JobState, -Number(r.n));
      return Number(
        this.#stmt(
          "DELETE FROM jobs WHERE state IN ('completed', 'failed', 'cancelled') AND finished_at < ?",
        ).run(cutoff).changes,
      );
    });
  }

  /**
   * The job a request with this `Idempotency-Key` created, or undefined.
   *
   * @example
   * ```ts
   * const store = JobStore.open(":memory:");
   * store.byIdempotencyKey("7f1c2e9a"); // undefined
   * ```
   */
  byIdempotencyKey(key: string): Job | undefined {
    const row = this.#stmt("SELECT * FROM jobs WHERE idempotency_key = ?").get(key) as
      | Row
      | undefined;
    return row ? fromRow(row) : undefined;
  }

  /**
   * Makes this process the store's one dispatcher, atomically across processes (SQLite's
   * write lock serialises the check and the claim). Returns undefined when claimed, or the
   * pid of another live owner, which keeps it.
   *
   * @example
   * ```ts
   * declare const store: JobStore, isPidAlive: (pid: number) => boolean;
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
   * declare const store: JobStore;
   * store.close();
   * ```
   */
  close(): void {
    this.flush();
    this.#live.clear();
    this.#stmts.clear();
    if (this.#db.isOpen) this.#db.close();
  }
}
