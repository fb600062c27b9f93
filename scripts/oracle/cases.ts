/**
 * Hand-made workflows that ask the real frontend about one rule each, where the corpus does
 * not reach: text replacements, dynamic prompts, bypass and mute, reroutes and notes, schema
 * 1 links, out-of-list values, promoted subgraph widgets, renumbered subgraph ids and legacy
 * group nodes. They are built from the real workflows' default graph and group node, plus
 * small subgraphs, and reported apart from the corpus.
 *
 * @module
 */

type Json = Record<string, unknown>;
type Slot = { name: string; type: string; link: number | null; widget?: { name: string } };

function inp(name: string, type: string, link: number | null = null, widget?: string): Slot {
  return widget ? { name, type, link, widget: { name: widget } } : { name, type, link };
}

function clone<T>(x: T): T {
  return structuredClone(x);
}

function nodeOf(doc: Json, id: number): Json {
  return (doc.nodes as Json[]).find((n) => n.id === id)!;
}

/** Variations of the frontend's default graph (ids 3 KSampler, 4 loader, 5 latent, 6/7 text, 8 decode, 9 save). */
function defaultGraphCases(base: Json): [string, Json][] {
  const out: [string, Json][] = [];
  const add = (name: string, change: (d: Json) => void) => {
    const d = clone(base);
    change(d);
    out.push([name, d]);
  };
  const replacements = "%date:yyyy-MM-dd hh:mm:ss%/%date:yy-M-d h:m:s%_%KSampler.steps%_" +
    "%Empty Latent Image.width%_%EmptyLatentImage.height%_%SaveImage.filename_prefix%_%width%_" +
    "%nope.x%_%KSampler.nope%";
  add("text replacements", (d) => {
    nodeOf(d, 9).widgets_values = [replacements];
  });
  add("text replacements without S&R names", (d) => {
    nodeOf(d, 9).widgets_values = [replacements];
    for (const n of d.nodes as Json[]) n.properties = {};
  });
  add("text replacements by S&R name and title", (d) => {
    Object.assign(nodeOf(d, 3), {
      title: "My Sampler",
      properties: { "Node name for S&R": "Samp" },
    });
    nodeOf(d, 9).widgets_values = ["%Samp.seed%_%My Sampler.cfg%_%KSampler.steps%"];
  });
  add("dynamic prompts", (d) => {
    nodeOf(d, 6).widgets_values = [
      "a {red|green|blue} car // comment\n/* block */ {big|{small|tiny}} \\{x\\} {a|b|c|d}",
    ];
    nodeOf(d, 7).widgets_values = ["{only}|{}|x{|}y"];
  });
  add("bypassed sampler passes its latent", (d) => void (nodeOf(d, 3).mode = 4));
  add("bypassed decode has no IMAGE input", (d) => void (nodeOf(d, 8).mode = 4));
  add("bypassed text encoder has no CONDITIONING input", (d) => void (nodeOf(d, 6).mode = 4));
  add("muted latent", (d) => void (nodeOf(d, 5).mode = 2));
  add("muted loader", (d) => void (nodeOf(d, 4).mode = 2));
  add("bypass and mute together", (d) => {
    nodeOf(d, 3).mode = 4;
    nodeOf(d, 8).mode = 2;
  });
  add("muted node of an unknown class", (d) => {
    (d.nodes as Json[]).push({ id: 30, type: "NotARealNode", mode: 2, widgets_values: [1] });
  });
  add("reroute chain and notes", (d) => {
    const nodes = d.nodes as Json[];
    nodes.push(
      {
        id: 20,
        type: "Reroute",
        mode: 0,
        inputs: [inp("", "*", 3)],
        outputs: [{ name: "", type: "CLIP", links: [30] }],
        properties: {},
      },
      {
        id: 21,
        type: "Reroute",
        mode: 0,
        inputs: [inp("", "*", 30)],
        outputs: [{ name: "", type: "CLIP", links: [31] }],
        properties: {},
      },
      {
        id: 22,
        type: "Note",
        mode: 0,
        inputs: [],
        outputs: [],
        properties: {},
        widgets_values: ["hello"],
      },
      {
        id: 23,
        type: "MarkdownNote",
        mode: 0,
        inputs: [],
        outputs: [],
        properties: {},
        widgets_values: ["# hi"],
      },
    );
    const links = d.links as unknown[][];
    const l3 = links.find((l) => l[0] === 3)!;
    l3[3] = 20;
    l3[4] = 0;
    links.push([30, 20, 0, 21, 0, "CLIP"], [31, 21, 0, 6, 0, "CLIP"]);
    (nodeOf(d, 6).inputs as Slot[])[0].link = 31;
    Object.assign(d, { last_node_id: 23, last_link_id: 31 });
  });
  add("dangling reroute", (d) => {
    (d.nodes as Json[]).push({
      id: 42,
      type: "Reroute",
      mode: 0,
      inputs: [inp("", "*")],
      outputs: [{ name: "", type: "LATENT", links: [2] }],
      properties: {},
    });
    (d.links as unknown[][]).find((l) => l[0] === 2)![1] = 42;
  });
  add("short and long widget values, a title", (d) => {
    nodeOf(d, 3).widgets_values = [42, "randomize", 7];
    nodeOf(d, 5).widgets_values = [256, 256, 2, 99, 98];
    nodeOf(d, 7).title = "Negative";
  });
  add("values not in the combo lists", (d) => {
    nodeOf(d, 4).widgets_values = ["not-in-the-list.safetensors"];
    nodeOf(d, 3).widgets_values = [1, "fixed", 20, 8, "nonexistent_sampler", "normal", 1];
  });
  add("schema 1 object links", (d) => {
    d.version = 1;
    d.state = { lastNodeId: 9, lastLinkId: 9, lastGroupId: 0, lastRerouteId: 0 };
    d.links = (d.links as unknown[][]).map(([id, o, os, t, ts, type]) => ({
      id,
      origin_id: o,
      origin_slot: os,
      target_id: t,
      target_slot: ts,
      type,
    }));
    delete d.last_node_id;
    delete d.last_link_id;
  });
  add("primitive with widget replacement", (d) => {
    (d.nodes as Json[]).push({
      id: 40,
      type: "PrimitiveNode",
      mode: 0,
      inputs: [],
      outputs: [{
        name: "STRING",
        type: "STRING",
        links: [40],
        widget: { name: "filename_prefix" },
      }],
      properties: { "Run widget replace on values": true },
      widgets_values: ["%date:yyyy-MM-dd%/%KSampler.seed%_x"],
    });
    const save = nodeOf(d, 9);
    (save.inputs as Slot[]).push(inp("filename_prefix", "STRING", 40, "filename_prefix"));
    save.widgets_values = ["ignored"];
    (d.links as unknown[][]).push([40, 40, 0, 9, 1, "STRING"]);
  });
  add("unlinked primitive", (d) => {
    (d.nodes as Json[]).push({
      id: 41,
      type: "PrimitiveNode",
      mode: 0,
      inputs: [],
      outputs: [{ name: "connect to widget input", type: "*", links: [] }],
      properties: {},
      widgets_values: [],
    });
  });
  return out;
}

