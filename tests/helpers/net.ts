/**
 * Network helpers for tests: free loopback ports, waiting for a port.
 *
 * @module
 */
import { freeLoopbackPort, isPortOpen as isHostPortOpen } from "../../src/net/port.ts";

/** A free TCP port on 127.0.0.1 (see {@linkcode freeLoopbackPort}). */
export const freePort: () => number = freeLoopbackPort;

/**
 * Whether something accepts TCP connections on 127.0.0.1:`port`.
 *
 * @example
 * ```ts
 * if (await isPortOpen(8188)) console.log("listening");
 * ```
 */
export function isPortOpen(port: number): Promise<boolean> {
  return isHostPortOpen("127.0.0.1", port);
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
