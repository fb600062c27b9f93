/**
 * Conversion of every real workflow in ../shared/real-workflows, against the real
 * object_info.json, with expected prompts worked out by hand from the frontend's rules.
 */
import { assertEquals, assertThrows, assertTrue } from "../helpers/assert.ts";
import { isApiPrompt, toApiPrompt, workflowToPrompt } from "../../src/workflow/convert/mod.ts";
import { UnknownNodeError, WorkflowError } from "../../src/workflow/errors.ts";
import type { ApiPrompt } from "../../src/workflow/types.ts";
import { extendedObjectInfo, realObjectInfo, realWorkflow, realWorkflowFiles } from "./helpers.ts";

const PROMPT_TEXT = "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,";

function node(
  class_type: string,
  title: string,
  inputs: Record<string, unknown>,
): ApiPrompt[string] {
  return { inputs, class_type, _meta: { title } };
}

/** The frontend's default graph as the frontend queues it, with the given values. */
function defaultGraph(v: { seed: number; ckpt: string; prefix?: string }): ApiPrompt {
  return {
    "3": node("KSampler", "KSampler", {
      seed: v.seed,
      steps: 20,
      cfg: 8,
      sampler_name: "euler",
      scheduler: "normal",
      denoise: 1,
      model: ["4", 0],
      positive: ["6", 0],
      negative: ["7", 0],
      latent_image: ["5", 0],
    }),
    "4": node("CheckpointLoaderSimple", "Load Checkpoint", { ckpt_name: v.ckpt }),
    "5": node("EmptyLatentImage", "Empty Latent Image", { width: 512, height: 512, batch_size: 1 }),
    "6": node("CLIPTextEncode", "CLIP Text Encode (Prompt)", { text: PROMPT_TEXT, clip: ["4", 1] }),
    "7": node("CLIPTextEncode", "CLIP Text Encode (Prompt)", {
      text: "text, watermark",
      clip: ["4", 1],
    }),
    "8": node("VAEDecode", "VAE Decode", { samples: ["3", 0], vae: ["4", 2] }),
    "9": node("SaveImage", "Save Image", {
      filename_prefix: v.prefix ?? "ComfyUI",
      images: ["8", 0],
    }),
  };
}

Deno.test("every real workflow converts (UI) or passes through (API)", async () => {
  const info = await extendedObjectInfo();
  const files = await realWorkflowFiles();
  assertTrue(files.length >= 10, `expected the real workflows, found ${files.join(", ")}`);
  for (const file of files) {
    const doc = await realWorkflow(file);
    const prompt = toApiPrompt(doc, info);
    assertTrue(isApiPrompt(prompt), `${file} gave no prompt`);
    if (file.endsWith(".api.json")) assertTrue(prompt === doc, `${file} was not passed through`);
    for (const [id, n] of Object.entries(prompt)) {
      assertTrue(n.class_type in info, `${file}: node ${id} has unknown class ${n.class_type}`);
    }
  }
});

Deno.test("frontend_default: the API example's structure with its own values", async () => {
  const info = await realObjectInfo();
  const prompt = workflowToPrompt(await realWorkflow("frontend_default.ui.json"), info);
  // Seed keeps its value; the legacy `true` in the control slot is consumed, not emitted;
  // SaveImage has no widgets_values and gets the definition's default prefix.
  assertEquals(
    prompt,
    defaultGraph({ seed: 156680208700286, ckpt: "v1-5-pruned-emaonly-fp16.safetensors" }),
  );
  const example = await realWorkflow(
    "comfyui_basic_api_example_default_graph.api.json",
  ) as ApiPrompt;
  assertEquals(Object.keys(prompt).sort(), Object.keys(example).sort());
  for (const [id, n] of Object.entries(example)) {
    assertEquals(prompt[id].class_type, n.class_type);
    assertEquals(Object.keys(prompt[id].inputs).sort(), Object.keys(n.inputs).sort(), `node ${id}`);
    for (const [name, value] of Object.entries(n.inputs)) {
      if (Array.isArray(value)) assertEquals(prompt[id].inputs[name], value, `${id}.${name}`);
    }
  }
});

Deno.test("saladtech API prompt equals the default graph converted with its values", async () => {
  const salad = await realWorkflow("saladtech_sd15_txt2img.api.json");
  assertTrue(toApiPrompt(salad) === salad);
  assertEquals(salad, defaultGraph({ seed: 712610403220747, ckpt: "dreamshaper_8.safetensors" }));
});

Deno.test("frontend_load_image_widget: LoadImage keeps the image, drops the upload button", async () => {
  const prompt = workflowToPrompt(
    await realWorkflow("frontend_load_image_widget.ui.json"),
    await realObjectInfo(),
  );
  assertEquals(prompt, { "10": node("LoadImage", "Load Image", { image: "example.png" }) });
});

