/**
 * What every governance operation runs with: the environment, its paths, how to find uv,
 * where progress and notes go, and the environment lock with crash recovery in front of it.
 *
 * @module
 */
import { exists } from "../fs/atomic.ts";
import type { Environment } from "../workspace/environment.ts";
import { locateUv, type OnStep, Uv } from "../uv/driver.ts";
import { acquireEnvLock, type EnvLock, tryAcquireEnvLock } from "./lock.ts";
import { type GovPaths, govPaths } from "./paths.ts";
import { recover } from "./recovery.ts";

/** Options a caller (the CLI, the supervisor, a test) gives every operation. */
export interface GovOptions {
  /** Environment lookup (GOV_UV, GOV_LOCK_WAIT, GOV_FAULT, PATH, ...). */
  getenv?: (name: string) => string | undefined;
  /** Progress of long steps (uv, git, ComfyUI test starts). */
  onStep?: OnStep;
  /** One-line notes for the user (recovery performed, warnings). */
  onNote?: (message: string) => void;
  /** Extra environment variables for the programs gov starts (uv, git, python); gov's own
   * environment is inherited as usual. */
  childEnv?: Record<string, string>;
  /** How long to wait for another gov holding the environment lock (default GOV_LOCK_WAIT
   * seconds, else 30 s). */
  lockWaitMs?: number;
}

/** The context of one operation on one environment. */
export interface GovContext {
  env: Environment;
  paths: GovPaths;
  getenv: (name: string) => string | undefined;
  onStep?: OnStep;
  /** Reports a note to the user. */
  note(message: string): void;
  /** The uv driver (located on first use; throws when uv is missing). */
  uv(): Uv;
  /** Extra environment for child processes ({@linkcode GovOptions.childEnv}). */
  childEnv: Record<string, string>;
  /** Snapshot retention of the environment. */
  retention: number;
  /** The lock, when this operation holds it. */
  lock?: EnvLock;
}

/**
 * Builds a context without taking the lock (read-only use, tests).
 *
 * @example
 * ```ts
 * const ctx = makeContext(env, { getenv: Deno.env.get });
 * ```
 */
export function makeContext(env: Environment, opts: GovOptions = {}): GovContext {
  const getenv = opts.getenv ?? ((n: string) => Deno.env.get(n));
  let uv: Uv | undefined;
  return {
    env,
    paths: govPaths(env),
    getenv,
    onStep: opts.onStep,
    note: (m) => opts.onNote?.(m),
    uv() {
      if (!uv) {
        uv = new Uv(
          locateUv({ configured: env.config.tools.uv, baseDir: env.dir, getenv }),
          { onStep: opts.onStep, env: opts.childEnv },
        );
      }
      return uv;
    },
    childEnv: opts.childEnv ?? {},
    retention: env.config.rollback.snapshot_retention,
  };
}

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
 * await withLockedEnv(env, "tx promote", {}, (ctx) => promote(ctx, txid, {}));
 * ```
 */
export async function withLockedEnv<T>(
  env: Environment,
  command: string,
  opts: GovOptions,
  fn: (ctx: GovContext) => Promise<T>,
): Promise<T> {
  const ctx = makeContext(env, opts);
  const lock = await acquireEnvLock(ctx.paths.lockFile, {
    command,
    waitMs: lockWait(opts, ctx.getenv),
  });
  ctx.lock = lock;
  try {
    if (lock.tookOverFrom) {
      ctx.note(
        `took over the lock left by \`gov ${lock.tookOverFrom.command}\` (pid ${lock.tookOverFrom.pid}, no longer running)`,
      );
    }
    await recover(ctx);
    return await fn(ctx);
  } finally {
    await lock.release();
  }
}

/**
 * Runs a read-only `fn`. When the lock is free, any interrupted operation is recovered
 * first (so what is read is consistent); when a live gov holds it, reads go ahead
 * without waiting and show the state as it is.
 *
 * @example
 * ```ts
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
      // A read-only folder (e.g. an inspection copy) cannot hold a lock; read as it is.
      if (!(err instanceof Deno.errors.PermissionDenied)) throw err;
    }
  }
  if (lock) {
    try {
      ctx.lock = lock;
      await recover(ctx);
    } finally {
      await lock.release();
      ctx.lock = undefined;
    }
  }
  return await fn(ctx);
}
