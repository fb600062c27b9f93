/**
 * `gov node remove`: drop the node's dependency group, relock, promote the truth, exact
 * sync so its packages are garbage-collected, drop the record, park or delete its code.
 *
 * Journaled like a promotion: interrupted before `.venv-prod` was synced it is undone
 * (pre-remove snapshot restored, node still registered); after, it is finished.
 *
 * @module
 */
import { join } from "node:path";
import { GovError, NotFoundError } from "../../errors.ts";
import { writeFileAtomic } from "../../fs/atomic.ts";
import { validateName } from "../../workspace/names.ts";
import { UvConflictError } from "../../uv/errors.ts";
import { RemoveFailedError } from "../errors.ts";
import { beginJournal, type JournalHandle } from "../state/journal.ts";
import { candidatePath } from "../state/paths.ts";
import {
  nodeGroup,
  readPyproject,
  removeGroup,
  removeOverrides,
  requirementName,
} from "../state/pyproject.ts";
import { createSnapshot, readSnapshotIndex } from "../state/snapshots.ts";
import {
  copyFileAtomic,
  listTxs,
  newId,
  nowIso,
  readPlugins,
  writePlugins,
  writeTx,
} from "../state/store.ts";
import type { GovContext } from "../steps/context.ts";
import { requireGovManagedPython, requireInitialised } from "../steps/guards.ts";
import { retireCode } from "../steps/node_code.ts";
import { syncProd } from "../steps/prod.ts";
import { type RecoverJournal, restorePreSnapshot } from "../steps/undo.ts";
import { dropWorkdir, freshWorkdir } from "../steps/workdir.ts";

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
 * import { nodeRemove } from "@/gov/ops/node_remove.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * await nodeRemove(ctx, "impact", { purgeCode: true });
 * ```
 */
export async function nodeRemove(
  ctx: GovContext,
  id: string,
  opts: { purgeCode?: boolean },
): Promise<RemoveResult> {
  const reg = await readPlugins(ctx.paths);
  const rec = reg.plugins[id];
  if (!rec) throw new NotFoundError("custom node", id, "see `gov node list`");
  await requireInitialised(ctx);
  if (!opts.purgeCode && reg.plugins[`${id}.disabled`]) {
    // Parking this node's code would take the folder of registered node <id>.disabled.
    throw new GovError(
      `custom node ${id}'s code cannot be parked as ${id}.disabled: that is the folder of registered node ${id}.disabled; nothing was changed`,
      { hint: `remove node ${id}.disabled first, or remove ${id} deleting its code` },
    );
  }
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
  // The finish marks the node's open transactions aborted: an unreadable one must stop the
  // removal here, while nothing has changed, not after production was synced without it.
  await listTxs(ctx.paths);
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
}

/**
 * Undo of a node removal: restores the pre-remove snapshot and re-syncs. Returns the
 * re-sync error, if that failed too.
 */
async function undoRemove(
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
 * Completes a node removal whose production sync succeeded: record removed, open
 * transactions of the node aborted, post-remove snapshot, code disabled or purged.
 * Idempotent.
 */
async function finishRemove(ctx: GovContext, j: JournalHandle): Promise<RemoveResult> {
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

/** Steps after which an interrupted removal is finished rather than undone. */
const REMOVE_DONE = ["prod-synced", "record-removed", "snapshot-post", "code"];

/**
 * Recovery of an interrupted `node remove`: finished once production was synced without
 * the node, else undone (the node stays registered).
 *
 * @example
 * ```ts
 * import { recoverNodeRemove } from "@/gov/ops/node_remove.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { readJournal, resumeJournal } from "@/gov/state/journal.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const journal = await readJournal(ctx.paths);
 * if (journal?.op === "remove") {
 *   const j = resumeJournal(ctx.paths, journal, ctx.getenv);
 *   console.log(await recoverNodeRemove(ctx, j, "interrupted"));
 * }
 * ```
 */
export const recoverNodeRemove: RecoverJournal = async (ctx, j, why) => {
  const id = String(j.data.node_id);
  if (REMOVE_DONE.includes(j.journal.step)) {
    await finishRemove(ctx, j);
    return `finished the interrupted removal of custom node ${id}`;
  }
  const err = await undoRemove(ctx, j, why);
  return `undid the interrupted removal of custom node ${id}; it is still registered${
    err ? `; re-sync failed: ${err}` : ""
  }`;
};
