/**
 * `gov snapshot inspect`: one snapshot's meta.json.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { inspectSnapshot } from "../../gov/mod.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions } from "./common.ts";

/** `gov snapshot inspect`. */
export const snapshotInspectCommand: Command = {
  name: "snapshot inspect",
  summary: "show a snapshot's meta.json",
  help: `Usage: gov snapshot inspect <snapshot-id> [--json]

Prints the snapshot's meta.json: id, created_at, reason, ref and the sha256 of each file it
holds (pyproject.toml, uv.lock, plugins.json), each checked against the file in the snapshot:
a missing or edited file is marked, and the snapshot is said to be damaged (it cannot be
rolled back to). --json adds "integrity": {name: "ok" | "missing" | "edited"}.

Flags:
  --json   print meta.json as JSON

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("snapshot inspect", args, {
      ...ENV_FLAGS,
      json: { type: "boolean" },
    });
    const [id] = positionalArgs("snapshot inspect", positionals, ["<snapshot-id>"]);
    const { meta, dir, files } = await inspectSnapshot(
      envFromFlags(values, io),
      id,
      govOptions(io),
    );
    if (values.json) {
      printJson(io, { ...meta, integrity: files });
      return 0;
    }
    io.out(`snapshot ${meta.id}\n  created: ${meta.created_at}\n  reason:  ${meta.reason}\n`);
    io.out(`  ref:     ${meta.ref ?? "-"}\n  folder:  ${dir}\n`);
    for (const [f, state] of Object.entries(files)) {
      const mark = state === "ok" ? "" : state === "missing" ? "  (missing!)" : "  (edited since!)";
      io.out(`  ${f.padEnd(15)} ${meta.files?.[f] ?? "-"}${mark}\n`);
    }
    const bad = Object.entries(files).filter(([, st]) => st !== "ok").map(([f]) => f);
    if (bad.length) {
      io.err(
        `warning: snapshot ${meta.id} is damaged (${
          bad.join(", ")
        }); it cannot be rolled back to\n`,
      );
    }
    return 0;
  },
};
