/**
 * What a backend can run, read from its `/object_info`: the node classes it has, and the
 * model files its loader nodes offer (the choices of their `*_name` and `*_file` COMBO inputs,
 * such as `ckpt_name`, `lora_name`, `vae_name`, `control_net_name`, `upscale_model_name`,
 * `ipadapter_file`): the same inputs the workflow layer's `promptRequirements` asks for.
 *
 * @module
 */
import type { BackendObjectInfo } from "./types.ts";

// `*_name` inputs that are not files: their choices are algorithm names.
const NOT_MODEL_INPUTS = new Set(["sampler_name", "scheduler_name", "scheduler"]);

// A model choice is a file: it has an extension (`x.safetensors`, `v1-inference.yaml`,
// `sub/dir/x.pt`). COMBOs of bare words are settings, not models.
const FILE_LIKE = /\.[A-Za-z0-9_-]{1,16}$/;

/**
 * The choices of a COMBO input spec, in either of ComfyUI's forms: `[["a", "b"], {...}]` or
 * `["COMBO", {options: ["a", "b"]}]`; undefined for any other spec.
 *
 * @example
 * ```ts
 * import { comboChoices } from "@/backends/capabilities.ts";
 *
 * comboChoices([["a.safetensors"], {}]); // ["a.safetensors"]
 * comboChoices(["INT", { min: 0 }]); // undefined
 * ```
 */
export function comboChoices(spec: unknown): string[] | undefined {
  if (!Array.isArray(spec) || spec.length === 0) return undefined;
  const head = spec[0];
  if (Array.isArray(head)) return head.filter((x) => typeof x === "string");
  if (head === "COMBO") {
    const opts = (spec[1] as { options?: unknown } | undefined)?.options;
    return Array.isArray(opts) ? opts.filter((x) => typeof x === "string") : [];
  }
  return undefined;
}

/**
 * Whether an input of a node class holds a model file name: its name ends in `_name` or
 * `_file`, it is not a sampler or scheduler, and it is a COMBO whose choices look like file names (an
 * empty list counts: ComfyUI shows one when no such model is installed).
 *
 * @example
 * ```ts
 * import { isModelInput } from "@/backends/capabilities.ts";
 *
 * isModelInput("ckpt_name", [["v1-5.safetensors"]]); // true
 * isModelInput("sampler_name", [["euler"]]); // false
 * ```
 */
export function isModelInput(name: string, spec: unknown): boolean {
  if (!(name.endsWith("_name") || name.endsWith("_file")) || NOT_MODEL_INPUTS.has(name)) {
    return false;
  }
  const choices = comboChoices(spec);
  if (choices === undefined) return false;
  return choices.every((c) => FILE_LIKE.test(c));
}

/**
 * Model names by input name, merged over every node class (two loaders with `ckpt_name`
 * pool their lists), each list sorted and without duplicates.
 *
 * @example
 * ```ts
 * import { modelsFromObjectInfo } from "@/backends/capabilities.ts";
 * import { type ComfyUIClient } from "@/backends/comfyui/mod.ts";
 * declare const client: ComfyUIClient;
 *
 * const models = modelsFromObjectInfo(await client.objectInfo());
 * console.log(models.ckpt_name);
 * ```
 */
export function modelsFromObjectInfo(info: BackendObjectInfo): Record<string, string[]> {
  const pools = new Map<string, Set<string>>();
  for (const def of Object.values(info)) {
    const sections = [def?.input?.required, def?.input?.optional];
    for (const section of sections) {
      if (typeof section !== "object" || section === null) continue;
      for (const [name, spec] of Object.entries(section)) {
        if (!isModelInput(name, spec)) continue;
        const pool = pools.get(name) ?? new Set<string>();
        for (const c of comboChoices(spec) ?? []) pool.add(c);
        pools.set(name, pool);
      }
    }
  }
  const out: Record<string, string[]> = {};
  for (const name of [...pools.keys()].sort()) out[name] = [...pools.get(name)!].sort();
  return out;
}

/**
 * The node class names of an `/object_info`, sorted.
 *
 * @example
 * ```ts
 * import { nodeClassesFromObjectInfo } from "@/backends/capabilities.ts";
 *
 * nodeClassesFromObjectInfo({ KSampler: {}, SaveImage: {} }); // ["KSampler", "SaveImage"]
 * ```
 */
export function nodeClassesFromObjectInfo(info: BackendObjectInfo): string[] {
  return Object.keys(info).sort();
}

/**
 * Compares model names the way ComfyUI's folders do across operating systems: a Windows
 * backend lists `SDXL\\x.safetensors` where a Linux one lists `SDXL/x.safetensors`.
 *
 * @example
 * ```ts
 * import { sameModelName } from "@/backends/capabilities.ts";
 *
 * sameModelName("SDXL\\x.safetensors", "SDXL/x.safetensors"); // true
 * ```
 */
export function sameModelName(a: string, b: string): boolean {
  return a.replaceAll("\\", "/") === b.replaceAll("\\", "/");
}
