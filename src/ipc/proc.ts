/**
 * Process liveness without `/proc`: Deno's permission model refuses reads of `/proc/<pid>/*`
 * to anything short of `--allow-all`, so gov asks the kernel with `kill(pid, 0)` instead.
 *
 * @module
 */
import process from "node:process";

/**
 * Whether a process with this pid exists (kill(pid, 0); EPERM means it exists but belongs
 * to another user). A reaped child reads as dead.
 *
 * @example
 * ```ts
 * if (!pidAlive(4242)) console.log("stale pid file");
 * ```
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string })?.code === "EPERM";
  }
}
