/**
 * What `gov doctor` looks at, injectable: programs, HTTP, the clock, process liveness, the
 * listeners of a port, and `/proc`. Tests replace these to check a host in milliseconds.
 *
 * @module
 */
import { join } from "node:path";
import { isPidAlive, runProcess } from "../process/run.ts";
import { isPortOpen } from "../net/port.ts";
import { portListenerPids, processInfo } from "../supervisor/procinfo.ts";

/** One finished program. */
export interface ProbeRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The doctor's view of the host. */
export interface DoctorProbes {
  /** Runs a program; `undefined` when it cannot be started (not installed). */
  run(cmd: string, args: string[], timeoutMs: number): Promise<ProbeRun | undefined>;
  /** HTTP, for the backends. */
  fetch: typeof fetch;
  /** Milliseconds since the epoch. */
  now(): number;
  /** Whether a pid is alive. */
  pidAlive(pid: number): boolean;
  /** Whether something accepts connections on 127.0.0.1:port. */
  portOpen(port: number): Promise<boolean>;
  /** Pids listening on a TCP port, when they can be told. */
  portListeners(port: number): Promise<number[] | undefined>;
  /** A process's command line, when it can be read. */
  processCommand(pid: number): Promise<string | undefined>;
  /** Environment variables. */
  getenv(name: string): string | undefined;
}

/**
 * Pids listening on `port`, read from `/proc` (`net/tcp*` for the socket inode, then each
 * process's `fd/` for who holds it); `undefined` when `/proc` cannot tell (another user's
 * process, no procfs).
 *
 * @example
 * ```ts
 * import { procPortListeners } from "@/doctor/probes.ts";
 *
 * const pids = await procPortListeners(8188, "/proc");
 * ```
 */
export async function procPortListeners(
  port: number,
  procRoot = "/proc",
): Promise<number[] | undefined> {
  const inodes = new Set<string>();
  for (const f of ["net/tcp", "net/tcp6"]) {
    let text: string;
    try {
      text = await Deno.readTextFile(join(procRoot, f));
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is HEX_IP:HEX_PORT; state 0A is LISTEN.
      if (cols.length < 10 || cols[3] !== "0A") continue;
      if (parseInt(cols[1].split(":")[1], 16) === port) inodes.add(cols[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  const pids: number[] = [];
  try {
    for await (const e of Deno.readDir(procRoot)) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        for await (const fd of Deno.readDir(join(procRoot, e.name, "fd"))) {
          const link = await Deno.readLink(join(procRoot, e.name, "fd", fd.name)).catch(() => "");
          const m = /^socket:\[(\d+)\]$/.exec(link);
          if (m && inodes.has(m[1])) {
            pids.push(Number(e.name));
            break;
          }
        }
      } catch { /* another user's process */ }
    }
  } catch {
    return undefined;
  }
  return pids.length ? pids : undefined;
}

/**
 * The real host.
 *
 * @example
 * ```ts
 * import { hostProbes } from "@/doctor/probes.ts";
 *
 * const probes = hostProbes();
 * console.log(await probes.portOpen(8188));
 * ```
 */
export function hostProbes(): DoctorProbes {
  return {
    async run(cmd, args, timeoutMs) {
      try {
        const r = await runProcess(cmd, args, { timeoutMs });
        return { code: r.code, stdout: r.stdout, stderr: r.stderr };
      } catch {
        return undefined;
      }
    },
    fetch: (input, init) => fetch(input, init),
    now: () => Date.now(),
    pidAlive: (pid) => isPidAlive(pid),
    portOpen: (port) => isPortOpen("127.0.0.1", port, 1000),
    portListeners: async (port) =>
      (await procPortListeners(port)) ?? (await portListenerPids(port)),
    processCommand: async (pid) => (await processInfo(pid))?.args,
    getenv: (name) => Deno.env.get(name),
  };
}
