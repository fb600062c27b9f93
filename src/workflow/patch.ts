/**
 * Setting parameters of an API prompt from `KEY=VALUE` pairs, type-checked against the
 * node definitions so a typo fails here, with the allowed values in the message, instead of
 * as a validation error from a backend minutes later.
 *
 * @module
 */
import { ParameterError } from "./errors.ts";
import {
  classTitle,
  definitionInputs,
  type InputInfo,
  type ObjectInfo,
  WIDGET_TYPES,
} from "./object_info.ts";
import { describe, type Parameter } from "./params.ts";
import { type ApiPrompt, isApiLink } from "./types.ts";

/** Input types that take a literal value (forceInput sockets of these types too). */
const VALUE_TYPES: ReadonlySet<string> = WIDGET_TYPES;

/** Options of {@linkcode patchPrompt}. */
export interface PatchOptions {
  /** Random source for `random` values (default Math.random). */
  random?: () => number;
}

/** Where a key points: one input of one node. */
export interface ResolvedKey {
  nodeId: string;
  input: string;
}

/**
 * Returns a copy of `prompt` with each `[key, value]` applied in order. A key is
 * `<node id>.<input>`, `<node title>.<input>` (or `<class>.<input>`), or a bare input name
 * that exactly one node has as a value (`seed`). Values are strings as typed on a command
 * line, converted to the input's type and checked against its range, step and choices;
 * `random` draws an INT from its range (new seeds). Throws {@linkcode ParameterError}.
 *
 * @example
 * ```ts
 * import { loadObjectInfo } from "./object_info.ts";
 * import type { ApiPrompt } from "./types.ts";
 * const prompt: ApiPrompt = JSON.parse(await Deno.readTextFile("prompt.json"));
 * const info = await loadObjectInfo("object_info.json");
 * const next = patchPrompt(prompt, [["seed", "random"], ["KSampler.steps", "30"]], info);
 * ```
 */
export function patchPrompt(
  prompt: ApiPrompt,
  sets: [string, string][],
  objectInfo?: ObjectInfo,
  opts: PatchOptions = {},
): ApiPrompt {
  const out = structuredClone(prompt);
  const random = opts.random ?? Math.random;
  for (const [key, raw] of sets) {
    const { nodeId, input } = resolveKey(out, key, objectInfo);
    const node = out[nodeId];
    const spec = specOf(objectInfo, node.class_type, input);
    if (spec && !spec.isWidget && !VALUE_TYPES.has(spec.type) && spec.type !== "*") {
      // MODEL, IMAGE, LATENT...: only another node's output can feed it; a literal would
      // only fail the backend's validation later.
      throw new ParameterError(
        key,
        `input '${input}' of node ${nodeId} (${node.class_type}) takes a ${spec.type} from ` +
          "another node, not a value",
        "set one of the node's values instead; see `gov workflow params`",
      );
    }
    const current = node.inputs[input];
    const p = describe(
      nodeId,
      node._meta?.title ?? classTitle(objectInfo, node.class_type),
      node.class_type,
      input,
      isApiLink(current) || current === undefined ? defaultFor(spec) : current,
      spec,
    );
    node.inputs[input] = coerceValue(key, p, raw, random);
  }
  return out;
}

/**
 * Parses `KEY=VALUE` (the first `=` splits; the value may contain more).
 *
 * @example
 * ```ts
 * import { parseSet } from "@/workflow/patch.ts";
 *
 * parseSet("6.text=a cat, 4k"); // ["6.text", "a cat, 4k"]
 * ```
 */
export function parseSet(arg: string): [string, string] {
  const i = arg.indexOf("=");
  if (i <= 0) {
    throw new ParameterError(
      arg,
      "expected KEY=VALUE",
      "KEY is <node id>.<input>, <node title>.<input> or an input name, e.g. --set steps=30",
    );
  }
  return [arg.slice(0, i).trim(), arg.slice(i + 1)];
}

/**
 * Finds the input a key names. Tries, for each way of splitting at a `.`, a node id, then
 * node titles, then class names; then the whole key as an input name held as a value by
 * exactly one node. Throws {@linkcode ParameterError} listing candidates when the key is
 * ambiguous, and the closest keys when it matches nothing.
 *
 * @example
 * ```ts
 * import type { ApiPrompt } from "./types.ts";
 * const prompt: ApiPrompt = JSON.parse(await Deno.readTextFile("prompt.json"));
 * resolveKey(prompt, "KSampler.seed"); // { nodeId: "3", input: "seed" }
 * ```
 */
