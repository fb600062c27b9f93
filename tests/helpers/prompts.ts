/**
 * ComfyUI's default txt2img graph as an API prompt (what the frontend queues), for tests and
 * benchmarks that need a real prompt the fake ComfyUI validates and runs.
 *
 * @module
 */
import type { ApiPrompt } from "../../src/workflow/types.ts";

/** ComfyUI's default txt2img graph in API format, with a checkpoint the fake has. */
export function txt2img(
  opts: { text?: string; seed?: number; ckpt?: string; prefix?: string } = {},
): ApiPrompt {
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
