/**
 * Seed 003 §6.3 C (remove/rollback/retention): node remove garbage-collects the node's
 * packages by exact sync, rollback restores the truth files and rebuilds production, and
 * snapshot retention keeps the newest N (a low N through the CLI, and the default 50 with
 * more than 50 real rollbacks).
 *
 * Each test works on its own copy of one template environment (two nodes promoted).
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { loadEnvironment } from "../../src/workspace/environment.ts";
import { rollbackTo } from "../../src/gov/mod.ts";
import {
  assertConsistent,
  exists,
  govIn,
  govJson,
  initEnv,
  makeNodeRepo,
  prodFreeze,
  readJson,
  type Scratch,
  snapshotFiles,
  snapshotIndex,
  TemplateEnv,
  truthFiles,
  uvEnv,
} from "./helpers.ts";

const REQUESTS_TREE = [
  "certifi==2024.7.4",
  "charset-normalizer==3.3.2",
  "idna==3.7",
  "requests==2.32.3",
  "urllib3==2.2.2",
];

const repos = { dir: "" };
const facts = { initFreeze: [] as string[], goodPost: "", goodTxid: "" };

const template = new TemplateEnv(async (scratch: Scratch) => {
  repos.dir = await scratch.dir("repos");
  await makeNodeRepo(repos.dir, "good", ["requests"], { imports: ["requests"] });
  await makeNodeRepo(repos.dir, "Alpha_Pack", ["conflict-a"]);
  await makeNodeRepo(repos.dir, "plain", []);
  const env = await initEnv(scratch);
  facts.initFreeze = await prodFreeze(env);
  const promote = async (id: string) => {
    assertEquals((await govIn(env, ["node", "add", id, join(repos.dir, id)])).code, 0);
    const tx = await govJson(env, ["tx", "run", id]);
    return await govJson(env, ["tx", "promote", tx.txid]);
  };
  const good = await promote("good");
  await promote("Alpha_Pack");
  facts.goodPost = good.promotion.post_snapshot as string;
  facts.goodTxid = good.txid as string;
  return env;
});

Deno.test("node remove uninstalls the node's packages by exact sync and disables its code", async () => {
  const env = await template.copy();

  let freeze = await prodFreeze(env);
  for (const p of REQUESTS_TREE) assertTrue(freeze.includes(p), p);
  // An open transaction of the node is aborted with it.
  const open = await govJson(env, ["tx", "run", "good"]);
  assertEquals(open.status, "completed");
  const before = await truthFiles(env);
  const r = await govJson(env, ["node", "remove", "good"]);
  assertEquals(r.removed_deps, ["requests"]);
  assertEquals(r.aborted_transactions, [open.txid]);
  assertEquals(r.code_purged, false);
  freeze = await prodFreeze(env);
  for (const p of REQUESTS_TREE) assertTrue(!freeze.includes(p), `${p} still installed`);
  assertTrue(freeze.includes("conflict-a==1.0"));
  const reg = await readJson(join(env, "state/plugins.json"));
  assertEquals(Object.keys(reg.plugins), ["Alpha_Pack"]);
  // An id with capitals and '_' gets the group uv writes for it (uv normalises group
  // names); its managed deps are found through it.
  assertEquals(reg.plugins.Alpha_Pack.group, "node-alpha-pack");
  assertEquals(reg.plugins.Alpha_Pack.managed_deps, ["conflict-a"]);
  assertMatch(await Deno.readTextFile(join(env, "pyproject.toml")), /^node-alpha-pack = \[/m);
  assertTrue(!(await Deno.readTextFile(join(env, "pyproject.toml"))).includes("node-good"));
  const snaps = await snapshotIndex(env);
  const [pre, post] = snaps.slice(-2);
  assertEquals([pre.reason, post.reason], ["pre-remove", "post-remove"]);
  assertEquals([pre.id, post.id], [r.pre_snapshot, r.post_snapshot]);
  assertEquals(await snapshotFiles(env, pre.id), before);
  assertEquals(await snapshotFiles(env, post.id), await truthFiles(env));
  // Code kept but no longer imported by ComfyUI.
  assertEquals(r.code, "disabled");
  assertTrue(!(await exists(join(env, "ComfyUI/custom_nodes/good"))));
  assertTrue(await exists(join(env, "ComfyUI/custom_nodes/good.disabled/__init__.py")));
  const tx = await readJson(join(env, "state/transactions", `${open.txid}.json`));
  assertEquals(tx.status, "aborted");
  assertTrue(!(await exists(join(env, ".venv-candidate", open.txid))));
  await assertConsistent(env);
});

Deno.test("node remove --purge-code deletes the code; a node never promoted has no group", async () => {
  const env = await template.copy();
  const initFreeze = facts.initFreeze;
  assertEquals((await govIn(env, ["node", "remove", "good"])).code, 0);

  assertEquals((await govIn(env, ["node", "add", "plain", join(repos.dir, "plain")])).code, 0);
  const p = await govJson(env, ["node", "remove", "plain", "--purge-code"]);
  assertEquals(p.removed_deps, []);
  assertEquals(p.code_purged, true);
  assertTrue(!(await exists(join(env, "ComfyUI/custom_nodes/plain"))));
  const r = await govJson(env, ["node", "remove", "Alpha_Pack", "--purge-code"]);
  assertEquals(r.removed_deps, ["conflict-a"]);
  assertTrue(!(await exists(join(env, "ComfyUI/custom_nodes/Alpha_Pack"))));
  assertEquals(await prodFreeze(env), initFreeze);
  const missing = await govIn(env, ["node", "remove", "Alpha_Pack"]);
  assertEquals(missing.code, 2);
  assertMatch(missing.stderr, /custom node 'Alpha_Pack' not found/);
});

Deno.test("rollback restores the truth files, the code and prod, and back again", async () => {
  const env = await template.copy();
  const { initFreeze, goodPost } = facts;
  // Both nodes gone, good's code only disabled, Alpha_Pack's deleted.
  assertEquals((await govIn(env, ["node", "remove", "good"])).code, 0);
  assertEquals((await govIn(env, ["node", "remove", "Alpha_Pack", "--purge-code"])).code, 0);

  const r = await govJson(env, ["rollback", goodPost]);
  assertEquals(r.target.id, goodPost);
  assertEquals(r.prod, "synced");
  assertEquals(r.reregistered, ["good"]);
  assertEquals(r.reenabled, ["good"]);
  assertEquals(r.missing_code, []);
  assertTrue(await exists(join(env, "ComfyUI/custom_nodes/good/__init__.py")));
  assertEquals(await truthFiles(env), await snapshotFiles(env, goodPost));
  const freeze = await prodFreeze(env);
  for (const p of REQUESTS_TREE) assertTrue(freeze.includes(p), p);
  const snaps = await snapshotIndex(env);
  assertEquals(snaps.at(-1).reason, "pre-rollback");
  assertEquals(snaps.at(-1).ref, goodPost);
  // And back again with the pre-rollback snapshot it printed.
  const back = await govJson(env, ["rollback", r.pre_snapshot]);
  assertEquals(back.unregistered, ["good"]);
  assertEquals(back.disabled, ["good"]);
  assertTrue(await exists(join(env, "ComfyUI/custom_nodes/good.disabled")));
  assertEquals(await prodFreeze(env), initFreeze);
  await assertConsistent(env);
});

Deno.test("rollback refuses a snapshot whose files were edited", async () => {
  const env = await template.copy();
  const { goodPost } = facts;

  const snapPy = join(env, "snapshots", goodPost, "pyproject.toml");
  const text = await Deno.readTextFile(snapPy);
  await Deno.writeTextFile(snapPy, text + "\n# edited\n");
  const before = await truthFiles(env);
  const r = await govIn(env, ["rollback", goodPost]);
  assertEquals(r.code, 2, r.stderr);
  assertMatch(r.stderr, /snapshot .* is damaged: pyproject\.toml does not match the sha256/);
  assertEquals(await truthFiles(env), before);
  // inspect says so before anyone tries to roll back: an edited file, then a missing one.
  await Deno.remove(join(env, "snapshots", goodPost, "uv.lock"));
  const seen = await govJson(env, ["snapshot", "inspect", goodPost]);
  assertEquals(seen.integrity, {
    "plugins.json": "ok",
    "pyproject.toml": "edited",
    "uv.lock": "missing",
  });
  const told = await govIn(env, ["snapshot", "inspect", goodPost]);
  assertEquals(told.code, 0, told.stderr);
  assertMatch(told.stdout, /pyproject\.toml +[0-9a-f]{64} +\(edited since!\)/);
  assertMatch(told.stdout, /uv\.lock +[0-9a-f]{64} +\(missing!\)/);
  assertMatch(told.stderr, /is damaged \(pyproject\.toml, uv\.lock\); it cannot be rolled back to/);
  await Deno.writeTextFile(snapPy, text);
});

Deno.test("snapshot list and inspect", async () => {
  const env = await template.copy();
  const { goodPost } = facts;
  const good = { txid: facts.goodTxid };

  const list = await govJson(env, ["snapshot", "list"]);
  assertEquals(list[0].reason, "init");
  const meta = await govJson(env, ["snapshot", "inspect", goodPost]);
  assertEquals(meta.id, goodPost);
  assertEquals(meta.reason, "post-promote");
  assertEquals(meta.ref, good.txid);
  assertEquals(Object.keys(meta.files).sort(), ["plugins.json", "pyproject.toml", "uv.lock"]);
  assertEquals(Object.values(meta.integrity), ["ok", "ok", "ok"]);
  const text = await govIn(env, ["snapshot", "inspect", goodPost]);
  assertMatch(text.stdout, /reason: +post-promote/);
  const none = await govIn(env, ["snapshot", "inspect", "snap-nope"]);
  assertEquals(none.code, 2);
  assertMatch(none.stderr, /snapshot 'snap-nope' not found/);
});

Deno.test("retention through the CLI: [rollback] snapshot_retention = 3 keeps the newest", async () => {
  const small = await template.copy();

  const cfg = join(small, "config.toml");
  await Deno.writeTextFile(
    cfg,
    (await Deno.readTextFile(cfg)).replace("snapshot_retention = 50", "snapshot_retention = 3"),
  );
  const init = (await snapshotIndex(small))[0].id;
  for (let i = 0; i < 4; i++) assertEquals((await govIn(small, ["rollback", init])).code, 0);
  const snaps = await snapshotIndex(small);
  assertEquals(snaps.length, 3);
  // The target of a rollback is never pruned by it.
  assertEquals(snaps[0].id, init);
  assertEquals(snaps.slice(1).map((s) => s.reason), ["pre-rollback", "pre-rollback"]);
  await assertConsistent(small);
});

Deno.test("retention default 50 with more than 50 real snapshots", async () => {
  const big = await template.copy();

  const vars = { ...Deno.env.toObject(), ...(await uvEnv()) };
  const e = loadEnvironment(big);
  const init = (await snapshotIndex(big))[0].id;
  const made: string[] = [];
  for (let i = 0; i < 55; i++) {
    // Production already matches the init snapshot's truth, so no uv run is needed:
    // each rollback is a real one (lock, journal, pre-rollback snapshot, prune).
    const r = await rollbackTo(e, init, { getenv: (n) => vars[n] });
    made.push(r.pre_snapshot);
  }
  const snaps = await snapshotIndex(big);
  assertEquals(snaps.length, 50);
  assertEquals(snaps[0].id, init);
  assertEquals(snaps.slice(-49).map((s) => s.id), made.slice(-49));
  const dirs = [...Deno.readDirSync(join(big, "snapshots"))].map((d) => d.name).sort();
  assertEquals(dirs, snaps.map((s) => s.id).sort());
  await assertConsistent(big);
});
