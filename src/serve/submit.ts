/**
 * `gov submit` as a library: send a job to the workspace's running `gov serve`, or, when
 * none is reachable, run it in this process with the same dispatcher against the
 * workspace's backends.
 *
 * @module
 */
import { GovError } from "../errors.ts";
import type { Workspace } from "../workspace/root.ts";
import { clientFor, HealthMonitor, readBackends, viewUrl } from "./backend_api.ts";
import { GatewayClient, type JobStreamEvent, type JobView } from "./client.ts";
import { Dispatcher } from "./dispatcher.ts";
import { DEFAULT_LISTEN, readServerRecord, workspaceId } from "./gateway.ts";
import { jobView } from "./http/mod.ts";
import { JobStore } from "./store.ts";
import { isTerminal, type Job, TERMINAL_EVENTS } from "./types.ts";

/** A job to submit. */
export interface SubmitRequest {
  /** UI workflow or API prompt. */
  workflow: unknown;
  /** `KEY=VALUE` pairs. */
  sets: [string, string][];
  /** Pin to a backend id. */
  backend?: string;
  /** Fail when no backend took it within this many ms (0 = no limit; default: gateway's). */
  queueTimeoutMs?: number;
}

/** How the job went, for printing. */
export interface SubmitOutcome {
  /** Through a gateway, or in this process. */
  mode: "server" | "local";
  /** The gateway's URL (server mode). */
  server?: string;
  /** The job as the API shows it, with `outputs[].url` made absolute. */
  job: JobView;
}

/**
 * Finds the gateway to submit to: `server` when given (it must answer), else the one
 * `server.json` records for the workspace, else the default address when it serves this
 * workspace. Undefined when none is reachable.
 *
 * @example
 * ```ts
 * import { findGateway } from "@/serve/submit.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const ws: Workspace;
 *
 * const gw = await findGateway({ workspace: ws });
 * ```
 */
export async function findGateway(opts: {
  workspace?: Workspace;
  server?: string;
  token?: string;
}): Promise<GatewayClient | undefined> {
  if (opts.server) {
    const url = /^https?:\/\//.test(opts.server) ? opts.server : `http://${opts.server}`;
    const gw = new GatewayClient(url, opts.token);
    if (!(await gw.health(5000))) {
      throw new GovError(`gov serve at ${gw.url} does not answer /healthz`, {
        hint: "start it with `gov serve`, or leave out --server to run the job in-process",
      });
    }
    return gw;
  }
  const candidates: string[] = [];
  if (opts.workspace) {
    const rec = await readServerRecord(opts.workspace);
    if (rec) candidates.push(rec.url);
  }
  candidates.push(`http://${DEFAULT_LISTEN.hostname}:${DEFAULT_LISTEN.port}`);
  const want = opts.workspace ? workspaceId(opts.workspace) : undefined;
  for (const url of [...new Set(candidates)]) {
    const gw = new GatewayClient(url, opts.token);
    const h = await gw.health();
    // A gateway of another workspace would route to the wrong backends.
    if (h && (want === undefined || h.workspace === want)) return gw;
  }
  return undefined;
}

function absolute(view: JobView, base: string): JobView {
  return { ...view, outputs: view.outputs.map((o) => ({ ...o, url: `${base}${o.url}` })) };
}

/**
 * Submits through a gateway; with `wait`, follows the job to its end.
 *
 * @example
 * ```ts
 * import { submitToGateway, type SubmitRequest } from "@/serve/submit.ts";
 * import { type GatewayClient } from "@/serve/client.ts";
 * declare const gw: GatewayClient;
 * declare const req: SubmitRequest;
 *
 * const out = await submitToGateway(gw, req, { wait: true, onEvent: console.error });
 * ```
 */
export async function submitToGateway(
  gw: GatewayClient,
  req: SubmitRequest,
  opts: { wait: boolean; onEvent?: (e: JobStreamEvent) => void; signal?: AbortSignal },
): Promise<SubmitOutcome> {
  const job = await gw.submit({
    workflow: req.workflow,
    set: req.sets,
    backend: req.backend,
    ...(req.queueTimeoutMs !== undefined ? { queue_timeout: req.queueTimeoutMs / 1000 } : {}),
  });
  if (!opts.wait) return { mode: "server", server: gw.url, job: absolute(job, gw.url) };
  const done = await gw.follow(job.id, (e) => opts.onEvent?.(e), opts.signal);
  return { mode: "server", server: gw.url, job: absolute(done, gw.url) };
}

/**
 * Runs a job in this process against the workspace's backends (no gateway): probes them,
 * places the prompt like `gov serve` would, and returns once the backend accepted it or,
 * with `wait`, once it finished. Aborting `signal` while waiting cancels the job. Throws
 * `JobInputError` for bad input or a prompt no backend can run.
 *
 * @example
 * ```ts
 * import { submitLocally, type SubmitRequest } from "@/serve/submit.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const req: SubmitRequest;
 * declare const ws: Workspace;
 *
 * const out = await submitLocally(ws, req, { wait: true, onEvent: (e) => console.error(e.type) });
 * ```
 */
export async function submitLocally(
  ws: Workspace,
  req: SubmitRequest,
  opts: {
    wait: boolean;
    maxAttempts?: number;
    onEvent?: (e: JobStreamEvent) => void;
    signal?: AbortSignal;
  },
): Promise<SubmitOutcome> {
  const backends = await readBackends(ws);
  if (backends.length === 0) {
    throw new GovError("no gov serve is reachable and backends.toml lists no backends", {
      hint: "add one with `gov backend add <id> --host H --port N`, or start `gov serve`",
    });
  }
  const monitor = new HealthMonitor(backends, { intervalMs: 2000 });
  const store = JobStore.open(":memory:");
  const dispatcher = new Dispatcher({
    store,
    monitor,
    backends: () => backends,
    maxAttempts: opts.maxAttempts,
    pollIntervalMs: 500,
  });
  try {
    await monitor.probeAll();
    monitor.start();
    dispatcher.start();
    const finished = Promise.withResolvers<Job>();
    let jobId = "";
    const early: { e: JobStreamEvent; job: Job }[] = [];
    store.onEvent((e, job) => {
      const ev = { type: e.type, data: { job: e.jobId, state: job.state, ...e.data } };
      if (!jobId) {
        early.push({ e: ev, job });
        return;
      }
      handle(ev, job);
    });
    const handle = (ev: JobStreamEvent, job: Job) => {
      opts.onEvent?.(ev);
      const end = TERMINAL_EVENTS.includes(ev.type as never) ||
        (!opts.wait && ev.type === "accepted");
      if (end) finished.resolve(job);
    };
    const submitted = dispatcher.submit(req);
    jobId = submitted.id;
    for (const x of early) handle(x.e, x.job);
    const onAbort = () => {
      const now = store.get(jobId);
      if (now && !isTerminal(now.state)) {
        dispatcher.cancel(jobId).then((j) => finished.resolve(j), () => {});
      }
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await finished.promise;
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
    }
    const job = store.get(jobId)!;
    const view = jobView(job) as JobView;
    const backend = backends.find((b) => b.id === job.backend);
    view.outputs = view.outputs.map((o, n) => ({
      ...o,
      url: backend ? viewUrl(backend, job.outputs[n]) : o.url,
    }));
    if (backend && !opts.wait) view.backend_url = clientFor(backend).baseUrl;
    return { mode: "local", job: view };
  } finally {
    await dispatcher.stop();
    await monitor.stop();
    store.close();
  }
}
