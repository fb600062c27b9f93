/**
 * One small hand-made workflow per conversion rule of the ComfyUI frontend.
 */
import { assertEquals, assertMatch, assertThrows, assertTrue } from "../helpers/assert.ts";
import {
  isApiPrompt,
  isUiWorkflow,
  processDynamicPrompt,
  toApiPrompt,
  workflowToPrompt,
} from "../../src/workflow/convert/mod.ts";
import { UnknownNodeError, WorkflowError } from "../../src/workflow/errors.ts";
import { widgetLayout } from "../../src/workflow/object_info.ts";
import type { ObjectInfo } from "../../src/workflow/object_info.ts";
import type { ApiPrompt } from "../../src/workflow/types.ts";
import { realObjectInfo } from "./helpers.ts";

type Slot = { name: string; type: string; link?: number | null; widget?: { name: string } };

function inp(name: string, type: string, link: number | null = null, widget?: string): Slot {
  return widget ? { name, type, link, widget: { name: widget } } : { name, type, link };
}

function out(name: string, type: string, links: number[] = []) {
  return { name, type, links };
}

let nextId = 1;
function n(type: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: nextId++, type, mode: 0, inputs: [], outputs: [], ...fields };
}

function wf(nodes: unknown[], links: unknown[] = [], extra: Record<string, unknown> = {}) {
  return { last_node_id: 99, last_link_id: 99, nodes, links, groups: [], extra, version: 0.4 };
}

const SYNTHETIC: ObjectInfo = {
  Widgets: {
    input: {
      required: {
        image: [["a.png", "b.png"], { image_upload: true }],
        count: ["INT", { default: 3, min: 0, max: 10 }],
        forced: ["STRING", { forceInput: true }],
        noise_seed: ["INT", {}],
        value: ["INT", { control_after_generate: true }],
        mode: [["x", "y"], { control_after_generate: true }],
      },
      optional: {
        strength: ["FLOAT", { default: 1 }],
        flag: ["BOOLEAN", { default: true }],
        items: ["COMBO", { options: ["a", "b"], multi_select: true }],
      },
    },
    output: ["IMAGE"],
    display_name: "All The Widgets",
  },
  NoControlSeed: {
    input: {
      required: {
        seed: ["INT", { control_after_generate: false }],
        steps: ["INT", { default: 5 }],
      },
    },
    output: [],
  },
  Dyn: {
    input: { required: { text: ["STRING", { multiline: true, dynamicPrompts: true }] } },
    output: ["STRING"],
  },
  Pass: {
    input: { required: { mask: ["MASK"], image: ["IMAGE"] } },
    output: ["IMAGE"],
  },
};

const INFO: ObjectInfo = { ...await realObjectInfo(), ...SYNTHETIC };

Deno.test("widget layout: controls after seeds and flagged INTs, combo control+filter, upload before optionals", () => {
  const layout = widgetLayout(INFO.Widgets, "Widgets");
  assertEquals(layout.map((s) => `${s.name}:${s.kind}`), [
    "image:value",
    "count:value",
    "noise_seed:value",
    "control_after_generate:control",
    "value:value",
    "control_after_generate:control",
    "mode:value",
    "control_after_generate:control",
    "control_filter_list:filter",
    "upload:upload",
    "strength:value",
    "flag:value",
    "items:value",
  ]);
  const ks = widgetLayout(INFO.KSampler, "KSampler").map((s) => s.name);
  assertEquals(ks, [
    "seed",
    "control_after_generate",
    "steps",
    "cfg",
    "sampler_name",
    "scheduler",
    "denoise",
  ]);
});

Deno.test("positional widgets_values map through the layout; hidden values and forceInput skipped", () => {
  const node = n("Widgets", {
    widgets_values: ["b.png", 7, 42, "randomize", 5, true, "y", "fixed", "", "image", 0.25, false, [
      "a",
      "b",
    ]],
  });
  const prompt = workflowToPrompt(wf([node]), INFO);
  assertEquals(prompt[String(node.id)], {
    inputs: {
      image: "b.png",
      count: 7,
      noise_seed: 42,
      value: 5,
      mode: "y",
      strength: 0.25,
      flag: false,
      // Arrays are literal values, wrapped so the backend does not take them for links.
      items: { __value__: ["a", "b"] },
    },
    class_type: "Widgets",
    _meta: { title: "All The Widgets" },
  });
});

