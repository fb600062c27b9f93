/**
 * Error classes shared by every capability layer.
 *
 * Capability code throws these; only the CLI layer turns them into a message and an exit
 * code, so a library caller (tests, the gateway) sees typed errors rather than exits.
 *
 * @module
 */

/** Exit code for a failed operation. */
export const EXIT_FAILURE = 1;
/** Exit code for bad usage or bad input. */
export const EXIT_USAGE = 2;

/**
 * Base class of every error gov reports to a user: a one-line message that names the
 * problem and, when there is one, the fix.
 *
 * @example
 * ```ts
 * import { GovError } from "@/errors.ts";
 *
 * throw new GovError("environment 'prod' not found", { hint: "list them with `gov env list`" });
 * ```
 */
export class GovError extends Error {
  /** Process exit code the CLI uses for this error. */
  exitCode: number = EXIT_FAILURE;
  /** What the user can do about it, printed after the message. */
  hint?: string;
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = "GovError";
    this.hint = options?.hint;
  }
}

/**
 * The command line or its input is wrong (unknown flag, bad id, malformed file given by the
 * user). Exit code 2; nothing was changed.
 *
 * @example
 * ```ts
 * import { UsageError } from "@/errors.ts";
 *
 * throw new UsageError("unknown flag --colour", { hint: "see `gov run --help`" });
 * ```
 */
export class UsageError extends GovError {
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options);
    this.name = "UsageError";
    this.exitCode = EXIT_USAGE;
  }
}

/**
 * A file or folder the user named does not exist. Exit code 2; nothing was changed.
 * `input` says what the user named ("workspace folder", "environment folder",
 * "requirements file"), so the CLI can word the fix as the flag that named it.
 *
 * @example
 * ```ts
 * import { MissingInputError } from "@/errors.ts";
 *
 * throw new MissingInputError("requirements file", "/tmp/req.txt", "pass an existing file");
 * ```
 */
export class MissingInputError extends UsageError {
  /** What the user named. */
  input: string;
  /** The path that does not exist. */
  path: string;
  constructor(input: string, path: string, hint: string) {
    super(`${input} ${path} does not exist`, { hint });
    this.name = "MissingInputError";
    this.input = input;
    this.path = path;
  }
}

/**
 * A value the user gave is malformed (a git ref starting with "-", ...). Exit code 2;
 * nothing was changed. `input` says what the value is, so the CLI can name the flag that
 * gave it.
 *
 * @example
 * ```ts
 * import { InvalidInputError } from "@/errors.ts";
 *
 * throw new InvalidInputError("git ref", "--orphan", "pass a branch, tag or commit");
 * ```
 */
export class InvalidInputError extends UsageError {
  /** What the value is. */
  input: string;
  /** The value as given. */
  value: string;
  constructor(input: string, value: string, hint: string) {
    super(`invalid ${input} '${value}'`, { hint });
    this.name = "InvalidInputError";
    this.input = input;
    this.value = value;
  }
}

/**
 * A configuration or state file is missing a key, has the wrong type, or does not parse.
 * Names the file and the field. Exit code 2: the user must fix the file; gov overwrote
 * nothing.
 *
 * @example
 * ```ts
 * import { ConfigError } from "@/errors.ts";
 *
 * throw new ConfigError("/ws/environments/prod/config.toml", "paths.comfyui_dir", "a string");
 * ```
 */
export class ConfigError extends GovError {
  /** The file that is wrong. */
  file: string;
  /** Dotted path of the offending field, or "" for the whole file. */
  field: string;
  constructor(file: string, field: string, expected: string, options?: { cause?: unknown }) {
    super(
      field ? `${file}: ${field} must be ${expected}` : `${file}: ${expected}`,
      { hint: "fix the file by hand; gov changed nothing", cause: options?.cause },
    );
    this.name = "ConfigError";
    this.file = file;
    this.field = field;
    this.exitCode = EXIT_USAGE;
  }
}

/**
 * Something that should exist does not (environment, transaction, snapshot, backend, job).
 * Exit code 2 because the user named it.
 *
 * @example
 * ```ts
 * import { NotFoundError } from "@/errors.ts";
 *
 * throw new NotFoundError("transaction", "tx-20260101-abc", "list them with `gov tx list`");
 * ```
 */
export class NotFoundError extends GovError {
  constructor(kind: string, id: string, hint?: string) {
    super(`${kind} '${id}' not found`, { hint });
    this.name = "NotFoundError";
    this.exitCode = EXIT_USAGE;
  }
}

/**
 * Another gov process holds the lock this operation needs.
 *
 * @example
 * ```ts
 * import { LockedError } from "@/errors.ts";
 *
 * throw new LockedError("/ws/.metadata/.switch.lock", 4242);
 * ```
 */
export class LockedError extends GovError {
  /** Path of the lock file. */
  lockPath: string;
  /** Pid of the holder, when known. */
  holder?: number;
  constructor(lockPath: string, holder?: number, hint?: string) {
    super(
      `${lockPath} is held${holder ? ` by pid ${holder}` : ""}`,
      { hint: hint ?? "wait for the other gov command to finish, then retry" },
    );
    this.name = "LockedError";
    this.lockPath = lockPath;
    this.holder = holder;
  }
}

/**
 * An external program gov drives (uv, git, python) failed or is missing.
 *
 * @example
 * ```ts
 * import { ToolError } from "@/errors.ts";
 *
 * throw new ToolError("uv", 2, "error: ...", "install uv or set [tools] uv");
 * ```
 */
export class ToolError extends GovError {
  /** Program name as configured. */
  tool: string;
  /** Its exit code, or null when it could not be started. */
  code: number | null;
  /** What it printed on stderr. */
  stderr: string;
  constructor(tool: string, code: number | null, stderr: string, hint?: string) {
    const first = stderr.trim().split("\n").filter((l) => l.trim() !== "").slice(-1)[0] ?? "";
    super(
      code === null
        ? `${tool} could not be started${first ? `: ${first}` : ""}`
        : `${tool} exited ${code}${first ? `: ${first.trim()}` : ""}`,
      { hint },
    );
    this.name = "ToolError";
    this.tool = tool;
    this.code = code;
    this.stderr = stderr;
  }
}

/**
 * gov declined to act, and nothing was changed: what was asked is already so (a node
 * already registered, a transaction already aborted), the state does not allow it (a
 * transaction in the wrong status, an environment not initialised), or it needs an
 * explicit approval (a promote gate). Running the same command again cannot succeed until
 * the user changes something, which the hint names. Exit code 2, like bad input.
 *
 * @example
 * ```ts
 * import { RefusedError } from "@/errors.ts";
 *
 * throw new RefusedError("transaction tx-1 is already aborted; nothing to do");
 * ```
 */
export class RefusedError extends GovError {
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options);
    this.name = "RefusedError";
    this.exitCode = EXIT_USAGE;
  }
}
