/**
 * Is the ComfyUI we started up? ComfyUI binds its port only after every custom node was
 * imported, so an answer means "loaded". A probe is a TCP connect, then `GET /system_stats`
 * answering 200 with ComfyUI's JSON; the listener must belong to our child's process group,
 * because a stale ComfyUI left on the same port answers just as well.
 *
 * @module
 */
import { portOwnedByGroup } from "./procinfo.ts";
import { isPortOpen } from "../net/port.ts";

/** Where a ComfyUI started with some arguments can be reached. */
export interface ListenTarget {
  /** Address to connect to (a wildcard listen address becomes loopback). */
  host: string;
  port: number;
}

/** ComfyUI's default port. */
export const COMFYUI_DEFAULT_PORT = 8188;

/**
 * Reads `--listen` and `--port` from ComfyUI arguments the way ComfyUI's argparse does
 * (`--listen` without a value means all interfaces; `--port=N` works too).
 *
 * @example
 * ```ts
 * import { listenTarget } from "@/supervisor/health.ts";
 *
 * listenTarget(["--listen", "0.0.0.0", "--port", "8190"]); // { host: "127.0.0.1", port: 8190 }
 * ```
 */
export function listenTarget(args: string[]): ListenTarget {
  let listen: string | undefined;
  let port = COMFYUI_DEFAULT_PORT;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--port" && i + 1 < args.length) {
      const n = Number(args[++i]);
      if (Number.isInteger(n) && n > 0 && n < 65536) port = n;
    } else if (a.startsWith("--port=")) {
      const n = Number(a.slice(7));
      if (Number.isInteger(n) && n > 0 && n < 65536) port = n;
    } else if (a === "--listen") {
      const next = args[i + 1];
      if (next !== undefined && !next.startsWith("-")) {
        listen = next;
        i++;
      } else listen = "0.0.0.0,::";
    } else if (a.startsWith("--listen=")) {
      listen = a.slice(9);
    }
  }
  return { host: connectHost(listen), port };
}

function connectHost(listen: string | undefined): string {
  if (listen === undefined) return "127.0.0.1";
  const first = listen.split(",")[0].trim();
  if (first === "" || first === "0.0.0.0") return "127.0.0.1";
  if (first === "::") return "::1";
  return first;
}

function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/** What a probe is asked to check. */
export interface HealthTarget extends ListenTarget {
  /** Pid of the ComfyUI gov started (leader of its process group). */
  childPid: number;
  /** Whether something already listened on the port before the child started. */
  portWasBusy: boolean;
}

/** Outcome of one probe. */
export interface ProbeResult {
  ok: boolean;
  /** Why it failed, for logs. */
  reason?: string;
}

/** One health probe. */
export type HealthProbe = (target: HealthTarget) => Promise<ProbeResult>;

/** Options of {@linkcode httpHealthProbe}. */
export interface HttpProbeOptions {
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Ownership check, injectable; default asks `ss`/`ps`. */
  ownedByGroup?: (port: number, leader: number) => Promise<boolean | undefined>;
}

/**
 * The real probe: TCP connect, `GET /system_stats` 200 with a `system` object, and the
 * listener owned by the child's group. When ownership cannot be determined, an answer is
 * trusted only if the port was free before the child started.
 *
 * @example
 * ```ts
 * import { httpHealthProbe } from "@/supervisor/health.ts";
 *
 * const probe = httpHealthProbe();
 * const r = await probe({ host: "127.0.0.1", port: 8188, childPid: 4242, portWasBusy: false });
 * ```
 */
export function httpHealthProbe(opts: HttpProbeOptions = {}): HealthProbe {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const owned = opts.ownedByGroup ?? portOwnedByGroup;
  const verified = new Set<number>();
  return async (t) => {
    if (!(await isPortOpen(t.host, t.port, Math.min(timeoutMs, 1000)))) {
      return { ok: false, reason: "port closed" };
    }
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutMs);
    try {
      const res = await fetch(`http://${urlHost(t.host)}:${t.port}/system_stats`, {
        signal: ac.signal,
      });
      const text = await res.text();
      if (res.status !== 200) {
        return { ok: false, reason: `GET /system_stats answered ${res.status}` };
      }
      const body = JSON.parse(text);
      if (typeof body !== "object" || body === null || typeof body.system !== "object") {
        return { ok: false, reason: "GET /system_stats is not ComfyUI's answer" };
      }
    } catch (err) {
      return { ok: false, reason: `GET /system_stats failed: ${(err as Error).message}` };
    } finally {
      clearTimeout(timer);
    }
    if (!verified.has(t.childPid)) {
      const mine = await owned(t.port, t.childPid);
      if (mine === false) {
        return { ok: false, reason: `port ${t.port} is answered by a process that is not ours` };
      }
      if (mine === undefined && t.portWasBusy) {
        return {
          ok: false,
          reason: `port ${t.port} was busy before start; cannot tell who answers`,
        };
      }
      verified.add(t.childPid);
    }
    return { ok: true };
  };
}

/**
 * Counts consecutive successful probes of one child; call {@linkcode HealthTracker.probe}
 * once per poll.
 *
 * @example
 * ```ts
 * import { HealthTracker, httpHealthProbe } from "@/supervisor/health.ts";
 * import { type HealthTarget } from "@/supervisor/health.ts";
 * declare const target: HealthTarget;
 *
 * const tracker = new HealthTracker(httpHealthProbe(), target, 3);
 * while (!(await tracker.probe())) await new Promise((r) => setTimeout(r, 250));
 * ```
 */
