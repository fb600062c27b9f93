/**
 * A queued job record as the dispatcher creates one, for tests that drive the job store
 * directly.
 *
 * @module
 */
import type { Job } from "../../src/serve/types.ts";

/** A queued job `id` created at `createdAt`, with `sets` as its parameter changes. */
export function queuedJob(id: string, createdAt: number, sets: [string, string][] = []): Job {
  return {
    id,
    state: "queued",
    workflow: { "1": { class_type: "SaveImage", inputs: {} } },
    sets,
    prompt: null,
    pinnedBackend: null,
    backend: null,
    promptId: `p-${id}`,
    clientId: `c-${id}`,
    attempts: 0,
    maxAttempts: 3,
    error: null,
    refusals: null,
    outputs: [],
    progress: null,
    failedBackends: [],
    queueTimeoutMs: null,
    createdAt,
    readyAt: createdAt,
    dispatchedAt: null,
    queuedAt: null,
    startedAt: null,
    finishedAt: null,
    updatedAt: createdAt,
  };
}