export function resolveKey(
  prompt: ApiPrompt,
  key: string,
  objectInfo?: ObjectInfo,
): ResolvedKey {
  const ids = Object.keys(prompt);
  const title = (id: string) =>
    prompt[id]._meta?.title ?? classTitle(objectInfo, prompt[id].class_type);
  const hasInput = (id: string, input: string) =>
    Object.hasOwn(prompt[id].inputs, input) ||
    specOf(objectInfo, prompt[id].class_type, input)?.isWidget;
  for (let i = key.lastIndexOf("."); i > 0; i = key.lastIndexOf(".", i - 1)) {
    const prefix = key.slice(0, i);
    const input = key.slice(i + 1);
    if (!input) continue;
    const matchers: ((id: string) => boolean)[] = [
      (id) => id === prefix,
      (id) => title(id) === prefix,
      (id) => title(id).toLowerCase() === prefix.toLowerCase(),
      (id) => prompt[id].class_type === prefix,
    ];
    for (const match of matchers) {
      const nodes = ids.filter(match);
      if (nodes.length === 0) continue;
      const withInput = nodes.filter((id) => hasInput(id, input));
      if (withInput.length === 1) return { nodeId: withInput[0], input };
      if (withInput.length > 1) {
        throw new ParameterError(
          key,
          `'${prefix}' names ${withInput.length} nodes with input '${input}'`,
          `use the node id: ${withInput.map((id) => `${id}.${input}`).join(", ")}`,
        );
      }
      const available = Object.keys(prompt[nodes[0]].inputs).filter((n) =>
        !isApiLink(prompt[nodes[0]].inputs[n])
      );
      throw new ParameterError(
        key,
        `node ${nodes[0]} (${title(nodes[0])}) has no input '${input}'`,
        available.length
          ? `its values are: ${available.join(", ")}`
          : "it has no literal inputs; see `gov workflow params`",
      );
    }
  }
  const literal = ids.filter((id) =>
    Object.hasOwn(prompt[id].inputs, key) && !isApiLink(prompt[id].inputs[key])
  );
  if (literal.length === 1) return { nodeId: literal[0], input: key };
  if (literal.length > 1) {
    throw new ParameterError(
      key,
      `ambiguous: ${literal.length} nodes have an input '${key}'`,
      `name one: ${literal.map((id) => `${id}.${key} (${title(id)})`).join(", ")}`,
    );
  }
  const linked = ids.filter((id) => isApiLink(prompt[id].inputs[key]));
  if (linked.length > 0) {
    throw new ParameterError(
      key,
      `input '${key}' of node ${linked[0]} is linked from another node, not a value`,
      `to replace the link with a value, name the node: --set ${linked[0]}.${key}=...`,
    );
  }
  const keys = ids.flatMap((id) =>
    Object.keys(prompt[id].inputs).filter((n) => !isApiLink(prompt[id].inputs[n])).map((n) =>
      `${id}.${n}`
    )
  );
  const near = keys.filter((k) => k.toLowerCase().includes(key.toLowerCase().split(".").pop()!))
    .slice(0, 8);
  throw new ParameterError(
    key,
    "matches no node input",
    near.length
      ? `did you mean: ${near.join(", ")}`
      : "list the parameters with `gov workflow params <workflow>`",
  );
}

function specOf(
  objectInfo: ObjectInfo | undefined,
  classType: string,
  input: string,
): InputInfo | undefined {
  const def = objectInfo && Object.hasOwn(objectInfo, classType)
    ? objectInfo[classType]
    : undefined;
  return def ? definitionInputs(def).find((i) => i.name === input) : undefined;
}

function defaultFor(spec: InputInfo | undefined): unknown {
  return spec?.options.default ?? (spec?.type === "COMBO" ? spec.choices?.[0] : undefined);
}

/**
 * Converts a command-line string to a value for parameter `p`, checking type, range, step
 * and choices. `random` gives a random INT in range.
 *
 * @example
 * ```ts
 * import { describe } from "./params.ts";
 * const stepsParam = describe("3", "KSampler", "KSampler", "steps", 20, undefined);
 * coerceValue("steps", stepsParam, "30", Math.random); // 30
 * ```
 */
