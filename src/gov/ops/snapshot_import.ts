/**
 * `gov snapshot import FILE`: brings every node of a ComfyUI-Manager or comfy-cli snapshot
 * into the environment as ONE transaction.
 *
 * 1. plan: each node of the file is added (cloned at its commit, or fetched from the Comfy
 *    Registry at its version), adopted (its folder is already there at that commit),
 *    parked (disabled in the file: cloned as `<id>.disabled`, unregistered, the way
 *    `gov node remove` parks code), unchanged, or kept as it is (registered at another pin);
 *    a folder in the way refuses the whole import before anything changes;
 * 2. the code comes in node by node through `gov node add`'s own journaled steps;
 * 3. one transaction carries all the nodes (`node_ids`): one candidate venv, one test start
 *    of ComfyUI, one diff;
 * 4. one promotion: the core gate, pre/post snapshots, restore on failure;
 * 5. any failure in 3-4 takes the imported nodes out again (records and fetched code), so
 *    the environment is as before; the transaction stays on record for inspection.
 *
 * A gov killed during the import leaves at worst nodes registered without dependencies
 * (as after `gov node add`); importing again takes them into its transaction.
 *
 * @module
 */
import { basename, join } from "node:path";
import { GovError } from "../../errors.ts";
import { NeedsResolutionError, PromoteGateError } from "../errors.ts";
import { exists } from "../../fs/atomic.ts";
import { runProcess } from "../../process/run.ts";
import { checkNodeAdd, nodeAdd } from "./node_add.ts";
import { fetchIntoPlace, isRegistryRecord, nodeAddRegistry } from "./node_add_registry.ts";
import { promote } from "./promote.ts";
import { beginTxRun, recordTxRun, testTxRun } from "./tx_run.ts";
import { canonicalName, nodeGroup } from "../state/pyproject.ts";
import { beginJournal } from "../state/journal.ts";
import { createSnapshot, deleteSnapshot } from "../state/snapshots.ts";
import type { PluginRecord, PluginsFile, Transaction } from "../state/schema.ts";
import { newId, nowIso, readPlugins, readTx, writePlugins, writeTx } from "../state/store.ts";
import type { GovContext } from "../steps/context.ts";
import { requireGovManagedPython, requireInitialised } from "../steps/guards.ts";
import { type ManagerSnapshot, normalizeGitUrl, type SnapshotPip } from "./snapshot_format.ts";

/** What the import does with one node of the file. */
export type ImportAction =
  | "add"
  | "adopt"
  | "park"
  | "restore"
  | "unchanged"
  | "keep"
  | "skip";

/** One node of the file and its fate. */
export interface ImportNode {
  id: string;
  source: "git" | "registry";
  /** The URL (git) or registry id. */
  from: string;
  /** Commit (git) or version (registry) as the file pins it. */
  pin: string;
  disabled: boolean;
  action: ImportAction;
  /** Why, for `keep` and `skip`; what was resolved, for `latest`. */
  note?: string;
}

/** The snapshot's `pips` against what the import installs. */
export interface PipsReport {
  /** Entries pinned into group `snapshot-pips` (`--with-pips`). */
  pinned: string[];
  /** Entries no imported node or base requirement brings in, left out. */
  left_out: string[];
  /** Entries the candidate has at another version: `name: file -> installed`. */
  differ: { name: string; snapshot: string; installed: string }[];
  /** Entries gov never installs from a snapshot (torch/nvidia wheels, URLs, unparsable). */
  not_installed: string[];
}

/** What `gov snapshot import` did, or would do with `--dry-run`. */
export interface ImportResult {
  file: string;
  dry_run: boolean;
  nodes: ImportNode[];
  /** Nodes the transaction carries. */
  tx_nodes: string[];
  txid: string | null;
  status: string;
  /** Taken before any node came in: \`gov rollback\` to it undoes the whole import. */
  before_snapshot: string | null;
  pre_snapshot: string | null;
  post_snapshot: string | null;
  pips: PipsReport;
  /** The file's ComfyUI commit, and the one of the ComfyUI folder (gov never moves it). */
  comfyui: { snapshot: string | null; current: string | null };
  notes: string[];
}

