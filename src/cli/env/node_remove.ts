/**
 * `gov node remove`: drops a custom node's dependencies (exact sync GC) and its record.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { styles } from "../io.ts";
import { removeNode } from "../../gov/mod.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions } from "./common.ts";

/** `gov node remove`. */
export const nodeRemoveCommand: Command = {
  name: "node remove",
  summary: "remove a custom node, its dependency group and (GC) its packages",
  help: `Usage: gov node remove <id> [--purge-code] [--json]

Takes a pre-remove snapshot, removes the node's dependency group node-<id> (and the resolution
pins only its promotion brought, unless the rest no longer locks without them) in an
isolated workdir and relocks, copies the new truth files into the environment, exact-syncs
.venv-prod (packages no other group needs are uninstalled), removes the node's record and
aborts its open transactions, then takes a post-remove snapshot. Any failure restores the
pre-remove snapshot. The node's code is kept as custom_nodes/<id>.disabled (ComfyUI does
not import such folders; a rollback that registers the node again re-enables it), or
deleted with --purge-code.

Flags:
  --purge-code   also delete <comfyui_dir>/custom_nodes/<id>
  --json         print the result as JSON

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("node remove", args, {
      ...ENV_FLAGS,
      "purge-code": { type: "boolean" },
      json: { type: "boolean" },
    });
    const [id] = positionalArgs("node remove", positionals, ["<id>"]);
    const r = await removeNode(
      envFromFlags(values, io),
      id,
      { purgeCode: values["purge-code"] },
      govOptions(io),
    );
    if (values.json) printJson(io, r);
    else {
      io.out(`${styles(io).green("✓")} custom node ${r.node_id} removed\n`);
      io.out(`  dependencies dropped: ${r.removed_deps.join(", ") || "(none)"}\n`);
      if (r.dropped_pins.length) io.out(`  pins dropped: ${r.dropped_pins.join(", ")}\n`);
      if (r.kept_pins.length) {
        io.out(
          `  pins kept (the remaining nodes only lock with them): ${r.kept_pins.join(", ")}\n`,
        );
      }
      io.out(`  snapshots: pre ${r.pre_snapshot}, post ${r.post_snapshot}\n`);
      if (r.aborted_transactions.length) {
        io.out(`  aborted transactions: ${r.aborted_transactions.join(", ")}\n`);
      }
      io.out(
        r.code === "purged"
          ? "  code deleted\n"
          : r.code === "disabled"
          ? `  code kept as custom_nodes/${r.node_id}.disabled (--purge-code deletes it)\n`
          : "  no code folder\n",
      );
    }
    return 0;
  },
};
