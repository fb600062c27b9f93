/**
 * A doctor's finding: one line about one check, with what to do when something is wrong.
 *
 * @module
 */

/**
 * How bad a finding is: `ok`; `note` (worth knowing, nothing to do, e.g. no GPU on a CPU
 * host); `warn` (works, but fix it soon); `error` (blocks operation: `gov doctor` exits 1).
 */
export type Level = "ok" | "note" | "warn" | "error";

/** One check's result. */
export interface Finding {
  /** The check, e.g. `uv`, `env prod: venv`, `port 8188`. */
  check: string;
  level: Level;
  /** What was found, one line. */
  message: string;
  /** What to do about it, one line, when something is to be done. */
  fix?: string;
}

/** Builds a finding. */
export function finding(check: string, level: Level, message: string, fix?: string): Finding {
  return fix === undefined ? { check, level, message } : { check, level, message, fix };
}
