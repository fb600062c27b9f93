/**
 * The gateway's HTTP API (`/v1/...`), metrics, health check and status page, as one
 * request handler for `Deno.serve`.
 *
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { extname } from "node:path";
import { GovError, NotFoundError } from "../errors.ts";
import type { BackendConfig, BackendStatus } from "../backends/types.ts";
import type { HealthMonitor } from "./backend_api.ts";
import { viewResponse } from "./backend_api.ts";
import { type Dispatcher, JobInputError, JobStateError } from "./dispatcher.ts";
import { MetricsWriter } from "./metrics.ts";
import { SseHub } from "./sse.ts";
import { signInPageHtml, statusPageHtml } from "./status_page.ts";
import type { JobStore } from "./store.ts";
import {
  isTerminal,
  type Job,
  JOB_STATES,
  type JobEvent,
  type JobState,
  TERMINAL_EVENTS,
} from "./types.ts";

/** What the handler serves from. */
export interface GatewayContext {
  /** Places and runs jobs. */
  dispatcher: Dispatcher;
  /** The job store. */
  store: JobStore;
  /** Backend health. */
  monitor: HealthMonitor;
  /** Backends configured now. */
  backends: () => BackendConfig[];
  /** Bearer token every route but /healthz requires, when set. */
  token?: string;
  /** gov's version (for /healthz and metrics). */
  version: string;
  /** Short id of the workspace (so `gov submit` knows it reached the right gateway). */
  workspaceId: string;
  /** When the gateway started (ms since epoch). */
  startedAt: number;
}

/** Headers of the HTML pages: never cached, nothing loaded from elsewhere. */
const PAGE_HEADERS: Record<string, string> = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy":
    "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:",
};

/** Largest request body accepted (a workflow with embedded data can be big). */
const MAX_BODY = 32 * 1024 * 1024;

