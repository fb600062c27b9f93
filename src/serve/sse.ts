/**
 * Server-sent events: a response whose body the gateway writes events into, and the set of
 * open streams so a shutdown can end them (an open stream would otherwise keep the HTTP
 * server waiting forever).
 *
 * @module
 */

/** One open event stream. */
export interface SseStream {
  /** Sends an event; false once the stream is closed. */
  send(event: string, data: unknown, id?: number): boolean;
  /** Sends a comment line (keeps proxies from timing the stream out). */
  comment(text: string): boolean;
  /** Ends the stream. */
  close(): void;
  /** Whether the stream is closed (by us or by the client). */
  readonly closed: boolean;
}

/**
 * Creates event streams and remembers the open ones.
 *
 * @example
 * ```ts
 * import { SseHub } from "@/serve/sse.ts";
 *
 * const hub = new SseHub();
 * const { response, stream } = hub.open();
 * stream.send("queued", { id: "x" }, 1);
 * hub.closeAll();
 * ```
 */
export class SseHub {
  #open = new Set<SseStream>();
  #heartbeatMs: number;

  constructor(opts: { heartbeatMs?: number } = {}) {
    this.#heartbeatMs = opts.heartbeatMs ?? 15_000;
  }

  /** Streams open right now. */
  get size(): number {
    return this.#open.size;
  }

  /**
   * Opens a stream; `onClose` runs once when it ends, whoever ends it.
   *
   * @example
   * ```ts
   * declare const hub: SseHub, unsubscribe: () => void;
   * const { response, stream } = hub.open(() => unsubscribe());
   * ```
   */
  open(onClose?: () => void, headers: Record<string, string> = {}): {
    response: Response;
    stream: SseStream;
  } {
    const enc = new TextEncoder();
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let closed = false;
    const open = this.#open;
    // deno-lint-ignore prefer-const -- assigned once the stream exists; finish() may run first
    let heartbeat: ReturnType<typeof setInterval> | undefined;
    const finish = () => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      open.delete(stream);
      try {
        onClose?.();
      } catch {
        // Cleanup of a listener must not break the others.
      }
    };
    const write = (text: string): boolean => {
      if (closed) return false;
      try {
        controller.enqueue(enc.encode(text));
        return true;
      } catch {
        finish();
        return false;
      }
    };
    const stream: SseStream = {
      send(event, data, id) {
        const lines = JSON.stringify(data).split("\n").map((l) => `data: ${l}`).join("\n");
        return write(`${id !== undefined ? `id: ${id}\n` : ""}event: ${event}\n${lines}\n\n`);
      },
      comment(text) {
        return write(`: ${text.replace(/\n/g, " ")}\n\n`);
      },
      close() {
        if (closed) return;
        finish();
        try {
          controller.close();
        } catch {
          // The client went away first.
        }
      },
      get closed() {
        return closed;
      },
    };
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
      cancel() {
        finish();
      },
    });
    this.#open.add(stream);
    heartbeat = setInterval(() => stream.comment("keep-alive"), this.#heartbeatMs);
    // Tells EventSource how long to wait before reconnecting, and opens the stream at once.
    write("retry: 2000\n\n");
    return {
      stream,
      response: new Response(body, {
        headers: {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache",
          "x-accel-buffering": "no",
          ...headers,
        },
      }),
    };
  }

  /** Ends every open stream (shutdown). */
  closeAll(): void {
    for (const s of [...this.#open]) s.close();
  }
}
