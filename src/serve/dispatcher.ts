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
 * Failover. A backend that stops answering while it holds a job (the client reports it
 * unreachable, or the health monitor marks it down) is marked down and the job goes back
 * to the head of the queue, preferring other backends, until `maxAttempts` dispatches were
 * made. A prompt ComfyUI rejects (validation `node_errors`) or that raises during
 * execution fails at once: retrying elsewhere would fail the same way.
 *
 * @module
 */
import { GovError, NotFoundError, UsageError } from "../errors.ts";
import type {
  BackendConfig,
  BackendStatus,
  PromptRequirements,
  Refusal,
} from "../backends/types.ts";
import {
  type ApiPrompt,
  clientFor,
  ComfyUIClient,
  type HealthMonitor,
  isApiPrompt,
  isTransient,
  isUnreachable,
  learnedObjectInfo,
  mergeObjectInfo,
  NoBackendError,
  type ObjectInfo,
  patchPrompt,
  PromptDetachedError,
  PromptLostError,
  PromptRejectedError,
  promptRequirements,
  type RunEvent,
  type RunResult,
  selectBackend,
  toApiPrompt,
  UnknownNodeError,
} from "./backend_api.ts";
import { DISPATCH_BUCKETS, Histogram, RUN_BUCKETS } from "./metrics.ts";
import type { JobStore } from "./store.ts";
import { isTerminal, type Job, type JobOutput, type JobState } from "./types.ts";

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

/** Options of the {@linkcode Dispatcher}. */
export interface DispatcherOptions {
  /** Where jobs live. */
  store: JobStore;
  /** Health, load and node definitions of the backends. */
  monitor: HealthMonitor;
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
}

/** Where a prompt can go now: a backend, or refusals that may pass (wait) or not (never). */
export type Placement =
  | { kind: "ok"; backend: BackendConfig }
  | { kind: "wait"; refusals: Refusal[]; message: string }
  | { kind: "never"; refusals: Refusal[]; message: string };

interface Runtime {
  jobId: string;
  backend: BackendConfig;
  /** Aborting cancels the prompt on the backend (DELETE /v1/jobs/{id}). */
  cancel: AbortController;
  /** Aborting stops following the prompt and leaves it on the backend. */
  detach: AbortController;
  /** Why the gateway stopped it, when it did. */
  reason?: "cancel" | "failover" | "shutdown";
  failoverReason?: string;
  done: Promise<void>;
}

