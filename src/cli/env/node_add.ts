/**
 * `gov node add`: clones a custom node and registers it.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { styles } from "../io.ts";
import { addNode } from "../../gov/mod.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions } from "./common.ts";

/** `gov node add`. */
export const nodeAddCommand: Command = {
  name: "node add",
  summary: "clone a custom node into custom_nodes/ and register it",
  help: `Usage: gov node add <id> <git-url> [--ref REF] [--json]

Clones <git-url> into <comfyui_dir>/custom_nodes/<id> (checking out REF, a branch, tag or
commit, when given) and registers it in state/plugins.json with dependency group
node-<id> and no managed dependencies yet. Its requirements reach production only
through \`gov tx run <id>\` and \`gov tx promote\`. An existing folder or a failed clone is an
error and leaves the registry untouched.

Flags:
  --ref REF   branch, tag or commit to check out
  --json      print the record as JSON

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("node add", args, {
      ...ENV_FLAGS,
      ref: { type: "string" },
      json: { type: "boolean" },
    });
    const [id, url] = positionalArgs("node add", positionals, ["<id>", "<git-url>"]);
    const env = envFromFlags(values, io);
    const rec = await addNode(env, id, url, { ref: values.ref }, govOptions(io));
    if (values.json) printJson(io, rec);
    else {
      io.out(
        `${styles(io).green("✓")} custom node ${rec.id} registered (${
          rec.commit?.slice(0, 12)
        }) at ${rec.path}\n  next: gov tx run ${rec.id}\n`,
      );
    }
    return 0;
  },
};
