// A gov killed (SIGKILL, test-only GOV_FAULT) during a registry install or a snapshot import:
// the next command recovers, and importing again finishes the job. Each test works on its own
// copy of one template environment and talks to its own fake registry.
import { join } from "node:path";
import { startFakeRegistry } from "../../fixtures/registry/fake_registry.ts";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import {
  exists,
  git,
  govIn,
  govJson,
  initEnv,
  makeNodeRepo,
  prodFreeze,
  readJson,
  type Scratch,
  TemplateEnv,
} from "./helpers.ts";

const SIGKILL = 137;

async function listDir(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

const fx = { alpha: "", regSrc: "" };

const template = new TemplateEnv(async (scratch: Scratch) => {
  const repos = await scratch.dir("repos");
  fx.alpha = await makeNodeRepo(repos, "ComfyUI-Alpha", ["einops==0.7.0"]);
  fx.regSrc = join(repos, "reg-src");
  await Deno.mkdir(fx.regSrc);
  await Deno.writeTextFile(join(fx.regSrc, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
  await Deno.writeTextFile(join(fx.regSrc, "requirements.txt"), "sortedcontainers==2.3.0\n");
  return await initEnv(scratch);
});

/** Runs `fn` with a fake registry serving reg-node 1.0.0 (its env: GOV_REGISTRY_URL). */
async function withRegistry<T>(fn: (renv: Record<string, string>) => Promise<T>): Promise<T> {
  const reg = await startFakeRegistry({ "reg-node": { "1.0.0": { dir: fx.regSrc } } });
  try {
    return await fn({ GOV_REGISTRY_URL: reg.url });
  } finally {
    await reg.close();
  }
}

Deno.test("a registry install killed before its fetch leaves nothing", async () => {
  const env = await template.copy();
  const r = await withRegistry((renv) =>
    govIn(env, ["node", "add", "reg-node@1.0.0"], { ...renv, GOV_FAULT: "node-add:placed" })
  );
  assertEquals(r.code, SIGKILL, r.stderr);
  assertTrue(await exists(join(env, "state", "journal.json")));
  const list = await govIn(env, ["node", "list"]);
  assertEquals(list.code, 0, list.stderr);
  assertMatch(list.stderr, /undid interrupted `gov node add reg-node`/);
  assertEquals(await exists(join(env, "state", "journal.json")), false);
  assertEquals(await listDir(join(env, "ComfyUI", "custom_nodes")), []);
  assertEquals(
    (await listDir(join(env, "ComfyUI"))).filter((n) => n.startsWith(".gov")),
    [],
  );
});

Deno.test(
  "an import killed in its promotion is undone, and importing again ends it",
  async () => {
    const env = await template.copy();
    const file = join(await template.scratch.dir("files"), "s.json");
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        comfyui: null,
        git_custom_nodes: {
          [fx.alpha]: { hash: await git(["rev-parse", "HEAD"], fx.alpha), disabled: false },
        },
        cnr_custom_nodes: { "reg-node": "1.0.0" },
        file_custom_nodes: [],
        pips: {},
      }),
    );
    const r = await withRegistry((renv) =>
      govIn(env, ["snapshot", "import", file], { ...renv, GOV_FAULT: "promote:truth-copied" })
    );
    assertEquals(r.code, SIGKILL, r.stderr);
    // Recovery restores production; the nodes stay registered without packages, as after
    // `gov node add`.
    const list = await govJson(env, ["node", "list"]);
    assertEquals(list.map((n: { id: string }) => n.id), ["ComfyUI-Alpha", "reg-node"]);
    assertEquals(list.every((n: { managed_deps: string[] }) => !n.managed_deps.length), true);
    assertEquals(await prodFreeze(env), await prodFreeze(await template.env()));
    const again = await withRegistry((renv) => govJson(env, ["snapshot", "import", file], renv));
    assertEquals(
      again.nodes.map((n: { action: string }) => n.action),
      ["adopt", "adopt"],
    );
    assertEquals(again.status, "promoted");
    const plugins = (await readJson(join(env, "state", "plugins.json"))).plugins;
    assertEquals(plugins["reg-node"].managed_deps, ["sortedcontainers==2.3.0"]);
    assertEquals(plugins["ComfyUI-Alpha"].managed_deps, ["einops==0.7.0"]);
    assertTrue((await prodFreeze(env)).includes("einops==0.7.0"));
  },
);
