/**
 * Listing parameters, patching them with type checks, the requirements a prompt puts on a
 * backend, and the seed plan's roundtrip (UI workflow -> prompt -> params -> patch).
 */
import { assertEquals, assertMatch, assertThrows, assertTrue } from "../helpers/assert.ts";
import { toApiPrompt, workflowToPrompt } from "../../src/workflow/convert/mod.ts";
import { ParameterError } from "../../src/workflow/errors.ts";
import { listParameters } from "../../src/workflow/params.ts";
import { parseSet, patchPrompt, resolveKey } from "../../src/workflow/patch.ts";
import { promptRequirements } from "../../src/workflow/requirements.ts";
import { UsageError } from "../../src/errors.ts";
import type { ApiPrompt } from "../../src/workflow/types.ts";
import { extendedObjectInfo, realObjectInfo, realWorkflow } from "./helpers.ts";

const INFO = await realObjectInfo();
const EXAMPLE = await realWorkflow("comfyui_basic_api_example_default_graph.api.json") as ApiPrompt;
const DEFAULT_UI = await realWorkflow("frontend_default.ui.json");

Deno.test("params of a UI workflow: every literal input with type, range and choices", () => {
  const params = listParameters(workflowToPrompt(DEFAULT_UI, INFO), INFO);
  assertEquals(params.map((p) => p.key), [
    "3.seed",
    "3.steps",
    "3.cfg",
    "3.sampler_name",
    "3.scheduler",
    "3.denoise",
    "4.ckpt_name",
    "5.width",
    "5.height",
    "5.batch_size",
    "6.text",
    "7.text",
    "9.filename_prefix",
  ]);
  const by = Object.fromEntries(params.map((p) => [p.key, p]));
  assertEquals(by["3.steps"], {
    key: "3.steps",
    nodeId: "3",
    title: "KSampler",
    classType: "KSampler",
    input: "steps",
    type: "INT",
    typeKnown: true,
    value: 20,
    default: 20,
    min: 1,
    max: 10000,
  });
  assertEquals(by["3.cfg"].step, 0.5);
  assertEquals(by["3.cfg"].round, 0.01);
  assertEquals(by["3.sampler_name"].type, "COMBO");
  assertEquals(by["3.sampler_name"].choices?.length, 20);
  assertEquals(by["4.ckpt_name"].title, "Load Checkpoint");
  assertEquals(by["6.text"].multiline, true);
  assertEquals(by["9.filename_prefix"].default, "ComfyUI");
});

Deno.test("params of an API prompt without definitions: types guessed from values", () => {
  const params = listParameters(EXAMPLE);
  const by = Object.fromEntries(params.map((p) => [p.key, p]));
  assertEquals(params.length, 13);
  assertEquals([by["3.seed"].type, by["3.seed"].typeKnown], ["INT", false]);
  assertEquals(by["3.sampler_name"].type, "STRING");
  assertEquals(by["5.width"].value, 512);
  assertTrue(!("choices" in by["3.sampler_name"]));
  // Links are not parameters.
  assertTrue(!params.some((p) => p.input === "model" || p.input === "clip"));
  assertEquals(
    listParameters({ "1": { class_type: "X", inputs: { l: { __value__: [1, 2] } } } })[0],
    {
      key: "1.l",
      nodeId: "1",
      title: "X",
      classType: "X",
      input: "l",
      type: "LIST",
      typeKnown: false,
      value: [1, 2],
    },
  );
});

Deno.test("patch: keys by id, title, class and unique name; the input prompt is not changed", () => {
  const before = structuredClone(EXAMPLE);
  const out = patchPrompt(EXAMPLE, [
    ["3.steps", "30"],
    ["KSampler.cfg", "6.5"],
    ["Load Checkpoint.ckpt_name", "model2.ckpt"],
    ["width", "768"],
    ["7.text", "blurry, {a|b}"],
    ["3.sampler_name", "dpmpp_2m"],
  ], INFO);
  assertEquals(EXAMPLE, before);
  assertEquals(out["3"].inputs.steps, 30);
  assertEquals(out["3"].inputs.cfg, 6.5);
  assertEquals(out["4"].inputs.ckpt_name, "model2.ckpt");
  assertEquals(out["5"].inputs.width, 768);
  assertEquals(out["7"].inputs.text, "blurry, {a|b}");
  assertEquals(out["3"].inputs.sampler_name, "dpmpp_2m");
  assertEquals(resolveKey(EXAMPLE, "KSampler.seed"), { nodeId: "3", input: "seed" });
  assertEquals(resolveKey(EXAMPLE, "ksampler.seed"), { nodeId: "3", input: "seed" });
});

