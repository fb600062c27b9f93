/**
 * Isolated working copies of the truth files (`state/work/<name>`). Every dependency
 * change is declared and locked there first; the environment's own pyproject.toml and
 * uv.lock change only when a complete, locked result is copied over them (seed 003 §5.1).
 *
 * @module
 */
import { dirname, join } from "node:path";
import { isValidName } from "../../workspace/names.ts";
import { exists, writeFileAtomic } from "../../fs/atomic.ts";
import { stripAnsi, UvConflictError } from "../../uv/errors.ts";
import { NoSuchVersionError } from "../errors.ts";
import type { GovContext } from "./context.ts";
import { readPyproject, removeGroup, setOverrides } from "../state/pyproject.ts";
import { writeRequirementsFile } from "./requirements.ts";
import type { ConflictRef, Transaction, TxDiff } from "../state/schema.ts";
import { diffFreeze, lockFreeze } from "../state/freeze.ts";
import { copyFileAtomic, nowIso, readPlugins, writeConflict } from "../state/store.ts";
import { workPath, workPrefix } from "../state/paths.ts";
import type { ExtraGroup } from "./multi_node.ts";

/** Files copied into a workdir: the two uv truth files and uv's interpreter pin. */
const WORK_FILES = ["pyproject.toml", "uv.lock", ".python-version"];

/**
 * Creates the workdir `name` afresh (see {@linkcode workPath}) with copies of the current
 * truth files.
 *
 * @example
 * ```ts
 * import { freshWorkdir } from "@/gov/steps/workdir.ts";
 * import { type GovContext } from "@/gov/steps/context.ts";
 * declare const ctx: GovContext;
 * declare const txid: string;
 *
 * const work = await freshWorkdir(ctx, txid);
 * ```
 */
export async function freshWorkdir(ctx: GovContext, name: string): Promise<string> {
  await dropWorkdir(ctx, name);
  let dir = workPath(ctx.paths, name);
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.PermissionDenied)) throw err;
    dir = workPath(ctx.paths, name, true);
    await Deno.mkdir(dir, { recursive: true });
  }
  for (const f of WORK_FILES) {
    const from = join(ctx.paths.dir, f);
    if (await exists(from)) await copyFileAtomic(from, join(dir, f));
  }
  return dir;
}

/**
 * Removes a workdir, wherever it was made (best effort).
 *
 * @example
 * ```ts
 * import { dropWorkdir } from "@/gov/steps/workdir.ts";
 * import { type GovContext } from "@/gov/steps/context.ts";
 * declare const ctx: GovContext;
 * declare const txid: string;
 *
 * await dropWorkdir(ctx, txid);
 * ```
 */
export async function dropWorkdir(ctx: GovContext, name: string): Promise<void> {
  await Deno.remove(workPath(ctx.paths, name), { recursive: true }).catch(() => {});
  await Deno.remove(workPath(ctx.paths, name, true), { recursive: true }).catch(() => {});
}

/**
 * Names of the environment's existing workdirs.
 *
 * @example
 * ```ts
 * import { listWorkdirs } from "@/gov/steps/workdir.ts";
 * import { type GovContext } from "@/gov/steps/context.ts";
 * declare const ctx: GovContext;
 *
 * for (const name of await listWorkdirs(ctx)) console.log(name);
 * ```
 */