Deno.test("missing widget values take the definition's default; an explicit false control drops the seed slot", () => {
  const short = n("Widgets", { widgets_values: ["a.png", 1] });
  const noControl = n("NoControlSeed", { widgets_values: [7, 9] });
  const save = n("SaveImage");
  const prompt = workflowToPrompt(wf([short, noControl, save]), INFO);
  assertEquals(prompt[String(short.id)].inputs, {
    image: "a.png",
    count: 1,
    noise_seed: 0,
    value: 0,
    mode: "x",
    strength: 1,
    flag: true,
    // A multi-select combo starts with nothing selected.
    items: { __value__: [] },
  });
  assertEquals(prompt[String(noControl.id)].inputs, { seed: 7, steps: 9 });
  assertEquals(prompt[String(save.id)].inputs, { filename_prefix: "ComfyUI" });
});

Deno.test("object-form widgets_values are read by widget name", () => {
  const node = n("EmptyLatentImage", {
    widgets_values: { width: 640, height: 480, batch_size: 2 },
  });
  const prompt = workflowToPrompt(wf([node]), INFO);
  assertEquals(prompt[String(node.id)].inputs, { width: 640, height: 480, batch_size: 2 });
});

Deno.test("a linked input overrides the widget of the same name (converted widget)", () => {
  const src = n("Dyn", { outputs: [out("STRING", "STRING", [1])], widgets_values: ["from node"] });
  const clip = n("CLIPTextEncode", {
    inputs: [inp("clip", "CLIP"), inp("text", "STRING", 1, "text")],
    widgets_values: ["widget text"],
  });
  const prompt = workflowToPrompt(
    wf([src, clip], [[1, src.id, 0, clip.id, 1, "STRING"]]),
    INFO,
  );
  assertEquals(prompt[String(clip.id)].inputs, { text: [String(src.id), 0] });
});

Deno.test("muted nodes are not emitted and links to them are dropped; title is _meta.title", () => {
  const ckpt = n("CheckpointLoaderSimple", {
    mode: 2,
    outputs: [out("MODEL", "MODEL"), out("CLIP", "CLIP", [1])],
    widgets_values: ["m.safetensors"],
  });
  const clip = n("CLIPTextEncode", {
    title: "Positive",
    inputs: [inp("clip", "CLIP", 1)],
    widgets_values: ["a cat"],
  });
  const unknownMuted = n("NotInstalledAnywhere", { mode: 2 });
  const prompt = workflowToPrompt(
    wf([ckpt, clip, unknownMuted], [[1, ckpt.id, 1, clip.id, 0, "CLIP"]]),
    INFO,
  );
  assertEquals(prompt, {
    [String(clip.id)]: {
      inputs: { text: "a cat" },
      class_type: "CLIPTextEncode",
      _meta: { title: "Positive" },
    },
  });
});

Deno.test("bypassed nodes pass through: same slot when types fit, else the first input of the type", () => {
  const load = n("LoadImage", {
    outputs: [out("IMAGE", "IMAGE", [1, 4]), out("MASK", "MASK", [2])],
    widgets_values: ["a.png", "image"],
  });
  // Pass has inputs (mask MASK, image IMAGE): slot 0 does not fit IMAGE, so input 1 is used.
  const pass = n("Pass", {
    mode: 4,
    inputs: [inp("mask", "MASK", 2), inp("image", "IMAGE", 1)],
    outputs: [out("IMAGE", "IMAGE", [3])],
  });
  const invert = n("ImageInvert", {
    mode: 4,
    inputs: [inp("image", "IMAGE", 4)],
    outputs: [out("IMAGE", "IMAGE", [5])],
  });
  const save = n("SaveImage", { inputs: [inp("images", "IMAGE", 3)], widgets_values: ["a"] });
  const save2 = n("SaveImage", { inputs: [inp("images", "IMAGE", 5)], widgets_values: ["b"] });
  // A bypassed node with no input of the consumer's type: the link is dropped.
  const latent = n("EmptyLatentImage", { mode: 4, outputs: [out("LATENT", "LATENT", [6])] });
  const decode = n("VAEDecode", { inputs: [inp("samples", "LATENT", 6), inp("vae", "VAE")] });
  const warnings: string[] = [];
  const prompt = workflowToPrompt(
    wf([load, pass, invert, save, save2, latent, decode], [
      [1, load.id, 0, pass.id, 1, "IMAGE"],
      [2, load.id, 1, pass.id, 0, "MASK"],
      [3, pass.id, 0, save.id, 0, "IMAGE"],
      [4, load.id, 0, invert.id, 0, "IMAGE"],
      [5, invert.id, 0, save2.id, 0, "IMAGE"],
      [6, latent.id, 0, decode.id, 0, "LATENT"],
    ]),
    INFO,
    { onWarning: (m) => warnings.push(m) },
  );
  assertEquals(prompt[String(save.id)].inputs.images, [String(load.id), 0]);
  assertEquals(prompt[String(save2.id)].inputs.images, [String(load.id), 0]);
  assertEquals(prompt[String(decode.id)].inputs, {});
  assertTrue(!(String(pass.id) in prompt) && !(String(latent.id) in prompt));
  assertTrue(warnings.some((w) => w.includes("no input of type LATENT")), warnings.join("\n"));
});

