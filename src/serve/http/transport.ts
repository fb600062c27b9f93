/**
 * The gateway's TCP front: bounded header-read and idle timeouts and a connection cap,
 * which `Deno.serve` does not have (a client that sends half a request line holds its
 * connection forever). Each accepted connection is relayed byte for byte to `Deno.serve`
 * listening on a Unix socket in a private (0700) temporary folder, so HTTP parsing stays
 * Deno's; this layer only watches time and counts connections.
 *
 * Limits:
 * - header timeout: the first request's headers must arrive within it, or the client gets
 *   408 and the connection closes (later requests on a kept-alive connection fall under
 *   the idle timeout);
 * - idle timeout: a connection with no bytes either way for that long is closed (event
 *   streams send a heartbeat every 15 s, so they stay open);
 * - header size: a first request whose headers pass the limit before they end gets 431 and
 *   the connection closes (Deno's parser would buffer them all);
 * - connection cap: one more connection than that gets 503 and is closed at once;
 * - unanswered bytes: a client that goes on sending long after the largest body allowed,
 *   with no answer in between, is disconnected.
 *
 * @module
 */
import { join } from "node:path";

/** Time and connection limits of the TCP front. */
export interface TransportLimits {
  /** Most ms to receive the headers of a connection's first request. */
  headerTimeoutMs: number;
  /** Most bytes of a connection's first request line and headers. */
  maxHeaderBytes: number;
  /** Most ms a connection may stay open with no bytes either way. */
  idleTimeoutMs: number;
  /** Most connections open at once. */
  maxConnections: number;
  /**
   * Most bytes a client may send without the server sending anything back: past the
   * largest body plus its headers, the client is streaming a body the gateway already
   * refused (413), which would otherwise be drained forever.
   */
  maxUnansweredBytes: number;
}

/** Default {@linkcode TransportLimits}. */
export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  headerTimeoutMs: 10_000,
  maxHeaderBytes: 64 * 1024,
  idleTimeoutMs: 120_000,
  maxConnections: 256,
  maxUnansweredBytes: 48 * 1024 * 1024,
};

/** A running guarded server. */
export interface GuardedServer {
  /** Where it listens. */
  addr: Deno.NetAddr;
  /** Connections open now. */
  readonly connections: number;
  /** Stops accepting, lets requests in flight finish, closes every connection. */
  shutdown(): Promise<void>;
}

const enc = new TextEncoder();

function rawResponse(status: string, message: string): Uint8Array {
  const body = JSON.stringify({ error: message }) + "\n";
  return enc.encode(
    `HTTP/1.1 ${status}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${enc.encode(body).byteLength}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/**
 * Serves `handler` on `hostname:port` behind the TCP guards. Throws
 * `Deno.errors.AddrInUse` like `Deno.serve` when the port is taken.
 *
 * @example
 * ```ts
 * const server = await serveGuarded(
 *   { hostname: "127.0.0.1", port: 0, limits: DEFAULT_TRANSPORT_LIMITS },
 *   () => new Response("ok"),
 * );
 * await server.shutdown();
 * ```
 */
export async function serveGuarded(
  opts: {
    hostname: string;
    port: number;
    limits: TransportLimits;
    onError?: (err: unknown) => Response;
  },
  handler: (req: Request) => Response | Promise<Response>,
): Promise<GuardedServer> {
  const listener = Deno.listen({ hostname: opts.hostname, port: opts.port, transport: "tcp" });
  const dir = await Deno.makeTempDir({ prefix: "gov-serve-" });
  const path = join(dir, "http.sock");
  const ready = Promise.withResolvers<void>();
  const inner = Deno.serve(
    { path, onListen: () => ready.resolve(), onError: opts.onError },
    handler,
  );
  await ready.promise;
  const open = new Set<() => void>();
  const limits = opts.limits;

  const relay = async (conn: Deno.TcpConn) => {
    // Responses go out in several writes (head, body chunks): without this, Nagle's
    // algorithm and the client's delayed ACK hold each answer back by tens of ms.
    try {
      conn.setNoDelay(true);
    } catch { /* gone already */ }
    let upstream: Deno.UnixConn;
    try {
      upstream = await Deno.connect({ transport: "unix", path });
    } catch {
      conn.close();
      return;
    }
    let closed = false;
    let headersIn = false;
    let headerBytes = 0;
    let tail = "";
    let unanswered = 0;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const close = () => {
      if (closed) return;
      closed = true;
      clearTimeout(idle);
      clearTimeout(headerTimer);
      open.delete(close);
      for (const c of [conn, upstream]) {
        try {
          c.close();
        } catch { /* closed already */ }
      }
    };
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(close, limits.idleTimeoutMs);
    };
    const headerTimer = setTimeout(async () => {
      if (headersIn || closed) return;
      try {
        await conn.write(rawResponse(
          "408 Request Timeout",
          `request headers not received within ${limits.headerTimeoutMs} ms`,
        ));
      } catch { /* the client is gone */ }
      close();
    }, limits.headerTimeoutMs);
    open.add(close);
    touch();
    const pump = async (
      from: Deno.Conn,
      to: Deno.Conn,
      watch: boolean,
      onEnd: () => void,
    ) => {
      const buf = new Uint8Array(64 * 1024);
      try {
        while (!closed) {
          const n = await from.read(buf);
          if (n === null) break;
          touch();
          if (!watch) unanswered = 0;
          else if ((unanswered += n) > limits.maxUnansweredBytes) return close();
          if (watch && !headersIn) {
            const text = tail + new TextDecoder("latin1").decode(buf.subarray(0, n));
            const end = text.indexOf("\r\n\r\n");
            // Count only header bytes: a body may follow the blank line in the same read.
            headerBytes += end === -1 ? n : Math.max(0, end + 4 - tail.length);
            if (end !== -1) headersIn = true;
            tail = text.slice(-3);
            if (headerBytes > limits.maxHeaderBytes) {
              try {
                await conn.write(rawResponse(
                  "431 Request Header Fields Too Large",
                  `request headers over ${limits.maxHeaderBytes} bytes`,
                ));
              } catch { /* the client is gone */ }
              return close();
            }
          }
          let off = 0;
          while (off < n) off += await to.write(buf.subarray(off, n));
        }
        onEnd();
      } catch {
        close();
      }
    };
    await Promise.all([
      // The client ended its side: let the response in flight finish.
      pump(conn, upstream, true, () => upstream.closeWrite().catch(close)),
      pump(upstream, conn, false, close),
    ]);
    close();
  };

  let stopping = false;
  const accepting = (async () => {
    while (!stopping) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (stopping || err instanceof Deno.errors.BadResource) return;
        // Out of file descriptors and the like: back off instead of stopping for good.
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (open.size >= limits.maxConnections) {
        conn.write(rawResponse(
          "503 Service Unavailable",
          `too many connections (the limit is ${limits.maxConnections})`,
        )).catch(() => {}).finally(() => {
          try {
            conn.close();
          } catch { /* gone */ }
        });
        continue;
      }
      relay(conn);
    }
  })().catch(() => {});

  return {
    addr: listener.addr as Deno.NetAddr,
    get connections() {
      return open.size;
    },
    async shutdown() {
      stopping = true;
      try {
        listener.close();
      } catch { /* closed */ }
      await accepting;
      await inner.shutdown();
      for (const close of [...open]) close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
