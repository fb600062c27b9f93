/**
 * The CLI contract of the hardening fixes, on real environments (real uv, offline over the
 * test wheelhouse; the fake ComfyUI): node ids that collide with parked code, a deleted
 * registry, read-only and full state folders, a half-built `gov init`, requirement lines
 * gov drops, what a node folder really holds, an interrupted promotion that changed
 * nothing, failed git steps, links out of a node, and versions that do not exist.
 */
import { join } from "node:path";
import {
  copyTree,
  exists,
  git,
  govIn,
  govJson,
  initEnv,
  lastTxid,
  makeNodeRepo,
  readJson,
  Scratch,
  truthFiles,
  UV_BIN,
} from "./helpers.ts";
import { assertEquals, assertMatch, assertNotMatch, assertTrue } from "../helpers/assert.ts";
import { runProcess } from "../../src/process/run.ts";

/** The pinned real uv, also for gov started under a private mount namespace. */
const UV: Record<string, string> = { GOV_UV: UV_BIN };

const run = (env: string, args: string[], extra: Record<string, string> = {}) =>
  govIn(env, args, { ...UV, ...extra });
const json = (env: string, args: string[]) => govJson(env, args, UV);

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

Deno.test("hardening: gov's operations on real environments", async (t) => {
  const scratch = new Scratch();
  await scratch.open();
  try {
    const template = await initEnv(scratch, "", UV);
    const repos = await scratch.dir("repos");
    const plain = await makeNodeRepo(repos, "plain", ["tqdm"]);

    await t.step("ids ComfyUI skips are refused; parked code is never deleted", async () => {
      const env = await scratch.copyEnv(template);
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

    await t.step("a deleted registry is an error naming the fix, never rewritten", async () => {
      const env = await scratch.copyEnv(template);
      await Deno.remove(join(env, "state/plugins.json"));
      for (const args of [["node", "add", "a", plain], ["init"], ["node", "list"]]) {
        const r = await run(env, args);
        assertEquals(r.code, 2, `gov ${args.join(" ")}: ${r.stderr}`);
        assertMatch(r.stderr, /state\/plugins\.json is missing/);
        assertMatch(r.stderr, /cp \S+\/snapshots\/snap-[^/]+\/plugins\.json \S+plugins\.json/);
        assertNotMatch(r.stderr, /internal error/);
        assertTrue(!(await exists(join(env, "state/plugins.json"))), `${args} wrote one`);
      }
      assertTrue(!(await exists(join(env, "ComfyUI/custom_nodes/a"))));
      // The same for pyproject.toml: a fresh one from `gov init` would drop every group.
      const env2 = await scratch.copyEnv(template);
      await Deno.remove(join(env2, "pyproject.toml"));
      for (const args of [["init"], ["node", "add", "a", plain]]) {
        const r = await run(env2, args);
        assertEquals(r.code, 2, `gov ${args.join(" ")}: ${r.stderr}`);
        assertMatch(r.stderr, /pyproject\.toml is missing, though the environment is initialised/);
        assertMatch(r.stderr, /cp \S+\/snapshots\/snap-[^/]+\/pyproject\.toml /);
        assertTrue(!(await exists(join(env2, "pyproject.toml"))), `${args} wrote one`);
      }
    });

    await t.step("storage: read-only and full state folders are named", async (t) => {
      if (!(await canMount())) {
        // Without a private mount namespace, only the permission case can be staged.
        return;
      }
      const env = await scratch.copyEnv(template);
      assertEquals((await run(env, ["node", "add", "a", plain])).code, 0);
      const state = join(env, "state");
      await t.step("read-only commands work on a read-only state", async () => {
        for (
          const args of [["status"], ["node", "list"], ["tx", "list"], ["snapshot", "list"]]
        ) {
          const r = await govOver("ro", state, env, args);
          assertEquals(r.code, 0, `gov ${args.join(" ")} on a read-only state:\n${r.stderr}`);
        }
      });
      await t.step("a change on a read-only state says so", async () => {
        const r = await govOver("ro", state, env, ["node", "remove", "a"]);
        assertEquals(r.code, 1);
        assertMatch(r.stderr, /read-only \(EROFS\)/);
        assertMatch(r.stderr, new RegExp(`${state}/\\.lock`));
        assertNotMatch(r.stderr, /internal error/);
      });
      await t.step("a change on a full disk says so, and changes nothing", async () => {
        const before = await truthFiles(env);
        const r = await govOver("full", state, env, ["node", "add", "b", plain]);
        assertEquals(r.code, 1);
        assertMatch(r.stderr, /no space left on the device holding \S+state\S* \(ENOSPC\)/);
        assertNotMatch(r.stderr, /internal error/);
        assertEquals(await truthFiles(env), before);
        assertTrue(!(await exists(join(env, "ComfyUI/custom_nodes/b"))));
      });
    });

    await t.step(
      "a failed gov init finishes when re-run with a new requirements file",
      async () => {
        const holder = await scratch.dir("init");
        const env = join(holder, "env");
        await copyTree(join(template, "ComfyUI"), join(holder, "ComfyUI-src"));
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
      },
    );

    // One environment for the transactions below.
    const env = await scratch.copyEnv(template);

    await t.step("dropped requirement lines are warnings; -r stays in the node", async () => {
      const dir = await makeNodeRepo(repos, "incl", []);
      await Deno.writeTextFile(
        join(dir, "requirements.txt"),
        "-r base.txt\n--index-url https://example.invalid/simple\n-e .\n",
      );
      await Deno.writeTextFile(join(dir, "base.txt"), "tqdm\n");
      await git(["add", "-A"], dir);
      await git(["-c", "user.name=t", "-c", "user.email=t@e.invalid", "commit", "-qm", "r"], dir);
      assertEquals((await run(env, ["node", "add", "incl", dir])).code, 0);
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

    await t.step("requirements leading out of the node folder are refused", async () => {
      const dir = await makeNodeRepo(repos, "escape", []);
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

    await t.step("node list shows what the folder really holds", async () => {
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

    await t.step("a promotion killed before production changed can be promoted again", async () => {
      assertEquals((await run(env, ["node", "add", "tq", plain])).code, 0);
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

    await t.step("a failed git step is named and never shown done", async () => {
      const bad = await run(env, ["node", "add", "badref", plain, "--ref", "nosuch"]);
      assertEquals(bad.code, 1);
      assertMatch(bad.stderr, /git ref 'nosuch' does not exist/);
      assertMatch(bad.stderr, /✗ git checkout nosuch/);
      assertNotMatch(bad.stderr, /✓ git checkout/);
      const notRepo = await scratch.dir("not-a-repo");
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

    await t.step("a version that does not exist is not called a conflict", async () => {
      const dir = await makeNodeRepo(repos, "nover", ["tqdm==9.9.9"]);
      assertEquals((await run(env, ["node", "add", "nover", dir])).code, 0);
      const r = await run(env, ["tx", "run", "nover"]);
      assertEquals(r.code, 1);
      assertMatch(r.stderr, /no version of tqdm==9\.9\.9 exists/);
      assertNotMatch(r.stderr, /conflict between custom nodes/);
      const tx = await readJson(join(env, "state/transactions", `${await lastTxid(env)}.json`));
      assertEquals(tx.status, "failed");
      // A pin to a version that does not exist, on a real conflict.
      const a = await makeNodeRepo(repos, "ca", ["conflict-a"]);
      const b = await makeNodeRepo(repos, "cb", ["conflict-b"]);
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
  } finally {
    await scratch.close();
  }
});
