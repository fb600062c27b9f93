/**
 * One long-lived `/ws` per backend, shared by every prompt the gateway follows there.
 * ComfyUI sends a prompt's execution events to the socket of the `client_id` the prompt was
 * queued with, so prompts queued under one gateway-wide client id can all be followed over
 * one socket: no WebSocket handshake per job. Messages are routed by their `prompt_id` to
 * the one follower that asked for it (a lookup, never a scan of all followers).
 *
 * @module
 */
import type { HistoryEntry, PromptLocation, WsMessage } from "../../comfyui/api.ts";
import type { ApiPrompt } from "../../comfyui/prompt.ts";
import { BackendUnreachableError } from "./errors.ts";
import type { PromptApi, PromptSocket } from "./run.ts";

/** What a follower of the shared socket is told. */
export interface SocketHandlers {
  onMessage?: (m: WsMessage) => void;
  onClose?: () => void;
}

interface Follower {
  handlers: SocketHandlers;
  closed: boolean;
}

/**
 * The shared socket of one backend under one client id. Opened on first use, opened again
 * on the first use after it closed (a backend restart); a socket that could not be opened
 * is not tried again for `retryAfterMs`, so behind a proxy without WebSocket each job does
 * not wait for the open to time out.
 *
 * @example
 * ```ts
 * import { ComfyUIClient } from "@/backends/comfyui/client.ts";
 * import { SharedSocket } from "@/backends/comfyui/shared_socket.ts";
 *
 * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
 * const shared = new SharedSocket(client, "gov-gateway-1");
 * const api = shared.api(client); // runPrompt(api, prompt, { clientId: shared.clientId, ... })
 * await shared.close();
 * ```
 */
export class SharedSocket {
  #base: PromptApi;
  #socket?: PromptSocket;
  #opening?: Promise<PromptSocket>;
  #failedAt = -Infinity;
  #byPrompt = new Map<string, Follower>();
  #all = new Set<Follower>();
  #closed = false;

  /**
   * `base` opens the socket: a client without a per-job abort signal, since the socket
   * outlives every job.
   */
  constructor(
    base: PromptApi,
    readonly clientId: string,
    readonly retryAfterMs = 5_000,
  ) {
    this.#base = base;
  }

  /** The base URL of the backend this socket belongs to. */
  get baseUrl(): string {
    return this.#base.baseUrl;
  }

  /** Whether the socket is open now. */
  get isOpen(): boolean {
    return this.#socket?.isOpen === true;
  }

  #dispatch(m: WsMessage): void {
    const pid = m.data?.prompt_id;
    if (typeof pid === "string") {
      const f = this.#byPrompt.get(pid);
      if (f && !f.closed) f.handlers.onMessage?.(m);
    }
    for (const f of this.#all) if (!f.closed) f.handlers.onMessage?.(m);
  }

  #lost(socket: PromptSocket): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    const everyone = [...this.#byPrompt.values(), ...this.#all];
    for (const f of everyone) {
      if (f.closed) continue;
      try {
        f.handlers.onClose?.();
      } catch {
        // One follower's bug must not keep the others from hearing it.
      }
    }
  }

  #open(timeoutMs?: number): Promise<PromptSocket> {
    if (this.#socket?.isOpen) return Promise.resolve(this.#socket);
    if (this.#opening) return this.#opening;
    if (this.#closed) {
      return Promise.reject(
        new BackendUnreachableError(this.#base.label, this.#base.baseUrl, "client closed"),
      );
    }
    if (Date.now() - this.#failedAt < this.retryAfterMs) {
      return Promise.reject(
        new BackendUnreachableError(
          this.#base.label,
          this.#base.baseUrl,
          "websocket unavailable (tried a moment ago)",
        ),
      );
    }
    let opened: PromptSocket | undefined;
    const p = this.#base.connect(this.clientId, {
      onMessage: (m) => this.#dispatch(m),
      onClose: () => opened && this.#lost(opened),
    }, timeoutMs).then(
      (s) => {
        opened = s;
        this.#opening = undefined;
        if (this.#closed) {
          s.close();
          throw new BackendUnreachableError(this.#base.label, this.#base.baseUrl, "client closed");
        }
        this.#socket = s;
        return s;
      },
      (err) => {
        this.#opening = undefined;
        this.#failedAt = Date.now();
        throw err;
      },
    );
    this.#opening = p;
    return p;
  }

  /**
   * Follows the socket: messages about `promptId` (every message when it is undefined) go
   * to `handlers`, and `onClose` when the socket closes. Closing the returned lease stops
   * following; the socket stays open for the next prompt.
   */
  async follow(
    promptId: string | undefined,
    handlers: SocketHandlers,
    timeoutMs?: number,
  ): Promise<PromptSocket> {
    const socket = await this.#open(timeoutMs);
    const f: Follower = { handlers, closed: false };
    if (promptId === undefined) this.#all.add(f);
    else this.#byPrompt.set(promptId, f);
    const forget = () => {
      f.closed = true;
      if (promptId === undefined) this.#all.delete(f);
      else if (this.#byPrompt.get(promptId) === f) this.#byPrompt.delete(promptId);
    };
    return {
      get isOpen() {
        return !f.closed && socket.isOpen;
      },
      close() {
        forget();
        return Promise.resolve();
      },
    };
  }

  /**
   * `api` with its `connect` following this shared socket instead of opening one: what
   * `runPrompt` is given. `withSignal` keeps the sharing (a detached job lets go of its
   * lease, never of the socket).
   */
  api(api: PromptApi): PromptApi {
    return new SharedSocketApi(api, this);
  }

  /** Closes the socket for good (the gateway stops); followers hear `onClose`. */
  async close(): Promise<void> {
    this.#closed = true;
    const s = this.#socket ?? await this.#opening?.catch(() => undefined);
    await s?.close();
  }
}

/** A {@linkcode PromptApi} whose sockets are leases on a {@linkcode SharedSocket}. */
class SharedSocketApi implements PromptApi {
  constructor(private readonly inner: PromptApi, private readonly shared: SharedSocket) {}
  get label(): string {
    return this.inner.label;
  }
  get baseUrl(): string {
    return this.inner.baseUrl;
  }
  queuePrompt(
    prompt: ApiPrompt,
    opts: { promptId: string; clientId: string; extraData?: Record<string, unknown> },
  ): Promise<{ prompt_id: string; number: number }> {
    return this.inner.queuePrompt(prompt, opts);
  }
  history(promptId: string): Promise<HistoryEntry | undefined> {
    return this.inner.history(promptId);
  }
  locate(promptId: string): Promise<PromptLocation | undefined> {
    return this.inner.locate(promptId);
  }
  cancel(promptId: string): Promise<{ deleted: boolean; interrupted: boolean }> {
    return this.inner.cancel(promptId);
  }
  connect(
    _clientId: string,
    handlers: SocketHandlers & { promptId?: string },
    timeoutMs?: number,
  ): Promise<PromptSocket> {
    return this.shared.follow(handlers.promptId, handlers, timeoutMs);
  }
  withSignal(signal: AbortSignal): PromptApi {
    return new SharedSocketApi(this.inner.withSignal(signal), this.shared);
  }
}
