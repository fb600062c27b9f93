/**
 * What a dispatch pass knows about the queue between passes, so that a pass reads the
 * queue from the store only when it changed: every settled run kicks a pass, and at a
 * steady load most of them find the same waiting jobs as the one before.
 *
 * @module
 */
import type { JobStore, QueuedRef } from "./store.ts";

/**
 * The queue as the last pass left it, dropped whenever a job enters the queue or leaves
 * it other than through a pass (a cancel, a failure).
 *
 * @example
 * ```ts
 * import { JobStore } from "./store.ts";
 * const view = new QueueView(JobStore.open(":memory:"));
 * view.start();
 * const refs = view.begin(Date.now(), true);
 * view.stop();
 * ```
 */
export class QueueView {
  #store: JobStore;
  #refs?: QueuedRef[];
  /** A job entered the queue since the last pass (or a backend changed). */
  #news = true;
  /** Bumped whenever the cached queue is dropped, so a pass never keeps a stale one. */
  #gen = 0;
  #expiry = Infinity;
  #off?: () => void;

  constructor(store: JobStore) {
    this.#store = store;
  }

  /** Starts following the store's events (without it every pass reads the queue). */
  start(): void {
    this.#off = this.#store.onEvent((e, job) => {
      if (job.state === "queued") this.#news = true;
      if (e.type === "queued" && job.state === "queued") {
        // A new job: the newest, so last in dispatch order.
        this.#refs?.push({
          id: job.id,
          pinnedBackend: job.pinnedBackend,
          failedBackends: job.failedBackends,
          hasPrompt: job.prompt != null,
          readyAt: job.readyAt,
          queueTimeoutMs: job.queueTimeoutMs,
        });
      } else if (job.state === "queued" || e.type === "cancelled" || e.type === "failed") {
        this.#refs = undefined;
        this.#gen++;
      }
    });
  }

  /** Stops following the store. */
  stop(): void {
    this.#off?.();
    this.#off = undefined;
  }

  /** Something besides the queue changed what a pass would decide (a backend's state). */
  touch(): void {
    this.#news = true;
  }

  /**
   * The queue for a pass starting at `now`, or undefined when the pass has nothing to do:
   * no backend has room, no job is new to the queue and none is due to expire.
   */
  begin(now: number, room: boolean): { refs: QueuedRef[]; gen: number } | undefined {
    if (!room && this.#off && !this.#news && now < this.#expiry) return undefined;
    this.#news = false;
    this.#expiry = Infinity;
    if (!this.#off) return { refs: this.#store.queuedRefs(), gen: this.#gen };
    this.#refs ??= this.#store.queuedRefs();
    return { refs: this.#refs, gen: this.#gen };
  }

  /** A queued job in the pass may time out at `at` (ms since epoch). */
  expiresAt(at: number): void {
    this.#expiry = Math.min(this.#expiry, at);
  }

  /** Keeps the pass's queue minus the jobs it sent off, unless the queue changed meanwhile. */
  end(pass: { refs: QueuedRef[]; gen: number }, gone: (id: string) => boolean): void {
    if (!this.#off || pass.gen !== this.#gen) return;
    this.#refs = pass.refs.filter((r) => !gone(r.id));
  }
}
