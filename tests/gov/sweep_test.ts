/**
 * Findings of the repeated review sweep on real environments (real uv offline, the fake
 * ComfyUI): a command refused because of a damaged state file changes nothing, and a
 * missing truth file follows the exit-code rule of every other damaged state file.
 */
import { join } from "node:path";
import { exists, govIn, makeNodeRepo, readJson, TemplateEnv, truthFiles } from "./helpers.ts";
import { initEnv } from "./helpers.ts";
import { assertEquals, assertMatch, assertNotMatch, assertTrue } from "../helpers/assert.ts";

/** An initialised environment with node `a` registered (a dependency group is not needed). */
const template = new TemplateEnv(async (scratch) => {
  const env = await initEnv(scratch);
  const repos = await scratch.dir("repos");
  const repo = await makeNodeRepo(repos, "node-a", ["pillow"]);
  const r = await govIn(env, ["node", "add", "a", repo]);
  assertEquals(r.code, 0, r.stderr);
  return env;
});

/** Every file of the environment but its venvs and git objects, with its content. */
async function stateOf(env: string): Promise<string> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.name.startsWith(".venv") || e.name === ".git" || e.name === "logs") continue;
      const p = join(d, e.name);
      if (e.isDirectory) {
        out.push(`${p}/`);
        await walk(p);
      } else out.push(`${p} ${await Deno.readTextFile(p)}`);
    }
  };
  await walk(env);
  return out.sort().join("\n");
}

Deno.test("node remove refused for an unreadable transaction file has changed nothing", async () => {
  const env = await template.copy();
  await Deno.mkdir(join(env, "state/transactions"), { recursive: true });
  const txFile = join(env, "state/transactions/tx-20260101-000000-000-dead.json");
  await Deno.writeTextFile(txFile, '{"txid": "tx-20260101-000000-000-dead", "status": ');
  const before = await stateOf(env);
  const truth = await truthFiles(env);
  const r = await govIn(env, ["node", "remove", "a"]);
  assertEquals(r.code, 2, r.stderr);
  assertMatch(r.stderr, /tx-20260101-000000-000-dead\.json: is not valid JSON/);
  assertNotMatch(r.stderr, /internal error/);
  // Before, the node was gone from the registry and its code parked by the time the
  // transaction file was read, and the refusal said nothing of it.
  assertEquals(await truthFiles(env), truth);
  assertTrue(await exists(join(env, "ComfyUI/custom_nodes/a")));
  assertTrue(!(await exists(join(env, "state/journal.json"))), "no operation left open");
  assertEquals(await stateOf(env), before);
  assertTrue("a" in (await readJson(join(env, "state/plugins.json"))).plugins);
});

Deno.test("a missing truth file is exit 2 like a corrupt one: nothing changed, the user restores it", async () => {
  const env = await template.copy();
  await Deno.remove(join(env, "state/plugins.json"));
  const before = await stateOf(env);
  for (const args of [["node", "list"], ["node", "remove", "a"], ["tx", "run", "a"]]) {
    const r = await govIn(env, args);
    assertEquals(r.code, 2, `gov ${args.join(" ")}: ${r.stderr}`);
    assertMatch(r.stderr, /plugins\.json is missing, though the environment is initialised/);
    assertEquals(await stateOf(env), before);
  }
});

Deno.test("rollback to a damaged snapshot is refused with exit 2 and changes nothing", async () => {
  const env = await template.copy();
  const snaps: string[] = [];
  for await (const e of Deno.readDir(join(env, "snapshots"))) if (e.isDirectory) snaps.push(e.name);
  const target = snaps.sort()[0];
  await Deno.remove(join(env, "snapshots", target, "pyproject.toml"));
  const before = await stateOf(env);
  const r = await govIn(env, ["rollback", target]);
  // Before, exit 1 ("failed; retrying may succeed") for what only another snapshot fixes.
  assertEquals(r.code, 2, r.stderr);
  assertMatch(r.stderr, new RegExp(`snapshot ${target} is damaged: pyproject\\.toml is missing`));
  assertMatch(r.stderr, /pick another snapshot/);
  assertEquals(await stateOf(env), before);
});
