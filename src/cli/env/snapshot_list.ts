/**
 * `gov snapshot list`: the snapshot index.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { listSnapshots } from "../../gov/mod.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions, table } from "./common.ts";

/** `gov snapshot list`. */
export const snapshotListCommand: Command = {
  name: "snapshot list",
  summary: "list snapshots of the truth files, oldest first",
  help: `Usage: gov snapshot list [--json]

Lists the entries of state/snapshots_index.json, oldest first: id, time, reason
(init, pre-promote, post-promote, pre-remove, post-remove, pre-rollback) and the
transaction, node or snapshot it refers to. gov keeps the newest
[rollback] snapshot_retention (default 50).

Flags:
  --json   print the entries as a JSON array

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("snapshot list", args, {
      ...ENV_FLAGS,
      json: { type: "boolean" },
    });
    positionalArgs("snapshot list", positionals, []);
    const snaps = await listSnapshots(envFromFlags(values, io), govOptions(io));
    if (values.json) {
      printJson(io, snaps);
      return 0;
    }
    if (snaps.length === 0) {
      io.out("no snapshots (run `gov init`)\n");
      return 0;
    }
    io.out(table([
      ["ID", "CREATED", "REASON", "REF"],
      ...snaps.map((s) => [s.id, s.created_at, s.reason, s.ref ?? "-"]),
    ]));
    return 0;
  },
};
