import { assertEquals, assertTrue } from "../helpers/assert.ts";
import { REAL_WORKFLOWS_DIR } from "../helpers/paths.ts";
import {
  comboChoices,
  isModelInput,
  modelsFromObjectInfo,
  nodeClassesFromObjectInfo,
} from "../../src/backends/capabilities.ts";
import type { BackendObjectInfo } from "../../src/backends/types.ts";

Deno.test("capabilities: models from a real /object_info, pooled per input, samplers excluded", async () => {
  const info = JSON.parse(
    await Deno.readTextFile(`${REAL_WORKFLOWS_DIR}/object_info.json`),
  ) as BackendObjectInfo;
  const models = modelsFromObjectInfo(info);
  // CheckpointLoaderSimple offers two files; CheckpointLoader's empty list adds nothing.
  assertEquals(models.ckpt_name, ["model1.safetensors", "model2.ckpt"]);
  assertEquals(models.vae_name, ["vae1.safetensors", "vae2.ckpt"]);
  assertTrue(models.config_name.includes("v1-inference.yaml"));
  // Loaders with no model installed still declare the input (empty list).
  for (const input of ["lora_name", "unet_name", "clip_name", "control_net_name", "model_name"]) {
    assertEquals(models[input], [], input);
  }
  assertEquals(models.sampler_name, undefined);
  // LoadImage's `image` COMBO is an input file, not a model.
  assertEquals(models.image, undefined);
  const classes = nodeClassesFromObjectInfo(info);
  assertEquals(classes.length, Object.keys(info).length);
  assertTrue(classes.includes("KSampler"));
});

Deno.test("capabilities: both COMBO forms are read; non-file choices are not models", () => {
  assertEquals(comboChoices([["a.safetensors", "b.pt"], {}]), ["a.safetensors", "b.pt"]);
  assertEquals(comboChoices(["COMBO", { options: ["x.gguf"] }]), ["x.gguf"]);
  assertEquals(comboChoices(["INT", { min: 0 }]), undefined);
  assertTrue(isModelInput("unet_name", ["COMBO", { options: ["flux/dev.gguf"] }]));
  assertTrue(isModelInput("ipadapter_file", [["ip-adapter_sd15.safetensors"]]));
  assertTrue(!isModelInput("weight_dtype_name", [["default", "fp8_e4m3fn"]]));
  assertTrue(!isModelInput("scheduler_name", [["normal"]]));
  assertTrue(!isModelInput("ckpt", [["a.safetensors"]]));
  const models = modelsFromObjectInfo({
    A: { input: { required: { lora_name: [["b.safetensors", "a.safetensors"]] } } },
    B: { input: { optional: { lora_name: ["COMBO", { options: ["a.safetensors", "c.pt"] }] } } },
  });
  assertEquals(models, { lora_name: ["a.safetensors", "b.safetensors", "c.pt"] });
});
