/**
 * The running half of the dispatcher: launches a job's prompt on the backend a pass chose,
 * follows it to its end, and records that end in the store: completed, failed, or back in
 * the queue for another backend (failover).
 *
 * Failover. A backend that stops answering while it holds a job (the client reports it
 * unreachable, or the health monitor marks it down) is marked down and the job goes back
 * to the head of the queue, preferring other backends, until `maxAttempts` dispatches were
 * made. A prompt ComfyUI rejects (validation `node_errors`) or that raises during
 * execution fails at once: retrying elsewhere would fail the same way.
 *
 * @module
 */
import type { BackendConfig, BackendStatus, Refusal } from "../backends/types.ts";
import {
  type ApiPrompt,
  isUnreachable,
  type PromptApi,
  PromptDetachedError,
  PromptLostError,
  PromptOutcomeUnknownError,
  PromptRejectedError,
  type RunEvent,
  runPrompt,
  type RunResult,
  SharedSocket,
} from "./backend_api.ts";
import type { BackendHealth, DispatcherDeps } from "./dispatch_types.ts";
import { DISPATCH_BUCKETS, Histogram, RUN_BUCKETS } from "./metrics.ts";
import { LeftBehind } from "./left_behind.ts";
import type { JobStore } from "./store.ts";
import { isTerminal, type Job, type JobOutput, type JobState } from "./types.ts";

/** A job whose prompt this gateway is following now. */
export interface Runtime {
  /** The job. */
  jobId: string;
  /** The job as launched (its prompt, ids and ready time do not change during a run). */
  job: Job;
  /** Whether the backend's acceptance was recorded (`queuedAt`). */
  accepted: boolean;
  /** Whether the job was moved to `running`. */
  running: boolean;
  /** Where its prompt is. */
  backend: BackendConfig;
  /** Aborting cancels the prompt on the backend (DELETE /v1/jobs/{id}). */
  cancel: AbortController;
  /** Aborting stops following the prompt and leaves it on the backend. */
  detach: AbortController;
  /** Why the gateway stopped it, when it did. */
  reason?: "cancel" | "failover" | "shutdown";
  /** What made the backend count as down, for a failover the monitor started. */
  failoverReason?: string;
  /** The backend may hold the prompt but has not answered whether it does. */
  uncertain?: boolean;
  /** Settles once the job's end is recorded (or it was let go). */
  done: Promise<void>;
}

/** What a {@linkcode JobRunner} works with. */
export interface JobRunnerOptions {
  /** Where jobs live. */
  store: JobStore;
  /** Backend health; told about load and failures. */
  monitor: BackendHealth;
  /** The backends currently configured. */
  backends: () => BackendConfig[];
  /** The backend client and the clock. */
  deps: DispatcherDeps;
  /** One line per notable change. */
  log: (line: string) => void;
  /** `/history` poll interval while following a prompt. */
  pollIntervalMs: number;
  /** Called whenever a job leaves a backend (a pass may place more work). */
  onSettled: () => void;
  /** Called when a job leaves the queue for good, so passes forget it. */
  onFinished: (jobId: string) => void;
}

/** Whether a run ended not knowing if the backend holds its prompt. */
function isUnknownOutcome(err: unknown): boolean {
  if (err instanceof PromptOutcomeUnknownError) return true;
  return err instanceof PromptDetachedError && err.outcomeUnknown;
}

/** An error's message, or the thrown value as text. */
export function message(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}

/** The class and title of a prompt node, for events a person reads ("KSampler 12/20"). */
function nodeInfo(job: Job, node: string | undefined): Record<string, string> {
  const n = node === undefined ? undefined : (job.prompt as ApiPrompt | null)?.[node];
  if (!n || typeof n.class_type !== "string") return {};
  const title = n._meta?.title;
  return { class_type: n.class_type, ...(typeof title === "string" ? { title } : {}) };
}