Deno.test("patch: seed=random draws from the input's range", () => {
  const out = patchPrompt(EXAMPLE, [["seed", "random"]], INFO, { random: () => 0.5 });
  assertEquals(out["3"].inputs.seed, Math.floor(0.5 * (Number.MAX_SAFE_INTEGER + 1)));
  const low = patchPrompt(EXAMPLE, [["batch_size", "random"]], INFO, { random: () => 0.999 });
  assertEquals(low["5"].inputs.batch_size, 64);
  const steps8 = patchPrompt(EXAMPLE, [["width", "random"]], INFO, { random: () => 0 });
  assertEquals(steps8["5"].inputs.width, 16);
});

Deno.test("patch: values are checked against range, step and choices with a one-line fix", () => {
  const bad: [string, string, RegExp, RegExp?][] = [
    ["steps", "0", /^set steps: must be an integer from 1 to 10000, got '0'/, /default 20/],
    ["steps", "2.5", /must be an integer/],
    ["steps", "many", /must be an integer/],
    ["cfg", "7.333", /must be a multiple of 0\.01, got 7\.333/, /7\.33 or 7\.34/],
    ["denoise", "1.5", /must be a number from 0 to 1/],
    ["width", "500", /must be a multiple of 8/, /nearest allowed: 496 or 504/],
    ["sampler_name", "eular", /'eular' is not one of the 20 choices/, /choices: euler,/],
    ["sampler_name", "dpmpp", /not one of/, /did you mean: dpmpp_2s_ancestral, dpmpp_sde/],
    ["seed", "99999999999999999999", /must be an integer from 0 to/],
    ["seed", "9007199254740993", /too large to pass exactly/],
  ];
  for (const [key, value, message, hint] of bad) {
    const err = assertThrows(
      () => patchPrompt(EXAMPLE, [[key, value]], INFO),
      ParameterError,
      message,
    );
    assertTrue(err instanceof UsageError && (err as UsageError).exitCode === 2);
    assertEquals((err as ParameterError).key, key);
    if (hint) assertMatch((err as ParameterError).hint ?? "", hint);
    assertTrue(!err.message.includes("\n"), `multi-line message: ${err.message}`);
  }
  assertEquals(
    patchPrompt(EXAMPLE, [["sampler_name", "EULER"]], INFO)["3"].inputs.sampler_name,
    "euler",
  );
});

Deno.test("patch: ambiguous, unknown and linked keys name the candidates", () => {
  const amb = assertThrows(
    () => patchPrompt(EXAMPLE, [["text", "x"]], INFO),
    ParameterError,
    /ambiguous: 2 nodes have an input 'text'/,
  );
  assertMatch((amb as ParameterError).hint!, /6\.text \(CLIP Text Encode \(Prompt\)\), 7\.text/);
  const title = assertThrows(
    () => patchPrompt(EXAMPLE, [["CLIPTextEncode.text", "x"]], INFO),
    ParameterError,
    /names 2 nodes/,
  );
  assertMatch((title as ParameterError).hint!, /use the node id: 6\.text, 7\.text/);
  assertThrows(
    () => patchPrompt(EXAMPLE, [["3.stepz", "1"]], INFO),
    ParameterError,
    /node 3 \(KSampler\) has no input 'stepz'/,
  );
  const none = assertThrows(
    () => patchPrompt(EXAMPLE, [["sampler", "x"]], INFO),
    ParameterError,
    /matches no node input/,
  );
  assertMatch((none as ParameterError).hint!, /did you mean: 3\.sampler_name/);
  assertThrows(
    () => patchPrompt(EXAMPLE, [["clip", "x"]], INFO),
    ParameterError,
    /linked from another node/,
  );
  assertThrows(() => parseSet("steps"), ParameterError, /expected KEY=VALUE/);
  assertEquals(parseSet("6.text=a=b"), ["6.text", "a=b"]);
});

