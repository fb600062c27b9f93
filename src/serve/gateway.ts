/**
 * `gov serve` as a library: opens the job store, starts health monitoring of the
 * workspace's backends, the dispatcher and the HTTP server, and records where it listens
 * in `<workspace>/.metadata/serve/server.json` so `gov submit` finds it.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { GovError, LockedError } from "../errors.ts";
import { readTextIfExists, removeIfExists, writeJsonAtomic } from "../fs/atomic.ts";
import { isPidAlive } from "../process/run.ts";
import { VERSION } from "../version.ts";
import type { Workspace } from "../workspace/root.ts";
import type { BackendConfig } from "../backends/types.ts";
import { HealthMonitor, readBackends } from "./backend_api.ts";
import { Dispatcher } from "./dispatcher.ts";
import {
  createHandler,
  DEFAULT_LIMITS,
  DEFAULT_TRANSPORT_LIMITS,
  type GuardedServer,
  HostPolicy,
  type RequestLimits,
  serveGuarded,
  type TransportLimits,
} from "./http/mod.ts";
import { JobStore } from "./store.ts";

/** Default address of `gov serve`. */
export const DEFAULT_LISTEN = { hostname: "127.0.0.1", port: 8190 };

/** What `server.json` records. */
export interface ServerRecord {
  /** URL a local client reaches the gateway at. */
  url: string;
  /** Pid of the `gov serve` process. */
  pid: number;
  /** Address it listens on, as given. */
  listen: string;
  /** Whether a bearer token is required (the token itself is never written). */
  token_required: boolean;
  /** When it started (ISO 8601). */
  started_at: string;
  /** gov version. */
  version: string;
}

/**
 * Folder of the gateway's state in a workspace.
 *
 * @example
 * ```ts
 * import type { Workspace } from "../workspace/root.ts";
 * declare const ws: Workspace;
 * serveDir(ws); // /srv/comfy/.metadata/serve
 * ```
 */
export function serveDir(ws: Workspace): string {
  return join(ws.metadataDir, "serve");
}

/**
 * Path of the job database of a workspace.
 *
 * @example
 * ```ts
 * import type { Workspace } from "../workspace/root.ts";
 * declare const ws: Workspace;
 * jobsDbPath(ws); // /srv/comfy/.metadata/serve/jobs.sqlite
 * ```
 */
export function jobsDbPath(ws: Workspace): string {
  return join(serveDir(ws), "jobs.sqlite");
}

/**
 * Path of `server.json`.
 *
 * @example
 * ```ts
 * import type { Workspace } from "../workspace/root.ts";
 * declare const ws: Workspace;
 * serverFilePath(ws); // /srv/comfy/.metadata/serve/server.json
 * ```
 */
export function serverFilePath(ws: Workspace): string {
  return join(serveDir(ws), "server.json");
}

/**
 * A short stable id of a workspace (its path, hashed), which `/healthz` reports so a
 * client can tell that a gateway serves its workspace.
 *
 * @example
 * ```ts
 * import type { Workspace } from "../workspace/root.ts";
 * declare const ws: Workspace;
 * workspaceId(ws); // "3f2a9c0d1b7e"
 * ```
 */
export function workspaceId(ws: Workspace): string {
  return createHash("sha256").update(ws.root).digest("hex").slice(0, 12);
}

/**
 * The running gateway recorded for a workspace, or undefined when none is (or its pid is
 * gone).
 *
 * @example
 * ```ts
 * import type { Workspace } from "../workspace/root.ts";
 * declare const ws: Workspace;
 * const rec = await readServerRecord(ws);
 * if (rec) console.log(rec.url);
 * ```
 */
export async function readServerRecord(ws: Workspace): Promise<ServerRecord | undefined> {
  const text = await readTextIfExists(serverFilePath(ws));
  if (!text) return undefined;
  try {
    const rec = JSON.parse(text) as ServerRecord;
    if (typeof rec.url !== "string" || typeof rec.pid !== "number") return undefined;
    return isPidAlive(rec.pid) ? rec : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a listen host is a loopback address (reachable only from this machine).
 *
 * @example
 * ```ts
 * import { isLoopback } from "@/serve/gateway.ts";
 *
 * isLoopback("127.0.0.1"); // true
 * isLoopback("0.0.0.0");   // false
 * ```
 */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) ||
    h === "::ffff:127.0.0.1";
}

