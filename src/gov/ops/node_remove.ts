/**
 * Custom nodes: `gov node add` (clone + register), `gov node list`, and `gov node remove`
 * (drop the node's dependency group, relock, promote the truth, exact sync so its packages
 * are garbage-collected, drop the record, optionally delete its code).
 *
 * `node remove` is journaled like a promotion: interrupted before `.venv-prod` was synced
 * it is undone (pre-remove snapshot restored, node still registered); after, it is
 * finished. `node add` clones into a hidden folder beside `custom_nodes/` and renames it
 * into place, so a failed or interrupted clone leaves nothing behind.
 *
 * @module
 */
import { join } from "node:path";
import { GovError, NotFoundError, ToolError, UsageError } from "../errors.ts";
import { exists, writeFileAtomic } from "../fs/atomic.ts";
import { runProcess, SpawnError } from "../process/run.ts";
import type { Environment } from "../workspace/environment.ts";
import { validateName } from "../workspace/names.ts";
import { timedStep } from "../uv/driver.ts";
import { type GovContext, type GovOptions, withLockedEnv, withReadEnv } from "./context.ts";
import { RemoveFailedError } from "./errors.ts";
import { beginJournal, type JournalHandle } from "./journal.ts";
import { candidatePath } from "./paths.ts";
import { syncProd } from "./prod.ts";
import { requireGovManagedPython } from "./promote.ts";
import {
  nodeGroup,
  readPyproject,
  removeGroup,
  removeOverrides,
  requirementName,
} from "./pyproject.ts";
import { UvConflictError } from "../uv/errors.ts";
import type { PluginRecord } from "./schema.ts";
import { createSnapshot, readSnapshotIndex } from "./snapshots.ts";
import {
  copyFileAtomic,
  listTxs,
  newId,
  nowIso,
  readPlugins,
  writePlugins,
  writeTx,
} from "./store.ts";
import { requireInitialised } from "./txrun.ts";
import { dropWorkdir, freshWorkdir } from "./workdir.ts";
import { restorePreSnapshot } from "./undo.ts";

async function git(
  ctx: GovContext,
  args: string[],
  step: string,
  cwd?: string,
): Promise<string> {
  const exe = ctx.env.config.tools.git ?? "git";
  let r;
  try {
    r = await timedStep(ctx.onStep, step, () =>
      runProcess(exe, args, {
        cwd,
        env: { ...ctx.childEnv, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "echo" },
        timeoutMs: 30 * 60_000,
      }));
  } catch (err) {
    if (err instanceof SpawnError) {
      throw new ToolError(
        "git",
        null,
        err.message,
        "install git or set [tools] git in config.toml",
      );
    }
    throw err;
  }
  if (r.code !== 0) throw new ToolError("git", r.code, r.stderr);
  return r.stdout.trim();
}

/** A registered node with where its code is. */
export interface NodeInfo extends PluginRecord {
  /** Absolute folder of its code. */
  path: string;
  /** Whether that folder exists. */
  code_present: boolean;
}

/**
 * Clones `url` into `<comfyui_dir>/custom_nodes/<id>` (optionally checking out `ref`) and
 * registers it with group `node-<id>` and no managed dependencies yet.
 *
 * @example
 * ```ts
 * await addNode(env, "impact", "https://github.com/ltdrdata/ComfyUI-Impact-Pack", {});
 * ```
 */
