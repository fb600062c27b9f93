/**
 * The health monitor: what gov knows, moment to moment, about each backend.
 *
 * Every `intervalMs` it probes each backend (`GET /prompt` for queue_remaining,
 * `GET /system_stats` for VRAM and version), with hysteresis: a backend goes down after
 * `downAfter` consecutive failures and up again after `upAfter` successes, so one dropped
 * packet does not flap routing. It learns capabilities from `/object_info` (node classes, and
 * model names from loader COMBOs) when a backend first answers, whenever it comes back up
 * (it may have restarted with other custom nodes), and otherwise every
 * `objectInfoIntervalMs`. While a backend is up it keeps one `/ws` open and follows its
 * `status` messages, so queue depth is current between probes; that socket reconnects with
 * backoff and everything (sockets, timers, requests) ends on {@linkcode HealthMonitor.stop}.
 *
 * @module
 */
import { type BackendUnreachableError, ComfyUIClient, type ComfyUISocket } from "./comfyui/mod.ts";
import { modelsFromObjectInfo, nodeClassesFromObjectInfo } from "./capabilities.ts";
import type { BackendConfig, BackendObjectInfo, BackendStatus } from "./types.ts";

/** Options of {@linkcode HealthMonitor}. */
export interface HealthOptions {
  /** Probe interval (5 000 ms). */
  intervalMs?: number;
  /** Timeout of one probe request (3 000 ms). */
  timeoutMs?: number;
  /** Consecutive failed probes before a backend is down (2). */
  downAfter?: number;
  /** Consecutive good probes before a down or unknown backend is up (1). */
  upAfter?: number;
  /** How often to refresh `/object_info` of an up backend (300 000 ms). */
  objectInfoIntervalMs?: number;
  /** Timeout of an `/object_info` request (30 000 ms). */
  objectInfoTimeoutMs?: number;
  /** Follow `status` messages over `/ws` while a backend is up (true). */
  followStatus?: boolean;
}

interface Entry {
  config: BackendConfig;
  client: ComfyUIClient;
  status: BackendStatus;
  objectInfo?: BackendObjectInfo;
  objectInfoAt: number;
  /** The probe running now, so probes of one backend never overlap. */
  probing?: Promise<void>;
  socket?: ComfyUISocket;
  connecting?: Promise<void>;
  reconnectTimer?: ReturnType<typeof setTimeout>;
  backoffMs: number;
  removed: boolean;
}

function sameEndpoint(a: BackendConfig, b: BackendConfig): boolean {
  return a.host === b.host && a.port === b.port && a.token === b.token &&
    (a.tls ?? false) === (b.tls ?? false);
}

function freshStatus(id: string): BackendStatus {
  return {
    id,
    state: "unknown",
    lastProbeAt: 0,
    failures: 0,
    successes: 0,
    queueRemaining: 0,
    inFlight: 0,
    nodeClasses: [],
    statusSocket: false,
    models: {},
  };
}

function copyStatus(s: BackendStatus): BackendStatus {
  return {
    ...s,
    vram: s.vram ? { ...s.vram } : undefined,
    nodeClasses: [...s.nodeClasses],
    models: Object.fromEntries(Object.entries(s.models).map(([k, v]) => [k, [...v]])),
  };
}

// What onChange listeners care about; probe counters and timestamps alone are not news.
function signature(s: BackendStatus): string {
  return JSON.stringify([
    s.state,
    s.queueRemaining,
    s.inFlight,
    s.lastError ?? "",
    s.vram?.free ?? -1,
    s.vram?.total ?? -1,
    s.comfyuiVersion ?? "",
    s.capabilitiesAt ?? 0,
    s.statusSocket ?? false,
  ]);
}

/**
 * Follows the health, load and capabilities of a set of backends.
 *
 * @example
 * ```ts
 * import { workspaceAt } from "../workspace/root.ts";
 * import { readBackends } from "./registry.ts";
 * const ws = workspaceAt("/srv/comfy");
 * const monitor = new HealthMonitor(await readBackends(ws), { intervalMs: 2000 });
 * monitor.onChange((s) => console.log(s.id, s.state, s.queueRemaining));
 * monitor.start();
 * // ...
 * await monitor.stop();
 * ```
 */
