/**
 * Test helpers that run the real gov CLI as a subprocess, through `scripts/gov` (so the
 * project's permission set, or the binary in `GOV_BIN`, is what gets tested).
 *
 * @module
 */
import { fromFileUrl } from "./paths.ts";

/** Absolute path of `scripts/gov`. */
export const GOV_SCRIPT = fromFileUrl(new URL("../../scripts/gov", import.meta.url));

/** Output of one gov invocation. */
export interface GovResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `gov <args>` to completion.
 *
 * @example
 * ```ts
 * const r = await gov(["--version"]);
 * assertEquals(r.code, 0);
 * ```
 */
export async function gov(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; stdin?: string; timeoutMs?: number } = {},
): Promise<GovResult> {
  const cmd = new Deno.Command(GOV_SCRIPT, {
    args,
    cwd: opts.cwd,
    env: { NO_COLOR: "1", DENO: Deno.execPath(), ...(opts.env ?? {}) },
    stdin: opts.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (opts.timeoutMs) {
    timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, opts.timeoutMs);
  }
  const out = await child.output();
  if (timer) clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Starts `gov <args>` in the background (its own process group) and returns the child, for
 * long-running commands such as `gov run` and `gov serve`.
 *
 * @example
 * ```ts
 * const p = spawnGov(["run", "--workspace", ws]);
 * // ...
 * p.kill("SIGTERM");
 * await p.status;
 * ```
 */
export function spawnGov(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Deno.ChildProcess {
  return new Deno.Command(GOV_SCRIPT, {
    args,
    cwd: opts.cwd,
    env: { NO_COLOR: "1", DENO: Deno.execPath(), ...(opts.env ?? {}) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}
