/**
 * Shared inputs of the workflow tests: the real workflows and object info in
 * `../shared/real-workflows`, and definitions of the custom node classes those workflows
 * use, written from the custom nodes' own Python source so conversions can be checked
 * exactly.
 *
 * @module
 */
import { REAL_WORKFLOWS_DIR } from "../helpers/paths.ts";
import type { ObjectInfo } from "../../src/workflow/object_info.ts";

/** Reads one file of the real-workflows folder as JSON. */
export async function realWorkflow(name: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(`${REAL_WORKFLOWS_DIR}/${name}`));
}

/** Every workflow file in the folder (all but object_info.json). */
export async function realWorkflowFiles(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(REAL_WORKFLOWS_DIR)) {
    if (e.isFile && e.name.endsWith(".json") && e.name !== "object_info.json") names.push(e.name);
  }
  return names.sort();
}

/** A fresh copy of the real object_info.json (94 core classes). */
export async function realObjectInfo(): Promise<ObjectInfo> {
  return await realWorkflow("object_info.json") as ObjectInfo;
}

const SAMPLERS = [
  "euler",
  "euler_ancestral",
  "heun",
  "dpm_2",
  "dpm_2_ancestral",
  "lms",
  "dpm_fast",
  "dpm_adaptive",
  "dpmpp_2s_ancestral",
  "dpmpp_sde",
  "dpmpp_2m",
  "dpmpp_2m_sde",
  "ddim",
  "uni_pc",
];
const SCHEDULERS = ["normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform"];

/**
 * Definitions of the custom classes the real workflows use, as their Python INPUT_TYPES
 * declare them:
 * - UltimateSDUpscaleDistributed: robertvoy/ComfyUI-Distributed distributed_upscale.py at
 *   the workflow's commit 209fe538 (14 widget values incl. static_distribution).
 * - ImageResize+: cubiq/ComfyUI_essentials image.py (ImageResize).
 * - SetUnionControlNetType: ComfyUI comfy_extras/nodes_controlnet.py.
 * - ComfyUIDeployExternalText: BennyKok/comfyui-deploy comfy-nodes/external_text.py.
 * - DevToolsNodeWithComboControlWidget: the ComfyUI_devtools test node; its source is not
 *   public here, so the input name `combo_input` is assumed (the frontend test only fixes
 *   the three stored values: the choice, then control and filter).
 */
export const CUSTOM_DEFINITIONS: ObjectInfo = {
  UltimateSDUpscaleDistributed: {
    input: {
      required: {
        upscaled_image: ["IMAGE"],
        model: ["MODEL"],
        positive: ["CONDITIONING"],
        negative: ["CONDITIONING"],
        vae: ["VAE"],
        seed: ["INT", { default: 0, min: 0, max: 2 ** 64 }],
        steps: ["INT", { default: 20, min: 1, max: 10000 }],
        cfg: ["FLOAT", { default: 8.0, min: 0.0, max: 100.0 }],
        sampler_name: [SAMPLERS],
        scheduler: [SCHEDULERS],
        denoise: ["FLOAT", { default: 0.5, min: 0.0, max: 1.0, step: 0.01 }],
        tile_width: ["INT", { default: 512, min: 64, max: 2048, step: 8 }],
        tile_height: ["INT", { default: 512, min: 64, max: 2048, step: 8 }],
        padding: ["INT", { default: 32, min: 0, max: 256, step: 8 }],
        mask_blur: ["INT", { default: 8, min: 0, max: 256 }],
        force_uniform_tiles: ["BOOLEAN", { default: true }],
        tiled_decode: ["BOOLEAN", { default: false }],
        static_distribution: ["BOOLEAN", { default: false }],
      },
      hidden: { multi_job_id: ["STRING", { default: "" }] },
    },
    output: ["IMAGE"],
    output_name: ["IMAGE"],
    name: "UltimateSDUpscaleDistributed",
    display_name: "Ultimate SD Upscale Distributed (No Upscale)",
    category: "image/upscaling",
  },
  "ImageResize+": {
    input: {
      required: {
        image: ["IMAGE"],
        width: ["INT", { default: 512, min: 0, max: 16384, step: 1 }],
        height: ["INT", { default: 512, min: 0, max: 16384, step: 1 }],
        interpolation: [["nearest", "bilinear", "bicubic", "area", "nearest-exact", "lanczos"]],
        method: [["stretch", "keep proportion", "fill / crop", "pad"]],
        condition: [[
          "always",
          "downscale if bigger",
          "upscale if smaller",
          "if bigger area",
          "if smaller area",
        ]],
        multiple_of: ["INT", { default: 0, min: 0, max: 512, step: 1 }],
      },
    },
    output: ["IMAGE", "INT", "INT"],
    output_name: ["IMAGE", "width", "height"],
    name: "ImageResize+",
    display_name: "🔧 Image Resize",
    category: "essentials/image manipulation",
  },
  SetUnionControlNetType: {
    input: {
      required: {
        control_net: ["CONTROL_NET"],
        type: [[
          "auto",
          "openpose",
          "depth",
          "hed/pidi/scribble/ted",
          "canny/lineart/anime_lineart/mlsd",
          "normal",
          "segment",
          "tile",
          "repaint",
        ]],
      },
    },
    output: ["CONTROL_NET"],
    output_name: ["CONTROL_NET"],
    name: "SetUnionControlNetType",
    display_name: "SetUnionControlNetType",
    category: "conditioning/controlnet",
  },
  ComfyUIDeployExternalText: {
    input: {
      required: { input_id: ["STRING", { multiline: false, default: "input_text" }] },
      optional: {
        default_value: ["STRING", { multiline: true, default: "" }],
        display_name: ["STRING", { multiline: false, default: "" }],
        description: ["STRING", { multiline: true, default: "" }],
      },
    },
    output: ["STRING"],
    output_name: ["text"],
    name: "ComfyUIDeployExternalText",
    display_name: "External Text (ComfyUI Deploy)",
    category: "🔗ComfyDeploy",
  },
  DevToolsNodeWithComboControlWidget: {
    input: {
      required: {
        combo_input: [["Option A", "Option B", "Option C"], { control_after_generate: true }],
      },
    },
    output: [],
    name: "DevToolsNodeWithComboControlWidget",
    display_name: "Node With Combo Control Widget",
    category: "DevTools",
  },
};

/** The real object info plus {@linkcode CUSTOM_DEFINITIONS}. */
export async function extendedObjectInfo(): Promise<ObjectInfo> {
  return { ...await realObjectInfo(), ...structuredClone(CUSTOM_DEFINITIONS) };
}
