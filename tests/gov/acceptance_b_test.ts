/**
 * Seed 003 §6.3 B (promote/resolve): promote success, promote conflict naming both custom
 * nodes, resolve with pins (flags and the interactive prompt), core gate.
 *
 * Each test works on its own copy of a template environment: `base` (five nodes
 * registered) or `rivals` (alpha promoted, beta's run completed: promoting beta conflicts).
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertNotMatch, assertTrue } from "../helpers/assert.ts";
import { GOV_SCRIPT } from "../helpers/gov.ts";
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

const repos = { dir: "" };
const ids = { alpha: "", beta: "" };

const base = new TemplateEnv(async (scratch: Scratch) => {
  repos.dir = await scratch.dir("repos");
  await makeNodeRepo(repos.dir, "good", ["requests"], { imports: ["requests"] });
  await makeNodeRepo(repos.dir, "alpha", ["conflict-a"], { imports: ["conflict_a"] });
  await makeNodeRepo(repos.dir, "beta", ["conflict-b"], { imports: ["conflict_b"] });
  await makeNodeRepo(repos.dir, "oldnp", ["needs-numpy1"]);
  await makeNodeRepo(repos.dir, "newtorch", ["needs-torch231"]);
  await makeNodeRepo(repos.dir, "newnp", ["needs-numpy2"]);
  await makeNodeRepo(repos.dir, "sc24", ["sortedcontainers==2.4.0"]);
  const env = await initEnv(scratch);
  for (const id of ["good", "alpha", "beta", "oldnp", "newtorch"]) {
    assertEquals((await govIn(env, ["node", "add", id, join(repos.dir, id)])).code, 0);
  }
  return env;
});

const rivals = new TemplateEnv(async (scratch: Scratch) => {
  const env = await scratch.copyEnv(await base.env());
  const a = await runTx(env, "alpha");
  const b = await runTx(env, "beta");
  assertEquals([a.status, b.status], ["completed", "completed"]);
  assertEquals((await govIn(env, ["tx", "promote", a.txid])).code, 0);
  [ids.alpha, ids.beta] = [a.txid, b.txid];
  return env;
});

async function runTx(env: string, id: string) {
  const r = await govIn(env, ["tx", "run", id, "--json"]);
  return JSON.parse(r.stdout);
}

/** A copy of `rivals` where promoting beta has met the conflict (needs_resolution). */
async function conflicted(): Promise<{ env: string; betaTx: string }> {
  const env = await rivals.copy();
  const r = await govIn(env, ["tx", "promote", ids.beta]);
  assertEquals(r.code, 1, r.stderr);
  return { env, betaTx: ids.beta };
}

/** A copy where beta was resolved with two pins and promoted. */
async function pinnedBeta(): Promise<string> {
  const { env, betaTx } = await conflicted();
  const pins = ["--pin", "sortedcontainers==2.4.0", "--pin", "conflict-a==1.0"];
  assertEquals((await govJson(env, ["resolve", betaTx, ...pins])).status, "resolved");
  assertEquals((await govJson(env, ["tx", "promote", betaTx])).status, "promoted");
  return env;
}

/** Runs gov in a real pseudo-terminal (util-linux `script`), typing `input`. */
async function atTerminal(env: string, args: string[], input: string) {
  const q = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
  const cmd = [GOV_SCRIPT, ...args, "--env-dir", env].map(q).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", cmd, "/dev/null"],
    env: { ...(await uvEnv()), NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(input));
  await w.close();
  const out = await child.output();
  return { code: out.code, text: new TextDecoder().decode(out.stdout) };
}

