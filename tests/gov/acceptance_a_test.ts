/**
 * Seed 003 §6.3 A (batch-1 regression): init, tx run, tx inspect, tx abort, plus init's
 * hard failures and the run outcomes of `gov tx run`.
 *
 * Each test works on its own copy of one freshly initialised template environment and
 * registers the nodes it needs.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertNotMatch, assertTrue } from "../helpers/assert.ts";
import {
  BASE_REQUIREMENTS,
  exists,
  git,
  govIn,
  govJson,
  initEnv,
  installComfyUI,
  makeNodeRepo,
  prodFreeze,
  readJson,
  type Scratch,
  snapshotIndex,
  TemplateEnv,
} from "./helpers.ts";

const TX_FIELDS = [
  "txid",
  "node_id",
  "started_at",
  "ended_at",
  "candidate_env",
  "status",
  "pre_freeze",
  "post_freeze",
  "diff",
  "core_impact",
  "stdout",
  "stderr",
  "run_exit_code",
  "conflict_report",
  "resolution_pins",
  "promotion_plan",
  "promotion",
];

const repos = { dir: "" };

const template = new TemplateEnv(async (scratch: Scratch) => {
  repos.dir = await scratch.dir("repos");
  await makeNodeRepo(repos.dir, "good", ["requests"], { imports: ["requests"] });
  await makeNodeRepo(repos.dir, "broken", ["broken-import"], { imports: ["broken_import"] });
  await makeNodeRepo(repos.dir, "pyproj", ["tqdm"], { pyproject: true });
  await makeNodeRepo(repos.dir, "offline", ["no-such-package-anywhere"]);
  // No requirements: the outcome tests below need a run, not a resolution.
  await makeNodeRepo(repos.dir, "bare", []);
  return await initEnv(scratch);
});

/** A copy of the template with a completed run of node good; returns its txid. */
async function withGoodRun(): Promise<{ env: string; txid: string }> {
  const env = await template.copy();
  assertEquals((await govIn(env, ["node", "add", "good", join(repos.dir, "good")])).code, 0);
  const tx = await govJson(env, ["tx", "run", "good"]);
  return { env, txid: tx.txid };
}

Deno.test("init creates the layout, uv.lock and a seeded .venv-prod", async () => {
  const env = await template.copy();

  for (
    const p of [
      "config.toml",
      "pyproject.toml",
      "uv.lock",
      ".venv-prod/bin/python",
      "state/plugins.json",
      "state/snapshots_index.json",
      "state/transactions",
      "state/conflicts",
      "state/logs",
      "snapshots",
    ]
  ) assertTrue(await exists(join(env, p)), `${p} missing`);
  const py = await Deno.readTextFile(join(env, "pyproject.toml"));
  for (const r of BASE_REQUIREMENTS) assertTrue(py.includes(JSON.stringify(r)), r);
  assertMatch(py, /\[dependency-groups\]/);
  const lock = await Deno.readTextFile(join(env, "uv.lock"));
  assertMatch(lock, /^version = 1/m);
  assertMatch(lock, /name = "torch"\nversion = "2\.1\.0"/);
  assertEquals((await snapshotIndex(env)).map((s) => s.reason), ["init"]);
  assertEquals(await readJson(join(env, "state/plugins.json")), { version: 1, plugins: {} });
  // Seeded, so ComfyUI-Manager finds pip in it.
  assertTrue(
    (await prodFreeze(env)).some((p) => p.startsWith("pip==")),
    "no pip in .venv-prod",
  );
});

Deno.test("init again is idempotent and reports the environment in sync", async () => {
  const env = await template.copy();

  const before = await Deno.readTextFile(join(env, "uv.lock"));
  const r = await govJson(env, ["init"]);
  assertEquals(r.already_initialised, true);
  assertEquals(r.prod, "in-sync");
  assertEquals(r.snapshot, null);
  assertEquals(await Deno.readTextFile(join(env, "uv.lock")), before);
  assertEquals((await snapshotIndex(env)).length, 1);
});

