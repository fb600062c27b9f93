/**
 * The CLI contract of the hardening fixes, on real environments (real uv, offline over the
 * test wheelhouse; the fake ComfyUI): node ids that collide with parked code, a deleted
 * registry, read-only and full state folders, and a half-built `gov init`. The fixes around
 * transactions (dropped requirement lines, links out of a node, what a node folder really
 * holds, interrupted promotions, failed git steps, versions that do not exist) are in
 * hardening_tx_test.ts.
 *
 * Each test works on its own copy of one template environment.
 */
import { join } from "node:path";
import {
  copyTree,
  exists,
  govIn,
  initEnv,
  makeNodeRepo,
  type Scratch,
  TemplateEnv,
  truthFiles,
  UV_BIN,
} from "./helpers.ts";
import { assertEquals, assertMatch, assertNotMatch, assertTrue } from "../helpers/assert.ts";
import { runProcess } from "../../src/process/run.ts";

/** The pinned real uv, also for gov started under a private mount namespace. */
const UV: Record<string, string> = { GOV_UV: UV_BIN };

const run = (env: string, args: string[], extra: Record<string, string> = {}) =>
  govIn(env, args, { ...UV, ...extra });

/** Whether this host lets a test mount inside a private namespace (root with unshare). */
async function canMount(): Promise<boolean> {
  try {
    const r = await runProcess("unshare", ["--mount", "--propagation", "private", "true"]);
    return r.code === 0;
  } catch {
    return false;
  }
}

const PROBE = new URL("./mount_probe.ts", import.meta.url).pathname;

