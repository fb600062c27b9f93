/**
 * `gov snapshot export` and `gov snapshot diff`: the state of the environment now, or as a
 * gov snapshot kept it, as a ComfyUI-Manager/comfy-cli snapshot, and the difference between
 * two such states (nodes added, removed and moved; packages added, removed, upgraded and
 * downgraded, core packages flagged).
 *
 * @module
 */
import { join } from "node:path";
import { compare as comparePep440 } from "@renovatebot/pep440";
import { type PluginRecord, type PluginsFile, validatePlugins } from "../state/schema.ts";
import { corePackages, lockFreeze } from "../state/freeze.ts";
import { canonicalName } from "../state/pyproject.ts";
import { loadSnapshot } from "../state/snapshots.ts";
import { snapshotDir } from "../state/paths.ts";
import { readPlugins } from "../state/store.ts";
import { runProcess } from "../../process/run.ts";
import type { GovContext } from "../steps/context.ts";
import type { ExportContent } from "./snapshot_format.ts";

/** One side of a diff or an export: nodes and locked packages. */
export interface GovState {
  /** `current` or the snapshot id. */
  label: string;
  plugins: Record<string, PluginRecord>;
  /** `name==version` lines from the side's uv.lock. */
  packages: string[];
  /** Parked git nodes (`custom_nodes/<id>.disabled`), current state only. */
  parked: { id: string; url: string; commit: string }[];
}

async function gitOut(ctx: GovContext, args: string[]): Promise<string | null> {
  const r = await runProcess(ctx.env.config.tools.git ?? "git", args, {
    env: { ...ctx.childEnv, GIT_TERMINAL_PROMPT: "0" },
  }).catch(() => null);
  return r && r.code === 0 ? r.stdout.trim() : null;
}

async function parkedNodes(ctx: GovContext): Promise<GovState["parked"]> {
  const out: GovState["parked"] = [];
  let entries: Deno.DirEntry[] = [];
  try {
    entries = await Array.fromAsync(Deno.readDir(ctx.paths.customNodesDir));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (!e.isDirectory || !e.name.endsWith(".disabled")) continue;
    const dir = join(ctx.paths.customNodesDir, e.name);
    const url = await gitOut(ctx, ["-C", dir, "remote", "get-url", "origin"]);
    const commit = await gitOut(ctx, ["-C", dir, "rev-parse", "HEAD"]);
    if (url && commit) out.push({ id: e.name.slice(0, -".disabled".length), url, commit });
  }
  return out;
}

/**
 * The nodes and packages of the environment now (`current`) or of gov snapshot `id`.
 *
 * @example
 * ```ts
 * import { readGovState } from "@/gov/ops/snapshot_export.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * console.log((await readGovState(ctx, "current")).packages);
 * ```
 */
export async function readGovState(ctx: GovContext, id: string): Promise<GovState> {
  if (id === "current") {
    const reg = await readPlugins(ctx.paths);
    return {
      label: id,
      plugins: reg.plugins,
      packages: lockFreeze(await Deno.readTextFile(ctx.paths.lock), ctx.paths.lock),
      parked: await parkedNodes(ctx),
    };
  }
  const { contents } = await loadSnapshot(ctx.paths, id);
  const dir = snapshotDir(ctx.paths, id);
  const text = new TextDecoder();
  const reg: PluginsFile = validatePlugins(
    JSON.parse(text.decode(contents.get("plugins.json")!)),
    join(dir, "plugins.json"),
  );
  return {
    label: id,
    plugins: reg.plugins,
    packages: lockFreeze(text.decode(contents.get("uv.lock")!), join(dir, "uv.lock")),
    parked: [],
  };
}

/**
 * What a Manager/comfy-cli snapshot of `state` holds: git nodes at their commits (parked
 * ones disabled), registry nodes at their versions, the locked packages, and ComfyUI's
 * commit. Returns the nodes it cannot express too (a git record without a commit).
 *
 * @example
 * ```ts
 * import { exportContent, readGovState } from "@/gov/ops/snapshot_export.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const { content } = await exportContent(ctx, await readGovState(ctx, "current"));
 * ```
 */
