/**
 * Crash safety of `gov rollback` and `gov node add` (SIGKILLed right after each journaled
 * step), and of a `gov tx run` killed while ComfyUI is test-starting. The next gov command
 * finishes or undoes what was interrupted; the environment stays consistent and usable.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { isPidAlive, signalPid } from "../../src/process/run.ts";
import { spawnGov } from "../helpers/gov.ts";
import { waitFor } from "../helpers/net.ts";
import { CrashTemplate, killAt, recoverWith } from "./crash_helpers.ts";
import {
  assertConsistent,
  exists,
  govIn,
  prodFreeze,
  readJson,
  snapshotFiles,
  truthFiles,
  uvEnv,
} from "./helpers.ts";

const crash = new CrashTemplate();

/** Kills `gov rollback <init snapshot>` after `step` on a fresh copy; returns it and notes. */
async function killRollback(step: string) {
  const { initSnap } = await crash.fixture();
  const env = await crash.copy();
  const extra = step === "undoing" ? await crash.failingProdSync() : {};
  await killAt(env, ["rollback", initSnap], `rollback:${step}`, extra);
  const notes = await recoverWith(env, ["snapshot", "list", "--json"]);
  return { env, notes };
}

Deno.test("rollback killed after production synced is finished by the next command", async () => {
  const { initSnap } = await crash.fixture();
  const { env, notes } = await killRollback("prod-synced");
  assertMatch(notes, /finished the interrupted rollback/);
  assertEquals(await truthFiles(env), await snapshotFiles(env, initSnap));
  assertTrue(!(await prodFreeze(env)).includes("requests==2.32.3"));
  // good is not registered in the init snapshot: its code is parked.
  assertTrue(await exists(join(env, "ComfyUI/custom_nodes/good.disabled")));
  await assertConsistent(env);
});

for (const step of ["begun", "snapshot-pre", "truth-restored", "undoing"]) {
  Deno.test(
    `rollback killed at ${step} (before production synced) is undone by the next command`,
    async () => {
      const { truth0, freeze0 } = await crash.fixture();
      const { env, notes } = await killRollback(step);
      assertMatch(notes, /undid the interrupted rollback/);
      assertEquals(await truthFiles(env), truth0);
      assertEquals(await prodFreeze(env), freeze0);
      await assertConsistent(env);
    },
  );
}

for (const step of ["begun", "cloned", "placed"]) {
  Deno.test(
    `node add killed at ${step} is undone by the next command and can be added again`,
    async () => {
      const { repos, truth0 } = await crash.fixture();
      const env = await crash.copy();
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
    },
  );
}

Deno.test(
  "tx run killed while ComfyUI is test-starting: the orphan ComfyUI ends and the run is marked failed",
  async () => {
    const { truth0 } = await crash.fixture();
    const env = await crash.copy();
    const state = await crash.dir("fake-state");
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
  },
);