/**
 * Runs dispatched jobs on their backends and records how they end.
 *
 * @example
 * ```ts
 * import { JobStore } from "./store.ts";
 * import { HealthMonitor } from "./backend_api.ts";
 * import type { BackendConfig } from "../backends/types.ts";
 * import type { Job } from "./types.ts";
 * import { defaultDispatcherDeps } from "./dispatch_types.ts";
 * const store = JobStore.open(":memory:");
 * const monitor = new HealthMonitor([]);
 * declare const backends: BackendConfig[];
 * declare const backend: BackendConfig;
 * declare const job: Job;
 * const deps = defaultDispatcherDeps();
 * const log = console.log;
 * const runner = new JobRunner({
 *   store,
 *   monitor,
 *   backends: () => [],
 *   deps,
 *   log,
 *   pollIntervalMs: 1000,
 *   onSettled: () => {},
 *   onFinished: () => {},
 * });
 * runner.dispatch(job, backend);
 * ```
 */
export class JobRunner {
  /** Seconds from a job becoming ready to its prompt being queued on a backend. */
  readonly dispatchSeconds: Histogram = new Histogram(DISPATCH_BUCKETS);
  /** Seconds from dispatch to completion of successful jobs. */
  readonly runSeconds: Histogram = new Histogram(RUN_BUCKETS);
  /**
   * The client id every prompt of this gateway is queued under: ComfyUI sends a prompt's
   * events to that client's socket, so one socket per backend follows all of them.
   */
  readonly clientId: string = `gov-${crypto.randomUUID()}`;
  #o: JobRunnerOptions;
  #running = new Map<string, Runtime>();
  #left: LeftBehind;
  /** The long-lived `/ws` of each backend, by backend id. */
  #sockets = new Map<string, SharedSocket>();

  constructor(opts: JobRunnerOptions) {
    this.#o = opts;
    this.#left = new LeftBehind(opts.store, opts.backends, opts.deps);
  }

  /** Jobs being followed now, by job id. */
  get running(): ReadonlyMap<string, Runtime> {
    return this.#running;
  }

