/**
 * A client for one ComfyUI backend over its HTTP and WebSocket API.
 *
 * Every request has its own timeout, so a wedged backend (port open, nobody answering)
 * surfaces as a {@linkcode BackendUnreachableError} instead of a hung job. Jobs carry their
 * own `prompt_id` and `client_id`, so a retry after a lost answer re-queues the same prompt
 * id (ComfyUI honours a client-chosen `prompt_id`) and the gateway can attach to a prompt a
 * backend already has. {@linkcode ComfyUIClient.runPrompt} follows a prompt over `/ws` and
 * falls back to polling `/history` when the socket cannot open (404, proxy without
 * WebSocket) or drops mid-job, and polls `/history` slowly even while the socket is up: that
 * catches missed messages and a backend that stops answering while its socket stays open.
 *
 * @module
 */
import { GovError } from "../errors.ts";
import type { ApiPrompt } from "../workflow/types.ts";
import type { BackendObjectInfo } from "./types.ts";

/** Where a backend is and how to authenticate. A `BackendConfig` fits. */
export interface ClientOptions {
  /** Host name or address (IPv6 with or without brackets). */
  host: string;
  /** TCP port. */
  port: number;
  /** Bearer token for an authenticating proxy in front of ComfyUI. */
  token?: string;
  /** Use https and wss. */
  tls?: boolean;
  /** Backend id, only used to name the backend in error messages. */
  id?: string;
  /** Default per-request timeout in milliseconds (10 000). */
  timeoutMs?: number;
  /** Aborting it ends every request (and socket opening) of this client at once. */
  signal?: AbortSignal;
}

/** An API-format prompt as ComfyUI's `POST /prompt` takes it (the workflow layer's type). */
export type PromptGraph = ApiPrompt;

/** What `GET /system_stats` answers (the parts gov reads; the rest is kept). */
export interface SystemStats {
  system: {
    os?: string;
    ram_total?: number;
    ram_free?: number;
    comfyui_version?: string;
    python_version?: string;
    pytorch_version?: string;
    embedded_python?: boolean;
    argv?: string[];
    [key: string]: unknown;
  };
  devices: {
    name?: string;
    type?: string;
    index?: number;
    vram_total?: number;
    vram_free?: number;
    torch_vram_total?: number;
    torch_vram_free?: number;
    [key: string]: unknown;
  }[];
}

/** One file a prompt produced, as `/history` lists it and `/view` serves it. */
export interface OutputRef {
  /** The node that produced it. */
  nodeId: string;
  /** File name inside the output folder. */
  filename: string;
  /** Sub-folder, "" for none. */
  subfolder: string;
  /** "output" for saved files, "temp" for previews. */
  type: string;
  /** Which list of the node's output it came from: "images", "gifs", "audio", ... */
  kind?: string;
}

/** One `/history/{id}` entry. */
export interface HistoryEntry {
  prompt?: unknown[];
  outputs?: Record<string, Record<string, unknown>>;
  status?: {
    status_str?: string;
    completed?: boolean;
    messages?: [string, Record<string, unknown>][];
  };
  meta?: Record<string, unknown>;
}

/** Where a prompt is on a backend. */
export type PromptLocation = "pending" | "running" | "done";

/** How a prompt ended. */
export interface RunResult {
  /** The prompt id. */
  promptId: string;
  /** success, error (ComfyUI's `execution_error`), or interrupted (cancelled). */
  status: "success" | "error" | "interrupted";
  /** Every file the output nodes listed, in node order. */
  outputs: OutputRef[];
  /** ComfyUI's exception, when the status is error (or a note when interrupted). */
  error?: { message: string; nodeId?: string; nodeType?: string; exceptionType?: string };
  /** How the end was observed: over `/ws`, or by polling `/history`. */
  transport: "ws" | "poll";
}

/**
 * Progress of a running prompt, as {@linkcode ComfyUIClient.runPrompt} reports it. `running`
 * comes from `/queue` when there is no socket (a socket reports `executing` instead).
 */
export type RunEvent =
  | { type: "queued"; promptId: string; number: number; transport: "ws" | "poll" }
  | { type: "running"; promptId: string }
  | { type: "executing"; promptId: string; node: string }
  | { type: "progress"; promptId: string; node?: string; value: number; max: number }
  | { type: "executed"; promptId: string; node: string; output: Record<string, unknown> }
  | { type: "cached"; promptId: string; nodes: string[] };

/** Options of {@linkcode ComfyUIClient.runPrompt}. */
export interface RunOptions {
  /** The prompt id to queue under (reuse it on retries). */
  promptId: string;
  /** The client id the `/ws` socket registers as; ComfyUI sends execution events only there. */
  clientId: string;
  /** Receives progress. Exceptions it throws are ignored. */
  onEvent?: (e: RunEvent) => void;
  /** Aborting cancels the prompt on the backend and resolves with status "interrupted". */
  signal?: AbortSignal;
  /**
   * Aborting stops following the prompt without cancelling it (it keeps running on the
   * backend); runPrompt then rejects with {@linkcode PromptDetachedError}.
   */
  detachSignal?: AbortSignal;
  /** `/history` poll interval without a socket (500 ms). */
  pollIntervalMs?: number;
  /** `/history` check interval while the socket is up (2 000 ms). */
  watchdogIntervalMs?: number;
  /** Consecutive failed polls before the backend counts as unreachable (3). */
  maxPollFailures?: number;
  /** How long to wait for `/ws` to open before falling back to polling (5 000 ms). */
  wsOpenTimeoutMs?: number;
  /** Passed to ComfyUI as `extra_data`. */
  extraData?: Record<string, unknown>;
  /**
   * The prompt may already be on this backend (a gateway restarted, a retry): look in
   * `/queue` and `/history` first and follow it there instead of queueing it again.
   */
  attach?: boolean;
  /** Never use `/ws` (tests, proxies known to break WebSockets). */
  noWebSocket?: boolean;
}

