/**
 * Failures of governance operations, each naming what happened to production.
 *
 * @module
 */
import { GovError } from "../errors.ts";

/**
 * A lock hit a dependency conflict: the transaction is now `needs_resolution` and a conflict
 * report was written. Production is unchanged.
 *
 * @example
 * ```ts
 * import { NeedsResolutionError } from "@/gov/errors.ts";
 *
 * throw new NeedsResolutionError("tx-1", ["alpha", "beta"], "state/conflicts/tx-1.json", "...");
 * ```
 */
export class NeedsResolutionError extends GovError {
  /** Custom nodes involved. */
  nodes: string[];
  /** The conflict report file. */
  reportPath: string;
  constructor(
    txid: string,
    nodes: string[],
    reportPath: string,
    summary: string,
    packages: string[] = [],
  ) {
    super(
      `dependency conflict between custom nodes ${nodes.join(", ")}${
        packages.length ? ` over ${packages.join(", ")}` : ""
      }: transaction ${txid} needs resolution; production unchanged`,
      {
        hint: `uv says: ${summary.split("\n").slice(-2, -1)[0] ?? summary.split("\n")[0]}\n  ` +
          `full report: ${reportPath}\n  then pin versions: gov resolve ${txid} --pin <package>==<version>`,
      },
    );
    this.name = "NeedsResolutionError";
    this.nodes = nodes;
    this.reportPath = reportPath;
  }
}

/**
 * A step after the truth files changed failed (prod sync, smoke test); gov restored the
 * pre-promote snapshot and re-synced production.
 *
 * @example
 * ```ts
 * import { PromoteFailedError } from "@/gov/errors.ts";
 *
 * throw new PromoteFailedError("tx-1", "smoke test failed", "snap-1");
 * ```
 */
export class PromoteFailedError extends GovError {
  constructor(txid: string, reason: string, restored: string | null, resyncError?: string) {
    super(
      `promotion of ${txid} failed: ${reason}; ${
        restored ? `restored snapshot ${restored}` : "nothing had changed"
      }${
        resyncError
          ? `, but re-syncing .venv-prod failed too (${resyncError})`
          : " and production is back as it was"
      }`,
      {
        hint: resyncError
          ? "fix the problem uv reports, then run `gov init` to re-sync .venv-prod"
          : `see \`gov tx inspect ${txid}\`; after fixing the cause, retry with \`gov resolve ${txid}\` (add --pin P==V to change pins) and \`gov tx promote ${txid}\``,
      },
    );
    this.name = "PromoteFailedError";
  }
}

/**
 * A rollback could not rebuild production; gov restored the pre-rollback snapshot.
 *
 * @example
 * ```ts
 * import { RollbackFailedError } from "@/gov/errors.ts";
 *
 * throw new RollbackFailedError("snap-1", "uv sync failed", "snap-2");
 * ```
 */
export class RollbackFailedError extends GovError {
  constructor(target: string, reason: string, restored: string, resyncError?: string) {
    super(
      `rollback to ${target} failed: ${reason}; restored the pre-rollback snapshot ${restored}${
        resyncError ? `, but re-syncing .venv-prod failed too (${resyncError})` : ""
      }`,
      {
        hint: "check network/index availability and the snapshot's lock, then retry the rollback",
      },
    );
    this.name = "RollbackFailedError";
  }
}

/**
 * Removing a node's dependencies failed; gov restored the pre-remove snapshot.
 *
 * @example
 * ```ts
 * import { RemoveFailedError } from "@/gov/errors.ts";
 *
 * throw new RemoveFailedError("impact", "uv lock failed", "snap-1");
 * ```
 */
export class RemoveFailedError extends GovError {
  constructor(nodeId: string, reason: string, restored: string, resyncError?: string) {
    super(
      `removing custom node ${nodeId} failed: ${reason}; restored snapshot ${restored}${
        resyncError ? `, but re-syncing .venv-prod failed too (${resyncError})` : ""
      }`,
      { hint: "the node is still registered; fix the cause and retry" },
    );
    this.name = "RemoveFailedError";
  }
}

/**
 * The lock a promotion would install moves core packages (torch & co.) that the operator has
 * not approved, e.g. because a resolution pin or a promotion since the test run moves them.
 * Nothing was changed.
 *
 * @example
 * ```ts
 * import { CoreImpactError } from "@/gov/errors.ts";
 *
 * throw new CoreImpactError("tx-1", ["torch 2.1.0 -> 2.3.1"]);
 * ```
 */
export class CoreImpactError extends GovError {
  /** The core changes, e.g. "torch 2.1.0 -> 2.3.1". */
  changes: string[];
  constructor(txid: string, changes: string[]) {
    super(
      `transaction ${txid} would change core packages in production: ${
        changes.join(", ")
      }; nothing was changed`,
      {
        hint:
          `the lock built for it (with its pins) moves them; review \`gov tx inspect ${txid}\`, then rerun with --approve-core to accept it`,
      },
    );
    this.name = "CoreImpactError";
    this.changes = changes;
  }
}
