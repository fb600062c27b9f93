/**
 * The gateway's HTTP API (`/v1/...`), metrics, health check and status page, as one
 * request handler for `Deno.serve`. This module wires the parts: access control
 * (auth.ts), the route table below, jobs (jobs.ts), event streams (events.ts), outputs
 * (outputs.ts), metrics (metrics.ts) and the views (views.ts).
 *
 * @module
 */
import type { BackendConfig } from "../../backends/types.ts";
import type { HealthMonitor } from "../backend_api.ts";
import type { Dispatcher } from "../dispatcher.ts";
import type { JobStore } from "../store.ts";
import { authorized, sessionCookie } from "./auth.ts";
import { EventStreams } from "./events.ts";
import { cancelJob, createJob, getJob, listJobs, listOutputs, type RequestLimits } from "./jobs.ts";
import { metricsResponse } from "./metrics.ts";
import { outputResponse } from "./outputs.ts";
import { errorResponse, json } from "./respond.ts";
import { dispatchRoute, isPublic, type Route } from "./routes.ts";
import { guardRequest, type HostPolicy } from "./guard.ts";
import { signInPage, statusPage } from "./views.ts";

export { backendView, jobSummaryView, jobView } from "./views.ts";
export { DEFAULT_LIMITS, type RequestLimits } from "./jobs.ts";
export { HostPolicy } from "./guard.ts";
export {
  DEFAULT_TRANSPORT_LIMITS,
  type GuardedServer,
  serveGuarded,
  type TransportLimits,
} from "./transport.ts";

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
  /** Host names it answers (DNS rebinding). */
  hosts: HostPolicy;
  /** What one request may cost. */
  limits: RequestLimits;
}

/** Path of one job, and of its events and outputs. */
const JOB = String.raw`\/v1\/jobs\/([^/]+)`;

/**
 * The request handler of a gateway, plus a way to end its event streams on shutdown.
 *
 * @example
 * ```ts
 * declare const ctx: GatewayContext;
 * const api = createHandler(ctx);
 * const server = Deno.serve({ port: 0 }, api.handler);
 * api.closeStreams();
 * await server.shutdown();
 * ```
 */
export function createHandler(ctx: GatewayContext): {
  handler: (req: Request) => Promise<Response>;
  closeStreams: () => void;
} {
  const streams = new EventStreams(ctx);
  const routes: Route[] = [
    {
      path: /^\/healthz$/,
      public: true,
      methods: {
        GET: () =>
          json({
            status: "ok",
            version: ctx.version,
            workspace: ctx.workspaceId,
            uptime_seconds: Math.floor((Date.now() - ctx.startedAt) / 1000),
          }),
      },
    },
    {
      path: /^\/$/,
      methods: {
        GET: ({ req, url }) =>
          // Signed in with the token (the sign-in form sends it as a header; /?token=T
          // works without script): a session cookie keeps the page working after a reload.
          statusPage(
            ctx.token && (url.searchParams.has("token") || req.headers.has("authorization"))
              ? { "set-cookie": sessionCookie(ctx.token) }
              : {},
          ),
      },
    },
    {
      path: /^\/metrics$/,
      methods: {
        GET: () => metricsResponse({ ...ctx, sseClients: () => streams.size }),
      },
    },
    {
      path: /^\/v1\/backends$/,
      methods: { GET: () => json({ backends: streams.backendsNow() }) },
    },
    { path: /^\/v1\/events$/, methods: { GET: () => streams.global() } },
    {
      path: /^\/v1\/jobs$/,
      methods: { GET: ({ url }) => listJobs(ctx, url), POST: ({ req }) => createJob(ctx, req) },
    },
    {
      path: new RegExp(`^${JOB}$`),
      methods: {
        GET: ({ url, params }) => getJob(ctx, params[0], url.searchParams.get("full") === "1"),
        DELETE: ({ params }) => cancelJob(ctx, params[0]),
      },
    },
    {
      path: new RegExp(`^${JOB}/events$`),
      methods: { GET: ({ req, params }) => streams.job(req, params[0]) },
    },
    {
      path: new RegExp(`^${JOB}/outputs$`),
      methods: { GET: ({ params }) => listOutputs(ctx, params[0]) },
    },
    {
      path: new RegExp(`^${JOB}/outputs/([^/]+)$`),
      methods: {
        GET: ({ params }) => outputResponse(ctx.store, ctx.backends, params[0], params[1]),
      },
    },
  ];

  const handler = async (req: Request): Promise<Response> => {
    try {
      const url = new URL(req.url);
      guardRequest(req, ctx.hosts);
      if (!isPublic(routes, url.pathname) && !authorized(req, url, ctx.token)) {
        const challenge = { "www-authenticate": 'Bearer realm="gov serve"' };
        // A person opening the status page gets a form to enter the token, not JSON.
        if (url.pathname === "/" && (req.headers.get("accept") ?? "").includes("text/html")) {
          return signInPage(url.searchParams.has("token"), challenge);
        }
        return json({ error: "missing or wrong bearer token" }, 401, challenge);
      }
      return await dispatchRoute(routes, req, url);
    } catch (err) {
      return errorResponse(err);
    }
  };

  return { handler, closeStreams: () => streams.closeAll() };
}
