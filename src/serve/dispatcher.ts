/**
 * The dispatcher: turns accepted jobs into prompts running on backends, and keeps them
 * there until they end.
 *
 * Placement rule. Every dispatch pass walks the queue oldest first and asks the scheduler
 * for the least loaded backend that is up, has room (`max_queue`) and has every node class
 * and model the prompt needs. A job that fits nowhere right now stays queued when it could
 * fit later (some backend is down, not yet probed, or full); it fails at once when no
 * backend could ever take it: every backend is up (or known from an earlier probe) and
 * lacks a node or model it needs. Passes run when a job arrives or ends, when a backend
 * changes state, and every few seconds as a safety net, so work flows as backends get room
 * rather than one job at a time.
 *
 * Prompt ids. A job has one `prompt_id` and one `client_id` for its whole life. A retry on
 * the same backend is then idempotent: before queuing again the gateway checks that
 * backend's `/history` and `/queue` for the id and follows what it finds. On another
 * backend reusing the id is harmless, because ComfyUI's prompt ids are per backend.
 *
 * Never twice. ComfyUI keeps a client-chosen `prompt_id` but runs a repeated one again. So
 * when gov cannot tell whether a backend got a prompt (its POST timed out or lost its
 * answer, a gateway died between POST and answer, and the backend cannot be asked now), the
 * job stays with that backend, `dispatched`, until it answers the look in `/queue` and
 * `/history`; it is not failed over. A refused connection is different: nothing got there.
 *
 * The parts: `placement.ts` decides where a prompt can go, `job_runner.ts` follows it on
 * its backend and records its end, `dispatch_types.ts` holds the request, errors, options
 * and the injected dependencies (backend client, clock, health view).
 *
 * @module
 */
import { clearImmediate, setImmediate } from "node:timers";
import { GovError, NotFoundError } from "../errors.ts";
import type { BackendConfig, BackendStatus, PromptRequirements } from "../backends/types.ts";
import { type ApiPrompt, type ObjectInfo, promptRequirements } from "./backend_api.ts";
import {
  type BackendHealth,
  defaultDispatcherDeps,
  type DispatcherDeps,
  type DispatcherOptions,
  JobInputError,
  type JobRequest,
  JobStateError,
  type Placement,
} from "./dispatch_types.ts";
import { JobRunner, message } from "./job_runner.ts";
import { expiryReason, Placer, WAITING_FOR_DEFINITIONS } from "./placement.ts";
import { QueueView } from "./queue_view.ts";
import type { Histogram } from "./metrics.ts";
import type { JobStore } from "./store.ts";
import { isTerminal, type Job } from "./types.ts";

export {
  type BackendHealth,
  defaultDispatcherDeps,
  type DispatcherDeps,
  type DispatcherOptions,
  JobInputError,
  type JobRequest,
  JobStateError,
  type Placement,
};

