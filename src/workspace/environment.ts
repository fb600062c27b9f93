/**
 * An environment: a folder holding `config.toml`, its ComfyUI, its truth files
 * (`pyproject.toml`, `uv.lock`, `state/plugins.json`) and its production venv `.venv-prod`.
 *
 * @module
 */
import { isAbsolute, join, resolve } from "node:path";
import { existsSync } from "node:fs";
import { GovError, NotFoundError } from "../errors.ts";
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
  /** `--workspace DIR`. */
  workspace?: string;
  /** `--env NAME` (inside the workspace). */
  env?: string;
  /** `--env-dir DIR` (a standalone environment folder). */
  envDir?: string;
  /** The invocation's working folder. */
  cwd: string;
  /** Environment lookup. */
  getenv: (name: string) => string | undefined;
}

/**
 * Picks the environment a command works on: `--env-dir`, else `--env` in the workspace,
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
    const err = new GovError("--env and --env-dir exclude each other", {
      hint: "pass --env NAME for an environment of the workspace, or --env-dir DIR",
    });
    err.exitCode = 2;
    throw err;
  }
  if (sel.envDir !== undefined) {
    const dir = resolve(sel.cwd, sel.envDir);
    if (!existsSync(dir)) {
      const err = new GovError(`environment folder ${dir} does not exist`, {
        hint: "pass an existing folder to --env-dir",
      });
      err.exitCode = 2;
      throw err;
    }
    return loadEnvironment(dir);
  }
  const root = sel.workspace !== undefined
    ? resolve(sel.cwd, sel.workspace)
    : findWorkspaceRoot({ cwd: sel.cwd, env: sel.getenv });
  const ws = root ? workspaceAt(root) : undefined;
  if (sel.env !== undefined) {
    if (!ws) {
      const err = new GovError(`--env ${sel.env} needs a workspace and none was found`, {
        hint: "pass --workspace DIR, or use --env-dir DIR for a standalone environment",
      });
      err.exitCode = 2;
      throw err;
    }
    return workspaceEnvironment(ws, sel.env);
  }
  const cwd = resolve(sel.cwd);
  if (ws && cwd.startsWith(ws.environmentsDir + "/")) {
    const name = cwd.slice(ws.environmentsDir.length + 1).split("/")[0];
    return workspaceEnvironment(ws, name);
  }
  if (existsSync(join(cwd, "config.toml"))) return loadEnvironment(cwd, ws);
  const err = new GovError("no environment selected", {
    hint: ws
      ? `pass --env NAME (one of: ${listEnvironments(ws).join(", ") || "none yet"})`
      : "pass --env-dir DIR, or --workspace DIR --env NAME",
  });
  err.exitCode = 2;
  throw err;
}
