// Custom nodes from the Comfy Registry through gov, against the fake registry: add, tx run,
// promote, list, remove; a hash mismatch refused with nothing changed.
//
// Each test works on its own copy of one of two templates (freshly initialised, or with
// reg-node 1.0.0 added and promoted) and talks to its own fake registry.
import { join } from "node:path";
import { startFakeRegistry } from "../../fixtures/registry/fake_registry.ts";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import {
  assertConsistent,
  exists,
  govIn,
  govJson,
  initEnv,
  prodFreeze,
  readJson,
  type Scratch,
  TemplateEnv,
  truthFiles,
} from "./helpers.ts";

async function nodeDir(root: string, name: string, reqs: string[]): Promise<string> {
  const dir = join(root, name);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
  await Deno.writeTextFile(join(dir, "requirements.txt"), reqs.join("\n") + "\n");
  return dir;
}

async function listDir(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

const src = { dir: "" };

/** Runs `fn` with a fake registry (reg-node 1.0.0 and 1.1.0, bad-hash 2.0.0 with a wrong hash). */
async function withRegistry<T>(
  fn: (renv: Record<string, string>, url: string) => Promise<T>,
): Promise<T> {
  const reg = await startFakeRegistry({
    "reg-node": {
      "1.0.0": { dir: join(src.dir, "v1") },
      "1.1.0": { dir: join(src.dir, "v2") },
    },
    "bad-hash": { "2.0.0": { dir: join(src.dir, "bad"), mode: "wrong-hash" } },
  });
  try {
    return await fn({ GOV_REGISTRY_URL: reg.url }, reg.url);
  } finally {
    await reg.close();
  }
}

const template = new TemplateEnv(async (scratch: Scratch) => {
  src.dir = await scratch.dir("registry-src");
  await nodeDir(src.dir, "v1", ["sortedcontainers==2.3.0"]);
  await nodeDir(src.dir, "v2", ["sortedcontainers==2.4.0"]);
  await nodeDir(src.dir, "bad", ["einops"]);
  return await initEnv(scratch);
});

/** reg-node 1.0.0 added, run and promoted; returns the transaction's answers. */
// deno-lint-ignore no-explicit-any
async function addAndPromote(env: string): Promise<{ tx: any; done: any }> {
  return await withRegistry(async (renv) => {
    await govJson(env, ["node", "add", "reg-node@1.0.0"], renv);
    const tx = await govJson(env, ["tx", "run", "reg-node"]);
    const done = tx.status === "completed" ? await govJson(env, ["tx", "promote", tx.txid]) : null;
    return { tx, done };
  });
}

const promoted = new TemplateEnv(async (scratch: Scratch) => {
  const env = await scratch.copyEnv(await template.env());
  const { done } = await addAndPromote(env);
  assertEquals(done?.status, "promoted");
  return env;
});

Deno.test("registry add at a version records source, version and hash", async () => {
  const env = await template.copy();
  const custom = join(env, "ComfyUI", "custom_nodes");
  await withRegistry(async (renv, url) => {
    const rec = await govJson(env, ["node", "add", "reg-node@1.0.0"], renv);
    assertEquals(rec.source, "registry");
    assertEquals(rec.registry_id, "reg-node");
    assertEquals(rec.version, "1.0.0");
    assertMatch(rec.hash, /^sha256:[0-9a-f]{64}$/);
    assertEquals(rec.commit, null);
    const plugins = await readJson(join(env, "state", "plugins.json"));
    assertEquals(plugins.plugins["reg-node"].hash, rec.hash);
    assertEquals(plugins.plugins["reg-node"].registry_url, url);
  });
  assertEquals(await listDir(join(custom, "reg-node")), ["__init__.py", "requirements.txt"]);
  // No staging folder is left beside custom_nodes/.
  const leftovers = (await listDir(join(env, "ComfyUI"))).filter((n) => n.startsWith(".gov"));
  assertEquals(leftovers, []);
  const list = await govIn(env, ["node", "list"]);
  assertMatch(list.stdout, /reg-node\s+v1\.0\.0 \(registry\)/);
});

Deno.test("tx run and promote bring a registry node's requirements into production", async () => {
  const env = await template.copy();
  const { tx, done } = await addAndPromote(env);
  assertEquals(tx.status, "completed", tx.error);
  assertTrue(tx.diff.added.includes("sortedcontainers==2.3.0"), tx.diff.added.join(","));
  assertEquals(done.status, "promoted");
  assertTrue((await prodFreeze(env)).includes("sortedcontainers==2.3.0"));
  const plugins = await readJson(join(env, "state", "plugins.json"));
  assertEquals(plugins.plugins["reg-node"].managed_deps, ["sortedcontainers==2.3.0"]);
  assertEquals(plugins.plugins["reg-node"].source, "registry");
  await assertConsistent(env);
});

Deno.test("a registry archive whose hash does not match is refused and changes nothing", async () => {
  const env = await promoted.copy();
  const custom = join(env, "ComfyUI", "custom_nodes");
  const before = await truthFiles(env);
  const nodesBefore = await listDir(custom);
  const r = await withRegistry((renv) => govIn(env, ["node", "add", "bad-hash"], renv));
  assertEquals(r.code, 1, r.stderr);
  assertMatch(r.stderr, /bad-hash/);
  assertMatch(r.stderr, /sha256/);
  assertEquals(await truthFiles(env), before);
  assertEquals(await listDir(custom), nodesBefore);
  assertEquals(await exists(join(env, "state", "journal.json")), false);
  const leftovers = (await listDir(join(env, "ComfyUI"))).filter((n) => n.startsWith(".gov"));
  assertEquals(leftovers, []);
});

Deno.test("bad registry specs are usage errors; --ref is for git nodes", async () => {
  const env = await promoted.copy();
  const custom = join(env, "ComfyUI", "custom_nodes");
  await withRegistry(async (renv) => {
    const r = await govIn(env, ["node", "add", "reg-node@one"], renv);
    assertEquals(r.code, 2, r.stderr);
    const ref = await govIn(env, ["node", "add", "reg-node", "--ref", "main"], renv);
    assertEquals(ref.code, 2, ref.stderr);
    const missing = await govIn(env, ["node", "add", "no-such-node"], renv);
    assertTrue(missing.code !== 0, missing.stderr);
  });
  assertEquals(await exists(join(custom, "no-such-node")), false);
});

/** Removes reg-node from a copy of the promoted template; returns the copy and the answer. */
// deno-lint-ignore no-explicit-any
async function removed(): Promise<{ env: string; r: any }> {
  const env = await promoted.copy();
  return { env, r: await govJson(env, ["node", "remove", "reg-node"]) };
}

Deno.test("removing a registry node takes its packages out and parks its code", async () => {
  const { env, r } = await removed();
  const custom = join(env, "ComfyUI", "custom_nodes");
  assertTrue(r !== null);
  assertEquals((await prodFreeze(env)).includes("sortedcontainers==2.3.0"), false);
  const plugins = await readJson(join(env, "state", "plugins.json"));
  assertEquals(plugins.plugins["reg-node"], undefined);
  assertTrue(await exists(join(custom, "reg-node.disabled")));
  await assertConsistent(env);
});

Deno.test("rollback to before the removal brings the registry node back", async () => {
  const { env } = await removed();
  const custom = join(env, "ComfyUI", "custom_nodes");
  const snaps = await govJson(env, ["snapshot", "list"]);
  const post = snaps.filter((s: { reason: string }) => s.reason === "post-promote").at(-1);
  const r = await govJson(env, ["rollback", post.id]);
  assertEquals(r.reenabled, ["reg-node"]);
  const plugins = await readJson(join(env, "state", "plugins.json"));
  assertEquals(plugins.plugins["reg-node"].version, "1.0.0");
  assertEquals(plugins.plugins["reg-node"].source, "registry");
  assertTrue((await prodFreeze(env)).includes("sortedcontainers==2.3.0"));
  assertTrue(await exists(join(custom, "reg-node", "__init__.py")));
});
