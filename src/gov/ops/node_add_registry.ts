/**
 * `gov node add <registry-id>[@version]`: installs a custom node from the Comfy Registry and
 * registers it like a cloned one (group `node-<id>`, no managed dependencies yet). It is
 * journaled as `node-add` with the same hidden staging folder beside `custom_nodes/`, so
 * the recovery of an interrupted `node add` removes a half-unpacked archive too.
 *
 * The record says `source = "registry"` with the registry id, version and archive hash;
 * `url` is the archive's download URL and `commit` stays null. A node installed again at a
 * recorded version passes the recorded hash, so a registry that changed the archive behind
 * a version number is refused.
 *
 * @module
 */
import { join } from "node:path";
import { validateName } from "../../workspace/names.ts";
import { timedStep } from "../../uv/driver.ts";
import {
  DEFAULT_REGISTRY_URL,
  fetchRegistryNode,
  loadRegistrySettings,
  parseRegistrySpec,
} from "../../registry/mod.ts";
import { beginJournal } from "../state/journal.ts";
import { nodeGroup } from "../state/pyproject.ts";
import type { PluginRecord } from "../state/schema.ts";
import { newId, nowIso, readPlugins, writePlugins } from "../state/store.ts";
import type { GovContext } from "../steps/context.ts";
import type { NodeInfo } from "../steps/node_code.ts";
import { checkFreeNodeSlot } from "./node_add.ts";

/** What `gov node add <registry-id>[@version]` installs. */
export interface RegistrySource {
  /** The registry's node id (also the custom node's id). */
  registryId: string;
  /** The version; the latest when absent. */
  version?: string;
  /** `sha256:<hex>` the archive must have (a recorded install). */
  expectedHash?: string;
}

/** True when a record came from the Comfy Registry rather than git. */
export function isRegistryRecord(rec: PluginRecord): boolean {
  return rec.source === "registry";
}

/**
 * Checks `<registry-id>[@version]` before anything is locked (exit 2 on bad input).
 *
 * @example
 * ```ts
 * import { checkRegistryAdd } from "@/gov/ops/node_add_registry.ts";
 *
 * checkRegistryAdd("comfyui-kjnodes@1.1.0"); // { registryId: "comfyui-kjnodes", version: "1.1.0" }
 * ```
 */
export function checkRegistryAdd(spec: string): RegistrySource {
  const { id, version } = parseRegistrySpec(spec);
  validateName("custom node id", id);
  return version === undefined ? { registryId: id } : { registryId: id, version };
}

/**
 * The registry gov installs from: `GOV_REGISTRY_URL` when set (a host or test override),
 * else `[registry] url` of the workspace's gov.toml, else the public registry.
 *
 * @example
 * ```ts
 * import { registryUrl } from "@/gov/ops/node_add_registry.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * console.log(await registryUrl(makeContext(loadEnvironment("/srv/comfy/environments/prod"))));
 * ```
 */
export async function registryUrl(ctx: GovContext): Promise<string> {
  const over = ctx.getenv("GOV_REGISTRY_URL");
  if (over) return over.replace(/\/+$/, "");
  const ws = ctx.env.workspace;
  return ws ? (await loadRegistrySettings(ws.root)).url : DEFAULT_REGISTRY_URL;
}

/** The plugins.json record of a registry install. */
export function registryRecord(
  id: string,
  got: { version: string; hash: string; downloadUrl: string },
  baseUrl: string,
): PluginRecord {
  const now = nowIso();
  return {
    id,
    group: nodeGroup(id),
    url: got.downloadUrl,
    ref: got.version,
    commit: null,
    managed_deps: [],
    added_at: now,
    updated_at: now,
    last_txid: null,
    source: "registry",
    registry_id: id,
    registry_url: baseUrl,
    version: got.version,
    hash: got.hash,
  };
}

/**
 * Downloads registry node `src.registryId` into `dest` through the journaled staging folder
 * `node add` uses (`<comfyui>/.gov-clone-<id>-*`). The caller owns the journal.
 */
export async function fetchIntoPlace(
  ctx: GovContext,
  id: string,
  src: RegistrySource,
  dest: string,
  staging: string,
): Promise<PluginRecord> {
  const baseUrl = await registryUrl(ctx);
  const step = `registry fetch ${src.registryId}${src.version ? `@${src.version}` : ""}`;
  const got = await timedStep(
    ctx.onStep,
    step,
    () =>
      fetchRegistryNode(src.registryId, src.version, {
        dest,
        baseUrl,
        staging,
        expectedHash: src.expectedHash,
      }),
  );
  return registryRecord(id, got, baseUrl);
}

/**
 * Installs registry node `src` into `<comfyui_dir>/custom_nodes/<id>` and registers it.
 * A hash mismatch, an unsafe archive or an unknown version leaves nothing on disk and the
 * registry untouched.
 *
 * @example
 * ```ts
 * import { nodeAddRegistry } from "@/gov/ops/node_add_registry.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * await nodeAddRegistry(ctx, { registryId: "comfyui-kjnodes", version: "1.1.0" });
 * ```
 */
export async function nodeAddRegistry(ctx: GovContext, src: RegistrySource): Promise<NodeInfo> {
  const id = src.registryId;
  const reg = await readPlugins(ctx.paths);
  const target = await checkFreeNodeSlot(ctx, reg, id);
  await Deno.mkdir(ctx.paths.customNodesDir, { recursive: true });
  // The prefix `node add`'s recovery already cleans up.
  const tmp = join(ctx.env.comfyuiDir, `.gov-clone-${id}-${newId("c").slice(-4)}`);
  const j = await beginJournal(
    ctx.paths,
    "node-add",
    { node_id: id, tmp, target, source: "registry" },
    ctx.getenv,
  );
  let placed = false;
  try {
    // Before the fetch, whose last act is the rename into place: the target did not exist
    // (checked under the lock), so recovery may remove whatever a killed fetch left there.
    await j.step("placed");
    placed = true;
    const rec = await fetchIntoPlace(ctx, id, src, target, tmp);
    reg.plugins[id] = rec;
    await writePlugins(ctx.paths, reg);
    await j.finish();
    return { ...rec, path: target, code_present: true };
  } catch (err) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    if (placed) await Deno.remove(target, { recursive: true }).catch(() => {});
    await j.finish();
    throw err;
  }
}
