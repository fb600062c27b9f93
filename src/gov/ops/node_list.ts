/**
 * `gov node list`: the registered custom nodes and what their folders really hold (the
 * recorded commit, another one, local changes, or nothing).
 *
 * @module
 */
import { join } from "node:path";
import { exists } from "../../fs/atomic.ts";
import { readPlugins } from "../state/store.ts";
import type { GovContext } from "../steps/context.ts";
import { inspectCode, type NodeInfo } from "../steps/node_code.ts";

/**
 * The registered custom nodes, sorted by id.
 *
 * @example
 * ```ts
 * import { nodeList } from "@/gov/ops/node_list.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * for (const n of await nodeList(ctx)) console.log(n.id, n.managed_deps);
 * ```
 */
export async function nodeList(ctx: GovContext): Promise<NodeInfo[]> {
  const reg = await readPlugins(ctx.paths);
  const out: NodeInfo[] = [];
  for (const id of Object.keys(reg.plugins).sort()) {
    const rec = reg.plugins[id];
    const path = join(ctx.paths.customNodesDir, id);
    const present = await exists(path);
    // A registry node is an unpacked archive, not a checkout: git has nothing to say of it.
    const code = rec.source === "registry"
      ? { state: present ? "present" as const : "missing" as const, commit: null }
      : await inspectCode(ctx.env.config.tools.git ?? "git", path, rec.commit);
    out.push({
      ...rec,
      path,
      code_present: present,
      code_state: code.state,
      code_commit: code.commit,
    });
  }
  return out;
}
