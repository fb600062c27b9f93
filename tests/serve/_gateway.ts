/**
 * An in-process gateway for the HTTP hardening tests: `startGateway` on a free port of
 * 127.0.0.1 in a temporary workspace, plus a raw TCP client for what `fetch` will not
 * send (a foreign Host, half a request, a stalled body).
 *
 * @module
 */
import { type Gateway, type GatewayOptions, startGateway } from "../../src/serve/gateway.ts";
import { workspaceAt } from "../../src/workspace/root.ts";

/** A gateway running in the test process, and its workspace. */
export interface LocalGateway {
  /** The gateway. */
  gw: Gateway;
  /** Workspace root. */
  ws: string;
  /** Stops it and removes the workspace. */
  close(): Promise<void>;
}

/**
 * Starts a gateway in this process. `backendsToml` is written to the workspace first.
 *
 * @example
 * ```ts
 * const { gw, close } = await localGateway({ token: "T" });
 * try { await fetch(`${gw.url}/healthz`); } finally { await close(); }
 * ```
 */
export async function localGateway(
  opts: Partial<Omit<GatewayOptions, "workspace">> & { backendsToml?: string; ws?: string } = {},
): Promise<LocalGateway> {
  const ws = opts.ws ?? await Deno.makeTempDir({ prefix: "gov-gw-test-" });
  await Deno.mkdir(`${ws}/.metadata`, { recursive: true });
  if (opts.backendsToml !== undefined) {
    await Deno.writeTextFile(`${ws}/backends.toml`, opts.backendsToml);
  }
  const gw = await startGateway({
    port: 0,
    probeIntervalMs: 300,
    probeTimeoutMs: 1500,
    ...opts,
    workspace: workspaceAt(ws),
  });
  return {
    gw,
    ws,
    async close() {
      await gw.close();
      if (opts.ws === undefined) await Deno.remove(ws, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Sends raw bytes to 127.0.0.1:`port` and returns everything the server sends until it
 * closes the connection (or `giveUpMs` passes: a bound, not an assertion; the caller
 * checks what arrived). With `hold`, the connection is left open after writing.
 *
 * @example
 * ```ts
 * const text = await rawExchange(8190, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
 * ```
 */
export async function rawExchange(
  port: number,
  request: string | Uint8Array,
  giveUpMs = 20_000,
): Promise<{ text: string; closed: boolean }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const bytes = typeof request === "string" ? new TextEncoder().encode(request) : request;
  // One write may take only part of a large request; send all of it.
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
  const chunks: string[] = [];
  const dec = new TextDecoder();
  const buf = new Uint8Array(16 * 1024);
  let closed = false;
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch { /* closed */ }
  }, giveUpMs);
  try {
    while (true) {
      const n = await conn.read(buf);
      if (n === null) {
        closed = true;
        break;
      }
      chunks.push(dec.decode(buf.subarray(0, n), { stream: true }));
    }
  } catch {
    // Closed by the give-up timer (or reset): `closed` stays false.
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed */ }
  }
  return { text: chunks.join(""), closed };
}

/**
 * The status code of a raw HTTP response text, or 0.
 *
 * @example
 * ```ts
 * statusOf("HTTP/1.1 421 Misdirected Request\r\n..."); // 421
 * ```
 */
export function statusOf(text: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
}