/** Options of {@linkcode startGateway}. */
export interface GatewayOptions {
  /** The workspace whose backends and store to use. */
  workspace: Workspace;
  /** Address to listen on (127.0.0.1). */
  hostname?: string;
  /** Port (8190; 0 picks a free one). */
  port?: number;
  /** Bearer token required on every route but /healthz. */
  token?: string;
  /** Most dispatches of a job (3). */
  maxAttempts?: number;
  /** Most ms a job waits in the queue for a backend before it fails (0 = no limit). */
  queueTimeoutMs?: number;
  /** Health probe interval in ms (5000). */
  probeIntervalMs?: number;
  /** Timeout of one health probe in ms (3000); two failed probes mark a backend down. */
  probeTimeoutMs?: number;
  /** `/history` poll interval while following a prompt without `/ws` (1000). */
  pollIntervalMs?: number;
  /** Finished jobs older than this many days are pruned (30; 0 keeps them forever). */
  retainDays?: number;
  /** Host names the gateway answers besides its listen address (`--allow-host`). */
  allowHosts?: string[];
  /** What one request may cost (defaults: {@linkcode DEFAULT_LIMITS}). */
  limits?: Partial<RequestLimits>;
  /** Connection timeouts and cap (defaults: {@linkcode DEFAULT_TRANSPORT_LIMITS}). */
  transport?: Partial<TransportLimits>;
  /** Operator log lines. */
  log?: (line: string) => void;
}

/** A running gateway. */
export interface Gateway {
  /** URL a local client uses. */
  url: string;
  /** Port it listens on. */
  port: number;
  /** The job store. */
  store: JobStore;
  /** The dispatcher. */
  dispatcher: Dispatcher;
  /** Backend health. */
  monitor: HealthMonitor;
  /** Stops accepting, lets go of jobs (they stay durable), closes everything. */
  close(): Promise<void>;
}

function urlHost(hostname: string): string {
  if (hostname === "0.0.0.0") return "127.0.0.1";
  if (hostname === "::" || hostname === "[::]") return "[::1]";
  return hostname.includes(":") && !hostname.startsWith("[") ? `[${hostname}]` : hostname;
}

