/**
 * `gov workflow params`: the tunable parameters of a workflow.
 *
 * @module
 */
import { UsageError } from "../../errors.ts";
import { needsObjectInfo, toApiPrompt } from "../../workflow/convert/mod.ts";
import { listParameters, type Parameter } from "../../workflow/params.ts";
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { type Io, styles } from "../io.ts";
import { objectInfoFrom, readWorkflowFile, warningPrinter } from "./shared.ts";

const NAME = "workflow params";

/** The `gov workflow params` command. */
export const paramsCommand: Command = {
  name: NAME,
  summary: "list a workflow's tunable parameters (seed, steps, prompts, models, any widget)",
  help: `Usage: gov workflow params <workflow.json> [--object-info FILE | --backend ID] [--json]

Lists every value input of the workflow with its key for \`gov workflow patch --set\`
(<node id>.<input>), the node's title and class, the type, the current value and, from the
node definitions, the allowed range, step or choices. An API prompt works without node
definitions (types are then guessed from the values); a UI workflow needs them.

Flags:
      --object-info FILE  node definitions: a saved GET /object_info response
      --backend ID        node definitions from that backend's live /object_info
      --workspace DIR     workspace of --backend (default: discovered)
      --allow-unknown     list parameters even when node classes are unknown
      --json              print the parameters as a JSON array
`,
  async run(args: string[], io: Io): Promise<number> {
    const { values, positionals } = parseFlags(NAME, args, {
      "object-info": { type: "string" },
      backend: { type: "string" },
      workspace: { type: "string" },
      "allow-unknown": { type: "boolean" },
      json: { type: "boolean" },
    });
    const [file] = positionalArgs(NAME, positionals, ["<workflow.json>"]);
    const doc = await readWorkflowFile(io, file);
    const objectInfo = await objectInfoFrom(io, NAME, {
      objectInfo: values["object-info"],
      backend: values.backend,
      workspace: values.workspace,
    });
    if (needsObjectInfo(doc) && !objectInfo) {
      throw new UsageError(
        `gov ${NAME}: ${file} is a UI workflow; its widget values need node definitions`,
        {
          hint: "pass --object-info FILE (a saved /object_info) or --backend ID",
        },
      );
    }
    const prompt = toApiPrompt(doc, objectInfo, {
      allowUnknown: values["allow-unknown"],
      dynamicPrompts: false,
      onWarning: values.json ? () => {} : warningPrinter(io),
    });
    const params = listParameters(prompt, objectInfo);
    if (values.json) {
      printJson(io, params);
      return 0;
    }
    io.out(renderParameters(io, params));
    return 0;
  },
};

/**
 * A table of parameters grouped by node, one line per input.
 *
 * @example
 * ```ts
 * import { renderParameters } from "@/cli/workflow/params.ts";
 * import { type Io } from "@/cli/io.ts";
 * import { type ObjectInfo } from "@/workflow/object_info.ts";
 * import { listParameters } from "@/workflow/params.ts";
 * import { type ApiPrompt } from "@/workflow/types.ts";
 * declare const prompt: ApiPrompt;
 *
 * declare const info: ObjectInfo;
 * declare const io: Io;
 *
 * io.out(renderParameters(io, listParameters(prompt, info)));
 * ```
 */
export function renderParameters(io: Io, params: Parameter[]): string {
  if (params.length === 0) return "no tunable parameters\n";
  const s = styles(io);
  const keyWidth = Math.min(Math.max(...params.map((p) => p.key.length)), 32);
  const typeWidth = Math.max(...params.map((p) => p.type.length));
  const values = params.map((p) => shown(p.value));
  const valueWidth = Math.min(Math.max(...values.map((v) => v.length)), 40);
  const lines: string[] = [];
  let lastNode: string | undefined;
  params.forEach((p, i) => {
    if (p.nodeId !== lastNode) {
      if (lastNode !== undefined) lines.push("");
      lines.push(
        s.bold(`${p.nodeId}  ${p.title}`) +
          (p.title !== p.classType ? s.dim(`  (${p.classType})`) : ""),
      );
      lastNode = p.nodeId;
    }
    const allowed = allowedText(p);
    const line = `  ${p.key.padEnd(keyWidth)}  ${p.type.padEnd(typeWidth)}  ` +
      (allowed ? values[i].padEnd(valueWidth) + s.dim(`  ${allowed}`) : values[i]);
    lines.push(line.trimEnd());
  });
  return lines.join("\n") + "\n";
}

function shown(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value) ?? "null";
  const flat = text.replaceAll("\\n", "⏎");
  return flat.length > 60 ? flat.slice(0, 57) + '…"' : flat;
}

function allowedText(p: Parameter): string {
  if (p.choices) {
    const list = p.choices.slice(0, 6).map(String).join(", ");
    return `[${list}${p.choices.length > 6 ? `, … ${p.choices.length} choices` : ""}]`;
  }
  const parts: string[] = [];
  if (p.min !== undefined || p.max !== undefined) {
    parts.push(`${number(p.min)}..${number(p.max)}`);
  }
  if (p.step !== undefined) parts.push(`step ${p.step}`);
  if (!p.typeKnown) parts.push("(type guessed)");
  return parts.join(" ");
}

// JSON numbers lose the last digits of 2^64-1 (the usual seed maximum); show it as written.
function number(n: number | undefined): string {
  if (n === undefined) return "";
  return n === 2 ** 64 ? "18446744073709551615" : String(n);
}