/** Options of {@linkcode snapshotImport}. */
export interface ImportOptions {
  dryRun?: boolean;
  withPips?: boolean;
  approveCore?: boolean;
  timeoutSec?: number;
  /** Resolution pins (`<package>==<version>`, checked), as `gov resolve` takes them. */
  pins?: string[];
}

/** The group that holds the pinned `pips` of an imported snapshot. */
export const PIPS_GROUP = "snapshot-pips";

// ComfyUI-Manager never restores these from a snapshot either: they are tied to the host's
// CUDA, and gov's core gate governs them.
const HOST_WHEELS = /^(torch|torchvision|torchaudio|nvidia-.*|triton|xformers)$/;

async function gitOut(ctx: GovContext, args: string[]): Promise<string | null> {
  const r = await runProcess(ctx.env.config.tools.git ?? "git", args, {
    env: { ...ctx.childEnv, GIT_TERMINAL_PROMPT: "0" },
  }).catch(() => null);
  return r && r.code === 0 ? r.stdout.trim() : null;
}

function samePin(a: string | null | undefined, b: string): boolean {
  if (!a) return false;
  const x = a.toLowerCase(), y = b.toLowerCase();
  return x.startsWith(y) || y.startsWith(x);
}

async function planGit(
  ctx: GovContext,
  reg: PluginsFile,
  n: ManagerSnapshot["git"][number],
  blockers: string[],
): Promise<ImportNode> {
  const base = {
    id: n.id,
    source: "git" as const,
    from: n.url,
    pin: n.commit,
    disabled: n.disabled,
  };
  const rec = reg.plugins[n.id];
  const live = join(ctx.paths.customNodesDir, n.id);
  if (rec) {
    if (n.disabled) {
      return { ...base, action: "keep", note: "registered; `gov node remove` parks it" };
    }
    if (!isRegistryRecord(rec) && normalizeGitUrl(rec.url) !== normalizeGitUrl(n.url)) {
      return { ...base, action: "keep", note: `registered from ${rec.url}` };
    }
    if (isRegistryRecord(rec) || !samePin(rec.commit, n.commit)) {
      return {
        ...base,
        action: "keep",
        note: `registered at ${rec.commit?.slice(0, 12) ?? `version ${rec.version}`}`,
      };
    }
    if (!(await exists(live)) && !(await exists(`${live}.disabled`))) {
      return { ...base, action: "restore", note: "registered, its code is missing" };
    }
    return { ...base, action: rec.last_txid ? "unchanged" : "adopt" };
  }
  if (n.disabled) {
    if (await exists(`${live}.disabled`)) return { ...base, action: "unchanged" };
    if (await exists(live)) blockers.push(`${live} (the snapshot has ${n.id} disabled)`);
    return { ...base, action: "park" };
  }
  if (await exists(live)) {
    const head = await gitOut(ctx, ["-C", live, "rev-parse", "HEAD"]);
    if (head && samePin(head, n.commit)) return { ...base, action: "adopt" };
    blockers.push(
      `${live} (${
        head ? `at ${head.slice(0, 12)}, not ${n.commit.slice(0, 12)}` : "not a git checkout"
      })`,
    );
  } else if (await exists(`${live}.disabled`)) {
    blockers.push(`${live}.disabled (parked code of ${n.id})`);
  }
  return { ...base, action: "add" };
}