/** Error with an HTTP status, for failures of the request itself. */
class HttpError extends Error {
  status: number;
  extra?: Record<string, unknown>;
  constructor(status: number, message: string, extra?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.extra = extra;
  }
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * A job as the API shows it (snake_case, like ComfyUI's own JSON). The workflow and prompt
 * are left out unless `full`.
 *
 * @example
 * ```ts
 * import { jobView } from "@/serve/http.ts";
 *
 * import { type Job } from "@/serve/types.ts";
 * declare const job: Job;
 *
 * const body = JSON.stringify(jobView(job));
 * ```
 */
export function jobView(job: Job, full = false): Record<string, unknown> {
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
    sets: job.sets,
    queue_timeout_s: job.queueTimeoutMs === null ? null : job.queueTimeoutMs / 1000,
    outputs: job.outputs.map((o, n) => ({
      node_id: o.nodeId,
      filename: o.filename,
      subfolder: o.subfolder,
      type: o.type,
      url: `/v1/jobs/${job.id}/outputs/${n}`,
    })),
    created_at: iso(job.createdAt),
    dispatched_at: iso(job.dispatchedAt),
    queued_at: iso(job.queuedAt),
    started_at: iso(job.startedAt),
    finished_at: iso(job.finishedAt),
    updated_at: iso(job.updatedAt),
    dispatch_ms: job.queuedAt !== null ? job.queuedAt - job.readyAt : null,
    ...(full ? { workflow: job.workflow, prompt: job.prompt } : {}),
  };
}

/**
 * A backend as the API shows it: its configuration (without its token) and live status.
 *
 * @example
 * ```ts
 * import { backendView } from "@/serve/http.ts";
 * import { type HealthMonitor } from "@/backends/health.ts";
 * import { type BackendConfig } from "@/backends/types.ts";
 * declare const config: BackendConfig;
 *
 * declare const monitor: HealthMonitor;
 *
 * backendView(config, monitor.status(config.id));
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

function eventView(e: JobEvent, job: Job): Record<string, unknown> {
  return { seq: e.seq, job: e.jobId, type: e.type, state: job.state, at: iso(e.at), ...e.data };
}

/** Name of the status page's session cookie. */
const SESSION_COOKIE = "gov_serve_session";

/**
 * The session cookie's value for a token: derived from it, so the cookie never carries the
 * token itself, and it changes when the token does.
 */
function sessionValue(token: string): string {
  return createHmac("sha256", token).update("gov serve status page session").digest("hex");
}

function cookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

function sameSecret(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

const CONTENT_TYPES: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".webp": "image/webp",
  ".gif": "image/gif",
  ".mp4": "video/mp4",
  ".webm": "video/webm",
  ".wav": "audio/wav",
  ".mp3": "audio/mpeg",
  ".flac": "audio/flac",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

/** Parses `set` of a job request: `{KEY: VALUE}` or `[[KEY, VALUE], ...]`. */
function parseSets(raw: unknown): [string, string][] {
  if (raw === undefined || raw === null) return [];
  const str = (v: unknown, where: string): string => {
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    throw new HttpError(400, `set: ${where} must be a string, number or boolean`);
  };
  if (Array.isArray(raw)) {
    return raw.map((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string") {
        throw new HttpError(400, `set[${i}] must be a [KEY, VALUE] pair`);
      }
      return [pair[0], str(pair[1], `value of ${pair[0]}`)];
    });
  }
  if (typeof raw === "object") {
    return Object.entries(raw as Record<string, unknown>).map(([k, v]) => [
      k,
      str(v, `value of ${k}`),
    ]);
  }
  throw new HttpError(400, "set must be an object {KEY: VALUE} or a list of [KEY, VALUE] pairs");
}

async function readJsonBody(req: Request): Promise<unknown> {
  const len = Number(req.headers.get("content-length") ?? "0");
  if (len > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
  const text = await req.text();
  if (text.length > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
  if (text.trim() === "") throw new HttpError(400, "empty request body: expected JSON");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * The request handler of a gateway, plus a way to end its event streams on shutdown.
 *
 * @example
 * ```ts
 * import { createHandler } from "@/serve/http.ts";
 * import { type GatewayContext } from "@/serve/http.ts";
 * declare const ctx: GatewayContext;
 *
 * const api = createHandler(ctx);
 * const server = Deno.serve({ port: 8190 }, api.handler);
 * // ...
 * api.closeStreams();
 * await server.shutdown();
 * ```
 */
export function createHandler(ctx: GatewayContext): {
  handler: (req: Request) => Promise<Response>;
  closeStreams: () => void;
} {
  const hub = new SseHub();
  const jobListeners = new Map<string, Set<(e: JobEvent, job: Job) => void>>();
  const globalListeners = new Set<(kind: string, data: unknown) => void>();
  ctx.store.onEvent((e, job) => {
    for (const cb of jobListeners.get(e.jobId) ?? []) cb(e, job);
    if (globalListeners.size) {
      const view = { event: e.type, job: jobView(job) };
      for (const cb of globalListeners) cb("job", view);
    }
  });
  ctx.monitor.onChange((s) => {
    const b = ctx.backends().find((x) => x.id === s.id);
    if (!b) return;
    for (const cb of globalListeners) cb("backend", backendView(b, s));
  });

  const backendsNow = () => {
    const statuses = ctx.monitor.statuses();
    return ctx.backends().map((b) => backendView(b, statuses.find((s) => s.id === b.id)));
  };

  const authorized = (req: Request, url: URL): boolean => {
    if (!ctx.token) return true;
    const h = req.headers.get("authorization") ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(h);
    if (m && sameSecret(m[1].trim(), ctx.token)) return true;
    // The status page's session (set when it was opened with ?token=); SameSite=Strict
    // keeps other sites from riding on it.
    const session = cookie(req, SESSION_COOKIE);
    if (session && sameSecret(session, sessionValue(ctx.token))) return true;
    // EventSource and <img> cannot send headers: GETs may carry the token in the query.
    const q = url.searchParams.get("token");
    return req.method === "GET" && q !== null && sameSecret(q, ctx.token);
  };

  const jobOr404 = (id: string): Job => {
    const job = ctx.store.get(id);
    if (!job) throw new NotFoundError("job", id);
    return job;
  };

  const jobEvents = (req: Request, id: string): Response => {
    const job = jobOr404(id);
    const last = Number(req.headers.get("last-event-id") ?? "0") || 0;
    let lastSeq = last;
    const set = jobListeners.get(id) ?? new Set<(e: JobEvent, job: Job) => void>();
    const listener = (e: JobEvent, j: Job) => {
      if (e.seq <= lastSeq || stream.closed) return;
      lastSeq = e.seq;
      stream.send(e.type, eventView(e, j), e.seq);
      if (TERMINAL_EVENTS.includes(e.type)) stream.close();
    };
    const { response, stream } = hub.open(() => {
      set.delete(listener);
      if (set.size === 0 && jobListeners.get(id) === set) jobListeners.delete(id);
    });
    jobListeners.set(id, set);
    set.add(listener);
    // Listener first, then the replay, in one tick: no event can fall in between.
    let terminal = false;
    for (const e of ctx.store.events(id, last)) {
      lastSeq = e.seq;
      stream.send(e.type, eventView(e, job), e.seq);
      if (TERMINAL_EVENTS.includes(e.type)) terminal = true;
    }
    if (terminal || (isTerminal(job.state) && last > 0)) stream.close();
    return response;
  };

  const globalEvents = (): Response => {
    const listener = (kind: string, data: unknown) => stream.send(kind, data);
    const { response, stream } = hub.open(() => {
      globalListeners.delete(listener);
      clearInterval(tick);
    });
    const snapshot = () => ({
      backends: backendsNow(),
      counts: ctx.store.countByState(),
      jobs: ctx.store.list({ limit: 50 }).map((j) => jobView(j)),
      at: new Date().toISOString(),
    });
    stream.send("snapshot", snapshot());
    globalListeners.add(listener);
    // Queue depths and the reasons a job waits change without job events: refresh the
    // backends and the waiting jobs now and then.
    const tick = setInterval(() => {
      stream.send("backends", {
        backends: backendsNow(),
        counts: ctx.store.countByState(),
        queued: ctx.store.list({ states: ["queued"], limit: 50 }).map((j) => jobView(j)),
      });
    }, 2000);
    return response;
  };

  const output = async (id: string, nRaw: string): Promise<Response> => {
    const job = jobOr404(id);
    const n = Number(nRaw);
    if (!Number.isInteger(n) || n < 0 || n >= job.outputs.length) {
      throw new HttpError(
        404,
        `job '${id}' has no output ${nRaw} (it has ${job.outputs.length})`,
      );
    }
    const out = job.outputs[n];
    const backend = ctx.backends().find((b) => b.id === job.backend);
    if (!backend) {
      throw new HttpError(502, `backend '${job.backend}' of job '${id}' is no longer configured`);
    }
    let res: Response;
    try {
      res = await viewResponse(backend, out);
    } catch (err) {
      throw new HttpError(502, (err as Error).message);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new HttpError(
        502,
        `backend '${backend.id}' answered ${res.status} for ${out.filename}`,
      );
    }
    const type = res.headers.get("content-type") ??
      CONTENT_TYPES[extname(out.filename).toLowerCase()] ?? "application/octet-stream";
    const headers: Record<string, string> = {
      "content-type": type,
      "content-disposition": `inline; filename="${out.filename.replace(/["\\\r\n]/g, "_")}"`,
      "cache-control": "private, max-age=86400",
    };
    const len = res.headers.get("content-length");
    if (len) headers["content-length"] = len;
    return new Response(res.body, { headers });
  };

  const metrics = (): Response => {
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
    m.family("gov_backend_up", "gauge", "1 when the backend is healthy.");
    for (const b of configured) {
      const s = statuses.find((x) => x.id === b.id);
      m.sample("gov_backend_up", s?.state === "up" ? 1 : 0, { backend: b.id });
    }
    m.family("gov_backend_queue_remaining", "gauge", "ComfyUI's queue_remaining per backend.");
    for (const b of configured) {
      const s = statuses.find((x) => x.id === b.id);
      m.sample("gov_backend_queue_remaining", s?.queueRemaining ?? 0, { backend: b.id });
    }
    m.family("gov_backend_in_flight", "gauge", "Prompts gov has on the backend now.");
    for (const b of configured) {
      const s = statuses.find((x) => x.id === b.id);
      m.sample("gov_backend_in_flight", s?.inFlight ?? 0, { backend: b.id });
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
    m.sample("gov_sse_clients", hub.size);
    m.family("gov_build_info", "gauge", "gov version.");
    m.sample("gov_build_info", 1, { version: ctx.version });
    m.family("gov_start_time_seconds", "gauge", "When the gateway started (unix seconds).");
    m.sample("gov_start_time_seconds", Math.floor(ctx.startedAt / 1000));
    return new Response(m.toString(), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  };

  const route = async (req: Request, url: URL): Promise<Response> => {
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const method = req.method;
    const allow = (...methods: string[]) => {
      if (!methods.includes(method) && !(method === "HEAD" && methods.includes("GET"))) {
        throw new HttpError(405, `${method} is not allowed on ${path}`, {
          allow: methods.join(", "),
        });
      }
    };
    if (path === "/") {
      allow("GET");
      const headers: Record<string, string> = { ...PAGE_HEADERS };
      // Opened once as /?token=T: a session cookie keeps the page working after a reload
      // (the page drops the token from the address bar).
      if (ctx.token && url.searchParams.has("token")) {
        headers["set-cookie"] = `${SESSION_COOKIE}=${
          sessionValue(ctx.token)
        }; Path=/; HttpOnly; SameSite=Strict`;
      }
      return new Response(statusPageHtml(), { headers });
    }
    if (path === "/metrics") {
      allow("GET");
      return metrics();
    }
    if (path === "/v1/backends") {
      allow("GET");
      return json({ backends: backendsNow() });
    }
    if (path === "/v1/events") {
      allow("GET");
      return globalEvents();
    }
    if (path === "/v1/jobs") {
      allow("GET", "POST");
      if (method === "POST") {
        const body = await readJsonBody(req);
        if (!body || typeof body !== "object" || Array.isArray(body)) {
          throw new HttpError(
            400,
            "request body must be a JSON object {workflow, set?, backend?, queue_timeout?}",
          );
        }
        const b = body as Record<string, unknown>;
        if (!("workflow" in b)) {
          throw new HttpError(400, "request body has no 'workflow' (UI workflow or API prompt)");
        }
        const fields = ["workflow", "set", "backend", "queue_timeout"];
        const unknown = Object.keys(b).filter((k) => !fields.includes(k));
        if (unknown.length) {
          throw new HttpError(400, `unknown field(s) ${unknown.join(", ")} in request body`);
        }
        if (b.backend !== undefined && typeof b.backend !== "string") {
          throw new HttpError(400, "backend must be a backend id (string)");
        }
        const qt = b.queue_timeout;
        if (
          qt !== undefined && qt !== null &&
          (typeof qt !== "number" || !Number.isFinite(qt) || qt < 0)
        ) {
          throw new HttpError(
            400,
            `queue_timeout must be seconds >= 0 (0 = wait as long as it takes), got ${
              JSON.stringify(qt)
            }`,
          );
        }
        const job = await ctx.dispatcher.submitBatched({
          workflow: b.workflow,
          sets: parseSets(b.set),
          backend: b.backend as string | undefined,
          queueTimeoutMs: typeof qt === "number" ? qt * 1000 : undefined,
        });
        const now = ctx.store.get(job.id) ?? job;
        return json(jobView(now), 201, { location: `/v1/jobs/${job.id}` });
      }
      const states = (url.searchParams.get("state") ?? "").split(",").map((s) => s.trim())
        .filter(Boolean);
      for (const s of states) {
        if (!JOB_STATES.includes(s as JobState)) {
          throw new HttpError(400, `unknown state '${s}' (one of ${JOB_STATES.join(", ")})`);
        }
      }
      const limitRaw = url.searchParams.get("limit");
      const limit = limitRaw === null ? 100 : Number(limitRaw);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
        throw new HttpError(400, `limit must be an integer from 1 to 10000, got '${limitRaw}'`);
      }
      const before = url.searchParams.get("before") ?? undefined;
      const jobs = ctx.store.list({ states: states as JobState[], limit, before });
      return json({ jobs: jobs.map((j) => jobView(j)), counts: ctx.store.countByState() });
    }
    const m = /^\/v1\/jobs\/([^/]+)(?:\/(events|outputs)(?:\/([^/]+))?)?$/.exec(path);
    if (m) {
      const id = decodeURIComponent(m[1]);
      if (!m[2]) {
        allow("GET", "DELETE");
        if (method === "DELETE") return json(jobView(await ctx.dispatcher.cancel(id)));
        return json(jobView(jobOr404(id), url.searchParams.get("full") === "1"));
      }
      allow("GET");
      if (m[2] === "events" && m[3] === undefined) return jobEvents(req, id);
      if (m[2] === "outputs" && m[3] !== undefined) return await output(id, m[3]);
      if (m[2] === "outputs") {
        const job = jobOr404(id);
        return json({ outputs: jobView(job).outputs });
      }
    }
    throw new HttpError(404, `no route ${method} ${path}`);
  };

  const handler = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    try {
      if (url.pathname === "/healthz") {
        return json({
          status: "ok",
          version: ctx.version,
          workspace: ctx.workspaceId,
          uptime_seconds: Math.floor((Date.now() - ctx.startedAt) / 1000),
        });
      }
      if (!authorized(req, url)) {
        const challenge = { "www-authenticate": 'Bearer realm="gov serve"' };
        // A person opening the status page gets a form to enter the token, not JSON.
        if (url.pathname === "/" && (req.headers.get("accept") ?? "").includes("text/html")) {
          return new Response(signInPageHtml(url.searchParams.has("token")), {
            status: 401,
            headers: { ...PAGE_HEADERS, ...challenge },
          });
        }
        return json({ error: "missing or wrong bearer token" }, 401, challenge);
      }
      return await route(req, url);
    } catch (err) {
      if (err instanceof HttpError) {
        const headers: Record<string, string> = {};
        if (err.status === 405 && err.extra?.allow) headers.allow = String(err.extra.allow);
        return json({ error: err.message }, err.status, headers);
      }
      if (err instanceof JobInputError) {
        return json({
          error: err.message,
          ...(err.hint ? { hint: err.hint } : {}),
          ...(err.refusals ? { refusals: err.refusals } : {}),
        }, 400);
      }
      if (err instanceof NotFoundError) return json({ error: err.message }, 404);
      if (err instanceof JobStateError) return json({ error: err.message }, 409);
      if (err instanceof GovError) {
        return json({ error: err.message, ...(err.hint ? { hint: err.hint } : {}) }, 503);
      }
      return json({ error: `internal error: ${(err as Error)?.message ?? err}` }, 500);
    }
  };

  return { handler, closeStreams: () => hub.closeAll() };
}
