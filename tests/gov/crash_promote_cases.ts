/**
 * The crash cases of `gov tx promote`, shared by crash_promote_test.ts (killed before the
 * truth files moved, or after the smoke test passed) and crash_promote_undo_test.ts (killed
 * in between, or while undoing): one function per outcome, each on its own template copy.
 *
 * @module
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { type CrashTemplate, killAt, recoverWith } from "./crash_helpers.ts";
import {
  assertConsistent,
  exists,
  govIn,
  prodFreeze,
  readJson,
  snapshotFiles,
  snapshotIndex,
  truthFiles,
} from "./helpers.ts";

/** Promote steps after which nothing had changed yet. */
export const UNTOUCHED_STEPS = ["begun", "snapshot-pre", "locked"];
/** Promote steps after which recovery finishes the promotion. */
export const FINISHED_STEPS = ["smoke-passed", "plugins-updated", "snapshot-post"];
/** Promote steps after which recovery undoes the promotion. */
export const UNDONE_STEPS = ["truth-copied", "prod-synced", "undoing"];

/** Kills `gov tx promote` of tq after `step` on a fresh copy; returns it and the notes. */
async function killPromote(crash: CrashTemplate, step: string) {
  const { tqTx } = await crash.fixture();
  const env = await crash.copy();
  // The undo path only runs after a failure: make the prod sync fail first.
  const extra = step === "undoing" ? await crash.failingProdSync() : {};
  await killAt(env, ["tx", "promote", tqTx], `promote:${step}`, extra);
  const notes = await recoverWith(env, ["tx", "list", "--json"]);
  const tx = await readJson(join(env, "state/transactions", `${tqTx}.json`));
  return { env, notes, tx };
}

/** The environment is consistent and usable afterwards: a fresh command runs normally. */
async function assertUsable(env: string): Promise<void> {
  await assertConsistent(env);
  const again = await govIn(env, ["tx", "list"]);
  assertEquals(again.code, 0);
  assertTrue(!again.stderr.includes("recovery"));
}

/**
 * Killed before the truth files moved: nothing changed, and the transaction is promotable
 * again as it was, without a resolve.
 */
export async function promoteKilledUntouched(crash: CrashTemplate, step: string) {
  const { tqTx, truth0, freeze0 } = await crash.fixture();
  const { env, notes, tx } = await killPromote(crash, step);
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
  await assertUsable(env);
}

/** Killed after the smoke test passed: the next command finishes the promotion. */
export async function promoteKilledFinished(crash: CrashTemplate, step: string) {
  const { tqTx } = await crash.fixture();
  const { env, notes, tx } = await killPromote(crash, step);
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
  await assertUsable(env);
}

/** Killed after the truth files moved but before the smoke test passed: undone. */
export async function promoteKilledUndone(crash: CrashTemplate, step: string) {
  const { truth0, freeze0 } = await crash.fixture();
  const { env, notes, tx } = await killPromote(crash, step);
  assertMatch(notes, /undid the interrupted promotion/);
  assertEquals(tx.status, "promote_failed");
  assertMatch(tx.error, /interrupted|injected/);
  assertEquals(await truthFiles(env), truth0);
  assertEquals(await prodFreeze(env), freeze0);
  await assertUsable(env);
}
