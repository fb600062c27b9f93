/**
 * Seed 003 §6.3 D (failure recovery): a production sync that fails during promote and a
 * smoke test that fails both restore the pre-promote snapshot; a rollback whose production
 * sync fails restores the pre-rollback snapshot; environment errors (uv missing, packages
 * unavailable offline) are reported as such, never as conflicts, and change nothing.
 *
 * Each test works on its own copy of one template environment (initialised, three nodes
 * registered), so one failure does not hide the others.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertNotMatch, assertTrue } from "../helpers/assert.ts";
import { wheelhouse } from "../helpers/wheelhouse.ts";
import {
  assertConsistent,
  copyTree,
  failingNextProdSync,
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
} from "./helpers.ts";

const template = new TemplateEnv(async (scratch: Scratch) => {
  const repos = await scratch.dir("repos");
  await makeNodeRepo(repos, "tq", ["tqdm"], { imports: ["tqdm"] });
  await makeNodeRepo(repos, "broken", ["broken-import"]);
  await makeNodeRepo(repos, "yaml", ["pyyaml"]);
  const env = await initEnv(scratch);
  for (const id of ["tq", "broken", "yaml"]) {
    assertEquals((await govIn(env, ["node", "add", id, join(repos, id)])).code, 0);
  }
  return env;
});

Deno.test("a prod sync failing during promote restores the pre-promote snapshot", async () => {
  const env = await template.copy();
  const uv = await failingNextProdSync(template.scratch, join(template.scratch.root, "fail"));
  const tx = await govJson(env, ["tx", "run", "tq"]);
  const before = await truthFiles(env);
  const freezeBefore = await prodFreeze(env);
  const r = await govIn(env, ["tx", "promote", tx.txid], { GOV_UV: uv });
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /promotion of .* failed: uv sync failed/);
  assertMatch(r.stderr, /restored snapshot snap-.* production is back as it was/);
  const after = await readJson(join(env, "state/transactions", `${tx.txid}.json`));
  assertEquals(after.status, "promote_failed");
  assertEquals(after.promotion.result, "promote_failed");
  assertEquals(after.promotion.restored_snapshot, after.promotion.pre_snapshot);
  assertEquals(after.promotion.resync_error, null);
  assertEquals(await truthFiles(env), before);
  assertEquals(await snapshotFiles(env, after.promotion.pre_snapshot), before);
  assertEquals(await prodFreeze(env), freezeBefore);
  assertEquals((await snapshotIndex(env)).at(-1).reason, "pre-promote");
  await assertConsistent(env);
  assertMatch(r.stderr, new RegExp(`retry with \`gov resolve ${tx.txid}\``));
});

Deno.test("after a failed promote, resolve without pins and promote again succeeds", async () => {
  const env = await template.copy();
  const uv = await failingNextProdSync(template.scratch, join(template.scratch.root, "fail"));
  const tx = await govJson(env, ["tx", "run", "tq"]);
  assertEquals((await govIn(env, ["tx", "promote", tx.txid], { GOV_UV: uv })).code, 1);
  // The operator retries once the cause is gone: relock without new pins, then promote.
  const res = await govJson(env, ["resolve", tx.txid]);
  assertEquals(res.status, "resolved");
  assertEquals(res.resolution_pins, []);
  const ok = await govJson(env, ["tx", "promote", tx.txid]);
  assertEquals(ok.status, "promoted");
  assertTrue((await prodFreeze(env)).includes("tqdm==4.66.4"));
  await assertConsistent(env);
});

Deno.test("a failing smoke test restores the pre-promote snapshot", async () => {
  const env = await template.copy();
  const r0 = await govIn(env, ["tx", "run", "broken", "--json"]);
  const tx = JSON.parse(r0.stdout);
  assertEquals(tx.status, "completed"); // the node itself does not import it
  const before = await truthFiles(env);
  const freezeBefore = await prodFreeze(env);
  const r = await govIn(env, ["tx", "promote", tx.txid]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /smoke test failed/);
  const after = await readJson(join(env, "state/transactions", `${tx.txid}.json`));
  assertEquals(after.status, "promote_failed");
  assertMatch(after.promotion.smoke.stderr, /IMPORT FAILED broken-import: import broken_import/);
  assertEquals(await truthFiles(env), before);
  assertEquals(await prodFreeze(env), freezeBefore);
  await assertConsistent(env);
});

Deno.test("a configured smoke_test_cmd is what promote runs", async () => {
  const env = await template.copy();
  const cfg = join(env, "config.toml");
  const text = await Deno.readTextFile(cfg);
  await Deno.writeTextFile(
    cfg,
    text.replace(
      "[tx]\n",
      '[tx]\nsmoke_test_cmd = ["python", "-c", "import yaml, sys; sys.exit(7)"]\n',
    ),
  );
  const tx = await govJson(env, ["tx", "run", "yaml"]);
  const r = await govIn(env, ["tx", "promote", tx.txid]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /smoke test failed \(exit 7\)/);
  const after = await readJson(join(env, "state/transactions", `${tx.txid}.json`));
  assertEquals(after.promotion.smoke.cmd, ["python", "-c", "import yaml, sys; sys.exit(7)"]);
  assertTrue(!(await prodFreeze(env)).includes("pyyaml==6.0.2"));
});

Deno.test("a prod sync failing during rollback restores the pre-rollback snapshot", async () => {
  const env = await template.copy();
  const tx = await govJson(env, ["tx", "run", "tq"]);
  assertEquals((await govJson(env, ["tx", "promote", tx.txid])).status, "promoted");
  const target = (await snapshotIndex(env)).filter((s) => s.reason === "post-promote").at(-1);
  assertEquals((await govIn(env, ["node", "remove", "tq"])).code, 0);
  const before = await truthFiles(env);
  const freezeBefore = await prodFreeze(env);
  const uv = await failingNextProdSync(template.scratch, join(template.scratch.root, "fail"));
  const r = await govIn(env, ["rollback", target.id], { GOV_UV: uv });
  assertEquals(r.code, 1);
  assertMatch(r.stderr, new RegExp(`rollback to ${target.id} failed`));
  assertMatch(r.stderr, /restored the pre-rollback snapshot snap-/);
  assertNotMatch(r.stderr, /re-syncing .venv-prod failed too/);
  const last = (await snapshotIndex(env)).at(-1);
  assertEquals(last.reason, "pre-rollback");
  assertEquals(await snapshotFiles(env, last.id), before);
  assertEquals(await truthFiles(env), before);
  assertEquals(await prodFreeze(env), freezeBefore);
  await assertConsistent(env);
});

Deno.test("uv missing at promote is an environment error and changes nothing", async () => {
  const env = await template.copy();
  const tx = await govJson(env, ["tx", "run", "yaml"]);
  const before = await truthFiles(env);
  const snaps = await snapshotIndex(env);
  const r = await govIn(env, ["tx", "promote", tx.txid], {
    GOV_UV: join(template.scratch.root, "no-uv"),
  });
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /uv not found/);
  assertNotMatch(r.stderr, /conflict/);
  assertEquals(await truthFiles(env), before);
  assertEquals(await snapshotIndex(env), snaps);
  const after = await readJson(join(env, "state/transactions", `${tx.txid}.json`));
  assertEquals(after.status, "completed");
  assertEquals(after.conflict_report, null);
});

Deno.test("a package unavailable offline at promote is an environment error", async () => {
  const env = await template.copy();
  const tx = await govJson(env, ["tx", "run", "yaml"]);
  // The wheel disappears from the (offline) wheelhouse between the run and the promotion.
  const links = join(await template.scratch.dir("links"), "wheels");
  await copyTree(await wheelhouse(), links);
  await Deno.remove(join(links, "pyyaml-6.0.2-py3-none-any.whl"));
  const before = await truthFiles(env);
  const snaps = await snapshotIndex(env);
  const r = await govIn(env, ["tx", "promote", tx.txid], { UV_FIND_LINKS: links });
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /could not run in this environment/);
  assertMatch(r.stderr, /network|offline|UV_FIND_LINKS/);
  assertNotMatch(r.stderr, /dependency conflict/);
  const after = await readJson(join(env, "state/transactions", `${tx.txid}.json`));
  assertEquals(after.status, "completed");
  assertEquals(after.promotion.result, "environment_error");
  assertEquals(after.conflict_report, null);
  assertEquals([...Deno.readDirSync(join(env, "state/conflicts"))].length, 0);
  assertEquals(await truthFiles(env), before);
  assertEquals(await snapshotIndex(env), snaps);
  await assertConsistent(env);
});

Deno.test("uv lock failing on the host at promote is an environment error, nothing changes", async () => {
  const env = await template.copy();
  const tx = await govJson(env, ["tx", "run", "yaml"]);
  const before = await truthFiles(env);
  const freezeBefore = await prodFreeze(env);
  const snaps = await snapshotIndex(env);
  const uv = await failingNextProdSync(
    template.scratch,
    join(template.scratch.root, "fail"),
    "lock",
  );
  const r = await govIn(env, ["tx", "promote", tx.txid], { GOV_UV: uv });
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /could not run in this environment: .*No space left on device/);
  assertNotMatch(r.stderr, /dependency conflict/);
  const after = await readJson(join(env, "state/transactions", `${tx.txid}.json`));
  assertEquals(after.status, "completed");
  assertEquals(after.conflict_report, null);
  assertEquals(await truthFiles(env), before);
  assertEquals(await prodFreeze(env), freezeBefore);
  assertEquals(await snapshotIndex(env), snaps);
  await assertConsistent(env);
});

Deno.test("promoting a failed run needs --allow-failed-run", async () => {
  const env = await template.copy();
  const r0 = await govIn(env, ["tx", "run", "broken", "--json"], {
    FAKE_COMFYUI_CRASH_AT_START: "1",
  });
  const tx = JSON.parse(r0.stdout);
  assertEquals(tx.status, "failed");
  const r = await govIn(env, ["tx", "promote", tx.txid]);
  assertEquals(r.code, 2);
  assertMatch(r.stderr, /is failed; it cannot be promoted/);
  assertMatch(r.stderr, /--allow-failed-run/);
});
