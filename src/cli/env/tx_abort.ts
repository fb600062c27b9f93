/**
 * `gov tx abort`: drops a transaction's candidate venv and closes it.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { styles } from "../io.ts";
import { abortTransaction } from "../../gov/mod.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions } from "./common.ts";

/** `gov tx abort`. */
export const txAbortCommand: Command = {
  name: "tx abort",
  summary: "remove a transaction's candidate venv and mark it aborted",
  help: `Usage: gov tx abort <txid> [--json]

Removes .venv-candidate/<txid> and the transaction's workdir and sets its status to
aborted. A promoted transaction cannot be aborted (roll back instead), nor one whose
\`gov tx run\` is still running.

Flags:
  --json   print the transaction as JSON

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("tx abort", args, {
      ...ENV_FLAGS,
      json: { type: "boolean" },
    });
    const [txid] = positionalArgs("tx abort", positionals, ["<txid>"]);
    const tx = await abortTransaction(envFromFlags(values, io), txid, govOptions(io));
    if (values.json) printJson(io, tx);
    else {io.out(
        `${styles(io).green("✓")} transaction ${tx.txid} aborted; candidate venv removed\n`,
      );}
    return 0;
  },
};