/**
 * Starts `gov serve` in this process. Refuses when another live gateway is recorded for
 * the workspace.
 *
 * @example
 * ```ts
 * import type { Workspace } from "../workspace/root.ts";
 * declare const ws: Workspace;
 * const gw = await startGateway({ workspace: ws, port: 0 });
 * console.log(gw.url);
 * await gw.close();
 * ```
 */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const ws = opts.workspace;
  const log = opts.log ?? (() => {});
  const hostname = opts.hostname ?? DEFAULT_LISTEN.hostname;
  const existing = await readServerRecord(ws);
  if (existing && existing.pid !== Deno.pid) {
    throw new LockedError(
      serverFilePath(ws),
      existing.pid,
      `gov serve already runs for this workspace at ${existing.url}; stop it first`,
    );
  }
  let backends: BackendConfig[] = await readBackends(ws);
  const store = JobStore.open(jobsDbPath(ws));
  // Two gateways on one store would both dispatch its queue: exactly one may own it.
  const owner = store.claim(Deno.pid, isPidAlive);
  if (owner !== undefined) {
    store.close();
    throw new LockedError(
      jobsDbPath(ws),
      owner,
      `gov serve (pid ${owner}) already runs for this workspace; stop it first`,
    );
  }
  const monitor = new HealthMonitor(backends, {
    intervalMs: opts.probeIntervalMs ?? 5000,
    timeoutMs: opts.probeTimeoutMs ?? 3000,
  });
  const timers: ReturnType<typeof setInterval>[] = [];
  let server: GuardedServer | undefined;
  let dispatcher: Dispatcher | undefined;
  try {
    if (backends.length) {
      await monitor.probeAll();
      log(`backends: ${monitor.statuses().map((s) => `${s.id} ${s.state}`).join(", ")}`);
    } else {
      log("no backends configured yet (gov backend add ...); jobs will wait");
    }
    monitor.start();
    dispatcher = new Dispatcher({
      store,
      monitor,
      backends: () => backends,
      maxAttempts: opts.maxAttempts,
      queueTimeoutMs: opts.queueTimeoutMs,
      pollIntervalMs: opts.pollIntervalMs,
      log,
    });
    const retainDays = opts.retainDays ?? 30;
    const prune = () => {
      if (retainDays <= 0) return;
      const n = store.prune(Date.now() - retainDays * 86_400_000);
      if (n) log(`pruned ${n} finished job(s) older than ${retainDays} days`);
    };
    prune();
    timers.push(setInterval(prune, 3_600_000));
    const startedAt = Date.now();
    const limits = { ...DEFAULT_LIMITS, ...opts.limits };
    const api = createHandler({
      dispatcher,
      store,
      monitor,
      backends: () => backends,
      token: opts.token,
      version: VERSION,
      workspaceId: workspaceId(ws),
      startedAt,
      hosts: new HostPolicy(hostname, [...(opts.allowHosts ?? []), ...machineName()]),
      limits,
    });
    try {
      server = await serveGuarded({
        hostname,
        port: opts.port ?? DEFAULT_LISTEN.port,
        limits: {
          ...DEFAULT_TRANSPORT_LIMITS,
          // Slack for what socket buffers hold before the handler counts it.
          maxUnansweredBytes: limits.maxBodyBytes + 16 * 1024 * 1024,
          ...opts.transport,
        },
        onError: (err) => {
          log(`request failed: ${(err as Error)?.stack ?? err}`);
          return new Response(JSON.stringify({ error: "internal error" }), { status: 500 });
        },
      }, api.handler);
    } catch (err) {
      if (err instanceof Deno.errors.AddrInUse) {
        throw new GovError(`cannot listen on ${hostname}:${opts.port}: the port is in use`, {
          hint: "pick another with --listen HOST:PORT, or stop what holds it",
        });
      }
      throw new GovError(`cannot listen on ${hostname}:${opts.port}: ${(err as Error).message}`);
    }
    const addr = server.addr;
    const url = `http://${urlHost(hostname)}:${addr.port}`;
    dispatcher.start();

    // backends.toml edits (gov backend add/remove) take effect without a restart.
    const tomlPath = join(ws.root, "backends.toml");
    let lastMtime = await mtimeOf(tomlPath);
    let reloading = false;
    timers.push(setInterval(async () => {
      if (reloading) return;
      reloading = true;
      try {
        const m = await mtimeOf(tomlPath);
        if (m === lastMtime) return;
        lastMtime = m;
        backends = await readBackends(ws);
        monitor.setBackends(backends);
        log(`backends.toml changed: ${backends.map((b) => b.id).join(", ") || "no backends"}`);
        dispatcher?.kick();
      } catch (err) {
        log(`backends.toml not reloaded: ${(err as Error).message}`);
      } finally {
        reloading = false;
      }
    }, 2000));

    const record: ServerRecord = {
      url,
      pid: Deno.pid,
      listen: `${urlHost(hostname)}:${addr.port}`,
      token_required: !!opts.token,
      started_at: new Date(startedAt).toISOString(),
      version: VERSION,
    };
    await writeJsonAtomic(serverFilePath(ws), record);
    log(`listening on ${url} (store ${store.path})`);

    let closing: Promise<void> | undefined;
    const srv = server;
    const disp = dispatcher;
    return {
      url,
      port: addr.port,
      store,
      dispatcher,
      monitor,
      close() {
        closing ??= (async () => {
          for (const t of timers) clearInterval(t);
          const stopped = srv.shutdown();
          // Event streams never end by themselves; end them so shutdown can finish.
          const sweep = setInterval(() => api.closeStreams(), 50);
          api.closeStreams();
          await stopped;
          clearInterval(sweep);
          await disp.stop();
          await monitor.stop();
          store.release(Deno.pid);
          store.close();
          const rec = await readServerRecord(ws);
          if (!rec || rec.pid === Deno.pid) await removeIfExists(serverFilePath(ws));
          log("stopped; unfinished jobs stay in the store for the next start");
        })();
        return closing;
      },
    };
  } catch (err) {
    for (const t of timers) clearInterval(t);
    await server?.shutdown();
    await dispatcher?.stop();
    await monitor.stop();
    store.release(Deno.pid);
    store.close();
    throw err;
  }
}

/** The machine's own name: a page that reaches the gateway by it is no rebinding. */
function machineName(): string[] {
  try {
    return [Deno.hostname()];
  } catch {
    return [];
  }
}

async function mtimeOf(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? 0;
  } catch {
    return -1;
  }
}
