/**
 * Syncing an environment's production venv from its truth files. The supervisor calls this
 * (through mod.ts's `syncEnvironment`) before every start (first start, exit 42, switch).
 *
 * @module
 */
import type { GovContext, GovOptions } from "../steps/context.ts";
import { requireInitialised } from "../steps/guards.ts";
import { syncProd } from "../steps/prod.ts";

/** Progress callback: which step is running. */
export type SyncProgress = (step: string) => void;

/**
 * The session options of a sync: progress and notes go to `onStep`, and the lock is waited
 * for long, since a promotion in progress syncs production itself and waiting for it
 * (minutes, when real wheels download) beats failing the start.
 *
 * @example
 * ```ts
 * import { syncOptions } from "@/gov/ops/sync.ts";
 *
 * const opts = syncOptions((step) => console.error(step));
 * ```
 */
export function syncOptions(onStep?: SyncProgress): GovOptions {
  return {
    onStep: onStep
      ? (e) => {
        if (e.state === "start") onStep(e.step);
      }
      : undefined,
    onNote: onStep,
    lockWaitMs: Deno.env.get("GOV_LOCK_WAIT") !== undefined ? undefined : 10 * 60_000,
  };
}

/**
 * Brings `.venv-prod` in line with `uv.lock` (`uv sync --locked --all-groups`). Fast when
 * already in sync: gov's sync marker matches and uv is not even started. The caller holds
 * the lock.
 *
 * @example
 * ```ts
 * import { sync } from "@/gov/ops/sync.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * await sync(ctx, (step) => console.error(step));
 * ```
 */
export async function sync(ctx: GovContext, onStep?: SyncProgress): Promise<void> {
  await requireInitialised(ctx);
  const did = await syncProd(ctx);
  if (did === "in-sync") onStep?.(".venv-prod in sync");
}
