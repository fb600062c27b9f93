/**
 * What every governance operation runs with: the environment, its paths, how to find uv,
 * where progress and notes go. Taking the lock and recovering first is the session's job
 * (session.ts), one layer up.
 *
 * @module
 */
import type { Environment } from "../../workspace/environment.ts";
import { locateUv, type OnStep, Uv } from "../../uv/driver.ts";
import type { EnvLock } from "../state/lock.ts";
import { type GovPaths, govPaths } from "../state/paths.ts";

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
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const env = loadEnvironment("/srv/comfy/environments/prod");
 * const ctx = makeContext(env, { getenv: (name) => Deno.env.get(name) });
 * console.log(ctx.paths.pyproject);
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
