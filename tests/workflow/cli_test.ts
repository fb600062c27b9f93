/**
 * `gov workflow convert|params|patch` end to end, through scripts/gov: exit codes, stdout
 * JSON, `-o` files, error messages, and `--backend` against a real (fake) ComfyUI.
 */
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { gov } from "../helpers/gov.ts";
import { REAL_WORKFLOWS_DIR } from "../helpers/paths.ts";
import { startFakeComfyUI } from "../helpers/fake_comfyui.ts";
import { freePort } from "../helpers/net.ts";
import { exists } from "../../src/fs/atomic.ts";

const R = REAL_WORKFLOWS_DIR;
const OI = `${R}/object_info.json`;
const DEFAULT_UI = `${R}/frontend_default.ui.json`;
const EXAMPLE_API = `${R}/comfyui_basic_api_example_default_graph.api.json`;
const T = { timeoutMs: 120_000 };

async function withTemp(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "gov-wf-cli-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("convert: UI workflow to prompt on stdout, machine-clean", async () => {
  const r = await gov(["workflow", "convert", DEFAULT_UI, "--object-info", OI], T);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stderr, "");
  const prompt = JSON.parse(r.stdout);
  assertEquals(Object.keys(prompt).sort(), ["3", "4", "5", "6", "7", "8", "9"]);
  assertEquals(prompt["3"].inputs.seed, 156680208700286);
  assertEquals(prompt["9"].inputs, { filename_prefix: "ComfyUI", images: ["8", 0] });
});

Deno.test("convert -o writes the file atomically; --request wraps the POST /prompt body", async () => {
  await withTemp(async (dir) => {
    const out = `${dir}/sub/prompt.json`;
    const r = await gov(["workflow", "convert", DEFAULT_UI, "--object-info", OI, "-o", out], T);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /^wrote 7 nodes to .*prompt\.json\n$/);
    const prompt = JSON.parse(await Deno.readTextFile(out));
    assertEquals(prompt["4"].inputs.ckpt_name, "v1-5-pruned-emaonly-fp16.safetensors");
    const leftovers = [...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name);
    assertEquals(leftovers, ["prompt.json"]);

    const req = await gov(["workflow", "convert", DEFAULT_UI, "--object-info", OI, "--request"], T);
    assertEquals(req.code, 0, req.stderr);
    const body = JSON.parse(req.stdout);
    assertEquals(body.prompt, prompt);
    assertEquals(body.extra_data.extra_pnginfo.workflow.nodes.length, 7);
  });
});

Deno.test("convert: unknown node classes are one exit-2 error and nothing is written", async () => {
  await withTemp(async (dir) => {
    const out = `${dir}/p.json`;
    const wf = `${R}/distributed_upscale.ui.json`;
    const r = await gov(["workflow", "convert", wf, "--object-info", OI, "-o", out], T);
    assertEquals(r.code, 2);
    assertEquals(r.stdout, "");
    assertMatch(
      r.stderr,
      /^error: workflow uses 3 node classes the node definitions do not know: ImageResize\+ \(node 34\); SetUnionControlNetType \(node 52\); UltimateSDUpscaleDistributed \(node 30\)\n {2}.*--allow-unknown/,
    );
    assertTrue(!(await exists(out)));
    const loose = await gov(["workflow", "convert", wf, "--object-info", OI, "--allow-unknown"], T);
    assertEquals(loose.code, 0, loose.stderr);
    assertMatch(loose.stderr, /warning: node 30 \(UltimateSDUpscaleDistributed\): class unknown/);
    assertEquals(JSON.parse(loose.stdout)["34"].inputs.image, ["135", 0]);
  });
});

