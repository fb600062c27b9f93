/**
 * Schemas of every JSON state file gov keeps for an environment (seed 003 §3, §10): the
 * transaction, the plugin registry, the snapshot index and meta, the conflict report, the
 * journal and the prod-sync marker. Each validator names the file and the field that is
 * wrong ({@linkcode ConfigError}, exit 2) so a corrupt or hand-edited file is never
 * silently overwritten. Unknown keys are kept: new keys are additive (seed §5.3).
 *
 * @module
 */
import { ConfigError } from "../../errors.ts";
import { check } from "../../fs/json.ts";
import { isValidName } from "../../workspace/names.ts";
import { nodeGroup } from "./pyproject.ts";

/** Every transaction status of seed §3.4. */
export const TX_STATUSES = [
  "running",
  "completed",
  "failed",
  "aborted",
  "needs_resolution",
  "resolved",
  "promoted",
  "promote_failed",
] as const;

/** A transaction status. */
export type TxStatus = typeof TX_STATUSES[number];

/** Statuses after which a transaction is closed. */
export const CLOSED_STATUSES: readonly TxStatus[] = ["promoted", "aborted"];

/** A version change between two freezes. */
export interface VersionChange {
  name: string;
  from: string;
  to: string;
}

/** `diff` of a transaction: `name==version` lists plus changed versions. */
export interface TxDiff {
  added: string[];
  removed: string[];
  changed: VersionChange[];
}

/** Pointer to the conflict report kept in the transaction. */
export interface ConflictRef {
  path: string;
  nodes: string[];
  packages: string[];
  summary: string;
  created_at: string;
}

/** `state/transactions/<txid>.json`. */
export interface Transaction {
  txid: string;
  node_id: string;
  started_at: string;
  ended_at: string | null;
  candidate_env: string;
  status: TxStatus;
  pre_freeze: string[];
  post_freeze: string[];
  diff: TxDiff;
  core_impact: string[];
  stdout: string;
  stderr: string;
  run_exit_code: number | null;
  conflict_report: ConflictRef | null;
  resolution_pins: string[];
  promotion_plan: Record<string, unknown> | null;
  promotion: Record<string, unknown> | null;
  /** Additive: pid of the gov that runs the transaction while `running`. */
  pid?: number;
  /** Additive: the node's dependency group, `node-<id>`. */
  group?: string;
  /** Additive: the requirement lines the candidate was built from. */
  requirements?: string[];
  /** Additive: hash of those lines, to notice a node changed after its test run. */
  requirements_sha256?: string;
  /** Additive: why the transaction failed or was aborted. */
  error?: string | null;
  /** Additive: the ComfyUI test start (outcome, timing, import failures). */
  run?: Record<string, unknown> | null;
  /** Additive: what the user should know though the run went on (requirement lines gov
   * did not pass to uv). */
  warnings?: string[];
  /** Additive: the commit checked out in the node's folder when it was tested (null when
   * the folder is not a git checkout). */
  node_commit?: string | null;
  /**
   * Additive: every custom node whose group this transaction sets, when it carries several
   * (`gov snapshot import`); `node_id` is then the first of them. Absent: just `node_id`.
   */
  node_ids?: string[];
  /**
   * Additive: dependency groups that belong to no node, with their requirement lines (the
   * pinned `pips` of an imported snapshot, group `snapshot-pips`).
   */
  extra_groups?: Record<string, string[]>;
  /** Additive: sha256 of the requirement lines of each node of `node_ids` at the test run. */
  node_requirements_sha256?: Record<string, string>;
  [extra: string]: unknown;
}

function at(field: string, key: string): string {
  return field ? `${field}.${key}` : key;
}

function iso(v: unknown, file: string, field: string): string {
  const s = check.string(v, file, field);
  if (Number.isNaN(Date.parse(s))) throw new ConfigError(file, field, "an ISO 8601 time");
  return s;
}

function optIso(v: unknown, file: string, field: string): string | null {
  if (v === null || v === undefined) return null;
  return iso(v, file, field);
}

function name(v: unknown, file: string, field: string): string {
  const s = check.string(v, file, field);
  if (!isValidName(s)) {
    throw new ConfigError(file, field, "a safe name (letters, digits, '.', '_', '-')");
  }
  return s;
}

function optObject(v: unknown, file: string, field: string): Record<string, unknown> | null {
  if (v === null || v === undefined) return null;
  return check.object(v, file, field);
}