export async function addNode(
  env: Environment,
  id: string,
  url: string,
  opts: { ref?: string },
  gopts: GovOptions = {},
): Promise<NodeInfo> {
  validateName("custom node id", id);
  if (!url || url.startsWith("-") || /[\0\n]/.test(url)) {
    throw new UsageError(`invalid git URL '${url}'`, {
      hint: "pass a clone URL or path, e.g. https://github.com/owner/repo",
    });
  }
  if (opts.ref !== undefined && (!opts.ref || opts.ref.startsWith("-") || /\s/.test(opts.ref))) {
    throw new UsageError(`invalid --ref '${opts.ref}'`, { hint: "pass a branch, tag or commit" });
  }
  return await withLockedEnv(env, "node add", gopts, async (ctx) => {
    const reg = await readPlugins(ctx.paths);
    if (reg.plugins[id]) {
      throw new GovError(`custom node ${id} is already registered`, {
        hint: `see \`gov node list\`; remove it first with \`gov node remove ${id}\``,
      });
    }
    const clash = Object.values(reg.plugins).find((r) => nodeGroup(r.id) === nodeGroup(id));
    if (clash) {
      throw new UsageError(
        `custom node id ${id} would share dependency group ${
          nodeGroup(id)
        } with registered node ${clash.id}`,
        { hint: "uv treats case, '_', '.' and '-' alike in group names; pick another id" },
      );
    }
    if (!(await exists(ctx.env.comfyuiDir))) {
      throw new GovError(`ComfyUI folder ${ctx.env.comfyuiDir} does not exist`, {
        hint: "install ComfyUI there, or set [paths] comfyui_dir in config.toml",
      });
    }
    const target = join(ctx.paths.customNodesDir, id);
    if (await exists(target)) {
      throw new GovError(`${target} already exists; the registry was not changed`, {
        hint: "move the folder away, or pick another id",
      });
    }
    await Deno.mkdir(ctx.paths.customNodesDir, { recursive: true });
    // Beside custom_nodes/, not in it: ComfyUI must never import a half-cloned node.
    const tmp = join(ctx.env.comfyuiDir, `.gov-clone-${id}-${newId("c").slice(-4)}`);
    const j = await beginJournal(ctx.paths, "node-add", { node_id: id, tmp, target }, ctx.getenv);
    let placed = false;
    try {
      await git(ctx, ["clone", "--quiet", "--", url, tmp], `git clone ${id}`);
      if (opts.ref) {
        await git(
          ctx,
          ["-C", tmp, "checkout", "--quiet", "--detach", opts.ref],
          `git checkout ${opts.ref}`,
        );
      }
      const commit = await git(ctx, ["-C", tmp, "rev-parse", "HEAD"], "git rev-parse");
      await j.step("cloned");
      await Deno.rename(tmp, target);
      placed = true;
      await j.step("placed");
      const now = nowIso();
      const rec: PluginRecord = {
        id,
        group: nodeGroup(id),
        url,
        ref: opts.ref ?? null,
        commit,
        managed_deps: [],
        added_at: now,
        updated_at: now,
        last_txid: null,
      };
      reg.plugins[id] = rec;
      await writePlugins(ctx.paths, reg);
      await j.finish();
      return { ...rec, path: target, code_present: true };
    } catch (err) {
      await Deno.remove(placed ? target : tmp, { recursive: true }).catch(() => {});
      await j.finish();
      throw err;
    }
  });
}

/**
 * Undo of an interrupted `node add`: without a registry record, the clone goes away.
 *
 * @example
 * ```ts
 * await undoNodeAdd(ctx, journal);
 * ```
 */
