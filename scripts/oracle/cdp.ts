/**
 * A minimal Chrome DevTools Protocol client over Deno's WebSocket: enough to evaluate
 * scripts in one page and read its console, with no browser-automation dependency.
 *
 * @module
 */

/** A DevTools error answer or a script that threw in the page. */
export class CdpError extends Error {
  override name = "CdpError";
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/** One DevTools session on one page target. */
export class CdpPage {
  #ws: WebSocket;
  #next = 1;
  #pending = new Map<number, Pending>();
  #listeners: ((method: string, params: Record<string, unknown>) => void)[] = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const msg = JSON.parse(String(e.data));
      if (typeof msg.id === "number") {
        const p = this.#pending.get(msg.id);
        if (!p) return;
        this.#pending.delete(msg.id);
        if (msg.error) p.reject(new CdpError(`${msg.error.message} (${msg.error.code})`));
        else p.resolve(msg.result);
      } else if (typeof msg.method === "string") {
        for (const l of this.#listeners) l(msg.method, msg.params ?? {});
      }
    };
    ws.onclose = () => {
      for (const p of this.#pending.values()) p.reject(new CdpError("DevTools socket closed"));
      this.#pending.clear();
    };
  }

  /** Connects to a page's `webSocketDebuggerUrl`. */
  static connect(url: string): Promise<CdpPage> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.onopen = () => resolve(new CdpPage(ws));
      ws.onerror = () => reject(new CdpError(`cannot open DevTools socket ${url}`));
    });
  }

  /** Sends one command and waits for its answer. */
  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: (v) => resolve(v as Record<string, unknown>), reject });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Calls `listener` for every event the page sends. */
  on(listener: (method: string, params: Record<string, unknown>) => void): void {
    this.#listeners.push(listener);
  }

  /** Evaluates `expression` (awaiting a promise) and returns its value as JSON. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    });
    const ex = r.exceptionDetails as Record<string, unknown> | undefined;
    if (ex) {
      const exc = ex.exception as Record<string, unknown> | undefined;
      throw new CdpError(String(exc?.description ?? ex.text ?? "script failed in the page"));
    }
    return (r.result as { value: T }).value;
  }

  /** Closes the socket. */
  close(): void {
    this.#ws.close();
  }
}