  #now(): number {
    return this.#o.deps.now();
  }

  /**
   * Marks a queued job dispatched to `backend` and launches its prompt there; `job` is
   * as just read from the store (it spares the update reading it back).
   *
   * @example
   * ```ts
   * import type { BackendConfig } from "../backends/types.ts";
   * import type { Job } from "./types.ts";
   * declare const backend: BackendConfig;
   * declare const job: Job;
   * declare const runner: JobRunner;
   * runner.dispatch(job, backend);
   * ```
   */
  dispatch(job: Job, backend: BackendConfig): void {
    const attempt = job.attempts + 1;
    const updated = this.#o.store.update(job.id, {
      set: {
        state: "dispatched",
        backend: backend.id,
        attempts: attempt,
        dispatchedAt: this.#now(),
        queuedAt: null,
        startedAt: null,
        progress: null,
        refusals: null,
      },
      event: { type: "dispatched", data: { backend: backend.id, attempt } },
      from: ["queued"],
      current: job,
    });
    if (!updated) return;
    this.#o.log(
      `job ${job.id} dispatched to ${backend.id} (attempt ${attempt}/${job.maxAttempts})`,
    );
    // Back on a backend that had it before: it may still hold the prompt; attach to it.
    const attach = job.attempts > 0 &&
      (job.backend === backend.id || job.failedBackends.includes(backend.id));
    this.#launch(updated, backend, attach);
    // Now placed elsewhere, its prompt left on backends it failed over from can go.
    for (const id of job.failedBackends) if (id !== backend.id) this.#left.sweep(id);
  }

  /**
   * A job a previous gateway left dispatched or running: attach to its prompt.
   *
   * @example
   * ```ts
   * import { JobStore } from "./store.ts";
   * const store = JobStore.open(":memory:");
   * declare const runner: JobRunner;
   * for (const job of store.inFlight()) runner.reattach(job);
   * ```
   */
  reattach(job: Job): void {
    const backend = this.#o.backends().find((b) => b.id === job.backend);
    if (!backend || !job.prompt) {
      this.#requeue(job, `backend ${job.backend ?? "?"} is no longer configured`, true);
      return;
    }
    this.#o.log(`job ${job.id}: re-attaching to prompt ${job.promptId} on ${backend.id}`);
    this.#launch(job, backend, true);
  }

  /**
   * Lets go of every running job without touching its state (the next gateway re-attaches);
   * resolves once all of them have stopped.
   *
   * @example
   * ```ts
   * declare const runner: JobRunner;
   * await runner.detachAll();
   * ```
   */
  async detachAll(): Promise<void> {
    const pending = [...this.#running.values()];
    for (const rt of pending) {
      rt.reason ??= "shutdown";
      rt.detach.abort();
    }
    await Promise.allSettled(pending.map((rt) => rt.done));
    const sockets = [...this.#sockets.values()];
    this.#sockets.clear();
    await Promise.allSettled(sockets.map((s) => s.close()));
  }

  /** The backend's client, following prompts over the backend's shared socket. */
  #api(backend: BackendConfig): PromptApi {
    const client = this.#o.deps.client(backend);
    let shared = this.#sockets.get(backend.id);
    if (!shared || shared.baseUrl !== client.baseUrl) {
      // A backend whose address changed gets a socket to its new address.
      shared?.close().catch(() => {});
      shared = new SharedSocket(client, this.clientId);
      this.#sockets.set(backend.id, shared);
    }
    return shared.api(client);
  }

  /**
   * A backend went down: every job on it moves (failover).
   *
   * @example
   * ```ts
   * import { HealthMonitor } from "./backend_api.ts";
   * const monitor = new HealthMonitor([]);
   * declare const runner: JobRunner;
   * monitor.onChange((s) => runner.onBackendChange(s));
   * ```
   */
  onBackendChange(s: BackendStatus): void {
    if (s.state === "up") this.#left.sweep(s.id);
    if (s.state !== "down") return;
    for (const rt of this.#running.values()) {
      // A run unsure whether the backend holds its prompt waits for it; it cannot move.
      if (rt.backend.id === s.id && !rt.reason && !rt.uncertain) {
        rt.reason = "failover";
        rt.failoverReason = `backend ${s.id} went down (${s.lastError ?? "stopped answering"})`;
        rt.detach.abort();
      }
    }
  }

  /**
   * Deletes prompts left behind on backends that are up now, where their jobs cannot come
   * back for them. Dispatch passes call it, so a drop that failed is tried again.
   *
   * @example
   * ```ts
   * import { HealthMonitor } from "./backend_api.ts";
   * import type { JobRunner } from "./job_runner.ts";
   * const monitor = new HealthMonitor([]);
   * declare const runner: JobRunner;
   * runner.sweepLeftBehind(monitor.statuses());
   * ```
   */
  sweepLeftBehind(statuses: BackendStatus[]): void {
    for (const s of statuses) if (s.state === "up") this.#left.sweep(s.id);
  }

  /** Remembers that `job`'s prompt may wait on `backend`, and tries to delete it now. */
  #leave(backend: BackendConfig, job: Job): void {
    this.#left.add(backend.id, job);
    this.#left.drop(backend, job.promptId);
  }

  #launch(job: Job, backend: BackendConfig, attach: boolean): void {
    this.#o.monitor.adjustInFlight(backend.id, +1);
    const rt: Runtime = {
      jobId: job.id,
      job,
      accepted: job.queuedAt !== null,
      running: job.state === "running",
      backend,
      cancel: new AbortController(),
      detach: new AbortController(),
      done: Promise.resolve(),
    };
    this.#running.set(job.id, rt);
    rt.done = (async () => {
      try {
        let attachNow = attach;
        while (true) {
          try {
            // runPrompt ends its requests in flight itself when detached (a wedged backend).
            const result = await runPrompt(
              this.#api(backend),
              job.prompt as ApiPrompt,
              {
                promptId: job.promptId,
                // A prompt an earlier gateway queued reports to that gateway's client id:
                // followed here through /history, which stays the authority anyway.
                clientId: this.clientId,
                signal: rt.cancel.signal,
                detachSignal: rt.detach.signal,
                attach: attachNow,
                pollIntervalMs: this.#o.pollIntervalMs,
                onEvent: (e) => this.#onRunEvent(rt, e),
              },
            );
            rt.uncertain = false;
            this.#settle(job.id, rt, result);
            return;
          } catch (err) {
            if (!this.#outcomeUnknown(rt, err)) {
              if (rt.reason === "cancel" && isUnknownOutcome(err)) {
                // Cancelled before the backend said whether it got the prompt: drop it there.
                this.#leave(backend, job);
              }
              this.#settleError(job.id, rt, err);
              return;
            }
            if (!await this.#awaitBackend(job, rt, err as Error)) return;
            attachNow = true;
          }
        }
      } finally {
        this.#o.monitor.adjustInFlight(backend.id, -1);
        this.#running.delete(job.id);
        this.#o.onSettled();
      }
    })();
  }

  /**
   * Whether the run ended without knowing if the backend holds the prompt (a POST whose
   * answer was lost, a look that could not be made). ComfyUI runs a repeated prompt id
   * again, so such a job stays with its backend until it answers: never elsewhere meanwhile.
   */
  #outcomeUnknown(rt: Runtime, err: unknown): boolean {
    if (rt.reason === "shutdown" || rt.reason === "cancel") return false;
    return isUnknownOutcome(err);
  }

  /**
   * Waits a poll interval before looking for the prompt on its backend again. False when
   * the job was cancelled or the gateway stops meanwhile (a cancel is still sent there).
   */
  async #awaitBackend(job: Job, rt: Runtime, err: Error): Promise<boolean> {
    if (!rt.uncertain) {
      rt.uncertain = true;
      const why = `${err.message}; waiting for ${rt.backend.id} to answer before running it ` +
        "anywhere";
      this.#o.log(`job ${job.id}: ${why}`);
      this.#o.store.update(job.id, { set: { error: why }, from: ["dispatched", "running"] });
    }
    // The monitor's "down" may have detached this run; the job stays, so start afresh.
    rt.reason = undefined;
    rt.failoverReason = undefined;
    if (rt.detach.signal.aborted) rt.detach = new AbortController();
    const stop = AbortSignal.any([rt.cancel.signal, rt.detach.signal]);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.max(this.#o.pollIntervalMs, 1) * 2);
      function done() {
        clearTimeout(timer);
        stop.removeEventListener("abort", done);
        resolve();
      }
      stop.addEventListener("abort", done);
    });
    if (rt.cancel.signal.aborted) {
      // Cancelled while unsure: if the backend did get the prompt, drop it there.
      this.#leave(rt.backend, job);
      return false;
    }
    return !rt.detach.signal.aborted;
  }

  /**
   * Records that the backend holds the prompt, once per run. What the run already knows
   * (`rt.accepted`, the job as launched) spares reading the job back on every event; the
   * `from` guard still keeps a job cancelled meanwhile as it is.
   */
  #onAccepted(rt: Runtime): void {
    if (rt.accepted) return;
    rt.accepted = true;
    const { job, backend } = rt;
    const now = this.#now();
    const ok = this.#o.store.update(job.id, {
      set: { queuedAt: now },
      event: { type: "accepted", data: { backend: backend.id, prompt_id: job.promptId } },
      from: ["dispatched", "running"],
    });
    if (ok) this.dispatchSeconds.observe((now - job.readyAt) / 1000);
  }

  #onRunEvent(rt: Runtime, e: RunEvent): void {
    this.#onAccepted(rt);
    if (e.type === "queued") return;
    const store = this.#o.store;
    const { job, backend } = rt;
    if (!rt.running) {
      rt.running = true;
      store.update(job.id, {
        set: { state: "running", startedAt: this.#now() },
        event: { type: "running", data: { backend: backend.id } },
        from: ["dispatched"],
      });
    }
    if (e.type === "progress") {
      const progress = { value: e.value, max: e.max, ...(e.node ? { node: e.node } : {}) };
      store.update(job.id, {
        set: { progress },
        event: {
          type: "progress",
          data: { value: e.value, max: e.max, node: e.node ?? null, ...nodeInfo(job, e.node) },
        },
        from: ["running"],
      });
    } else if (e.type === "executed") {
      store.update(job.id, {
        set: {},
        event: { type: "executed", data: { node: e.node, ...nodeInfo(job, e.node) } },
        from: ["running"],
      });
    }
  }

  #settle(jobId: string, rt: Runtime, result: RunResult): void {
    if (rt.reason === "shutdown" || rt.reason === "cancel") return;
    this.#onAccepted(rt);
    const job = this.#o.store.get(jobId);
    if (!job || isTerminal(job.state)) return;
    const now = this.#now();
    if (result.status === "success") {
      const outputs: JobOutput[] = result.outputs.map((o) => ({
        nodeId: o.nodeId,
        filename: o.filename,
        subfolder: o.subfolder,
        type: o.type,
      }));
      const done = this.#o.store.update(jobId, {
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
        this.#o.log(`job ${jobId} completed on ${rt.backend.id} (${outputs.length} output(s))`);
      }
      return;
    }
    const e = result.error;
    const reason = result.status === "interrupted"
      ? `interrupted on backend ${rt.backend.id}`
      : `execution error on ${rt.backend.id}: ${e?.exceptionType ? `${e.exceptionType}: ` : ""}${
        e?.message ?? "unknown error"
      }${e?.nodeType ? ` (node ${e.nodeId ?? "?"} ${e.nodeType})` : ""}`;
    this.fail(job, reason, null, ["dispatched", "running"]);
  }

  #settleError(jobId: string, rt: Runtime, err: unknown): void {
    if (rt.reason === "shutdown" || rt.reason === "cancel") return;
    const job = this.#o.store.get(jobId);
    if (!job || isTerminal(job.state)) return;
    if (err instanceof PromptRejectedError) {
      this.fail(job, message(err), null, ["dispatched", "running"]);
      return;
    }
    if (err instanceof PromptLostError) {
      // The backend answers but forgot the prompt (it restarted): retry, it is not down.
      this.#failover(job, rt.backend, message(err));
      return;
    }
    if (rt.reason === "failover" || err instanceof PromptDetachedError || isUnreachable(err)) {
      const why = rt.failoverReason ?? message(err);
      if (rt.reason !== "failover") this.#o.monitor.markDown(rt.backend.id, why);
      // The prompt may still be queued there and run when the backend recovers: drop it
      // now if it answers, else once it is back up (left_behind.ts).
      this.#leave(rt.backend, job);
      this.#failover(job, rt.backend, why);
      return;
    }
    this.fail(job, `${rt.backend.id}: ${message(err)}`, null, ["dispatched", "running"]);
  }

  #failover(job: Job, backend: BackendConfig, why: string): void {
    if (job.attempts >= job.maxAttempts) {
      this.fail(
        job,
        `gave up after ${job.attempts} attempt(s); last: ${why}`,
        null,
        ["dispatched", "running"],
      );
      return;
    }
    const updated = this.#o.store.update(job.id, {
      set: {
        state: "queued",
        readyAt: this.#now(),
        error: why,
        failedBackends: [...new Set([...job.failedBackends, backend.id])],
        progress: null,
        queuedAt: null,
        startedAt: null,
      },
      event: { type: "retry", data: { backend: backend.id, reason: why, attempt: job.attempts } },
      from: ["dispatched", "running"],
    });
    if (updated) this.#o.log(`job ${job.id}: ${why}; re-dispatching`);
  }

  /** Back to the queue without counting the attempt (the gateway's fault, not the job's). */
  #requeue(job: Job, why: string, refund: boolean): void {
    const updated = this.#o.store.update(job.id, {
      set: {
        state: "queued",
        readyAt: this.#now(),
        attempts: refund ? Math.max(0, job.attempts - 1) : job.attempts,
        error: why,
        progress: null,
        queuedAt: null,
        startedAt: null,
      },
      event: { type: "retry", data: { backend: job.backend, reason: why, attempt: job.attempts } },
      from: ["dispatched", "running"],
    });
    if (updated) this.#o.log(`job ${job.id}: ${why}; queued again`);
  }

  /**
   * Fails a job that is in one of the `from` states, with a reason a person reads.
   *
   * @example
   * ```ts
   * import type { BackendConfig } from "../backends/types.ts";
   * import type { Job } from "./types.ts";
   * declare const backend: BackendConfig;
   * declare const job: Job;
   * declare const runner: JobRunner;
   * runner.fail(job, "no backend took the job within the queue timeout", null, ["queued"]);
   * ```
   */
  fail(job: Job, reason: string, refusals: Refusal[] | null, from: JobState[]): void {
    const done = this.#o.store.update(job.id, {
      set: { state: "failed", error: reason, refusals, finishedAt: this.#now(), progress: null },
      event: {
        type: "failed",
        data: { error: reason, backend: job.backend, ...(refusals ? { refusals } : {}) },
      },
      from,
    });
    this.#o.onFinished(job.id);
    if (done) this.#o.log(`job ${job.id} failed: ${reason}`);
  }
}