Deno.test("promote writes pre/post snapshots and installs the node's packages, keeping pip", async () => {
  const env = await base.copy();

  const tx = await runTx(env, "good");
  assertEquals(tx.status, "completed");
  const before = await truthFiles(env);
  const snapsBefore = (await snapshotIndex(env)).length;
  const r = await govIn(env, ["tx", "promote", tx.txid, "--json"]);
  assertEquals(r.code, 0, r.stderr);
  const done = JSON.parse(r.stdout);
  assertEquals(done.status, "promoted");
  const snaps = await snapshotIndex(env);
  assertEquals(snaps.length, snapsBefore + 2);
  const [pre, post] = snaps.slice(-2);
  assertEquals([pre.reason, post.reason], ["pre-promote", "post-promote"]);
  assertEquals([pre.ref, post.ref], [tx.txid, tx.txid]);
  assertEquals(done.promotion.pre_snapshot, pre.id);
  assertEquals(done.promotion.post_snapshot, post.id);
  assertEquals(await snapshotFiles(env, pre.id), before);
  assertEquals(await snapshotFiles(env, post.id), await truthFiles(env));
  const freeze = await prodFreeze(env);
  for (const p of tx.diff.added) assertTrue(freeze.includes(p), `${p} not in prod`);
  // The exact sync kept the seeded venv's pip.
  assertTrue(freeze.some((p) => p.startsWith("pip==")), "exact sync removed pip");
  assertMatch(
    await Deno.readTextFile(join(env, "pyproject.toml")),
    /node-good = \[\n\s+"requests",\n\]/,
  );
  const reg = await readJson(join(env, "state/plugins.json"));
  assertEquals(reg.plugins.good.managed_deps, ["requests"]);
  assertEquals(reg.plugins.good.last_txid, tx.txid);
  assertEquals(done.promotion.smoke.code, 0);
  assertEquals(done.promotion.smoke.imported, ["requests"]);
  assertTrue(done.promotion.timings.uv_ms > 0);
  assertTrue(!(await exists(join(env, ".venv-candidate", tx.txid))));
  const status = await govIn(env, ["tx", "promote", tx.txid]);
  assertEquals(status.code, 2);
  assertMatch(status.stderr, /is promoted; it cannot be promoted/);
});

Deno.test("promoting a node that conflicts with another: needs_resolution, both nodes named", async () => {
  const env = await rivals.copy();
  const b = { txid: ids.beta };
  const before = await truthFiles(env);
  const freezeBefore = await prodFreeze(env);
  const snapsBefore = await snapshotIndex(env);
  const r = await govIn(env, ["tx", "promote", b.txid]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /dependency conflict between custom nodes alpha, beta/);
  assertMatch(r.stderr, /gov resolve/);
  const tx = await readJson(join(env, "state/transactions", `${b.txid}.json`));
  assertEquals(tx.status, "needs_resolution");
  const report = await readJson(join(env, "state/conflicts", `${b.txid}.json`));
  assertEquals(report.nodes, ["alpha", "beta"]);
  assertEquals(report.groups, ["node-alpha", "node-beta"]);
  assertEquals(report.stage, "tx promote");
  assertMatch(report.raw, /No solution found when resolving dependencies/);
  assertMatch(report.raw, /:node-alpha/);
  assertTrue(report.packages.includes("sortedcontainers"));
  assertEquals(tx.conflict_report.path, join(env, "state/conflicts", `${b.txid}.json`));
  // Production did not move, and no useless snapshot was kept.
  assertEquals(await truthFiles(env), before);
  assertEquals(await prodFreeze(env), freezeBefore);
  assertEquals(await snapshotIndex(env), snapsBefore);
});

Deno.test("gov killed right after a conflict is journaled: the next command records it", async () => {
  const copy = await rivals.copy();
  const b = { txid: ids.beta };
  const truth = await truthFiles(copy);
  const snaps = await snapshotIndex(copy);
  const k = await govIn(copy, ["tx", "promote", b.txid], { GOV_FAULT: "promote:conflict" });
  assertEquals(k.code, 137);
  const rec = await govIn(copy, ["tx", "list"]);
  assertEquals(rec.code, 0, rec.stderr);
  assertMatch(rec.stderr, /recovery: recorded the dependency conflict/);
  const tx = await readJson(join(copy, "state/transactions", `${b.txid}.json`));
  assertEquals(tx.status, "needs_resolution");
  assertEquals(tx.conflict_report.nodes, ["alpha", "beta"]);
  assertEquals(await truthFiles(copy), truth);
  assertEquals(await snapshotIndex(copy), snaps);
  await assertConsistent(copy);
});