export async function listWorkdirs(ctx: GovContext): Promise<string[]> {
  const names = new Set<string>();
  const prefix = workPrefix(ctx.paths);
  for (
    const [dir, strip] of [[dirname(ctx.paths.dir), prefix], [ctx.paths.workDir, ""]] as const
  ) {
    try {
      for await (const e of Deno.readDir(dir)) {
        if (!e.isDirectory || !e.name.startsWith(strip)) continue;
        const name = e.name.slice(strip.length);
        if (isValidName(name)) names.add(name);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return [...names].sort();
}

/** What applying a node's requirements produced. */
export interface PlanResult {
  /** The requirement strings now in the node's group (the node's `managed_deps`). */
  managedDeps: string[];
  /** The overrides in effect. */
  overrides: string[];
}

/**
 * In `workdir`: replaces the node's group with its requirements (`uv add --group node-<id>
 * --no-sync --raw -r ...`), merges `pins` into `[tool.uv] override-dependencies`, and
 * locks (`uv lock`). Throws uv's classified errors; on failure uv itself leaves the
 * workdir files as they were before its run.
 *
 * @example
 * ```ts
 * import { applyNodePlan } from "@/gov/steps/workdir.ts";
 * import { type GovContext } from "@/gov/steps/context.ts";
 * declare const ctx: GovContext;
 * declare const work: string;
 *
 * await applyNodePlan(ctx, work, { group: "node-x", requirements: ["tqdm"], pins: [] });
 * ```
 */
export async function applyNodePlan(
  ctx: GovContext,
  workdir: string,
  plan: {
    group: string;
    requirements: string[];
    pins: string[];
    projectEnvironment?: string;
    /** More groups set alongside, locked once with the rest (multi-node transactions). */
    extra?: ExtraGroup[];
  },
): Promise<PlanResult> {
  const uv = ctx.uv();
  uv.knownNodes = Object.keys((await readPlugins(ctx.paths)).plugins);
  const pyPath = join(workdir, "pyproject.toml");
  let text = await Deno.readTextFile(pyPath);
  const groups = [plan, ...(plan.extra ?? [])];
  // A node that is promoted again (updated) gets its group replaced, not merged: a
  // requirement it dropped must go away.
  for (const g of groups) text = removeGroup(text, g.group, pyPath);
  if (plan.pins.length) text = setOverrides(text, plan.pins, pyPath);
  await writeFileAtomic(pyPath, text);
  const venv = plan.projectEnvironment ?? join(workdir, ".venv");
  try {
    for (const g of groups) {
      if (!g.requirements.length) continue;
      const file = await writeRequirementsFile(workdir, g.group, g.requirements);
      await uv.addGroup(g.group, file, { cwd: workdir, projectEnvironment: venv });
    }
    await uv.lock({ cwd: workdir, projectEnvironment: venv, step: "uv lock (workdir)" });
  } catch (err) {
    throw missingVersionOf(err) ?? err;
  }
  const py = await readPyproject(pyPath);
  return {
    managedDeps: groups.flatMap((g) => py.groups[g.group] ?? []),
    overrides: py.overrides,
  };
}

/**
 * The {@linkcode NoSuchVersionError} behind a uv "conflict" that is really a requirement no
 * published version satisfies ("there is no version of six==9.9.9", "only six<=1.17.0 is
 * available and ... depends on six>=99"), or undefined for anything else. When uv also
 * says two sides "are incompatible", it is a real conflict and stays one.
 *
 * @example
 * ```ts
 * import { missingVersionOf } from "@/gov/steps/workdir.ts";
 * declare const err: unknown;
 *
 * throw missingVersionOf(err) ?? err;
 * ```
 */
export function missingVersionOf(err: unknown): NoSuchVersionError | undefined {
  if (!(err instanceof UvConflictError)) return undefined;
  const text = stripAnsi(err.stderr).replace(/\s+/g, " ");
  if (/\bare incompatible\b/.test(text)) return undefined;
  const wanted = new Set<string>();
  for (
    const m of text.matchAll(/there is no version of ([A-Za-z0-9][A-Za-z0-9._\[\],-]*[^\s,]*)/g)
  ) {
    wanted.add(m[1]);
  }
  for (
    const m of text.matchAll(
      /only [A-Za-z0-9][A-Za-z0-9._-]*\S* (?:is|are) available and \S+ depends on ([A-Za-z0-9][A-Za-z0-9._-]*[^\s,]*)/g,
    )
  ) wanted.add(m[1]);
  if (wanted.size === 0) return undefined;
  const says = text.match(/Because [^.]*\./)?.[0] ?? err.failure.summary;
  return new NoSuchVersionError([...wanted].sort(), err.failure.nodes, says);
}

/**
 * Writes `state/conflicts/<txid>.json` for a conflict uv reported and returns the pointer
 * kept in the transaction.
 *
 * @example
 * ```ts
 * import { recordConflict } from "@/gov/steps/workdir.ts";
 * import { type Transaction } from "@/gov/state/schema.ts";
 * import { type GovContext } from "@/gov/steps/context.ts";
 * import { type UvConflictError } from "@/uv/errors.ts";
 * declare const ctx: GovContext;
 * declare const err: UvConflictError;
 * declare const tx: Transaction;
 *
 * tx.conflict_report = await recordConflict(ctx, tx, err, "tx promote");
 * ```
 */
export async function recordConflict(
  ctx: GovContext,
  tx: Transaction,
  err: UvConflictError,
  stage: string,
  pins: string[] = tx.resolution_pins,
): Promise<ConflictRef> {
  const f = err.failure;
  // The transaction's own node is always involved, even when uv phrases the conflict
  // against the base requirements only.
  const nodes = [...new Set([...f.nodes, tx.node_id])].sort();
  const created_at = nowIso();
  const path = await writeConflict(ctx.paths, {
    txid: tx.txid,
    node_id: tx.node_id,
    created_at,
    stage,
    nodes,
    groups: f.groups,
    involves_base: f.involvesBase,
    packages: f.packages,
    summary: f.summary,
    pins,
    exit_code: err.code ?? 1,
    raw: err.stderr,
  });
  return { path, nodes, packages: f.packages, summary: f.summary, created_at };
}

/**
 * What production would change to: the difference between the environment's uv.lock and the
 * one locked in `workdir`.
 *
 * @example
 * ```ts
 * import { lockDiff } from "@/gov/steps/workdir.ts";
 * import { type GovContext } from "@/gov/steps/context.ts";
 * declare const ctx: GovContext;
 * declare const work: string;
 *
 * const change = await lockDiff(ctx, work); // {changed: [{name: "torch", ...}], ...}
 * ```
 */
export async function lockDiff(ctx: GovContext, workdir: string): Promise<TxDiff> {
  const work = join(workdir, "uv.lock");
  return diffFreeze(
    lockFreeze(await Deno.readTextFile(ctx.paths.lock), ctx.paths.lock),
    lockFreeze(await Deno.readTextFile(work), work),
  );
}