Deno.test("Reroute chains, Notes and extension virtual nodes vanish; links pass through", () => {
  const ckpt = n("CheckpointLoaderSimple", {
    outputs: [out("MODEL", "MODEL"), out("CLIP", "CLIP", [1])],
    widgets_values: ["m.safetensors"],
  });
  const r1 = n("Reroute", { inputs: [inp("", "*", 1)], outputs: [out("", "CLIP", [2])] });
  const r2 = n("Reroute", { inputs: [inp("", "*", 2)], outputs: [out("", "CLIP", [3])] });
  const clip = n("CLIPTextEncode", { inputs: [inp("clip", "CLIP", 3)], widgets_values: ["x"] });
  const note = n("Note", { widgets_values: ["remember"] });
  const md = n("MarkdownNote", { widgets_values: ["# hi"] });
  const deploy = n("ComfyDeploy", { widgets_values: ["", "", "1"] });
  const custom = n("MyFrontendWidgetThing", { widgets_values: [1] });
  const prompt = workflowToPrompt(
    wf([ckpt, r1, r2, clip, note, md, deploy, custom], [
      [1, ckpt.id, 1, r1.id, 0, "*"],
      [2, r1.id, 0, r2.id, 0, "*"],
      [3, r2.id, 0, clip.id, 0, "CLIP"],
    ]),
    INFO,
    { virtualClasses: ["MyFrontendWidgetThing"] },
  );
  assertEquals(Object.keys(prompt).sort(), [String(ckpt.id), String(clip.id)].sort());
  assertEquals(prompt[String(clip.id)].inputs.clip, [String(ckpt.id), 1]);
});

Deno.test("KJNodes Set/Get: the Get node redirects to the Set node's input", () => {
  const ckpt = n("CheckpointLoaderSimple", {
    outputs: [out("MODEL", "MODEL"), out("CLIP", "CLIP", [1])],
    widgets_values: ["m.safetensors"],
  });
  const set = n("SetNode", {
    inputs: [inp("CLIP", "CLIP", 1)],
    outputs: [out("*", "*")],
    widgets_values: ["clip"],
  });
  const get = n("GetNode", { outputs: [out("CLIP", "CLIP", [2])], widgets_values: ["clip"] });
  const clip = n("CLIPTextEncode", { inputs: [inp("clip", "CLIP", 2)], widgets_values: ["x"] });
  const prompt = workflowToPrompt(
    wf([ckpt, set, get, clip], [[1, ckpt.id, 1, set.id, 0, "CLIP"], [
      2,
      get.id,
      0,
      clip.id,
      0,
      "CLIP",
    ]]),
    INFO,
  );
  assertEquals(prompt[String(clip.id)].inputs.clip, [String(ckpt.id), 1]);
});

Deno.test("PrimitiveNode writes its value into every widget it feeds; unlinked primitives vanish", () => {
  const prim = n("PrimitiveNode", {
    outputs: [{ name: "INT", type: "INT", links: [1, 2], widget: { name: "steps" } }],
    widgets_values: [42, "fixed"],
  });
  const lonely = n("PrimitiveNode", { outputs: [out("connect to widget input", "*")] });
  const ks = (id: number) =>
    n("KSampler", {
      inputs: [
        inp("model", "MODEL"),
        inp("positive", "CONDITIONING"),
        inp("negative", "CONDITIONING"),
        inp("latent_image", "LATENT"),
        inp("steps", "INT", id, "steps"),
      ],
      widgets_values: [1, "fixed", 20, 7, "euler", "normal", 1],
    });
  const a = ks(1);
  const b = ks(2);
  const prompt = workflowToPrompt(
    wf([prim, lonely, a, b], [[1, prim.id, 0, a.id, 4, "INT"], [2, prim.id, 0, b.id, 4, "INT"]]),
    INFO,
  );
  assertEquals(Object.keys(prompt).sort(), [String(a.id), String(b.id)].sort());
  assertEquals(prompt[String(a.id)].inputs.steps, 42);
  assertEquals(prompt[String(b.id)].inputs.steps, 42);
  assertEquals(prompt[String(a.id)].inputs.cfg, 7);
});