/** A message of ComfyUI's `/ws`. */
export interface WsMessage {
  type: string;
  data: Record<string, unknown>;
}

/**
 * The backend could not be reached or did not answer in time (refused, reset, DNS, timeout,
 * or a proxy in front of it answering 502/503/504). The gateway fails over on this error.
 *
 * @example
 * ```ts
 * import { BackendUnreachableError } from "@/backends/client.ts";
 * import { type ComfyUIClient } from "@/backends/client.ts";
 * declare const client: ComfyUIClient;
 * declare const failover: () => void;
 *
 * try { await client.probe(); } catch (e) { if (e instanceof BackendUnreachableError) failover(); }
 * ```
 */
export class BackendUnreachableError extends GovError {
  /** The backend's base URL. */
  url: string;
  /** Short reason: "connection refused", "no answer within 5000 ms", ... */
  reason: string;
  constructor(label: string, url: string, reason: string, options?: { cause?: unknown }) {
    super(`${label} is unreachable: ${reason}`, {
      hint: "check that ComfyUI runs there and the host/port in backends.toml are right",
      cause: options?.cause,
    });
    this.name = "BackendUnreachableError";
    this.url = url;
    this.reason = reason;
  }
}

/**
 * A prompt gov queued is neither in the backend's queue nor in its history any more: the
 * backend restarted (ComfyUI's queue is in memory) or someone deleted it there. A subclass
 * of {@linkcode BackendUnreachableError} so the gateway re-dispatches it.
 *
 * @example
 * ```ts
 * import { PromptLostError } from "@/backends/client.ts";
 * declare const err: unknown;
 *
 * if (err instanceof PromptLostError) console.log(`${err.promptId} vanished`);
 * ```
 */
export class PromptLostError extends BackendUnreachableError {
  /** The prompt that vanished. */
  promptId: string;
  constructor(label: string, url: string, promptId: string) {
    super(
      label,
      url,
      `prompt ${promptId} vanished from its queue and history (restarted, or deleted there)`,
    );
    this.name = "PromptLostError";
    this.promptId = promptId;
  }
}

/**
 * The backend answered with an HTTP error gov has no better name for (401, 404, 500, ...).
 *
 * @example
 * ```ts
 * import { BackendHttpError } from "@/backends/client.ts";
 * declare const err: unknown;
 *
 * if (err instanceof BackendHttpError && err.status === 401) console.log("bad token");
 * ```
 */
export class BackendHttpError extends GovError {
  /** HTTP status. */
  status: number;
  /** The start of the answer's body. */
  body: string;
  constructor(label: string, what: string, status: number, body: string, hint?: string) {
    const snippet = body.trim().replace(/\s+/g, " ").slice(0, 200);
    super(`${label} answered ${status} to ${what}${snippet ? `: ${snippet}` : ""}`, {
      hint: hint ??
        (status === 401 || status === 403
          ? "check the backend's token in backends.toml"
          : undefined),
    });
    this.name = "BackendHttpError";
    this.status = status;
    this.body = body;
  }
}

/** ComfyUI's top-level error object of a 400 from `POST /prompt`. */
export interface PromptErrorInfo {
  type: string;
  message: string;
  details: string;
  extra_info?: Record<string, unknown>;
}

/** ComfyUI's per-node validation errors of a 400 from `POST /prompt`. */
export type NodeErrors = Record<string, {
  errors: { type?: string; message?: string; details?: string; extra_info?: unknown }[];
  dependent_outputs?: string[];
  class_type?: string;
}>;

/**
 * Summarises ComfyUI's `node_errors` in one line, e.g.
 * `node 3 (KSampler): Value bigger than max: steps, 200 > 150`.
 *
 * @example
 * ```ts
 * import { summariseNodeErrors } from "@/backends/client.ts";
 *
 * summariseNodeErrors({ "3": { class_type: "KSampler", errors: [{ message: "Value bigger than max", details: "steps" }] } });
 * ```
 */
export function summariseNodeErrors(nodeErrors: NodeErrors): string {
  const parts: string[] = [];
  for (const [id, ne] of Object.entries(nodeErrors)) {
    const errs = (ne?.errors ?? []).map((e) =>
      [e.message, e.details].filter((x) => typeof x === "string" && x !== "").join(": ")
    ).filter(Boolean);
    parts.push(`node ${id}${ne?.class_type ? ` (${ne.class_type})` : ""}: ${errs.join("; ")}`);
  }
  return parts.join("; ");
}

/**
 * ComfyUI refused the prompt (HTTP 400): validation failed, an unknown node class, a missing
 * model in a COMBO. Retrying elsewhere with the same prompt will not help, so the gateway
 * fails such a job at once.
 *
 * @example
 * ```ts
 * import { PromptRejectedError } from "@/backends/client.ts";
 *
 * function report(e: unknown): void {
 *   if (e instanceof PromptRejectedError) console.log(e.nodeErrors);
 * }
 * ```
 */
