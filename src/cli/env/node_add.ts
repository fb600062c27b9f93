/**
 * `gov node add`: clones a custom node and registers it.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { styles } from "../io.ts";
import { addNode, addRegistryNode } from "../../gov/mod.ts";
import { UsageError } from "../../errors.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions } from "./common.ts";

/** `gov node add`. */
export const nodeAddCommand: Command = {
  name: "node add",
  summary: "clone a custom node into custom_nodes/ and register it",
  help: `Usage: gov node add <id> <git-url> [--ref REF] [--json]
       gov node add <registry-id>[@version] [--json]

Clones <git-url> into <comfyui_dir>/custom_nodes/<id> (checking out REF, a branch, tag or
commit, when given) and registers it in state/plugins.json with dependency group
node-<id> and no managed dependencies yet. Its requirements reach production only
through \`gov tx run <id>\` and \`gov tx promote\`. An existing folder or a failed clone is an
error and leaves the registry untouched.

With one argument, the node comes from the Comfy Registry (\`[registry] url\` of gov.toml,
default https://api.comfy.org; GOV_REGISTRY_URL overrides it): the version asked for, or the
latest, is downloaded, its hash checked when the registry gives one, and unpacked safely
into custom_nodes/<registry-id>. plugins.json records source "registry", the id, version
and the archive's sha256.

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
    if (positionals.length === 1 && values.ref !== undefined) {
      throw new UsageError("gov node add: --ref applies to git nodes", {
        hint: "pin a registry node as <registry-id>@<version>",
      });
    }
    const [id, url] = positionals.length === 1
      ? [positionals[0], undefined]
      : positionalArgs("node add", positionals, ["<id>", "<git-url>"]);
    const env = envFromFlags(values, io);
    const rec = url === undefined
      ? await addRegistryNode(env, id, govOptions(io))
      : await addNode(env, id, url, { ref: values.ref }, govOptions(io));
    if (values.json) printJson(io, rec);
    else {
      io.out(
        `${styles(io).green("✓")} custom node ${rec.id} registered (${
          rec.commit?.slice(0, 12) ?? `registry ${rec.version}`
        }) at ${rec.path}\n  next: gov tx run ${rec.id}\n`,
      );
    }
    return 0;
  },
};