Deno.test("frontend_primitive_node: the PrimitiveNode's value lands in KSampler steps", async () => {
  const info = await realObjectInfo();
  const doc = await realWorkflow("frontend_primitive_node.ui.json");
  const expected = {
    "2": node("KSampler", "KSampler", {
      seed: 0,
      steps: 20,
      cfg: 8,
      sampler_name: "euler",
      scheduler: "normal",
      denoise: 1,
    }),
  };
  assertEquals(workflowToPrompt(doc, info), expected);
  // The file stores 20 in both places; change only the primitive to see who wins.
  const nodes = doc.nodes as { type: string; widgets_values: unknown[] }[];
  nodes.find((n) => n.type === "PrimitiveNode")!.widgets_values[0] = 33;
  assertEquals(workflowToPrompt(doc, info)["2"].inputs.steps, 33);
});

Deno.test("frontend_combo_control_widget: control and filter values stay out of the prompt", async () => {
  const doc = await realWorkflow("frontend_combo_control_widget.ui.json");
  const err = assertThrows(() => workflowToPrompt(doc, {}), UnknownNodeError) as UnknownNodeError;
  assertEquals(err.classTypes, ["DevToolsNodeWithComboControlWidget"]);
  assertEquals(workflowToPrompt(doc, await extendedObjectInfo()), {
    "1": node("DevToolsNodeWithComboControlWidget", "Node With Combo Control Widget", {
      combo_input: "Option A",
    }),
  });
});

Deno.test("frontend_group_node_v1.3.3: converted to a subgraph on load: inner nodes get fresh ids", async () => {
  const info = await realObjectInfo();
  const doc = await realWorkflow("frontend_group_node_v1.3.3.ui.json");
  // The frontend turns the group node (id 10, last_node_id 10) into a subgraph: its seven
  // inner nodes are pasted as 11..17 and the new instance is 18.
  const expected: ApiPrompt = {
    "18:11": node("EmptyLatentImage", "Empty Latent Image", {
      width: 512,
      height: 512,
      batch_size: 1,
    }),
    "18:12": node("CheckpointLoaderSimple", "Load Checkpoint", {
      ckpt_name: "v1-5-pruned-emaonly.ckpt",
    }),
    "18:13": node("CLIPTextEncode", "CLIP Text Encode (Prompt)", {
      text: PROMPT_TEXT,
      clip: ["18:12", 1],
    }),
    "18:14": node("CLIPTextEncode", "CLIP Text Encode (Prompt)", {
      text: "text, watermark",
      clip: ["18:12", 1],
    }),
    "18:15": node("KSampler", "KSampler", {
      seed: 156680208700286,
      steps: 20,
      cfg: 8,
      sampler_name: "euler",
      scheduler: "normal",
      denoise: 1,
      model: ["18:12", 0],
      positive: ["18:13", 0],
      negative: ["18:14", 0],
      latent_image: ["18:11", 0],
    }),
    "18:16": node("VAEDecode", "VAE Decode", { samples: ["18:15", 0], vae: ["18:12", 2] }),
    "18:17": node("SaveImage", "Save Image", { filename_prefix: "ComfyUI", images: ["18:16", 0] }),
  };
  assertEquals(workflowToPrompt(doc, info), expected);
  // The group node's own widgets_values (concatenated inner widgets) win over the copies
  // inside the definition: index 8 is KSampler steps (after seed and its control).
  const group = (doc.nodes as { widgets_values: unknown[] }[])[0];
  group.widgets_values[8] = 33;
  group.widgets_values[13] = "grouped";
  const prompt = workflowToPrompt(doc, info);
  assertEquals(prompt["18:15"].inputs.steps, 33);
  assertEquals(prompt["18:17"].inputs.filename_prefix, "grouped");
});

Deno.test("frontend_basic_subgraph: inner nodes get <instance>:<inner> ids", async () => {
  const prompt = workflowToPrompt(
    await realWorkflow("frontend_basic_subgraph.ui.json"),
    await realObjectInfo(),
  );
  // The instance's `positive` input is not connected outside, so the inner KSampler gets
  // no positive; VAEEncode's inputs are unconnected. Its id 2 is the instance's, so the
  // frontend renumbers it on load to last_node_id + 1 (3), as the frontend oracle showed.
  assertEquals(prompt, {
    "2:1": node("KSampler", "KSampler", {
      seed: 0,
      steps: 20,
      cfg: 8,
      sampler_name: "euler",
      scheduler: "simple",
      denoise: 1,
    }),
    "2:3": node("VAEEncode", "VAE Encode", {}),
  });
});

