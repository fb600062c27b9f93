/**
 * Crash safety of `gov node remove`: SIGKILLed right after each journaled step. Once
 * `.venv-prod` was synced without the node the next command finishes the removal; before
 * that (or while undoing a failed one) it undoes it.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { CrashTemplate, killAt, recoverWith } from "./crash_helpers.ts";
import {
  assertConsistent,
  exists,
  prodFreeze,
  readJson,
  snapshotFiles,
  snapshotIndex,
  truthFiles,
} from "./helpers.ts";

const crash = new CrashTemplate();

/** Kills `gov node remove good` after `step` on a fresh copy; returns it and the notes. */
async function killRemove(step: string) {
  const env = await crash.copy();
  const extra = step === "undoing" ? await crash.failingProdSync() : {};
  await killAt(env, ["node", "remove", "good"], `remove:${step}`, extra);
  const notes = await recoverWith(env, ["node", "list", "--json"]);
  return { env, notes };
}

for (const step of ["prod-synced", "record-removed", "snapshot-post", "code"]) {
  Deno.test(
    `node remove killed at ${step} (production already synced) is finished by the next command`,
    async () => {
      const { env, notes } = await killRemove(step);
      const reg = await readJson(join(env, "state/plugins.json"));
      assertMatch(notes, /finished the interrupted removal/);
      assertEquals(Object.keys(reg.plugins), ["tq"]);
      const freeze = await prodFreeze(env);
      assertTrue(!freeze.includes("requests==2.32.3"));
      assertTrue(await exists(join(env, "ComfyUI/custom_nodes/good.disabled")));
      assertTrue(!(await exists(join(env, "ComfyUI/custom_nodes/good"))));
      const last = (await snapshotIndex(env)).at(-1);
      assertEquals(last.reason, "post-remove");
      assertEquals(await snapshotFiles(env, last.id), await truthFiles(env));
      await assertConsistent(env);
    },
  );
}

for (const step of ["begun", "snapshot-pre", "locked", "truth-copied", "undoing"]) {
  Deno.test(
    `node remove killed at ${step} (before production synced) is undone by the next command`,
    async () => {
      const { truth0, freeze0 } = await crash.fixture();
      const { env, notes } = await killRemove(step);
      assertMatch(notes, /undid the interrupted removal of custom node good/);
      assertEquals(await truthFiles(env), truth0);
      assertEquals(await prodFreeze(env), freeze0);
      assertTrue(await exists(join(env, "ComfyUI/custom_nodes/good/__init__.py")));
      await assertConsistent(env);
    },
  );
}
