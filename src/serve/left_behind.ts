/**
 * Prompts left behind: a job failed over from a backend that stopped answering, or was
 * cancelled before its backend said whether it got the prompt, may still have its prompt
 * queued there, and ComfyUI runs it when it recovers. This remembers such prompts (in
 * memory) and deletes them once the backend answers and the job cannot come back for them.
 *
 * @module
 */
import type { BackendConfig } from "../backends/types.ts";
import type { DispatcherDeps } from "./dispatch_types.ts";
import type { JobStore } from "./store.ts";
import { isTerminal, type Job } from "./types.ts";

/**
 * Prompts that may wait on backends their jobs left: backend id, prompt id, job id.
 *
 * @example
 * ```ts
 * import { JobStore } from "./store.ts";
 * import { defaultDispatcherDeps } from "./dispatch_types.ts";
 * import type { Job } from "./types.ts";
 * declare const job: Job;
 * const left = new LeftBehind(JobStore.open(":memory:"), () => [], defaultDispatcherDeps());
 * left.add("gpu1", job);
 * left.sweep("gpu1");
 * ```
 */
export class LeftBehind {
  #store: JobStore;
  #backends: () => BackendConfig[];
  #deps: DispatcherDeps;
  #left = new Map<string, Map<string, string>>();
  #dropping = new Set<string>();

  constructor(store: JobStore, backends: () => BackendConfig[], deps: DispatcherDeps) {
    this.#store = store;
    this.#backends = backends;
    this.#deps = deps;
  }

  /** Remembers that `job`'s prompt may still wait on backend `backendId`. */
  add(backendId: string, job: Job): void {
    let left = this.#left.get(backendId);
    if (!left) this.#left.set(backendId, left = new Map());
    left.set(job.promptId, job.id);
  }

  /**
   * Deletes a backend's left-behind prompts whose jobs cannot come back for them: they
   * ended, or run on another backend. A job still queued may be dispatched back there and
   * attach to its prompt, so that prompt stays until then; one back there is forgotten.
   */
  sweep(backendId: string): void {
    const left = this.#left.get(backendId);
    if (!left) return;
    const backend = this.#backends().find((b) => b.id === backendId);
    for (const [promptId, jobId] of left) {
      const job = this.#store.get(jobId);
      if (job?.state === "queued") continue;
      if (!backend || !job || (!isTerminal(job.state) && job.backend === backendId)) {
        left.delete(promptId);
      } else {
        this.drop(backend, promptId);
      }
    }
    if (left.size === 0) this.#left.delete(backendId);
  }

  /** Best effort: deletes the prompt there (or interrupts it); forgets it once that worked. */
  drop(backend: BackendConfig, promptId: string): void {
    const key = `${backend.id}\n${promptId}`;
    if (this.#dropping.has(key)) return;
    this.#dropping.add(key);
    this.#deps.client(backend, { timeoutMs: 3000 }).cancel(promptId).then(
      () => this.#left.get(backend.id)?.delete(promptId),
      () => {},
    ).finally(() => this.#dropping.delete(key));
  }
}
