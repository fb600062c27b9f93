/**
 * The gateway's server-sent event streams: one job's history and live events
 * (`/v1/jobs/{id}/events`, resumable with `Last-Event-ID`), and the status page's feed of
 * every job and backend change (`/v1/events`).
 *
 * @module
 */
import { NotFoundError } from "../../errors.ts";
import type { BackendConfig } from "../../backends/types.ts";
import type { HealthMonitor } from "../backend_api.ts";
import { SseHub } from "../sse.ts";
import type { JobStore } from "../store.ts";
import { isTerminal, type Job, type JobEvent, TERMINAL_EVENTS } from "../types.ts";
import { backendView, eventView, jobSummaryView } from "./views.ts";

/** Where the streams get their data. */
export interface EventSources {
  /** The job store (its commits feed the streams). */
  store: JobStore;
  /** Backend health (its changes feed `/v1/events`). */
  monitor: HealthMonitor;
  /** Backends configured now. */
  backends: () => BackendConfig[];
}

/**
 * The open event streams of a gateway and their fan-out from the store and the monitor.
 *
 * @example
 * ```ts
 * declare const sources: EventSources;
 * const streams = new EventStreams(sources);
 * const res = streams.job(new Request("http://x/"), "some-job-id");
 * streams.closeAll();
 * ```
 */
export class EventStreams {
  #hub = new SseHub();
  #src: EventSources;
  #jobListeners = new Map<string, Set<(e: JobEvent, job: Job) => void>>();
  #globalListeners = new Set<(kind: string, data: unknown) => void>();

  constructor(src: EventSources) {
    this.#src = src;
    src.store.onEvent((e, job) => {
      for (const cb of this.#jobListeners.get(e.jobId) ?? []) cb(e, job);
      if (this.#globalListeners.size) {
        const view = { event: e.type, job: jobSummaryView(job) };
        for (const cb of this.#globalListeners) cb("job", view);
      }
    });
    src.monitor.onChange((s) => {
      const b = src.backends().find((x) => x.id === s.id);
      if (!b) return;
      for (const cb of this.#globalListeners) cb("backend", backendView(b, s));
    });
  }

  /** Streams open now (a metric). */
  get size(): number {
    return this.#hub.size;
  }

  /** Ends every stream (shutdown: an open stream would keep the server from stopping). */
  closeAll(): void {
    this.#hub.closeAll();
  }

  /** Backends with their live status, as the API shows them. */
  backendsNow(): Record<string, unknown>[] {
    const statuses = this.#src.monitor.statuses();
    return this.#src.backends().map((b) => backendView(b, statuses.find((s) => s.id === b.id)));
  }

  /** `GET /v1/jobs/{id}/events`: the history after `Last-Event-ID`, then live events. */
  job(req: Request, id: string): Response {
    const job = this.#src.store.get(id);
    if (!job) throw new NotFoundError("job", id);
    const last = Number(req.headers.get("last-event-id") ?? "0") || 0;
    let lastSeq = last;
    const set = this.#jobListeners.get(id) ?? new Set<(e: JobEvent, job: Job) => void>();
    const listener = (e: JobEvent, j: Job) => {
      if (e.seq <= lastSeq || stream.closed) return;
      lastSeq = e.seq;
      stream.send(e.type, eventView(e, j), e.seq);
      if (TERMINAL_EVENTS.includes(e.type)) stream.close();
    };
    const { response, stream } = this.#hub.open(() => {
      set.delete(listener);
      if (set.size === 0 && this.#jobListeners.get(id) === set) this.#jobListeners.delete(id);
    });
    this.#jobListeners.set(id, set);
    set.add(listener);
    // Listener first, then the replay, in one tick: no event can fall in between.
    let terminal = false;
    for (const e of this.#src.store.events(id, last)) {
      lastSeq = e.seq;
      stream.send(e.type, eventView(e, job), e.seq);
      if (TERMINAL_EVENTS.includes(e.type)) terminal = true;
    }
    if (terminal || (isTerminal(job.state) && last > 0)) stream.close();
    return response;
  }

  /** `GET /v1/events`: a snapshot, then every job and backend change. */
  global(): Response {
    const store = this.#src.store;
    const listener = (kind: string, data: unknown) => stream.send(kind, data);
    const { response, stream } = this.#hub.open(() => {
      this.#globalListeners.delete(listener);
      clearInterval(tick);
    });
    const snapshot = () => ({
      backends: this.backendsNow(),
      counts: store.countByState(),
      jobs: store.list({ limit: 50 }).map(jobSummaryView),
      at: new Date().toISOString(),
    });
    stream.send("snapshot", snapshot());
    this.#globalListeners.add(listener);
    // Queue depths and the reasons a job waits change without job events: refresh the
    // backends and the waiting jobs now and then.
    const tick = setInterval(() => {
      stream.send("backends", {
        backends: this.backendsNow(),
        counts: store.countByState(),
        queued: store.list({ states: ["queued"], limit: 50 }).map(jobSummaryView),
      });
    }, 2000);
    return response;
  }
}
