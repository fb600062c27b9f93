/**
 * `gov serve`: the long-running gateway that routes ComfyUI workflows across the
 * workspace's backends.
 *
 * @module
 */
import { UsageError } from "../../errors.ts";
import { workspaceFromFlag } from "../inputs.ts";
import { DEFAULT_LISTEN, isLoopback, startGateway } from "../../serve/gateway.ts";
import { type Command, numberFlag, parseFlags, positionalArgs } from "../command.ts";
import type { Io } from "../io.ts";
import { resolveToken } from "./token.ts";

const NAME = "serve";

/**
 * Parses `--listen`: `HOST:PORT`, `[IPv6]:PORT`, `:PORT`, `PORT` or `HOST`.
 *
 * @example
 * ```ts
 * import { parseListen } from "@/cli/serve/serve.ts";
 *
 * parseListen("0.0.0.0:8190"); // { hostname: "0.0.0.0", port: 8190 }
 * ```
 */
export function parseListen(raw: string): { hostname: string; port: number } {
  const bad = () =>
    new UsageError(`gov serve: --listen must be HOST:PORT (e.g. 127.0.0.1:8190), got '${raw}'`);
  let host = DEFAULT_LISTEN.hostname;
  let portText = String(DEFAULT_LISTEN.port);
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(raw);
  if (v6) {
    host = v6[1];
    if (v6[2] !== undefined) portText = v6[2];
  } else if (/^\d+$/.test(raw)) {
    portText = raw;
  } else if (raw.split(":").length === 2) {
    const [h, p] = raw.split(":");
    if (h) host = h;
    portText = p;
  } else if (raw.includes(":")) {
    throw bad();
  } else if (raw) {
    host = raw;
  } else {
    throw bad();
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw bad();
  if (!/^[A-Za-z0-9.:-]+$/.test(host)) throw bad();
  return { hostname: host, port };
}

/** The `gov serve` command. */
export const serveCommand: Command = {
  name: NAME,
  summary: "run the gateway: an HTTP API that routes ComfyUI workflows across backends",
  help: `Usage: gov serve [flags]

Runs the gateway in the foreground until SIGTERM or Ctrl-C. It keeps jobs in
<workspace>/.metadata/serve/jobs.sqlite, watches the backends of <workspace>/backends.toml
(edits take effect without a restart), and places each job on the least loaded healthy
backend that has the node classes and models it needs. Jobs survive a restart: queued ones
are dispatched again, running ones are re-attached to their backend.

HTTP API:
  POST   /v1/jobs                  {"workflow": <UI or API JSON>, "set": {"seed": 1},
                                   "backend"?: ID, "queue_timeout"?: seconds}, sent as
                                   Content-Type: application/json; with an Idempotency-Key
                                   header a repeat answers the first job
  GET    /v1/jobs[?state=&limit=]  recent jobs
  GET    /v1/jobs/{id}             one job
  GET    /v1/jobs/{id}/events      server-sent events: queued, waiting (why no backend takes
                                   it yet), dispatched, accepted, running, progress, executed,
                                   retry, completed | failed | cancelled
  GET    /v1/jobs/{id}/outputs/{n} an output file, streamed from its backend
  DELETE /v1/jobs/{id}             cancel
  GET    /v1/backends              backend health and load
  GET    /v1/events                live stream of every job and backend change
  GET    /metrics                  Prometheus metrics
  GET    /healthz                  liveness (no token needed)
  GET    /                         status page (with a token: open /?token=T once, or type it
                                   into the form; a session cookie keeps it for 12 hours)

Every GET answers HEAD too. POSTs and DELETEs from another origin (a web page, another
port) are refused, and so is a Host other than the listen address (see --allow-host).
Limits: bodies 32 MiB (413), 256 set pairs, 10,000 nodes, JSON nesting 128 (400).

Flags:
      --workspace DIR       the workspace (default: discovered)
      --listen HOST:PORT    address to listen on (default 127.0.0.1:8190); anything but
                            loopback requires a token
      --token-file FILE     require "Authorization: Bearer T" on every route but /healthz,
                            T being the file's one line; or set GOV_SERVE_TOKEN
      --token T             the same, but T shows in every process listing (ps): prefer
                            --token-file or GOV_SERVE_TOKEN (gov warns)
      --allow-host NAME     also answer requests whose Host is NAME (a DNS name or proxy
                            that reaches this gateway); repeatable. Without it only the
                            listen address, loopback names (on a loopback or 0.0.0.0
                            listen), IP addresses (on 0.0.0.0) and this machine's name are
                            answered, which defeats DNS rebinding
      --header-timeout S    close a connection whose request headers take longer (10)
      --body-timeout S      answer 408 when a request body takes longer (60)
      --idle-timeout S      close a connection with no traffic for S seconds (120)
      --max-connections N   refuse connections beyond N open at once with 503 (256)
      --max-attempts N      dispatches per job before it fails, counting failovers (default 3)
      --queue-timeout S     fail a job that waited S seconds in the queue with no backend
                            taking it (down, missing a node or model, full), with the
                            reasons; counted from acceptance or the last failover. Default
                            0: jobs wait for a backend as long as it takes. A job's own
                            "queue_timeout" (gov submit --queue-timeout) wins
      --probe-interval MS   backend health probe interval (default 5000)
      --probe-timeout MS    a probe without an answer by then fails; two failures in a row
                            mark a backend down and move its jobs (default 3000)
      --retain-days N       prune finished jobs older than N days (default 30, 0 = never)
      --json                print one JSON line {url, pid, workspace} when listening

Exit codes: 0 stopped by a signal, 1 could not start (port in use, another gateway runs
for this workspace), 2 bad flags (including a non-loopback --listen without a token).
`,
  async run(args: string[], io: Io): Promise<number> {
    const { values, positionals } = parseFlags(NAME, args, {
      workspace: { type: "string" },
      listen: { type: "string" },
      token: { type: "string" },
      "token-file": { type: "string" },
      "allow-host": { type: "string", multiple: true },
      "header-timeout": { type: "string" },
      "body-timeout": { type: "string" },
      "idle-timeout": { type: "string" },
      "max-connections": { type: "string" },
      "max-attempts": { type: "string" },
      "queue-timeout": { type: "string" },
      "probe-interval": { type: "string" },
      "probe-timeout": { type: "string" },
      "retain-days": { type: "string" },
      json: { type: "boolean" },
    });
    positionalArgs(NAME, positionals, []);
    const listen = parseListen(
      values.listen ?? `${DEFAULT_LISTEN.hostname}:${DEFAULT_LISTEN.port}`,
    );
    const token = await resolveToken(NAME, values, io);
    const allowHosts = values["allow-host"] ?? [];
    for (const h of allowHosts) {
      if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)$/.test(h)) {
        throw new UsageError(
          `gov serve: --allow-host must be a host name without port or scheme, got '${h}'`,
        );
      }
    }
    const seconds = (flag: string, raw: string | undefined, fallback: number) =>
      numberFlag(NAME, flag, raw, fallback, { min: 0.1, max: 86_400 }) * 1000;
    const transport = {
      headerTimeoutMs: seconds("--header-timeout", values["header-timeout"], 10),
      idleTimeoutMs: seconds("--idle-timeout", values["idle-timeout"], 120),
      maxConnections: numberFlag(NAME, "--max-connections", values["max-connections"], 256, {
        min: 1,
        max: 100_000,
        integer: true,
      }),
    };
    const bodyTimeoutMs = seconds("--body-timeout", values["body-timeout"], 60);
    if (!isLoopback(listen.hostname) && !token) {
      throw new UsageError(
        `gov serve: refusing to listen on ${listen.hostname} without a token`,
        {
          hint: "anyone who can reach that address could queue work on your GPUs: pass " +
            "--token-file FILE (or set GOV_SERVE_TOKEN), or listen on 127.0.0.1",
        },
      );
    }
    const maxAttempts = numberFlag(NAME, "--max-attempts", values["max-attempts"], 3, {
      min: 1,
      max: 100,
      integer: true,
    });
    const queueTimeoutS = numberFlag(NAME, "--queue-timeout", values["queue-timeout"], 0, {
      min: 0,
      max: 31_536_000,
    });
    const probeIntervalMs = numberFlag(NAME, "--probe-interval", values["probe-interval"], 5000, {
      min: 100,
      max: 3_600_000,
      integer: true,
    });
    const probeTimeoutMs = numberFlag(NAME, "--probe-timeout", values["probe-timeout"], 3000, {
      min: 100,
      max: 600_000,
      integer: true,
    });
    const retainDays = numberFlag(NAME, "--retain-days", values["retain-days"], 30, {
      min: 0,
      max: 36500,
    });
    const ws = workspaceFromFlag(values.workspace, io);

    const log = (line: string) => io.err(`${new Date().toISOString()} ${line}\n`);
    const stop = Promise.withResolvers<string>();
    const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
    const handlers = signals.map((sig) => {
      const h = () => stop.resolve(sig);
      Deno.addSignalListener(sig, h);
      return [sig, h] as const;
    });
    try {
      const gw = await startGateway({
        workspace: ws,
        hostname: listen.hostname,
        port: listen.port,
        token,
        allowHosts,
        transport,
        limits: { bodyTimeoutMs },
        maxAttempts,
        queueTimeoutMs: queueTimeoutS * 1000,
        probeIntervalMs,
        probeTimeoutMs,
        retainDays,
        log,
      });
      if (values.json) {
        io.out(JSON.stringify({ url: gw.url, pid: Deno.pid, workspace: ws.root }) + "\n");
      } else {
        io.out(`gov serve listening on ${gw.url} (workspace ${ws.root})\n`);
      }
      const sig = await stop.promise;
      log(`${sig}: shutting down`);
      await gw.close();
      return 0;
    } finally {
      for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
    }
  },
};