function newId(): string {
  const rand = crypto.getRandomValues(new Uint8Array(4));
  return `${Date.now().toString(36)}-${
    Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

function message(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}

/** The class and title of a prompt node, for events a person reads ("KSampler 12/20"). */
function nodeInfo(job: Job, node: string | undefined): Record<string, string> {
  const n = node === undefined ? undefined : (job.prompt as ApiPrompt | null)?.[node];
  if (!n || typeof n.class_type !== "string") return {};
  const title = n._meta?.title;
  return { class_type: n.class_type, ...(typeof title === "string" ? { title } : {}) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs jobs from a {@linkcode JobStore} on the backends of a {@linkcode HealthMonitor}.
 *
 * @example
 * ```ts
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
  readonly monitor: HealthMonitor;
  /** Most dispatches of a new job. */
  readonly maxAttempts: number;
  /** Default queue timeout of jobs in ms (0 = none). */
  readonly queueTimeoutMs: number;
  /** Seconds from a job becoming ready to its prompt being queued on a backend. */
  readonly dispatchSeconds = new Histogram(DISPATCH_BUCKETS);
  /** Seconds from dispatch to completion of successful jobs. */
  readonly runSeconds = new Histogram(RUN_BUCKETS);
  #backends: () => BackendConfig[];
  #log: (line: string) => void;
  #pollMs: number;
  #passMs: number;
  #running = new Map<string, Runtime>();
  #passQueued = false;
  #passTimer?: ReturnType<typeof setTimeout>;
  #stopping = false;
  #timer?: ReturnType<typeof setInterval>;
  #offChange?: () => void;
  #lastRefusals = new Map<string, string>();
  /** Per waiting job, which backends refuse it for which kind of reason (for `waiting`). */
  #lastWaitKinds = new Map<string, string>();
  /** Requirements of queued jobs (their prompts do not change while queued). */
  #needs = new Map<string, { req: PromptRequirements; key: string }>();

  constructor(opts: DispatcherOptions) {
    this.store = opts.store;
    this.monitor = opts.monitor;
    this.#backends = opts.backends;
    this.maxAttempts = opts.maxAttempts ?? 3;
    this.#log = opts.log ?? (() => {});
    this.#pollMs = opts.pollIntervalMs ?? 1000;
    this.#passMs = opts.passIntervalMs ?? 2000;
    this.queueTimeoutMs = opts.queueTimeoutMs ?? 0;
  }

  /** Jobs this dispatcher is running or following right now. */
  get active(): number {
    return this.#running.size;
  }

  /**
   * Re-attaches the jobs a previous gateway left dispatched or running, then starts
   * dispatching queued ones.
   *
   * @example
   * ```ts
   * dispatcher.start();
   * ```
   */
  start(): void {
    this.#offChange = this.monitor.onChange((s) => this.#onBackendChange(s));
    for (const job of this.store.inFlight()) this.#reattach(job);
    this.#timer = setInterval(() => this.kick(), this.#passMs);
    this.kick();
  }

  /**
   * Stops dispatching and lets go of running jobs without touching their state, so the
   * next gateway re-attaches them; their prompts keep running on the backends.
   *
   * @example
   * ```ts
   * await dispatcher.stop();
   * ```
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#passTimer !== undefined) clearTimeout(this.#passTimer);
    this.#offChange?.();
    const pending = [...this.#running.values()];
    for (const rt of pending) {
      rt.reason ??= "shutdown";
      rt.detach.abort();
    }
    await Promise.allSettled(pending.map((rt) => rt.done));
  }

  /**
   * Node definitions for converting UI workflows: every backend's that the monitor has
   * learned, backends that are up first (first wins per class).
   *
   * @example
   * ```ts
   * const info = dispatcher.objectInfo();
   * ```
   */
  objectInfo(): ObjectInfo | undefined {
    const statuses = this.monitor.statuses();
    const order = [
      ...statuses.filter((s) => s.state === "up"),
      ...statuses.filter((s) => s.state !== "up"),
    ];
    return mergeObjectInfo(order.map((s) => learnedObjectInfo(this.monitor, s.id)));
  }

  /**
   * Validates and records a job; returns it `queued` (a pass then places it). Throws
   * {@linkcode JobInputError} for anything the caller must fix, including a prompt no
   * configured backend could ever run.
   *
   * @example
   * ```ts
   * const job = dispatcher.submit({ workflow, sets: [["steps", "30"]] });
   * ```
   */
  submit(req: JobRequest): Job {
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
    const prompt = this.#prepare(req.workflow, sets, this.objectInfo(), true);
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
    const now = Date.now();
    const job: Job = {
      id: newId(),
      state: "queued",
      workflow: req.workflow,
      sets,
      prompt: (prompt ?? null) as Record<string, unknown> | null,
      pinnedBackend: req.backend ?? null,
      backend: null,
      promptId: crypto.randomUUID(),
      clientId: `gov-${crypto.randomUUID()}`,
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
    this.store.create(job, req.backend ? { backend: req.backend } : {});
    this.#log(`job ${job.id} queued${req.backend ? ` for backend ${req.backend}` : ""}`);
    this.kick();
    return job;
  }

  /**
   * Cancels a job: a queued one at once; a dispatched or running one is also deleted from
   * its backend's queue, or interrupted there. Throws {@linkcode JobStateError} for a
   * finished job.
   *
   * @example
   * ```ts
   * const job = await dispatcher.cancel("lx2k3j4a-9f3e1c");
   * ```
   */
  async cancel(id: string): Promise<Job> {
    const job = this.store.get(id);
    if (!job) throw new NotFoundError("job", id, "list jobs with GET /v1/jobs");
    if (isTerminal(job.state)) throw new JobStateError(`job '${id}' is already ${job.state}`);
    const rt = this.#running.get(id);
    if (rt) rt.reason = "cancel";
    const cancelled = this.store.update(id, {
      set: { state: "cancelled", finishedAt: Date.now(), progress: null },
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
      await Promise.race([rt.done, sleep(15_000)]);
    } else if (job.state !== "queued" && job.backend) {
      const backend = this.#backends().find((b) => b.id === job.backend);
      if (backend) {
        await clientFor(backend).cancel(job.promptId).catch((err) =>
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
   * dispatcher.kick();
   * ```
   */
  kick(): void {
    if (this.#passQueued || this.#stopping) return;
    this.#passQueued = true;
    this.#passTimer = setTimeout(() => {
      this.#passQueued = false;
      this.#passTimer = undefined;
      if (this.#stopping) return;
      try {
        this.#pass();
      } catch (err) {
        this.#log(`dispatch pass failed: ${(err as Error)?.stack ?? err}`);
      }
    }, 0);
  }

  /**
   * Converts and patches. Undefined when that must wait: a UI workflow and no node
   * definitions yet, or node classes unknown while some backend has not been learned.
   * With `keysOnly`, a prompt patched without definitions is not returned (its ranges
   * are checked again once definitions exist).
   */
  #prepare(
    workflow: unknown,
    sets: [string, string][],
    info: ObjectInfo | undefined,
    keysOnly: boolean,
  ): ApiPrompt | undefined {
    if (workflow === null || typeof workflow !== "object" || Array.isArray(workflow)) {
      throw new JobInputError("workflow must be a JSON object (UI workflow or API prompt)");
    }
    if (!isApiPrompt(workflow) && !info) return undefined;
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
    return this.#backends().some((b) => !learnedObjectInfo(this.monitor, b.id));
  }

  /**
   * Chooses a backend for a prompt now, or says why not and whether that can change
   * (`wait`) or not (`never`). Backends in `avoid` are tried last.
   *
   * @example
   * ```ts
   * const v = dispatcher.placeFor(prompt, null, []);
   * if (v.kind === "ok") console.log(v.backend.id);
   * ```
   */
  placeFor(prompt: ApiPrompt, only: string | null, avoid: string[]): Placement {
    return this.#placeReq(promptRequirements(prompt), only, avoid, this.monitor.statuses());
  }

  #placeReq(
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
    refusals = refusals.map((r) => this.#explain(r, req, statuses));
    const never = backends.length === 0 || !refusals.some((r) => this.#mayPass(r));
    const what = backends.length === 0
      ? "no backends are configured"
      : refusals.map((r) => `${r.backend}: ${r.reason}`).join("; ");
    return never
      ? { kind: "never", refusals, message: `no backend can run this prompt: ${what}` }
      : { kind: "wait", refusals, message: `waiting for a backend: ${what}` };
  }

  /**
   * A down backend known (from an earlier probe) to lack a node class will not grow it by
   * coming back: its refusal becomes permanent and says so.
   */
  #explain(r: Refusal, req: PromptRequirements, statuses: BackendStatus[]): Refusal {
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

  #mayPass(r: Refusal): boolean {
    if (r.kind === undefined) return !/missing (node|model)/i.test(r.reason);
    return isTransient(r);
  }

  #pass(): void {
    const refs = this.store.queuedRefs();
    if (refs.length === 0) return;
    let statuses = this.monitor.statuses();
    let room = this.#hasRoom(statuses);
    let info: ObjectInfo | undefined;
    let infoLoaded = false;
    // Jobs that need the same thing get the same "not now"/"never" within one pass; a
    // long queue of similar jobs then costs one placement, not one per job.
    const memo = new Map<string, Placement>();
    const now = Date.now();
    for (const ref of refs) {
      if (this.#running.has(ref.id)) continue;
      const limit = ref.queueTimeoutMs ?? this.queueTimeoutMs;
      if (limit > 0 && now - ref.readyAt >= limit) {
        this.#expire(ref.id, limit);
        continue;
      }
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
            prompt = this.#prepare(job.workflow, job.sets, info, false) ?? null;
          } catch (err) {
            this.#fail(job, message(err), null, ["queued"]);
            continue;
          }
          if (!prompt) continue;
          this.store.update(job.id, {
            set: { prompt: prompt as Record<string, unknown> },
            from: ["queued"],
          });
        }
        let req: PromptRequirements;
        try {
          req = promptRequirements(prompt);
        } catch (err) {
          this.#fail(job, `cannot read the prompt's requirements: ${message(err)}`, null, [
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
          verdict = this.#placeReq(need.req, ref.pinnedBackend, ref.failedBackends, statuses);
        } catch (err) {
          const job = this.store.get(ref.id);
          if (job) this.#fail(job, `cannot schedule: ${message(err)}`, null, ["queued"]);
          continue;
        }
        if (verdict.kind !== "ok") memo.set(key, verdict);
      }
      if (verdict.kind === "never") {
        const job = this.store.get(ref.id);
        if (job) this.#fail(job, verdict.message, verdict.refusals, ["queued"]);
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
      this.#dispatch(job, verdict.backend);
      statuses = this.monitor.statuses();
      room = this.#hasRoom(statuses);
    }
  }

  /** Whether some backend that is up has a free slot. */
  #hasRoom(statuses: BackendStatus[]): boolean {
    const backends = this.#backends();
    return statuses.some((s) => {
      const b = backends.find((x) => x.id === s.id);
      return b !== undefined && s.state === "up" &&
        Math.max(s.queueRemaining, s.inFlight) < b.max_queue;
    });
  }

  #dispatch(job: Job, backend: BackendConfig): void {
    const attempt = job.attempts + 1;
    const updated = this.store.update(job.id, {
      set: {
        state: "dispatched",
        backend: backend.id,
        attempts: attempt,
        dispatchedAt: Date.now(),
        queuedAt: null,
        startedAt: null,
        progress: null,
        refusals: null,
      },
      event: { type: "dispatched", data: { backend: backend.id, attempt } },
      from: ["queued"],
    });
    if (!updated) return;
    this.#log(`job ${job.id} dispatched to ${backend.id} (attempt ${attempt}/${job.maxAttempts})`);
    // Back on a backend that had it before: it may still hold the prompt; attach to it.
    const attach = job.attempts > 0 &&
      (job.backend === backend.id || job.failedBackends.includes(backend.id));
    this.#launch(updated, backend, attach);
  }

  /** A job a previous gateway left dispatched or running: attach to its prompt. */
  #reattach(job: Job): void {
    const backend = this.#backends().find((b) => b.id === job.backend);
    if (!backend || !job.prompt) {
      this.#requeue(job, `backend ${job.backend ?? "?"} is no longer configured`, true);
      return;
    }
    this.#log(`job ${job.id}: re-attaching to prompt ${job.promptId} on ${backend.id}`);
    this.#launch(job, backend, true);
  }

  #launch(job: Job, backend: BackendConfig, attach: boolean): void {
    this.monitor.adjustInFlight(backend.id, +1);
    const rt: Runtime = {
      jobId: job.id,
      backend,
      cancel: new AbortController(),
      detach: new AbortController(),
      done: Promise.resolve(),
    };
    this.#running.set(job.id, rt);
    rt.done = (async () => {
      try {
        // runPrompt ends its requests in flight itself when detached (a wedged backend).
        const client = clientFor(backend);
        const result = await client.runPrompt(job.prompt as ApiPrompt, {
          promptId: job.promptId,
          clientId: job.clientId,
          signal: rt.cancel.signal,
          detachSignal: rt.detach.signal,
          attach,
          pollIntervalMs: this.#pollMs,
          onEvent: (e) => this.#onRunEvent(job.id, backend, e),
        });
        this.#settle(job.id, rt, result);
      } catch (err) {
        this.#settleError(job.id, rt, err);
      } finally {
        this.monitor.adjustInFlight(backend.id, -1);
        this.#running.delete(job.id);
        this.kick();
      }
    })();
  }

  #onAccepted(jobId: string, backend: BackendConfig): void {
    const job = this.store.get(jobId);
    if (!job || job.queuedAt !== null || isTerminal(job.state)) return;
    const now = Date.now();
    const ok = this.store.update(jobId, {
      set: { queuedAt: now },
      event: { type: "accepted", data: { backend: backend.id, prompt_id: job.promptId } },
      from: ["dispatched", "running"],
    });
    if (ok) this.dispatchSeconds.observe((now - job.readyAt) / 1000);
  }

  #onRunEvent(jobId: string, backend: BackendConfig, e: RunEvent): void {
    if (e.type === "queued") {
      this.#onAccepted(jobId, backend);
      return;
    }
    let job = this.store.get(jobId);
    if (!job || isTerminal(job.state)) return;
    if (job.queuedAt === null) this.#onAccepted(jobId, backend);
    if (job.state === "dispatched") {
      job = this.store.update(jobId, {
        set: { state: "running", startedAt: Date.now() },
        event: { type: "running", data: { backend: backend.id } },
        from: ["dispatched"],
      }) ?? job;
    }
    if (e.type === "progress") {
      const progress = { value: e.value, max: e.max, ...(e.node ? { node: e.node } : {}) };
      this.store.update(jobId, {
        set: { progress },
        event: {
          type: "progress",
          data: { value: e.value, max: e.max, node: e.node ?? null, ...nodeInfo(job, e.node) },
        },
        from: ["running"],
      });
    } else if (e.type === "executed") {
      this.store.update(jobId, {
        set: {},
        event: { type: "executed", data: { node: e.node, ...nodeInfo(job, e.node) } },
        from: ["running"],
      });
    }
  }

  #settle(jobId: string, rt: Runtime, result: RunResult): void {
    if (rt.reason === "shutdown" || rt.reason === "cancel") return;
    this.#onAccepted(jobId, rt.backend);
    const job = this.store.get(jobId);
    if (!job || isTerminal(job.state)) return;
    const now = Date.now();
    if (result.status === "success") {
      const outputs: JobOutput[] = result.outputs.map((o) => ({
        nodeId: o.nodeId,
        filename: o.filename,
        subfolder: o.subfolder,
        type: o.type,
      }));
      const done = this.store.update(jobId, {
        set: {
          state: "completed",
          outputs,
          finishedAt: now,
          error: null,
          progress: null,
          startedAt: job.startedAt ?? now,
        },
        event: {
          type: "completed",
          data: {
            backend: rt.backend.id,
            outputs: outputs.length,
            seconds: Math.round((now - job.createdAt) / 100) / 10,
          },
        },
        from: ["dispatched", "running"],
      });
      if (done) {
        if (job.dispatchedAt) this.runSeconds.observe((now - job.dispatchedAt) / 1000);
        this.#log(`job ${jobId} completed on ${rt.backend.id} (${outputs.length} output(s))`);
      }
      return;
    }
    const e = result.error;
    const reason = result.status === "interrupted"
      ? `interrupted on backend ${rt.backend.id}`
      : `execution error on ${rt.backend.id}: ${e?.exceptionType ? `${e.exceptionType}: ` : ""}${
        e?.message ?? "unknown error"
      }${e?.nodeType ? ` (node ${e.nodeId ?? "?"} ${e.nodeType})` : ""}`;
    this.#fail(job, reason, null, ["dispatched", "running"]);
  }

  #settleError(jobId: string, rt: Runtime, err: unknown): void {
    if (rt.reason === "shutdown" || rt.reason === "cancel") return;
    const job = this.store.get(jobId);
    if (!job || isTerminal(job.state)) return;
    if (err instanceof PromptRejectedError) {
      this.#fail(job, message(err), null, ["dispatched", "running"]);
      return;
    }
    if (err instanceof PromptLostError) {
      // The backend answers but forgot the prompt (it restarted): retry, it is not down.
      this.#failover(job, rt.backend, message(err));
      return;
    }
    if (rt.reason === "failover" || err instanceof PromptDetachedError || isUnreachable(err)) {
      const why = rt.failoverReason ?? message(err);
      if (rt.reason !== "failover") this.monitor.markDown(rt.backend.id, why);
      // If the backend comes back with the prompt still queued, drop it there.
      new ComfyUIClient({ ...rt.backend, timeoutMs: 3000 }).cancel(job.promptId).catch(() => {});
      this.#failover(job, rt.backend, why);
      return;
    }
    this.#fail(job, `${rt.backend.id}: ${message(err)}`, null, ["dispatched", "running"]);
  }

  #failover(job: Job, backend: BackendConfig, why: string): void {
    if (job.attempts >= job.maxAttempts) {
      this.#fail(
        job,
        `gave up after ${job.attempts} attempt(s); last: ${why}`,
        null,
        ["dispatched", "running"],
      );
      return;
    }
    const updated = this.store.update(job.id, {
      set: {
        state: "queued",
        readyAt: Date.now(),
        error: why,
        failedBackends: [...new Set([...job.failedBackends, backend.id])],
        progress: null,
        queuedAt: null,
        startedAt: null,
      },
      event: { type: "retry", data: { backend: backend.id, reason: why, attempt: job.attempts } },
      from: ["dispatched", "running"],
    });
    if (updated) this.#log(`job ${job.id}: ${why}; re-dispatching`);
  }

  /** Back to the queue without counting the attempt (the gateway's fault, not the job's). */
  #requeue(job: Job, why: string, refund: boolean): void {
    const updated = this.store.update(job.id, {
      set: {
        state: "queued",
        readyAt: Date.now(),
        attempts: refund ? Math.max(0, job.attempts - 1) : job.attempts,
        error: why,
        progress: null,
        queuedAt: null,
        startedAt: null,
      },
      event: { type: "retry", data: { backend: job.backend, reason: why, attempt: job.attempts } },
      from: ["dispatched", "running"],
    });
    if (updated) this.#log(`job ${job.id}: ${why}; queued again`);
  }

  #fail(job: Job, reason: string, refusals: Refusal[] | null, from: JobState[]): void {
    const done = this.store.update(job.id, {
      set: { state: "failed", error: reason, refusals, finishedAt: Date.now(), progress: null },
      event: {
        type: "failed",
        data: { error: reason, backend: job.backend, ...(refusals ? { refusals } : {}) },
      },
      from,
    });
    this.#forget(job.id);
    if (done) this.#log(`job ${job.id} failed: ${reason}`);
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
    const secs = Math.round(limitMs / 100) / 10;
    const why = job.refusals?.length
      ? job.refusals.map((r) => `${r.backend}: ${r.reason}`).join("; ")
      : job.prompt
      ? "no backend had room for it"
      : "no backend has reported its node definitions yet";
    this.#fail(
      job,
      `no backend took the job within the queue timeout (${secs} s): ${why}`,
      job.refusals,
      ["queued"],
    );
  }

  #onBackendChange(s: BackendStatus): void {
    if (s.state === "down") {
      for (const rt of this.#running.values()) {
        if (rt.backend.id === s.id && !rt.reason) {
          rt.reason = "failover";
          rt.failoverReason = `backend ${s.id} went down (${s.lastError ?? "stopped answering"})`;
          rt.detach.abort();
        }
      }
    }
    this.kick();
  }
}