/** The fields every subgraph definition the frontend saves has. */
function subgraphShell(id: string, name: string): Json {
  return {
    id,
    version: 1,
    state: { lastGroupId: 0, lastNodeId: 5, lastLinkId: 2, lastRerouteId: 0 },
    revision: 0,
    config: {},
    name,
    inputNode: { id: -10, bounding: [0, 0, 120, 60] },
    outputNode: { id: -20, bounding: [500, 0, 120, 60] },
    inputs: [],
    outputs: [],
    widgets: [],
    nodes: [],
    groups: [],
    links: [],
    extra: {},
  };
}

/** A subgraph around one KSampler (id 3) whose seed, and optionally steps, are promoted. */
function samplerSubgraph(promoteSteps: boolean): Json {
  const inputs = [{ id: "in-seed", name: "seed", type: "INT", linkIds: [1] }];
  const links = [{
    id: 1,
    origin_id: -10,
    origin_slot: 0,
    target_id: 3,
    target_slot: 4,
    type: "INT",
  }];
  const kInputs = [
    inp("model", "MODEL"),
    inp("positive", "CONDITIONING"),
    inp("negative", "CONDITIONING"),
    inp("latent_image", "LATENT"),
    inp("seed", "INT", 1, "seed"),
  ];
  if (promoteSteps) {
    inputs.push({ id: "in-steps", name: "steps", type: "INT", linkIds: [2] });
    links.push({
      id: 2,
      origin_id: -10,
      origin_slot: 1,
      target_id: 3,
      target_slot: 5,
      type: "INT",
    });
    kInputs.push(inp("steps", "INT", 2, "steps"));
  }
  return {
    ...subgraphShell("44444444-0000-4000-8000-00000000000" + (promoteSteps ? "5" : "4"), "Sampler"),
    inputs,
    nodes: [{
      id: 3,
      type: "KSampler",
      mode: 0,
      inputs: kInputs,
      outputs: [{ name: "LATENT", type: "LATENT", links: [] }],
      properties: { "Node name for S&R": "KSampler" },
      widgets_values: [1, "randomize", 20, 8, "euler", "normal", 1],
    }],
    links,
  };
}