/** Runs gov with `dir` mounted read-only ("ro") or on a full disk ("full"). */
async function govOver(mode: "ro" | "full", dir: string, env: string, args: string[]) {
  const gov = new URL("../../scripts/gov", import.meta.url).pathname;
  const r = await runProcess("unshare", [
    "--mount",
    "--propagation",
    "private",
    "--",
    Deno.execPath(),
    "run",
    "-A",
    PROBE,
    mode,
    dir,
    "--",
    "env",
    "NO_COLOR=1",
    `DENO=${Deno.execPath()}`,
    ...Object.entries(UV).map(([k, v]) => `${k}=${v}`),
    gov,
    ...args,
    "--env-dir",
    env,
  ], { timeoutMs: 120_000 });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

const repos = { plain: "" };

const template = new TemplateEnv(async (scratch: Scratch) => {
  const env = await initEnv(scratch, "", UV);
  repos.plain = await makeNodeRepo(await scratch.dir("repos"), "plain", ["tqdm"]);
  return env;
});

Deno.test("ids ComfyUI skips are refused; parked code is never deleted", async () => {
  const env = await template.copy();
  const plain = repos.plain;
  const before = await truthFiles(env);
  const r = await run(env, ["node", "add", "q.disabled", plain]);
  assertEquals(r.code, 2, r.stderr);
  assertMatch(r.stderr, /invalid custom node id 'q\.disabled'/);
  assertEquals(await truthFiles(env), before);
  assertTrue(!(await exists(join(env, "ComfyUI/custom_nodes/q.disabled"))));
  // Code parked before (by hand, or an earlier removal) survives the next removal.
  const parked = join(env, "ComfyUI/custom_nodes/q.disabled");
  await Deno.mkdir(parked);
  await Deno.writeTextFile(join(parked, "mine.py"), "# someone's code\n");
  assertEquals((await run(env, ["node", "add", "q", plain])).code, 0);
  const rm = await run(env, ["node", "remove", "q"]);
  assertEquals(rm.code, 0, rm.stderr);
  const left: string[] = [];
  for await (const e of Deno.readDir(join(env, "ComfyUI/custom_nodes"))) left.push(e.name);
  const older = left.filter((n) => n.startsWith("q.") && n !== "q.disabled");
  assertEquals(older.length, 1, `parked folders: ${left}`);
  assertTrue(older[0].endsWith(".disabled"));
  assertTrue(await exists(join(env, "ComfyUI/custom_nodes", older[0], "mine.py")));
  assertTrue(await exists(join(parked, "__init__.py")), "q's own code is parked");
});

Deno.test("a deleted plugins.json is an error naming the fix, never rewritten", async () => {
  const env = await template.copy();
  await Deno.remove(join(env, "state/plugins.json"));
  for (const args of [["node", "add", "a", repos.plain], ["init"], ["node", "list"]]) {
    const r = await run(env, args);
    assertEquals(r.code, 2, `gov ${args.join(" ")}: ${r.stderr}`);
    assertMatch(r.stderr, /state\/plugins\.json is missing/);
    assertMatch(r.stderr, /cp \S+\/snapshots\/snap-[^/]+\/plugins\.json \S+plugins\.json/);
    assertNotMatch(r.stderr, /internal error/);
    assertTrue(!(await exists(join(env, "state/plugins.json"))), `${args} wrote one`);
  }
  assertTrue(!(await exists(join(env, "ComfyUI/custom_nodes/a"))));
});

Deno.test("a deleted pyproject.toml is an error naming the fix, never rewritten", async () => {
  // A fresh one from `gov init` would drop every group.
  const env2 = await template.copy();
  await Deno.remove(join(env2, "pyproject.toml"));
  for (const args of [["init"], ["node", "add", "a", repos.plain]]) {
    const r = await run(env2, args);
    assertEquals(r.code, 2, `gov ${args.join(" ")}: ${r.stderr}`);
    assertMatch(r.stderr, /pyproject\.toml is missing, though the environment is initialised/);
    assertMatch(r.stderr, /cp \S+\/snapshots\/snap-[^/]+\/pyproject\.toml /);
    assertTrue(!(await exists(join(env2, "pyproject.toml"))), `${args} wrote one`);
  }
});

/** A copy of the template with node a registered, and its state folder. */
async function withNodeA(): Promise<{ env: string; state: string }> {
  const env = await template.copy();
  assertEquals((await run(env, ["node", "add", "a", repos.plain])).code, 0);
  return { env, state: join(env, "state") };
}

// Without a private mount namespace (root with unshare) read-only and full folders cannot be
// staged: these three are then reported as ignored, not passed.
const mountable = await canMount();

Deno.test({
  name: "read-only commands work on a read-only state folder",
  ignore: !mountable,
  fn: async () => {
    const { env, state } = await withNodeA();
    for (const args of [["status"], ["node", "list"], ["tx", "list"], ["snapshot", "list"]]) {
      const r = await govOver("ro", state, env, args);
      assertEquals(r.code, 0, `gov ${args.join(" ")} on a read-only state:\n${r.stderr}`);
    }
  },
});

Deno.test({
  name: "a change on a read-only state folder says so (EROFS, naming the lock)",
  ignore: !mountable,
  fn: async () => {
    const { env, state } = await withNodeA();
    const r = await govOver("ro", state, env, ["node", "remove", "a"]);
    assertEquals(r.code, 1);
    assertMatch(r.stderr, /read-only \(EROFS\)/);
    assertMatch(r.stderr, new RegExp(`${state}/\\.lock`));
    assertNotMatch(r.stderr, /internal error/);
  },
});

Deno.test({
  name: "a change on a full disk says so (ENOSPC), and changes nothing",
  ignore: !mountable,
  fn: async () => {
    const { env, state } = await withNodeA();
    const before = await truthFiles(env);
    const r = await govOver("full", state, env, ["node", "add", "b", repos.plain]);
    assertEquals(r.code, 1);
    assertMatch(r.stderr, /no space left on the device holding \S+state\S* \(ENOSPC\)/);
    assertNotMatch(r.stderr, /internal error/);
    assertEquals(await truthFiles(env), before);
    assertTrue(!(await exists(join(env, "ComfyUI/custom_nodes/b"))));
  },
});

Deno.test("a failed gov init finishes when re-run with a new requirements file", async () => {
  const templateEnv = await template.env();
  const holder = await template.scratch.dir("init");
  const env = join(holder, "env");
  await copyTree(join(templateEnv, "ComfyUI"), join(holder, "ComfyUI-src"));
  await Deno.mkdir(env);
  await Deno.rename(join(holder, "ComfyUI-src"), join(env, "ComfyUI"));
  const bad = join(holder, "bad.txt");
  const good = join(holder, "good.txt");
  await Deno.writeTextFile(bad, "tqdm==9.9.9\n");
  await Deno.writeTextFile(good, "tqdm\n");
  const first = await run(env, ["init", "--requirements", bad]);
  assertEquals(first.code, 1, first.stderr);
  const again = await run(env, ["init", "--requirements", good]);
  assertEquals(again.code, 0, again.stderr);
  const py = await Deno.readTextFile(join(env, "pyproject.toml"));
  assertMatch(py, /"tqdm"/);
  assertNotMatch(py, /9\.9\.9/);
  assertTrue(await exists(join(env, "uv.lock")));
});