export async function exportContent(
  ctx: GovContext,
  state: GovState,
): Promise<{ content: ExportContent; left_out: string[] }> {
  const content: ExportContent = {
    comfyui: await gitOut(ctx, ["-C", ctx.env.comfyuiDir, "rev-parse", "HEAD"]),
    git: [],
    registry: [],
    packages: state.packages,
  };
  const leftOut: string[] = [];
  for (const id of Object.keys(state.plugins).sort()) {
    const rec = state.plugins[id];
    if (rec.source === "registry") {
      content.registry.push({ id: rec.registry_id ?? id, version: rec.version ?? "latest" });
    } else if (rec.commit) {
      content.git.push({ url: rec.url, commit: rec.commit, disabled: false });
    } else leftOut.push(`${id}: no commit recorded`);
  }
  for (const p of state.parked) {
    if (!state.plugins[p.id]) content.git.push({ url: p.url, commit: p.commit, disabled: true });
  }
  return { content, left_out: leftOut };
}

/** A node's pin: commit (git) or version (registry). */
function pinOf(rec: PluginRecord): string {
  return rec.source === "registry" ? `${rec.version ?? "?"}` : rec.commit ?? "?";
}

/** What `gov snapshot diff` reports. */
export interface SnapshotDiff {
  a: string;
  b: string;
  nodes: {
    added: { id: string; source: string; pin: string }[];
    removed: { id: string; source: string; pin: string }[];
    moved: { id: string; source: string; from: string; to: string }[];
  };
  packages: {
    added: { name: string; version: string; core: boolean }[];
    removed: { name: string; version: string; core: boolean }[];
    upgraded: { name: string; from: string; to: string; core: boolean }[];
    downgraded: { name: string; from: string; to: string; core: boolean }[];
  };
}

function versions(lines: string[]): Map<string, { name: string; version: string }> {
  const out = new Map<string, { name: string; version: string }>();
  for (const l of lines) {
    const i = l.indexOf("==");
    if (i > 0) {
      out.set(canonicalName(l.slice(0, i)), { name: l.slice(0, i), version: l.slice(i + 2) });
    }
  }
  return out;
}

/**
 * The difference from state `a` to state `b`.
 *
 * @example
 * ```ts
 * import { diffGovStates, readGovState } from "@/gov/ops/snapshot_export.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const d = diffGovStates(ctx, await readGovState(ctx, "snap-1"), await readGovState(ctx, "current"));
 * ```
 */
export function diffGovStates(ctx: GovContext, a: GovState, b: GovState): SnapshotDiff {
  const core = new Set(corePackages(ctx.env.config.tx.core_packages).map(canonicalName));
  const out: SnapshotDiff = {
    a: a.label,
    b: b.label,
    nodes: { added: [], removed: [], moved: [] },
    packages: { added: [], removed: [], upgraded: [], downgraded: [] },
  };
  const src = (r: PluginRecord) => r.source ?? "git";
  for (const id of Object.keys(b.plugins).sort()) {
    const rb = b.plugins[id], ra = a.plugins[id];
    if (!ra) out.nodes.added.push({ id, source: src(rb), pin: pinOf(rb) });
    else if (pinOf(ra) !== pinOf(rb) || src(ra) !== src(rb)) {
      out.nodes.moved.push({ id, source: src(rb), from: pinOf(ra), to: pinOf(rb) });
    }
  }
  for (const id of Object.keys(a.plugins).sort()) {
    if (!b.plugins[id]) {
      out.nodes.removed.push({ id, source: src(a.plugins[id]), pin: pinOf(a.plugins[id]) });
    }
  }
  const va = versions(a.packages), vb = versions(b.packages);
  for (const [key, p] of [...vb].sort()) {
    const before = va.get(key);
    const isCore = core.has(key);
    if (!before) out.packages.added.push({ name: p.name, version: p.version, core: isCore });
    else if (before.version !== p.version) {
      let cmp: number;
      try {
        cmp = comparePep440(p.version, before.version);
      } catch {
        cmp = p.version.localeCompare(before.version);
      }
      const entry = { name: p.name, from: before.version, to: p.version, core: isCore };
      (cmp < 0 ? out.packages.downgraded : out.packages.upgraded).push(entry);
    }
  }
  for (const [key, p] of [...va].sort()) {
    if (!vb.has(key)) {
      out.packages.removed.push({ name: p.name, version: p.version, core: core.has(key) });
    }
  }
  return out;
}