function instanceDoc(sg: Json, values: unknown[], proxyWidgets?: unknown[], mode = 0): Json {
  const promoted = (sg.inputs as Json[]).map((i) =>
    inp(String(i.name), "INT", null, String(i.name))
  );
  return {
    last_node_id: 5,
    last_link_id: 2,
    version: 0.4,
    nodes: [{
      id: 5,
      type: sg.id,
      mode,
      inputs: promoted,
      outputs: [],
      properties: proxyWidgets ? { proxyWidgets } : {},
      widgets_values: values,
    }],
    links: [],
    definitions: { subgraphs: [sg] },
  };
}

function subgraphCases(): [string, Json][] {
  const one = samplerSubgraph(false);
  const two = samplerSubgraph(true);
  const proxies = [["-1", "seed"], ["3", "control_after_generate"], ["3", "steps"]];
  const latent = (id: number, links: number[], w: number) => ({
    id,
    type: "EmptyLatentImage",
    mode: 0,
    outputs: [{ name: "LATENT", type: "LATENT", links }],
    widgets_values: [w, w, 1],
  });
  const def = (id: string, nodes: Json[], link: Json) => ({
    ...subgraphShell(id, id.slice(0, 1)),
    outputs: [{ id: `out-${id}`, name: "LATENT", type: "LATENT", linkIds: [link.id] }],
    nodes,
    links: [link],
  });
  const toOut = (id: number, origin: number) => ({
    id,
    origin_id: origin,
    origin_slot: 0,
    target_id: -20,
    target_slot: 0,
    type: "LATENT",
  });
  const B = "bbbbbbbb-0000-4000-8000-00000000000b";
  const A = "aaaaaaaa-0000-4000-8000-00000000000a";
  const b = def(B, [latent(3, [1], 64), latent(2, [], 32)], toOut(1, 3));
  const a: Json = def(A, [latent(2, [], 128), {
    id: 3,
    type: B,
    mode: 0,
    outputs: [{ name: "LATENT", type: "LATENT", links: [2] }],
  }], toOut(2, 3));
  a.definitions = { subgraphs: [b] };
  const nested = {
    last_node_id: 3,
    version: 0.4,
    nodes: [
      { id: 2, type: A, mode: 0, outputs: [{ name: "LATENT", type: "LATENT", links: [5] }] },
      {
        id: 3,
        type: "VAEDecode",
        mode: 0,
        inputs: [inp("samples", "LATENT", 5), inp("vae", "VAE")],
        outputs: [],
      },
    ],
    links: [[5, 2, 0, 3, 0, "LATENT"]],
    definitions: { subgraphs: [a] },
  };
  return [
    ["proxy widgets", instanceDoc(one, [777, "fixed", 12], proxies)],
    ["proxy widgets, fewer values", instanceDoc(one, [777, 12], proxies)],
    ["proxy widgets, more values", instanceDoc(one, [777, "fixed", 12, 99], proxies)],
    [
      "proxy widgets, missing inner node",
      instanceDoc(one, [777, 5, 12], [["-1", "seed"], ["9", "steps"], ["3", "cfg"]]),
    ],
    [
      "proxy widgets without the promoted input",
      instanceDoc(one, [5.5, 12, "karras"], [["3", "cfg"], ["3", "steps"], ["3", "scheduler"]]),
    ],
    ["proxy widgets, null value", instanceDoc(one, [null, 12], [["-1", "seed"], ["3", "steps"]])],
    ["muted instance", instanceDoc(one, [777, "fixed", 12], proxies, 2)],
    ["promoted input value", instanceDoc(one, [777])],
    ["promoted input without value", instanceDoc(one, [])],
    ["two promoted inputs", instanceDoc(two, [777, 12])],
    ["two promoted inputs, a control value between", instanceDoc(two, [777, "fixed", 12])],
    ["nested subgraphs with colliding ids", nested],
  ];
}

function groupNodeCases(base: Json): [string, Json][] {
  const withMode = (mode: number) => {
    const d = clone(base);
    (d.nodes as Json[])[0].mode = mode;
    return d;
  };
  const two = clone(base);
  (two.nodes as Json[]).push({ ...clone((two.nodes as Json[])[0]), id: 11 });
  two.last_node_id = 11;
  return [
    ["muted group node", withMode(2)],
    ["bypassed group node", withMode(4)],
    ["two group nodes", two],
  ];
}

/** The hand-made cases, named `case/<what it asks>`; those whose base file is absent are left out. */
export function handMadeCases(realDir: string): { name: string; doc: Json }[] {
  const read = (file: string): Json | undefined => {
    try {
      return JSON.parse(Deno.readTextFileSync(`${realDir}/${file}`));
    } catch {
      return undefined;
    }
  };
  const base = read("frontend_default.ui.json");
  const group = read("frontend_group_node_v1.3.3.ui.json");
  return [
    ...(base ? defaultGraphCases(base) : []),
    ...subgraphCases(),
    ...(group ? groupNodeCases(group) : []),
  ].map(([name, doc]) => ({ name: `case/${name}`, doc }));
}
