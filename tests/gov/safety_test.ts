/**
 * Safety: the environment lock (live holder waits then fails, dead holder is taken over,
 * concurrent writers serialise, readers do not wait), state files validated on read (a
 * corrupt or hand-edited file names the file and the field, exit 2, nothing overwritten),
 * and ids that could leave their folder are refused.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertNotMatch, assertTrue } from "../helpers/assert.ts";
import { processStartMs } from "../../src/gov/state/lock.ts";
import {
  exists,
  govIn,
  govJson,
  initEnv,
  makeNodeRepo,
  readJson,
  Scratch,
  truthFiles,
} from "./helpers.ts";

async function allBytes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (
    const f of ["state/plugins.json", "state/snapshots_index.json", "pyproject.toml", "uv.lock"]
  ) {
    out[f] = await Deno.readTextFile(join(dir, f));
  }
  return out;
}

Deno.test("safety: lock, corrupt state, bad ids", async (t) => {
  const scratch = new Scratch();
  await scratch.open();
  try {
    const repos = await scratch.dir("repos");
    for (const id of ["one", "two", "three"]) await makeNodeRepo(repos, id, []);
    const template = await initEnv(scratch);

    await t.step("a live lock holder makes a writer wait, then fail clearly", async () => {
      const env = await scratch.copyEnv(template);
      const sleeper = new Deno.Command("sleep", { args: ["60"] }).spawn();
      try {
        await Deno.writeTextFile(
          join(env, "state/.lock"),
          JSON.stringify({
            pid: sleeper.pid,
            start_ms: await processStartMs(sleeper.pid),
            command: "tx promote",
            acquired_at: new Date().toISOString(),
          }),
        );
        const before = await allBytes(env);
        const r = await govIn(env, ["node", "add", "one", join(repos, "one")], {
          GOV_LOCK_WAIT: "1",
        });
        assertEquals(r.code, 1);
        assertMatch(r.stderr, new RegExp(`state/\\.lock is held by pid ${sleeper.pid}`));
        assertMatch(r.stderr, /`gov tx promote` \(pid \d+\) is working on this environment/);
        assertEquals(await allBytes(env), before);
        // Readers do not wait for it.
        const list = await govIn(env, ["node", "list", "--json"], { GOV_LOCK_WAIT: "30" });
        assertEquals(list.code, 0);
        assertEquals(JSON.parse(list.stdout), []);
      } finally {
        sleeper.kill("SIGKILL");
        await sleeper.status;
      }
      // Its owner is dead now: the lock is stale and taken over at once.
      const r = await govIn(env, ["node", "add", "one", join(repos, "one")], {
        GOV_LOCK_WAIT: "1",
      });
      assertEquals(r.code, 0, r.stderr);
      assertMatch(r.stderr, /took over the lock left by `gov tx promote`/);
      assertTrue(!(await exists(join(env, "state/.lock"))));
    });

    await t.step("a pid reused by another process does not keep a lock alive", async () => {
      const env = await scratch.copyEnv(template);
      // A live pid (the test's own), but with a start time that is not its: the lock of
      // an earlier process whose pid was reused.
      await Deno.writeTextFile(
        join(env, "state/.lock"),
        JSON.stringify({ pid: Deno.pid, start_ms: 1000, command: "rollback", acquired_at: "" }),
      );
      const r = await govIn(env, ["node", "add", "two", join(repos, "two")], {
        GOV_LOCK_WAIT: "1",
      });
      assertEquals(r.code, 0, r.stderr);
    });

    await t.step("concurrent writers are serialised by the lock", async () => {
      const env = await scratch.copyEnv(template);
      const results = await Promise.all(
        ["one", "two", "three"].map((id) =>
          govIn(env, ["node", "add", id, join(repos, id)], { GOV_LOCK_WAIT: "60" })
        ),
      );
      for (const r of results) assertEquals(r.code, 0, r.stderr);
      const reg = await readJson(join(env, "state/plugins.json"));
      assertEquals(Object.keys(reg.plugins).sort(), ["one", "three", "two"]);
    });

    await t.step("corrupt or hand-edited state files: named, exit 2, untouched", async () => {
      const env = await scratch.copyEnv(template);
      await govIn(env, ["node", "add", "one", join(repos, "one")]);
      const cases: {
        file: string;
        content: string;
        args: string[];
        error: RegExp;
      }[] = [
        {
          file: "state/plugins.json",
          content: "{ not json",
          args: ["node", "list"],
          error: /plugins\.json: is not valid JSON/,
        },
        {
          file: "state/plugins.json",
          content: JSON.stringify({ version: 1, plugins: { one: { id: "one" } } }),
          args: ["node", "add", "two", join(repos, "two")],
          error: /plugins\.json: plugins\.one\.group must be a string/,
        },
        {
          file: "state/plugins.json",
          content: JSON.stringify({
            version: 1,
            plugins: {
              one: {
                id: "one",
                group: "node-one",
                url: "u",
                managed_deps: "requests",
                added_at: "2026-01-01T00:00:00Z",
                updated_at: "2026-01-01T00:00:00Z",
              },
            },
          }),
          args: ["node", "remove", "one"],
          error: /plugins\.json: plugins\.one\.managed_deps must be a list of strings/,
        },
        {
          file: "state/snapshots_index.json",
          content: JSON.stringify({
            version: 1,
            snapshots: [{ id: "x", created_at: "yesterday", reason: "init", ref: null }],
          }),
          args: ["snapshot", "list"],
          error: /snapshots_index\.json: snapshots\[0\]\.created_at must be an ISO 8601 time/,
        },
        {
          file: "state/journal.json",
          content: JSON.stringify({ version: 1, op: "explode", op_id: "x" }),
          args: ["tx", "list"],
          error: /journal\.json: op must be one of promote, remove, rollback, node-add/,
        },
        {
          file: "pyproject.toml",
          content: "[project\nname=",
          args: ["tx", "run", "one"],
          error: /pyproject\.toml: is not valid TOML/,
        },
        {
          file: "uv.lock",
          content: "revision = 3\n",
          args: ["tx", "run", "one"],
          error: /uv\.lock: version must be a number/,
        },
        {
          file: "config.toml",
          content: "[tx]\ntimeout = -5\n",
          args: ["tx", "list"],
          error: /config\.toml: tx\.timeout must be a positive integer/,
        },
      ];
      for (const c of cases) {
        const path = join(env, c.file);
        const original = await Deno.readTextFile(path).catch(() => undefined);
        await Deno.writeTextFile(path, c.content);
        const before = await allBytes(env);
        const r = await govIn(env, c.args);
        assertEquals(r.code, 2, `${c.file}: ${r.stderr}`);
        assertMatch(r.stderr, c.error);
        assertMatch(r.stderr, /gov changed nothing/);
        assertEquals(r.stdout, "");
        assertEquals(await Deno.readTextFile(path), c.content, `${c.file} was rewritten`);
        assertEquals(await allBytes(env), before);
        if (original === undefined) await Deno.remove(path);
        else await Deno.writeTextFile(path, original);
      }
    });

    await t.step("a transaction file with a bad field is named", async () => {
      const env = await scratch.copyEnv(template);
      await govIn(env, ["node", "add", "one", join(repos, "one")]);
      const tx = await govJson(env, ["tx", "run", "one"]);
      const path = join(env, "state/transactions", `${tx.txid}.json`);
      const good = await Deno.readTextFile(path);
      await Deno.writeTextFile(path, good.replace('"status": "completed"', '"status": "done"'));
      for (const args of [["tx", "inspect", tx.txid], ["tx", "list"], ["tx", "promote", tx.txid]]) {
        const r = await govIn(env, args);
        assertEquals(r.code, 2, r.stderr);
        assertMatch(
          r.stderr,
          new RegExp(`${tx.txid}\\.json: status must be one of running, completed`),
        );
      }
      // A hand-edited candidate_env never makes gov delete another folder.
      const decoy = await scratch.dir("decoy");
      await Deno.writeTextFile(join(decoy, "keep.txt"), "keep");
      await Deno.writeTextFile(
        path,
        good.replace(/"candidate_env": "[^"]*"/, `"candidate_env": "${decoy}"`),
      );
      assertEquals((await govIn(env, ["tx", "abort", tx.txid])).code, 0);
      assertTrue(await exists(join(decoy, "keep.txt")));
      assertTrue(!(await exists(join(env, ".venv-candidate", tx.txid))));
    });

    await t.step("ids that could leave their folder are refused", async () => {
      const env = await scratch.copyEnv(template);
      const before = await truthFiles(env);
      const cases: [string[], RegExp][] = [
        [["tx", "inspect", "../../etc/passwd"], /invalid transaction id '\.\.\/\.\.\/etc\/passwd'/],
        [["tx", "abort", "a/b"], /invalid transaction id 'a\/b'/],
        [["tx", "promote", ".."], /invalid transaction id '\.\.'/],
        [["tx", "run", "x/../../y"], /invalid custom node id/],
        [["node", "add", "../evil", join(repos, "one")], /invalid custom node id '\.\.\/evil'/],
        [["node", "add", "ok", "--upload-pack=touch /tmp/pwned"], /unknown flag|invalid git URL/],
        [["node", "remove", "a..b"], /invalid custom node id/],
        [["rollback", "../snapshots"], /invalid snapshot id/],
        [["snapshot", "inspect", "/etc"], /invalid snapshot id '\/etc'/],
        [["resolve", "tx-1", "--pin", "numpy==1; rm -rf /"], /invalid pin/],
        [
          ["node", "add", "ok2", join(repos, "one"), "--ref", "--orphan"],
          /--ref needs a value/,
        ],
        [["node", "add", "ok2", join(repos, "one"), "--ref=--orphan"], /invalid --ref '--orphan'/],
      ];
      for (const [args, re] of cases) {
        const r = await govIn(env, args);
        assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
        assertMatch(r.stderr, re);
        assertNotMatch(r.stderr, /internal error/);
      }
      assertEquals(await truthFiles(env), before);
      assertTrue(!(await exists("/tmp/pwned")));
    });

    await t.step("an uninitialised environment says so", async () => {
      const dir = await scratch.dir("bare");
      await Deno.writeTextFile(join(dir, "config.toml"), "");
      await Deno.mkdir(join(dir, "ComfyUI/custom_nodes"), { recursive: true });
      const r = await govIn(dir, ["node", "add", "one", join(repos, "one")]);
      // node add does not need the lock file... but tx run needs the truth files.
      assertEquals(r.code, 0, r.stderr);
      const tx = await govIn(dir, ["tx", "run", "one"]);
      assertEquals(tx.code, 2);
      assertMatch(tx.stderr, /is not initialised .*\n.*run `gov init` in it first/);
      const list = await govIn(dir, ["tx", "list", "--json"]);
      assertEquals(list.code, 0);
      assertEquals(JSON.parse(list.stdout), []);
    });
  } finally {
    await scratch.close();
  }
});
