/**
 * The shape of a gov command and the argument parsing every command shares.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "../errors.ts";
import type { Io } from "./io.ts";

/** A leaf command such as `run` or `tx promote`. */
export interface Command {
  /** Words after `gov`, e.g. `"tx promote"`. */
  name: string;
  /** One line for `gov --help`. */
  summary: string;
  /** Full `--help` text: usage line, description, flags. */
  help: string;
  /** Runs the command; returns the exit code. Throws {@linkcode GovError}s for failures. */
  run(args: string[], io: Io): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses a command's arguments strictly. Unknown flags and missing values become a
 * {@linkcode UsageError} that points at the command's `--help`.
 *
 * @example
 * ```ts
 * import { parseFlags } from "@/cli/command.ts";
 * declare const args: string[];
 *
 * const { values, positionals } = parseFlags("tx run", args, {
 *   timeout: { type: "string" },
 *   json: { type: "boolean" },
 * });
 * ```
 */
export function parseFlags<O extends Options>(
  command: string,
  args: string[],
  options: O,
  allowPositionals = true,
) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true, tokens: false });
  } catch (err) {
    const first = (err as Error).message.split("\n")[0];
    // node's wording names neither the fix nor gov's flags; say what to type instead.
    const ambiguous = first.match(/^Option '(-[^' ]+)[^']*' argument is ambiguous/);
    const missing = first.match(/^Option '(-[^' ]+)[^']*' argument missing/);
    const msg = ambiguous
      ? `${ambiguous[1]} needs a value (write one starting with '-' as ${ambiguous[1]}=-VALUE)`
      : missing
      ? `${missing[1]} needs a value`
      : first.replace(/^Unknown option/, "unknown flag")
        // node's parseArgs appends advice about `--` that does not apply to most commands.
        .replace(/\. To specify a positional argument.*$/, "");
    throw new UsageError(`gov ${command}: ${msg}`, { hint: `see \`gov ${command} --help\`` });
  }
}

/**
 * Requires exactly `names.length` positionals and returns them; extra or missing ones are a
 * usage error naming what is expected.
 *
 * @example
 * ```ts
 * import { positionalArgs } from "@/cli/command.ts";
 * declare const positionals: string[];
 *
 * const [txid] = positionalArgs("tx promote", positionals, ["<txid>"]);
 * ```
 */
export function positionalArgs(command: string, positionals: string[], names: string[]): string[] {
  if (positionals.length < names.length) {
    throw new UsageError(`gov ${command}: missing ${names.slice(positionals.length).join(" ")}`, {
      hint: `usage: gov ${command} ${names.join(" ")}`,
    });
  }
  if (positionals.length > names.length) {
    throw new UsageError(
      `gov ${command}: unexpected argument '${positionals[names.length]}'`,
      {
        hint: names.length
          ? `usage: gov ${command} ${names.join(" ")}`
          : `gov ${command} takes no arguments; see \`gov ${command} --help\``,
      },
    );
  }
  return positionals;
}

/**
 * Parses a number flag, rejecting non-numbers and values outside `[min, max]`.
 *
 * @example
 * ```ts
 * import { numberFlag } from "@/cli/command.ts";
 *
 * const timeout = numberFlag("tx run", "--timeout", "90", 120, { min: 1 }); // 90
 * ```
 */
export function numberFlag(
  command: string,
  flag: string,
  raw: string | undefined,
  fallback: number,
  range: { min?: number; max?: number; integer?: boolean } = {},
): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (
    raw.trim() === "" || !Number.isFinite(n) || (range.integer && !Number.isInteger(n)) ||
    (range.min !== undefined && n < range.min) || (range.max !== undefined && n > range.max)
  ) {
    const bounds = [
      range.min !== undefined ? `>= ${range.min}` : "",
      range.max !== undefined ? `<= ${range.max}` : "",
    ].filter(Boolean).join(" and ");
    throw new UsageError(
      `gov ${command}: ${flag} must be ${range.integer ? "an integer" : "a number"}${
        bounds ? ` ${bounds}` : ""
      }, got '${raw}'`,
    );
  }
  return n;
}

/**
 * Writes `value` as JSON on stdout, one document, newline-terminated.
 *
 * @example
 * ```ts
 * import { printJson } from "@/cli/command.ts";
 * import { type Io } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * printJson(io, { state: "idle" });
 * ```
 */
export function printJson(io: Io, value: unknown): void {
  io.out(JSON.stringify(value, null, 2) + "\n");
}
