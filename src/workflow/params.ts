/**
 * The tunable parameters of an API prompt: every literal (non-link) input, with what the
 * node definition says about it (type, range, step, choices) when one is available, and
 * types inferred from the values when not.
 *
 * @module
 */
import { classTitle, definitionInputs, type InputInfo, type ObjectInfo } from "./object_info.ts";
import { type ApiPrompt, isApiLink } from "./types.ts";

/** One tunable input of a prompt. */
export interface Parameter {
  /** Unique key for `--set`: `<node id>.<input>`. */
  key: string;
  /** Node id in the prompt. */
  nodeId: string;
  /** Node title (`_meta.title`, else the class's display name). */
  title: string;
  /** Node class. */
  classType: string;
  /** Input name. */
  input: string;
  /** `INT`, `FLOAT`, `STRING`, `BOOLEAN`, `COMBO`, `LIST`, `OBJECT`, or a custom type. */
  type: string;
  /** Whether `type` comes from the node definition (true) or was guessed from the value. */
  typeKnown: boolean;
  /** Current value (lists unwrapped from `{"__value__": [...]}`). */
  value: unknown;
  /** Default from the node definition. */
  default?: unknown;
  min?: number;
  max?: number;
  step?: number;
  /** Granularity FLOAT values are rounded to by the frontend (`round`), when set. */
  round?: number;
  /** Allowed values of a COMBO. */
  choices?: unknown[];
  /** Multi-line text input (prompts). */
  multiline?: boolean;
}

/**
 * Lists every literal input of `prompt`, in prompt order. With `objectInfo`, types, ranges
 * and choices come from the node definitions; without it (or for classes it lacks), the
 * type is inferred from the value (`typeKnown: false`).
 *
 * @example
 * ```ts
 * import { loadObjectInfo } from "./object_info.ts";
 * import type { ApiPrompt } from "./types.ts";
 * const prompt: ApiPrompt = JSON.parse(await Deno.readTextFile("prompt.json"));
 * const info = await loadObjectInfo("object_info.json");
 * for (const p of listParameters(prompt, info)) console.log(p.key, p.type, p.value);
 * // 3.seed INT 8566257 ...
 * ```
 */
export function listParameters(prompt: ApiPrompt, objectInfo?: ObjectInfo): Parameter[] {
  const out: Parameter[] = [];
  for (const [nodeId, node] of Object.entries(prompt)) {
    const def = objectInfo?.[node.class_type];
    const specs = new Map<string, InputInfo>(
      def ? definitionInputs(def).map((i) => [i.name, i]) : [],
    );
    const title = node._meta?.title ?? classTitle(objectInfo, node.class_type);
    for (const [input, raw] of Object.entries(node.inputs ?? {})) {
      if (isApiLink(raw)) continue;
      out.push(describe(nodeId, title, node.class_type, input, raw, specs.get(input)));
    }
  }
  return out;
}

/**
 * Describes one input from its value and (optional) spec; shared with the patcher so the
 * rules that list a parameter are the rules that check a new value.
 *
 * @example
 * ```ts
 * import { describe } from "@/workflow/params.ts";
 *
 * describe("3", "KSampler", "KSampler", "steps", 20, undefined).type; // "INT"
 * ```
 */
export function describe(
  nodeId: string,
  title: string,
  classType: string,
  input: string,
  raw: unknown,
  spec: InputInfo | undefined,
): Parameter {
  const value = unwrap(raw);
  const p: Parameter = {
    key: `${nodeId}.${input}`,
    nodeId,
    title,
    classType,
    input,
    type: spec ? spec.type : inferType(raw),
    typeKnown: spec !== undefined,
    value,
  };
  if (spec) {
    const o = spec.options;
    if (o.default !== undefined) p.default = o.default;
    if (spec.type === "INT" || spec.type === "FLOAT") {
      const num = (v: unknown) => typeof v === "number" && Number.isFinite(v) ? v : undefined;
      p.min = num(o.min);
      p.max = num(o.max);
      p.step = num(o.step);
      if (spec.type === "FLOAT") p.round = num(o.round);
      if (p.min === undefined) delete p.min;
      if (p.max === undefined) delete p.max;
      if (p.step === undefined) delete p.step;
      if (p.round === undefined) delete p.round;
    }
    if (spec.type === "COMBO") p.choices = spec.choices ?? [];
    if (spec.type === "STRING" && o.multiline) p.multiline = true;
  }
  return p;
}

function unwrap(raw: unknown): unknown {
  if (typeof raw === "object" && raw !== null && !Array.isArray(raw) && "__value__" in raw) {
    return (raw as { __value__: unknown }).__value__;
  }
  return raw;
}

function inferType(raw: unknown): string {
  if (typeof raw === "number") return Number.isInteger(raw) ? "INT" : "FLOAT";
  if (typeof raw === "string") return "STRING";
  if (typeof raw === "boolean") return "BOOLEAN";
  if (Array.isArray(raw) || (typeof raw === "object" && raw !== null && "__value__" in raw)) {
    return "LIST";
  }
  return raw === null ? "NULL" : "OBJECT";
}