Deno.test("init without uv fails hard and creates nothing", async () => {
  const scratch = template.scratch;
  await template.env();

  const dir = join(await scratch.dir("nouv"), "env");
  await installComfyUI(join(dir, "ComfyUI"));
  const r = await govIn(dir, ["init"], { GOV_UV: join(dir, "no-uv-here") });
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /uv not found/);
  assertEquals(r.stdout, "");
  assertTrue(!(await exists(join(dir, "pyproject.toml"))));
  assertTrue(!(await exists(join(dir, "state"))));
});

Deno.test("init whose lock fails reports no success", async () => {
  const scratch = template.scratch;
  await template.env();

  const dir = join(await scratch.dir("badlock"), "env");
  await installComfyUI(join(dir, "ComfyUI"));
  await Deno.writeTextFile(join(dir, "ComfyUI", "requirements.txt"), "torch==9.9.9\n");
  const r = await govIn(dir, ["init"]);
  assertEquals(r.code, 1);
  assertEquals(r.stdout, "");
  assertMatch(r.stderr, /uv lock/);
  assertTrue(!(await exists(join(dir, ".venv-prod"))));
});

Deno.test("tx run writes a transaction with every seed field", async () => {
  const env = await template.copy();

  const add = await govIn(env, ["node", "add", "good", join(repos.dir, "good")]);
  assertEquals(add.code, 0, add.stderr);
  const r = await govIn(env, ["tx", "run", "good", "--timeout", "60", "--json"]);
  assertEquals(r.code, 0, r.stderr);
  const tx = JSON.parse(r.stdout);
  const txid = tx.txid;
  const file = await readJson(join(env, "state/transactions", `${txid}.json`));
  for (const f of TX_FIELDS) assertTrue(f in file, `field ${f} missing`);
  assertEquals(file.status, "completed");
  assertEquals(file.node_id, "good");
  assertEquals(file.run_exit_code, 0);
  assertEquals(file.run.outcome, "came-up");
  assertEquals(file.candidate_env, join(env, ".venv-candidate", txid));
  assertTrue(await exists(join(file.candidate_env, "bin", "python")));
  assertTrue(file.pre_freeze.includes("torch==2.1.0"));
  assertTrue(!file.pre_freeze.some((l: string) => l.startsWith("requests==")));
  assertTrue(file.post_freeze.includes("requests==2.32.3"));
  assertEquals(file.diff.added, [
    "certifi==2024.7.4",
    "charset-normalizer==3.3.2",
    "idna==3.7",
    "requests==2.32.3",
    "urllib3==2.2.2",
  ]);
  assertEquals(file.diff.removed, []);
  assertEquals(file.core_impact, []);
  assertMatch(file.stderr + file.stdout, /To see the GUI go to/);
  // Production is untouched by a transaction run.
  assertNotMatch(await Deno.readTextFile(join(env, "pyproject.toml")), /node-good/);
});

Deno.test("tx inspect is stable and tx list shows the transaction", async () => {
  const { env, txid } = await withGoodRun();

  const a = await govIn(env, ["tx", "inspect", txid]);
  const b = await govIn(env, ["tx", "inspect", txid]);
  assertEquals(a.code, 0, a.stderr);
  assertEquals(a.stdout, b.stdout);
  assertMatch(a.stdout, new RegExp(`transaction ${txid}`));
  assertMatch(a.stdout, /status: +completed/);
  assertMatch(a.stdout, /added: +certifi==2024\.7\.4, .*requests==2\.32\.3/);
  const j1 = await govJson(env, ["tx", "inspect", txid]);
  const j2 = await govJson(env, ["tx", "inspect", txid]);
  assertEquals(j1, j2);
  const list = await govJson(env, ["tx", "list"]);
  assertEquals(list.map((x: { txid: string }) => x.txid), [txid]);
  assertEquals(list[0].status, "completed");
  assertEquals(list[0].added, 5);
});