export class HealthTracker {
  /** Consecutive successes so far. */
  streak = 0;
  /** Whether `needed` consecutive successes were seen. */
  healthy = false;
  /** Why the last probe failed. */
  lastReason?: string;
  constructor(
    private readonly probeFn: HealthProbe,
    readonly target: HealthTarget,
    readonly needed: number,
  ) {}

  /** Runs one probe; returns whether the child is now healthy. */
  async probe(): Promise<boolean> {
    if (this.healthy) return true;
    let r: ProbeResult;
    try {
      r = await this.probeFn(this.target);
    } catch (err) {
      r = { ok: false, reason: (err as Error).message };
    }
    if (r.ok) {
      this.streak++;
      if (this.streak >= this.needed) this.healthy = true;
    } else {
      this.streak = 0;
      this.lastReason = r.reason;
    }
    return this.healthy;
  }
}

/**
 * Whether a line of ComfyUI's output says it has bound its port ("To see the GUI go to:
 * http://127.0.0.1:8188", printed right after binding): worth a probe at once.
 *
 * @example
 * ```ts
 * import { isListeningLine } from "@/supervisor/health.ts";
 *
 * isListeningLine("To see the GUI go to: http://127.0.0.1:8188"); // true
 * ```
 */
export function isListeningLine(line: string): boolean {
  return line.includes("To see the GUI go to");
}

/** Shortest pause between two probes of a ComfyUI that does not answer yet. */
export const MIN_PROBE_GAP_MS = 5;

/**
 * How long to wait before the next probe, given the last one.
 *
 * - The last probe succeeded but the streak is short: probe again at once. The rule of
 *   `needed` consecutive answers guards against a ComfyUI that answers and dies; spacing the
 *   answers out by the poll interval only delayed every start.
 * - It failed: a pause proportional to how long the child has been starting (a tenth of it),
 *   between {@linkcode MIN_PROBE_GAP_MS} and `pollIntervalMs`. A fast start is seen within a
 *   few ms of binding its port, a slow one (custom nodes importing for a minute) is not
 *   probed a hundred times a second for nothing.
 *
 * @example
 * ```ts
 * import { nextProbeDelay } from "@/supervisor/health.ts";
 *
 * nextProbeDelay({ ok: true, sinceStartMs: 300, pollIntervalMs: 250 }); // 0
 * nextProbeDelay({ ok: false, sinceStartMs: 300, pollIntervalMs: 250 }); // 30
 * nextProbeDelay({ ok: false, sinceStartMs: 60_000, pollIntervalMs: 250 }); // 250
 * ```
 */
export function nextProbeDelay(
  last: { ok: boolean; sinceStartMs: number; pollIntervalMs: number },
): number {
  if (last.ok) return 0;
  const cap = Math.max(last.pollIntervalMs, 0);
  return Math.min(cap, Math.max(MIN_PROBE_GAP_MS, Math.round(last.sinceStartMs / 10)));
}

/** Result of {@linkcode waitForHealth}. */
export type HealthWait = "healthy" | "died" | "timeout";

/**
 * Polls until `needed` consecutive probes succeed, the child dies (checked before every
 * probe and while sleeping) or `timeoutMs` passes. Probes are spaced by
 * {@linkcode nextProbeDelay}, with `intervalMs` as the longest pause.
 *
 * @example
 * ```ts
 * import { waitForHealth } from "@/supervisor/health.ts";
 * import { type SpawnedProcess } from "@/process/run.ts";
 * import { type HealthProbe } from "@/supervisor/health.ts";
 * import { type HealthTarget } from "@/supervisor/health.ts";
 * declare const target: HealthTarget;
 *
 * declare const child: SpawnedProcess;
 * declare const probe: HealthProbe;
 *
 * const r = await waitForHealth(probe, target, {
 *   childExited: () => child.exited(),
 *   exitedPromise: child.status,
 *   timeoutMs: 600_000,
 * });
 * ```
 */
export async function waitForHealth(
  probe: HealthProbe,
  target: HealthTarget,
  opts: {
    childExited: () => boolean;
    exitedPromise?: Promise<unknown>;
    timeoutMs: number;
    intervalMs?: number;
    successes?: number;
    now?: () => number;
  },
): Promise<HealthWait> {
  const now = opts.now ?? Date.now;
  const tracker = new HealthTracker(probe, target, opts.successes ?? 3);
  const started = now();
  const deadline = started + opts.timeoutMs;
  while (true) {
    if (opts.childExited()) return "died";
    if (await tracker.probe()) return opts.childExited() ? "died" : "healthy";
    if (opts.childExited()) return "died";
    if (now() >= deadline) return "timeout";
    const ms = nextProbeDelay({
      ok: tracker.streak > 0,
      sinceStartMs: now() - started,
      pollIntervalMs: opts.intervalMs ?? 250,
    });
    if (ms === 0) continue;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise((r) => timer = setTimeout(r, ms)),
      opts.exitedPromise ?? new Promise(() => {}),
    ]);
    clearTimeout(timer);
  }
}
