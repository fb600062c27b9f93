/**
 * `gov resolve`: settles a dependency conflict with pins.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { styles } from "../io.ts";
import { UsageError } from "../../errors.ts";
import { conflictReport, parsePin, requireResolvable, resolveTransaction } from "../../gov/mod.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions } from "./common.ts";

/** `gov resolve`. */
export const resolveCommand: Command = {
  name: "resolve",
  summary: "pin versions to settle a transaction's dependency conflict",
  help: `Usage: gov resolve <txid> [--pin PACKAGE==VERSION]... [--json]

For a transaction in needs_resolution, promote_failed or resolved: merges the pins into its
resolution_pins and retries the lock in an isolated workdir with them as
[tool.uv] override-dependencies (an override replaces every requirement on that package,
transitive ones included). Success sets the status to resolved (then \`gov tx promote\`);
failure keeps needs_resolution and writes a new state/conflicts/<txid>.json.

Without --pin, on a terminal, the conflict is shown and pins are asked for one per line
(an empty line ends). Without --pin and without a terminal it is a usage error, except for
a promote_failed transaction: relocking with the pins it already has is its retry once
the cause (a broken-off sync, a failing smoke test) is fixed.

Flags:
  --pin P==V   a pin; repeat for several
  --json       print the transaction as JSON

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("resolve", args, {
      ...ENV_FLAGS,
      pin: { type: "string", multiple: true },
      json: { type: "boolean" },
    });
    const [txid] = positionalArgs("resolve", positionals, ["<txid>"]);
    const env = envFromFlags(values, io);
    const gopts = govOptions(io);
    let pins = (values.pin ?? []).map(parsePin);
    const { tx, report } = pins.length === 0
      ? await conflictReport(env, txid, gopts)
      : { tx: undefined, report: undefined };
    // After a failed promotion (a sync that broke off, a smoke test fixed since) relocking
    // with the pins it has is the retry; a conflict needs new pins.
    const retry = tx?.status === "promote_failed";
    if (tx) requireResolvable(tx); // before asking for pins that could not be used
    if (tx && !io.stdinIsTerminal && !retry) {
      throw new UsageError("gov resolve: no --pin given and stdin is not a terminal", {
        hint: `pass pins, e.g. gov resolve ${txid} --pin numpy==1.26.4`,
      });
    }
    if (tx && io.stdinIsTerminal) {
      const s = styles(io);
      io.err(`${s.bold(`transaction ${tx.txid}`)} (${tx.node_id}) is ${tx.status}\n`);
      if (report) {
        io.err(
          `conflict between custom nodes ${report.nodes.join(", ")}${
            report.involves_base ? " and the base requirements" : ""
          }:\n`,
        );
        for (const l of report.summary.split("\n")) io.err(`  ${l}\n`);
        if (report.packages.length) io.err(`packages involved: ${report.packages.join(", ")}\n`);
      }
      if (tx.resolution_pins.length) io.err(`current pins: ${tx.resolution_pins.join(", ")}\n`);
      while (true) {
        const line = await io.readLine("pin (package==version, empty line to finish): ");
        if (line === null || line.trim() === "") break;
        try {
          pins.push(parsePin(line));
        } catch (err) {
          io.err(`${s.red("error:")} ${(err as Error).message}; try again\n`);
        }
      }
      if (pins.length === 0 && !retry) {
        throw new UsageError("gov resolve: no pins given; nothing changed");
      }
      pins = [...new Set(pins)];
    }
    const done = await resolveTransaction(env, txid, pins, gopts);
    if (values.json) printJson(io, done);
    else {
      io.out(
        `${styles(io).green("✓")} transaction ${done.txid} resolved${
          done.resolution_pins.length ? ` with ${done.resolution_pins.join(", ")}` : ""
        }\n  next: gov tx promote ${done.txid}${
          done.core_impact.length ? " --approve-core" : ""
        }\n`,
      );
    }
    return 0;
  },
};
