/**
 * TCP port checks shared by the supervisor's health check, the candidate run of a
 * transaction, and the tools around gov.
 *
 * @module
 */

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it). Another process
 * may take it before the caller binds: callers that start a server on it must tolerate that.
 *
 * @example
 * ```ts
 * import { freeLoopbackPort } from "@/net/port.ts";
 *
 * const port = freeLoopbackPort();
 * ```
 */
export function freeLoopbackPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Whether something accepts TCP connections at `host:port` within `timeoutMs`. A connect
 * that hangs (a firewall dropping packets) counts as closed once the time is up.
 *
 * @example
 * ```ts
 * import { isPortOpen } from "@/net/port.ts";
 *
 * if (await isPortOpen("127.0.0.1", 8188)) console.log("port in use");
 * ```
 */
export async function isPortOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = Deno.connect({ hostname: host, port }).then(
    (c) => c,
    () => undefined,
  );
  const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), timeoutMs));
  const first = await Promise.race([attempt, timeout]);
  clearTimeout(timer);
  if (first === "timeout") {
    attempt.then((c) => c?.close());
    return false;
  }
  if (!first) return false;
  first.close();
  return true;
}