async function planRegistry(
  ctx: GovContext,
  reg: PluginsFile,
  n: ManagerSnapshot["registry"][number],
  blockers: string[],
): Promise<ImportNode> {
  const base = {
    id: n.id,
    source: "registry" as const,
    from: n.id,
    pin: n.version,
    disabled: false,
  };
  const live = join(ctx.paths.customNodesDir, n.id);
  if (n.version === "nightly" || n.version === "unknown") {
    return {
      ...base,
      action: "skip",
      note: `a ${n.version} registry node is a git checkout; add it by URL with \`gov node add\``,
    };
  }
  if (n.version !== "latest" && !/^\d+\.\d+\.\d+$/.test(n.version)) {
    return { ...base, action: "skip", note: `'${n.version}' is no registry version` };
  }
  const rec = reg.plugins[n.id];
  if (rec) {
    if (!isRegistryRecord(rec) || (n.version !== "latest" && rec.version !== n.version)) {
      return {
        ...base,
        action: "keep",
        note: `registered at ${rec.version ? `version ${rec.version}` : rec.commit?.slice(0, 12)}`,
      };
    }
    if (!(await exists(live)) && !(await exists(`${live}.disabled`))) {
      // Fetched again against the recorded hash: the same version must be the same bytes.
      return { ...base, action: "restore", note: "registered, its code is missing" };
    }
    return { ...base, action: rec.last_txid ? "unchanged" : "adopt" };
  }
  for (const p of [live, `${live}.disabled`]) if (await exists(p)) blockers.push(p);
  return {
    ...base,
    action: "add",
    ...(n.version === "latest" ? { note: "the registry's latest version at import" } : {}),
  };
}

function pipsReport(
  snap: ManagerSnapshot,
  withPips: boolean,
): { report: PipsReport; lines: string[] } {
  const report: PipsReport = { pinned: [], left_out: [], differ: [], not_installed: [] };
  const lines: string[] = [];
  for (const p of snap.pips) {
    if (!p.name || !p.version || HOST_WHEELS.test(p.name)) report.not_installed.push(p.raw);
    else if (withPips) {
      lines.push(`${p.name}==${p.version}`);
      report.pinned.push(p.raw);
    }
  }
  return { report, lines };
}

/** Compares the file's pins with what the candidate installed. */
function judgePips(snap: ManagerSnapshot, report: PipsReport, postFreeze: string[]): void {
  const installed = new Map<string, string>();
  for (const l of postFreeze) {
    const i = l.indexOf("==");
    if (i > 0) installed.set(canonicalName(l.slice(0, i)), l.slice(i + 2));
  }
  for (const p of snap.pips as (SnapshotPip & { name: string; version: string })[]) {
    if (!p.name || !p.version || HOST_WHEELS.test(p.name)) continue;
    const have = installed.get(p.name);
    if (have === undefined) {
      if (!report.pinned.includes(p.raw)) report.left_out.push(p.raw);
    } else if (have !== p.version) {
      report.differ.push({ name: p.name, snapshot: p.version, installed: have });
    }
  }
}

/** Plans the import of `snap` against the environment as it is (no change). */
async function plan(
  ctx: GovContext,
  snap: ManagerSnapshot,
): Promise<{ nodes: ImportNode[]; blockers: string[] }> {
  const reg = await readPlugins(ctx.paths);
  const blockers: string[] = [];
  const nodes: ImportNode[] = [];
  for (const n of snap.git) nodes.push(await planGit(ctx, reg, n, blockers));
  for (const n of snap.registry) nodes.push(await planRegistry(ctx, reg, n, blockers));
  return { nodes, blockers };
}

/**
 * Brings the code of `n` into `custom_nodes/<id>.disabled` (parked) or `custom_nodes/<id>`
 * (a registered node whose code is missing) without touching the registry, through the
 * staging folder `node add` journals and recovery cleans.
 */
