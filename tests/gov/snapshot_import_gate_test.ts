// `gov snapshot import` that cannot go through: a node that fails its test run, two nodes in
// conflict (the error names them and the --pin way out), and a core package change (held
// until --approve-core). Nothing changes until the way out is taken.
//
// Each test works on its own copy of a freshly initialised template environment.
import { join } from "node:path";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import {
  exists,
  git,
  govIn,
  govJson,
  makeNodeRepo,
  prodFreeze,
  readJson,
  truthFiles,
} from "./helpers.ts";
import { fx, listDir, plugins, template } from "./snapshot_import_helpers.ts";

/** Writes a Manager snapshot naming the git repositories `nodes` at their HEADs. */
async function writeSnapshot(name: string, nodes: string[]): Promise<string> {
  const f = join(await template.dir("files"), name);
  const g: Record<string, unknown> = {};
  for (const d of nodes) g[d] = { hash: await git(["rev-parse", "HEAD"], d), disabled: false };
  await Deno.writeTextFile(f, JSON.stringify({ comfyui: null, git_custom_nodes: g }));
  return f;
}

Deno.test("a failing import takes everything out again", async () => {
  const fresh = await template.copy();
  const fcustom = join(fresh, "ComfyUI", "custom_nodes");
  const bad = join(await template.dir("files"), "broken.json");
  await Deno.writeTextFile(
    bad,
    JSON.stringify({
      comfyui: null,
      git_custom_nodes: {
        [fx.alpha]: { hash: fx.alphaPin, disabled: false },
        [fx.broken]: { hash: await git(["rev-parse", "HEAD"], fx.broken), disabled: false },
      },
      cnr_custom_nodes: {},
      file_custom_nodes: [],
      pips: null,
    }),
  );
  const before = await truthFiles(fresh);
  const tree = await listDir(fcustom);
  const r = await govIn(fresh, ["snapshot", "import", bad]);
  assertEquals(r.code, 1, r.stderr + r.stdout);
  assertMatch(r.stderr, /ComfyUI-Broken/);
  assertEquals(await truthFiles(fresh), before);
  assertEquals(await listDir(fcustom), tree);
  assertEquals(await exists(join(fresh, "state", "journal.json")), false);
});

Deno.test("an import in conflict names the nodes, changes nothing, and goes through with --pin", async () => {
  const repos = await template.dir("repos");
  const ca = await makeNodeRepo(repos, "Node-C23", ["conflict-a"]);
  const cb = await makeNodeRepo(repos, "Node-C24", ["conflict-b"]);
  const fresh = await template.copy();
  const before = await truthFiles(fresh);
  const tree = await listDir(join(fresh, "ComfyUI", "custom_nodes"));
  const file = await writeSnapshot("c.json", [ca, cb]);
  const c = await govIn(fresh, ["snapshot", "import", file]);
  assertTrue(c.code !== 0, c.stderr);
  assertMatch(c.stderr, /Node-C23/);
  assertMatch(c.stderr, /Node-C24/);
  assertMatch(c.stderr, /--pin/);
  // Its nodes are gone, so the transaction is closed, keeping what it reached.
  const txDir = join(fresh, "state", "transactions");
  const records = await Promise.all(
    (await listDir(txDir)).map((f) => readJson(join(txDir, f))),
  );
  const last = records.find((x) => x.node_ids?.includes("Node-C24"));
  assertEquals([last.status, last.import_status], ["aborted", "needs_resolution"]);
  assertTrue(last.conflict_report !== null);
  assertEquals(await truthFiles(fresh), before);
  assertEquals(await listDir(join(fresh, "ComfyUI", "custom_nodes")), tree);
  assertEquals(await prodFreeze(fresh), await prodFreeze(await template.env()));
  // The way out the error names: the same import with a resolution pin.
  const pinned = await govJson(fresh, [
    "snapshot",
    "import",
    file,
    "--pin",
    "sortedcontainers==2.4.0",
  ]);
  assertEquals(pinned.status, "promoted");
  assertEquals(Object.keys(await plugins(fresh)).sort(), ["Node-C23", "Node-C24"]);
  assertTrue((await prodFreeze(fresh)).includes("sortedcontainers==2.4.0"));
});

Deno.test("an import moving a core package is held until --approve-core; the diff flags it", async () => {
  const numpy1 = await makeNodeRepo(await template.dir("repos"), "Node-Numpy1", ["needs-numpy1"]);
  const fresh = await template.copy();
  const before = await truthFiles(fresh);
  const tree = await listDir(join(fresh, "ComfyUI", "custom_nodes"));
  const file = await writeSnapshot("t.json", [numpy1]);
  const core = await govIn(fresh, ["snapshot", "import", file]);
  assertTrue(core.code !== 0, core.stderr);
  assertMatch(core.stderr, /core packages: numpy/);
  assertMatch(core.stderr, /--approve-core/);
  assertEquals(await truthFiles(fresh), before);
  assertEquals(await listDir(join(fresh, "ComfyUI", "custom_nodes")), tree);
  assertEquals(await prodFreeze(fresh), await prodFreeze(await template.env()));
  // The core change, approved; the diff flags it.
  const approved = await govJson(fresh, ["snapshot", "import", file, "--approve-core"]);
  assertEquals(approved.status, "promoted");
  const d = await govJson(fresh, ["snapshot", "diff", approved.before_snapshot, "current"]);
  assertEquals(d.packages.downgraded, [
    { name: "numpy", from: "2.1.0", to: "1.26.4", core: true },
  ]);
  assertEquals(d.nodes.added.map((n: { id: string }) => n.id), ["Node-Numpy1"]);
  const text = await govIn(fresh, ["snapshot", "diff", approved.before_snapshot, "current"]);
  assertMatch(text.stdout, /↓ numpy 2\.1\.0 -> 1\.26\.4 {2}\[core\]/);
});
