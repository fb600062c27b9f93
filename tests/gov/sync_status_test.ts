/**
 * The supervisor's entry point `syncEnvironment` (fast no-op when in sync, a real
 * `uv sync --locked --all-groups` when `.venv-prod` drifted, nothing for a host-managed
 * Python, recovery first) and `environmentStatus`. Each test works on its own copy of one
 * template environment.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { REPO_ROOT } from "../helpers/paths.ts";
import { runProcess } from "../../src/process/run.ts";
import { environmentStatus } from "../../src/gov/mod.ts";
import { loadEnvironment } from "../../src/workspace/environment.ts";
import {
  govIn,
  govJson,
  initEnv,
  makeNodeRepo,
  prodFreeze,
  readJson,
  type Scratch,
  snapshotIndex,
  TemplateEnv,
  truthFiles,
  UV_BIN,
  uvEnv,
} from "./helpers.ts";

async function probe(
  env: string,
  extra: Record<string, string> = {},
): Promise<{ ok: boolean; steps: string[]; error?: string }> {
  const r = await runProcess(Deno.execPath(), [
    "run",
    "-q",
    "-P=gov",
    "--config",
    join(REPO_ROOT, "deno.json"),
    join(REPO_ROOT, "tests/gov/sync_probe.ts"),
    env,
  ], { env: await uvEnv(extra), timeoutMs: 120_000 });
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const gopts = { getenv: (n: string) => Deno.env.get(n) };

const template = new TemplateEnv((scratch: Scratch) => initEnv(scratch));

Deno.test("in sync: returns without starting uv at all", async () => {
  const env = await template.copy();
  const r = await probe(env, { GOV_UV: join(template.scratch.root, "no-uv-here") });
  assertEquals(r, { ok: true, steps: [".venv-prod in sync"] });
  const s = await environmentStatus(loadEnvironment(env), gopts);
  assertEquals(s.initialised, true);
  assertEquals(s.prod.in_sync, true);
  assertEquals(s.prod.reason, "in sync");
  assertEquals(s.last_snapshot?.reason, "init");
  assertEquals(s.snapshots, 1);
  assertEquals(s.open_transactions, []);
  assertEquals(s.interrupted, null);
  assertEquals(s.lock.held, false);
  assertMatch(s.truth.lock.sha256 ?? "", /^[0-9a-f]{64}$/);
});

Deno.test("drift outside gov: status says so, sync repairs it", async () => {
  const env = await template.copy();
  const python = join(env, ".venv-prod/bin/python");
  const un = await runProcess(UV_BIN, ["pip", "uninstall", "--python", python, "pillow"], {
    env: await uvEnv(),
  });
  assertEquals(un.code, 0, un.stderr);
  assertTrue(!(await prodFreeze(env)).includes("pillow==10.4.0"));
  const s = await environmentStatus(loadEnvironment(env), gopts);
  assertEquals(s.prod.in_sync, false);
  assertEquals(s.prod.reason, "packages were installed or removed outside gov");
  const r = await probe(env);
  assertEquals(r.ok, true, r.error);
  assertEquals(r.steps, ["uv sync .venv-prod"]);
  assertTrue((await prodFreeze(env)).includes("pillow==10.4.0"));
  assertEquals((await environmentStatus(loadEnvironment(env), gopts)).prod.in_sync, true);
});

Deno.test("a .venv-prod whose creation was cut short is rebuilt by sync", async () => {
  const env = await template.copy();
  // A .venv-prod whose creation was cut short (no interpreter yet) is rebuilt.
  await Deno.remove(join(env, ".venv-prod/bin/python"));
  const again = await probe(env);
  assertEquals(again.ok, true, again.error);
  assertEquals(again.steps, ["uv venv .venv-prod", "uv sync .venv-prod"]);
  assertTrue((await prodFreeze(env)).includes("pillow==10.4.0"));
});

Deno.test("sync recovers an interrupted operation first", async () => {
  const env = await template.copy();
  const repos = await template.scratch.dir("repos");
  await makeNodeRepo(repos, "tq", ["tqdm"]);
  assertEquals((await govIn(env, ["node", "add", "tq", join(repos, "tq")])).code, 0);
  const tx = await govJson(env, ["tx", "run", "tq"]);
  const before = await truthFiles(env);
  const killed = await govIn(env, ["tx", "promote", tx.txid], {
    GOV_FAULT: "promote:truth-copied",
  });
  assertEquals(killed.code, 137);
  const r = await probe(env);
  assertEquals(r.ok, true, r.error);
  assertMatch(r.steps.join("\n"), /recovery: undid the interrupted promotion/);
  assertEquals(await truthFiles(env), before);
  assertEquals(
    (await readJson(join(env, "state/transactions", `${tx.txid}.json`))).status,
    "promote_failed",
  );
  const s = await environmentStatus(loadEnvironment(env), gopts);
  assertEquals(s.prod.in_sync, true);
  assertEquals(s.nodes, 1);
  assertEquals(s.open_transactions.map((o) => o.status), ["promote_failed"]);
  assertEquals(s.transactions.by_status, { promote_failed: 1 });
  assertEquals(s.last_snapshot?.id, (await snapshotIndex(env)).at(-1).id);
});

Deno.test("host-managed Python: nothing to sync", async () => {
  await template.env();
  const dir = await template.scratch.dir("host");
  await Deno.writeTextFile(join(dir, "config.toml"), '[paths]\npython = "/usr/bin/python3"\n');
  assertEquals(await probe(dir, { GOV_UV: "/nonexistent" }), { ok: true, steps: [] });
  const s = await environmentStatus(loadEnvironment(dir), gopts);
  assertEquals(s.prod.in_sync, null);
  assertEquals(s.prod.host_managed, true);
});

Deno.test("an environment never initialised cannot be synced", async () => {
  await template.env();
  const dir = await template.scratch.dir("bare");
  await Deno.writeTextFile(join(dir, "config.toml"), "");
  const r = await probe(dir);
  assertEquals(r.ok, false);
  assertMatch(r.error ?? "", /is not initialised/);
  const s = await environmentStatus(loadEnvironment(dir), gopts);
  assertEquals(s.initialised, false);
  assertEquals(s.prod.in_sync, false);
});