Deno.test("patch without definitions: guessed types, numbers stay numbers", () => {
  const out = patchPrompt(EXAMPLE, [["cfg", "7.5"], ["seed", "5"], ["scheduler", "karras"]]);
  assertEquals(out["3"].inputs.cfg, 7.5);
  assertEquals(out["3"].inputs.seed, 5);
  assertEquals(out["3"].inputs.scheduler, "karras");
  assertThrows(
    () => patchPrompt(EXAMPLE, [["steps", "lots"]]),
    ParameterError,
    /must be an integer/,
  );
});

Deno.test("patch can set a widget input the prompt leaves out, and replace a link by a value", () => {
  const prompt: ApiPrompt = {
    "1": { class_type: "SaveImage", inputs: { images: ["2", 0] } },
    "2": { class_type: "CLIPTextEncode", inputs: { text: ["3", 0], clip: ["4", 1] } },
  };
  const out = patchPrompt(prompt, [["1.filename_prefix", "run"], ["2.text", "hello"]], INFO);
  assertEquals(out["1"].inputs, { images: ["2", 0], filename_prefix: "run" });
  assertEquals(out["2"].inputs.text, "hello");
  // A socket that only another node's output can feed (CLIP) takes no value.
  const err = assertThrows(
    () => patchPrompt(prompt, [["2.clip", "x"]], INFO),
    ParameterError,
  ) as ParameterError;
  assertEquals(
    err.message,
    "set 2.clip: input 'clip' of node 2 (CLIPTextEncode) takes a CLIP from another node, " +
      "not a value",
  );
  // Seeds' 0xffffffffffffffff bound is printed as written, not as 2^64 rounded.
  const seedErr = assertThrows(
    () => patchPrompt(EXAMPLE, [["seed", "-1"]], INFO),
    ParameterError,
  ) as ParameterError;
  assertMatch(seedErr.message, /from 0 to 18446744073709551615, got '-1'$/);
});

Deno.test("requirements: distinct classes and the model files loaders name", async () => {
  assertEquals(promptRequirements(EXAMPLE), {
    classTypes: [
      "CLIPTextEncode",
      "CheckpointLoaderSimple",
      "EmptyLatentImage",
      "KSampler",
      "SaveImage",
      "VAEDecode",
    ],
    models: [{ input: "ckpt_name", name: "v1-5-pruned-emaonly.safetensors", nodeId: "4" }],
  });
  const up = workflowToPrompt(
    await realWorkflow("distributed_upscale.ui.json"),
    await extendedObjectInfo(),
  );
  const req = promptRequirements(up);
  assertEquals(
    req.models.sort((a, b) => a.nodeId.localeCompare(b.nodeId)),
    [
      {
        input: "control_net_name",
        name: "SDXL\\xinsir-controlnet-union-sdxl-1.0-promax.safetensors",
        nodeId: "44",
      },
      { input: "ckpt_name", name: "SDXL\\juggernautXL_ragnarokBy.safetensors", nodeId: "7" },
      { input: "model_name", name: "4xNomos8kDAT.pth", nodeId: "122" },
    ].sort((a, b) => a.nodeId.localeCompare(b.nodeId)),
  );
  assertTrue(req.classTypes.includes("UltimateSDUpscaleDistributed"));
  assertTrue(!req.classTypes.includes("Reroute") && !req.classTypes.includes("Note"));
  // A remote model id in a generic input is not a file requirement; a LoRA always is.
  const misc = promptRequirements({
    "1": { class_type: "LLM", inputs: { model_name: "gpt-4o" } },
    "2": { class_type: "LoraLoader", inputs: { lora_name: "style", model: ["9", 0] } },
  });
  assertEquals(misc.models, [{ input: "lora_name", name: "style", nodeId: "2" }]);
});

Deno.test("roundtrip (seed plan task 2): UI workflow -> prompt -> params -> patch seed", () => {
  const workflow = {
    nodes: [{
      id: 1,
      type: "KSampler",
      widgets_values: [42, "fixed", 20, 8, "euler", "normal", 1],
    }],
    links: [],
  };
  const api = toApiPrompt(workflow, INFO);
  assertEquals(Object.keys(api), ["1"]);
  assertEquals(api["1"].inputs.seed, 42);
  const params = listParameters(api, INFO);
  assertEquals(params.find((p) => p.input === "seed")?.key, "1.seed");
  const updated = patchPrompt(api, [["seed", "99"]], INFO);
  assertEquals(updated["1"].inputs.seed, 99);
  assertEquals(api["1"].inputs.seed, 42);
});