function validateDiff(v: unknown, file: string): TxDiff {
  const o = check.object(v, file, "diff");
  const changed = o.changed === undefined ? [] : o.changed;
  if (!Array.isArray(changed)) throw new ConfigError(file, "diff.changed", "a list");
  return {
    added: check.stringArray(o.added, file, "diff.added"),
    removed: check.stringArray(o.removed, file, "diff.removed"),
    changed: changed.map((c, i) => {
      const co = check.object(c, file, `diff.changed[${i}]`);
      return {
        name: check.string(co.name, file, `diff.changed[${i}].name`),
        from: check.string(co.from, file, `diff.changed[${i}].from`),
        to: check.string(co.to, file, `diff.changed[${i}].to`),
      };
    }),
  };
}

function validateConflictRef(v: unknown, file: string): ConflictRef | null {
  if (v === null || v === undefined) return null;
  const o = check.object(v, file, "conflict_report");
  return {
    ...o,
    path: check.string(o.path, file, "conflict_report.path"),
    nodes: check.stringArray(o.nodes, file, "conflict_report.nodes"),
    packages: check.stringArray(o.packages ?? [], file, "conflict_report.packages"),
    summary: check.string(o.summary, file, "conflict_report.summary"),
    created_at: iso(o.created_at, file, "conflict_report.created_at"),
  };
}

/**
 * Validates a transaction file.
 *
 * @example
 * ```ts
 * import { validateTransaction } from "@/gov/state/schema.ts";
 * import { readJsonFile } from "@/fs/json.ts";
 * declare const path: string;
 *
 * const tx = await readJsonFile(path, validateTransaction);
 * ```
 */
export function validateTransaction(v: unknown, file: string): Transaction {
  const o = check.object(v, file, "");
  const code = o.run_exit_code;
  if (code !== null && (typeof code !== "number" || !Number.isInteger(code))) {
    throw new ConfigError(file, "run_exit_code", "an integer or null");
  }
  const pid = o.pid;
  if (pid !== undefined && pid !== null && (typeof pid !== "number" || !Number.isInteger(pid))) {
    throw new ConfigError(file, "pid", "an integer");
  }
  return {
    ...o,
    txid: name(o.txid, file, "txid"),
    node_id: name(o.node_id, file, "node_id"),
    started_at: iso(o.started_at, file, "started_at"),
    ended_at: optIso(o.ended_at, file, "ended_at"),
    candidate_env: check.string(o.candidate_env, file, "candidate_env"),
    status: check.oneOf(o.status, file, "status", TX_STATUSES),
    pre_freeze: check.stringArray(o.pre_freeze, file, "pre_freeze"),
    post_freeze: check.stringArray(o.post_freeze, file, "post_freeze"),
    diff: validateDiff(o.diff, file),
    core_impact: check.stringArray(o.core_impact, file, "core_impact"),
    stdout: check.string(o.stdout, file, "stdout"),
    stderr: check.string(o.stderr, file, "stderr"),
    run_exit_code: code as number | null,
    conflict_report: validateConflictRef(o.conflict_report, file),
    resolution_pins: check.stringArray(o.resolution_pins, file, "resolution_pins"),
    promotion_plan: optObject(o.promotion_plan, file, "promotion_plan"),
    promotion: optObject(o.promotion, file, "promotion"),
    ...(o.warnings === undefined
      ? {}
      : { warnings: check.stringArray(o.warnings, file, "warnings") }),
    ...(o.node_ids === undefined ? {} : {
      node_ids: check.stringArray(o.node_ids, file, "node_ids").map((n, i) =>
        name(n, file, `node_ids[${i}]`)
      ),
    }),
  } as Transaction;
}

/** One custom node in `state/plugins.json`. */
export interface PluginRecord {
  id: string;
  group: string;
  url: string;
  ref: string | null;
  commit: string | null;
  managed_deps: string[];
  added_at: string;
  updated_at: string;
  /** The transaction that last promoted this node's dependencies. */
  last_txid?: string | null;
  /** Additive: the resolution pins that promotion brought (`[tool.uv] override-dependencies`). */
  pins?: string[];
  /** Additive: where the code came from, `"git"` (the default when absent) or `"registry"`. */
  source?: "git" | "registry";
  /** Additive, registry nodes: the Comfy Registry id. */
  registry_id?: string;
  /** Additive, registry nodes: the version installed. */
  version?: string;
  /** Additive, registry nodes: `sha256:<hex>` of the archive installed. */
  hash?: string;
  /** Additive, registry nodes: the registry's base URL. */
  registry_url?: string;
  [extra: string]: unknown;
}

/** `state/plugins.json`: the plugin registry truth file. */
export interface PluginsFile {
  version: 1;
  plugins: Record<string, PluginRecord>;
}

/**
 * Validates `state/plugins.json`.
 *
 * @example
 * ```ts
 * import { validatePlugins } from "@/gov/state/schema.ts";
 * import { readJsonFile } from "@/fs/json.ts";
 * declare const path: string;
 *
 * const reg = await readJsonFile(path, validatePlugins);
 * ```
 */
