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
  type Scratch,
  TemplateEnv,
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

const repos = { dir: "" };

const template = new TemplateEnv(async (scratch: Scratch) => {
  repos.dir = await scratch.dir("repos");
  for (const id of ["one", "two", "three"]) await makeNodeRepo(repos.dir, id, []);
  return await initEnv(scratch);
});

Deno.test("a live lock holder makes a writer wait, then fail clearly", async () => {
  const env = await template.copy();
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
    const r = await govIn(env, ["node", "add", "one", join(repos.dir, "one")], {
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
  const r = await govIn(env, ["node", "add", "one", join(repos.dir, "one")], {
    GOV_LOCK_WAIT: "1",
  });
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stderr, /took over the lock left by `gov tx promote`/);
  assertTrue(!(await exists(join(env, "state/.lock"))));
});

Deno.test("a pid reused by another process does not keep a lock alive", async () => {
  const env = await template.copy();
  // A live pid (the test's own), but with a start time that is not its: the lock of
  // an earlier process whose pid was reused.
  await Deno.writeTextFile(
    join(env, "state/.lock"),
    JSON.stringify({ pid: Deno.pid, start_ms: 1000, command: "rollback", acquired_at: "" }),
  );
  const r = await govIn(env, ["node", "add", "two", join(repos.dir, "two")], {
    GOV_LOCK_WAIT: "1",
  });
  assertEquals(r.code, 0, r.stderr);
});

Deno.test("concurrent writers are serialised by the lock", async () => {
  const env = await template.copy();
  const results = await Promise.all(
    ["one", "two", "three"].map((id) =>
      govIn(env, ["node", "add", id, join(repos.dir, id)], { GOV_LOCK_WAIT: "60" })
    ),
  );
  for (const r of results) assertEquals(r.code, 0, r.stderr);
  const reg = await readJson(join(env, "state/plugins.json"));
  assertEquals(Object.keys(reg.plugins).sort(), ["one", "three", "two"]);
});

/** A corrupt or hand-edited state file, the command that reads it and the error it names. */
const CORRUPT: {
  what: string;
  file: string;
  content: string;
  args: (repos: string) => string[];
  error: RegExp;
}[] = [
  {
    what: "state/plugins.json that is not JSON",
    file: "state/plugins.json",
    content: "{ not json",
    args: () => ["node", "list"],
    error: /plugins\.json: is not valid JSON/,
  },
  {
    what: "state/plugins.json whose entry lacks its group",
    file: "state/plugins.json",
    content: JSON.stringify({ version: 1, plugins: { one: { id: "one" } } }),
    args: (repos) => ["node", "add", "two", join(repos, "two")],
    error: /plugins\.json: plugins\.one\.group must be a string/,
  },
  {
    what: "state/plugins.json whose managed_deps is not a list",
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
    args: () => ["node", "remove", "one"],
    error: /plugins\.json: plugins\.one\.managed_deps must be a list of strings/,
  },
  {
    what: "state/snapshots_index.json with a time that is not ISO 8601",
    file: "state/snapshots_index.json",
    content: JSON.stringify({
      version: 1,
      snapshots: [{ id: "x", created_at: "yesterday", reason: "init", ref: null }],
    }),
    args: () => ["snapshot", "list"],
    error: /snapshots_index\.json: snapshots\[0\]\.created_at must be an ISO 8601 time/,
  },
  {
    what: "state/journal.json naming an unknown operation",
    file: "state/journal.json",
    content: JSON.stringify({ version: 1, op: "explode", op_id: "x" }),
    args: () => ["tx", "list"],
    error: /journal\.json: op must be one of promote, remove, rollback, node-add/,
  },
  {
    what: "pyproject.toml that is not TOML",
    file: "pyproject.toml",
    content: "[project\nname=",
    args: () => ["tx", "run", "one"],
    error: /pyproject\.toml: is not valid TOML/,
  },
  {
    what: "uv.lock without a version",
    file: "uv.lock",
    content: "revision = 3\n",
    args: () => ["tx", "run", "one"],
    error: /uv\.lock: version must be a number/,
  },
  {
    what: "config.toml with a negative tx.timeout",
    file: "config.toml",
    content: "[tx]\ntimeout = -5\n",
    args: () => ["tx", "list"],
    error: /config\.toml: tx\.timeout must be a positive integer/,
  },
];

for (const c of CORRUPT) {
  Deno.test(`a ${c.what} is named, exit 2, and left untouched`, async () => {
    const env = await template.copy();
    await govIn(env, ["node", "add", "one", join(repos.dir, "one")]);
    const path = join(env, c.file);
    await Deno.writeTextFile(path, c.content);
    const before = await allBytes(env);
    const r = await govIn(env, c.args(repos.dir));
    assertEquals(r.code, 2, `${c.file}: ${r.stderr}`);
    assertMatch(r.stderr, c.error);
    assertMatch(r.stderr, /gov changed nothing/);
    assertEquals(r.stdout, "");
    assertEquals(await Deno.readTextFile(path), c.content, `${c.file} was rewritten`);
    assertEquals(await allBytes(env), before);
  });
}

Deno.test("a transaction file with a bad field is named", async () => {
  const env = await template.copy();
  await govIn(env, ["node", "add", "one", join(repos.dir, "one")]);
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
  const decoy = await template.scratch.dir("decoy");
  await Deno.writeTextFile(join(decoy, "keep.txt"), "keep");
  await Deno.writeTextFile(
    path,
    good.replace(/"candidate_env": "[^"]*"/, `"candidate_env": "${decoy}"`),
  );
  assertEquals((await govIn(env, ["tx", "abort", tx.txid])).code, 0);
  assertTrue(await exists(join(decoy, "keep.txt")));
  assertTrue(!(await exists(join(env, ".venv-candidate", tx.txid))));
});

Deno.test("ids that could leave their folder are refused", async () => {
  const env = await template.copy();
  const before = await truthFiles(env);
  const cases: [string[], RegExp][] = [
    [["tx", "inspect", "../../etc/passwd"], /invalid transaction id '\.\.\/\.\.\/etc\/passwd'/],
    [["tx", "abort", "a/b"], /invalid transaction id 'a\/b'/],
    [["tx", "promote", ".."], /invalid transaction id '\.\.'/],
    [["tx", "run", "x/../../y"], /invalid custom node id/],
    [["node", "add", "../evil", join(repos.dir, "one")], /invalid custom node id '\.\.\/evil'/],
    [["node", "add", "ok", "--upload-pack=touch /tmp/pwned"], /unknown flag|invalid git URL/],
    [["node", "remove", "a..b"], /invalid custom node id/],
    [["rollback", "../snapshots"], /invalid snapshot id/],
    [["snapshot", "inspect", "/etc"], /invalid snapshot id '\/etc'/],
    [["resolve", "tx-1", "--pin", "numpy==1; rm -rf /"], /invalid pin/],
    [
      ["node", "add", "ok2", join(repos.dir, "one"), "--ref", "--orphan"],
      /--ref needs a value/,
    ],
    [["node", "add", "ok2", join(repos.dir, "one"), "--ref=--orphan"], /invalid --ref '--orphan'/],
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

Deno.test("an uninitialised environment says so", async () => {
  await template.env();
  const dir = await template.scratch.dir("bare");
  await Deno.writeTextFile(join(dir, "config.toml"), "");
  await Deno.mkdir(join(dir, "ComfyUI/custom_nodes"), { recursive: true });
  const r = await govIn(dir, ["node", "add", "one", join(repos.dir, "one")]);
  // node add does not need the lock file... but tx run needs the truth files.
  assertEquals(r.code, 0, r.stderr);
  const tx = await govIn(dir, ["tx", "run", "one"]);
  assertEquals(tx.code, 2);
  assertMatch(tx.stderr, /is not initialised .*\n.*run `gov init` in it first/);
  const list = await govIn(dir, ["tx", "list", "--json"]);
  assertEquals(list.code, 0);
  assertEquals(JSON.parse(list.stdout), []);
});
