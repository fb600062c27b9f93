/**
 * Checks of the inputs that pick a workspace or environment, done before any command looks
 * at them: a path flag naming a file, or a `COMFYGIT_HOME` that does not exist, would
 * otherwise be discovered late or silently replaced by another workspace.
 *
 * @module
 */
import { resolve } from "node:path";
import { UsageError } from "../errors.ts";
import type { Io } from "./io.ts";
import { resolveWorkspace, type Workspace } from "../workspace/root.ts";

/**
 * Throws a usage error when `value` of `flag` names something that exists but is not a
 * folder. A missing folder is left to the layer that resolves it (it words that itself).
 *
 * @example
 * ```ts
 * import { checkFolderFlag } from "@/cli/inputs.ts";
 * import { type Io } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * checkFolderFlag("--env-dir", "environments/prod", io);
 * ```
 */
export function checkFolderFlag(flag: string, value: string | undefined, io: Io): void {
  if (value === undefined) return;
  const path = resolve(io.cwd(), value);
  let isDir: boolean;
  try {
    isDir = Deno.statSync(path).isDirectory;
  } catch {
    return;
  }
  if (!isDir) {
    throw new UsageError(`${flag} ${value} is a file, not a folder`, {
      hint: `pass the folder to ${flag}`,
    });
  }
}

/**
 * Throws a usage error when `COMFYGIT_HOME` is set but names no folder: silently falling
 * back to `~/comfygit` or the cwd would act on another workspace than the one meant. An
 * empty value counts as unset.
 *
 * @example
 * ```ts
 * import { checkComfygitHome } from "@/cli/inputs.ts";
 * import { type Io } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * checkComfygitHome(io);
 * ```
 */
export function checkComfygitHome(io: Io): void {
  const home = io.env("COMFYGIT_HOME");
  if (home === undefined || home === "") return;
  let isDir = false;
  try {
    isDir = Deno.statSync(resolve(io.cwd(), home)).isDirectory;
  } catch {
    // missing: worded below
  }
  if (!isDir) {
    throw new UsageError(`COMFYGIT_HOME=${home} is not an existing folder`, {
      hint: "point COMFYGIT_HOME at a workspace, create the folder, or unset it",
    });
  }
}

/**
 * The checks of {@linkcode checkFolderFlag} and {@linkcode checkComfygitHome} for the
 * selection flags every workspace or environment command takes.
 *
 * @example
 * ```ts
 * import { checkSelection } from "@/cli/inputs.ts";
 * import { type Io } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * checkSelection({ workspace: "/srv/comfy" }, io);
 * ```
 */
export function checkSelection(
  values: { workspace?: string; "env-dir"?: string },
  io: Io,
): void {
  checkFolderFlag("--workspace", values.workspace, io);
  checkFolderFlag("--env-dir", values["env-dir"], io);
  if (values.workspace === undefined && values["env-dir"] === undefined) checkComfygitHome(io);
}

/**
 * The workspace named by `--workspace`, else discovered from the cwd and `COMFYGIT_HOME`,
 * after {@linkcode checkSelection}. Every command resolves its workspace through this.
 *
 * @example
 * ```ts
 * import { workspaceFromFlag } from "@/cli/inputs.ts";
 * import { type Io } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * const ws = workspaceFromFlag("/srv/comfy", io);
 * ```
 */
export function workspaceFromFlag(flag: string | undefined, io: Io): Workspace {
  checkSelection({ workspace: flag }, io);
  return resolveWorkspace(flag, { cwd: io.cwd(), env: (n) => io.env(n) });
}

/**
 * Reads a text file the user named (`what` says how, e.g. "--set-file prompt=PATH"). A
 * missing file, a folder or an unreadable file is a usage error naming it, not an
 * internal error.
 *
 * @example
 * ```ts
 * import { readInputFile } from "@/cli/inputs.ts";
 * import { type Io } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * const text = await readInputFile("--set-file prompt=PATH", "prompt.txt", io);
 * ```
 */
export async function readInputFile(what: string, path: string, io: Io): Promise<string> {
  try {
    return await Deno.readTextFile(resolve(io.cwd(), path));
  } catch (err) {
    throw inputFileError(what, path, err);
  }
}

/**
 * Throws a usage error unless `value` of `flag` names an existing file (not a folder).
 *
 * @example
 * ```ts
 * import { checkFileFlag } from "@/cli/inputs.ts";
 * import { type Io } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * checkFileFlag("--requirements", "requirements.txt", io);
 * ```
 */
export function checkFileFlag(flag: string, value: string | undefined, io: Io): void {
  if (value === undefined) return;
  let isFile: boolean;
  try {
    isFile = Deno.statSync(resolve(io.cwd(), value)).isFile;
  } catch (err) {
    throw inputFileError(flag, value, err);
  }
  if (!isFile) throw inputFileError(flag, value, new Deno.errors.IsADirectory());
}

function inputFileError(what: string, path: string, err: unknown): unknown {
  if (err instanceof Deno.errors.NotFound) {
    return new UsageError(`${what}: ${path} does not exist`, { hint: "pass an existing file" });
  }
  if (err instanceof Deno.errors.IsADirectory) {
    return new UsageError(`${what}: ${path} is a folder, not a file`, {
      hint: "pass a file",
    });
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return new UsageError(`${what}: ${path} cannot be read (permission denied)`, {
      hint: "pass a file you can read",
    });
  }
  return err;
}