Deno.test("unknown classes: one error listing them all; --allow-unknown keeps them best effort", () => {
  const a = n("FancyUpscaler", {
    inputs: [inp("image", "IMAGE", 1)],
    outputs: [out("IMAGE", "IMAGE")],
    widgets_values: [2, "lanczos"],
  });
  const b = n("FancyUpscaler");
  const c = n("OtherPack.Node", { widgets_values: { strength: 0.5 } });
  const load = n("LoadImage", { outputs: [out("IMAGE", "IMAGE", [1])], widgets_values: ["a.png"] });
  const doc = wf([load, a, b, c], [[1, load.id, 0, a.id, 0, "IMAGE"]]);
  const err = assertThrows(() => workflowToPrompt(doc, INFO), UnknownNodeError) as UnknownNodeError;
  assertEquals(err.missing, [
    { classType: "FancyUpscaler", nodeIds: [String(a.id), String(b.id)] },
    { classType: "OtherPack.Node", nodeIds: [String(c.id)] },
  ]);
  assertEquals(err.exitCode, 2);
  assertMatch(err.message, /FancyUpscaler \(node \d+, \d+\); OtherPack\.Node/);
  const prompt = workflowToPrompt(doc, INFO, { allowUnknown: true });
  assertEquals(prompt[String(a.id)].inputs, {
    widget_0: 2,
    widget_1: "lanczos",
    image: [String(load.id), 0],
  });
  assertEquals(prompt[String(c.id)].inputs, { strength: 0.5 });
});

Deno.test("subgraphs: execution ids are paths, inputs come from outside or the promoted widget, nesting works", () => {
  const inner2 = {
    id: "22222222-0000-0000-0000-000000000002",
    name: "Zero",
    inputNode: { id: -10 },
    outputNode: { id: -20 },
    inputs: [{ name: "cond", type: "CONDITIONING", linkIds: [1] }],
    outputs: [{ name: "CONDITIONING", type: "CONDITIONING", linkIds: [2] }],
    nodes: [{
      id: 2,
      type: "ConditioningZeroOut",
      mode: 0,
      inputs: [inp("conditioning", "CONDITIONING", 1)],
      outputs: [out("CONDITIONING", "CONDITIONING", [2])],
    }],
    links: [
      { id: 1, origin_id: -10, origin_slot: 0, target_id: 2, target_slot: 0, type: "CONDITIONING" },
      { id: 2, origin_id: 2, origin_slot: 0, target_id: -20, target_slot: 0, type: "CONDITIONING" },
    ],
  };
  const inner1 = {
    id: "11111111-0000-0000-0000-000000000001",
    name: "Encode",
    inputNode: { id: -10 },
    outputNode: { id: -20 },
    inputs: [
      { name: "clip", type: "CLIP", linkIds: [11] },
      { name: "text", type: "STRING", linkIds: [12] },
    ],
    outputs: [{ name: "CONDITIONING", type: "CONDITIONING", linkIds: [14] }],
    nodes: [
      {
        id: 3,
        type: "CLIPTextEncode",
        mode: 0,
        inputs: [inp("clip", "CLIP", 11), inp("text", "STRING", 12, "text")],
        outputs: [out("CONDITIONING", "CONDITIONING", [13])],
        widgets_values: ["inner text"],
      },
      {
        id: 7,
        type: inner2.id,
        mode: 0,
        inputs: [inp("cond", "CONDITIONING", 13)],
        outputs: [out("CONDITIONING", "CONDITIONING", [14])],
      },
    ],
    links: [
      [11, -10, 0, 3, 0, "CLIP"],
      [12, -10, 1, 3, 1, "STRING"],
      [13, 3, 0, 7, 0, "CONDITIONING"],
      [14, 7, 0, -20, 0, "CONDITIONING"],
    ],
  };
  const doc = (instanceValues?: unknown[], mode = 0) => ({
    nodes: [
      {
        id: 1,
        type: "CheckpointLoaderSimple",
        mode: 0,
        outputs: [out("MODEL", "MODEL"), out("CLIP", "CLIP", [1]), out("VAE", "VAE")],
        widgets_values: ["m.safetensors"],
      },
      {
        id: 5,
        type: inner1.id,
        mode,
        inputs: [inp("clip", "CLIP", 1), inp("text", "STRING", null, "text")],
        outputs: [out("CONDITIONING", "CONDITIONING", [2, 3])],
        ...(instanceValues ? { widgets_values: instanceValues } : {}),
      },
      {
        id: 8,
        type: "ConditioningCombine",
        mode: 0,
        inputs: [
          inp("conditioning_1", "CONDITIONING", 2),
          inp("conditioning_2", "CONDITIONING", 3),
        ],
        outputs: [out("CONDITIONING", "CONDITIONING")],
      },
    ],
    links: [[1, 1, 1, 5, 0, "CLIP"], [2, 5, 0, 8, 0, "CONDITIONING"], [
      3,
      5,
      0,
      8,
      1,
      "CONDITIONING",
    ]],
    definitions: { subgraphs: [inner1, inner2] },
    version: 0.4,
  });
  const prompt = workflowToPrompt(doc(["a red fox"]), INFO);
  assertEquals(prompt, {
    "1": {
      inputs: { ckpt_name: "m.safetensors" },
      class_type: "CheckpointLoaderSimple",
      _meta: { title: "Load Checkpoint" },
    },
    "5:3": {
      inputs: { text: "a red fox", clip: ["1", 1] },
      class_type: "CLIPTextEncode",
      _meta: { title: "CLIP Text Encode (Prompt)" },
    },
    "5:7:2": {
      inputs: { conditioning: ["5:3", 0] },
      class_type: "ConditioningZeroOut",
      _meta: { title: "ConditioningZeroOut" },
    },
    "8": {
      inputs: { conditioning_1: ["5:7:2", 0], conditioning_2: ["5:7:2", 0] },
      class_type: "ConditioningCombine",
      _meta: { title: "Conditioning (Combine)" },
    },
  });
  // Without an instance value the promoted widget shows the inner widget's value.
  assertEquals(workflowToPrompt(doc(), INFO)["5:3"].inputs.text, "inner text");
  // A muted instance mutes everything inside; its consumers lose the input.
  const muted = workflowToPrompt(doc(["x"], 2), INFO);
  assertEquals(Object.keys(muted).sort(), ["1", "8"]);
  assertEquals(muted["8"].inputs, {});
});