async function placeCode(ctx: GovContext, n: ImportNode, rec?: PluginRecord): Promise<void> {
  const target = join(ctx.paths.customNodesDir, n.action === "park" ? `${n.id}.disabled` : n.id);
  const tmp = join(ctx.env.comfyuiDir, `.gov-clone-${n.id}-${newId("c").slice(-4)}`);
  const j = await beginJournal(ctx.paths, "node-add", { node_id: n.id, tmp, target }, ctx.getenv);
  try {
    if (n.source === "registry") {
      await fetchIntoPlace(
        ctx,
        n.id,
        {
          registryId: rec?.registry_id ?? n.id,
          version: rec?.version ?? n.pin,
          expectedHash: rec?.hash,
        },
        target,
        tmp,
      );
      return;
    }
    const git = ctx.env.config.tools.git ?? "git";
    const env = { ...ctx.childEnv, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "echo" };
    for (
      const args of [
        ["clone", "--quiet", "--", n.from, tmp],
        ["-C", tmp, "checkout", "--quiet", "--detach", n.pin],
      ]
    ) {
      const r = await runProcess(git, args, { env, timeoutMs: 30 * 60_000 });
      if (r.code !== 0) {
        throw new GovError(
          `git ${args[0] === "clone" ? "clone" : "checkout"} of ${n.id} failed: ${
            r.stderr.trim().split("\n").slice(-1)[0]
          }`,
        );
      }
    }
    await Deno.mkdir(ctx.paths.customNodesDir, { recursive: true });
    await Deno.rename(tmp, target);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    await j.finish();
  }
}

