/**
 * The shared first half of undoing a promote, a node removal or a rollback: put the truth
 * files of the pre-operation snapshot back and rebuild `.venv-prod` from them.
 *
 * @module
 */
import type { GovContext } from "./context.ts";
import type { JournalHandle } from "./journal.ts";
import { syncProd } from "./prod.ts";
import { restoreSnapshot, snapshotExists } from "./snapshots.ts";

/**
 * Journals the undo, restores snapshot `pre` (when it was taken before the kill or failure)
 * and re-syncs prod. Returns the re-sync error message, if prod could not be rebuilt either,
 * so the caller can report both failures; never throws for the re-sync.
 *
 * @example
 * ```ts
 * const resyncError = await restorePreSnapshot(ctx, journal, "snap-1", "smoke test failed");
 * ```
 */
export async function restorePreSnapshot(
  ctx: GovContext,
  j: JournalHandle,
  pre: string | undefined,
  reason: string,
): Promise<string | undefined> {
  await j.step("undoing", { failure: reason });
  if (pre && (await snapshotExists(ctx.paths, pre))) await restoreSnapshot(ctx.paths, pre);
  try {
    await syncProd(ctx);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
