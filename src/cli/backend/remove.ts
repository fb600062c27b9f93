/**
 * `gov backend remove`: drop a backend from `<workspace>/backends.toml`.
 *
 * @module
 */
import { removeBackend } from "../../backends/registry.ts";
import { validateName } from "../../workspace/names.ts";
import { workspaceFromFlag } from "../inputs.ts";
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import type { Io } from "../io.ts";

const NAME = "backend remove";

/** The `gov backend remove` command. */
export const removeCommand: Command = {
  name: NAME,
  summary: "remove a backend from backends.toml",
  help: `Usage: gov backend remove <id> [--workspace DIR] [--json]

Removes the backend's [[backend]] table from <workspace>/backends.toml. A running
\`gov serve\` stops routing new jobs to it; jobs already running there finish.

Flags:
      --workspace DIR   the workspace (default: discovered)
      --json            print {"removed": "<id>"}

Exit codes: 0 removed, 2 no such backend or bad id (nothing changed).
`,
  async run(args: string[], io: Io): Promise<number> {
    const { values, positionals } = parseFlags(NAME, args, {
      workspace: { type: "string" },
      json: { type: "boolean" },
    });
    const [id] = positionalArgs(NAME, positionals, ["<id>"]);
    validateName("backend id", id);
    const ws = workspaceFromFlag(values.workspace, io);
    await removeBackend(ws, id);
    if (values.json) printJson(io, { removed: id });
    else io.out(`removed backend ${id}\n`);
    return 0;
  },
};