Deno.test("resolve without pins off a terminal, or with a malformed pin, is a usage error", async () => {
  const { env, betaTx } = await conflicted();

  const r = await govIn(env, ["resolve", betaTx]);
  assertEquals(r.code, 2);
  assertMatch(r.stderr, /no --pin given and stdin is not a terminal/);
  const bad = await govIn(env, ["resolve", betaTx, "--pin", "sortedcontainers>=2"]);
  assertEquals(bad.code, 2);
  assertMatch(bad.stderr, /invalid pin 'sortedcontainers>=2'/);
});

Deno.test("resolve with a pin to a version that does not exist keeps needs_resolution and says so", async () => {
  const { env, betaTx } = await conflicted();
  const reportBefore = await readJson(join(env, "state/conflicts", `${betaTx}.json`));

  const r = await govIn(env, ["resolve", betaTx, "--pin", "conflict-a==9.0"]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /no version of conflict-a/i);
  assertNotMatch(r.stderr, /conflict between custom nodes/);
  const tx = await readJson(join(env, "state/transactions", `${betaTx}.json`));
  assertEquals(tx.status, "needs_resolution");
  assertEquals(tx.resolution_pins, []);
  // Not a conflict: the report of the real conflict stays as it was.
  assertEquals(await readJson(join(env, "state/conflicts", `${betaTx}.json`)), reportBefore);
});