Deno.test("distributed_upscale: reroute chains resolved, bypassed upscale passed through, notes dropped", async () => {
  const doc = await realWorkflow("distributed_upscale.ui.json");
  const core = await realObjectInfo();
  const err = assertThrows(() => workflowToPrompt(doc, core), UnknownNodeError) as UnknownNodeError;
  assertEquals(err.classTypes, [
    "ImageResize+",
    "SetUnionControlNetType",
    "UltimateSDUpscaleDistributed",
  ]);
  assertEquals(err.exitCode, 2);
  const prompt = workflowToPrompt(doc, await extendedObjectInfo());
  assertEquals(prompt, {
    "5": node("CLIPTextEncode", "CLIP Text Encode (Prompt)", { text: PROMPT_TEXT, clip: ["7", 1] }),
    "6": node("CLIPTextEncode", "CLIP Text Encode (Prompt)", {
      text: "text, watermark",
      clip: ["7", 1],
    }),
    "7": node("CheckpointLoaderSimple", "Load Checkpoint", {
      ckpt_name: "SDXL\\juggernautXL_ragnarokBy.safetensors",
    }),
    "30": node("UltimateSDUpscaleDistributed", "Ultimate SD Upscale Distributed (No Upscale)", {
      seed: 269777990474642,
      steps: 20,
      cfg: 7,
      sampler_name: "dpmpp_2m_sde",
      scheduler: "karras",
      denoise: 0.6000000000000001,
      tile_width: 1024,
      tile_height: 1024,
      padding: 32,
      mask_blur: 16,
      force_uniform_tiles: true,
      tiled_decode: false,
      static_distribution: true,
      // 110 (Reroute) <- 34
      upscaled_image: ["34", 0],
      // 89 <- 88 <- 7 (two Reroutes)
      model: ["7", 0],
      positive: ["43", 0],
      negative: ["43", 1],
      // 107 <- 90 <- 86 <- 7 slot 2
      vae: ["7", 2],
    }),
    "34": node("ImageResize+", "🔧 Image Resize", {
      width: 2048,
      height: 2048,
      interpolation: "lanczos",
      method: "keep proportion",
      condition: "always",
      multiple_of: 8,
      // 123 ImageUpscaleWithModel is bypassed: its IMAGE output passes its IMAGE input
      // (slot 1, the first input of the consumer's type), which comes via Reroute 124.
      image: ["135", 0],
    }),
    "43": node("ControlNetApplyAdvanced", "Apply ControlNet (Advanced)", {
      strength: 1.0000000000000002,
      start_percent: 0,
      end_percent: 0.8000000000000002,
      positive: ["5", 0],
      negative: ["6", 0],
      control_net: ["52", 0],
      image: ["135", 0],
      vae: ["7", 2],
    }),
    "44": node("ControlNetLoader", "Load ControlNet Model", {
      control_net_name: "SDXL\\xinsir-controlnet-union-sdxl-1.0-promax.safetensors",
    }),
    "52": node("SetUnionControlNetType", "SetUnionControlNetType", {
      type: "tile",
      control_net: ["44", 0],
    }),
    "122": node("UpscaleModelLoader", "Load Upscale Model", { model_name: "4xNomos8kDAT.pth" }),
    "135": node("LoadImage", "Load Image", { image: "example.png" }),
    "136": node("PreviewImage", "Preview Image", { images: ["30", 0] }),
  });
});

Deno.test("comfydeploy: the virtual ComfyDeploy node is dropped, text comes from the external inputs", async () => {
  const doc = await realWorkflow("comfydeploy_sd15_external_inputs.ui.json");
  // Only the Python class is reported missing; ComfyDeploy is frontend-only.
  const core = await realObjectInfo();
  const err = assertThrows(() => workflowToPrompt(doc, core), UnknownNodeError) as UnknownNodeError;
  assertEquals(err.missing, [{ classType: "ComfyUIDeployExternalText", nodeIds: ["12", "13"] }]);
  const prompt = workflowToPrompt(doc, await extendedObjectInfo());
  const expected = defaultGraph({ seed: 156680208700286, ckpt: "v1-5-pruned-emaonly.ckpt" });
  expected["6"].inputs.text = ["12", 0];
  expected["7"].inputs.text = ["13", 0];
  expected["12"] = node("ComfyUIDeployExternalText", "External Text (ComfyUI Deploy)", {
    input_id: "positive_prompt",
    default_value: PROMPT_TEXT,
    display_name: "",
    description: "",
  });
  expected["13"] = node("ComfyUIDeployExternalText", "External Text (ComfyUI Deploy)", {
    input_id: "negative_prompt",
    default_value: "text, watermark",
    display_name: "",
    description: "",
  });
  assertEquals(prompt, expected);
  assertTrue(!("14" in prompt));
});

Deno.test("API prompts pass through unchanged; workflowToPrompt refuses them", async () => {
  const api = await realWorkflow("comfyui_basic_api_example_default_graph.api.json");
  const copy = structuredClone(api);
  assertTrue(toApiPrompt(api) === api);
  assertTrue(toApiPrompt(api, await realObjectInfo()) === api);
  assertEquals(api, copy);
  assertTrue(toApiPrompt({ prompt: api, client_id: "x" }) === api);
  assertThrows(() => workflowToPrompt(api, {}), WorkflowError, /already an API prompt/);
});