Deno.test("legacy group node with an outside input and an output used outside", () => {
  const group = {
    nodes: [
      {
        id: -1,
        type: "ImageInvert",
        index: 0,
        inputs: [inp("image", "IMAGE")],
        outputs: [out("IMAGE", "IMAGE", [])],
      },
      {
        id: -1,
        type: "ImageScale",
        index: 1,
        inputs: [inp("image", "IMAGE")],
        outputs: [out("IMAGE", "IMAGE", [])],
        widgets_values: ["bilinear", 64, 64, "disabled"],
      },
    ],
    links: [[0, 0, 1, 0, 5, "IMAGE"]],
    external: [],
  };
  const load = n("LoadImage", {
    outputs: [out("IMAGE", "IMAGE", [1])],
    widgets_values: ["a.png", "image"],
  });
  const g = n("workflow>invert_scale", {
    inputs: [inp("image", "IMAGE", 1)],
    outputs: [out("IMAGE", "IMAGE", [2])],
    widgets_values: ["area", 128, 96, "center"],
  });
  const save = n("SaveImage", { inputs: [inp("images", "IMAGE", 2)], widgets_values: ["out"] });
  // Loaded, the group becomes a subgraph: inner nodes take the next ids after last_node_id
  // (99), 100 and 101, and the instance 102.
  const prompt = workflowToPrompt(
    wf([load, g, save], [[1, load.id, 0, g.id, 0, "IMAGE"], [2, g.id, 0, save.id, 0, "IMAGE"]], {
      groupNodes: { invert_scale: group },
    }),
    INFO,
  );
  assertEquals(prompt["102:100"].inputs, { image: [String(load.id), 0] });
  assertEquals(prompt["102:101"].inputs, {
    upscale_method: "area",
    width: 128,
    height: 96,
    crop: "center",
    image: ["102:100", 0],
  });
  assertEquals(prompt[String(save.id)].inputs, {
    filename_prefix: "out",
    images: ["102:101", 0],
  });
});

Deno.test("dynamic prompts pick one option and strip comments, like the frontend", () => {
  assertEquals(processDynamicPrompt("a {red|blue} car", () => 0), "a red car");
  assertEquals(processDynamicPrompt("a {red|blue} car", () => 0.99), "a blue car");
  assertEquals(processDynamicPrompt("{big {old|new}|small} house", () => 0.1), "big old house");
  assertEquals(processDynamicPrompt("keep \\{this\\} // gone", () => 0), "keep {this} ");
  assertEquals(processDynamicPrompt("x /* note */y", () => 0), "x y");
  const node = n("Dyn", { widgets_values: ["a {cat|dog}"] });
  const prompt = workflowToPrompt(wf([node]), INFO, { random: () => 0.7 });
  assertEquals(prompt[String(node.id)].inputs.text, "a dog");
  const kept = workflowToPrompt(wf([node]), INFO, { dynamicPrompts: false });
  assertEquals(kept[String(node.id)].inputs.text, "a {cat|dog}");
  // Inputs without the dynamicPrompts flag are never touched.
  const clip = n("CLIPTextEncode", { widgets_values: ["a {cat|dog} // x"] });
  assertEquals(workflowToPrompt(wf([clip]), INFO)[String(clip.id)].inputs.text, "a {cat|dog} // x");
});