Deno.test("convert: bad inputs are exit 2 with the fix", async () => {
  await withTemp(async (dir) => {
    await Deno.writeTextFile(`${dir}/broken.json`, "{ nope");
    await Deno.writeTextFile(`${dir}/list.json`, "[1, 2]");
    const cases: [string[], RegExp][] = [
      [["workflow", "convert", DEFAULT_UI], /needs node definitions\n {2}pass --object-info FILE/],
      [
        ["workflow", "convert", `${dir}/missing.json`, "--object-info", OI],
        /workflow file '.*missing\.json' not found/,
      ],
      [
        ["workflow", "convert", `${dir}/broken.json`, "--object-info", OI],
        /broken\.json: not valid JSON/,
      ],
      [["workflow", "convert", `${dir}/list.json`, "--object-info", OI], /not a ComfyUI workflow/],
      [
        ["workflow", "convert", DEFAULT_UI, "--object-info", `${dir}/nope.json`],
        /object info file '.*nope\.json' not found/,
      ],
      [["workflow", "convert", DEFAULT_UI, "--object-info", OI, "--backend", "b"], /not both/],
      [["workflow", "convert"], /missing <workflow\.json>/],
    ];
    for (const [args, re] of cases) {
      const r = await gov(args, T);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertMatch(r.stderr, re);
      assertEquals(r.stdout, "");
    }
  });
});

Deno.test("convert: an API prompt passes through unchanged without definitions", async () => {
  const r = await gov(["workflow", "convert", EXAMPLE_API], T);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout), JSON.parse(await Deno.readTextFile(EXAMPLE_API)));
});

Deno.test("convert --backend reads the backend's live /object_info", async () => {
  await withTemp(async (ws) => {
    const fake = await startFakeComfyUI({ env: { FAKE_COMFYUI_OBJECT_INFO: OI } });
    try {
      const dead = await freePort();
      await Deno.mkdir(`${ws}/.metadata`);
      await Deno.writeTextFile(
        `${ws}/backends.toml`,
        `[[backend]]\nid = "gpu1"\nhost = "127.0.0.1"\nport = ${fake.port}\n\n` +
          `[[backend]]\nid = "gone"\nhost = "127.0.0.1"\nport = ${dead}\n`,
      );
      const r = await gov(
        [
          "workflow",
          "convert",
          `${R}/frontend_load_image_widget.ui.json`,
          "--backend",
          "gpu1",
          "--workspace",
          ws,
        ],
        T,
      );
      assertEquals(r.code, 0, r.stderr);
      assertEquals(JSON.parse(r.stdout)["10"], {
        inputs: { image: "example.png" },
        class_type: "LoadImage",
        _meta: { title: "Load Image" },
      });
      const unknown = await gov([
        "workflow",
        "convert",
        DEFAULT_UI,
        "--backend",
        "nope",
        "--workspace",
        ws,
      ], T);
      assertEquals(unknown.code, 2);
      assertMatch(unknown.stderr, /backend 'nope' not found\n {2}known backends: gpu1, gone/);
      const down = await gov([
        "workflow",
        "convert",
        DEFAULT_UI,
        "--backend",
        "gone",
        "--workspace",
        ws,
      ], T);
      assertEquals(down.code, 1, down.stderr);
      assertMatch(down.stderr, /^error: .*gone/);
    } finally {
      await fake.stop();
    }
  });
});

