/**
 * A TCP proxy on loopback for the backend tests: forwards every connection to a target
 * port, records each connection's request head (to check headers gov sends), and can cut
 * the WebSocket connections passing through (a socket dropped mid-job by a flaky network or
 * proxy) without touching the backend itself. It counts the `POST /prompt` requests that
 * reach the backend (what a ComfyUI that does not deduplicate would execute) and can lose
 * their answers: cut the connection when the answer comes (reset), or never deliver it.
 *
 * @module
 */

interface Pair {
  client: Deno.Conn;
  upstream?: Deno.Conn;
  websocket: boolean;
  closed: boolean;
  /** A `POST /prompt` went up this connection and its answer is to be lost this way. */
  loseAnswer?: "reset" | "hold";
}

/** What happens to the answers of `POST /prompt`: delivered, cut (reset), or held back. */
export type PromptAnswers = "deliver" | "reset" | "hold";

/** A running proxy; close it with {@linkcode TcpProxy.close}. */
export class TcpProxy {
  /** The port clients connect to. */
  readonly port: number;
  /** The first bytes (request line and headers) of each connection, in arrival order. */
  readonly heads: string[] = [];
  /** `POST /prompt` requests forwarded to the backend so far. */
  promptPosts = 0;
  /** What happens to the answer of the next `POST /prompt` requests. */
  promptAnswers: PromptAnswers = "deliver";
  #listener: Deno.Listener;
  #pairs = new Set<Pair>();
  #tasks = new Set<Promise<void>>();
  #accepting: Promise<void>;

  private constructor(listener: Deno.Listener, targetPort: number) {
    this.#listener = listener;
    this.port = (listener.addr as Deno.NetAddr).port;
    this.#accepting = this.#accept(targetPort);
  }

  /**
   * Starts a proxy to 127.0.0.1:`targetPort`.
   *
   * @example
   * ```ts
   * const proxy = TcpProxy.start(comfy.port);
   * // ... point a client at proxy.port
   * await proxy.close();
   * ```
   */
  static start(targetPort: number): TcpProxy {
    return new TcpProxy(Deno.listen({ hostname: "127.0.0.1", port: 0 }), targetPort);
  }

  async #accept(targetPort: number): Promise<void> {
    try {
      for await (const client of this.#listener) {
        const pair: Pair = { client, websocket: false, closed: false };
        this.#pairs.add(pair);
        const task = this.#serve(pair, targetPort).finally(() => {
          this.#pairs.delete(pair);
          this.#tasks.delete(task);
        });
        this.#tasks.add(task);
      }
    } catch {
      // Listener closed.
    }
  }

  async #serve(pair: Pair, targetPort: number): Promise<void> {
    try {
      pair.upstream = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
    } catch {
      this.#shut(pair);
      return;
    }
    await Promise.all([
      this.#copy(pair, pair.client, pair.upstream, true),
      this.#copy(pair, pair.upstream, pair.client, false),
    ]);
  }

  async #copy(pair: Pair, from: Deno.Conn, to: Deno.Conn, fromClient: boolean): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    let first = fromClient;
    try {
      while (true) {
        const n = await from.read(buf);
        if (n === null) break;
        if (first) {
          first = false;
          const head = new TextDecoder().decode(buf.subarray(0, n)).split("\r\n\r\n")[0];
          this.heads.push(head);
          if (/^upgrade:\s*websocket/im.test(head)) pair.websocket = true;
        }
        if (
          fromClient && /^POST \/prompt[ ?]/.test(new TextDecoder().decode(buf.subarray(0, 16)))
        ) {
          // Keep-alive connections carry several requests; each starts a chunk from gov.
          this.promptPosts++;
          if (this.promptAnswers !== "deliver") pair.loseAnswer = this.promptAnswers;
        }
        if (!fromClient && pair.loseAnswer === "reset") break;
        if (!fromClient && pair.loseAnswer === "hold") continue;
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } catch {
      // One side went away.
    }
    // A held answer stays held when the backend closes: gov must see no answer, not an EOF.
    if (!fromClient && pair.loseAnswer === "hold" && !pair.closed) return;
    this.#shut(pair);
  }

  #shut(pair: Pair): void {
    if (pair.closed) return;
    pair.closed = true;
    for (const c of [pair.client, pair.upstream]) {
      try {
        c?.close();
      } catch {
        // already closed
      }
    }
  }

  /** How many WebSocket connections are open through the proxy now. */
  openWebSockets(): number {
    return [...this.#pairs].filter((p) => p.websocket && !p.closed).length;
  }

  /** Cuts every WebSocket connection passing through; plain HTTP keeps working. */
  dropWebSockets(): number {
    let n = 0;
    for (const p of this.#pairs) {
      if (p.websocket && !p.closed) {
        this.#shut(p);
        n++;
      }
    }
    return n;
  }

  /** Stops listening, cuts every connection and waits until all of them have ended. */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    await this.#accepting;
    for (const p of this.#pairs) this.#shut(p);
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }
}