Deno.test("save nodes expand %date:...% and %Node.widget% in filename_prefix", () => {
  const latent = n("EmptyLatentImage", { title: "Size", widgets_values: [768, 512, 1] });
  const save = n("SaveImage", {
    widgets_values: ["%date:yyyy-MM-dd%/%Size.width%_%EmptyLatentImage.height%_%nope.x%"],
  });
  const prompt = workflowToPrompt(wf([latent, save]), INFO, {
    now: () => new Date(2024, 0, 5, 9, 3, 7),
  });
  assertEquals(prompt[String(save.id)].inputs.filename_prefix, "2024-01-05/768_512_%nope.x%");
});

Deno.test("schema-1 object links, string ids and dangling links are handled", () => {
  const doc = {
    nodes: [
      {
        id: "a",
        type: "CheckpointLoaderSimple",
        outputs: [out("MODEL", "MODEL"), out("CLIP", "CLIP", [1])],
        widgets_values: ["m"],
      },
      { id: "b", type: "CLIPTextEncode", inputs: [inp("clip", "CLIP", 1)], widgets_values: ["t"] },
      { id: "c", type: "CLIPTextEncode", inputs: [inp("clip", "CLIP", 77)], widgets_values: ["u"] },
    ],
    links: [{
      id: 1,
      origin_id: "a",
      origin_slot: 1,
      target_id: "b",
      target_slot: 0,
      type: "CLIP",
    }],
    version: 1,
  };
  const warnings: string[] = [];
  const prompt = workflowToPrompt(doc, INFO, { onWarning: (m) => warnings.push(m) });
  assertEquals(prompt.b.inputs, { text: "t", clip: ["a", 1] });
  assertEquals(prompt.c.inputs, { text: "u" });
  assertTrue(warnings.some((w) => w.includes("missing link 77")));
});

Deno.test("circular reroutes and non-workflows are clear errors", () => {
  const r1 = n("Reroute", { inputs: [inp("", "*", 2)], outputs: [out("", "*", [1, 3])] });
  const r2 = n("Reroute", { inputs: [inp("", "*", 1)], outputs: [out("", "*", [2])] });
  const clip = n("CLIPTextEncode", { inputs: [inp("clip", "CLIP", 3)], widgets_values: ["x"] });
  const doc = wf([r1, r2, clip], [
    [1, r1.id, 0, r2.id, 0, "*"],
    [2, r2.id, 0, r1.id, 0, "*"],
    [3, r1.id, 0, clip.id, 0, "CLIP"],
  ]);
  assertThrows(() => workflowToPrompt(doc, INFO), WorkflowError, /circular/);
  assertThrows(() => toApiPrompt([1, 2], INFO), WorkflowError, /not a ComfyUI workflow/);
  assertThrows(() => toApiPrompt({ nodes: [] }), WorkflowError, /needs node definitions/);
  assertThrows(() => workflowToPrompt({ nodes: [{ id: 1 }] }, INFO), WorkflowError, /no type/);
  assertTrue(isUiWorkflow({ nodes: [] }) && !isApiPrompt({ nodes: [] }) && !isApiPrompt({}));
  const save = n("SaveImage", { widgets_values: ["wrapped"] });
  const wrapped = toApiPrompt({ workflow: wf([save]) }, INFO);
  assertEquals(wrapped[String(save.id)].inputs.filename_prefix, "wrapped");
});