Deno.test("tx abort removes the candidate venv and marks the status", async () => {
  const { env, txid } = await withGoodRun();

  const r = await govIn(env, ["tx", "abort", txid]);
  assertEquals(r.code, 0, r.stderr);
  assertTrue(!(await exists(join(env, ".venv-candidate", txid))));
  const tx = await readJson(join(env, "state/transactions", `${txid}.json`));
  assertEquals(tx.status, "aborted");
  const again = await govIn(env, ["tx", "promote", txid]);
  assertEquals(again.code, 2);
  assertMatch(again.stderr, /is aborted; it cannot be promoted/);
});

Deno.test("a node whose import fails makes the run fail", async () => {
  const env = await template.copy();
  assertEquals((await govIn(env, ["node", "add", "good", join(repos.dir, "good")])).code, 0);

  await govIn(env, ["node", "add", "broken", join(repos.dir, "broken")]);
  const r = await govIn(env, ["tx", "run", "broken", "--json"]);
  assertEquals(r.code, 1);
  const tx = JSON.parse(r.stdout);
  assertEquals(tx.status, "failed");
  assertEquals(tx.run.import_failures, ["broken"]);
  // good is registered but its requests are not in the truth yet: not its fault here.
  assertEquals(tx.run.ignored_import_failures, ["good"]);
  assertEquals(tx.diff.added, ["broken-import==1.0"]);
  assertMatch(tx.error, /import failed: broken/);
  const log = await Deno.readTextFile(tx.run.log);
  assertMatch(log, /IMPORT FAILED/);
  assertEquals((await govIn(env, ["tx", "abort", tx.txid])).code, 0);
  // Leave the environment importable for the next steps.
  await Deno.remove(join(env, "ComfyUI/custom_nodes/broken"), { recursive: true });
});

Deno.test("a node declaring its requirements in pyproject.toml", async () => {
  const env = await template.copy();

  await govIn(env, ["node", "add", "pyproj", join(repos.dir, "pyproj")]);
  const tx = JSON.parse((await govIn(env, ["tx", "run", "pyproj", "--json"])).stdout);
  assertEquals(tx.status, "completed");
  assertEquals(tx.diff.added, ["tqdm==4.66.4"]);
  assertEquals(tx.promotion_plan.source, "pyproject.toml");
});

Deno.test("missing main.py: run_exit_code 2 and status failed", async () => {
  const env = await template.copy();

  assertEquals((await govIn(env, ["node", "add", "bare", join(repos.dir, "bare")])).code, 0);
  const main = join(env, "ComfyUI", "main.py");
  await Deno.rename(main, main + ".away");
  try {
    const r = await govIn(env, ["tx", "run", "bare", "--json"]);
    assertEquals(r.code, 1);
    const tx = JSON.parse(r.stdout);
    assertEquals(tx.status, "failed");
    assertEquals(tx.run_exit_code, 2);
    assertEquals(tx.run.outcome, "missing-main");
  } finally {
    await Deno.rename(main + ".away", main);
  }
});

Deno.test("ComfyUI crashing at start fails the run with its exit code", async () => {
  const env = await template.copy();
  assertEquals((await govIn(env, ["node", "add", "bare", join(repos.dir, "bare")])).code, 0);

  const r = await govIn(env, ["tx", "run", "bare", "--json"], {
    FAKE_COMFYUI_CRASH_AT_START: "3",
  });
  assertEquals(r.code, 1);
  const tx = JSON.parse(r.stdout);
  assertEquals(tx.status, "failed");
  assertEquals(tx.run_exit_code, 3);
  assertEquals(tx.run.outcome, "exited");
});

Deno.test("ComfyUI never coming up times out with 124", async () => {
  const env = await template.copy();
  assertEquals((await govIn(env, ["node", "add", "bare", join(repos.dir, "bare")])).code, 0);

  const r = await govIn(env, ["tx", "run", "bare", "--timeout", "2", "--json"], {
    FAKE_COMFYUI_HANG: "1",
  });
  assertEquals(r.code, 1);
  const tx = JSON.parse(r.stdout);
  assertEquals(tx.status, "failed");
  assertEquals(tx.run_exit_code, 124);
  assertEquals(tx.run.outcome, "timeout");
});