export async function undoNodeAdd(ctx: GovContext, j: JournalHandle): Promise<string> {
  const id = j.data.node_id as string;
  const reg = await readPlugins(ctx.paths);
  let what = "registration was complete";
  if (!reg.plugins[id]) {
    // Paths are rebuilt from the validated id, never taken from the journal as they are.
    validateName("custom node id", id);
    const tmp = String(j.data.tmp ?? "");
    if (tmp.startsWith(join(ctx.env.comfyuiDir, `.gov-clone-${id}-`))) {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
    if (j.journal.steps.some((s) => s.step === "placed")) {
      await Deno.remove(join(ctx.paths.customNodesDir, id), { recursive: true }).catch(() => {});
    }
    what = "removed its partial clone";
  }
  await j.finish();
  return `undid interrupted \`gov node add ${id}\` (${what})`;
}

/**
 * The registered custom nodes, sorted by id.
 *
 * @example
 * ```ts
 * for (const n of await listNodes(env)) console.log(n.id, n.managed_deps);
 * ```
 */
export async function listNodes(env: Environment, gopts: GovOptions = {}): Promise<NodeInfo[]> {
  return await withReadEnv(env, "node list", gopts, async (ctx) => {
    const reg = await readPlugins(ctx.paths);
    const out: NodeInfo[] = [];
    for (const id of Object.keys(reg.plugins).sort()) {
      const path = join(ctx.paths.customNodesDir, id);
      out.push({ ...reg.plugins[id], path, code_present: await exists(path) });
    }
    return out;
  });
}

/** What `gov node remove` did. */
export interface RemoveResult {
  node_id: string;
  removed_deps: string[];
  pre_snapshot: string;
  post_snapshot: string | null;
  code_purged: boolean;
  /** What happened to the node's folder: deleted, renamed to `<id>.disabled` (ComfyUI skips
   * such folders), or there was none. */
  code: "purged" | "disabled" | "absent";
  aborted_transactions: string[];
  /** Packages whose resolution pins only this node needed: their overrides were removed. */
  dropped_pins: string[];
  /** Packages whose pins only this node brought but the rest still needs to lock. */
  kept_pins: string[];
}

/**
 * Removes custom node `id`: its dependency group goes, production is exact-synced (its
 * packages no other group needs are uninstalled), its record goes, and its folder is
 * renamed to `<id>.disabled` (deleted with `purgeCode`).
 *
 * @example
 * ```ts
 * await removeNode(env, "impact", { purgeCode: true });
 * ```
 */
export async function removeNode(
  env: Environment,
  id: string,
  opts: { purgeCode?: boolean },
  gopts: GovOptions = {},
): Promise<RemoveResult> {
  validateName("custom node id", id);
  return await withLockedEnv(env, "node remove", gopts, async (ctx) => {
    const reg = await readPlugins(ctx.paths);
    const rec = reg.plugins[id];
    if (!rec) throw new NotFoundError("custom node", id, "see `gov node list`");
    await requireInitialised(ctx);
    const group = nodeGroup(id);
    const py = await readPyproject(ctx.paths.pyproject);
    const hasGroup = group in py.groups;
    // Resolution pins only this node's promotion brought go with it: left behind, an
    // override would keep forcing its version on the remaining nodes for no reason.
    const claimed = new Set(
      Object.values(reg.plugins).filter((r) => r.id !== id).flatMap((r) =>
        (r.pins ?? []).map((p) => requirementName(p))
      ),
    );
    const overridden = new Set(py.overrides.map((o) => requirementName(o)));
    const ownPins = [
      ...new Set(
        (rec.pins ?? []).map((p) => requirementName(p)).filter((n): n is string =>
          !!n && overridden.has(n) && !claimed.has(n)
        ),
      ),
    ];
    const relock = hasGroup || ownPins.length > 0;
    if (relock) {
      requireGovManagedPython(ctx);
      ctx.uv();
    }
    const j = await beginJournal(
      ctx.paths,
      "remove",
      { node_id: id, purge: !!opts.purgeCode, removed_deps: py.groups[group] ?? [] },
      ctx.getenv,
    );
    let pre;
    try {
      pre = await createSnapshot(ctx.paths, "pre-remove", id, { retention: ctx.retention });
    } catch (err) {
      await j.finish();
      throw err;
    }
    await j.step("snapshot-pre", { pre_snapshot: pre.id });
    if (relock) {
      try {
        const work = await freshWorkdir(ctx, `remove-${id}`);
        const file = join(work, "pyproject.toml");
        const withPins = removeGroup(await Deno.readTextFile(file), group, file);
        await writeFileAtomic(file, removeOverrides(withPins, ownPins, file));
        const lock = () =>
          ctx.uv().lock({
            cwd: work,
            projectEnvironment: join(work, ".venv"),
            step: "uv lock (workdir, without the node)",
          });
        let kept: string[] = [];
        try {
          await lock();
        } catch (err) {
          // Something promoted since may lock only with the pin: keep it then.
          if (!(ownPins.length && err instanceof UvConflictError)) throw err;
          await writeFileAtomic(file, withPins);
          kept = ownPins;
          await lock();
        }
        await j.step("locked", {
          dropped_pins: ownPins.filter((n) => !kept.includes(n)),
          kept_pins: kept,
        });
        await copyFileAtomic(join(work, "pyproject.toml"), ctx.paths.pyproject);
        await copyFileAtomic(join(work, "uv.lock"), ctx.paths.lock);
        await j.step("truth-copied");
        await syncProd(ctx, { force: true });
      } catch (err) {
        const reason = (err as Error).message;
        const resyncError = await undoRemove(ctx, j, reason);
        throw new RemoveFailedError(id, reason, pre.id, resyncError);
      }
    }
    await j.step("prod-synced");
    return await finishRemove(ctx, j);
  });
}

/**
 * Undo of a node removal: restores the pre-remove snapshot and re-syncs. Returns the
 * re-sync error, if that failed too.
 *
 * @example
 * ```ts
 * await undoRemove(ctx, journal, "interrupted");
 * ```
 */
export async function undoRemove(
  ctx: GovContext,
  j: JournalHandle,
  reason: string,
): Promise<string | undefined> {
  const pre = j.data.pre_snapshot as string | undefined;
  const resyncError = await restorePreSnapshot(ctx, j, pre, reason);
  await dropWorkdir(ctx, `remove-${validateName("custom node id", String(j.data.node_id))}`);
  await j.finish();
  return resyncError;
}

/**
 * Retires a removed node's code: deleted with `purge`, else renamed to
 * `custom_nodes/<id>.disabled`. Left importable, a node whose packages were just removed
 * would fail ComfyUI's import at every start (and every transaction's test run); ComfyUI
 * and ComfyUI-Manager skip `.disabled` folders. Idempotent.
 */
async function retireCode(
  ctx: GovContext,
  id: string,
  purge: boolean,
): Promise<"purged" | "disabled" | "absent"> {
  const live = join(ctx.paths.customNodesDir, id);
  const parked = `${live}.disabled`;
  if (purge) {
    const had = (await exists(live)) || (await exists(parked));
    await Deno.remove(live, { recursive: true }).catch(() => {});
    await Deno.remove(parked, { recursive: true }).catch(() => {});
    return had ? "purged" : "absent";
  }
  if (await exists(live)) {
    await Deno.remove(parked, { recursive: true }).catch(() => {});
    await Deno.rename(live, parked);
    return "disabled";
  }
  return (await exists(parked)) ? "disabled" : "absent";
}

/**
 * Parks the code of nodes a rollback unregistered as `<id>.disabled` (their packages are
 * gone with the rollback). Returns the ids disabled.
 *
 * @example
 * ```ts
 * await disableCode(ctx, ["impact"]);
 * ```
 */
export async function disableCode(ctx: GovContext, ids: string[]): Promise<string[]> {
  const done: string[] = [];
  for (const id of ids) {
    if ((await retireCode(ctx, validateName("custom node id", id), false)) === "disabled") {
      done.push(id);
    }
  }
  return done;
}

/**
 * Re-enables the code of nodes a rollback registered again, when their folder was parked
 * as `<id>.disabled` by `gov node remove`. Returns the ids re-enabled.
 *
 * @example
 * ```ts
 * await reenableCode(ctx, ["impact"]);
 * ```
 */
export async function reenableCode(ctx: GovContext, ids: string[]): Promise<string[]> {
  const done: string[] = [];
  for (const id of ids) {
    const live = join(ctx.paths.customNodesDir, validateName("custom node id", id));
    if (!(await exists(live)) && (await exists(`${live}.disabled`))) {
      await Deno.rename(`${live}.disabled`, live);
      done.push(id);
    }
  }
  return done;
}

/**
 * Completes a node removal whose production sync succeeded: record removed, open
 * transactions of the node aborted, post-remove snapshot, code disabled or purged.
 * Idempotent.
 *
 * @example
 * ```ts
 * await finishRemove(ctx, journal);
 * ```
 */
export async function finishRemove(ctx: GovContext, j: JournalHandle): Promise<RemoveResult> {
  const id = validateName("custom node id", String(j.data.node_id));
  const aborted: string[] = [];
  if (j.journal.step === "prod-synced") {
    const reg = await readPlugins(ctx.paths);
    delete reg.plugins[id];
    await writePlugins(ctx.paths, reg);
    for (const tx of await listTxs(ctx.paths)) {
      if (tx.node_id !== id || tx.status === "promoted" || tx.status === "aborted") continue;
      if (tx.status === "running") continue;
      await Deno.remove(candidatePath(ctx.paths, tx.txid), { recursive: true }).catch(() => {});
      tx.status = "aborted";
      tx.error = `custom node ${id} was removed`;
      tx.ended_at = tx.ended_at ?? nowIso();
      await writeTx(ctx.paths, tx);
      aborted.push(tx.txid);
    }
    await j.step("record-removed", { post_snapshot: newId("snap") });
  }
  const post = j.data.post_snapshot as string;
  if (j.journal.step === "record-removed") {
    const idx = await readSnapshotIndex(ctx.paths);
    if (!idx.snapshots.some((s) => s.id === post)) {
      await createSnapshot(ctx.paths, "post-remove", id, {
        retention: ctx.retention,
        id: post,
      });
    }
    await j.step("snapshot-post");
  }
  if (j.journal.step !== "code") await j.step("code");
  const code = await retireCode(ctx, id, !!j.data.purge);
  await dropWorkdir(ctx, `remove-${id}`);
  await j.finish();
  return {
    node_id: id,
    removed_deps: (j.data.removed_deps as string[] | undefined) ?? [],
    pre_snapshot: String(j.data.pre_snapshot ?? ""),
    post_snapshot: post ?? null,
    code_purged: code === "purged",
    code,
    aborted_transactions: aborted,
    dropped_pins: (j.data.dropped_pins as string[] | undefined) ?? [],
    kept_pins: (j.data.kept_pins as string[] | undefined) ?? [],
  };
}
