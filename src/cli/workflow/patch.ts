/**
 * `gov workflow patch`: set parameters of a workflow and write the resulting API prompt.
 *
 * @module
 */
import { UsageError } from "../../errors.ts";
import { needsObjectInfo, toApiPrompt } from "../../workflow/convert/mod.ts";
import { parseSet, patchPrompt } from "../../workflow/patch.ts";
import { type Command, parseFlags, positionalArgs } from "../command.ts";
import type { Io } from "../io.ts";
import { readInputFile } from "../inputs.ts";
import {
  objectInfoFrom,
  promptRequest,
  readWorkflowFile,
  warningPrinter,
  writeJsonOutput,
} from "./shared.ts";

const NAME = "workflow patch";

/** The `gov workflow patch` command. */
export const patchCommand: Command = {
  name: NAME,
  summary: "set workflow parameters (type-checked) and write the API prompt",
  help: `Usage: gov workflow patch <workflow.json> --set KEY=VALUE... [flags]

Sets parameters and writes the resulting API prompt (a UI workflow is converted first). KEY
is <node id>.<input> (3.seed), <node title>.<input> (KSampler.steps, "Load Checkpoint.ckpt_name")
or an input name only one node has (seed). Values are checked against the node definitions:
INT/FLOAT range and step, COMBO choices, BOOLEAN true/false. \`--set seed=random\` draws a
new seed from the input's range.

Flags:
      --set KEY=VALUE       set a parameter; repeatable, applied in order
      --set-file KEY=PATH   set a parameter to the text of a file (long prompts)
      --object-info FILE    node definitions: a saved GET /object_info response
      --backend ID          node definitions from that backend's live /object_info
      --workspace DIR       workspace of --backend (default: discovered)
  -o, --output FILE         write the prompt to FILE (atomically) instead of stdout
      --request             write the whole POST /prompt body (see \`workflow convert\`)
      --allow-unknown       convert even when node classes are unknown

Without node definitions an API prompt is patched with types guessed from current values.

Exit codes: 0 written, 2 bad key or value (nothing written).
`,
  async run(args: string[], io: Io): Promise<number> {
    const { values, positionals } = parseFlags(NAME, args, {
      set: { type: "string", multiple: true },
      "set-file": { type: "string", multiple: true },
      "object-info": { type: "string" },
      backend: { type: "string" },
      workspace: { type: "string" },
      output: { type: "string" },
      request: { type: "boolean" },
      "allow-unknown": { type: "boolean" },
    });
    const [file] = positionalArgs(NAME, positionals, ["<workflow.json>"]);
    const sets: [string, string][] = (values.set ?? []).map(parseSet);
    for (const arg of values["set-file"] ?? []) {
      const [key, path] = parseSet(arg);
      sets.push([key, await readInputFile(`--set-file ${key}=PATH`, path, io)]);
    }
    if (sets.length === 0) {
      throw new UsageError(`gov ${NAME}: nothing to set`, {
        hint: "add --set KEY=VALUE (list keys with `gov workflow params`)",
      });
    }
    const doc = await readWorkflowFile(io, file);
    const objectInfo = await objectInfoFrom(io, NAME, {
      objectInfo: values["object-info"],
      backend: values.backend,
      workspace: values.workspace,
    });
    if (needsObjectInfo(doc) && !objectInfo) {
      throw new UsageError(`gov ${NAME}: ${file} is a UI workflow; it needs node definitions`, {
        hint: "pass --object-info FILE (a saved /object_info) or --backend ID",
      });
    }
    const prompt = toApiPrompt(doc, objectInfo, {
      allowUnknown: values["allow-unknown"],
      onWarning: warningPrinter(io),
    });
    const patched = patchPrompt(prompt, sets, objectInfo);
    const out = values.request ? promptRequest(patched, doc) : patched;
    const written = await writeJsonOutput(io, out, values.output);
    if (written) io.out(`wrote ${Object.keys(patched).length} nodes to ${written}\n`);
    return 0;
  },
};
