/**
 * Human rendering of transactions, shared by the tx commands.
 *
 * @module
 */
import type { Io } from "../io.ts";
import { styles } from "../io.ts";
import type { Transaction } from "../../gov/mod.ts";

/**
 * A stable multi-line summary of a transaction.
 *
 * @example
 * ```ts
 * import { renderTx } from "@/cli/env/tx_render.ts";
 * import { type Io } from "@/cli/io.ts";
 * import { type Transaction } from "@/gov/mod.ts";
 * declare const io: Io;
 * declare const tx: Transaction;
 *
 * io.out(renderTx(io, tx));
 * ```
 */
export function renderTx(io: Io, tx: Transaction): string {
  const s = styles(io);
  const colour = tx.status === "promoted" || tx.status === "completed" || tx.status === "resolved"
    ? s.green
    : tx.status === "running"
    ? s.dim
    : tx.status === "aborted"
    ? s.dim
    : s.red;
  const lines = [
    `transaction ${tx.txid}`,
    `  node:         ${tx.node_id}`,
    `  status:       ${colour(tx.status)}`,
    `  started:      ${tx.started_at}`,
    `  ended:        ${tx.ended_at ?? "-"}`,
    `  candidate:    ${tx.candidate_env}`,
    `  run exit:     ${tx.run_exit_code ?? "-"}${tx.run?.outcome ? ` (${tx.run.outcome})` : ""}`,
    `  added:        ${tx.diff.added.join(", ") || "-"}`,
    `  removed:      ${tx.diff.removed.join(", ") || "-"}`,
    `  changed:      ${
      tx.diff.changed.map((c) => `${c.name} ${c.from} -> ${c.to}`).join(", ") || "-"
    }`,
    `  core impact:  ${tx.core_impact.length ? s.yellow(tx.core_impact.join(", ")) : "none"}`,
    `  pins:         ${tx.resolution_pins.join(", ") || "-"}`,
  ];
  const imports = (tx.run?.import_failures as string[] | undefined) ?? [];
  if (imports.length) lines.push(`  import failed: ${imports.join(", ")}`);
  if (tx.conflict_report) {
    lines.push(
      `  conflict:     ${tx.conflict_report.nodes.join(", ")} (${tx.conflict_report.path})`,
    );
    for (const l of tx.conflict_report.summary.split("\n")) lines.push(`    ${l}`);
  }
  if (tx.promotion) {
    const p = tx.promotion;
    lines.push(
      `  promotion:    ${p.result}${p.pre_snapshot ? `, pre ${p.pre_snapshot}` : ""}${
        p.post_snapshot ? `, post ${p.post_snapshot}` : ""
      }`,
    );
    if (p.error) lines.push(`    error: ${p.error}`);
  }
  if (tx.error && tx.status !== "promoted") lines.push(`  error:        ${tx.error}`);
  for (const w of tx.warnings ?? []) lines.push(`  ${s.yellow("warning:")}      ${w}`);
  return lines.join("\n") + "\n";
}
