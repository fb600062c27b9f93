/**
 * `gov snapshot list|inspect`: the snapshot index and one snapshot's meta.json.
 *
 * @module
 */
import { snapshotDir } from "../state/paths.ts";
import type { SnapshotMeta } from "../state/schema.ts";
import {
  readSnapshotIndex,
  readSnapshotMeta,
  type SnapshotFileState,
  snapshotFileStates,
} from "../state/snapshots.ts";
import type { GovContext } from "../steps/context.ts";

/**
 * The snapshot index entries, oldest first.
 *
 * @example
 * ```ts
 * import { snapshotList } from "@/gov/ops/snapshot_query.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const snaps = await snapshotList(ctx);
 * ```
 */
export async function snapshotList(ctx: GovContext): Promise<SnapshotMeta[]> {
  return (await readSnapshotIndex(ctx.paths)).snapshots;
}

/**
 * A snapshot's meta.json, its folder, and the state of each file it should hold.
 *
 * @example
 * ```ts
 * import { snapshotInspect } from "@/gov/ops/snapshot_query.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const { meta, files } = await snapshotInspect(ctx, "snap-20260101-120000-000-ab12");
 * ```
 */
export async function snapshotInspect(
  ctx: GovContext,
  id: string,
): Promise<{ meta: SnapshotMeta; dir: string; files: Record<string, SnapshotFileState> }> {
  const meta = await readSnapshotMeta(ctx.paths, id);
  return {
    meta,
    dir: snapshotDir(ctx.paths, id),
    files: await snapshotFileStates(ctx.paths, meta),
  };
}
