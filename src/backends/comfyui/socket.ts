/**
 * ComfyUI's `/ws` socket: open with a timeout and an abort signal, deliver JSON messages,
 * close and wait until closed.
 *
 * @module
 */
import type { WsMessage } from "../../comfyui/api.ts";
import { BackendUnreachableError, networkReason } from "./errors.ts";

/**
 * Frames no client of this socket reads, recognised before parsing: ComfyUI sends
 * `progress_state` (every node's state, each time any node moves) several times per node,
 * more than all other messages of a prompt together, and it writes the type first
 * (`{"type": "progress_state", ...}`).
 */
const UNREAD = /^\{\s*"type"\s*:\s*"progress_state"/;

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
        if (UNREAD.test(e.data)) return;
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
