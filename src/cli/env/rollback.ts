/**
 * `gov rollback`: restores a snapshot's truth files and rebuilds production.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { styles } from "../io.ts";
import { rollbackTo } from "../../gov/mod.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions } from "./common.ts";

/** `gov rollback`. */
export const rollbackCommand: Command = {
  name: "rollback",
  summary: "restore a snapshot's truth files and rebuild .venv-prod",
  help: `Usage: gov rollback <snapshot-id> [--json]

Takes a pre-rollback snapshot, restores the snapshot's pyproject.toml, uv.lock and
plugins.json (after checking their recorded sha256), and rebuilds .venv-prod with
\`uv sync --locked --all-groups\`. When the rebuild fails, the pre-rollback snapshot is
restored and .venv-prod re-synced, and the command fails. Custom node code is not part of a
snapshot: a node the snapshot does not register has its folder parked as <id>.disabled, and
a parked node it registers again is re-enabled; registered nodes without code are listed.

Flags:
  --json   print the result as JSON

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("rollback", args, {
      ...ENV_FLAGS,
      json: { type: "boolean" },
    });
    const [id] = positionalArgs("rollback", positionals, ["<snapshot-id>"]);
    const r = await rollbackTo(envFromFlags(values, io), id, govOptions(io));
    if (values.json) {
      printJson(io, r);
      return 0;
    }
    const s = styles(io);
    io.out(
      `${
        s.green("✓")
      } rolled back to ${r.target.id} (${r.target.reason}, ${r.target.created_at})\n`,
    );
    io.out(`  .venv-prod: ${r.prod === "synced" ? "rebuilt" : "already matched"}\n`);
    io.out(`  undo with: gov rollback ${r.pre_snapshot}\n`);
    if (r.unregistered.length) io.out(`  no longer registered: ${r.unregistered.join(", ")}\n`);
    if (r.disabled.length) {
      io.out(
        `  code parked as custom_nodes/<id>.disabled (ComfyUI skips it): ${
          r.disabled.join(", ")
        }\n`,
      );
    }
    if (r.reregistered.length) io.out(`  registered again: ${r.reregistered.join(", ")}\n`);
    if (r.reenabled.length) io.out(`  code re-enabled: ${r.reenabled.join(", ")}\n`);
    if (r.missing_code.length) {
      io.err(
        `${s.yellow("warning:")} registered nodes without code: ${r.missing_code.join(", ")}` +
          " (re-add them with `gov node remove` + `gov node add`)\n",
      );
    }
    return 0;
  },
};
