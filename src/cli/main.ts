/**
 * Entry of the CLI: finds the command, runs it, turns errors into one-line messages and
 * exit codes (0 ok, 1 operation failed, 2 usage or bad input).
 *
 * @module
 */
// Only what every run needs is imported here; a command's module (and the layers below it)
// is imported when that command runs, so `gov --version` loads a handful of small files.
import { GovError } from "../errors.ts";
import { storageErrorOf } from "../fs/errors.ts";
import { VERSION } from "../version.ts";
import type { CommandEntry } from "./command.ts";
import type { Io } from "./io.ts";
import { styles } from "./io.ts";
import { commands as supervisorCommands } from "./supervisor/mod.ts";
import { commands as envCommands } from "./env/mod.ts";
import { commands as workflowCommands } from "./workflow/mod.ts";
import { commands as backendCommands } from "./backend/mod.ts";
import { commands as serveCommands } from "./serve/mod.ts";

/** Every command gov knows, in help order; each is imported on first use. */
export const ALL_COMMANDS: CommandEntry[] = [
  ...supervisorCommands,
  {
    name: "status",
    summary: "show the supervisor and an environment's governance state",
    load: async () => (await import("./status.ts")).statusCommand,
  },
  {
    name: "doctor",
    summary: "check the host and workspace, and say what to fix",
    load: async () => (await import("./doctor.ts")).doctorCommand,
  },
  ...envCommands,
  ...workflowCommands,
  ...backendCommands,
  ...serveCommands,
];

function findCommand(
  all: CommandEntry[],
  args: string[],
): { command?: CommandEntry; rest: string[]; group?: string } {
  // Longest match first, so `tx promote` wins over a hypothetical `tx`.
  for (let n = Math.min(3, args.length); n >= 1; n--) {
    const name = args.slice(0, n).join(" ");
    const command = all.find((c) => c.name === name);
    if (command) return { command, rest: args.slice(n) };
  }
  const group = args[0];
  if (group && all.some((c) => c.name.startsWith(group + " "))) return { rest: args, group };
  return { rest: args };
}

/** Flags that select the workspace or environment, accepted before the command too. */
const GLOBAL_FLAGS = new Set(["-w", "--workspace", "-e", "--env", "--env-dir"]);

/**
 * Splits `gov -w X node list` into the leading selection flags and the rest, so they can be
 * handed to the command as if written after it (where each command checks them).
 */
function leadingGlobalFlags(args: string[]): { global: string[]; after: string[] } {
  let i = 0;
  while (i < args.length) {
    const a = args[i];
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    if (!GLOBAL_FLAGS.has(name)) break;
    // `--workspace=X` carries its value; `--workspace X` takes the next word.
    i += name === a ? 2 : 1;
  }
  return { global: args.slice(0, Math.min(i, args.length)), after: args.slice(i) };
}

/** The exit-code rule, the same in `gov --help` and the README's Commands section. */
export const EXIT_RULE = [
  "Exit codes:",
  "  0  done",
  "  1  the operation failed or could not run now (a tool or process failed, a timeout,",
  "     another gov holds the lock); it may have changed things, and the message says what;",
  "     retrying may succeed",
  "  2  nothing was changed, and retrying as is cannot help: bad usage or input, a bad",
  "     configuration file, or a refusal (already done or registered, not allowed in the",
  "     current state, or a gate such as --approve-core); the message names what to change",
];

function topHelp(all: CommandEntry[]): string {
  const width = Math.max(...all.map((c) => c.name.length), 10);
  const lines = all.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    `gov ${VERSION}: runs and governs ComfyUI on GPU hosts`,
    "",
    "Usage: gov <command> [flags]",
    "",
    "Commands:",
    ...lines,
    "",
    "Flags:",
    "  -h, --help     show help (also `gov <command> --help`)",
    "      --version  print the version",
    "  -w DIR, -e NAME, --env-dir DIR  workspace and environment; also before the command",
    "",
    "Environment:",
    "  COMFYGIT_HOME    the workspace, when no --workspace is given (must exist when set)",
    "  GOV_LOCK_WAIT    seconds to wait for another gov holding an environment's lock (default 30)",
    "  GOV_UV           the uv to run (else [tools] uv of config.toml, else uv on PATH)",
    "  GOV_DEBUG=1      print a stack trace with an internal error",
    "  NO_COLOR         no colour",
    "",
    ...EXIT_RULE,
    "",
  ].join("\n");
}