export function validatePlugins(v: unknown, file: string): PluginsFile {
  const o = check.object(v, file, "");
  if (o.version !== 1) throw new ConfigError(file, "version", "1");
  const plugins = check.object(o.plugins, file, "plugins");
  const out: Record<string, PluginRecord> = {};
  for (const [id, rec] of Object.entries(plugins)) {
    const f = at("plugins", id);
    if (!isValidName(id)) throw new ConfigError(file, f, "keyed by a safe node id");
    const r = check.object(rec, file, f);
    const rid = name(r.id, file, `${f}.id`);
    if (rid !== id) throw new ConfigError(file, `${f}.id`, `'${id}' (its key)`);
    const group = check.string(r.group, file, `${f}.group`);
    // Written normalised the way uv names the group; `node-<id>` as typed is accepted too.
    if (group !== nodeGroup(id) && group !== `node-${id}`) {
      throw new ConfigError(file, `${f}.group`, `'${nodeGroup(id)}'`);
    }
    out[id] = {
      ...r,
      id: rid,
      group,
      url: check.string(r.url, file, `${f}.url`),
      ref: check.optString(r.ref, file, `${f}.ref`) ?? null,
      commit: check.optString(r.commit, file, `${f}.commit`) ?? null,
      managed_deps: check.stringArray(r.managed_deps, file, `${f}.managed_deps`),
      added_at: iso(r.added_at, file, `${f}.added_at`),
      updated_at: iso(r.updated_at, file, `${f}.updated_at`),
      last_txid: check.optString(r.last_txid, file, `${f}.last_txid`) ?? null,
      ...(r.pins === undefined ? {} : { pins: check.stringArray(r.pins, file, `${f}.pins`) }),
      ...(r.source === undefined
        ? {}
        : { source: check.oneOf(r.source, file, `${f}.source`, ["git", "registry"] as const) }),
    };
  }
  return { ...o, version: 1, plugins: out };
}

/** `snapshots/<id>/meta.json` and one entry of the snapshot index. */
export interface SnapshotMeta {
  id: string;
  created_at: string;
  reason: string;
  ref: string | null;
  /** Additive: sha256 of each file in the snapshot. */
  files?: Record<string, string>;
  [extra: string]: unknown;
}

/** Why gov takes snapshots. */
export const SNAPSHOT_REASONS = [
  "init",
  "pre-promote",
  "post-promote",
  "pre-remove",
  "post-remove",
  "pre-rollback",
  "manual",
  "pre-import",
] as const;

/**
 * Validates a snapshot's `meta.json` (or one index entry, with `field` as its position).
 *
 * @example
 * ```ts
 * import { validateSnapshotMeta } from "@/gov/state/schema.ts";
 * import { readJsonFile } from "@/fs/json.ts";
 * declare const dir: string;
 *
 * const meta = await readJsonFile(`${dir}/meta.json`, validateSnapshotMeta);
 * ```
 */
export function validateSnapshotMeta(v: unknown, file: string, field = ""): SnapshotMeta {
  const o = check.object(v, file, field);
  const files = o.files === undefined ? undefined : check.object(o.files, file, at(field, "files"));
  if (files) {
    for (const [k, h] of Object.entries(files)) check.string(h, file, at(field, `files.${k}`));
  }
  return {
    ...o,
    id: name(o.id, file, at(field, "id")),
    created_at: iso(o.created_at, file, at(field, "created_at")),
    reason: check.string(o.reason, file, at(field, "reason")),
    ref: check.optString(o.ref, file, at(field, "ref")) ?? null,
    ...(files ? { files: files as Record<string, string> } : {}),
  };
}

/** `state/snapshots_index.json`: snapshots oldest first. */
export interface SnapshotIndex {
  version: 1;
  snapshots: SnapshotMeta[];
}

/**
 * Validates `state/snapshots_index.json`.
 *
 * @example
 * ```ts
 * import { validateSnapshotIndex } from "@/gov/state/schema.ts";
 * import { readJsonFile } from "@/fs/json.ts";
 * declare const path: string;
 *
 * const idx = await readJsonFile(path, validateSnapshotIndex);
 * ```
 */
export function validateSnapshotIndex(v: unknown, file: string): SnapshotIndex {
  const o = check.object(v, file, "");
  if (o.version !== 1) throw new ConfigError(file, "version", "1");
  if (!Array.isArray(o.snapshots)) throw new ConfigError(file, "snapshots", "a list");
  const seen = new Set<string>();
  const snapshots = o.snapshots.map((e, i) => {
    const m = validateSnapshotMeta(e, file, `snapshots[${i}]`);
    if (seen.has(m.id)) throw new ConfigError(file, `snapshots[${i}].id`, "unique");
    seen.add(m.id);
    return m;
  });
  return { ...o, version: 1, snapshots };
}

