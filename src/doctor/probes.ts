/**
 * What `gov doctor` looks at, injectable: programs, HTTP, the clock, process liveness, and
 * the listeners of a port. Tests replace these to check a host in milliseconds.
 *
 * @module
 */
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
    // `ss -p`: Deno grants /proc/<pid>/fd only with --allow-all, which gov does not ask for.
    portListeners: (port) => portListenerPids(port),
    processCommand: async (pid) => (await processInfo(pid))?.args,
    getenv: (name) => Deno.env.get(name),
  };
}