export class PromptRejectedError extends GovError {
  /** ComfyUI's error object. */
  error: PromptErrorInfo;
  /** ComfyUI's per-node errors (empty when the error is not about one node). */
  nodeErrors: NodeErrors;
  constructor(label: string, error: PromptErrorInfo, nodeErrors: NodeErrors) {
    const head = [error.message, error.details].filter(Boolean).join(": ");
    const nodes = summariseNodeErrors(nodeErrors);
    super(`${label} rejected the prompt: ${[head, nodes].filter(Boolean).join("; ")}`, {
      hint: "fix the workflow (inputs, models, node classes) and submit it again",
    });
    this.name = "PromptRejectedError";
    this.error = error;
    this.nodeErrors = nodeErrors;
  }
}

/**
 * {@linkcode ComfyUIClient.runPrompt} stopped following a prompt because its `detachSignal`
 * fired; the prompt was left running on the backend.
 *
 * @example
 * ```ts
 * import { PromptDetachedError } from "@/backends/client.ts";
 *
 * function report(e: unknown): void {
 *   if (e instanceof PromptDetachedError) console.log("detached:", e.promptId);
 * }
 * ```
 */
export class PromptDetachedError extends GovError {
  /** The prompt left on the backend. */
  promptId: string;
  constructor(promptId: string) {
    super(`stopped following prompt ${promptId}; it was left on the backend`);
    this.name = "PromptDetachedError";
    this.promptId = promptId;
  }
}

/** Turns a fetch/WebSocket failure into a short human reason. */
function networkReason(err: unknown, timeoutMs: number, timedOut: boolean): string {
  if (timedOut) return `no answer within ${timeoutMs} ms`;
  // Deno's fetch says "fetch failed" and keeps the real failure in `cause`.
  const parts: string[] = [];
  for (let e = err, depth = 0; e && depth < 5; e = (e as Error).cause, depth++) {
    parts.push(String((e as Error)?.message ?? e));
  }
  const msg = parts.join(": ");
  if (/connection refused/i.test(msg)) return "connection refused";
  if (/connection reset/i.test(msg)) return "connection reset";
  if (/dns error|failed to lookup|name or service not known/i.test(msg)) {
    return "host name does not resolve";
  }
  if (/certificate|tls|ssl/i.test(msg)) return `TLS failure (${msg.split(": ").pop()})`;
  if (/unexpected eof|connection closed|incomplete message|broken pipe/i.test(msg)) {
    return "connection closed before the answer was complete";
  }
  return parts[parts.length - 1].split(": ").slice(-1)[0] || "network error";
}

function hostForUrl(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** Output lists in a node's history outputs that hold files (images, gifs, audio, ...). */
function outputsFromHistory(entry: HistoryEntry): OutputRef[] {
  const refs: OutputRef[] = [];
  for (const [nodeId, out] of Object.entries(entry.outputs ?? {})) {
    refs.push(...outputsFromNode(nodeId, out));
  }
  return refs;
}

function outputsFromNode(nodeId: string, out: Record<string, unknown>): OutputRef[] {
  const refs: OutputRef[] = [];
  for (const [kind, list] of Object.entries(out ?? {})) {
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      if (typeof item !== "object" || item === null) continue;
      const f = item as Record<string, unknown>;
      if (typeof f.filename !== "string") continue;
      refs.push({
        nodeId,
        filename: f.filename,
        subfolder: typeof f.subfolder === "string" ? f.subfolder : "",
        type: typeof f.type === "string" ? f.type : "output",
        kind,
      });
    }
  }
  return refs;
}

/**
 * Reads the outcome of a finished prompt from its history entry.
 *
 * @example
 * ```ts
 * import { resultFromHistory } from "@/backends/client.ts";
 * import { type ComfyUIClient } from "@/backends/client.ts";
 * declare const client: ComfyUIClient;
 *
 * const r = resultFromHistory("p1", await client.history("p1") ?? {}, "poll");
 * ```
 */
export function resultFromHistory(
  promptId: string,
  entry: HistoryEntry,
  transport: "ws" | "poll",
): RunResult {
  const messages = entry.status?.messages ?? [];
  const find = (t: string) => messages.find((m) => Array.isArray(m) && m[0] === t)?.[1];
  const outputs = outputsFromHistory(entry);
  const interrupted = find("execution_interrupted");
  if (interrupted) {
    return {
      promptId,
      status: "interrupted",
      outputs,
      error: {
        message: "interrupted",
        nodeId: strOrUndef(interrupted.node_id),
        nodeType: strOrUndef(interrupted.node_type),
      },
      transport,
    };
  }
  const failed = find("execution_error");
  if (entry.status?.status_str === "error" || failed) {
    return {
      promptId,
      status: "error",
      outputs,
      error: errorFromEvent(failed ?? {}),
      transport,
    };
  }
  return { promptId, status: "success", outputs, transport };
}

function strOrUndef(v: unknown): string | undefined {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : undefined;
}

function errorFromEvent(d: Record<string, unknown>): NonNullable<RunResult["error"]> {
  const message = typeof d.exception_message === "string" && d.exception_message.trim() !== ""
    ? d.exception_message.trim()
    : "ComfyUI reported an execution error";
  const e: NonNullable<RunResult["error"]> = { message };
  const nodeId = strOrUndef(d.node_id);
  if (nodeId !== undefined) e.nodeId = nodeId;
  const nodeType = strOrUndef(d.node_type);
  if (nodeType !== undefined) e.nodeType = nodeType;
  const exType = strOrUndef(d.exception_type);
  if (exType !== undefined) e.exceptionType = exType;
  return e;
}

