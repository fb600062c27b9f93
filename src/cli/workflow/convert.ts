/**
 * `gov workflow convert`: a UI workflow to the API prompt ComfyUI's frontend would queue.
 *
 * @module
 */
import { UsageError } from "../../errors.ts";
import { needsObjectInfo, toApiPrompt } from "../../workflow/convert/mod.ts";
import { type Command, parseFlags, positionalArgs } from "../command.ts";
import type { Io } from "../io.ts";
import {
  objectInfoFrom,
  promptRequest,
  readWorkflowFile,
  warningPrinter,
  writeJsonOutput,
} from "./shared.ts";

const NAME = "workflow convert";

/** The `gov workflow convert` command. */
export const convertCommand: Command = {
  name: NAME,
  summary: "convert a UI workflow to an API prompt (as the ComfyUI frontend would queue it)",
  help: `Usage: gov workflow convert <workflow.json> (--object-info FILE | --backend ID) [flags]

Converts a workflow saved from the ComfyUI frontend (UI format) to the API prompt that
pressing Queue would send to POST /prompt, without a browser: widget values are mapped to
input names through the node definitions, links are followed through Reroutes, bypassed
nodes and subgraphs, PrimitiveNodes feed their widgets, notes and muted nodes are dropped.
An API prompt given as input is written back unchanged.

Flags:
      --object-info FILE  node definitions: a saved GET /object_info response
      --backend ID        node definitions from that backend's live /object_info
                          (a [[backend]] of <workspace>/backends.toml)
      --workspace DIR     workspace of --backend (default: discovered)
  -o, --output FILE       write the prompt to FILE (atomically) instead of stdout
      --request           write the whole POST /prompt body: {"prompt": ..., "extra_data":
                          {"extra_pnginfo": {"workflow": ...}}} (images then embed the workflow)
      --allow-unknown     convert even when node classes are missing from the definitions;
                          their widget values are kept as widget_<n> (inspection only)
      --virtual CLASS     treat CLASS as a frontend-only node (dropped, links pass through);
                          repeatable. Core and well-known extension ones are built in.
      --no-dynamic-prompts  keep {a|b} choices in prompts instead of picking one

Exit codes: 0 converted, 1 backend unreachable, 2 bad input (unreadable file, unknown node
classes, missing definitions).
`,
  async run(args: string[], io: Io): Promise<number> {
    const { values, positionals } = parseFlags(NAME, args, {
      "object-info": { type: "string" },
      backend: { type: "string" },
      workspace: { type: "string" },
      output: { type: "string" },
      request: { type: "boolean" },
      "allow-unknown": { type: "boolean" },
      virtual: { type: "string", multiple: true },
      "no-dynamic-prompts": { type: "boolean" },
    });
    const [file] = positionalArgs(NAME, positionals, ["<workflow.json>"]);
    const doc = await readWorkflowFile(io, file);
    const api = !needsObjectInfo(doc);
    if (api && (values["object-info"] || values.backend)) {
      io.err(`note: ${file} is already an API prompt; written unchanged\n`);
    }
    const objectInfo = api ? undefined : await objectInfoFrom(io, NAME, {
      objectInfo: values["object-info"],
      backend: values.backend,
      workspace: values.workspace,
    });
    if (!api && !objectInfo) {
      throw new UsageError(`gov ${NAME}: a UI workflow needs node definitions`, {
        hint: "pass --object-info FILE (a saved /object_info) or --backend ID",
      });
    }
    const prompt = toApiPrompt(doc, objectInfo, {
      allowUnknown: values["allow-unknown"],
      virtualClasses: values.virtual,
      dynamicPrompts: !values["no-dynamic-prompts"],
      onWarning: warningPrinter(io),
    });
    const out = values.request ? promptRequest(prompt, doc) : prompt;
    const written = await writeJsonOutput(io, out, values.output);
    if (written) {
      io.out(`wrote ${Object.keys(prompt).length} nodes to ${written}\n`);
    }
    return 0;
  },
};