function groupHelp(all: CommandEntry[], group: string): string {
  const members = all.filter((c) => c.name.startsWith(group + " "));
  const width = Math.max(...members.map((c) => c.name.length));
  return [
    `Usage: gov ${group} <command> [flags]`,
    "",
    "Commands:",
    ...members.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
  ].join("\n");
}

/**
 * Runs gov with `args` (without the program name) and returns the exit code.
 *
 * @example
 * ```ts
 * import { runCli } from "@/cli/main.ts";
 * import { processIo } from "@/cli/io.ts";
 *
 * const code = await runCli(["--version"], processIo());
 * ```
 */
export async function runCli(
  args: string[],
  io: Io,
  all: CommandEntry[] = ALL_COMMANDS,
): Promise<number> {
  if (args.length === 0 || args[0] === "-h" || args[0] === "--help" || args[0] === "help") {
    if (args[0] === "help" && args.length > 1) return runCli([...args.slice(1), "--help"], io, all);
    io.out(topHelp(all));
    return args.length === 0 ? 2 : 0;
  }
  if (args[0] === "--version" || args[0] === "-V") {
    io.out(`gov ${VERSION}\n`);
    return 0;
  }
  const { global, after } = leadingGlobalFlags(args);
  if (global.length && after.length === 0) {
    io.err(
      `${styles(io).red("error:")} ${global[0]} needs a command after it\n` +
        `  write it after the command, e.g. \`gov node list ${global.join(" ")}\`\n`,
    );
    return 2;
  }
  const found = findCommand(all, after);
  const { command, group } = found;
  // Leading selection flags go first among the command's own, so never after a `--`.
  const rest = command ? [...global, ...found.rest] : found.rest;
  if (global.length && !command && after[0]?.startsWith("-")) return runCli(after, io, all);
  const s = styles(io);
  if (!command) {
    if (group) {
      const wantsHelp = rest.length === 1 || rest[1] === "--help" || rest[1] === "-h";
      if (wantsHelp) {
        io.out(groupHelp(all, group));
        return rest.length === 1 ? 2 : 0;
      }
      io.err(
        `${s.red("error:")} unknown command 'gov ${rest.slice(0, 2).join(" ")}'\n` +
          `  see \`gov ${group} --help\`\n`,
      );
      return 2;
    }
    io.err(`${s.red("error:")} unknown command '${visible(after[0])}'\n  see \`gov --help\`\n`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    const dashdash = rest.indexOf("--");
    const helpAt = rest.findIndex((a) => a === "--help" || a === "-h");
    if (dashdash === -1 || helpAt < dashdash) {
      const [{ renderHelp }, loaded] = await Promise.all([import("./command.ts"), command.load()]);
      const help = renderHelp(loaded.help);
      io.out(help.endsWith("\n") ? help : help + "\n");
      return 0;
    }
  }
  try {
    return await (await command.load()).run(rest, io);
  } catch (err) {
    if (err instanceof GovError) {
      const { cliWording } = await import("./wording.ts");
      const { message, hint } = cliWording(err);
      io.err(`${s.red("error:")} ${visible(message)}\n`);
      if (hint) io.err(`  ${visible(hint, "")}\n`);
      return err.exitCode;
    }
    // An OS error no layer translated (a state file that is a folder, ...) still names the
    // condition and the path: it is not gov's bug.
    const storage = storageErrorOf(err);
    if (storage) {
      io.err(`${s.red("error:")} ${visible(storage.message)}\n`);
      if (storage.hint) io.err(`  ${visible(storage.hint, "")}\n`);
      return storage.exitCode;
    }
    const e = err as Error;
    io.err(
      `${s.red("error:")} internal error in gov ${command.name}: ${
        visible(String(e?.message ?? e))
      }\n`,
    );
    if (io.env("GOV_DEBUG")) io.err(`${e?.stack ?? ""}\n`);
    else io.err("  rerun with GOV_DEBUG=1 for a stack trace, and report it\n");
    return 1;
  }
}

/**
 * `text` with control characters other than line breaks written as escapes (`\x1b`), so a
 * value the user typed (an id holding an escape sequence) cannot rewrite the terminal.
 * Line breaks stay, indented by `indent`, so every line of an error still reads as part of
 * it (a hint's own lines are already indented by gov: it passes "").
 */
function visible(text: string, indent = "  "): string {
  let out = "";
  for (const c of text) {
    const code = c.charCodeAt(0);
    if (c === "\n") out += "\n" + indent;
    else if (c === "\t") out += c;
    else if (code < 0x20 || code === 0x7f || code === 0x9b) {
      out += `\\x${code.toString(16).padStart(2, "0")}`;
    } else out += c;
  }
  return out;
}