Deno.test("params: table and --json; UI workflows need definitions", async () => {
  const text = await gov(["workflow", "params", DEFAULT_UI, "--object-info", OI], T);
  assertEquals(text.code, 0, text.stderr);
  assertMatch(text.stdout, /^3 {2}KSampler\n {2}3\.seed +INT +156680208700286/);
  assertMatch(text.stdout, /3\.sampler_name +COMBO +"euler" +\[euler, euler_ancestral/);
  assertMatch(text.stdout, /4 {2}Load Checkpoint {2}\(CheckpointLoaderSimple\)/);
  const json = await gov(["workflow", "params", EXAMPLE_API, "--json"], T);
  assertEquals(json.code, 0, json.stderr);
  const params = JSON.parse(json.stdout);
  assertEquals(params.length, 13);
  assertEquals(params[0].key, "3.cfg");
  const ui = await gov(["workflow", "params", DEFAULT_UI, "--json"], T);
  assertEquals(ui.code, 2);
  assertEquals(ui.stdout, "");
  assertMatch(ui.stderr, /is a UI workflow; its widget values need node definitions/);
});

Deno.test("patch: --set values land in the prompt, -o written; bad values exit 2 and write nothing", async () => {
  await withTemp(async (dir) => {
    const out = `${dir}/patched.json`;
    await Deno.writeTextFile(`${dir}/neg.txt`, "ugly,\nblurry");
    const r = await gov([
      "workflow",
      "patch",
      DEFAULT_UI,
      "--object-info",
      OI,
      "--set",
      "seed=99",
      "--set",
      "KSampler.steps=30",
      "--set",
      "6.text=a lighthouse at dawn",
      "--set-file",
      "7.text=neg.txt",
      "-o",
      out,
    ], { ...T, cwd: dir });
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /wrote 7 nodes to/);
    const p = JSON.parse(await Deno.readTextFile(out));
    assertEquals([p["3"].inputs.seed, p["3"].inputs.steps], [99, 30]);
    assertEquals([p["6"].inputs.text, p["7"].inputs.text], [
      "a lighthouse at dawn",
      "ugly,\nblurry",
    ]);

    const random = await gov(["workflow", "patch", EXAMPLE_API, "--set", "seed=random"], T);
    assertEquals(random.code, 0, random.stderr);
    assertTrue(Number.isInteger(JSON.parse(random.stdout)["3"].inputs.seed));

    const bad = await gov(
      [
        "workflow",
        "patch",
        DEFAULT_UI,
        "--object-info",
        OI,
        "--set",
        "steps=0",
        "-o",
        `${dir}/x.json`,
      ],
      T,
    );
    assertEquals(bad.code, 2);
    assertEquals(
      bad.stderr,
      "error: --set steps: must be an integer from 1 to 10000, got '0'\n  default 20, `random` picks one\n",
    );
    assertTrue(!(await exists(`${dir}/x.json`)));

    const amb = await gov(["workflow", "patch", EXAMPLE_API, "--set", "text=x"], T);
    assertEquals(amb.code, 2);
    assertMatch(
      amb.stderr,
      /ambiguous: 2 nodes have an input 'text'\n {2}name one: 6\.text .*7\.text/,
    );

    const none = await gov(["workflow", "patch", EXAMPLE_API], T);
    assertEquals(none.code, 2);
    assertMatch(none.stderr, /nothing to set/);
  });
});

Deno.test("every workflow command has --help", async () => {
  for (const cmd of ["convert", "params", "patch"]) {
    const r = await gov(["workflow", cmd, "--help"], T);
    assertEquals(r.code, 0);
    assertMatch(r.stdout, new RegExp(`^Usage: gov workflow ${cmd} `));
  }
});

Deno.test("convert --virtual drops a frontend-only class the definitions do not know", async () => {
  await withTemp(async (dir) => {
    const wf = {
      nodes: [
        { id: 1, type: "SaveImage", mode: 0, inputs: [], outputs: [], widgets_values: ["x"] },
        { id: 2, type: "MyCanvasLabel", mode: 0, inputs: [], outputs: [], widgets_values: ["hi"] },
      ],
      links: [],
    };
    await Deno.writeTextFile(`${dir}/wf.json`, JSON.stringify(wf));
    const strict = await gov(["workflow", "convert", `${dir}/wf.json`, "--object-info", OI], T);
    assertEquals(strict.code, 2);
    assertMatch(strict.stderr, /MyCanvasLabel \(node 2\)/);
    const r = await gov(
      ["workflow", "convert", `${dir}/wf.json`, "--object-info", OI, "--virtual", "MyCanvasLabel"],
      T,
    );
    assertEquals(r.code, 0, r.stderr);
    assertEquals(Object.keys(JSON.parse(r.stdout)), ["1"]);
  });
});
