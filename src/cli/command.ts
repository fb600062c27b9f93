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

/**
 * A command as the command table lists it: its name and summary for `gov --help`, and the
 * module that implements it, imported on first use so `gov --version` or one command does
 * not load every other command's layers.
 */
export interface CommandEntry {
  /** Words after `gov`, the same as the loaded {@linkcode Command}'s name. */
  name: string;
  /** One line for `gov --help`, the same as the loaded {@linkcode Command}'s summary. */
  summary: string;
  /** Imports the command's module and returns the command. */
  load(): Promise<Command>;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * The one table of short flags: a flag of this name has this short form on every command
 * that takes it, and every `--help` lists it (see {@linkcode renderHelp}).
 */
export const SHORT_FLAGS: Readonly<Record<string, string>> = Object.freeze({
  workspace: "w",
  env: "e",
  output: "o",
  detach: "d",
});

function withShortFlags(options: Options): Options {
  const out: Options = {};
  for (const [name, spec] of Object.entries(options)) {
    out[name] = SHORT_FLAGS[name] ? { ...spec, short: SHORT_FLAGS[name] } : spec;
  }
  return out;
}

/**
 * A command's `--help` text with the short form of every flag in {@linkcode SHORT_FLAGS}
 * written before the long one (`-w, --workspace DIR`), whatever the text itself lists, so
 * no command's help can leave one out.
 *
 * @example
 * ```ts
 * import { renderHelp } from "@/cli/command.ts";
 *
 * renderHelp("Flags:\n      --workspace DIR   the workspace\n");
 * // "Flags:\n  -w, --workspace DIR   the workspace\n"
 * ```
 */
export function renderHelp(help: string): string {
  return help.split("\n").map((line) => {
    const m = line.match(/^( +)(-[a-zA-Z], )?--([a-z][a-z-]*)(.*)$/);
    if (!m || m[2] || !SHORT_FLAGS[m[3]]) return line;
    const [, indent, , name, rest] = m;
    const short = `-${SHORT_FLAGS[name]}, `;
    if (indent.length >= 2 + short.length) {
      return `${indent.slice(short.length)}${short}--${name}${rest}`;
    }
    // No column for short forms: take the room from the gap before the description.
    const gap = rest.match(/^(\S*(?: \S+)?)( {2,})(.*)$/);
    if (gap && gap[2].length >= short.length + 2) {
      return `${indent}${short}--${name}${gap[1]}${gap[2].slice(short.length)}${gap[3]}`;
    }
    return `${indent}${short}--${name}${rest}`;
  }).join("\n");
}

/** `-w` as `--workspace`: only the long form takes `=VALUE`, and every message uses it. */
function longFlag(flag: string): string {
  const long = Object.entries(SHORT_FLAGS).find(([, short]) => `-${short}` === flag)?.[0];
  return long ? `--${long}` : flag;
}

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
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: withShortFlags(options) as O,
      allowPositionals,
      strict: true,
      tokens: true,
    });
  } catch (err) {
    const first = (err as Error).message.split("\n")[0];
    // node's wording names neither the fix nor gov's flags; say what to type instead.
    // A flag with a short form is named "-w, --workspace <value>"; the long name is the one
    // every message and `--help` use.
    const ambiguous = first.match(/^Option '(?:-[^-' ], )?(-[^' ]+)[^']*' argument is ambiguous/);
    const missing = first.match(/^Option '(?:-[^-' ], )?(-[^' ]+)[^']*' argument missing/);
    const msg = ambiguous
      ? `${longFlag(ambiguous[1])} needs a value (write one starting with '-' as ${
        longFlag(ambiguous[1])
      }=-VALUE)`
      : missing
      ? `${longFlag(missing[1])} needs a value`
      : first.replace(/^Unknown option/, "unknown flag")
        // node's parseArgs appends advice about `--` that does not apply to most commands.
        .replace(/\. To specify a positional argument.*$/, "");
    throw new UsageError(`gov ${command}: ${msg}`, { hint: `see \`gov ${command} --help\`` });
  }
  checkFlagTokens(command, parsed.tokens ?? [], options);
  const { values, positionals } = parsed;
  return { values, positionals };
}

/**
 * Rejects what node's parseArgs lets through silently: a single-valued flag given twice
 * (the last would win unseen) and an empty value (`--workspace=` would mean "the cwd").
 */
function checkFlagTokens(
  command: string,
  tokens: NonNullable<ReturnType<typeof parseArgs>["tokens"]>,
  options: Options,
): void {
  const seen = new Map<string, string>();
  for (const t of tokens) {
    if (t.kind !== "option") continue;
    const spec = options[t.name];
    const flag = `--${t.name}`;
    if (spec?.type === "string" && t.value !== undefined && t.value.trim() === "") {
      throw new UsageError(`gov ${command}: ${flag} needs a non-empty value`, {
        hint: `pass a value, or leave ${flag} out for its default`,
      });
    }
    // A repeated switch (`--json --json`) means the same; only a repeated value can differ.
    if (spec?.multiple || spec?.type === "boolean") continue;
    const shown = t.value === undefined ? t.rawName : `${t.rawName} ${t.value}`;
    const earlier = seen.get(t.name);
    if (earlier !== undefined) {
      throw new UsageError(`gov ${command}: ${flag} given twice ('${earlier}' and '${shown}')`, {
        hint: `pass ${flag} once`,
      });
    }
    seen.set(t.name, shown);
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
    // Decimal only: Number() would also take "0x50", "0b1" and "1e3" for a port or count.
    !/^[+-]?(\d+\.?\d*|\.\d+)$/.test(raw.trim()) || !Number.isFinite(n) ||
    (range.integer && !Number.isInteger(n)) ||
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
