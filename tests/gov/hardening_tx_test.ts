/**
 * The CLI contract of the hardening fixes around transactions, on real environments (real
 * uv, offline over the test wheelhouse; the fake ComfyUI): requirement lines gov drops,
 * links out of a node, what a node folder really holds, an interrupted promotion that
 * changed nothing, failed git steps, and versions that do not exist.
 *
 * Each test works on its own copy of one template environment.
 */
import { join } from "node:path";
import {
  exists,
  git,
  govIn,
  govJson,
  initEnv,
  lastTxid,
  makeNodeRepo,
  readJson,
  type Scratch,
  TemplateEnv,
  truthFiles,
  UV_BIN,
} from "./helpers.ts";
import { assertEquals, assertMatch, assertNotMatch, assertTrue } from "../helpers/assert.ts";

/** The pinned real uv. */
const UV: Record<string, string> = { GOV_UV: UV_BIN };

const run = (env: string, args: string[], extra: Record<string, string> = {}) =>
  govIn(env, args, { ...UV, ...extra });
const json = (env: string, args: string[]) => govJson(env, args, UV);

const repos = { plain: "", incl: "" };

const template = new TemplateEnv(async (scratch: Scratch) => {
  const env = await initEnv(scratch, "", UV);
  const dir = await scratch.dir("repos");
  repos.plain = await makeNodeRepo(dir, "plain", ["tqdm"]);
  // A node whose requirements.txt includes another file and carries lines gov drops.
  repos.incl = await makeNodeRepo(dir, "incl", []);
  await Deno.writeTextFile(
    join(repos.incl, "requirements.txt"),
    "-r base.txt\n--index-url https://example.invalid/simple\n-e .\n",
  );
  await Deno.writeTextFile(join(repos.incl, "base.txt"), "tqdm\n");
  await git(["add", "-A"], repos.incl);
  await git(
    ["-c", "user.name=t", "-c", "user.email=t@e.invalid", "commit", "-qm", "r"],
    repos.incl,
  );
  return env;
});

/** A new empty folder for one test's own repositories. */
async function repoDir(): Promise<string> {
  await template.env();
  return await template.scratch.dir("repos");
}

Deno.test("dropped requirement lines are warnings; -r stays in the node", async () => {
  const env = await template.copy();
  assertEquals((await run(env, ["node", "add", "incl", repos.incl])).code, 0);
  const r = await run(env, ["tx", "run", "incl"]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stderr, /not passed to uv: requirements\.txt: --index-url/);
  assertMatch(r.stderr, /not passed to uv: requirements\.txt: -e \./);
  const txid = await lastTxid(env);
  const tx = await readJson(join(env, "state/transactions", `${txid}.json`));
  assertEquals(tx.requirements, ["tqdm"]);
  assertEquals(tx.warnings.length, 2);
  assertTrue(tx.diff.added.some((a: string) => a.startsWith("tqdm==")), "tqdm installed");
  const shown = await run(env, ["tx", "inspect", txid]);
  assertMatch(shown.stdout, /warning:.*--index-url/);
});

