/**
 * `gov tx run`: tries a custom node's requirements in a candidate venv.
 *
 * @module
 */
import { type Command, numberFlag, parseFlags, positionalArgs, printJson } from "../command.ts";
import { runTransaction } from "../../gov/mod.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions } from "./common.ts";
import { renderTx } from "./tx_render.ts";

/** `gov tx run`. */
export const txRunCommand: Command = {
  name: "tx run",
  summary: "try a custom node's requirements in a candidate venv and test-start ComfyUI",
  help: `Usage: gov tx run <node-id> [--timeout S] [--json]

Builds the candidate venv .venv-candidate/<txid> from the current truth files plus the
node's requirements (requirements.txt, else [project] dependencies of its pyproject.toml) in
an isolated workdir, freezes it before and after, and test-starts ComfyUI's main.py with it
on a free loopback port. Production is not touched.

Outcome: ComfyUI came up (its port opened; gov then stops it) or main.py exited 0 by itself
-> completed. Exited non-zero, no port within the timeout (run_exit_code 124), main.py
missing (2), or a custom node logged "IMPORT FAILED" -> failed (except registered nodes
still waiting for their own promotion: their packages are in no candidate but their own;
they are listed as ignored). A dependency conflict ->
needs_resolution with state/conflicts/<txid>.json. The record in
state/transactions/<txid>.json holds the freezes, diff, core_impact and ComfyUI's output
(the whole log is in state/logs/<txid>.log). Exit 0 only when completed.

Flags:
  --timeout S   the longest gov waits for the candidate ComfyUI to come up, in seconds
                (default: [tx] timeout of config.toml, else 120)
  --json        print the transaction as JSON

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("tx run", args, {
      ...ENV_FLAGS,
      timeout: { type: "string" },
      json: { type: "boolean" },
    });
    const [nodeId] = positionalArgs("tx run", positionals, ["<node-id>"]);
    const env = envFromFlags(values, io);
    const timeoutSec = values.timeout === undefined
      ? undefined
      : numberFlag("tx run", "--timeout", values.timeout, 120, { min: 1, max: 86_400 });
    const tx = await runTransaction(env, nodeId, { timeoutSec }, govOptions(io));
    if (values.json) printJson(io, tx);
    else {
      io.out(renderTx(io, tx));
      if (tx.status === "completed") {
        io.out(
          `next: gov tx promote ${tx.txid}${tx.core_impact.length ? " --approve-core" : ""}\n`,
        );
      } else if (tx.status === "needs_resolution") {
        io.out(`next: gov resolve ${tx.txid} --pin <package>==<version>\n`);
      }
    }
    return tx.status === "completed" ? 0 : 1;
  },
};