/** Takes the imported nodes out again: records of added/adopted ones, code gov fetched. */
async function takeOut(ctx: GovContext, fetched: ImportNode[], adopted: string[]): Promise<void> {
  const reg = await readPlugins(ctx.paths);
  let changed = false;
  for (const n of fetched) {
    // A restored node keeps its record (it was registered before), only its code goes.
    if (n.action !== "restore" && reg.plugins[n.id]) {
      delete reg.plugins[n.id];
      changed = true;
    }
    const dir = join(ctx.paths.customNodesDir, n.action === "park" ? `${n.id}.disabled` : n.id);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  for (const id of adopted) {
    if (reg.plugins[id] && !reg.plugins[id].last_txid) {
      delete reg.plugins[id];
      changed = true;
    }
  }
  if (changed) await writePlugins(ctx.paths, reg);
}

/**
 * Closes the transaction of a failed import: its nodes are gone, so neither `gov resolve`
 * nor `gov tx promote` can go on with it. Its record (status reached, conflict report, run
 * output) stays for `gov tx inspect`.
 */
async function closeTx(ctx: GovContext, txid: string, err: unknown): Promise<void> {
  const tx = await readTx(ctx.paths, txid).catch(() => undefined);
  if (!tx || tx.status === "promoted" || tx.status === "aborted") return;
  tx.import_status = tx.status;
  tx.status = "aborted";
  tx.error = `snapshot import failed (${(err as Error)?.message ?? err}); its nodes were taken out`;
  tx.ended_at ??= nowIso();
  delete tx.pid;
  await writeTx(ctx.paths, tx);
}

/** Registers a folder that is already in place at the snapshot's commit. */
function adoptedRecord(n: ImportNode): PluginRecord {
  const now = nowIso();
  return {
    id: n.id,
    group: nodeGroup(n.id),
    url: n.from,
    ref: null,
    commit: n.pin,
    managed_deps: [],
    added_at: now,
    updated_at: now,
    last_txid: null,
    source: "git",
  };
}

/**
 * The dry run of an import: what would change, nothing touched. The caller holds a read
 * session.
 *
 * @example
 * ```ts
 * import { planSnapshotImport } from "@/gov/ops/snapshot_import.ts";
 * import { parseManagerSnapshot } from "@/gov/ops/snapshot_format.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const snap = parseManagerSnapshot(await Deno.readTextFile("s.json"), "s.json");
 * console.log((await planSnapshotImport(ctx, snap, "s.json", {})).nodes);
 * ```
 */
export async function planSnapshotImport(
  ctx: GovContext,
  snap: ManagerSnapshot,
  file: string,
  opts: ImportOptions,
): Promise<ImportResult> {
  await requireInitialised(ctx);
  const { nodes, blockers } = await plan(ctx, snap);
  const { report } = pipsReport(snap, !!opts.withPips);
  const notes = [...snap.skipped];
  if (blockers.length) notes.push(`in the way (the import would refuse): ${blockers.join("; ")}`);
  return result(ctx, snap, file, true, nodes, report, notes);
}

async function result(
  ctx: GovContext,
  snap: ManagerSnapshot,
  file: string,
  dryRun: boolean,
  nodes: ImportNode[],
  pips: PipsReport,
  notes: string[],
  tx?: Transaction,
  before?: string,
): Promise<ImportResult> {
  const current = await gitOut(ctx, ["-C", ctx.env.comfyuiDir, "rev-parse", "HEAD"]);
  if (snap.comfyui && !samePin(current, snap.comfyui)) {
    notes.push(
      `the snapshot's ComfyUI is ${snap.comfyui.slice(0, 12)}, this one ${
        current?.slice(0, 12) ?? "no git checkout"
      }; gov does not move ComfyUI itself`,
    );
  }
  if (snap.files.length) {
    notes.push(
      `single-file nodes left out (gov manages node folders; the Manager does not restore them either): ${
        snap.files.map((f) => f.filename).join(", ")
      }`,
    );
  }
  const promotion = (tx?.promotion ?? {}) as Record<string, unknown>;
  return {
    file,
    dry_run: dryRun,
    nodes,
    tx_nodes: tx
      ? (tx.node_ids ?? [tx.node_id])
      : dryRun
      ? nodes.filter((n) => ["add", "adopt", "restore"].includes(n.action)).map((n) => n.id)
      : [],
    txid: tx?.txid ?? null,
    status: tx?.status ?? (dryRun ? "dry-run" : "unchanged"),
    before_snapshot: before ?? null,
    pre_snapshot: (promotion.pre_snapshot as string | undefined) ?? null,
    post_snapshot: (promotion.post_snapshot as string | undefined) ?? null,
    pips,
    comfyui: { snapshot: snap.comfyui, current },
    notes,
  };
}

/**
 * Imports `snap` as one transaction (see the module doc). The caller holds the lock for
 * the whole import: the nodes' code must not change under the transaction. On failure the
 * imported nodes are taken out again and the error is thrown (a conflict names the nodes,
 * as `gov tx run` does).
 *
 * @example
 * ```ts
 * import { snapshotImport } from "@/gov/ops/snapshot_import.ts";
 * import { parseManagerSnapshot } from "@/gov/ops/snapshot_format.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const snap = parseManagerSnapshot(await Deno.readTextFile("s.json"), "s.json");
 * const r = await snapshotImport(ctx, snap, "s.json", { withPips: false });
 * console.log(r.txid, r.post_snapshot);
 * ```
 */
export async function snapshotImport(
  ctx: GovContext,
  snap: ManagerSnapshot,
  file: string,
  opts: ImportOptions,
): Promise<ImportResult> {
  requireGovManagedPython(ctx);
  await requireInitialised(ctx);
  const { nodes, blockers } = await plan(ctx, snap);
  if (blockers.length) {
    throw new GovError(`snapshot import refused: folders in the way: ${blockers.join("; ")}`, {
      hint: "move them away (or register them with `gov node add`), then import again",
    });
  }
  for (const n of nodes) {
    if (n.source === "git" && ["add", "park", "restore"].includes(n.action)) {
      checkNodeAdd(n.id, { url: n.from, ref: n.pin });
    }
  }
  const { report, lines } = pipsReport(snap, !!opts.withPips);
  const notes = [...snap.skipped];
  const reg0 = await readPlugins(ctx.paths);
  // Restored code whose dependencies were never promoted needs the transaction too.
  const ids = nodes.filter((n) =>
    n.action === "add" || n.action === "adopt" ||
    (n.action === "restore" && !reg0.plugins[n.id]?.last_txid)
  ).map((n) => n.id);
  if (ids.length === 0 && lines.length) {
    throw new GovError("`--with-pips` pins nothing here: the snapshot brings no new node", {
      hint: "import without --with-pips, or add the packages through a node",
    });
  }
  const placing = nodes.filter((n) => n.action === "park" || n.action === "restore");
  if (ids.length === 0 && placing.length === 0) {
    return result(ctx, snap, file, false, nodes, report, notes);
  }
  if (ids.length) ctx.uv();
  const fetched: ImportNode[] = [];
  const adopted: string[] = [];
  let tx: Transaction | undefined;
  let txid: string | undefined;
  // The promotion's own pre snapshot already has the nodes registered; this one is the
  // state before the import, the one to roll back to.
  const before = ids.length
    ? await createSnapshot(ctx.paths, "pre-import", basename(file), { retention: ctx.retention })
    : undefined;
  try {
    for (const n of nodes) {
      if (n.action === "park" || n.action === "restore") {
        fetched.push(n);
        await placeCode(ctx, n, (await readPlugins(ctx.paths)).plugins[n.id]);
      } else if (n.action === "adopt") {
        const reg = await readPlugins(ctx.paths);
        if (!reg.plugins[n.id]) {
          reg.plugins[n.id] = adoptedRecord(n);
          await writePlugins(ctx.paths, reg);
          adopted.push(n.id);
        }
      } else if (n.action === "add" && n.source === "git") {
        fetched.push(n);
        await nodeAdd(ctx, n.id, { url: n.from, ref: n.pin });
      } else if (n.action === "add") {
        fetched.push(n);
        const got = await nodeAddRegistry(ctx, {
          registryId: n.id,
          ...(n.pin === "latest" ? {} : { version: n.pin }),
        });
        if (n.pin === "latest") n.note = `the registry's latest: ${got.version}`;
      }
    }
    if (ids.length === 0) return result(ctx, snap, file, false, nodes, report, notes);
    const begun = await beginTxRun(ctx, ids[0]);
    txid = begun.tx.txid;
    begun.tx.node_ids = ids;
    if (lines.length) begun.tx.extra_groups = { [PIPS_GROUP]: lines };
    begun.tx.resolution_pins = opts.pins ?? [];
    await writeTx(ctx.paths, begun.tx);
    const ran = await testTxRun(ctx, begun.tx, begun.workdir, { timeoutSec: opts.timeoutSec });
    tx = ran.tx;
    await recordTxRun(ctx, tx);
    judgePips(snap, report, tx.post_freeze);
    if (ran.failure) throw ran.failure;
    if (tx.status === "needs_resolution" && tx.conflict_report) {
      throw new NeedsResolutionError(
        tx.txid,
        tx.conflict_report.nodes,
        tx.conflict_report.path,
        tx.conflict_report.summary,
        tx.conflict_report.packages,
      );
    }
    if (tx.status !== "completed") {
      throw new GovError(`snapshot import: transaction ${tx.txid} ${tx.status}: ${tx.error}`, {
        hint: `see \`gov tx inspect ${tx.txid}\`; nothing was imported`,
      });
    }
    tx = await promote(ctx, tx.txid, { approveCore: opts.approveCore });
  } catch (err) {
    // The nodes go out again, so the next step is this command again, not `gov resolve`
    // or `gov tx promote` on a transaction whose nodes are gone.
    if (err instanceof NeedsResolutionError) {
      err.hint = `uv says: ${err.uvSays}\n  full report: ${err.reportPath}\n  ` +
        "then import again pinning versions with --pin <package>==<version>";
    } else if (err instanceof PromoteGateError && err.gate === "core") {
      err.hint = `review \`gov tx inspect ${err.txid}\`, then import again with --approve-core`;
    }
    await takeOut(ctx, fetched, adopted);
    if (txid) await closeTx(ctx, txid, err);
    // Nothing changed, so the snapshot of before would only crowd useful ones out.
    if (before) await deleteSnapshot(ctx.paths, before.id).catch(() => {});
    throw err;
  }
  return result(ctx, snap, file, false, nodes, report, notes, tx, before?.id);
}
