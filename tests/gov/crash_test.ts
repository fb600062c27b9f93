/**
 * Crash safety: gov is SIGKILLed right after each journaled step of promote, node remove,
 * rollback and node add (test-only `GOV_FAULT=<op>:<step>`), and while a `tx run` is
 * test-starting ComfyUI. The next gov command must find the interrupted operation and
 * finish or undo it so that truth files, snapshots, plugins.json, transaction statuses and
 * `.venv-prod` agree.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { isPidAlive, signalPid } from "../../src/process/run.ts";
import { spawnGov } from "../helpers/gov.ts";
import { waitFor } from "../helpers/net.ts";
import {
  assertConsistent,
  exists,
  failingNextProdSync,
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
  uvEnv,
} from "./helpers.ts";

/** Runs `fn` over `items` with at most `n` at a time; collects failures by name. */
async function pool<T>(
  items: T[],
  n: number,
  name: (t: T) => string,
  fn: (t: T) => Promise<void>,
): Promise<void> {
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        failures.push(`${name(item)}: ${(err as Error).stack ?? err}`);
      }
    }
  };
  await Promise.all(Array.from({ length: n }, worker));
  assertEquals(failures, [], failures.join("\n\n"));
}

/** Runs gov with GOV_FAULT set and checks it died right after journaling that step. */
async function killAt(
  env: string,
  args: string[],
  fault: string,
  extra: Record<string, string> = {},
): Promise<void> {
  const r = await govIn(env, args, { ...extra, GOV_FAULT: fault });
  assertEquals(r.code, 137, `expected SIGKILL at ${fault}, got ${r.code}:\n${r.stderr}`);
  const journal = await readJson(join(env, "state/journal.json"));
  assertEquals(`${journal.op}:${journal.step}`, fault);
  // The killed gov still "holds" the lock: the next command must take it over.
  assertTrue(await exists(join(env, "state/.lock")));
}

/** The next gov command recovers; returns its stderr notes. */
async function recoverWith(env: string, args: string[]): Promise<string> {
  const r = await govIn(env, args);
  assertEquals(r.code, 0, `recovery via gov ${args.join(" ")} failed:\n${r.stderr}`);
  assertMatch(r.stderr, /recovery: /);
  return r.stderr;
}