function newId(): string {
  const rand = crypto.getRandomValues(new Uint8Array(4));
  return `${Date.now().toString(36)}-${
    Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

/**
 * Runs jobs from a {@linkcode JobStore} on the backends of a health view (a `HealthMonitor`).
 *
 * @example
 * ```ts
 * import { JobStore } from "./store.ts";
 * import { HealthMonitor } from "./backend_api.ts";
 * import type { BackendConfig } from "../backends/types.ts";
 * const store = JobStore.open(":memory:");
 * const monitor = new HealthMonitor([]);
 * declare const list: BackendConfig[];
 * declare const backends: BackendConfig[];
 * const workflow = {};
 * const d = new Dispatcher({ store, monitor, backends: () => list });
 * d.start();
 * const job = d.submit({ workflow, sets: [["seed", "42"]] });
 * await d.stop();
 * ```
 */
export class Dispatcher {
  /** Where jobs live. */
  readonly store: JobStore;
  /** Backend health. */
  readonly monitor: BackendHealth;
  /** Most dispatches of a new job. */
  readonly maxAttempts: number;
  /** Default queue timeout of jobs in ms (0 = none). */
  readonly queueTimeoutMs: number;
  #deps: DispatcherDeps;
  #backends: () => BackendConfig[];
  #log: (line: string) => void;
  #passMs: number;
  #placer: Placer;
  #runner: JobRunner;
  #passQueued = false;
  #passTimer?: ReturnType<typeof setImmediate>;
  #stopping = false;
  #timer?: ReturnType<typeof setInterval>;
  #offChange?: () => void;
  #queue: QueueView;
  #lastRefusals = new Map<string, string>();
  /** Per waiting job, which backends refuse it for which kind of reason (for `waiting`). */
  #lastWaitKinds = new Map<string, string>();
  /** Requirements of queued jobs (their prompts do not change while queued). */
  #needs = new Map<string, { req: PromptRequirements; key: string }>();
  /** Jobs waiting for the next group commit (see submitBatched). */
  #batch: { job: Job; req: JobRequest; done: (err?: unknown) => void }[] = [];
  #batchTimer?: ReturnType<typeof setImmediate>;

  constructor(opts: DispatcherOptions) {
    this.store = opts.store;
    this.monitor = opts.monitor;
    this.#deps = { ...defaultDispatcherDeps(), ...(opts.deps ?? {}) };
    this.#backends = opts.backends;
    this.maxAttempts = opts.maxAttempts ?? 3;
    this.#log = opts.log ?? (() => {});
    this.#passMs = opts.passIntervalMs ?? 2000;
    this.queueTimeoutMs = opts.queueTimeoutMs ?? 0;
    this.#placer = new Placer(opts.backends, opts.monitor);
    this.#queue = new QueueView(opts.store);
    this.#runner = new JobRunner({
      store: opts.store,
      monitor: opts.monitor,
      backends: opts.backends,
      deps: this.#deps,
      log: this.#log,
      pollIntervalMs: opts.pollIntervalMs ?? 1000,
      onSettled: () => this.kick(),
      onFinished: (id) => this.#forget(id),
    });
  }

  /** Seconds from a job becoming ready to its prompt being queued on a backend. */
  get dispatchSeconds(): Histogram {
    return this.#runner.dispatchSeconds;
  }

  /** Seconds from dispatch to completion of successful jobs. */
  get runSeconds(): Histogram {
    return this.#runner.runSeconds;
  }

  /** Jobs this dispatcher is running or following right now. */
  get active(): number {
    return this.#runner.running.size;
  }

  /**
   * Re-attaches the jobs a previous gateway left dispatched or running, then starts
   * dispatching queued ones.
   *
   * @example
   * ```ts
   * import { JobStore } from "./store.ts";
   * import { HealthMonitor } from "./backend_api.ts";
   * const store = JobStore.open(":memory:");
   * const monitor = new HealthMonitor([]);
   * const dispatcher = new Dispatcher({ store, monitor, backends: () => [] });
   * dispatcher.start();
   * ```
   */
  start(): void {
    this.#offChange = this.monitor.onChange((s) => this.#onBackendChange(s));
    for (const job of this.store.inFlight()) this.#runner.reattach(job);
    this.#queue.start();
    this.#timer = setInterval(() => this.kick(), this.#passMs);
    this.kick();
  }

  /**
   * Stops dispatching and lets go of running jobs without touching their state, so the
   * next gateway re-attaches them; their prompts keep running on the backends.
   *
   * @example
   * ```ts
   * import { JobStore } from "./store.ts";
   * import { HealthMonitor } from "./backend_api.ts";
   * const store = JobStore.open(":memory:");
   * const monitor = new HealthMonitor([]);
   * const dispatcher = new Dispatcher({ store, monitor, backends: () => [] });
   * await dispatcher.stop();
   * ```
   */
  async stop(): Promise<void> {
    // Jobs already accepted for the next group commit are stored (and answered) first.
    this.#flushBatch();
    this.#stopping = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#passTimer !== undefined) clearImmediate(this.#passTimer);
    this.#offChange?.();
    this.#queue.stop();
    await this.#runner.detachAll();
  }

  /**
   * Node definitions for converting UI workflows: every backend's that the monitor has
   * learned, backends that are up first (first wins per class).
   *
   * @example
   * ```ts
   * import { JobStore } from "./store.ts";
   * import { HealthMonitor } from "./backend_api.ts";
   * const store = JobStore.open(":memory:");
   * const monitor = new HealthMonitor([]);
   * const dispatcher = new Dispatcher({ store, monitor, backends: () => [] });
   * const info = dispatcher.objectInfo();
   * ```
   */
  objectInfo(): ObjectInfo | undefined {
    return this.#placer.objectInfo();
  }

  /**
   * Chooses a backend for a prompt now, or says why not and whether that can change
   * (`wait`) or not (`never`). Backends in `avoid` are tried last.
   *
   * @example
   * ```ts
   * import { JobStore } from "./store.ts";
   * import { HealthMonitor } from "./backend_api.ts";
   * const store = JobStore.open(":memory:");
   * const monitor = new HealthMonitor([]);
   * const dispatcher = new Dispatcher({ store, monitor, backends: () => [] });
   * const prompt = {};
   * const v = dispatcher.placeFor(prompt, null, []);
   * if (v.kind === "ok") console.log(v.backend.id);
   * ```
   */
  placeFor(prompt: ApiPrompt, only: string | null, avoid: string[]): Placement {
    return this.#placer.placeFor(prompt, only, avoid);
  }

  /**
   * Validates and records a job; returns it `queued` (a pass then places it). Throws
   * {@linkcode JobInputError} for anything the caller must fix, including a prompt no
   * configured backend could ever run.
   *
   * @example
   * ```ts
   * import { JobStore } from "./store.ts";
   * import { HealthMonitor } from "./backend_api.ts";
   * const workflow = {};
   * const store = JobStore.open(":memory:");
   * const monitor = new HealthMonitor([]);
   * const dispatcher = new Dispatcher({ store, monitor, backends: () => [] });
   * const job = dispatcher.submit({ workflow, sets: [["steps", "30"]] });
   * ```
   */
  submit(req: JobRequest): Job {
    const job = this.#build(req);
    this.store.create(job, req.backend ? { backend: req.backend } : {});
    this.#queued(job, req);
    return job;
  }

  /**
   * {@linkcode Dispatcher.submit} with the durable write shared by the jobs submitted in the
   * same turn (group commit); resolves once the job is stored, rejects like submit.
   *
   * @example
   * ```ts
   * import { JobStore } from "./store.ts";
   * import { HealthMonitor } from "./backend_api.ts";
   * const workflow = {};
   * const store = JobStore.open(":memory:");
   * const monitor = new HealthMonitor([]);
   * const dispatcher = new Dispatcher({ store, monitor, backends: () => [] });
   * const job = await dispatcher.submitBatched({ workflow });
   * ```
   */
  submitBatched(req: JobRequest): Promise<Job> {
    let job: Job;
    try {
      job = this.#build(req);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.#batch.push({ job, req, done: (err) => err === undefined ? resolve(job) : reject(err) });
      this.#batchTimer ??= setImmediate(() => this.#flushBatch());
    });
  }

  #flushBatch(): void {
    if (this.#batchTimer !== undefined) clearImmediate(this.#batchTimer);
    this.#batchTimer = undefined;
    const batch = this.#batch;
    this.#batch = [];
    if (batch.length === 0) return;
    try {
      this.store.createMany(
        batch.map(({ job, req }) => ({
          job,
          eventData: req.backend ? { backend: req.backend } : {},
        })),
      );
    } catch (err) {
      for (const b of batch) b.done(err ?? new Error("store write failed"));
      return;
    }
    for (const b of batch) {
      this.#queued(b.job, b.req);
      b.done();
    }
  }

  #queued(job: Job, req: JobRequest): void {
    this.#log(`job ${job.id} queued${req.backend ? ` for backend ${req.backend}` : ""}`);
    this.kick();
  }

  #build(req: JobRequest): Job {
    if (this.#stopping) throw new GovError("the gateway is shutting down; submit again later");
    const sets = req.sets ?? [];
    const backends = this.#backends();
    const timeout = req.queueTimeoutMs;
    if (timeout !== undefined && (!Number.isFinite(timeout) || timeout < 0)) {
      throw new JobInputError(`queue timeout must be 0 (none) or more, got ${timeout}`);
    }
    if (req.backend !== undefined && !backends.some((b) => b.id === req.backend)) {
      throw new JobInputError(`unknown backend '${req.backend}'`, {
        hint: `configured: ${backends.map((b) => b.id).join(", ") || "none"}`,
      });
    }
    const prompt = this.#placer.prepare(req.workflow, sets, this.objectInfo(), true);
    if (prompt) {
      const verdict = this.placeFor(prompt, req.backend ?? null, []);
      if (verdict.kind === "never") {
        throw new JobInputError(verdict.message, { refusals: verdict.refusals });
      }
    } else if (backends.length === 0) {
      throw new JobInputError("no backend can run this prompt: no backends are configured", {
        hint: "add one with `gov backend add <id> --host H --port N`",
      });
    }
    const now = this.#deps.now();
    const job: Job = {
      id: newId(),
      state: "queued",
      workflow: req.workflow,
      sets,
      prompt: (prompt ?? null) as Record<string, unknown> | null,
      pinnedBackend: req.backend ?? null,
      backend: null,
      promptId: crypto.randomUUID(),
      clientId: this.#runner.clientId,
      attempts: 0,
      maxAttempts: this.maxAttempts,
      error: null,
      refusals: null,
      outputs: [],
      progress: null,
      failedBackends: [],
      queueTimeoutMs: timeout === undefined ? null : Math.round(timeout),
      createdAt: now,
      readyAt: now,
      dispatchedAt: null,
      queuedAt: null,
      startedAt: null,
      finishedAt: null,
      updatedAt: now,
      idempotencyKey: req.idempotencyKey ?? null,
    };
    return job;
  }

  /**
   * Cancels a job: a queued one at once; a dispatched or running one is also deleted from
   * its backend's queue, or interrupted there. Throws {@linkcode JobStateError} for a
   * finished job.
   *
   * @example
   * ```ts
   * import { JobStore } from "./store.ts";
   * import { HealthMonitor } from "./backend_api.ts";
   * const store = JobStore.open(":memory:");
   * const monitor = new HealthMonitor([]);
   * const dispatcher = new Dispatcher({ store, monitor, backends: () => [] });
   * const job = await dispatcher.cancel("lx2k3j4a-9f3e1c");
   * ```
   */
  async cancel(id: string): Promise<Job> {
    const job = this.store.get(id);
    if (!job) throw new NotFoundError("job", id, "list jobs with GET /v1/jobs");
    if (isTerminal(job.state)) throw new JobStateError(`job '${id}' is already ${job.state}`);
    const rt = this.#runner.running.get(id);
    if (rt) rt.reason = "cancel";
    const cancelled = this.store.update(id, {
      set: { state: "cancelled", finishedAt: this.#deps.now(), progress: null },
      event: { type: "cancelled", data: { backend: job.backend, from: job.state } },
      from: ["queued", "dispatched", "running"],
      durable: true,
    });
    if (!cancelled) {
      if (rt) rt.reason = undefined;
      const now = this.store.get(id)!;
      throw new JobStateError(`job '${id}' is already ${now.state}`);
    }
    this.#forget(id);
    this.#log(`job ${id} cancelled (was ${job.state})`);
    if (rt) {
      // runPrompt deletes it from the backend's queue or interrupts it, then returns.
      rt.cancel.abort();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([rt.done, new Promise((r) => timer = setTimeout(r, 15_000))]);
      clearTimeout(timer);
    } else if (job.state !== "queued" && job.backend) {
      const backend = this.#backends().find((b) => b.id === job.backend);
      if (backend) {
        await this.#deps.client(backend).cancel(job.promptId).catch((err) =>
          this.#log(`job ${id}: could not cancel on ${backend.id}: ${message(err)}`)
        );
      }
    }
    this.kick();
    return cancelled;
  }

  /**
   * Asks for a dispatch pass soon (passes coalesce).
   *
   * @example
   * ```ts
   * import { JobStore } from "./store.ts";
   * import { HealthMonitor } from "./backend_api.ts";
   * const store = JobStore.open(":memory:");
   * const monitor = new HealthMonitor([]);
   * const dispatcher = new Dispatcher({ store, monitor, backends: () => [] });
   * dispatcher.kick();
   * ```
   */
  kick(): void {
    if (this.#passQueued || this.#stopping) return;
    this.#passQueued = true;
    // setImmediate coalesces like setTimeout(0) without its timer tick (1-2 ms a job).
    this.#passTimer = setImmediate(() => {
      this.#passQueued = false;
      this.#passTimer = undefined;
      if (this.#stopping) return;
      try {
        this.#runner.sweepLeftBehind(this.monitor.statuses());
        this.#pass();
      } catch (err) {
        this.#log(`dispatch pass failed: ${(err as Error)?.stack ?? err}`);
      }
    });
  }

  #pass(): void {
    let statuses = this.monitor.statuses();
    let room = this.#placer.hasRoom(statuses);
    const now = this.#deps.now();
    const pass = this.#queue.begin(now, room);
    if (!pass) return;
    const refs = pass.refs;
    if (refs.length === 0) return;
    let info: ObjectInfo | undefined;
    let infoLoaded = false;
    // Jobs that need the same thing get the same "not now"/"never" within one pass; a
    // long queue of similar jobs then costs one placement, not one per job.
    const memo = new Map<string, Placement>();
    for (const ref of refs) {
      if (this.#runner.running.has(ref.id)) continue;
      const limit = ref.queueTimeoutMs ?? this.queueTimeoutMs;
      if (limit > 0 && now - ref.readyAt >= limit) {
        this.#expire(ref.id, limit);
        continue;
      }
      if (limit > 0) this.#queue.expiresAt(ref.readyAt + limit);
      // With every backend full, a job already judged "wait" stays so: skip it cheaply.
      // New jobs are still judged, so one that can never run fails without waiting.
      if (!room && this.#lastRefusals.has(ref.id)) continue;
      let need = this.#needs.get(ref.id);
      if (!need) {
        const job = this.store.get(ref.id);
        if (!job || job.state !== "queued") continue;
        let prompt = job.prompt as ApiPrompt | null;
        if (!prompt) {
          if (!infoLoaded) {
            info = this.objectInfo();
            infoLoaded = true;
          }
          try {
            prompt = this.#placer.prepare(job.workflow, job.sets, info, false) ?? null;
          } catch (err) {
            this.#runner.fail(job, message(err), null, ["queued"]);
            continue;
          }
          if (!prompt) {
            // A UI workflow converts with some backend's node definitions: say once it waits.
            if (this.#lastWaitKinds.get(ref.id) !== "object_info") {
              this.#lastWaitKinds.set(ref.id, "object_info");
              this.store.update(ref.id, WAITING_FOR_DEFINITIONS);
            }
            continue;
          }
          this.store.update(job.id, {
            set: { prompt: prompt as Record<string, unknown> },
            from: ["queued"],
          });
        }
        let req: PromptRequirements;
        try {
          req = promptRequirements(prompt);
        } catch (err) {
          this.#runner.fail(job, `cannot read the prompt's requirements: ${message(err)}`, null, [
            "queued",
          ]);
          continue;
        }
        need = { req, key: JSON.stringify(req) };
        this.#needs.set(ref.id, need);
      }
      const key = JSON.stringify([need.key, ref.pinnedBackend, ref.failedBackends]);
      let verdict = memo.get(key);
      if (!verdict) {
        try {
          verdict = this.#placer.placeReq(
            need.req,
            ref.pinnedBackend,
            ref.failedBackends,
            statuses,
          );
        } catch (err) {
          const job = this.store.get(ref.id);
          if (job) this.#runner.fail(job, `cannot schedule: ${message(err)}`, null, ["queued"]);
          continue;
        }
        if (verdict.kind !== "ok") memo.set(key, verdict);
      }
      if (verdict.kind === "never") {
        const job = this.store.get(ref.id);
        if (job) this.#runner.fail(job, verdict.message, verdict.refusals, ["queued"]);
        continue;
      }
      if (verdict.kind === "wait") {
        const why = JSON.stringify(verdict.refusals);
        if (this.#lastRefusals.get(ref.id) !== why) {
          this.#lastRefusals.set(ref.id, why);
          // An event only when the kind of obstacle changes (a backend going down, a model
          // missing), not for every move of a queue count, so a long queue stays quiet.
          const kinds = verdict.refusals.map((r) => `${r.backend}:${r.kind ?? r.reason}`).join();
          const news = this.#lastWaitKinds.get(ref.id) !== kinds;
          this.#lastWaitKinds.set(ref.id, kinds);
          this.store.update(ref.id, {
            set: { refusals: verdict.refusals },
            ...(news
              ? {
                event: {
                  type: "waiting",
                  data: { reason: verdict.message, refusals: verdict.refusals },
                },
              }
              : {}),
            from: ["queued"],
          });
        }
        continue;
      }
      this.#forget(ref.id);
      const job = this.store.get(ref.id);
      if (!job || job.state !== "queued") continue;
      this.#runner.dispatch(job, verdict.backend);
      statuses = this.monitor.statuses();
      room = this.#placer.hasRoom(statuses);
    }
    this.#queue.end(pass, (id) => this.#runner.running.has(id));
  }

  /** Drops what passes remember about a job that left the queue. */
  #forget(id: string): void {
    this.#lastRefusals.delete(id);
    this.#lastWaitKinds.delete(id);
    this.#needs.delete(id);
  }

  /** Fails a job that waited in the queue longer than its queue timeout allows. */
  #expire(id: string, limitMs: number): void {
    const job = this.store.get(id);
    if (!job || job.state !== "queued") return;
    this.#runner.fail(job, expiryReason(job, limitMs), job.refusals, ["queued"]);
  }

  #onBackendChange(s: BackendStatus): void {
    this.#queue.touch();
    this.#runner.onBackendChange(s);
    this.kick();
  }
}
