/**
 * `environmentStatus(env)`: the governance state of one environment at a glance, without
 * running uv: truth-file hashes, whether `.venv-prod` matches them, open transactions, the
 * last snapshot, an interrupted operation awaiting recovery, and who holds the lock. The
 * lead's `gov status` command combines it with the supervisor's status.
 *
 * @module
 */
import { exists } from "../../fs/atomic.ts";
import { ConfigError } from "../../errors.ts";
import { requireInitialised } from "../steps/guards.ts";
import type { GovContext } from "../steps/context.ts";
import { readJournal } from "../state/journal.ts";
import { readLockOwner } from "../state/lock.ts";
import { prodState } from "../steps/prod.ts";
import { CLOSED_STATUSES, type SnapshotMeta } from "../state/schema.ts";
import { readSnapshotIndex } from "../state/snapshots.ts";
import { fileSha256, readPlugins } from "../state/store.ts";
import { listTxSummaries } from "../state/tx_index.ts";

/** Governance state of an environment. */
export interface EnvironmentStatus {
  name: string;
  dir: string;
  initialised: boolean;
  truth: {
    pyproject: { path: string; sha256: string | null };
    lock: { path: string; sha256: string | null };
    plugins: { path: string; sha256: string | null };
  };
  prod: {
    venv: string;
    /** null for a host-managed interpreter (gov does not sync it). */
    in_sync: boolean | null;
    reason: string;
    host_managed: boolean;
    synced_at: string | null;
  };
  nodes: number;
  transactions: { total: number; by_status: Record<string, number> };
  open_transactions: { txid: string; node_id: string; status: string; started_at: string }[];
  snapshots: number;
  last_snapshot: SnapshotMeta | null;
  /** An operation a killed gov left half done (recovered by the next gov command). */
  interrupted: { op: string; step: string; pid: number; started_at: string } | null;
  lock: { held: boolean; pid: number | null; command: string | null };
  /**
   * Why a truth file (pyproject.toml, uv.lock) cannot be read, when it cannot: then whether
   * prod is in sync is unknown (`prod.in_sync` false, `prod.reason` says so).
   */
  truth_error: string | null;
}

/**
 * Reports the governance state of the context's environment.
 *
 * @example
 * ```ts
 * import { status } from "@/gov/ops/status.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const s = await status(ctx);
 * if (!s.prod.in_sync) console.log(s.prod.reason);
 * ```
 */
export async function status(ctx: GovContext): Promise<EnvironmentStatus> {
  const env = ctx.env;
  const p = ctx.paths;
  const [py, lock, plugins] = await Promise.all([
    fileSha256(p.pyproject),
    fileSha256(p.lock),
    fileSha256(p.plugins),
  ]);
  const initialised = py !== null && lock !== null;
  let truthError: string | null = null;
  if (initialised) {
    try {
      await requireInitialised(ctx);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      truthError = err.message;
    }
  }
  const prod = env.hostManagedPython
    ? { inSync: null, reason: "host-managed Python: gov does not sync it" }
    : truthError
    ? { inSync: false, reason: "a truth file cannot be read" }
    : initialised
    ? await prodState(p)
    : { inSync: false, reason: "not initialised (run `gov init`)" };
  const txs = await listTxSummaries(p);
  const byStatus: Record<string, number> = {};
  for (const t of txs) byStatus[t.status] = (byStatus[t.status] ?? 0) + 1;
  const idx = await readSnapshotIndex(p);
  const journal = await readJournal(p);
  const owner = await readLockOwner(p.lockFile);
  const reg = (await exists(p.plugins)) ? await readPlugins(p) : { plugins: {} };
  return {
    name: env.name,
    dir: env.dir,
    initialised,
    truth: {
      pyproject: { path: p.pyproject, sha256: py },
      lock: { path: p.lock, sha256: lock },
      plugins: { path: p.plugins, sha256: plugins },
    },
    prod: {
      venv: env.hostManagedPython ? env.python : p.prodVenv,
      in_sync: prod.inSync,
      reason: prod.reason,
      host_managed: env.hostManagedPython,
      synced_at: ("marker" in prod && prod.marker?.synced_at) || null,
    },
    nodes: Object.keys(reg.plugins).length,
    transactions: { total: txs.length, by_status: byStatus },
    open_transactions: txs
      .filter((t) => !(CLOSED_STATUSES as readonly string[]).includes(t.status))
      .map((t) => ({
        txid: t.txid,
        node_id: t.node_id,
        status: t.status,
        started_at: t.started_at,
      })),
    snapshots: idx.snapshots.length,
    last_snapshot: idx.snapshots.at(-1) ?? null,
    interrupted: journal
      ? {
        op: journal.op,
        step: journal.step,
        pid: journal.pid,
        started_at: journal.started_at,
      }
      : null,
    lock: {
      held: !!owner,
      pid: owner ? owner.pid : null,
      command: owner ? owner.command : null,
    },
    truth_error: truthError,
  };
}
