/**
 * `gov tx inspect`: one transaction in full.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { inspectTransaction } from "../../gov/mod.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions } from "./common.ts";
import { renderTx } from "./tx_render.ts";

/** `gov tx inspect`. */
export const txInspectCommand: Command = {
  name: "tx inspect",
  summary: "show one transaction",
  help: `Usage: gov tx inspect <txid> [--json]

Shows a transaction: status, diff, core impact, run outcome, pins, conflict and promotion.
--json prints the whole record of state/transactions/<txid>.json: txid, node_id,
started_at, ended_at, candidate_env, status, pre_freeze, post_freeze, diff, core_impact,
stdout, stderr, run_exit_code, conflict_report, resolution_pins, promotion_plan, promotion.

Flags:
  --json   print the record as JSON

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("tx inspect", args, {
      ...ENV_FLAGS,
      json: { type: "boolean" },
    });
    const [txid] = positionalArgs("tx inspect", positionals, ["<txid>"]);
    const tx = await inspectTransaction(envFromFlags(values, io), txid, govOptions(io));
    if (values.json) printJson(io, tx);
    else io.out(renderTx(io, tx));
    return 0;
  },
};
