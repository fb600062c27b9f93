/**
 * Helpers the demo and the benchmarks share.
 *
 * @module
 */
import { cpuUsage } from "node:process";

/**
 * Absolute path of the host's python3, for `[paths] python` of throwaway environments.
 *
 * @example
 * ```ts
 * const py = hostPython(); // "/usr/bin/python3"
 * ```
 */
export function hostPython(): string {
  const out = new Deno.Command("python3", {
    args: ["-c", "import sys; print(sys.executable)"],
    stdout: "piped",
  }).outputSync();
  return new TextDecoder().decode(out.stdout).trim() || "python3";
}

/**
 * The value at quantile `q` (0..1) of an ascending list, nearest-rank; NaN when empty.
 *
 * @example
 * ```ts
 * quantile([1, 2, 3, 4], 0.5); // 2
 * ```
 */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

/**
 * One measured figure. `floor` is the physical floor of the same quantity measured in the
 * same run (so a loaded machine moves both), `ratio` is `value / floor`, `goal` the target.
 */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  detail?: string;
  floor?: number;
  ratio?: number;
  goal?: string;
}

/**
 * A figure with its floor and ratio filled in.
 *
 * @example
 * ```ts
 * withFloor({ name: "gov --version", value: 90, unit: "ms" }, 75); // ratio 1.2
 * ```
 */
export function withFloor(f: Figure, floor: number): Figure {
  return { ...f, floor, ratio: floor > 0 ? f.value / floor : NaN };
}

/**
 * Median of an unsorted list; NaN when empty.
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(xs: number[]): number {
  return quantile([...xs].sort((a, b) => a - b), 0.5);
}

/** Deno refuses to read /proc/<pid> without --allow-all: `cat` reads it. */
function procFile(pid: number, name: string): string {
  const out = new Deno.Command("cat", { args: [`/proc/${pid}/${name}`], stdout: "piped" })
    .outputSync();
  if (!out.success) throw new Error(`cannot read /proc/${pid}/${name}`);
  return new TextDecoder().decode(out.stdout);
}

/**
 * CPU time (user + system, in ms) a process has used so far, from `/proc/<pid>/stat`;
 * `"self"` for this process.
 *
 * @example
 * ```ts
 * const ms = processCpuMs("self");
 * ```
 */
export function processCpuMs(pid: number | "self"): number {
  // Deno refuses /proc/self without --allow-all; node's cpuUsage is the same figure.
  if (pid === "self") {
    const u = cpuUsage();
    return (u.user + u.system) / 1000;
  }
  const stat = procFile(pid, "stat");
  // Fields after the command name (which may hold spaces) start after its closing ")".
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(rest[11]) + Number(rest[12]); // utime, stime (fields 14 and 15)
  return ticks * 10; // USER_HZ is 100 on Linux
}

/**
 * Resident set size of a process in KiB, from `/proc/<pid>/status`.
 *
 * @example
 * ```ts
 * const kib = processRssKiB(4242);
 * ```
 */
export function processRssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(procFile(pid, "status"));
  return m ? Number(m[1]) : NaN;
}