Deno.test("resolve at a terminal prompt takes pins, refusing a bad line and a promoted tx", async () => {
  const { env, betaTx } = await conflicted();
  const promotedTx = ids.alpha;

  // A real pseudo-terminal (util-linux `script`): the conflict is shown, a bad line is
  // refused and asked again, an empty line ends the pins.
  const out = await atTerminal(env, ["resolve", betaTx], "not a pin\nsortedcontainers==2.4.0\n\n");
  const text = out.text;
  assertEquals(out.code, 0, text);
  assertMatch(text, /conflict between custom nodes alpha, beta/);
  assertMatch(text, /pin \(package==version, empty line to finish\)/);
  assertMatch(text, /invalid pin 'not a pin'/);
  assertMatch(text, /resolved with sortedcontainers==2\.4\.0/);
  const tx = await readJson(join(env, "state/transactions", `${betaTx}.json`));
  assertEquals(tx.status, "resolved");
  assertEquals(tx.resolution_pins, ["sortedcontainers==2.4.0"]);
  // A transaction resolve does not apply to is refused before any pin is asked for.
  const refused = await atTerminal(env, ["resolve", promotedTx], "numpy==1.26.4\n\n");
  assertEquals(refused.code, 2, refused.text);
  assertMatch(refused.text, /is promoted; only needs_resolution, promote_failed, resolved/);
  assertNotMatch(refused.text, /pin \(package==version/);
});

Deno.test("another pin is added to the kept ones and promote installs with both overrides", async () => {
  const { env, betaTx } = await conflicted();
  const first = await govJson(env, ["resolve", betaTx, "--pin", "sortedcontainers==2.4.0"]);
  assertEquals(first.resolution_pins, ["sortedcontainers==2.4.0"]);

  const r = await govJson(env, ["resolve", betaTx, "--pin", "conflict-a==1.0"]);
  assertEquals(r.status, "resolved");
  assertEquals(r.resolution_pins, ["sortedcontainers==2.4.0", "conflict-a==1.0"]);
  const p = await govIn(env, ["tx", "promote", betaTx, "--json"]);
  assertEquals(p.code, 0, p.stderr);
  const py = await Deno.readTextFile(join(env, "pyproject.toml"));
  assertMatch(
    py,
    /override-dependencies = \[\n\s+"sortedcontainers==2\.4\.0",\n\s+"conflict-a==1\.0",\n\]/,
  );
  const freeze = await prodFreeze(env);
  assertTrue(freeze.includes("sortedcontainers==2.4.0"));
  assertTrue(freeze.includes("conflict-a==1.0") && freeze.includes("conflict-b==1.0"));
  const lock = await Deno.readTextFile(join(env, "uv.lock"));
  assertMatch(lock, /\[manifest\]\noverrides = /);
});

Deno.test("promote refuses a lock that moves numpy without --approve-core, and changes nothing", async () => {
  const env = await base.copy();

  const tx = await runTx(env, "oldnp");
  assertEquals(tx.status, "completed");
  assertEquals(tx.core_impact, ["numpy"]);
  assertEquals(tx.diff.changed, [{ name: "numpy", from: "2.1.0", to: "1.26.4" }]);
  const before = await truthFiles(env);
  const freezeBefore = await prodFreeze(env);
  const snaps = await snapshotIndex(env);
  const r = await govIn(env, ["tx", "promote", tx.txid]);
  assertEquals(r.code, 2);
  assertMatch(r.stderr, /changes core packages: numpy; nothing was changed/);
  assertMatch(r.stderr, /--approve-core/);
  assertEquals(await truthFiles(env), before);
  assertEquals(await prodFreeze(env), freezeBefore);
  assertEquals(await snapshotIndex(env), snaps);
  assertEquals(
    (await readJson(join(env, "state/transactions", `${tx.txid}.json`))).status,
    "completed",
  );
  const ok = await govJson(env, ["tx", "promote", tx.txid, "--approve-core"]);
  assertEquals(ok.status, "promoted");
  assertEquals(ok.promotion.approve_core, true);
  assertTrue((await prodFreeze(env)).includes("numpy==1.26.4"));
});

/** A copy of `base` where node newtorch's run conflicted with the base's torch==2.1.0. */
async function torchConflict(): Promise<{ env: string; txid: string }> {
  const env = await base.copy();
  const r = await govIn(env, ["tx", "run", "newtorch", "--json"]);
  assertEquals(r.code, 1);
  return { env, txid: JSON.parse(r.stdout).txid };
}

/** {@linkcode torchConflict} resolved by a pin that moves torch itself. */
async function torchPinned(): Promise<{ env: string; txid: string }> {
  const { env, txid } = await torchConflict();
  // An override replaces the base's torch==2.1.0. The test run never touched torch, yet the
  // core gate must still hold.
  const res = await govJson(env, ["resolve", txid, "--pin", "torch==2.3.1"]);
  assertEquals(res.status, "resolved");
  assertEquals(res.core_impact, ["torch"]);
  assertEquals(res.promotion_plan.lock_diff.changed, [
    { name: "torch", from: "2.1.0", to: "2.3.1" },
  ]);
  return { env, txid };
}

Deno.test("a conflict with the base requirements names the node and the base", async () => {
  const { env, txid } = await torchConflict();
  const tx = await readJson(join(env, "state/transactions", `${txid}.json`));
  assertEquals(tx.status, "needs_resolution");
  const report = await readJson(join(env, "state/conflicts", `${txid}.json`));
  assertEquals(report.nodes, ["newtorch"]);
  assertEquals(report.involves_base, true);
  assertTrue(report.packages.includes("torch"));
  assertEquals(report.stage, "tx run");
});

Deno.test("promote refuses a lock that moves torch without --approve-core", async () => {
  const { env, txid } = await torchPinned();
  const before = await truthFiles(env);
  const freezeBefore = await prodFreeze(env);
  const snaps = await snapshotIndex(env);
  const refused = await govIn(env, ["tx", "promote", txid]);
  assertEquals(refused.code, 2);
  assertMatch(refused.stderr, /changes core packages: torch; nothing was changed/);
  assertMatch(refused.stderr, /--approve-core/);
  assertEquals(await truthFiles(env), before);
  assertEquals(await prodFreeze(env), freezeBefore);
  assertEquals(await snapshotIndex(env), snaps);
  await assertConsistent(env);
});

Deno.test("the core gate checks the lock itself when the record does not list the change", async () => {
  const { env, txid } = await torchPinned();
  const before = await truthFiles(env);
  const freezeBefore = await prodFreeze(env);
  const snaps = await snapshotIndex(env);
  // A record that does not list the change (made before the truth or its pins moved) is
  // caught on the lock itself, before production is touched.
  const file = join(env, "state/transactions", `${txid}.json`);
  await Deno.writeTextFile(
    file,
    JSON.stringify({ ...(await readJson(file)), core_impact: [] }, null, 2),
  );
  const caught = await govIn(env, ["tx", "promote", txid]);
  assertEquals(caught.code, 2, caught.stderr);
  assertMatch(
    caught.stderr,
    /would change core packages in production: torch 2\.1\.0 -> 2\.3\.1; nothing was changed/,
  );
  assertMatch(caught.stderr, /--approve-core/);
  const after = await readJson(file);
  assertEquals(after.status, "resolved");
  assertEquals(after.core_impact, ["torch"]);
  assertEquals(after.promotion.result, "core_gate");
  assertEquals(await truthFiles(env), before);
  assertEquals(await prodFreeze(env), freezeBefore);
  assertEquals(await snapshotIndex(env), snaps);
  await assertConsistent(env);
});

Deno.test("a candidate that breaks a settled node fails its run", async () => {
  const env = await base.copy();
  const old = await runTx(env, "oldnp");
  const approved = await govJson(env, ["tx", "promote", old.txid, "--approve-core"]);
  assertEquals(approved.status, "promoted");

  // A node without requirements of its own that only works with numpy 1.x (what numpy 2
  // did to half of ComfyUI's nodes) is settled: a transaction breaking it fails.
  const rm = await govIn(env, ["node", "remove", "oldnp"]);
  assertEquals(rm.code, 0, rm.stderr);
  assertTrue((await prodFreeze(env)).includes("numpy==1.26.4"));
  await Deno.writeTextFile(
    join(env, "ComfyUI/custom_nodes/np1only.py"),
    "import numpy\nassert numpy.__version__.startswith('1.'), 'needs numpy 1'\n" +
      "NODE_CLASS_MAPPINGS = {}\n",
  );
  assertEquals((await govIn(env, ["node", "add", "newnp", join(repos.dir, "newnp")])).code, 0);
  const r = await govIn(env, ["tx", "run", "newnp", "--json"]);
  assertEquals(r.code, 1);
  const tx = JSON.parse(r.stdout);
  assertEquals(tx.status, "failed");
  assertEquals(tx.core_impact, ["numpy"]);
  assertEquals(tx.run.outcome, "came-up");
  assertEquals(tx.run.import_failures, ["np1only"]);
  assertMatch(tx.error, /custom node import failed: np1only/);
});

Deno.test("node remove keeps the pins a later promotion still needs", async () => {
  const env = await pinnedBeta();

  const reg = await readJson(join(env, "state/plugins.json"));
  assertEquals(reg.plugins.beta.pins, ["sortedcontainers==2.4.0", "conflict-a==1.0"]);
  assertTrue((await prodFreeze(env)).includes("sortedcontainers==2.4.0"));
  // On a copy, a node promoted since locks only with beta's pin: the pins stay.
  const copy = env;
  assertEquals((await govIn(copy, ["node", "add", "sc24", join(repos.dir, "sc24")])).code, 0);
  const sc = await govJson(copy, ["tx", "run", "sc24"]);
  assertEquals((await govJson(copy, ["tx", "promote", sc.txid])).status, "promoted");
  const kept = await govJson(copy, ["node", "remove", "beta"]);
  assertEquals(kept.kept_pins, ["sortedcontainers", "conflict-a"]);
  assertEquals(kept.dropped_pins, []);
  assertMatch(
    await Deno.readTextFile(join(copy, "pyproject.toml")),
    /sortedcontainers==2\.4\.0/,
  );
  assertTrue((await prodFreeze(copy)).includes("sortedcontainers==2.4.0"));
  await assertConsistent(copy);
});

Deno.test("node remove drops the pins only its promotion needed", async () => {
  const env = await pinnedBeta();
  // Here nothing else needs them: alpha gets the sortedcontainers it asked for back.
  const r = await govJson(env, ["node", "remove", "beta"]);
  assertEquals(r.dropped_pins, ["sortedcontainers", "conflict-a"]);
  assertEquals(r.kept_pins, []);
  const py = await Deno.readTextFile(join(env, "pyproject.toml"));
  assertTrue(!py.includes("override-dependencies"), py);
  const freeze = await prodFreeze(env);
  assertTrue(freeze.includes("sortedcontainers==2.3.0"), freeze.join(" "));
  assertTrue(!freeze.some((p) => p.startsWith("conflict-b==")));
  await assertConsistent(env);
});
