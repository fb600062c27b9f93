/**
 * Where an environment keeps its governance files (seed 003 §3.1).
 *
 * ```text
 * <env>/config.toml  pyproject.toml  uv.lock  .venv-prod/  .venv-candidate/<txid>/
 * <env>/snapshots/<id>/{pyproject.toml, uv.lock, plugins.json, meta.json}
 * <env>/state/{plugins.json, snapshots_index.json, journal.json, .lock, prod_sync.json,
 *              transactions/, conflicts/, logs/, work/}
 * ```
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import type { Environment } from "../../workspace/environment.ts";
import { validateName } from "../../workspace/names.ts";

/** Absolute paths of one environment's governance files. */
export interface GovPaths {
  dir: string;
  config: string;
  pyproject: string;
  lock: string;
  pythonVersion: string;
  prodVenv: string;
  candidatesDir: string;
  snapshotsDir: string;
  stateDir: string;
  plugins: string;
  snapshotsIndex: string;
  journal: string;
  lockFile: string;
  syncMarker: string;
  transactionsDir: string;
  conflictsDir: string;
  logsDir: string;
  workDir: string;
  customNodesDir: string;
}

/**
 * Paths of environment `env`.
 *
 * @example
 * ```ts
 * import { govPaths } from "@/gov/state/paths.ts";
 * import { type Environment } from "@/workspace/environment.ts";
 * declare const env: Environment;
 *
 * const p = govPaths(env);
 * console.log(p.plugins); // <env>/state/plugins.json
 * ```
 */
export function govPaths(env: Environment): GovPaths {
  const d = env.dir;
  const state = join(d, "state");
  return {
    dir: d,
    config: env.configPath,
    pyproject: join(d, "pyproject.toml"),
    lock: join(d, "uv.lock"),
    pythonVersion: join(d, ".python-version"),
    prodVenv: join(d, ".venv-prod"),
    candidatesDir: join(d, ".venv-candidate"),
    snapshotsDir: join(d, "snapshots"),
    stateDir: state,
    plugins: join(state, "plugins.json"),
    snapshotsIndex: join(state, "snapshots_index.json"),
    journal: join(state, "journal.json"),
    lockFile: join(state, ".lock"),
    syncMarker: join(state, "prod_sync.json"),
    transactionsDir: join(state, "transactions"),
    conflictsDir: join(state, "conflicts"),
    logsDir: join(state, "logs"),
    workDir: join(state, "work"),
    customNodesDir: join(env.comfyuiDir, "custom_nodes"),
  };
}

/**
 * Path of a transaction's JSON file; validates the txid so it cannot leave its folder.
 *
 * @example
 * ```ts
 * import { txPath } from "@/gov/state/paths.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const p: GovPaths;
 *
 * txPath(p, "tx-20260101-120000-ab12");
 * ```
 */
export function txPath(p: GovPaths, txid: string): string {
  return join(p.transactionsDir, `${validateName("transaction id", txid)}.json`);
}

/**
 * Path of a transaction's conflict report.
 *
 * @example
 * ```ts
 * import { conflictPath } from "@/gov/state/paths.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const p: GovPaths;
 *
 * conflictPath(p, "tx-20260101-120000-ab12");
 * ```
 */
export function conflictPath(p: GovPaths, txid: string): string {
  return join(p.conflictsDir, `${validateName("transaction id", txid)}.json`);
}

/**
 * Folder of snapshot `id`.
 *
 * @example
 * ```ts
 * import { snapshotDir } from "@/gov/state/paths.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const p: GovPaths;
 *
 * snapshotDir(p, "snap-20260101T120000000-ab12");
 * ```
 */
export function snapshotDir(p: GovPaths, id: string): string {
  return join(p.snapshotsDir, validateName("snapshot id", id));
}

/**
 * Candidate venv of a transaction (`.venv-candidate/<txid>`).
 *
 * @example
 * ```ts
 * import { candidatePath } from "@/gov/state/paths.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const p: GovPaths;
 *
 * candidatePath(p, "tx-20260101-120000-ab12");
 * ```
 */
export function candidatePath(p: GovPaths, txid: string): string {
  return join(p.candidatesDir, validateName("transaction id", txid));
}

/**
 * The isolated working copy of the truth files for one operation. It sits beside the
 * environment folder (`<parent>/.<env>.gov-work.<name>`), at the same depth, because uv
 * records local find-links folders in uv.lock relative to the project (`registry =
 * "../../wheels"`): a lock made one or two folders deeper would name a different folder once
 * copied into the environment. `state/work/<name>` is the fallback when the parent folder
 * is not writable (then only index URLs and absolute find-links lock portably).
 *
 * @example
 * ```ts
 * import { workPath } from "@/gov/state/paths.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const p: GovPaths;
 *
 * workPath(p, "tx-20260101-120000-ab12"); // "/srv/envs/.prod.gov-work.tx-20260101-120000-ab12"
 * ```
 */
export function workPath(p: GovPaths, name: string, fallback = false): string {
  validateName("work folder", name);
  if (fallback) return join(p.workDir, name);
  return join(dirname(p.dir), `${workPrefix(p)}${name}`);
}

/**
 * Name prefix of this environment's sibling workdirs.
 *
 * @example
 * ```ts
 * import { workPrefix } from "@/gov/state/paths.ts";
 * import { type GovPaths } from "@/gov/state/paths.ts";
 * declare const p: GovPaths;
 *
 * workPrefix(p); // ".prod.gov-work."
 * ```
 */
export function workPrefix(p: GovPaths): string {
  return `.${basename(p.dir)}.gov-work.`;
}
