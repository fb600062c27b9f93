/**
 * Network helpers for tests: free loopback ports, waiting for a port.
 *
 * @module
 */

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago.
 *
 * @example
 * ```ts
 * const port = freePort();
 * ```
 */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Whether something accepts TCP connections on 127.0.0.1:`port`.
 *
 * @example
 * ```ts
 * if (await isPortOpen(8188)) console.log("listening");
 * ```
 */
export async function isPortOpen(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls until `cond` holds or `timeoutMs` passes; returns whether it held. For waiting on
 * real processes, never as a timing assertion.
 *
 * @example
 * ```ts
 * assert(await waitFor(() => isPortOpen(port), 10_000));
 * ```
 */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return await cond();
}
