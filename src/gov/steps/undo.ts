/**
 * The shared first half of undoing a promote, a node removal or a rollback: put the truth
 * files of the pre-operation snapshot back and rebuild `.venv-prod` from them. Also the
 * shape of the recovery handler each journaled operation exports for recovery.ts.
 *
 * @module
 */
import type { GovContext } from "./context.ts";
import type { JournalHandle } from "../state/journal.ts";
import { syncProd } from "./prod.ts";
import { restoreSnapshot, snapshotExists } from "../state/snapshots.ts";

/**
 * Recovers one journaled operation a killed gov left half done: finishes it when it got far
 * enough, else undoes it (`why` says what interrupted it). Returns the one-line note for
 * the user. Each operation's module exports its own; recovery.ts dispatches on the
 * journal's `op`.
 */
export type RecoverJournal = (
  ctx: GovContext,
  j: JournalHandle,
  why: string,
) => Promise<string>;

/**
 * Journals the undo, restores snapshot `pre` (when it was taken before the kill or failure)
 * and re-syncs prod. Returns the re-sync error message, if prod could not be rebuilt either,
 * so the caller can report both failures; never throws for the re-sync.
 *
 * @example
 * ```ts
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { restorePreSnapshot } from "@/gov/steps/undo.ts";
 * import { beginJournal } from "@/gov/state/journal.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const j = await beginJournal(ctx.paths, "rollback", { target: "snap-1" }, ctx.getenv);
 * const resyncError = await restorePreSnapshot(ctx, j, "snap-1", "smoke test failed");
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