Deno.test("subgraph instances: bypassed ones pass their input through; IO pass-through links", () => {
  const sg = {
    id: "33333333-0000-0000-0000-000000000003",
    name: "Invert",
    inputNode: { id: -10 },
    outputNode: { id: -20 },
    inputs: [{ name: "image", type: "IMAGE", linkIds: [1, 3] }],
    outputs: [
      { name: "IMAGE", type: "IMAGE", linkIds: [2] },
      { name: "original", type: "IMAGE", linkIds: [3] },
    ],
    nodes: [{
      id: 2,
      type: "ImageInvert",
      mode: 0,
      inputs: [inp("image", "IMAGE", 1)],
      outputs: [out("IMAGE", "IMAGE", [2])],
    }],
    links: [
      { id: 1, origin_id: -10, origin_slot: 0, target_id: 2, target_slot: 0, type: "IMAGE" },
      { id: 2, origin_id: 2, origin_slot: 0, target_id: -20, target_slot: 0, type: "IMAGE" },
      { id: 3, origin_id: -10, origin_slot: 0, target_id: -20, target_slot: 1, type: "IMAGE" },
    ],
  };
  const doc = (mode: number) => ({
    nodes: [
      {
        id: 1,
        type: "LoadImage",
        outputs: [out("IMAGE", "IMAGE", [1])],
        widgets_values: ["a.png"],
      },
      {
        id: 5,
        type: sg.id,
        mode,
        inputs: [inp("image", "IMAGE", 1)],
        outputs: [out("IMAGE", "IMAGE", [2]), out("original", "IMAGE", [3])],
      },
      { id: 8, type: "SaveImage", inputs: [inp("images", "IMAGE", 2)], widgets_values: ["inv"] },
      { id: 9, type: "SaveImage", inputs: [inp("images", "IMAGE", 3)], widgets_values: ["orig"] },
    ],
    links: [[1, 1, 0, 5, 0, "IMAGE"], [2, 5, 0, 8, 0, "IMAGE"], [3, 5, 1, 9, 0, "IMAGE"]],
    definitions: { subgraphs: [sg] },
  });
  const active = workflowToPrompt(doc(0), INFO);
  assertEquals(active["5:2"].inputs, { image: ["1", 0] });
  assertEquals(active["8"].inputs.images, ["5:2", 0]);
  assertEquals(active["9"].inputs.images, ["1", 0]);
  const bypassed = workflowToPrompt(doc(4), INFO);
  assertEquals(Object.keys(bypassed).sort(), ["1", "8", "9"]);
  assertEquals(bypassed["8"].inputs.images, ["1", 0]);
  assertEquals(bypassed["9"].inputs.images, ["1", 0]);
  assertThrows(
    () => workflowToPrompt({ ...doc(0), definitions: { subgraphs: [] } }, INFO),
    UnknownNodeError,
    /33333333-0000-0000-0000-000000000003 \(node 5\)/,
  );
});

Deno.test("subgraph proxyWidgets: values pair with entries by position, even when fewer", () => {
  const sg = {
    id: "44444444-0000-0000-0000-000000000004",
    name: "Sampler",
    inputNode: { id: -10 },
    outputNode: { id: -20 },
    inputs: [{ name: "seed", type: "INT", linkIds: [1] }],
    outputs: [],
    nodes: [{
      id: 3,
      type: "KSampler",
      mode: 0,
      inputs: [inp("seed", "INT", 1, "seed")],
      outputs: [out("LATENT", "LATENT")],
      widgets_values: [1, "randomize", 20, 8, "euler", "normal", 1],
    }],
    links: [{ id: 1, origin_id: -10, origin_slot: 0, target_id: 3, target_slot: 0, type: "INT" }],
  };
  const doc = (values: unknown[]) => ({
    nodes: [{
      id: 5,
      type: sg.id,
      inputs: [inp("seed", "INT", null, "seed")],
      outputs: [],
      properties: {
        proxyWidgets: [["-1", "seed"], ["3", "control_after_generate"], ["3", "steps"]],
      },
      widgets_values: values,
    }],
    links: [],
    definitions: { subgraphs: [sg] },
  });
  const prompt = workflowToPrompt(doc([777, "fixed", 12]), INFO);
  assertEquals(prompt["5:3"].inputs.seed, 777);
  assertEquals(prompt["5:3"].inputs.steps, 12);
  // Fewer values than entries: still paired by position, as the real frontend does; the
  // second value goes to the seed control (nowhere) and steps has none, so keeps its own.
  const warnings: string[] = [];
  const short = workflowToPrompt(doc([777, 12]), INFO, { onWarning: (m) => warnings.push(m) });
  assertEquals([short["5:3"].inputs.seed, short["5:3"].inputs.steps], [777, 20]);
  assertMatch(warnings.join("\n"), /3 promoted widgets but 2 values; paired by position/);
});