Deno.test("crash safety: SIGKILL at every journaled step", async (t) => {
  const scratch = new Scratch();
  await scratch.open();
  try {
    const repos = await scratch.dir("repos");
    await makeNodeRepo(repos, "good", ["requests"], { imports: ["requests"] });
    await makeNodeRepo(repos, "tq", ["tqdm"], { imports: ["tqdm"] });
    await makeNodeRepo(repos, "late", ["einops"]);
    // Template: good promoted, tq with a completed transaction.
    const template = await initEnv(scratch);
    const initSnap = (await snapshotIndex(template))[0].id;
    for (const id of ["good", "tq"]) {
      assertEquals((await govIn(template, ["node", "add", id, join(repos, id)])).code, 0);
    }
    const goodTx = await govJson(template, ["tx", "run", "good"]);
    await govJson(template, ["tx", "promote", goodTx.txid]);
    const tqTx = (await govJson(template, ["tx", "run", "tq"])).txid as string;
    const truth0 = await truthFiles(template);
    const freeze0 = await prodFreeze(template);
    const flag = join(scratch.root, "fail-next-prod-sync");

    await t.step("promote", async () => {
      const steps = [
        "begun",
        "snapshot-pre",
        "locked",
        "truth-copied",
        "prod-synced",
        "smoke-passed",
        "plugins-updated",
        "snapshot-post",
        "undoing",
      ];
      await pool(steps, 3, (s) => s, async (step) => {
        const env = await scratch.copyEnv(template);
        const extra: Record<string, string> = {};
        // The undo path only runs after a failure: make the prod sync fail first.
        if (step === "undoing") extra.GOV_UV = await failingNextProdSync(scratch, flag);
        await killAt(env, ["tx", "promote", tqTx], `promote:${step}`, extra);
        const notes = await recoverWith(env, ["tx", "list", "--json"]);
        const tx = await readJson(join(env, "state/transactions", `${tqTx}.json`));
        const finished = ["smoke-passed", "plugins-updated", "snapshot-post"].includes(step);
        // Killed before the truth files moved: nothing changed, and the transaction is
        // promotable again as it was, without a resolve.
        const untouched = ["begun", "snapshot-pre", "locked"].includes(step);
        if (untouched) {
          assertMatch(notes, /nothing changed/);
          assertEquals(tx.status, "completed");
          assertEquals(tx.promotion?.result, "interrupted");
          assertEquals(await truthFiles(env), truth0);
          assertEquals(await prodFreeze(env), freeze0);
          if (step === "locked") {
            const retry = await govIn(env, ["tx", "promote", tqTx]);
            assertEquals(retry.code, 0, retry.stderr);
            assertTrue((await prodFreeze(env)).includes("tqdm==4.66.4"));
          }
        } else if (finished) {
          assertMatch(notes, /finished the interrupted promotion/);
          assertEquals(tx.status, "promoted");
          const reg = await readJson(join(env, "state/plugins.json"));
          assertEquals(reg.plugins.tq.managed_deps, ["tqdm"]);
          assertEquals(reg.plugins.tq.last_txid, tqTx);
          const post = tx.promotion.post_snapshot;
          assertEquals(await snapshotFiles(env, post), await truthFiles(env));
          assertTrue((await prodFreeze(env)).includes("tqdm==4.66.4"));
          assertTrue(!(await exists(join(env, ".venv-candidate", tqTx))));
          // Exactly one post-promote snapshot, even when the kill came after creating it.
          const posts = (await snapshotIndex(env)).filter((s) =>
            s.reason === "post-promote" && s.ref === tqTx
          );
          assertEquals(posts.length, 1);
        } else {
          assertMatch(notes, /undid the interrupted promotion/);
          assertEquals(tx.status, "promote_failed");
          assertMatch(tx.error, /interrupted|injected/);
          assertEquals(await truthFiles(env), truth0);
          assertEquals(await prodFreeze(env), freeze0);
        }
        await assertConsistent(env);
        // The environment is usable afterwards: a fresh command runs normally.
        const again = await govIn(env, ["tx", "list"]);
        assertEquals(again.code, 0);
        assertTrue(!again.stderr.includes("recovery"));
      });
    });

    await t.step("node remove", async () => {
      const steps = [
        "begun",
        "snapshot-pre",
        "locked",
        "truth-copied",
        "prod-synced",
        "record-removed",
        "snapshot-post",
        "code",
        "undoing",
      ];
      await pool(steps, 3, (s) => s, async (step) => {
        const env = await scratch.copyEnv(template);
        const extra: Record<string, string> = {};
        if (step === "undoing") extra.GOV_UV = await failingNextProdSync(scratch, flag);
        await killAt(env, ["node", "remove", "good"], `remove:${step}`, extra);
        const notes = await recoverWith(env, ["node", "list", "--json"]);
        const reg = await readJson(join(env, "state/plugins.json"));
        const finished = ["prod-synced", "record-removed", "snapshot-post", "code"].includes(step);
        if (finished) {
          assertMatch(notes, /finished the interrupted removal/);
          assertEquals(Object.keys(reg.plugins), ["tq"]);
          const freeze = await prodFreeze(env);
          assertTrue(!freeze.includes("requests==2.32.3"));
          assertTrue(await exists(join(env, "ComfyUI/custom_nodes/good.disabled")));
          assertTrue(!(await exists(join(env, "ComfyUI/custom_nodes/good"))));
          const last = (await snapshotIndex(env)).at(-1);
          assertEquals(last.reason, "post-remove");
          assertEquals(await snapshotFiles(env, last.id), await truthFiles(env));
        } else {
          assertMatch(notes, /undid the interrupted removal of custom node good/);
          assertEquals(await truthFiles(env), truth0);
          assertEquals(await prodFreeze(env), freeze0);
          assertTrue(await exists(join(env, "ComfyUI/custom_nodes/good/__init__.py")));
        }
        await assertConsistent(env);
      });
    });

    await t.step("rollback", async () => {
      const steps = ["begun", "snapshot-pre", "truth-restored", "prod-synced", "undoing"];
      await pool(steps, 3, (s) => s, async (step) => {
        const env = await scratch.copyEnv(template);
        const extra: Record<string, string> = {};
        if (step === "undoing") extra.GOV_UV = await failingNextProdSync(scratch, flag);
        await killAt(env, ["rollback", initSnap], `rollback:${step}`, extra);
        const notes = await recoverWith(env, ["snapshot", "list", "--json"]);
        if (step === "prod-synced") {
          assertMatch(notes, /finished the interrupted rollback/);
          assertEquals(await truthFiles(env), await snapshotFiles(env, initSnap));
          assertTrue(!(await prodFreeze(env)).includes("requests==2.32.3"));
          // good is not registered in the init snapshot: its code is parked.
          assertTrue(await exists(join(env, "ComfyUI/custom_nodes/good.disabled")));
        } else {
          assertMatch(notes, /undid the interrupted rollback/);
          assertEquals(await truthFiles(env), truth0);
          assertEquals(await prodFreeze(env), freeze0);
        }
        await assertConsistent(env);
      });
    });

    await t.step("node add", async () => {
      await pool(["begun", "cloned", "placed"], 3, (s) => s, async (step) => {
        const env = await scratch.copyEnv(template);
        await killAt(env, ["node", "add", "late", join(repos, "late")], `node-add:${step}`);
        const notes = await recoverWith(env, ["node", "list", "--json"]);
        assertMatch(notes, /undid interrupted `gov node add late`/);
        const reg = await readJson(join(env, "state/plugins.json"));
        assertTrue(!("late" in reg.plugins));
        assertTrue(!(await exists(join(env, "ComfyUI/custom_nodes/late"))));
        const leftovers = [...Deno.readDirSync(join(env, "ComfyUI"))].filter((e) =>
          e.name.startsWith(".gov-clone-")
        );
        assertEquals(leftovers, []);
        assertEquals(await truthFiles(env), truth0);
        await assertConsistent(env);
        // And the same node can be added normally afterwards.
        assertEquals((await govIn(env, ["node", "add", "late", join(repos, "late")])).code, 0);
      });
    });

    await t.step("tx run killed while ComfyUI is test-starting", async () => {
      const env = await scratch.copyEnv(template);
      const state = await scratch.dir("fake-state");
      const child = spawnGov(["tx", "run", "tq", "--timeout", "120", "--env-dir", env], {
        env: await uvEnv({ FAKE_COMFYUI_HANG: "1", FAKE_COMFYUI_STATE_DIR: state }),
      });
      let comfyPid = 0;
      try {
        const started = await waitFor(async () => {
          try {
            const line = (await Deno.readTextFile(join(state, "starts.jsonl"))).trim();
            comfyPid = JSON.parse(line.split("\n")[0]).pid;
            return comfyPid > 0;
          } catch {
            return false;
          }
        }, 60_000);
        assertTrue(started, "ComfyUI test start never began");
        child.kill("SIGKILL");
        await child.output();
        // The orphan guard ends the ComfyUI that gov can no longer stop (grace 5 s).
        assertTrue(
          await waitFor(() => !isPidAlive(comfyPid), 15_000),
          `test-started ComfyUI ${comfyPid} outlived the SIGKILLed gov`,
        );
      } finally {
        // Only when the assertion above failed: do not leak the process into other tests.
        if (comfyPid && isPidAlive(comfyPid)) {
          try {
            Deno.kill(-comfyPid, "SIGKILL");
          } catch { /* gone */ }
          signalPid(comfyPid, "SIGKILL");
          await waitFor(() => !isPidAlive(comfyPid), 10_000);
        }
      }
      const list = await govIn(env, ["tx", "list", "--json"]);
      assertEquals(list.code, 0, list.stderr);
      assertMatch(list.stderr, /interrupted during its test run; marked failed/);
      const txs = JSON.parse(list.stdout);
      const tx = await readJson(join(env, "state/transactions", `${txs.at(-1).txid}.json`));
      assertEquals(tx.status, "failed");
      assertMatch(tx.error, /interrupted/);
      assertEquals(await truthFiles(env), truth0);
      await assertConsistent(env);
      // Its candidate can be cleaned up like any other.
      assertEquals((await govIn(env, ["tx", "abort", tx.txid])).code, 0);
    });
  } finally {
    await scratch.close();
  }
});
