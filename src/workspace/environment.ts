/**
 * An environment: a folder holding `config.toml`, its ComfyUI, its truth files
 * (`pyproject.toml`, `uv.lock`, `state/plugins.json`) and its production venv `.venv-prod`.
 *
 * @module
 */
import { isAbsolute, join, resolve } from "node:path";
import { existsSync } from "node:fs";
import { MissingInputError, NotFoundError, UsageError } from "../errors.ts";
import { type EnvironmentConfig, parseEnvironmentConfig } from "./config.ts";
import { validateName } from "./names.ts";
import { findWorkspaceRoot, listEnvironments, type Workspace, workspaceAt } from "./root.ts";

/** A resolved environment with absolute paths. */
export interface Environment {
  /** Its name (the folder name). */
  name: string;
  /** Absolute environment folder. */
  dir: string;
  /** `<dir>/config.toml`. */
  configPath: string;
  /** Parsed configuration (defaults when the file is absent). */
  config: EnvironmentConfig;
  /** Absolute ComfyUI folder (`[paths] comfyui_dir`, default `<dir>/ComfyUI`). */
  comfyuiDir: string;
  /** Interpreter that runs ComfyUI. */
  python: string;
  /** True when `[paths] python` is set: the host manages Python and gov never syncs it. */
  hostManagedPython: boolean;
  /** The workspace it belongs to, when it is inside one. */
  workspace?: Workspace;
}

/**
 * Loads the environment in folder `dir`. A missing `config.toml` means all defaults.
 *
 * @example
 * ```ts
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * console.log(env.python); // /srv/comfy/environments/prod/.venv-prod/bin/python
 * ```
 */
export function loadEnvironment(dir: string, workspace?: Workspace): Environment {
  const abs = resolve(dir);
  const configPath = join(abs, "config.toml");
  let text = "";
  try {
    text = Deno.readTextFileSync(configPath);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const config = parseEnvironmentConfig(text, configPath);
  const comfy = config.paths.comfyui_dir ?? "ComfyUI";
  const comfyuiDir = isAbsolute(comfy) ? comfy : join(abs, comfy);
  const py = config.paths.python;
  return {
    name: abs.split("/").filter(Boolean).pop() ?? abs,
    dir: abs,
    configPath,
    config,
    comfyuiDir,
    python: py ? (isAbsolute(py) ? py : join(abs, py)) : join(abs, ".venv-prod", "bin", "python"),
    hostManagedPython: py !== undefined,
    workspace,
  };
}

/**
 * Loads environment `name` of a workspace; throws {@linkcode NotFoundError} listing the
 * environments that do exist.
 *
 * @example
 * ```ts
 * import { workspaceEnvironment } from "@/workspace/environment.ts";
 * import { workspaceAt } from "@/workspace/root.ts";
 *
 * const env = workspaceEnvironment(workspaceAt("/srv/comfy"), "prod");
 * ```
 */
export function workspaceEnvironment(ws: Workspace, name: string): Environment {
  validateName("environment name", name);
  const dir = join(ws.environmentsDir, name);
  if (!existsSync(dir)) {
    const known = listEnvironments(ws);
    throw new NotFoundError(
      "environment",
      name,
      known.length
        ? `known environments: ${known.join(", ")}`
        : `create ${dir} (with config.toml and ComfyUI/)`,
    );
  }
  return loadEnvironment(dir, ws);
}

/** How a command names its environment. */
export interface EnvironmentSelector {
  /** The workspace folder, when the user named one. */
  workspace?: string;
  /** An environment's name inside the workspace. */
  env?: string;
  /** A standalone environment folder. */
  envDir?: string;
  /** The invocation's working folder. */
  cwd: string;
  /** Environment lookup. */
  getenv: (name: string) => string | undefined;
}

/**
 * Picks the environment a command works on: `envDir`, else `env` in the workspace,
 * else the environment whose folder holds the cwd, else a cwd that is itself an
 * environment folder (has `config.toml`).
 *
 * @example
 * ```ts
 * import { selectEnvironment } from "@/workspace/environment.ts";
 *
 * const env = selectEnvironment({ env: "prod", cwd: Deno.cwd(), getenv: Deno.env.get });
 * ```
 */
export function selectEnvironment(sel: EnvironmentSelector): Environment {
  if (sel.envDir !== undefined && sel.env !== undefined) {
    throw new EnvironmentSelectionError("both");
  }
  if (sel.envDir !== undefined) {
    const dir = resolve(sel.cwd, sel.envDir);
    if (!existsSync(dir)) {
      throw new MissingInputError("environment folder", dir, "pass an existing folder");
    }
    return loadEnvironment(dir);
  }
  const root = sel.workspace !== undefined
    ? resolve(sel.cwd, sel.workspace)
    : findWorkspaceRoot({ cwd: sel.cwd, env: sel.getenv });
  const ws = root ? workspaceAt(root) : undefined;
  if (sel.env !== undefined) {
    if (!ws) {
      throw new EnvironmentSelectionError("no-workspace", { env: sel.env });
    }
    return workspaceEnvironment(ws, sel.env);
  }
  const cwd = resolve(sel.cwd);
  if (ws && cwd.startsWith(ws.environmentsDir + "/")) {
    const name = cwd.slice(ws.environmentsDir.length + 1).split("/")[0];
    return workspaceEnvironment(ws, name);
  }
  if (existsSync(join(cwd, "config.toml"))) return loadEnvironment(cwd, ws);
  throw new EnvironmentSelectionError("none", {
    environments: ws ? listEnvironments(ws) : undefined,
  });
}

/**
 * How a command's choice of environment went wrong: `both` (a name and a folder were given),
 * `no-workspace` (a name, with no workspace to look it up in), `none` (nothing given, and
 * the working folder is no environment). Exit code 2. The message names no command-line
 * flag; the CLI words the fix in its flags.
 *
 * @example
 * ```ts
 * import { EnvironmentSelectionError } from "@/workspace/environment.ts";
 *
 * throw new EnvironmentSelectionError("none", { environments: ["prod", "staging"] });
 * ```
 */
export class EnvironmentSelectionError extends UsageError {
  /** What went wrong. */
  reason: "both" | "no-workspace" | "none";
  /** The environment name given (`no-workspace`). */
  env?: string;
  /** The workspace's environments (`none`, when there is a workspace). */
  environments?: string[];
  constructor(
    reason: "both" | "no-workspace" | "none",
    detail: { env?: string; environments?: string[] } = {},
  ) {
    const { env, environments } = detail;
    super(
      reason === "both"
        ? "an environment name and an environment folder exclude each other"
        : reason === "no-workspace"
        ? `environment ${env} needs a workspace and none was found`
        : "no environment selected",
      {
        hint: reason === "both"
          ? "name an environment of the workspace, or an environment folder"
          : reason === "no-workspace"
          ? "name the workspace folder, or the environment's own folder"
          : environments
          ? `name an environment (one of: ${environments.join(", ") || "none yet"})`
          : "name an environment folder, or a workspace and an environment in it",
      },
    );
    this.name = "EnvironmentSelectionError";
    this.reason = reason;
    this.env = env;
    this.environments = environments;
  }
}
