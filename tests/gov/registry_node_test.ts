// Custom nodes from the Comfy Registry through gov, against the fake registry: add, tx run,
// promote, list, remove; a hash mismatch refused with nothing changed.
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
  Scratch,
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

Deno.test("registry node: add, tx run, promote, list, remove; hash mismatch refused", async (t) => {
  const scratch = new Scratch();
  await scratch.open();
  const src = await scratch.dir("registry-src");
  const reg = await startFakeRegistry({
    "reg-node": {
      "1.0.0": { dir: await nodeDir(src, "v1", ["sortedcontainers==2.3.0"]) },
      "1.1.0": { dir: await nodeDir(src, "v2", ["sortedcontainers==2.4.0"]) },
    },
    "bad-hash": { "2.0.0": { dir: await nodeDir(src, "bad", ["einops"]), mode: "wrong-hash" } },
  });
  const renv = { GOV_REGISTRY_URL: reg.url };
  try {
    const env = await initEnv(scratch);
    const custom = join(env, "ComfyUI", "custom_nodes");

    await t.step("add at a version records source, version and hash", async () => {
      const rec = await govJson(env, ["node", "add", "reg-node@1.0.0"], renv);
      assertEquals(rec.source, "registry");
      assertEquals(rec.registry_id, "reg-node");
      assertEquals(rec.version, "1.0.0");
      assertMatch(rec.hash, /^sha256:[0-9a-f]{64}$/);
      assertEquals(rec.commit, null);
      const plugins = await readJson(join(env, "state", "plugins.json"));
      assertEquals(plugins.plugins["reg-node"].hash, rec.hash);
      assertEquals(plugins.plugins["reg-node"].registry_url, reg.url);
      assertEquals(await listDir(join(custom, "reg-node")), ["__init__.py", "requirements.txt"]);
      // No staging folder is left beside custom_nodes/.
      const leftovers = (await listDir(join(env, "ComfyUI"))).filter((n) => n.startsWith(".gov"));
      assertEquals(leftovers, []);
      const list = await govIn(env, ["node", "list"]);
      assertMatch(list.stdout, /reg-node\s+v1\.0\.0 \(registry\)/);
    });

    await t.step("tx run and promote bring its requirements into production", async () => {
      const tx = await govJson(env, ["tx", "run", "reg-node"]);
      assertEquals(tx.status, "completed", tx.error);
      assertTrue(tx.diff.added.includes("sortedcontainers==2.3.0"), tx.diff.added.join(","));
      const done = await govJson(env, ["tx", "promote", tx.txid]);
      assertEquals(done.status, "promoted");
      assertTrue((await prodFreeze(env)).includes("sortedcontainers==2.3.0"));
      const plugins = await readJson(join(env, "state", "plugins.json"));
      assertEquals(plugins.plugins["reg-node"].managed_deps, ["sortedcontainers==2.3.0"]);
      assertEquals(plugins.plugins["reg-node"].source, "registry");
      await assertConsistent(env);
    });

    await t.step("a hash mismatch is refused and changes nothing", async () => {
      const before = await truthFiles(env);
      const nodesBefore = await listDir(custom);
      const r = await govIn(env, ["node", "add", "bad-hash"], renv);
      assertEquals(r.code, 1, r.stderr);
      assertMatch(r.stderr, /bad-hash/);
      assertMatch(r.stderr, /sha256/);
      assertEquals(await truthFiles(env), before);
      assertEquals(await listDir(custom), nodesBefore);
      assertEquals(await exists(join(env, "state", "journal.json")), false);
      const leftovers = (await listDir(join(env, "ComfyUI"))).filter((n) => n.startsWith(".gov"));
      assertEquals(leftovers, []);
    });

    await t.step("bad specs are usage errors; --ref is for git nodes", async () => {
      const r = await govIn(env, ["node", "add", "reg-node@one"], renv);
      assertEquals(r.code, 2, r.stderr);
      const ref = await govIn(env, ["node", "add", "reg-node", "--ref", "main"], renv);
      assertEquals(ref.code, 2, ref.stderr);
      const missing = await govIn(env, ["node", "add", "no-such-node"], renv);
      assertTrue(missing.code !== 0, missing.stderr);
      assertEquals(await exists(join(custom, "no-such-node")), false);
    });

    await t.step("remove takes its packages out and parks its code", async () => {
      const r = await govJson(env, ["node", "remove", "reg-node"]);
      assertTrue(r !== null);
      assertEquals((await prodFreeze(env)).includes("sortedcontainers==2.3.0"), false);
      const plugins = await readJson(join(env, "state", "plugins.json"));
      assertEquals(plugins.plugins["reg-node"], undefined);
      assertTrue(await exists(join(custom, "reg-node.disabled")));
      await assertConsistent(env);
    });

    await t.step("rollback to before the removal brings the registry node back", async () => {
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
  } finally {
    await reg.close();
    await scratch.close();
  }
});
