/**
 * `gov tx list`: every transaction of the environment.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
// Not mod.ts: listing needs none of the other operations (see gov/read.ts).
import { listTransactionSummaries } from "../../gov/read.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions, table } from "./common.ts";

/** `gov tx list`. */
export const txListCommand: Command = {
  name: "tx list",
  summary: "list transactions, oldest first",
  help: `Usage: gov tx list [--json]

Lists the environment's transactions, oldest first: id, node, status, diff size and core
impact.

Flags:
  --json   print a JSON array of summaries

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("tx list", args, {
      ...ENV_FLAGS,
      json: { type: "boolean" },
    });
    positionalArgs("tx list", positionals, []);
    const rows = await listTransactionSummaries(envFromFlags(values, io), govOptions(io));
    if (values.json) {
      printJson(io, rows);
      return 0;
    }
    if (rows.length === 0) {
      io.out("no transactions (start one with `gov tx run <node-id>`)\n");
      return 0;
    }
    io.out(table([
      ["TXID", "NODE", "STATUS", "+", "-", "~", "CORE"],
      ...rows.map((r) => [
        r.txid,
        r.node_id,
        r.status,
        String(r.added),
        String(r.removed),
        String(r.changed),
        r.core_impact.join(",") || "-",
      ]),
    ]));
    return 0;
  },
};