Deno.test("subgraph node ids already taken are renumbered on load, links and proxyWidgets follow", () => {
  // A definition's inner node 5 collides with the root instance 5: the frontend renumbers
  // it to last_node_id + 1, skipping ids in use; a second definition's 5 collides too.
  const sg = (id: string, name: string) => ({
    id,
    name,
    inputNode: { id: -10 },
    outputNode: { id: -20 },
    inputs: [],
    outputs: [{ name: "LATENT", type: "LATENT", linkIds: [1] }],
    nodes: [{
      id: 5,
      type: "EmptyLatentImage",
      mode: 0,
      inputs: [],
      outputs: [out("LATENT", "LATENT", [1])],
      widgets_values: [64, 64, 1],
    }],
    links: [{
      id: 1,
      origin_id: 5,
      origin_slot: 0,
      target_id: -20,
      target_slot: 0,
      type: "LATENT",
    }],
  });
  const a = sg("55555555-0000-0000-0000-00000000000a", "A");
  const b = sg("55555555-0000-0000-0000-00000000000b", "B");
  const instance = (id: number, type: string, link: number) => ({
    id,
    type,
    mode: 0,
    inputs: [],
    outputs: [out("LATENT", "LATENT", [link])],
    properties: { proxyWidgets: [["5", "width"]] },
    widgets_values: [128 * id],
  });
  const decode = (id: number, link: number) => ({
    id,
    type: "VAEDecode",
    mode: 0,
    inputs: [inp("samples", "LATENT", link), inp("vae", "VAE")],
    outputs: [out("IMAGE", "IMAGE")],
  });
  const doc = {
    version: 0.4,
    last_node_id: 7,
    nodes: [instance(5, a.id, 10), instance(8, b.id, 11), decode(6, 10), decode(9, 11)],
    links: [[10, 5, 0, 6, 0, "LATENT"], [11, 8, 0, 9, 0, "LATENT"]],
    definitions: { subgraphs: [a, b] },
  };
  const prompt = workflowToPrompt(doc, INFO);
  // A's 5 becomes 10 (8 and 9 are taken by root nodes); B's 5 still collides with the
  // root 5 and takes the next free id, 11.
  assertEquals(Object.keys(prompt).sort(), ["5:10", "6", "8:11", "9"]);
  assertEquals(prompt["6"].inputs.samples, ["5:10", 0]);
  assertEquals(prompt["5:10"].inputs.width, 640);
  assertEquals(prompt["8:11"].inputs.width, 1024);
  assertEquals(doc.definitions.subgraphs[0].nodes[0].id, 5, "the input document is not changed");
});

Deno.test("promoted subgraph inputs take widgets_values by position; proxyWidgets entries win", () => {
  // Inner KSampler 3 with seed and steps promoted through subgraph inputs.
  const sg = {
    id: "66666666-0000-0000-0000-000000000006",
    name: "Sampler",
    inputNode: { id: -10 },
    outputNode: { id: -20 },
    inputs: [
      { name: "seed", type: "INT", linkIds: [1] },
      { name: "steps", type: "INT", linkIds: [2] },
    ],
    outputs: [],
    nodes: [{
      id: 3,
      type: "KSampler",
      mode: 0,
      inputs: [inp("seed", "INT", 1, "seed"), inp("steps", "INT", 2, "steps")],
      outputs: [out("LATENT", "LATENT")],
      widgets_values: [1, "randomize", 20, 8, "euler", "normal", 1],
    }],
    links: [
      { id: 1, origin_id: -10, origin_slot: 0, target_id: 3, target_slot: 0, type: "INT" },
      { id: 2, origin_id: -10, origin_slot: 1, target_id: 3, target_slot: 1, type: "INT" },
    ],
  };
  const doc = (values: unknown[], proxyWidgets?: unknown[]) => ({
    nodes: [{
      id: 5,
      type: sg.id,
      inputs: [inp("seed", "INT", null, "seed"), inp("steps", "INT", null, "steps")],
      outputs: [],
      properties: proxyWidgets ? { proxyWidgets } : {},
      widgets_values: values,
    }],
    links: [],
    definitions: { subgraphs: [sg] },
  });
  const inputs = (p: ApiPrompt) => [p["5:3"].inputs.seed, p["5:3"].inputs.steps];
  assertEquals(inputs(workflowToPrompt(doc([777, 12]), INFO)), [777, 12]);
  // A value left for the seed's control is not skipped: the frontend reads it as steps.
  assertEquals(inputs(workflowToPrompt(doc([777, "fixed", 12]), INFO)), [777, "fixed"]);
  assertEquals(inputs(workflowToPrompt(doc([777]), INFO)), [777, 20]);
  // With proxyWidgets, an entry for the input wins; an input without one keeps its
  // positional value.
  assertEquals(inputs(workflowToPrompt(doc([5, 6], [["3", "cfg"], ["-1", "steps"]]), INFO)), [
    5,
    6,
  ]);
});

Deno.test("a muted or bypassed legacy group node still runs: its subgraph does not keep the mode", () => {
  const group = {
    nodes: [{
      id: -1,
      type: "EmptyLatentImage",
      index: 0,
      outputs: [out("LATENT", "LATENT", [])],
      widgets_values: [64, 64, 1],
    }],
    links: [],
    external: [],
  };
  for (const mode of [2, 4]) {
    const g = n("workflow>latent", { mode, outputs: [out("LATENT", "LATENT")] });
    const prompt = workflowToPrompt(wf([g], [], { groupNodes: { latent: group } }), INFO);
    assertEquals(
      Object.values(prompt).map((p) => p.class_type),
      ["EmptyLatentImage"],
      `mode ${mode}`,
    );
  }
});