/** A set of waiters that a message, a closed socket or an abort can wake early. */
class Waker {
  #waiting = new Set<() => void>();
  wake(): void {
    for (const w of [...this.#waiting]) w();
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiting.add(done);
    });
  }
}

/**
 * An open `/ws` connection to ComfyUI. Close it with {@linkcode ComfyUISocket.close}, which
 * resolves once the socket is really closed (so tests' resource sanitizers stay quiet).
 */
export class ComfyUISocket {
  #ws: WebSocket;
  #closed: Promise<void>;
  #open = true;
  private constructor(ws: WebSocket, closed: Promise<void>) {
    this.#ws = ws;
    this.#closed = closed;
    closed.then(() => this.#open = false);
  }

  /** Whether the socket is still open. */
  get isOpen(): boolean {
    return this.#open && this.#ws.readyState === WebSocket.OPEN;
  }

  /** Resolves when the socket has closed, whoever closed it. */
  get closed(): Promise<void> {
    return this.#closed;
  }

  /**
   * Opens `url`; resolves once open, rejects with {@linkcode BackendUnreachableError} when
   * it fails or takes longer than `timeoutMs` (a backend without `/ws` answers 404).
   *
   * @example
   * ```ts
   * import { ComfyUISocket } from "@/backends/client.ts";
   *
   * const s = await ComfyUISocket.open("ws://127.0.0.1:8188/ws?clientId=x", {}, { onMessage: console.log }, 5000, "gpu1");
   * await s.close();
   * ```
   */
  static open(
    url: string,
    headers: Record<string, string>,
    handlers: { onMessage?: (m: WsMessage) => void; onClose?: () => void },
    timeoutMs: number,
    label: string,
    signal?: AbortSignal,
  ): Promise<ComfyUISocket> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new BackendUnreachableError(label, url, "client closed"));
        return;
      }
      let ws: WebSocket;
      try {
        // Deno lets a WebSocket carry request headers, so the token travels like on HTTP.
        ws = new WebSocket(url, { headers } as unknown as string[]);
      } catch (err) {
        reject(new BackendUnreachableError(label, url, networkReason(err, timeoutMs, false)));
        return;
      }
      ws.binaryType = "arraybuffer";
      let settled = false;
      let resolveClosed!: () => void;
      const closed = new Promise<void>((r) => resolveClosed = r);
      const giveUp = (reason: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        ws.close();
        closed.then(() => reject(new BackendUnreachableError(label, url, reason)));
      };
      const timer = setTimeout(
        () => giveUp(`websocket did not open in ${timeoutMs} ms`),
        timeoutMs,
      );
      const onAbort = () => giveUp("client closed");
      signal?.addEventListener("abort", onAbort);
      ws.onopen = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        resolve(new ComfyUISocket(ws, closed));
      };
      ws.onmessage = (e: MessageEvent) => {
        if (typeof e.data !== "string") return; // binary frames are previews
        let msg: WsMessage;
        try {
          msg = JSON.parse(e.data);
        } catch {
          return;
        }
        if (typeof msg?.type !== "string") return;
        if (typeof msg.data !== "object" || msg.data === null) msg.data = {};
        try {
          handlers.onMessage?.(msg);
        } catch {
          // A listener's bug must not kill the socket.
        }
      };
      ws.onerror = () => {};
      ws.onclose = (e: CloseEvent) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        resolveClosed();
        if (!settled) {
          settled = true;
          reject(
            new BackendUnreachableError(
              label,
              url,
              `websocket refused (${e.reason || `close code ${e.code}`})`,
            ),
          );
          return;
        }
        try {
          handlers.onClose?.();
        } catch {
          // as above
        }
      };
    });
  }

  /** Closes the socket and waits until it is closed. */
  async close(): Promise<void> {
    if (this.#ws.readyState === WebSocket.CONNECTING || this.#ws.readyState === WebSocket.OPEN) {
      this.#ws.close();
    }
    await this.#closed;
  }
}

/**
 * Talks to one ComfyUI backend.
 *
 * @example
 * ```ts
 * import { ComfyUIClient } from "@/backends/client.ts";
 * import { type ApiPrompt } from "@/workflow/types.ts";
 * declare const prompt: ApiPrompt;
 *
 * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
 * const { queueRemaining } = await client.probe();
 * const result = await client.runPrompt(prompt, {
 *   promptId: crypto.randomUUID(),
 *   clientId: crypto.randomUUID(),
 *   onEvent: (e) => console.log(e.type),
 * });
 * for (const o of result.outputs) await Deno.writeFile(o.filename, await client.view(o));
 * ```
 */
export class ComfyUIClient {
  /** `http://host:port` (or https). */
  readonly baseUrl: string;
  /** `ws://host:port` (or wss). */
  readonly wsBaseUrl: string;
  /** Default per-request timeout in ms. */
  readonly timeoutMs: number;
  /** How the backend is named in errors. */
  readonly label: string;
  #token?: string;
  #signal?: AbortSignal;
  #options: ClientOptions;

  constructor(opts: ClientOptions) {
    this.#options = opts;
    const host = hostForUrl(opts.host);
    this.baseUrl = `${opts.tls ? "https" : "http"}://${host}:${opts.port}`;
    this.wsBaseUrl = `${opts.tls ? "wss" : "ws"}://${host}:${opts.port}`;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.#token = opts.token;
    this.#signal = opts.signal;
    this.label = opts.id ? `backend '${opts.id}' (${this.baseUrl})` : `backend ${this.baseUrl}`;
  }

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (this.#token) h.Authorization = `Bearer ${this.#token}`;
    return h;
  }

