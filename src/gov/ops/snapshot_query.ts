/**
 * `gov snapshot list|inspect`: the snapshot index and one snapshot's meta.json.
 *
 * @module
 */
import type { Environment } from "../workspace/environment.ts";
import { validateName } from "../workspace/names.ts";
import { type GovOptions, withReadEnv } from "./context.ts";
import { snapshotDir } from "./paths.ts";
import type { SnapshotMeta } from "./schema.ts";
import { readSnapshotIndex, readSnapshotMeta } from "./snapshots.ts";

/**
 * The snapshot index entries, oldest first.
 *
 * @example
 * ```ts
 * const snaps = await listSnapshots(env);
 * ```
 */
export async function listSnapshots(
  env: Environment,
  gopts: GovOptions = {},
): Promise<SnapshotMeta[]> {
  return await withReadEnv(env, "snapshot list", gopts, async (ctx) => {
    return (await readSnapshotIndex(ctx.paths)).snapshots;
  });
}

/**
 * A snapshot's meta.json plus its folder.
 *
 * @example
 * ```ts
 * const { meta, dir } = await inspectSnapshot(env, id);
 * ```
 */
export async function inspectSnapshot(
  env: Environment,
  id: string,
  gopts: GovOptions = {},
): Promise<{ meta: SnapshotMeta; dir: string }> {
  validateName("snapshot id", id);
  return await withReadEnv(env, "snapshot inspect", gopts, async (ctx) => {
    return { meta: await readSnapshotMeta(ctx.paths, id), dir: snapshotDir(ctx.paths, id) };
  });
}
