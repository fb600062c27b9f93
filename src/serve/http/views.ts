/**
 * How the gateway shows its objects: jobs, backends and events as JSON (snake_case, like
 * ComfyUI's own JSON), and the HTML status and sign-in pages.
 *
 * @module
 */
import type { BackendConfig, BackendStatus } from "../../backends/types.ts";
import { signInPageHtml, statusPageHtml } from "../status_page.ts";
import type { Job, JobEvent, JobSummary } from "../types.ts";
import { iso } from "./respond.ts";

/** Headers of the HTML pages: never cached, nothing loaded from elsewhere. */
export const PAGE_HEADERS: Record<string, string> = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy":
    "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:",
};

/**
 * A job as lists and live feeds show it: without its workflow, prompt and `set` pairs,
 * which can be large.
 *
 * @example
 * ```ts
 * import type { JobSummary } from "../types.ts";
 * declare const job: JobSummary;
 * const body = JSON.stringify(jobSummaryView(job));
 * ```
 */
export function jobSummaryView(job: JobSummary): Record<string, unknown> {
  return {
    id: job.id,
    state: job.state,
    backend: job.backend,
    pinned_backend: job.pinnedBackend,
    prompt_id: job.promptId,
    client_id: job.clientId,
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    error: job.error,
    refusals: job.refusals,
    progress: job.progress,
    queue_timeout_s: job.queueTimeoutMs === null ? null : job.queueTimeoutMs / 1000,
    outputs: job.outputs.map((o, n) => ({
      node_id: o.nodeId,
      filename: o.filename,
      subfolder: o.subfolder,
      type: o.type,
      url: `/v1/jobs/${encodeURIComponent(job.id)}/outputs/${n}`,
    })),
    created_at: iso(job.createdAt),
    dispatched_at: iso(job.dispatchedAt),
    queued_at: iso(job.queuedAt),
    started_at: iso(job.startedAt),
    finished_at: iso(job.finishedAt),
    updated_at: iso(job.updatedAt),
    dispatch_ms: job.queuedAt !== null ? job.queuedAt - job.readyAt : null,
  };
}

/**
 * One job as the API shows it: the summary and its `set` pairs, plus the workflow and
 * prompt when `full`.
 *
 * @example
 * ```ts
 * import type { Job } from "../types.ts";
 * declare const job: Job;
 * const body = JSON.stringify(jobView(job));
 * ```
 */
export function jobView(job: Job, full = false): Record<string, unknown> {
  return {
    ...jobSummaryView(job),
    sets: job.sets,
    ...(full ? { workflow: job.workflow, prompt: job.prompt } : {}),
  };
}

/**
 * A backend as the API shows it: its configuration (without its token) and live status.
 *
 * @example
 * ```ts
 * import type { BackendConfig } from "../../backends/types.ts";
 * declare const config: BackendConfig;
 * backendView(config, undefined).state; // "unknown"
 * ```
 */
export function backendView(
  b: BackendConfig,
  s: BackendStatus | undefined,
): Record<string, unknown> {
  return {
    id: b.id,
    name: b.name,
    host: b.host,
    port: b.port,
    weight: b.weight,
    tags: b.tags,
    max_queue: b.max_queue,
    state: s?.state ?? "unknown",
    queue_remaining: s?.queueRemaining ?? 0,
    in_flight: s?.inFlight ?? 0,
    last_probe_at: s?.lastProbeAt ? iso(s.lastProbeAt) : null,
    last_error: s?.lastError ?? null,
    comfyui_version: s?.comfyuiVersion ?? null,
    vram: s?.vram ?? null,
    node_classes: s?.nodeClasses.length ?? 0,
    models: s ? Object.values(s.models).reduce((n, l) => n + l.length, 0) : 0,
  };
}

/**
 * One job event as its SSE stream shows it.
 *
 * @example
 * ```ts
 * import type { Job, JobEvent, JobSummary } from "../types.ts";
 * declare const e: JobEvent, job: Job;
 * eventView(e, job).seq;
 * ```
 */
export function eventView(e: JobEvent, job: Job): Record<string, unknown> {
  return { seq: e.seq, job: e.jobId, type: e.type, state: job.state, at: iso(e.at), ...e.data };
}

/**
 * The status page (`GET /`), with extra headers (a session cookie).
 *
 * @example
 * ```ts
 * const res = statusPage({});
 * ```
 */
export function statusPage(headers: Record<string, string>): Response {
  return new Response(statusPageHtml(), { headers: { ...PAGE_HEADERS, ...headers } });
}

/**
 * The sign-in form a browser without the token gets (401).
 *
 * @example
 * ```ts
 * const res = signInPage(false, {});
 * ```
 */
export function signInPage(wrongToken: boolean, headers: Record<string, string>): Response {
  return new Response(signInPageHtml(wrongToken), {
    status: 401,
    headers: { ...PAGE_HEADERS, ...headers },
  });
}
