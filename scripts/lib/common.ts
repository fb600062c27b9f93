/**
 * Helpers the demo and the benchmarks share.
 *
 * @module
 */

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
