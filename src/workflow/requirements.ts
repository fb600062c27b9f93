/**
 * What a prompt needs of a backend before it can run there: its node classes and the model
 * files its loaders name. The scheduler compares this with each backend's `/object_info`.
 *
 * @module
 */
import type { PromptRequirements } from "../comfyui/requirements.ts";
import { type ApiPrompt, isApiLink } from "./types.ts";

/**
 * Loader inputs that always name a model file (core ComfyUI and common custom nodes).
 * Generic names such as `model_name` count only when the value looks like a weights file,
 * since some nodes use them for remote model ids.
 */
export const MODEL_INPUTS: ReadonlySet<string> = new Set([
  "ckpt_name",
  "unet_name",
  "vae_name",
  "lora_name",
  "clip_name",
  "clip_name1",
  "clip_name2",
  "clip_name3",
  "clip_name4",
  "control_net_name",
  "style_model_name",
  "gligen_name",
  "hypernetwork_name",
  "upscale_model_name",
  "ipadapter_file",
  "instantid_file",
  "pulid_file",
  "audio_encoder_name",
  "model_patch_name",
]);

// Extensions of model weights, for loader inputs not in MODEL_INPUTS.
const MODEL_FILE = /\.(safetensors|ckpt|pt|pth|bin|gguf|sft|onnx|pkl)$/i;

/**
 * Distinct node classes (sorted) and every model file the prompt loads: values of
 * {@linkcode MODEL_INPUTS}, plus any other `*_name` string input that names a weights file
 * (`.safetensors`, `.ckpt`, `.pth`, `.gguf`, ...).
 *
 * @example
 * ```ts
 * import type { ApiPrompt } from "./types.ts";
 * const prompt: ApiPrompt = JSON.parse(await Deno.readTextFile("prompt.json"));
 * promptRequirements(prompt);
 * // { classTypes: ["CheckpointLoaderSimple", "KSampler", ...],
 * //   models: [{ input: "ckpt_name", name: "v1-5-pruned-emaonly.safetensors", nodeId: "4" }] }
 * ```
 */
export function promptRequirements(prompt: ApiPrompt): PromptRequirements {
  const classTypes = new Set<string>();
  const models: PromptRequirements["models"] = [];
  for (const [nodeId, node] of Object.entries(prompt)) {
    classTypes.add(node.class_type);
    for (const [input, value] of Object.entries(node.inputs ?? {})) {
      if (typeof value !== "string" || value === "" || value === "None" || isApiLink(value)) {
        continue;
      }
      const known = MODEL_INPUTS.has(input);
      const looksLikeFile = /(_name|_file)$/.test(input) && MODEL_FILE.test(value);
      if (known || looksLikeFile) models.push({ input, name: value, nodeId });
    }
  }
  return { classTypes: [...classTypes].sort(), models };
}
