/**
 * Finding the workspace: the folder holding `environments/<name>/` and `.metadata/`.
 *
 * Discovery follows ComfyGit: `$COMFYGIT_HOME` when it exists, else `~/comfygit` when it
 * holds `.metadata/`, else the nearest ancestor of the working folder that holds
 * `.metadata/`. `--workspace DIR` on the command line beats all three.
 *
 * @module
 */
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { existsSync, statSync } from "node:fs";
import { MissingInputError, UsageError } from "../errors.ts";
import { isValidName } from "./names.ts";

/** Where discovery looks; injectable so tests need no real home folder. */
export interface DiscoveryContext {
  /** The working folder to search upward from. */
  cwd: string;
  /** Environment variables (`COMFYGIT_HOME`, `HOME`). */
  env: (name: string) => string | undefined;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Returns the workspace root, or `undefined` when none is found.
 *
 * @example
 * ```ts
 * import { findWorkspaceRoot } from "@/workspace/root.ts";
 *
 * const root = findWorkspaceRoot({ cwd: Deno.cwd(), env: Deno.env.get });
 * ```
 */
export function findWorkspaceRoot(ctx: DiscoveryContext): string | undefined {
  const home = ctx.env("COMFYGIT_HOME");
  if (home && isDir(home)) return resolve(home);
  const userHome = ctx.env("HOME");
  if (userHome) {
    const def = join(userHome, "comfygit");
    if (isDir(join(def, ".metadata"))) return def;
  }
  let dir = resolve(ctx.cwd);
  while (true) {
    if (isDir(join(dir, ".metadata"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The workspace folders gov reads and writes. */
export interface Workspace {
  /** Absolute root. */
  root: string;
  /** `<root>/.metadata`: state files shared with ComfyGit and the panel. */
  metadataDir: string;
  /** `<root>/environments`. */
  environmentsDir: string;
}

/**
 * Builds the {@linkcode Workspace} paths for a root folder.
 *
 * @example
 * ```ts
 * import { workspaceAt } from "@/workspace/root.ts";
 *
 * const ws = workspaceAt("/srv/comfy");
 * console.log(ws.metadataDir); // /srv/comfy/.metadata
 * ```
 */
export function workspaceAt(root: string): Workspace {
  const abs = resolve(root);
  return {
    root: abs,
    metadataDir: join(abs, ".metadata"),
    environmentsDir: join(abs, "environments"),
  };
}

/**
 * Resolves the workspace for a command: the `--workspace` flag when given (must exist),
 * else discovery. Throws a {@linkcode UsageError} with the fix when none is found.
 *
 * @example
 * ```ts
 * import { resolveWorkspace } from "@/workspace/root.ts";
 * import { type Io } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * const ws = resolveWorkspace("/srv/comfy", { cwd: io.cwd(), env: io.env });
 * ```
 */
export function resolveWorkspace(flag: string | undefined, ctx: DiscoveryContext): Workspace {
  if (flag !== undefined) {
    const root = resolve(ctx.cwd, flag);
    if (!isDir(root)) {
      throw new MissingInputError("workspace folder", root, "pass an existing folder");
    }
    return workspaceAt(root);
  }
  const found = findWorkspaceRoot(ctx);
  if (!found) {
    throw new WorkspaceNotFoundError();
  }
  return workspaceAt(found);
}

/**
 * Names of the environments in a workspace (folders under `environments/` with a valid
 * name), sorted.
 *
 * @example
 * ```ts
 * import { listEnvironments, workspaceAt } from "@/workspace/root.ts";
 *
 * listEnvironments(workspaceAt("/srv/comfy")); // ["prod", "staging"]
 * ```
 */
export function listEnvironments(ws: Workspace): string[] {
  const names: string[] = [];
  try {
    for (const e of Deno.readDirSync(ws.environmentsDir)) {
      if (e.isDirectory && isValidName(e.name) && !e.name.startsWith(".")) names.push(e.name);
    }
  } catch {
    return [];
  }
  return names.sort();
}

/** Result of {@linkcode detectEnvironmentType}. */
export interface Detection {
  /** True when the cwd is a ComfyUI folder of a known environment of a workspace. */
  managed: boolean;
  /** The workspace, when one was found. */
  workspace?: Workspace;
  /** The environment name, when managed. */
  environment?: string;
}

/**
 * Tells whether the working folder is a managed environment: a cwd of the form
 * `<ws>/environments/<name>/ComfyUI` (or below it) with a known `<name>`.
 *
 * @example
 * ```ts
 * import { detectEnvironmentType } from "@/workspace/root.ts";
 *
 * const d = detectEnvironmentType({ cwd: "/srv/comfy/environments/prod/ComfyUI", env: Deno.env.get });
 * // { managed: true, workspace: {...}, environment: "prod" }
 * ```
 */
export function detectEnvironmentType(ctx: DiscoveryContext): Detection {
  const root = findWorkspaceRoot(ctx);
  if (!root) return { managed: false };
  const ws = workspaceAt(root);
  const rel = relative(ws.environmentsDir, resolve(ctx.cwd));
  if (rel.startsWith("..") || rel === "") return { managed: false, workspace: ws };
  const parts = rel.split(sep);
  const name = parts[0];
  if (parts.length < 2 || parts[1] !== "ComfyUI") return { managed: false, workspace: ws };
  if (!listEnvironments(ws).includes(name) || !existsSync(join(ws.environmentsDir, name))) {
    return { managed: false, workspace: ws };
  }
  return { managed: true, workspace: ws, environment: basename(join(ws.environmentsDir, name)) };
}

/**
 * No workspace was named and none was found from the working folder. Exit code 2. The
 * hint names no command-line flag; the CLI adds its own.
 *
 * @example
 * ```ts
 * import { WorkspaceNotFoundError } from "@/workspace/root.ts";
 *
 * throw new WorkspaceNotFoundError();
 * ```
 */
export class WorkspaceNotFoundError extends UsageError {
  constructor() {
    super("no gov workspace found here", {
      hint: "set COMFYGIT_HOME, or run from inside a folder holding .metadata/",
    });
    this.name = "WorkspaceNotFoundError";
  }
}
