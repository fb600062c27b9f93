/**
 * A client for one ComfyUI backend over its HTTP and WebSocket API.
 *
 * Every request has its own timeout, so a wedged backend (port open, nobody answering)
 * surfaces as a {@linkcode BackendUnreachableError} instead of a hung job. Jobs carry their
 * own `prompt_id` and `client_id`, so a retry after a lost answer re-queues the same prompt
 * id (ComfyUI honours a client-chosen `prompt_id`) and the gateway can attach to a prompt a
 * backend already has. {@linkcode ComfyUIClient.runPrompt} follows a prompt to its end (the
 * state machine is in `run.ts`).
 *
 * @module
 */
import { GovError } from "../../errors.ts";
import type {
  HistoryEntry,
  NodeErrors,
  PromptErrorInfo,
  PromptLocation,
  SystemStats,
  WsMessage,
} from "../../comfyui/api.ts";
import type { ApiPrompt } from "../../comfyui/prompt.ts";
import type { BackendObjectInfo } from "../types.ts";
import {
  BackendHttpError,
  BackendUnreachableError,
  networkReason,
  PromptRejectedError,
} from "./errors.ts";
import type { RunResult } from "./history.ts";
import { type PromptApi, type RunOptions, runPrompt } from "./run.ts";
import { ComfyUISocket } from "./socket.ts";

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

function hostForUrl(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/**
 * Talks to one ComfyUI backend.
 *
 * @example
 * ```ts
 * const promptId = crypto.randomUUID();
 * const clientId = crypto.randomUUID();
 * const prompt = {};
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
export class ComfyUIClient implements PromptApi {
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
   * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
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
   * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
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
   * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
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
   * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
   * const promptId = crypto.randomUUID();
   * const clientId = crypto.randomUUID();
   * const prompt = {};
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
   * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
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
   * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
   * const promptId = crypto.randomUUID();
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
   * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
   * const promptId = crypto.randomUUID();
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
   * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
   * const promptId = crypto.randomUUID();
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
   * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
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
   * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
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
   * This client with `signal` added to its abort signal: what {@linkcode runPrompt} follows
   * a prompt with, so detaching ends a request stuck on a wedged backend at once instead of
   * after its timeout (failover must not wait for that).
   *
   * @example
   * ```ts
   * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
   * const follow = client.withSignal(AbortSignal.timeout(60_000));
   * ```
   */
  withSignal(signal: AbortSignal): ComfyUIClient {
    const both = this.#signal ? AbortSignal.any([this.#signal, signal]) : signal;
    return new ComfyUIClient({ ...this.#options, signal: both });
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
   * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
   * const promptId = crypto.randomUUID();
   * const clientId = crypto.randomUUID();
   * const prompt = {};
   * const r = await client.runPrompt(prompt, { promptId, clientId, onEvent: console.log });
   * if (r.status === "error") console.log(r.error?.message);
   * ```
   */
  runPrompt(prompt: PromptGraph, opts: RunOptions): Promise<RunResult> {
    return runPrompt(this, prompt, opts);
  }
}
