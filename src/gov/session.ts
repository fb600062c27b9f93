/**
 * The session every governance entry point runs in: take the environment lock, finish or
 * undo what a killed gov left half done (recovery.ts), then run the operation.
 *
 * @module
 */
import { exists } from "../fs/atomic.ts";
import { isNotWritable, storageErrorOf } from "../fs/errors.ts";
import type { Environment } from "../workspace/environment.ts";
import { acquireEnvLock, type EnvLock, tryAcquireEnvLock } from "./state/lock.ts";
import { type GovContext, type GovOptions, makeContext } from "./steps/context.ts";
import { recover } from "./recovery.ts";

function lockWait(opts: GovOptions, getenv: (name: string) => string | undefined): number {
  if (opts.lockWaitMs !== undefined) return opts.lockWaitMs;
  const raw = getenv("GOV_LOCK_WAIT");
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isFinite(n) && n >= 0 ? n * 1000 : 30_000;
}

/**
 * Runs `fn` holding the environment lock, after finishing or undoing any operation a killed
 * gov left half done. The lock is released even when `fn` throws.
 *
 * @example
 * ```ts
 * import { withLockedEnv } from "@/gov/session.ts";
 * import { promote } from "@/gov/ops/promote.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * await withLockedEnv(env, "tx promote", {}, (ctx) => promote(ctx, "tx-1", {}));
 * ```
 */
export async function withLockedEnv<T>(
  env: Environment,
  command: string,
  opts: GovOptions,
  fn: (ctx: GovContext) => Promise<T>,
): Promise<T> {
  const ctx = makeContext(env, opts);
  let lock: EnvLock;
  try {
    lock = await acquireEnvLock(ctx.paths.lockFile, {
      command,
      waitMs: lockWait(opts, ctx.getenv),
    });
  } catch (err) {
    throw storageErrorOf(err) ?? err;
  }
  ctx.lock = lock;
  let failed = false;
  try {
    if (lock.tookOverFrom) {
      ctx.note(
        `took over the lock left by \`gov ${lock.tookOverFrom.command}\` (pid ${lock.tookOverFrom.pid}, no longer running)`,
      );
    }
    await recover(ctx);
    return await fn(ctx);
  } catch (err) {
    failed = true;
    // The operation's own undo has run by now; only the words change.
    throw storageErrorOf(err) ?? err;
  } finally {
    // A lock that cannot be removed (disk full, read-only) must not hide why the operation
    // failed: the next gov sees our pid gone and takes the lock over.
    await lock.release().catch((err) => {
      if (!failed) throw storageErrorOf(err) ?? err;
    });
  }
}

/**
 * Runs a read-only `fn`. When the lock is free, any interrupted operation is recovered
 * first (so what is read is consistent); when a live gov holds it, reads go ahead
 * without waiting and show the state as it is.
 *
 * @example
 * ```ts
 * import { withReadEnv } from "@/gov/session.ts";
 * import { listTxs } from "@/gov/state/store.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * const txs = await withReadEnv(env, "tx list", {}, (ctx) => listTxs(ctx.paths));
 * ```
 */
export async function withReadEnv<T>(
  env: Environment,
  command: string,
  opts: GovOptions,
  fn: (ctx: GovContext) => Promise<T>,
): Promise<T> {
  const ctx = makeContext(env, opts);
  let lock: EnvLock | undefined;
  // An environment that was never initialised has nothing to recover; reading it must not
  // create its state folder.
  if (await exists(ctx.paths.stateDir)) {
    try {
      lock = await tryAcquireEnvLock(ctx.paths.lockFile, command);
    } catch (err) {
      // A read-only folder (an inspection copy, a read-only mount, a full disk) cannot hold
      // a lock; read as it is.
      if (!isNotWritable(err) && storageErrorOf(err)?.condition !== "disk-full") {
        throw storageErrorOf(err) ?? err;
      }
    }
  }
  if (lock) {
    try {
      ctx.lock = lock;
      await recover(ctx);
    } catch (err) {
      // A reader must not need write access: what could not be recovered is shown as it
      // is, and the next command that can write recovers it.
      const storage = storageErrorOf(err);
      if (!storage) throw err;
      ctx.note(
        `could not recover an interrupted operation (${storage.message}); showing the state as it is`,
      );
    } finally {
      await lock.release().catch(() => {});
      ctx.lock = undefined;
    }
  }
  try {
    return await fn(ctx);
  } catch (err) {
    throw storageErrorOf(err) ?? err;
  }
}
