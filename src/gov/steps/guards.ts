/**
 * Preconditions several operations share. Each throws a one-line error naming what is
 * wrong and the fix, before the operation changes anything.
 *
 * @module
 */
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { ConfigError, GovError, RefusedError } from "../../errors.ts";
import { exists } from "../../fs/atomic.ts";
import { readPyproject } from "../state/pyproject.ts";
import { MissingTruthFileError, newestSnapshotCopy } from "../state/store.ts";
import type { GovContext } from "./context.ts";

/**
 * Throws unless the environment was initialised (`gov init`) and its pyproject.toml and
 * uv.lock parse.
 *
 * @example
 * ```ts
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { requireInitialised } from "@/gov/steps/guards.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * await requireInitialised(makeContext(loadEnvironment("/srv/comfy/environments/prod")));
 * ```
 */
export async function requireInitialised(ctx: GovContext): Promise<void> {
  await requireTruthIntact(ctx);
  if (!(await exists(ctx.paths.pyproject)) || !(await exists(ctx.paths.lock))) {
    throw new RefusedError(`environment ${ctx.env.name} is not initialised (${ctx.paths.dir})`, {
      hint: "run `gov init` in it first",
    });
  }
  // Validate both before uv sees them: a hand-edited file gets an error naming it and the
  // field, not a uv parse error half-way through an operation.
  await readPyproject(ctx.paths.pyproject);
  const lockText = await Deno.readTextFile(ctx.paths.lock);
  let lock: Record<string, unknown>;
  try {
    lock = parseToml(lockText) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(
      ctx.paths.lock,
      "",
      `is not valid TOML (${(err as Error).message.split("\n")[0]})`,
    );
  }
  if (typeof lock.version !== "number") {
    throw new ConfigError(ctx.paths.lock, "version", "a number");
  }
}

/**
 * Throws a {@linkcode MissingTruthFileError} when pyproject.toml is gone from an environment
 * that was initialised (its uv.lock or a snapshot is there): `gov init` would otherwise
 * write a fresh one without the nodes' dependency groups, and the next sync would uninstall
 * their packages.
 *
 * @example
 * ```ts
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { requireTruthIntact } from "@/gov/steps/guards.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * await requireTruthIntact(makeContext(loadEnvironment("/srv/comfy/environments/prod")));
 * ```
 */
export async function requireTruthIntact(ctx: GovContext): Promise<void> {
  if (await exists(ctx.paths.pyproject)) return;
  const copy = await newestSnapshotCopy(ctx.paths, "pyproject.toml");
  if ((await exists(ctx.paths.lock)) || copy) {
    throw new MissingTruthFileError(ctx.paths.pyproject, copy);
  }
}

/**
 * Throws unless the custom node's code folder exists (its requirements live there).
 *
 * @example
 * ```ts
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { requireNodeCode } from "@/gov/steps/guards.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * await requireNodeCode(ctx, "impact");
 * ```
 */
export async function requireNodeCode(ctx: GovContext, nodeId: string): Promise<void> {
  const dir = join(ctx.paths.customNodesDir, nodeId);
  if (!(await exists(dir))) {
    throw new GovError(`the code of custom node ${nodeId} is missing (${dir})`, {
      hint: (await exists(`${dir}.disabled`))
        ? `it was disabled by \`gov node remove\`; remove and add it again with \`gov node add\``
        : `remove it with \`gov node remove ${nodeId}\` and add it again with \`gov node add\``,
    });
  }
}

/**
 * Throws when the environment's interpreter is managed by the host (`[paths] python`):
 * gov then never changes its packages.
 *
 * @example
 * ```ts
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { requireGovManagedPython } from "@/gov/steps/guards.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * requireGovManagedPython(makeContext(loadEnvironment("/srv/comfy/environments/prod")));
 * ```
 */
export function requireGovManagedPython(ctx: GovContext): void {
  if (ctx.env.hostManagedPython) {
    throw new RefusedError(
      `environment ${ctx.env.name} uses a host-managed Python (${ctx.env.python}); gov does not change its packages`,
      { hint: "remove [paths] python from config.toml to let gov manage .venv-prod" },
    );
  }
}