export function coerceValue(
  key: string,
  p: Parameter,
  raw: string,
  random: () => number = Math.random,
): unknown {
  const text = raw.trim();
  switch (p.type) {
    case "INT": {
      if (text.toLowerCase() === "random") return randomInt(p, random);
      const n = Number(text);
      if (!p.typeKnown && text !== "" && Number.isFinite(n)) {
        // Type guessed from an integer value: a float is as plausible (cfg 8 -> 7.5).
        checkRange(key, p, n, raw);
        return n;
      }
      if (!/^[+-]?\d+$/.test(text)) {
        throw new ParameterError(
          key,
          `must be an integer${rangeText(p)}, got '${raw}'`,
          rangeHint(p),
        );
      }
      checkRange(key, p, n, raw);
      if (!Number.isSafeInteger(n)) {
        throw new ParameterError(
          key,
          `${text} is too large to pass exactly (the limit is ${Number.MAX_SAFE_INTEGER})`,
          "use a smaller value, or `random`",
        );
      }
      if (p.typeKnown && p.step && p.step > 1) {
        const offset = (p.min ?? 0) % p.step;
        if ((n - offset) % p.step !== 0) {
          const lower = Math.floor((n - offset) / p.step) * p.step + offset;
          throw new ParameterError(
            key,
            `must be a multiple of ${p.step}${offset ? ` (offset ${offset})` : ""}, got ${n}`,
            `nearest allowed: ${lower} or ${lower + p.step}`,
          );
        }
      }
      return n;
    }
    case "FLOAT": {
      const n = Number(text);
      if (text === "" || !Number.isFinite(n)) {
        throw new ParameterError(
          key,
          `must be a number${rangeText(p)}, got '${raw}'`,
          rangeHint(p),
        );
      }
      checkRange(key, p, n, raw);
      const grain = p.round !== undefined ? p.round : p.step;
      if (p.typeKnown && grain && grain > 0) {
        const base = p.round !== undefined ? 0 : (p.min ?? 0);
        const k = (n - base) / grain;
        if (Math.abs(k - Math.round(k)) > 1e-6) {
          const lower = base + Math.floor(k) * grain;
          throw new ParameterError(
            key,
            `must be a multiple of ${grain}, got ${n}`,
            `nearest allowed: ${tidy(lower)} or ${tidy(lower + grain)}`,
          );
        }
      }
      return n;
    }
    case "BOOLEAN": {
      const t = text.toLowerCase();
      if (["true", "1", "yes", "on"].includes(t)) return true;
      if (["false", "0", "no", "off"].includes(t)) return false;
      throw new ParameterError(key, `must be true or false, got '${raw}'`);
    }
    case "COMBO": {
      const choices = p.choices ?? [];
      const exact = choices.find((c) => String(c) === raw);
      if (exact !== undefined) return exact;
      const loose = choices.filter((c) => String(c).toLowerCase() === text.toLowerCase());
      if (loose.length === 1) return loose[0];
      const near = choices.filter((c) => String(c).toLowerCase().includes(text.toLowerCase()));
      const shown = (near.length ? near : choices).slice(0, 12).map(String);
      const more = (near.length ? near : choices).length - shown.length;
      throw new ParameterError(
        key,
        `'${raw}' is not one of the ${choices.length} choices`,
        `${near.length ? "did you mean" : "choices"}: ${shown.join(", ")}${
          more > 0 ? ` (and ${more} more)` : ""
        }`,
      );
    }
    case "STRING":
      return raw;
    case "LIST":
    case "OBJECT":
    case "NULL": {
      try {
        const v = JSON.parse(raw);
        return Array.isArray(v) ? { __value__: v } : v;
      } catch {
        throw new ParameterError(key, `must be JSON (current value is a ${p.type.toLowerCase()})`);
      }
    }
    default:
      // A custom widget type: accept JSON when it parses, else the text.
      try {
        return JSON.parse(raw);
      } catch {
        return raw;
      }
  }
}

function randomInt(p: Parameter, random: () => number): number {
  const min = Math.max(p.min ?? 0, Number.MIN_SAFE_INTEGER);
  const max = Math.min(p.max ?? Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const step = p.step && p.step > 1 ? p.step : 1;
  const count = Math.floor((max - min) / step) + 1;
  return min + Math.floor(random() * count) * step;
}

function checkRange(key: string, p: Parameter, n: number, raw: string) {
  if ((p.min !== undefined && n < p.min) || (p.max !== undefined && n > p.max)) {
    const what = p.type === "INT" && p.typeKnown ? " an integer" : " a number";
    throw new ParameterError(key, `must be${what}${rangeText(p)}, got '${raw}'`, rangeHint(p));
  }
}

function rangeText(p: Parameter): string {
  if (p.min !== undefined && p.max !== undefined) {
    return ` from ${bound(p.min)} to ${bound(p.max)}`;
  }
  if (p.min !== undefined) return ` >= ${bound(p.min)}`;
  if (p.max !== undefined) return ` <= ${bound(p.max)}`;
  return "";
}

/** A range bound as the definition wrote it: seeds' 0xffffffffffffffff parses as 2^64. */
function bound(n: number): string {
  return n === 2 ** 64 ? "18446744073709551615" : String(n);
}

function rangeHint(p: Parameter): string | undefined {
  const parts = [
    p.default !== undefined ? `default ${p.default}` : "",
    p.step !== undefined ? `step ${p.step}` : "",
    p.type === "INT" ? "`random` picks one" : "",
  ].filter(Boolean);
  return parts.length ? parts.join(", ") : undefined;
}

function tidy(n: number): number {
  return Number(n.toPrecision(12));
}