/** `state/conflicts/<txid>.json`. */
export interface ConflictReport {
  txid: string;
  node_id: string;
  created_at: string;
  /** Which command hit the conflict: "tx run", "tx promote" or "resolve". */
  stage: string;
  /** Custom nodes whose groups uv named. */
  nodes: string[];
  /** The groups as uv named them. */
  groups: string[];
  /** Whether the ComfyUI base requirements take part. */
  involves_base: boolean;
  /** Packages named in uv's explanation. */
  packages: string[];
  /** uv's explanation. */
  summary: string;
  /** The pins that were in effect. */
  pins: string[];
  /** uv's exit code. */
  exit_code: number;
  /** uv's whole stderr. */
  raw: string;
  [extra: string]: unknown;
}

/**
 * Validates a conflict report.
 *
 * @example
 * ```ts
 * import { validateConflictReport } from "@/gov/state/schema.ts";
 * import { readJsonFile } from "@/fs/json.ts";
 * declare const path: string;
 *
 * const c = await readJsonFile(path, validateConflictReport);
 * ```
 */
export function validateConflictReport(v: unknown, file: string): ConflictReport {
  const o = check.object(v, file, "");
  return {
    ...o,
    txid: name(o.txid, file, "txid"),
    node_id: name(o.node_id, file, "node_id"),
    created_at: iso(o.created_at, file, "created_at"),
    stage: check.string(o.stage, file, "stage"),
    nodes: check.stringArray(o.nodes, file, "nodes"),
    groups: check.stringArray(o.groups, file, "groups"),
    involves_base: check.boolean(o.involves_base, file, "involves_base"),
    packages: check.stringArray(o.packages, file, "packages"),
    summary: check.string(o.summary, file, "summary"),
    pins: check.stringArray(o.pins, file, "pins"),
    exit_code: check.number(o.exit_code, file, "exit_code"),
    raw: check.string(o.raw, file, "raw"),
  };
}

/** Multi-step operations the journal tracks. */
export const JOURNAL_OPS = ["promote", "remove", "rollback", "node-add"] as const;

/** A journaled operation. */
export type JournalOp = typeof JOURNAL_OPS[number];

/** `state/journal.json`: the one operation in flight, and its last completed step. */
export interface Journal {
  version: 1;
  op: JournalOp;
  op_id: string;
  pid: number;
  started_at: string;
  step: string;
  steps: { step: string; at: string }[];
  data: Record<string, unknown>;
}

/**
 * Validates `state/journal.json`.
 *
 * @example
 * ```ts
 * import { validateJournal } from "@/gov/state/schema.ts";
 * import { readJsonFile } from "@/fs/json.ts";
 * declare const path: string;
 *
 * const j = await readJsonFile(path, validateJournal);
 * ```
 */
export function validateJournal(v: unknown, file: string): Journal {
  const o = check.object(v, file, "");
  if (o.version !== 1) throw new ConfigError(file, "version", "1");
  const op = check.oneOf(o.op, file, "op", JOURNAL_OPS);
  const op_id = check.string(o.op_id, file, "op_id");
  const pid = check.number(o.pid, file, "pid");
  const started_at = iso(o.started_at, file, "started_at");
  const step = check.string(o.step, file, "step");
  if (!Array.isArray(o.steps)) throw new ConfigError(file, "steps", "a list");
  return {
    version: 1,
    op,
    op_id,
    pid,
    started_at,
    step,
    steps: o.steps.map((s, i) => {
      const so = check.object(s, file, `steps[${i}]`);
      return {
        step: check.string(so.step, file, `steps[${i}].step`),
        at: iso(so.at, file, `steps[${i}].at`),
      };
    }),
    data: check.object(o.data, file, "data"),
  };
}

/** `state/prod_sync.json`: what `.venv-prod` was last synced to. */
export interface SyncMarker {
  pyproject_sha256: string;
  lock_sha256: string;
  /** sha256 of the sorted dist-info folder names in site-packages. */
  installed_sha256: string | null;
  synced_at: string;
}

/**
 * Validates `state/prod_sync.json`.
 *
 * @example
 * ```ts
 * import { validateSyncMarker } from "@/gov/state/schema.ts";
 * import { readJsonFile } from "@/fs/json.ts";
 * declare const path: string;
 *
 * const m = await readJsonFile(path, validateSyncMarker);
 * ```
 */
export function validateSyncMarker(v: unknown, file: string): SyncMarker {
  const o = check.object(v, file, "");
  return {
    pyproject_sha256: check.string(o.pyproject_sha256, file, "pyproject_sha256"),
    lock_sha256: check.string(o.lock_sha256, file, "lock_sha256"),
    installed_sha256: check.optString(o.installed_sha256, file, "installed_sha256") ?? null,
    synced_at: iso(o.synced_at, file, "synced_at"),
  };
}
