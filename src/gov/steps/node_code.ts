/**
 * A custom node's code folder, `custom_nodes/<id>`: where it is, and parking it as
 * `<id>.disabled` when its packages go (node removal, a rollback that unregisters it) and
 * back when they return. ComfyUI and ComfyUI-Manager skip `.disabled` folders.
 *
 * @module
 */
import { join } from "node:path";
import { exists } from "../../fs/atomic.ts";
import { validateName } from "../../workspace/names.ts";
import type { PluginRecord } from "../state/schema.ts";
import type { GovContext } from "./context.ts";

/** A registered node with where its code is. */
export interface NodeInfo extends PluginRecord {
  /** Absolute folder of its code. */
  path: string;
  /** Whether that folder exists. */
  code_present: boolean;
}

/**
 * Retires a removed node's code: deleted with `purge`, else renamed to
 * `custom_nodes/<id>.disabled`. Left importable, a node whose packages were just removed
 * would fail ComfyUI's import at every start (and every transaction's test run); ComfyUI
 * and ComfyUI-Manager skip `.disabled` folders. Idempotent.
 *
 * @example
 * ```ts
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { retireCode } from "@/gov/steps/node_code.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * await retireCode(ctx, "impact", false); // "disabled"
 * ```
 */
export async function retireCode(
  ctx: GovContext,
  id: string,
  purge: boolean,
): Promise<"purged" | "disabled" | "absent"> {
  const live = join(ctx.paths.customNodesDir, id);
  const parked = `${live}.disabled`;
  if (purge) {
    const had = (await exists(live)) || (await exists(parked));
    await Deno.remove(live, { recursive: true }).catch(() => {});
    await Deno.remove(parked, { recursive: true }).catch(() => {});
    return had ? "purged" : "absent";
  }
  if (await exists(live)) {
    await Deno.remove(parked, { recursive: true }).catch(() => {});
    await Deno.rename(live, parked);
    return "disabled";
  }
  return (await exists(parked)) ? "disabled" : "absent";
}

/**
 * Parks the code of nodes a rollback unregistered as `<id>.disabled` (their packages are
 * gone with the rollback). Returns the ids disabled.
 *
 * @example
 * ```ts
 * import { disableCode } from "@/gov/steps/node_code.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * await disableCode(ctx, ["impact"]);
 * ```
 */
export async function disableCode(ctx: GovContext, ids: string[]): Promise<string[]> {
  const done: string[] = [];
  for (const id of ids) {
    if ((await retireCode(ctx, validateName("custom node id", id), false)) === "disabled") {
      done.push(id);
    }
  }
  return done;
}

/**
 * Re-enables the code of nodes a rollback registered again, when their folder was parked
 * as `<id>.disabled` by `gov node remove`. Returns the ids re-enabled.
 *
 * @example
 * ```ts
 * import { reenableCode } from "@/gov/steps/node_code.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * await reenableCode(ctx, ["impact"]);
 * ```
 */
export async function reenableCode(ctx: GovContext, ids: string[]): Promise<string[]> {
  const done: string[] = [];
  for (const id of ids) {
    const live = join(ctx.paths.customNodesDir, validateName("custom node id", id));
    if (!(await exists(live)) && (await exists(`${live}.disabled`))) {
      await Deno.rename(`${live}.disabled`, live);
      done.push(id);
    }
  }
  return done;
}
