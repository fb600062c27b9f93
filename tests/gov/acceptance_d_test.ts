/**
 * Seed 003 §6.3 D (failure recovery): a production sync that fails during promote and a
 * smoke test that fails both restore the pre-promote snapshot; a rollback whose rebuild
 * fails restores the pre-rollback snapshot; environment errors (uv missing, packages
 * unavailable offline) are reported as such, never as conflicts, and change nothing.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertNotMatch, assertTrue } from "../helpers/assert.ts";
import { wheelhouse } from "../helpers/wheelhouse.ts";
import {
  assertConsistent,
  copyTree,
  flakyUv,
  govIn,
  govJson,
  initEnv,
  makeNodeRepo,
  prodFreeze,
  readJson,
  Scratch,
  snapshotFiles,
  snapshotIndex,
  truthFiles,
} from "./helpers.ts";

Deno.test("D: failure recovery", async (t) => {
  const scratch = new Scratch();
  await scratch.open();
  try {
    const repos = await scratch.dir("repos");
    await makeNodeRepo(repos, "tq", ["tqdm"], { imports: ["tqdm"] });
    await makeNodeRepo(repos, "broken", ["broken-import"]);
    await makeNodeRepo(repos, "yaml", ["pyyaml"]);
    // A private wheelhouse, so wheels can disappear in this test only.
    const links = join(await scratch.dir("links"), "wheels");
    await copyTree(await wheelhouse(), links);
    const own = { UV_FIND_LINKS: links };
    const env = await initEnv(scratch, "", own);
    for (const id of ["tq", "broken", "yaml"]) {
      assertEquals((await govIn(env, ["node", "add", id, join(repos, id)], own)).code, 0);
    }

    await t.step("forced prod sync failure during promote restores the pre snapshot", async () => {
      const flag = join(scratch.root, "fail-next-prod-sync");
      const uv = await flakyUv(scratch.root, flag);
      const tx = await govJson(env, ["tx", "run", "tq"], own);
      const before = await truthFiles(env);
      const freezeBefore = await prodFreeze(env);
      await Deno.writeTextFile(flag, "");
      const r = await govIn(env, ["tx", "promote", tx.txid], { ...own, GOV_UV: uv });
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
      // The operator retries once the cause is gone: relock without new pins, then promote.
      const res = await govJson(env, ["resolve", tx.txid], own);
      assertEquals(res.status, "resolved");
      assertEquals(res.resolution_pins, []);
      const ok = await govJson(env, ["tx", "promote", tx.txid], own);
      assertEquals(ok.status, "promoted");
      assertTrue((await prodFreeze(env)).includes("tqdm==4.66.4"));
    });

    await t.step("a failing smoke test restores the pre snapshot", async () => {
      const r0 = await govIn(env, ["tx", "run", "broken", "--json"], own);
      const tx = JSON.parse(r0.stdout);
      assertEquals(tx.status, "completed"); // the node itself does not import it
      const before = await truthFiles(env);
      const freezeBefore = await prodFreeze(env);
      const r = await govIn(env, ["tx", "promote", tx.txid], own);
      assertEquals(r.code, 1);
      assertMatch(r.stderr, /smoke test failed/);
      const after = await readJson(join(env, "state/transactions", `${tx.txid}.json`));
      assertEquals(after.status, "promote_failed");
      assertMatch(
        after.promotion.smoke.stderr,
        /IMPORT FAILED broken-import: import broken_import/,
      );
      assertEquals(await truthFiles(env), before);
      assertEquals(await prodFreeze(env), freezeBefore);
      await assertConsistent(env);
    });

    await t.step("a configured smoke_test_cmd is what runs", async () => {
      const cfg = join(env, "config.toml");
      const text = await Deno.readTextFile(cfg);
      await Deno.writeTextFile(
        cfg,
        text.replace(
          "[tx]\n",
          '[tx]\nsmoke_test_cmd = ["python", "-c", "import yaml, sys; sys.exit(7)"]\n',
        ),
      );
      try {
        const tx = await govJson(env, ["tx", "run", "yaml"], own);
        const r = await govIn(env, ["tx", "promote", tx.txid], own);
        assertEquals(r.code, 1);
        assertMatch(r.stderr, /smoke test failed \(exit 7\)/);
        const after = await readJson(join(env, "state/transactions", `${tx.txid}.json`));
        assertEquals(after.promotion.smoke.cmd, ["python", "-c", "import yaml, sys; sys.exit(7)"]);
        assertTrue(!(await prodFreeze(env)).includes("pyyaml==6.0.2"));
      } finally {
        await Deno.writeTextFile(cfg, text);
      }
    });

    await t.step("forced rollback sync failure restores the pre-rollback snapshot", async () => {
      // The snapshot after tq's promotion needs tqdm; once tq is removed and tqdm's wheel is
      // gone from the (offline) wheelhouse, that snapshot cannot be rebuilt any more.
      const target = (await snapshotIndex(env)).filter((s) => s.reason === "post-promote").at(-1);
      assertEquals((await govIn(env, ["node", "remove", "tq"], own)).code, 0);
      await Deno.remove(join(links, "tqdm-4.66.4-py3-none-any.whl"));
      const before = await truthFiles(env);
      const freezeBefore = await prodFreeze(env);
      const r = await govIn(env, ["rollback", target.id], own);
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

    await t.step("uv missing at promote: an environment error, nothing changes", async () => {
      const tx = await govJson(env, ["tx", "run", "yaml"], own);
      const before = await truthFiles(env);
      const snaps = await snapshotIndex(env);
      const r = await govIn(env, ["tx", "promote", tx.txid], {
        ...own,
        GOV_UV: join(scratch.root, "no-uv"),
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

    await t.step("a package unavailable offline at promote is an environment error", async () => {
      const list = await govJson(env, ["tx", "list"], own);
      const txid = list.filter((x: { node_id: string; status: string }) =>
        x.node_id === "yaml" && x.status === "completed"
      ).at(-1).txid;
      await Deno.remove(join(links, "pyyaml-6.0.2-py3-none-any.whl"));
      const before = await truthFiles(env);
      const snaps = await snapshotIndex(env);
      const r = await govIn(env, ["tx", "promote", txid], own);
      assertEquals(r.code, 1);
      assertMatch(r.stderr, /could not run in this environment/);
      assertMatch(r.stderr, /network|offline|UV_FIND_LINKS/);
      assertNotMatch(r.stderr, /dependency conflict/);
      const after = await readJson(join(env, "state/transactions", `${txid}.json`));
      assertEquals(after.status, "completed");
      assertEquals(after.promotion.result, "environment_error");
      assertEquals(after.conflict_report, null);
      assertEquals([...Deno.readDirSync(join(env, "state/conflicts"))].length, 0);
      assertEquals(await truthFiles(env), before);
      assertEquals(await snapshotIndex(env), snaps);
      await assertConsistent(env);
    });

    await t.step("promoting a failed run needs --allow-failed-run", async () => {
      const r0 = await govIn(env, ["tx", "run", "broken", "--json"], {
        ...own,
        FAKE_COMFYUI_CRASH_AT_START: "1",
      });
      const tx = JSON.parse(r0.stdout);
      assertEquals(tx.status, "failed");
      const r = await govIn(env, ["tx", "promote", tx.txid], own);
      assertEquals(r.code, 1);
      assertMatch(r.stderr, /is failed; it cannot be promoted/);
      assertMatch(r.stderr, /--allow-failed-run/);
    });
  } finally {
    await scratch.close();
  }
});
