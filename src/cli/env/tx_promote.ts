/**
 * `gov tx promote`: promotes a transaction into production.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { styles } from "../io.ts";
import { promoteTransaction } from "../../gov/mod.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions } from "./common.ts";

/** `gov tx promote`. */
export const txPromoteCommand: Command = {
  name: "tx promote",
  summary: "promote a transaction: snapshot, lock, atomic truth update, sync, smoke test",
  help: `Usage: gov tx promote <txid> [--approve-core] [--allow-failed-run] [--json]

Promotes a completed or resolved transaction, step by step: status gate, core gate,
pre-promote snapshot, plan, lock in an isolated workdir (\`uv add --group node-<id>
--no-sync --raw -r ...\` with the resolution pins as [tool.uv] override-dependencies, then
\`uv lock\`), atomic copy of pyproject.toml and uv.lock into the environment,
\`uv sync --locked --all-groups\` of .venv-prod in place, smoke test ([tx] smoke_test_cmd, or
python -c "import sys; print(sys.version)" plus importing the node's packages), plugin
record update, post-promote snapshot, status promoted.

A dependency conflict sets needs_resolution and writes state/conflicts/<txid>.json naming
the custom nodes involved; production is untouched. A failure after the truth changed
restores the pre-promote snapshot, re-syncs .venv-prod and sets promote_failed. An
environment problem (uv missing, network off) is reported as such and leaves the status.

Flags:
  --approve-core       accept changes to core packages (torch, torchvision, torchaudio,
                       xformers, numpy and [tx] core_packages)
  --allow-failed-run   promote even though ComfyUI's test start failed
  --json               print the transaction as JSON

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("tx promote", args, {
      ...ENV_FLAGS,
      "approve-core": { type: "boolean" },
      "allow-failed-run": { type: "boolean" },
      json: { type: "boolean" },
    });
    const [txid] = positionalArgs("tx promote", positionals, ["<txid>"]);
    const tx = await promoteTransaction(envFromFlags(values, io), txid, {
      approveCore: values["approve-core"],
      allowFailedRun: values["allow-failed-run"],
    }, govOptions(io));
    if (values.json) printJson(io, tx);
    else {
      const p = tx.promotion ?? {};
      io.out(`${styles(io).green("✓")} transaction ${tx.txid} promoted (${tx.node_id})\n`);
      io.out(`  snapshots: pre ${p.pre_snapshot}, post ${p.post_snapshot}\n`);
      const deps = (tx.promotion_plan?.managed_deps as string[] | undefined) ?? [];
      io.out(`  managed deps: ${deps.join(", ") || "(none)"}\n`);
      io.out(`  undo with: gov rollback ${p.pre_snapshot}\n`);
    }
    return 0;
  },
};