Deno.test("a package missing offline is an environment error, not a conflict", async () => {
  const env = await template.copy();

  await govIn(env, ["node", "add", "offline", join(repos.dir, "offline")]);
  const r = await govIn(env, ["tx", "run", "offline"]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /could not run in this environment/);
  assertNotMatch(r.stderr, /conflict/);
  // Progress names each step with its time, and a failed uv run shows as failed.
  assertMatch(r.stderr, /✓ uv sync \(candidate, current truth\) \d+(\.\d)?s/);
  assertMatch(r.stderr, /✗ uv add --group node-offline \d+(\.\d)?s/);
  assertNotMatch(r.stderr, /✓ uv add --group node-offline/);
  const list = await govJson(env, ["tx", "list"]);
  const tx = list[list.length - 1];
  assertEquals(tx.status, "failed");
  const conflicts = [...Deno.readDirSync(join(env, "state/conflicts"))];
  assertEquals(conflicts.length, 0);
});

Deno.test("tx run of an unknown node is a usage error", async () => {
  const env = await template.copy();

  const r = await govIn(env, ["tx", "run", "nobody"]);
  assertEquals(r.code, 2);
  assertMatch(r.stderr, /custom node 'nobody' not found/);
});

Deno.test("node list shows registered nodes; node add refuses an existing folder", async () => {
  const env = await template.copy();
  assertEquals((await govIn(env, ["node", "add", "bare", join(repos.dir, "bare")])).code, 0);
  assertEquals((await govIn(env, ["node", "add", "broken", join(repos.dir, "broken")])).code, 0);
  assertEquals((await govIn(env, ["node", "add", "good", join(repos.dir, "good")])).code, 0);
  assertEquals((await govIn(env, ["node", "add", "offline", join(repos.dir, "offline")])).code, 0);
  assertEquals((await govIn(env, ["node", "add", "pyproj", join(repos.dir, "pyproj")])).code, 0);

  const nodes = await govJson(env, ["node", "list"]);
  assertEquals(nodes.map((n: { id: string }) => n.id), [
    "bare",
    "broken",
    "good",
    "offline",
    "pyproj",
  ]);
  const good = nodes.find((n: { id: string }) => n.id === "good");
  assertEquals(good.group, "node-good");
  assertEquals(good.managed_deps, []);
  assertMatch(good.commit, /^[0-9a-f]{40}$/);
  const before = await Deno.readTextFile(join(env, "state/plugins.json"));
  await Deno.mkdir(join(env, "ComfyUI/custom_nodes/taken"));
  const r = await govIn(env, ["node", "add", "taken", join(repos.dir, "good")]);
  assertEquals(r.code, 2);
  assertMatch(r.stderr, /already exists; the registry was not changed/);
  const bad = await govIn(env, ["node", "add", "nowhere", join(repos.dir, "missing-repo")]);
  assertEquals(bad.code, 1);
  assertMatch(bad.stderr, /is not a git repository; nothing was changed/);
  assertTrue(!(await exists(join(env, "ComfyUI/custom_nodes/nowhere"))));
  assertEquals(await Deno.readTextFile(join(env, "state/plugins.json")), before);
});

Deno.test("node add --ref checks out the given commit", async () => {
  const env = await template.copy();
  // A repository of its own: the test commits to it.
  const repo = await makeNodeRepo(await template.scratch.dir("refrepo"), "good", ["requests"]);

  const c1 = await git(["rev-parse", "HEAD"], repo);
  await Deno.writeTextFile(join(repo, "extra.txt"), "x\n");
  await git(["add", "-A"], repo);
  await git(
    ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "two"],
    repo,
  );
  const rec = await govJson(env, ["node", "add", "pinned", repo, "--ref", c1]);
  assertEquals(rec.commit, c1);
  assertEquals(rec.ref, c1);
  assertTrue(!(await exists(join(env, "ComfyUI/custom_nodes/pinned/extra.txt"))));
});