Deno.test("requirements leading out of the node folder are refused", async () => {
  const env = await template.copy();
  const dir = await makeNodeRepo(await repoDir(), "escape", []);
  await Deno.remove(join(dir, "requirements.txt"));
  await Deno.symlink("/etc/hostname", join(dir, "requirements.txt"));
  await git(["add", "-A"], dir);
  await git(["-c", "user.name=t", "-c", "user.email=t@e.invalid", "commit", "-qm", "l"], dir);
  assertEquals((await run(env, ["node", "add", "escape", dir])).code, 0);
  const r = await run(env, ["tx", "run", "escape"]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /outside the node's folder/);
  const tx = await readJson(join(env, "state/transactions", `${await lastTxid(env)}.json`));
  assertEquals(tx.status, "failed");
  assertEquals(tx.requirements, []);
});

Deno.test("node list shows what the folder really holds; a promoted run records it", async () => {
  const env = await template.copy();
  assertEquals((await run(env, ["node", "add", "incl", repos.incl])).code, 0);
  assertEquals((await run(env, ["tx", "run", "incl"])).code, 0);
  const nodes = await json(env, ["node", "list"]);
  assertEquals(nodes.find((n: { id: string }) => n.id === "incl").code_state, "present");
  const dir = join(env, "ComfyUI/custom_nodes/incl");
  await Deno.writeTextFile(join(dir, "__init__.py"), "# edited\n", { append: true });
  let list = await json(env, ["node", "list"]);
  assertEquals(list.find((n: { id: string }) => n.id === "incl").code_state, "modified");
  await git(["-c", "user.name=t", "-c", "user.email=t@e.invalid", "commit", "-qam", "x"], dir);
  list = await json(env, ["node", "list"]);
  const incl = list.find((n: { id: string }) => n.id === "incl");
  assertEquals(incl.code_state, "other-commit");
  assertTrue(incl.code_commit !== incl.commit);
  const table = await run(env, ["node", "list"]);
  assertMatch(table.stdout, /incl\s+\S+\s+other commit/);
  // Promoting a run of the new code makes it the recorded one.
  assertEquals((await run(env, ["tx", "run", "incl"])).code, 0);
  const promoted = await run(env, ["tx", "promote", await lastTxid(env)]);
  assertEquals(promoted.code, 0, promoted.stderr);
  list = await json(env, ["node", "list"]);
  const after = list.find((n: { id: string }) => n.id === "incl");
  assertEquals(after.code_state, "present");
  assertEquals(after.commit, incl.code_commit);
});

Deno.test("a promotion killed before production changed can be promoted again", async () => {
  const env = await template.copy();
  assertEquals((await run(env, ["node", "add", "tq", repos.plain])).code, 0);
  assertEquals((await run(env, ["tx", "run", "tq"])).code, 0);
  const txid = await lastTxid(env);
  const truth0 = await truthFiles(env);
  const killed = await run(env, ["tx", "promote", txid], { GOV_FAULT: "promote:locked" });
  assertEquals(killed.code, 137, killed.stderr);
  const r = await run(env, ["tx", "list", "--json"]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stderr, /interrupted before production changed: nothing changed/);
  const tx = await readJson(join(env, "state/transactions", `${txid}.json`));
  assertEquals(tx.status, "completed");
  assertEquals(tx.promotion.result, "interrupted");
  assertEquals(await truthFiles(env), truth0);
  const again = await run(env, ["tx", "promote", txid]);
  assertEquals(again.code, 0, again.stderr);
  assertEquals(
    (await readJson(join(env, "state/transactions", `${txid}.json`))).status,
    "promoted",
  );
});

Deno.test("a failed git step is named and never shown done", async () => {
  const env = await template.copy();
  const bad = await run(env, ["node", "add", "badref", repos.plain, "--ref", "nosuch"]);
  assertEquals(bad.code, 1);
  assertMatch(bad.stderr, /git ref 'nosuch' does not exist/);
  assertMatch(bad.stderr, /✗ git checkout nosuch/);
  assertNotMatch(bad.stderr, /✓ git checkout/);
  const notRepo = await template.scratch.dir("not-a-repo");
  const nr = await run(env, ["node", "add", "nr", notRepo]);
  assertEquals(nr.code, 1);
  assertMatch(nr.stderr, /is not a git repository/);
  assertMatch(nr.stderr, /✗ git clone nr/);
  assertNotMatch(nr.stderr, /✓ git clone/);
  const port = (() => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const p = (l.addr as Deno.NetAddr).port;
    l.close();
    return p;
  })();
  const un = await run(env, ["node", "add", "un", `http://127.0.0.1:${port}/x.git`]);
  assertEquals(un.code, 1);
  assertMatch(un.stderr, /is unreachable/);
  for (const id of ["badref", "nr", "un"]) {
    assertTrue(!(await exists(join(env, "ComfyUI/custom_nodes", id))));
  }
});

Deno.test("a requirement on a version that does not exist is not called a conflict", async () => {
  const env = await template.copy();
  const dir = await makeNodeRepo(await repoDir(), "nover", ["tqdm==9.9.9"]);
  assertEquals((await run(env, ["node", "add", "nover", dir])).code, 0);
  const r = await run(env, ["tx", "run", "nover"]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /no version of tqdm==9\.9\.9 exists/);
  assertNotMatch(r.stderr, /conflict between custom nodes/);
  const tx = await readJson(join(env, "state/transactions", `${await lastTxid(env)}.json`));
  assertEquals(tx.status, "failed");
});

Deno.test("a resolution pin to a version that does not exist is not called a conflict", async () => {
  const env = await template.copy();
  const dir = await repoDir();
  const a = await makeNodeRepo(dir, "ca", ["conflict-a"]);
  const b = await makeNodeRepo(dir, "cb", ["conflict-b"]);
  assertEquals((await run(env, ["node", "add", "ca", a])).code, 0);
  assertEquals((await run(env, ["tx", "run", "ca"])).code, 0);
  assertEquals((await run(env, ["tx", "promote", await lastTxid(env)])).code, 0);
  assertEquals((await run(env, ["node", "add", "cb", b])).code, 0);
  const c = await run(env, ["tx", "run", "cb"]);
  assertMatch(c.stdout + c.stderr, /conflict/, `${c.code}: ${c.stdout}`);
  const conflicted = await lastTxid(env);
  const pin = await run(env, ["resolve", conflicted, "--pin", "sortedcontainers==9.9"]);
  assertEquals(pin.code, 1, pin.stderr);
  assertMatch(pin.stderr, /no version of sortedcontainers==9\.9 exists/);
  assertNotMatch(pin.stderr, /conflict between custom nodes/);
});
