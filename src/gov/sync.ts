/**
 * Syncing an environment's production venv from its truth files. The supervisor calls this
 * before every start (first start, exit 42, switch).
 *
 * @module
 */
import type { Environment } from "../workspace/environment.ts";

/** Progress callback: which step is running. */
export type SyncProgress = (step: string) => void;

/**
 * Brings `.venv-prod` in line with `uv.lock` (`uv sync --locked --all-groups`). A no-op for
 * an environment whose `[paths] python` is managed by the host.
 *
 * @example
 * ```ts
 * await syncEnvironment(env);
 * ```
 */
export function syncEnvironment(env: Environment, _onStep?: SyncProgress): Promise<void> {
  if (env.hostManagedPython) return Promise.resolve();
  // Replaced by the dependency-governance layer (uv sync); until it lands, an environment
  // without a host interpreter cannot be synced.
  return Promise.reject(new Error(`syncing ${env.name} needs the uv layer`));
}
