/**
 * `gov node list`: the registered custom nodes.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { listNodes } from "../../gov/mod.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions, table } from "./common.ts";

/** `gov node list`. */
export const nodeListCommand: Command = {
  name: "node list",
  summary: "list the registered custom nodes and their managed dependencies",
  help: `Usage: gov node list [--json]

Lists the custom nodes in state/plugins.json: id, commit, managed dependencies (what their
dependency group node-<id> declares in production) and whether their code is present.

Flags:
  --json   print the records as a JSON array

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("node list", args, {
      ...ENV_FLAGS,
      json: { type: "boolean" },
    });
    positionalArgs("node list", positionals, []);
    const nodes = await listNodes(envFromFlags(values, io), govOptions(io));
    if (values.json) {
      printJson(io, nodes);
      return 0;
    }
    if (nodes.length === 0) {
      io.out("no custom nodes registered (add one with `gov node add <id> <git-url>`)\n");
      return 0;
    }
    io.out(table([
      ["ID", "COMMIT", "CODE", "MANAGED DEPS"],
      ...nodes.map((n) => [
        n.id,
        n.commit?.slice(0, 12) ?? (n.version ? `v${n.version} (registry)` : ""),
        n.code_state === "other-commit"
          ? `other commit ${(n.code_commit ?? "").slice(0, 12)}`
          : n.code_state ?? (n.code_present ? "present" : "missing"),
        n.managed_deps.join(", ") || "-",
      ]),
    ]));
    return 0;
  },
};
