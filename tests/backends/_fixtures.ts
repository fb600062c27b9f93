/**
 * Prompts and small helpers shared by the backend tests.
 *
 * @module
 */
import type { PromptGraph } from "../../src/backends/client.ts";

/** ComfyUI's default txt2img graph in API format, with a checkpoint the fake has. */
export function txt2img(
  opts: { text?: string; seed?: number; ckpt?: string; prefix?: string } = {},
): PromptGraph {
  return {
    "3": {
      class_type: "KSampler",
      inputs: {
        cfg: 8,
        denoise: 1,
        latent_image: ["5", 0],
        model: ["4", 0],
        negative: ["7", 0],
        positive: ["6", 0],
        sampler_name: "euler",
        scheduler: "normal",
        seed: opts.seed ?? 8566257,
        steps: 20,
      },
    },
    "4": {
      class_type: "CheckpointLoaderSimple",
      inputs: { ckpt_name: opts.ckpt ?? "v1-5-pruned-emaonly.safetensors" },
    },
    "5": { class_type: "EmptyLatentImage", inputs: { batch_size: 1, height: 512, width: 512 } },
    "6": {
      class_type: "CLIPTextEncode",
      inputs: { clip: ["4", 1], text: opts.text ?? "masterpiece best quality girl" },
    },
    "7": { class_type: "CLIPTextEncode", inputs: { clip: ["4", 1], text: "bad hands" } },
    "8": { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
    "9": {
      class_type: "SaveImage",
      inputs: { filename_prefix: opts.prefix ?? "ComfyUI", images: ["8", 0] },
    },
  };
}

/** A fresh id, like the gateway gives each job. */
export function newId(): string {
  return crypto.randomUUID();
}

/** The 8-byte PNG signature. */
export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