export class HealthMonitor {
  #entries = new Map<string, Entry>();
  #listeners = new Set<(s: BackendStatus) => void>();
  #opts: Required<HealthOptions>;
  #abort = new AbortController();
  #running = false;
  #stopped = false;
  #tickTimer?: ReturnType<typeof setTimeout>;
  #tick?: Promise<void>;
  /** Probes and socket work started outside the tick, awaited by stop(). */
  #background = new Set<Promise<void>>();
  #monitorId = crypto.randomUUID().slice(0, 8);

  constructor(backends: BackendConfig[], opts: HealthOptions = {}) {
    this.#opts = {
      intervalMs: opts.intervalMs ?? 5_000,
      timeoutMs: opts.timeoutMs ?? 3_000,
      downAfter: Math.max(1, opts.downAfter ?? 2),
      upAfter: Math.max(1, opts.upAfter ?? 1),
      objectInfoIntervalMs: opts.objectInfoIntervalMs ?? 300_000,
      objectInfoTimeoutMs: opts.objectInfoTimeoutMs ?? 30_000,
      followStatus: opts.followStatus ?? true,
    };
    for (const b of backends) this.#entries.set(b.id, this.#newEntry(b));
  }

  #newEntry(config: BackendConfig): Entry {
    return {
      config,
      client: new ComfyUIClient({
        ...config,
        timeoutMs: this.#opts.timeoutMs,
        signal: this.#abort.signal,
      }),
      status: freshStatus(config.id),
      objectInfoAt: 0,
      backoffMs: 250,
      removed: false,
    };
  }

  /**
   * Starts probing: one round at once, then every `intervalMs`. Calling it twice is harmless.
   *
   * @example
   * ```ts
   * const monitor = new HealthMonitor([]);
   * monitor.start();
   * ```
   */
  start(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    const loop = () => {
      this.#tickTimer = undefined;
      if (!this.#running) return;
      this.#tick = this.probeAll().finally(() => {
        this.#tick = undefined;
        if (this.#running) this.#tickTimer = setTimeout(loop, this.#opts.intervalMs);
      });
    };
    loop();
  }

  /**
   * Stops probing, closes every socket, aborts requests in flight and waits until all of it
   * has ended. The monitor cannot be started again.
   *
   * @example
   * ```ts
   * const monitor = new HealthMonitor([]);
   * await monitor.stop();
   * ```
   */
  async stop(): Promise<void> {
    this.#running = false;
    this.#stopped = true;
    if (this.#tickTimer !== undefined) clearTimeout(this.#tickTimer);
    this.#tickTimer = undefined;
    this.#abort.abort();
    for (const e of this.#entries.values()) this.#clearReconnect(e);
    await this.#tick?.catch(() => {});
    while (this.#background.size > 0) {
      await Promise.allSettled([...this.#background]);
    }
    await Promise.allSettled([...this.#entries.values()].map((e) => this.#closeSocket(e)));
  }

  /**
   * Probes every backend once, concurrently, and waits for all of them.
   *
   * @example
   * ```ts
   * const monitor = new HealthMonitor([]);
   * await monitor.probeAll();
   * console.log(monitor.statuses());
   * ```
   */
  async probeAll(): Promise<void> {
    await Promise.all([...this.#entries.values()].map((e) => this.#probe(e)));
  }

  /**
   * A snapshot of every backend's status, in the order the backends were given.
   *
   * @example
   * ```ts
   * const monitor = new HealthMonitor([]);
   * const up = monitor.statuses().filter((s) => s.state === "up");
   * ```
   */
  statuses(): BackendStatus[] {
    return [...this.#entries.values()].map((e) => copyStatus(e.status));
  }

  /**
   * A snapshot of one backend's status, or undefined for an unknown id.
   *
   * @example
   * ```ts
   * const monitor = new HealthMonitor([]);
   * console.log(monitor.status("gpu1")?.state);
   * ```
   */
  status(id: string): BackendStatus | undefined {
    const e = this.#entries.get(id);
    return e ? copyStatus(e.status) : undefined;
  }

  /**
   * The backend's last `/object_info`, or undefined when not learned yet.
   *
   * @example
   * ```ts
   * const monitor = new HealthMonitor([]);
   * const info = monitor.objectInfo("gpu1");
   * ```
   */
  objectInfo(id: string): BackendObjectInfo | undefined {
    return this.#entries.get(id)?.objectInfo;
  }

  /**
   * The client the monitor uses for a backend (shares its timeouts; ends on stop()).
   *
   * @example
   * ```ts
   * const monitor = new HealthMonitor([]);
   * await monitor.client("gpu1")?.probe();
   * ```
   */
  client(id: string): ComfyUIClient | undefined {
    return this.#entries.get(id)?.client;
  }

  /**
   * Replaces the set of backends (after `backends.toml` changed). Known ids keep their
   * status unless their host, port, token or tls changed; new ones are probed at once when
   * the monitor runs; removed ones have their socket closed.
   *
   * @example
   * ```ts
   * import { workspaceAt } from "../workspace/root.ts";
   * import { readBackends } from "./registry.ts";
   * const ws = workspaceAt("/srv/comfy");
   * const monitor = new HealthMonitor([]);
   * monitor.setBackends(await readBackends(ws));
   * ```
   */
  setBackends(list: BackendConfig[]): void {
    const next = new Map<string, Entry>();
    for (const b of list) {
      const old = this.#entries.get(b.id);
      if (old && sameEndpoint(old.config, b)) {
        old.config = b;
        next.set(b.id, old);
        continue;
      }
      const entry = this.#newEntry(b);
      if (old) entry.status.inFlight = old.status.inFlight;
      next.set(b.id, entry);
      if (this.#running) this.#track(this.#probe(entry));
    }
    for (const [id, old] of this.#entries) {
      if (next.get(id) === old) continue;
      old.removed = true;
      this.#clearReconnect(old);
      this.#track(this.#closeSocket(old));
    }
    this.#entries = next;
  }

  /**
   * Marks a backend down at once (a job just found it unreachable). Probes bring it back up
   * after `upAfter` successes.
   *
   * @example
   * ```ts
   * const monitor = new HealthMonitor([]);
   * monitor.markDown("gpu1", "connection refused while running job j-12");
   * ```
   */
  markDown(id: string, reason: string): void {
    const e = this.#entries.get(id);
    if (!e) return;
    e.status.state = "down";
    e.status.lastError = reason;
    e.status.successes = 0;
    e.status.failures = Math.max(e.status.failures, this.#opts.downAfter);
    this.#clearReconnect(e);
    this.#track(this.#closeSocket(e));
    this.#emit(e, true);
  }

  /**
   * Counts prompts gov has dispatched to a backend and not yet seen finish (never below 0).
   *
   * @example
   * ```ts
   * const monitor = new HealthMonitor([]);
   * monitor.adjustInFlight("gpu1", +1);
   * // ... job ends
   * monitor.adjustInFlight("gpu1", -1);
   * ```
   */
  adjustInFlight(id: string, delta: number): void {
    const e = this.#entries.get(id);
    if (!e) return;
    e.status.inFlight = Math.max(0, e.status.inFlight + delta);
    this.#emit(e, true);
  }

  /**
   * Calls `cb` with a snapshot whenever a backend's state, load, VRAM, version, error or
   * capabilities change. Returns the function that unsubscribes.
   *
   * @example
   * ```ts
   * const monitor = new HealthMonitor([]);
   * const off = monitor.onChange((s) => console.log(s.id, s.state));
   * off();
   * ```
   */
  onChange(cb: (s: BackendStatus) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  #emit(e: Entry, force: boolean, before?: string): void {
    if (e.removed) return;
    if (!force && before === signature(e.status)) return;
    const snap = copyStatus(e.status);
    for (const cb of [...this.#listeners]) {
      try {
        cb(snap);
      } catch {
        // A listener's bug must not stop monitoring.
      }
    }
  }

  #track(p: Promise<void>): void {
    const t = p.catch(() => {}).finally(() => this.#background.delete(t));
    this.#background.add(t);
  }

  #probe(e: Entry): Promise<void> {
    e.probing ??= this.#probeOnce(e).finally(() => e.probing = undefined);
    return e.probing;
  }

  async #probeOnce(e: Entry): Promise<void> {
    if (this.#abort.signal.aborted) return;
    const before = signature(e.status);
    const s = e.status;
    try {
      const [{ queueRemaining }, stats] = await Promise.all([
        e.client.probe(),
        e.client.systemStats(),
      ]);
      if (this.#abort.signal.aborted || e.removed) return;
      s.queueRemaining = queueRemaining;
      const dev = stats.devices[0];
      if (dev && typeof dev.vram_total === "number" && typeof dev.vram_free === "number") {
        s.vram = { total: dev.vram_total, free: dev.vram_free };
      }
      if (typeof stats.system.comfyui_version === "string") {
        s.comfyuiVersion = stats.system.comfyui_version;
      }
      s.successes++;
      s.failures = 0;
      s.lastProbeAt = Date.now();
      const wasUp = s.state === "up";
      const becomesUp = !wasUp && s.successes >= this.#opts.upAfter;
      if (becomesUp) s.lastError = undefined;
      const stale = Date.now() - e.objectInfoAt >= this.#opts.objectInfoIntervalMs;
      // Learn before flipping to up, so nobody schedules on a restarted backend with the
      // node classes it had before.
      if (becomesUp || (wasUp && (!e.objectInfo || stale))) await this.#learn(e);
      if (this.#abort.signal.aborted || e.removed) return;
      if (becomesUp) {
        s.state = "up";
        e.backoffMs = 250;
      }
      if (s.state === "up" && !e.socket && !e.connecting && !e.reconnectTimer) this.#follow(e);
    } catch (err) {
      if (this.#abort.signal.aborted || e.removed) return;
      s.failures++;
      s.successes = 0;
      s.lastProbeAt = Date.now();
      s.lastError = (err as BackendUnreachableError).reason ?? (err as Error).message;
      if (s.state !== "down" && s.failures >= this.#opts.downAfter) {
        s.state = "down";
        this.#clearReconnect(e);
        this.#track(this.#closeSocket(e));
      }
    }
    this.#emit(e, false, before);
  }

  /** Fetches `/object_info`; a failure keeps what was known and is retried next probe. */
  async #learn(e: Entry): Promise<void> {
    try {
      const info = await e.client.objectInfo(this.#opts.objectInfoTimeoutMs);
      if (this.#abort.signal.aborted || e.removed) return;
      e.objectInfo = info;
      e.objectInfoAt = Date.now();
      e.status.nodeClasses = nodeClassesFromObjectInfo(info);
      e.status.models = modelsFromObjectInfo(info);
      e.status.capabilitiesAt = e.objectInfoAt;
    } catch (err) {
      e.status.lastError = `object_info: ${(err as Error).message}`;
    }
  }

  /** Opens the status socket of an up backend. */
  #follow(e: Entry): void {
    if (!this.#opts.followStatus || this.#abort.signal.aborted || e.removed) return;
    const clientId = `gov-health-${this.#monitorId}-${e.config.id}`;
    const p = (async () => {
      try {
        const socket = await e.client.connect(clientId, {
          onMessage: (m) => {
            if (m.type !== "status") return;
            const q = (m.data.status as { exec_info?: { queue_remaining?: unknown } } | undefined)
              ?.exec_info?.queue_remaining;
            if (typeof q !== "number") return;
            const before = signature(e.status);
            e.status.queueRemaining = q;
            this.#emit(e, false, before);
          },
          onClose: () => {
            if (e.socket === socket) {
              e.socket = undefined;
              this.#setSocketFlag(e, false);
            }
            this.#scheduleReconnect(e);
          },
        }, this.#opts.timeoutMs);
        if (this.#abort.signal.aborted || e.removed || e.status.state !== "up") {
          await socket.close();
          return;
        }
        e.socket = socket;
        e.backoffMs = 250;
        this.#setSocketFlag(e, true);
      } catch {
        // No /ws (404, proxy): probes still report the queue. Try again later.
        this.#scheduleReconnect(e);
      } finally {
        e.connecting = undefined;
      }
    })();
    e.connecting = p;
    this.#track(p);
  }

  #scheduleReconnect(e: Entry): void {
    if (!this.#running || e.removed || e.status.state !== "up" || e.reconnectTimer) return;
    const delay = e.backoffMs;
    e.backoffMs = Math.min(e.backoffMs * 2, 30_000);
    e.reconnectTimer = setTimeout(() => {
      e.reconnectTimer = undefined;
      if (!e.socket && !e.connecting) this.#follow(e);
    }, delay);
  }

  #clearReconnect(e: Entry): void {
    if (e.reconnectTimer !== undefined) clearTimeout(e.reconnectTimer);
    e.reconnectTimer = undefined;
  }

  async #closeSocket(e: Entry): Promise<void> {
    await e.connecting;
    const s = e.socket;
    e.socket = undefined;
    if (s) this.#setSocketFlag(e, false);
    await s?.close();
  }

  #setSocketFlag(e: Entry, open: boolean): void {
    const before = signature(e.status);
    e.status.statusSocket = open;
    this.#emit(e, false, before);
  }
}
