/**
 * Failures of governance operations, each naming what happened to production.
 *
 * @module
 */
import { GovError, RefusedError } from "../errors.ts";

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
  /** The transaction. */
  txid: string;
  /** Custom nodes involved. */
  nodes: string[];
  /** The conflict report file. */
  reportPath: string;
  /** The line of uv's report that says why. */
  uvSays: string;
  constructor(
    txid: string,
    nodes: string[],
    reportPath: string,
    summary: string,
    packages: string[] = [],
  ) {
    const uvSays = summary.split("\n").slice(-2, -1)[0] ?? summary.split("\n")[0];
    super(
      `dependency conflict between custom nodes ${nodes.join(", ")}${
        packages.length ? ` over ${packages.join(", ")}` : ""
      }: transaction ${txid} needs resolution; production unchanged`,
      {
        hint: `uv says: ${uvSays}\n  full report: ${reportPath}\n  ` +
          `then pin versions (<package>==<version>) with \`gov resolve ${txid}\``,
      },
    );
    this.name = "NeedsResolutionError";
    this.txid = txid;
    this.uvSays = uvSays;
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
  /** The transaction. */
  txid: string;
  /** Why re-syncing production failed too, when it did. */
  resyncError?: string;
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
          : `see \`gov tx inspect ${txid}\`; after fixing the cause, retry with \`gov resolve ${txid}\` (pins optional) and \`gov tx promote ${txid}\``,
      },
    );
    this.name = "PromoteFailedError";
    this.txid = txid;
    this.resyncError = resyncError;
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
export class CoreImpactError extends RefusedError {
  /** The transaction. */
  txid: string;
  /** The core changes, e.g. "torch 2.1.0 -> 2.3.1". */
  changes: string[];
  constructor(txid: string, changes: string[]) {
    super(
      `transaction ${txid} would change core packages in production: ${
        changes.join(", ")
      }; nothing was changed`,
      {
        hint:
          `the lock built for it (with its pins) moves them; review \`gov tx inspect ${txid}\`, then promote it again approving the core change`,
      },
    );
    this.name = "CoreImpactError";
    this.txid = txid;
    this.changes = changes;
  }
}

/**
 * A transaction cannot be promoted as it is: its status does not allow it (`status`), or it
 * changes core packages the operator has not approved (`core`). Nothing was changed. The
 * hint names no command-line flag; the CLI words the way past the gate in its flags.
 *
 * @example
 * ```ts
 * import { PromoteGateError } from "@/gov/errors.ts";
 *
 * throw new PromoteGateError("tx-1", "failed", "ComfyUI exited with code 1");
 * ```
 */
export class PromoteGateError extends RefusedError {
  /** The transaction. */
  txid: string;
  /** Its status, or "core" when the gate is the core-package approval. */
  gate: string;
  /** What the gate is about: the failed run's error, or the core packages changed. */
  detail?: string;
  constructor(txid: string, gate: string, detail?: string) {
    super(
      gate === "core"
        ? `transaction ${txid} changes core packages: ${detail}; nothing was changed`
        : `transaction ${txid} is ${gate}; it cannot be promoted`,
      { hint: PromoteGateError.hintFor(txid, gate, detail) },
    );
    this.name = "PromoteGateError";
    this.txid = txid;
    this.gate = gate;
    this.detail = detail;
  }

  private static hintFor(txid: string, gate: string, detail?: string): string | undefined {
    const hints: Record<string, string> = {
      core: `review \`gov tx inspect ${txid}\`, then promote it approving the core change`,
      failed: `its ComfyUI test start failed (${detail}); it can be promoted allowing a failed run`,
      needs_resolution: `resolve the conflict first with \`gov resolve ${txid}\` and exact pins`,
      promote_failed:
        `relock it first with \`gov resolve ${txid}\` (pins optional), or run a new transaction`,
      promoted: "it is already in production",
      aborted: "it was aborted; run a new transaction with `gov tx run`",
      running: "its test run has not finished",
    };
    return hints[gate];
  }
}

/**
 * A requirement or pin names versions that do not exist on the package index (`six==9.9.9`,
 * `six>=99`). uv reports it as unsatisfiable, like a conflict, but nothing conflicts: no pin
 * of another package can fix it. Production is unchanged.
 *
 * @example
 * ```ts
 * import { NoSuchVersionError } from "@/gov/errors.ts";
 *
 * throw new NoSuchVersionError(["six==9.9.9"], ["alpha"], "Because there is no version of ...");
 * ```
 */
export class NoSuchVersionError extends GovError {
  /** The requirements no version satisfies, e.g. "six==9.9.9". */
  requirements: string[];
  /** Custom nodes whose group asks for them (empty: the base requirements or a pin). */
  nodes: string[];
  constructor(requirements: string[], nodes: string[], uvSays: string) {
    super(
      `no version of ${requirements.join(", ")} exists on the package index${
        nodes.length ? ` (required by custom node ${nodes.join(", ")})` : ""
      }: nothing conflicts, the version does not exist; production unchanged`,
      {
        hint: `uv says: ${uvSays.split("\n")[0]}\n  ` +
          "fix the requirement or the pin to a version that exists, then retry",
      },
    );
    this.name = "NoSuchVersionError";
    this.requirements = requirements;
    this.nodes = nodes;
  }
}
