/**
 * `GET /metrics`: the gateway's Prometheus metrics.
 *
 * @module
 */
import type { BackendConfig } from "../../backends/types.ts";
import type { HealthMonitor } from "../backend_api.ts";
import type { Dispatcher } from "../dispatcher.ts";
import { MetricsWriter } from "../metrics.ts";
import type { JobStore } from "../store.ts";
import { JOB_STATES, type JobState } from "../types.ts";

/** What the metrics are read from. */
export interface MetricsSources {
  /** Job counts. */
  store: JobStore;
  /** Backend health. */
  monitor: HealthMonitor;
  /** Backends configured now. */
  backends: () => BackendConfig[];
  /** Dispatch and run time histograms. */
  dispatcher: Dispatcher;
  /** Open event streams now. */
  sseClients: () => number;
  /** gov's version. */
  version: string;
  /** When the gateway started (ms since epoch). */
  startedAt: number;
}

/**
 * The metrics document.
 *
 * @example
 * ```ts
 * declare const sources: MetricsSources;
 * const text = await metricsResponse(sources).text();
 * ```
 */
export function metricsResponse(ctx: MetricsSources): Response {
  const m = new MetricsWriter();
  const counts = ctx.store.countByState();
  const events = ctx.store.countEvents();
  m.family("gov_jobs_total", "counter", "Jobs that entered each state, over the store's life.");
  const entered: Record<JobState, number> = {
    queued: events.queued ?? 0,
    dispatched: events.dispatched ?? 0,
    running: events.running ?? 0,
    completed: events.completed ?? 0,
    failed: events.failed ?? 0,
    cancelled: events.cancelled ?? 0,
  };
  for (const s of JOB_STATES) m.sample("gov_jobs_total", entered[s], { state: s });
  m.family("gov_jobs", "gauge", "Jobs in each state now.");
  for (const s of JOB_STATES) m.sample("gov_jobs", counts[s], { state: s });
  m.family("gov_jobs_in_queue", "gauge", "Jobs waiting for a backend.");
  m.sample("gov_jobs_in_queue", counts.queued);
  m.family("gov_jobs_active", "gauge", "Jobs dispatched or running.");
  m.sample("gov_jobs_active", counts.dispatched + counts.running);
  m.family("gov_job_retries_total", "counter", "Re-dispatches after a backend failed.");
  m.sample("gov_job_retries_total", events.retry ?? 0);
  const statuses = ctx.monitor.statuses();
  const configured = ctx.backends();
  const status = (id: string) => statuses.find((x) => x.id === id);
  m.family("gov_backend_up", "gauge", "1 when the backend is healthy.");
  for (const b of configured) {
    m.sample("gov_backend_up", status(b.id)?.state === "up" ? 1 : 0, { backend: b.id });
  }
  m.family("gov_backend_queue_remaining", "gauge", "ComfyUI's queue_remaining per backend.");
  for (const b of configured) {
    m.sample("gov_backend_queue_remaining", status(b.id)?.queueRemaining ?? 0, {
      backend: b.id,
    });
  }
  m.family("gov_backend_in_flight", "gauge", "Prompts gov has on the backend now.");
  for (const b of configured) {
    m.sample("gov_backend_in_flight", status(b.id)?.inFlight ?? 0, { backend: b.id });
  }
  m.family("gov_backend_max_queue", "gauge", "Configured max_queue per backend.");
  for (const b of configured) m.sample("gov_backend_max_queue", b.max_queue, { backend: b.id });
  m.family(
    "gov_dispatch_seconds",
    "histogram",
    "Time from a job being ready to its prompt being queued on a backend.",
  );
  m.histogram("gov_dispatch_seconds", ctx.dispatcher.dispatchSeconds);
  m.family("gov_job_run_seconds", "histogram", "Time from dispatch to completion.");
  m.histogram("gov_job_run_seconds", ctx.dispatcher.runSeconds);
  m.family("gov_sse_clients", "gauge", "Open server-sent event streams.");
  m.sample("gov_sse_clients", ctx.sseClients());
  m.family("gov_build_info", "gauge", "gov version.");
  m.sample("gov_build_info", 1, { version: ctx.version });
  m.family("gov_start_time_seconds", "gauge", "When the gateway started (unix seconds).");
  m.sample("gov_start_time_seconds", Math.floor(ctx.startedAt / 1000));
  return new Response(m.toString(), {
    headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
  });
}