  /**
   * One HTTP request with a timeout covering the body too. Network failures, timeouts and
   * proxy gateway errors become BackendUnreachableError; other statuses are returned.
   */
  async #send(
    method: string,
    path: string,
    opts: { body?: unknown; timeoutMs?: number; read?: "json" | "bytes" } = {},
  ): Promise<{ status: number; json?: unknown; bytes?: Uint8Array; text: string }> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, timeoutMs);
    const onAbort = () => ac.abort();
    this.#signal?.addEventListener("abort", onAbort);
    const url = this.baseUrl + path;
    try {
      if (this.#signal?.aborted) throw new Error("client closed");
      const res = await fetch(url, {
        method,
        headers: this.#headers(
          opts.body !== undefined ? { "Content-Type": "application/json" } : {},
        ),
        body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
        signal: ac.signal,
      });
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (res.status === 502 || res.status === 503 || res.status === 504) {
        throw new BackendUnreachableError(
          this.label,
          this.baseUrl,
          `the proxy in front of it answered ${res.status} ${res.statusText}`.trim(),
        );
      }
      const ok = res.status >= 200 && res.status < 300;
      if (!ok || opts.read === "bytes") {
        return { status: res.status, bytes, text: ok ? "" : new TextDecoder().decode(bytes) };
      }
      const text = new TextDecoder().decode(bytes);
      if (opts.read === "json") {
        try {
          return { status: res.status, json: JSON.parse(text), text };
        } catch {
          throw new BackendHttpError(
            this.label,
            `${method} ${path}`,
            res.status,
            text,
            "it did not answer JSON: is this a ComfyUI server?",
          );
        }
      }
      return { status: res.status, text };
    } catch (err) {
      if (err instanceof GovError) throw err;
      throw new BackendUnreachableError(
        this.label,
        this.baseUrl,
        networkReason(err, timeoutMs, timedOut),
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
      this.#signal?.removeEventListener("abort", onAbort);
    }
  }

  async #getJson<T>(path: string, timeoutMs?: number): Promise<T> {
    const r = await this.#send("GET", path, { read: "json", timeoutMs });
    if (r.status < 200 || r.status >= 300) {
      throw new BackendHttpError(this.label, `GET ${path}`, r.status, r.text);
    }
    return r.json as T;
  }

  /**
   * The cheapest liveness check: `GET /prompt`, ComfyUI's queue_remaining (running plus
   * pending prompts).
   *
   * @example
   * ```ts
   * import { type ComfyUIClient } from "@/backends/client.ts";
   * declare const client: ComfyUIClient;
   *
   * const { queueRemaining } = await client.probe(2000);
   * ```
   */
  async probe(timeoutMs?: number): Promise<{ queueRemaining: number }> {
    const j = await this.#getJson<{ exec_info?: { queue_remaining?: unknown } }>(
      "/prompt",
      timeoutMs,
    );
    const q = j?.exec_info?.queue_remaining;
    if (typeof q !== "number") {
      throw new BackendHttpError(
        this.label,
        "GET /prompt",
        200,
        JSON.stringify(j).slice(0, 200),
        "no exec_info.queue_remaining in the answer: is this a ComfyUI server?",
      );
    }
    return { queueRemaining: q };
  }

  /**
   * `GET /system_stats`: versions, RAM, and per-device VRAM.
   *
   * @example
   * ```ts
   * import { type ComfyUIClient } from "@/backends/client.ts";
   * declare const client: ComfyUIClient;
   *
   * const s = await client.systemStats();
   * console.log(s.system.comfyui_version, s.devices[0]?.vram_free);
   * ```
   */
  async systemStats(timeoutMs?: number): Promise<SystemStats> {
    const j = await this.#getJson<Partial<SystemStats>>("/system_stats", timeoutMs);
    return {
      ...j,
      system: typeof j?.system === "object" && j.system ? j.system : {},
      devices: Array.isArray(j?.devices) ? j.devices : [],
    };
  }

  /**
   * `GET /object_info`: every node class the backend has, with input specs. It can be large
   * (megabytes with many custom nodes), hence a longer default timeout.
   *
   * @example
   * ```ts
   * import { type ComfyUIClient } from "@/backends/client.ts";
   * declare const client: ComfyUIClient;
   *
   * const info = await client.objectInfo();
   * console.log(Object.keys(info).length, "node classes");
   * ```
   */
  async objectInfo(timeoutMs = Math.max(this.timeoutMs, 60_000)): Promise<BackendObjectInfo> {
    const j = await this.#getJson<unknown>("/object_info", timeoutMs);
    if (typeof j !== "object" || j === null || Array.isArray(j)) {
      throw new BackendHttpError(this.label, "GET /object_info", 200, "", "not an object");
    }
    return j as BackendObjectInfo;
  }

  /**
   * Queues a prompt under our own `prompt_id` and `client_id`. Throws
   * {@linkcode PromptRejectedError} on a 400 (never worth retrying) and
   * {@linkcode BackendUnreachableError} when the backend cannot be reached.
   *
   * @example
   * ```ts
   * import { type ComfyUIClient } from "@/backends/client.ts";
   * import { type ApiPrompt } from "@/workflow/types.ts";
   * declare const prompt: ApiPrompt;
   *
   * declare const client: ComfyUIClient;
   * declare const clientId: string;
   * declare const promptId: string;
   *
   * const { prompt_id, number } = await client.queuePrompt(prompt, { promptId, clientId });
   * ```
   */
  async queuePrompt(
    prompt: PromptGraph,
    opts: { promptId: string; clientId: string; extraData?: Record<string, unknown> },
  ): Promise<{ prompt_id: string; number: number }> {
    const body: Record<string, unknown> = {
      prompt,
      client_id: opts.clientId,
      prompt_id: opts.promptId,
    };
    if (opts.extraData) body.extra_data = opts.extraData;
    const r = await this.#send("POST", "/prompt", { body, read: "json" });
    if (r.status === 400) {
      let j: { error?: unknown; node_errors?: unknown } = {};
      try {
        j = JSON.parse(r.text);
      } catch {
        // Some proxies answer 400 with HTML; keep the text as the message.
      }
      const e = typeof j.error === "object" && j.error !== null
        ? j.error as Partial<PromptErrorInfo>
        : { message: typeof j.error === "string" ? j.error : r.text.slice(0, 200) };
      const nodeErrors =
        typeof j.node_errors === "object" && j.node_errors && !Array.isArray(j.node_errors)
          ? j.node_errors as NodeErrors
          : {};
      throw new PromptRejectedError(
        this.label,
        {
          type: e.type ?? "invalid_prompt",
          message: e.message ?? "invalid prompt",
          details: e.details ?? "",
          extra_info: e.extra_info,
        },
        nodeErrors,
      );
    }
    if (r.status < 200 || r.status >= 300) {
      throw new BackendHttpError(this.label, "POST /prompt", r.status, r.text);
    }
    const j = r.json as { prompt_id?: unknown; number?: unknown };
    return {
      prompt_id: typeof j?.prompt_id === "string" ? j.prompt_id : opts.promptId,
      number: typeof j?.number === "number" ? j.number : -1,
    };
  }

  /**
   * `GET /queue` reduced to prompt ids: which are running and which wait.
   *
   * @example
   * ```ts
   * import { type ComfyUIClient } from "@/backends/client.ts";
   * declare const client: ComfyUIClient;
   *
   * const { running, pending } = await client.queue();
   * ```
   */
  async queue(timeoutMs?: number): Promise<{ running: string[]; pending: string[] }> {
    const j = await this.#getJson<{ queue_running?: unknown[]; queue_pending?: unknown[] }>(
      "/queue",
      timeoutMs,
    );
    const ids = (list: unknown) =>
      Array.isArray(list)
        ? list.map((e) => Array.isArray(e) ? String(e[1]) : "").filter((x) => x !== "")
        : [];
    return { running: ids(j?.queue_running), pending: ids(j?.queue_pending) };
  }

  /**
   * `GET /history/{id}`: the entry once the prompt finished, or undefined while it is
   * pending, running, or unknown.
   *
   * @example
   * ```ts
   * import { type ComfyUIClient } from "@/backends/client.ts";
   * declare const client: ComfyUIClient;
   * declare const promptId: string;
   *
   * const entry = await client.history(promptId);
   * if (entry) console.log(entry.status?.status_str);
   * ```
   */
  async history(promptId: string, timeoutMs?: number): Promise<HistoryEntry | undefined> {
    const j = await this.#getJson<Record<string, HistoryEntry>>(
      `/history/${encodeURIComponent(promptId)}`,
      timeoutMs,
    );
    const entry = j?.[promptId];
    return typeof entry === "object" && entry !== null ? entry : undefined;
  }

  /**
   * Where a prompt is on this backend: pending, running, done (in history), or undefined.
   * Asks `/queue` before `/history`: ComfyUI moves a finished prompt from one to the other
   * at once, so this order cannot miss one that finishes in between.
   *
   * @example
   * ```ts
   * import { type ComfyUIClient } from "@/backends/client.ts";
   * declare const client: ComfyUIClient;
   * declare const promptId: string;
   *
   * if (await client.locate(promptId) === undefined) console.log("not there");
   * ```
   */
  async locate(promptId: string, timeoutMs?: number): Promise<PromptLocation | undefined> {
    const q = await this.queue(timeoutMs);
    if (q.running.includes(promptId)) return "running";
    if (q.pending.includes(promptId)) return "pending";
    return (await this.history(promptId, timeoutMs)) ? "done" : undefined;
  }

  /**
   * Cancels a prompt: deletes it from the pending queue, and interrupts it when it is the
   * one running. The interrupt is only sent when `/queue` shows our prompt running, because
   * an older ComfyUI ignores the `prompt_id` and would interrupt whatever runs.
   *
   * @example
   * ```ts
   * import { type ComfyUIClient } from "@/backends/client.ts";
   * declare const client: ComfyUIClient;
   * declare const promptId: string;
   *
   * const { deleted, interrupted } = await client.cancel(promptId);
   * ```
   */
  async cancel(promptId: string): Promise<{ deleted: boolean; interrupted: boolean }> {
    const before = await this.queue();
    const wasPending = before.pending.includes(promptId);
    await this.#expectOk("POST", "/queue", { delete: [promptId] });
    const after = await this.queue();
    let interrupted = false;
    if (after.running.includes(promptId)) {
      await this.#expectOk("POST", "/interrupt", { prompt_id: promptId });
      interrupted = true;
    }
    return { deleted: wasPending && !after.running.includes(promptId), interrupted };
  }

  async #expectOk(method: string, path: string, body: unknown): Promise<void> {
    const r = await this.#send(method, path, { body });
    if (r.status < 200 || r.status >= 300) {
      throw new BackendHttpError(this.label, `${method} ${path}`, r.status, r.text);
    }
  }

  /**
   * Fetches an output file through `GET /view`.
   *
   * @example
   * ```ts
   * import { type ComfyUIClient } from "@/backends/client.ts";
   * declare const client: ComfyUIClient;
   *
   * const png = await client.view({ filename: "ComfyUI_00001_.png", subfolder: "", type: "output" });
   * ```
   */
  async view(
    ref: { filename: string; subfolder?: string; type?: string },
    timeoutMs = Math.max(this.timeoutMs, 60_000),
  ): Promise<Uint8Array> {
    const q = new URLSearchParams({
      filename: ref.filename,
      subfolder: ref.subfolder ?? "",
      type: ref.type ?? "output",
    });
    const path = `/view?${q}`;
    const r = await this.#send("GET", path, { read: "bytes", timeoutMs });
    if (r.status < 200 || r.status >= 300) {
      throw new BackendHttpError(
        this.label,
        `GET ${path}`,
        r.status,
        r.text,
        r.status === 404 ? `the backend has no ${ref.type ?? "output"} file ${ref.filename}` : "",
      );
    }
    return r.bytes!;
  }

  /**
   * Opens `/ws?clientId=...`. Used by {@linkcode runPrompt} and by the health monitor to
   * follow `status` messages.
   *
   * @example
   * ```ts
   * import { type ComfyUIClient } from "@/backends/client.ts";
   * declare const client: ComfyUIClient;
   *
   * const s = await client.connect("monitor-1", { onMessage: (m) => console.log(m.type) });
   * await s.close();
   * ```
   */
  connect(
    clientId: string,
    handlers: { onMessage?: (m: WsMessage) => void; onClose?: () => void },
    timeoutMs = 5_000,
  ): Promise<ComfyUISocket> {
    const url = `${this.wsBaseUrl}/ws?clientId=${encodeURIComponent(clientId)}`;
    return ComfyUISocket.open(url, this.#headers(), handlers, timeoutMs, this.label, this.#signal);
  }

  /**
   * This client with `detach` added to its abort signal: what {@linkcode runPrompt} follows
   * a prompt with, so detaching ends a request stuck on a wedged backend at once instead of
   * after its timeout (failover must not wait for that).
   */
  #detachable(detach: AbortSignal | undefined): ComfyUIClient {
    if (!detach) return this;
    const signal = this.#signal ? AbortSignal.any([this.#signal, detach]) : detach;
    return new ComfyUIClient({ ...this.#options, signal });
  }

  /**
   * Queues a prompt and follows it to its end. Progress goes to `onEvent`. Resolves with
   * the outcome (success, error with ComfyUI's exception, interrupted); rejects with
   * {@linkcode PromptRejectedError} when ComfyUI refuses it, and with
   * {@linkcode BackendUnreachableError} when the backend goes away (the prompt may be
   * re-dispatched elsewhere with the same prompt id).
   *
   * @example
   * ```ts
   * import { type ComfyUIClient } from "@/backends/client.ts";
   * import { type ApiPrompt } from "@/workflow/types.ts";
   * declare const prompt: ApiPrompt;
   *
   * declare const client: ComfyUIClient;
   * declare const clientId: string;
   * declare const promptId: string;
   *
   * const r = await client.runPrompt(prompt, { promptId, clientId, onEvent: console.log });
   * if (r.status === "error") console.log(r.error?.message);
   * ```
   */
  async runPrompt(prompt: PromptGraph, opts: RunOptions): Promise<RunResult> {
    const { promptId } = opts;
    const pollMs = opts.pollIntervalMs ?? 500;
    const watchdogMs = opts.watchdogIntervalMs ?? 2_000;
    const maxFailures = opts.maxPollFailures ?? 3;
    const waker = new Waker();
    // Socket messages can beat the answer to POST /prompt; hold them so "queued" is first.
    let held: RunEvent[] | undefined = [];
    const emit = (e: RunEvent) => {
      if (held && e.type !== "queued") {
        held.push(e);
        return;
      }
      try {
        opts.onEvent?.(e);
      } catch {
        // The caller's listener must not break the job.
      }
      if (e.type === "queued" && held) {
        const later = held;
        held = undefined;
        for (const h of later) emit(h);
      }
    };
    // What the socket told us; /history stays the authority on the outcome and outputs.
    let finishedOverWs = false;
    // Whether the prompt was seen executing (over /ws, or in /queue's running list).
    let started = false;
    const wsOutputs = new Map<string, Record<string, unknown>>();
    const onMessage = (m: WsMessage) => {
      const d = m.data;
      if (d.prompt_id !== promptId) return;
      switch (m.type) {
        case "executing":
          if (d.node === null || d.node === undefined) finishedOverWs = true;
          else {
            started = true;
            emit({ type: "executing", promptId, node: String(d.node) });
          }
          break;
        case "progress":
          emit({
            type: "progress",
            promptId,
            node: d.node == null ? undefined : String(d.node),
            value: Number(d.value),
            max: Number(d.max),
          });
          break;
        case "executed": {
          const output = typeof d.output === "object" && d.output !== null
            ? d.output as Record<string, unknown>
            : {};
          wsOutputs.set(String(d.node), output);
          emit({ type: "executed", promptId, node: String(d.node), output });
          break;
        }
        case "execution_cached":
          emit({
            type: "cached",
            promptId,
            nodes: Array.isArray(d.nodes) ? d.nodes.map(String) : [],
          });
          break;
        case "execution_success":
        case "execution_error":
        case "execution_interrupted":
          finishedOverWs = true;
          break;
      }
      waker.wake();
    };
    const onAbort = () => waker.wake();
    opts.signal?.addEventListener("abort", onAbort);
    opts.detachSignal?.addEventListener("abort", onAbort);

    // Requests that follow the prompt end the moment the caller detaches; a cancel does not.
    const follow = this.#detachable(opts.detachSignal);
    let socket: ComfyUISocket | undefined;
    try {
      if (opts.signal?.aborted) return this.#cancelled(promptId, false, "poll");
      if (!opts.noWebSocket) {
        try {
          socket = await follow.connect(
            opts.clientId,
            { onMessage, onClose: onAbort },
            opts.wsOpenTimeoutMs,
          );
        } catch {
          // No usable /ws: poll /history instead. An unreachable backend shows up below.
          socket = undefined;
        }
      }
      let queued = false;
      if (opts.attach) {
        const where = await follow.locate(promptId);
        if (where === "done") {
          const entry = await follow.history(promptId);
          if (entry) return resultFromHistory(promptId, entry, "poll");
        }
        queued = where !== undefined;
      }
      const number = queued ? -1 : (await follow.#queueIdempotent(prompt, opts)).number;
      emit({ type: "queued", promptId, number, transport: socket?.isOpen ? "ws" : "poll" });

      let failures = 0;
      let absent = 0;
      let polls = 0;
      let lastCheck = Date.now();
      let finishWaitStart = 0;
      while (true) {
        if (opts.detachSignal?.aborted) throw new PromptDetachedError(promptId);
        const wsUp = socket?.isOpen === true;
        if (opts.signal?.aborted) return this.#cancelled(promptId, true, wsUp ? "ws" : "poll");
        if (finishedOverWs) {
          // The socket said done; /history is written right around then, so poll briskly.
          if (!finishWaitStart) finishWaitStart = Date.now();
        } else {
          // With a socket, /history is only a watchdog; without one it is the only news.
          const wait = lastCheck + (wsUp ? watchdogMs : pollMs) - Date.now();
          if (wait > 0) {
            await waker.sleep(wait);
            continue;
          }
        }
        lastCheck = Date.now();
        polls++;
        let entry: HistoryEntry | undefined;
        try {
          entry = await follow.history(promptId);
          failures = 0;
        } catch (err) {
          if (!(err instanceof BackendUnreachableError)) throw err;
          if (++failures >= maxFailures) throw err;
          continue;
        }
        if (entry) {
          const r = resultFromHistory(promptId, entry, finishedOverWs ? "ws" : "poll");
          if (r.outputs.length === 0 && wsOutputs.size > 0) {
            for (const [node, out] of wsOutputs) r.outputs.push(...outputsFromNode(node, out));
          }
          return r;
        }
        if (finishedOverWs) {
          if (Date.now() - finishWaitStart > 15_000) {
            throw new PromptLostError(this.label, this.baseUrl, promptId);
          }
          await waker.sleep(50);
          continue;
        }
        // Not finished: is it still queued? A restarted ComfyUI has forgotten its queue.
        // The first look comes early: without a socket it is the only news that it started.
        if (polls % 4 === 1) {
          let where: PromptLocation | undefined;
          try {
            where = await follow.locate(promptId);
          } catch (err) {
            if (!(err instanceof BackendUnreachableError)) throw err;
            if (++failures >= maxFailures) throw err;
            continue;
          }
          absent = where === undefined ? absent + 1 : 0;
          if (absent >= 2) throw new PromptLostError(this.label, this.baseUrl, promptId);
          if (where === "running" && !started) {
            started = true;
            emit({ type: "running", promptId });
          }
          if (where === "done") lastCheck = 0;
        }
      }
    } catch (err) {
      // A request the detach cut short says "unreachable"; the caller asked for this.
      if (opts.detachSignal?.aborted && err instanceof BackendUnreachableError) {
        throw new PromptDetachedError(promptId);
      }
      throw err;
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
      opts.detachSignal?.removeEventListener("abort", onAbort);
      await socket?.close();
    }
  }

  async #cancelled(
    promptId: string,
    queued: boolean,
    transport: "ws" | "poll",
  ): Promise<RunResult> {
    if (queued) {
      try {
        await this.cancel(promptId);
      } catch {
        // Best effort: the backend may be gone, which cancels the prompt too.
      }
    }
    return {
      promptId,
      status: "interrupted",
      outputs: [],
      error: { message: "cancelled" },
      transport,
    };
  }

  /**
   * POST /prompt; when the answer is lost to a network error, looks whether the backend got
   * it anyway before sending it once more under the same prompt id.
   */
  async #queueIdempotent(
    prompt: PromptGraph,
    opts: RunOptions,
  ): Promise<{ prompt_id: string; number: number }> {
    try {
      return await this.queuePrompt(prompt, opts);
    } catch (err) {
      if (!(err instanceof BackendUnreachableError)) throw err;
      let where: PromptLocation | undefined;
      try {
        where = await this.locate(opts.promptId);
      } catch {
        throw err;
      }
      if (where !== undefined) return { prompt_id: opts.promptId, number: -1 };
      return await this.queuePrompt(prompt, opts);
    }
  }
}
