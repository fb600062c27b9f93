/**
 * What the operating system's storage errors mean for the user: a full disk, a read-only
 * file system, a permission refused. Deno reports them as bare OS errors ("No space left
 * on device (os error 28): write '/x'"), which would otherwise reach the user as an
 * internal error.
 *
 * @module
 */
import { GovError } from "../errors.ts";

/** The storage conditions gov names. */
export type StorageCondition =
  | "disk-full"
  | "read-only"
  | "permission"
  | "folder-not-file"
  | "file-not-folder";

const CODES: Record<string, StorageCondition> = {
  ENOSPC: "disk-full",
  EDQUOT: "disk-full",
  EROFS: "read-only",
  EACCES: "permission",
  EPERM: "permission",
  // A file gov keeps (plugins.json, config.toml, ...) replaced by a folder, or the other way
  // round: the layout is damaged, which the user fixes, not gov.
  EISDIR: "folder-not-file",
  ENOTDIR: "file-not-folder",
};

/**
 * A file operation failed because of the storage: the disk is full, the file system is
 * read-only, or permission was refused. Names the condition, the path and the fix.
 *
 * @example
 * ```ts
 * import { StorageError } from "@/fs/errors.ts";
 *
 * throw new StorageError("disk-full", "/srv/env/state/plugins.json", "ENOSPC");
 * ```
 */
export class StorageError extends GovError {
  /** What is wrong with the storage. */
  condition: StorageCondition;
  /** The file or folder the operation failed on ("" when the OS did not say). */
  path: string;
  constructor(
    condition: StorageCondition,
    path: string,
    code: string,
    options?: { cause?: unknown },
  ) {
    const where = path ? ` ${path}` : "";
    const what = condition === "disk-full"
      ? `no space left on the device holding${where || " the environment"} (${code})`
      : condition === "read-only"
      ? `cannot write${where}: the file system is read-only (${code})`
      : condition === "folder-not-file"
      ? `${path || "a path gov uses"} is a folder where gov expects a file (${code})`
      : condition === "file-not-folder"
      ? `a part of ${path || "a path gov uses"} is a file where gov expects a folder (${code})`
      : `permission denied on${where || " a file of the environment"} (${code})`;
    const fix = condition === "disk-full"
      ? "free space on that file system (or raise the quota), then run the command again"
      : condition === "read-only"
      ? "remount it read-write, or run this command where the environment is writable"
      : condition === "folder-not-file" || condition === "file-not-folder"
      ? "move what is there aside (restore the file from a snapshot or backup), then run the command again"
      : "run gov as the user that owns the environment, or fix the permissions of that path";
    super(what, {
      hint: `${fix}; an operation it interrupted is finished or undone by the next gov command`,
      cause: options?.cause,
    });
    this.name = "StorageError";
    this.condition = condition;
    this.path = path;
  }
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * The {@linkcode StorageError} an OS error stands for, or undefined when `err` is something
 * else (including gov's own errors, which already say what happened). `path` names the
 * file when the OS error does not (a failed write on an open file carries none).
 *
 * @example
 * ```ts
 * import { storageErrorOf } from "@/fs/errors.ts";
 *
 * try {
 *   await Deno.writeTextFile("/srv/env/state/x.json", "{}");
 * } catch (err) {
 *   throw storageErrorOf(err) ?? err;
 * }
 * ```
 */
export function storageErrorOf(err: unknown, path?: string): StorageError | undefined {
  if (err instanceof StorageError) {
    return path && !err.path
      ? new StorageError(err.condition, path, codeOf(err.cause) ?? "", { cause: err.cause })
      : err;
  }
  if (err instanceof GovError || !(err instanceof Error)) return undefined;
  const code = codeOf(err);
  const condition = code ? CODES[code] : undefined;
  if (!code || !condition) return undefined;
  // "<text> (os error 28): <syscall> '<path>'" or "... rename '<from>' -> '<to>'".
  const m = err.message.match(/: \w+ '([^']*)'(?: -> '([^']*)')?\s*$/);
  return new StorageError(condition, m?.[2] ?? m?.[1] ?? path ?? "", code, { cause: err });
}

/**
 * Whether `err` says a path cannot be written (read-only file system, permission refused),
 * as a reader that would only like to take a lock must tolerate.
 *
 * @example
 * ```ts
 * import { isNotWritable } from "@/fs/errors.ts";
 * declare const err: unknown;
 *
 * if (!isNotWritable(err)) throw err;
 * ```
 */
export function isNotWritable(err: unknown): boolean {
  if (err instanceof Deno.errors.PermissionDenied) return true;
  const c = storageErrorOf(err)?.condition;
  return c === "read-only" || c === "permission";
}
