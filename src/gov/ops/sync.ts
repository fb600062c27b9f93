/**
 * Syncing an environment's production venv from its truth files. The supervisor calls this
 * before every start (first start, exit 42, switch).
 *
 * @module
 */
import type { Environment } from "../workspace/environment.ts";
import { withLockedEnv } from "./context.ts";
import { syncProd } from "./prod.ts";
import { requireInitialised } from "./txrun.ts";

/** Progress callback: which step is running. */
export type SyncProgress = (step: string) => void;

/**
 * Brings `.venv-prod` in line with `uv.lock` (`uv sync --locked --all-groups`). A no-op for
 * an environment whose `[paths] python` is managed by the host. Holds the environment lock
 * (so it never races a promotion) and first recovers any operation a killed gov left half
 * done. Fast when already in sync: gov's sync marker matches and uv is not even started.
 *
 * @example
 * ```ts
 * await syncEnvironment(env, (step) => console.error(step));
 * ```
 */
export async function syncEnvironment(env: Environment, onStep?: SyncProgress): Promise<void> {
  if (env.hostManagedPython) return;
  await withLockedEnv(env, "sync", {
    onStep: onStep
      ? (e) => {
        if (e.state === "start") onStep(e.step);
      }
      : undefined,
    onNote: onStep,
    // A promotion in progress syncs production itself; waiting for it (minutes, when real
    // wheels download) beats failing the start.
    lockWaitMs: Deno.env.get("GOV_LOCK_WAIT") !== undefined ? undefined : 10 * 60_000,
  }, async (ctx) => {
    await requireInitialised(ctx);
    const did = await syncProd(ctx);
    if (did === "in-sync") onStep?.(".venv-prod in sync");
  });
}
