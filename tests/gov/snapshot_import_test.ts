// `gov snapshot import/export/diff` with snapshots shaped as ComfyUI-Manager 4.3 writes them
// (JSON) and as comfy-cli/cm-cli write them (YAML under custom_nodes:): git nodes at pinned
// commits (URLs with and without .git), a disabled node, registry nodes (a pinned version,
// a nightly one), the Manager itself, a single-file node, pip freeze lines.
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { startFakeRegistry } from "../../fixtures/registry/fake_registry.ts";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import {
  exists,
  git,
  govIn,
  govJson,
  initEnv,
  makeNodeRepo,
  prodFreeze,
  readJson,
  Scratch,
  truthFiles,
} from "./helpers.ts";

async function commitFile(dir: string, file: string, text: string): Promise<string> {
  await Deno.writeTextFile(join(dir, file), text);
  await git(["add", "-A"], dir);
  await git(
    ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", file],
    dir,
  );
  return await git(["rev-parse", "HEAD"], dir);
}

async function listDir(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

async function plugins(env: string): Promise<Record<string, Record<string, unknown>>> {
  return (await readJson(join(env, "state", "plugins.json"))).plugins;
}

async function txCount(env: string): Promise<number> {
  return (await listDir(join(env, "state", "transactions"))).length;
}

Deno.test("snapshot import/export/diff of Manager and comfy-cli snapshots", async (t) => {
  const scratch = new Scratch();
  await scratch.open();
  const repos = await scratch.dir("repos");
  // Alpha: pinned at its first commit although a later one exists; URL without .git.
  const alpha = await makeNodeRepo(repos, "ComfyUI-Alpha", ["einops==0.7.0"], {
    imports: ["einops"],
  });
  const alphaPin = await git(["rev-parse", "HEAD"], alpha);
  await commitFile(alpha, "requirements.txt", "einops==0.8.0\n");
  // Beta: a bare repository whose URL ends in .git.
  const betaWork = await makeNodeRepo(repos, "beta-src", []);
  const beta = join(repos, "ComfyUI-Beta.git");
  await git(["clone", "-q", "--bare", betaWork, beta], repos);
  const betaPin = await git(["rev-parse", "HEAD"], betaWork);
  // Gamma: disabled in the snapshot.
  const gamma = await makeNodeRepo(repos, "ComfyUI-Gamma", ["no-such-package-anywhere"]);
  const gammaPin = await git(["rev-parse", "HEAD"], gamma);
  const broken = await makeNodeRepo(repos, "ComfyUI-Broken", ["broken-import"], {
    imports: ["broken_import"],
  });
  const regSrc = join(repos, "reg-node-1.0.0");
  await Deno.mkdir(regSrc);
  await Deno.writeTextFile(join(regSrc, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
  await Deno.writeTextFile(join(regSrc, "requirements.txt"), "sortedcontainers==2.3.0\n");
  const reg = await startFakeRegistry({ "reg-node": { "1.0.0": { dir: regSrc } } });
  const renv = { GOV_REGISTRY_URL: reg.url };

  const manager = {
    comfyui: "4e8cbbb8b3ab4f1c2bd6b7e6e4c0d2a9b0c3f1aa",
    git_custom_nodes: {
      [alpha]: { hash: alphaPin, disabled: false },
      [beta]: { hash: betaPin, disabled: false },
      [gamma]: { hash: gammaPin, disabled: true },
      "https://github.com/ltdrdata/ComfyUI-Manager": {
        hash: "a".repeat(40),
        disabled: false,
      },
    },
    cnr_custom_nodes: { "reg-node": "1.0.0", "night-node": "nightly" },
    file_custom_nodes: [{ filename: "example_node.py", disabled: false }],
    pips: {
      "einops==0.7.0": "",
      "pyyaml==6.0.2": "",
      "torch==2.1.0": "",
      "mypkg": "file:///tmp/mypkg-1.0-py3-none-any.whl",
    },
  };
  try {
    const template = await initEnv(scratch);
    const files = await scratch.dir("files");
    const jsonFile = join(files, "20260101_000000_snapshot.json");
    await Deno.writeTextFile(jsonFile, JSON.stringify(manager, null, 4));
    const env = await scratch.copyEnv(template);
    const custom = join(env, "ComfyUI", "custom_nodes");
    let importTx = "";
    let preSnapshot = "";
    let postSnapshot = "";

    await t.step("--dry-run shows every node's fate and touches nothing", async () => {
      const before = await truthFiles(env);
      const tree = await listDir(custom);
      const txs = await txCount(env);
      const r = await govJson(env, ["snapshot", "import", jsonFile, "--dry-run"], renv);
      const act = Object.fromEntries(
        r.nodes.map((n: { id: string; action: string }) => [n.id, n.action]),
      );
      assertEquals(act, {
        "ComfyUI-Alpha": "add",
        "ComfyUI-Beta": "add",
        "ComfyUI-Gamma": "park",
        "reg-node": "add",
        "night-node": "skip",
      });
      assertEquals(r.dry_run, true);
      assertTrue(r.notes.some((n: string) => /ComfyUI-Manager itself/.test(n)), r.notes);
      assertTrue(r.notes.some((n: string) => /example_node\.py/.test(n)), r.notes);
      assertEquals(r.pips.not_installed.sort(), ["mypkg", "torch==2.1.0"]);
      assertEquals(await truthFiles(env), before);
      assertEquals(await listDir(custom), tree);
      assertEquals(await txCount(env), txs);
    });

    await t.step("import: one transaction, pinned commits, disabled node parked", async () => {
      const txs = await txCount(env);
      const r = await govJson(env, ["snapshot", "import", jsonFile], renv);
      assertEquals(r.status, "promoted");
      assertEquals(r.tx_nodes.sort(), ["ComfyUI-Alpha", "ComfyUI-Beta", "reg-node"]);
      assertEquals(await txCount(env), txs + 1);
      importTx = r.txid;
      preSnapshot = r.before_snapshot;
      postSnapshot = r.post_snapshot;
      const idx = await govJson(env, ["snapshot", "list"]);
      assertEquals(idx.find((s: { id: string }) => s.id === preSnapshot)?.reason, "pre-import");
      const tx = await readJson(join(env, "state", "transactions", `${r.txid}.json`));
      assertEquals(tx.node_ids.sort(), ["ComfyUI-Alpha", "ComfyUI-Beta", "reg-node"]);
      assertEquals(tx.status, "promoted");
      const p = await plugins(env);
      assertEquals(Object.keys(p).sort(), ["ComfyUI-Alpha", "ComfyUI-Beta", "reg-node"]);
      assertEquals(p["ComfyUI-Alpha"].commit, alphaPin);
      assertEquals(p["ComfyUI-Beta"].url, beta);
      assertEquals(p["reg-node"].source, "registry");
      assertEquals(p["reg-node"].version, "1.0.0");
      assertEquals(p["ComfyUI-Alpha"].managed_deps, ["einops==0.7.0"]);
      assertEquals(p["reg-node"].last_txid, r.txid);
      assertEquals(await git(["rev-parse", "HEAD"], join(custom, "ComfyUI-Alpha")), alphaPin);
      assertTrue(await exists(join(custom, "ComfyUI-Gamma.disabled", "__init__.py")));
      assertEquals(await exists(join(custom, "ComfyUI-Gamma")), false);
      const freeze = await prodFreeze(env);
      assertTrue(freeze.includes("einops==0.7.0"), freeze.join(","));
      assertTrue(freeze.includes("sortedcontainers==2.3.0"), freeze.join(","));
      // pyyaml is required by nothing: shown and left out.
      assertEquals(freeze.some((l) => l.startsWith("pyyaml==")), false);
      assertEquals(r.pips.left_out, ["pyyaml==6.0.2"]);
      assertTrue(r.pre_snapshot && r.post_snapshot);
    });

    await t.step("importing the same file again changes nothing", async () => {
      const txs = await txCount(env);
      const r = await govJson(env, ["snapshot", "import", jsonFile], renv);
      assertEquals(r.txid, null);
      assertEquals(
        r.nodes.filter((n: { action: string }) => n.action !== "unchanged").map((
          n: { id: string },
        ) => n.id),
        ["night-node"],
      );
      assertEquals(await txCount(env), txs);
    });

    await t.step(
      "code gone from custom_nodes/ is restored; a registry hash is checked",
      async () => {
        await Deno.remove(join(custom, "reg-node"), { recursive: true });
        await Deno.remove(join(custom, "ComfyUI-Beta"), { recursive: true });
        const pluginsFile = join(env, "state", "plugins.json");
        const good = await Deno.readTextFile(pluginsFile);
        const doc = JSON.parse(good);
        doc.plugins["reg-node"].hash = "sha256:" + "0".repeat(64);
        await Deno.writeTextFile(pluginsFile, JSON.stringify(doc, null, 2));
        const tampered = await truthFiles(env);
        const bad = await govIn(env, ["snapshot", "import", jsonFile], renv);
        assertEquals(bad.code, 1, bad.stderr);
        assertMatch(bad.stderr, /reg-node/);
        assertMatch(bad.stderr, /sha256:0000/);
        assertEquals(await exists(join(custom, "reg-node")), false);
        assertEquals(await exists(join(custom, "ComfyUI-Beta")), false);
        assertEquals(await truthFiles(env), tampered);
        await Deno.writeTextFile(pluginsFile, good);
        const txs = await txCount(env);
        const r = await govJson(env, ["snapshot", "import", jsonFile], renv);
        const act = Object.fromEntries(
          r.nodes.map((n: { id: string; action: string }) => [n.id, n.action]),
        );
        assertEquals(act["reg-node"], "restore");
        assertEquals(act["ComfyUI-Beta"], "restore");
        // Their dependencies were promoted already: no transaction.
        assertEquals(r.txid, null);
        assertEquals(await txCount(env), txs);
        assertTrue(await exists(join(custom, "reg-node", "__init__.py")));
        assertEquals(await git(["rev-parse", "HEAD"], join(custom, "ComfyUI-Beta")), betaPin);
      },
    );

    let exported = "";
    await t.step("export --format manager writes what the Manager restores", async () => {
      exported = join(files, "exported.json");
      const r = await govIn(env, [
        "snapshot",
        "export",
        "--format",
        "manager",
        "-o",
        exported,
      ]);
      assertEquals(r.code, 0, r.stderr);
      const doc = await readJson(exported);
      assertEquals(Object.keys(doc).sort(), [
        "cnr_custom_nodes",
        "comfyui",
        "file_custom_nodes",
        "git_custom_nodes",
        "pips",
      ]);
      assertEquals(doc.git_custom_nodes[alpha], { hash: alphaPin, disabled: false });
      assertEquals(doc.git_custom_nodes[beta], { hash: betaPin, disabled: false });
      assertEquals(doc.git_custom_nodes[gamma], { hash: gammaPin, disabled: true });
      assertEquals(doc.cnr_custom_nodes, { "reg-node": "1.0.0" });
      assertEquals(doc.pips["einops==0.7.0"], "");
      assertEquals(doc.pips["sortedcontainers==2.3.0"], "");
      // The Manager's own layout: 4-space indented JSON.
      assertMatch(await Deno.readTextFile(exported), /^\{\n {4}"comfyui"/);
      // From gov snapshots: what each recorded (parked folders are not part of them).
      const post = await govIn(env, ["snapshot", "export", postSnapshot, "--format", "manager"]);
      assertEquals(post.code, 0, post.stderr);
      const pdoc = JSON.parse(post.stdout);
      assertEquals(Object.keys(pdoc.git_custom_nodes).sort(), [alpha, beta].sort());
      assertEquals(pdoc.cnr_custom_nodes, { "reg-node": "1.0.0" });
      const pre = await govIn(env, ["snapshot", "export", preSnapshot, "--format", "manager"]);
      const predoc = JSON.parse(pre.stdout);
      assertEquals([predoc.git_custom_nodes, predoc.cnr_custom_nodes], [{}, {}]);
      assertEquals(predoc.pips["einops==0.7.0"], undefined);
    });

    await t.step("the export imports into a fresh environment to the same state", async () => {
      const fresh = await scratch.copyEnv(template);
      const r = await govJson(fresh, ["snapshot", "import", exported], renv);
      assertEquals(r.status, "promoted");
      const a = await plugins(env), b = await plugins(fresh);
      assertEquals(Object.keys(b).sort(), Object.keys(a).sort());
      for (const id of Object.keys(a)) {
        assertEquals(b[id].commit, a[id].commit, id);
        assertEquals(b[id].version, a[id].version, id);
        assertEquals(b[id].managed_deps, a[id].managed_deps, id);
      }
      assertEquals(await prodFreeze(fresh), await prodFreeze(env));
      assertTrue(await exists(join(fresh, "ComfyUI", "custom_nodes", "ComfyUI-Gamma.disabled")));
    });

    await t.step("diff names the nodes and packages the import brought", async () => {
      const d = await govJson(env, ["snapshot", "diff", preSnapshot, "current"]);
      assertEquals(
        d.nodes.added.map((n: { id: string; pin: string }) => `${n.id}@${n.pin}`).sort(),
        [`ComfyUI-Alpha@${alphaPin}`, `ComfyUI-Beta@${betaPin}`, "reg-node@1.0.0"],
      );
      assertEquals(d.nodes.removed, []);
      const added = d.packages.added.map((p: { name: string }) => p.name).sort();
      assertTrue(added.includes("einops") && added.includes("sortedcontainers"), added);
      const back = await govJson(env, ["snapshot", "diff", "current", preSnapshot]);
      assertEquals(back.nodes.removed.length, 3);
      const text = await govIn(env, ["snapshot", "diff", preSnapshot, "current"]);
      assertMatch(text.stdout, new RegExp(`\\+ node ComfyUI-Alpha git ${alphaPin.slice(0, 12)}`));
      assertTrue(importTx.length > 0);
    });

    await t.step(
      "YAML (comfy-cli) with --with-pips pins the pips; export round-trips",
      async () => {
        const fresh = await scratch.copyEnv(template);
        const yamlFile = join(files, "snapshot.yaml");
        await Deno.writeTextFile(
          yamlFile,
          stringifyYaml({
            custom_nodes: {
              comfyui: null,
              git_custom_nodes: { [`${alpha}.git`]: { hash: alphaPin, disabled: false } },
              cnr_custom_nodes: {},
              file_custom_nodes: [],
              pips: { "pyyaml==6.0.2": "", "einops==0.7.0": "" },
            },
          }),
        );
        await Deno.rename(alpha, `${alpha}.git`);
        try {
          const r = await govJson(fresh, ["snapshot", "import", yamlFile, "--with-pips"]);
          assertEquals(r.status, "promoted");
          assertEquals(r.pips.pinned.sort(), ["einops==0.7.0", "pyyaml==6.0.2"]);
          const freeze = await prodFreeze(fresh);
          assertTrue(freeze.includes("pyyaml==6.0.2"), freeze.join(","));
          const py = await Deno.readTextFile(join(fresh, "pyproject.toml"));
          assertMatch(py, /snapshot-pips/);
          const out = await govIn(fresh, ["snapshot", "export", "--format", "comfy-cli"]);
          assertEquals(out.code, 0, out.stderr);
          const doc = parseYaml(out.stdout) as { custom_nodes: Record<string, unknown> };
          assertEquals(doc.custom_nodes.git_custom_nodes, {
            [`${alpha}.git`]: { hash: alphaPin, disabled: false },
          });
          assertEquals(
            (doc.custom_nodes.pips as Record<string, string>)["pyyaml==6.0.2"],
            "",
          );
        } finally {
          await Deno.rename(`${alpha}.git`, alpha);
        }
      },
    );

    await t.step("a failing import takes everything out again", async () => {
      const fresh = await scratch.copyEnv(template);
      const fcustom = join(fresh, "ComfyUI", "custom_nodes");
      const bad = join(files, "broken.json");
      await Deno.writeTextFile(
        bad,
        JSON.stringify({
          comfyui: null,
          git_custom_nodes: {
            [alpha]: { hash: alphaPin, disabled: false },
            [broken]: { hash: await git(["rev-parse", "HEAD"], broken), disabled: false },
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

    await t.step("a conflict names the nodes; the core gate holds; nothing changes", async () => {
      const ca = await makeNodeRepo(repos, "Node-C23", ["conflict-a"]);
      const cb = await makeNodeRepo(repos, "Node-C24", ["conflict-b"]);
      const numpy1 = await makeNodeRepo(repos, "Node-Numpy1", ["needs-numpy1"]);
      const pin = (dir: string) => git(["rev-parse", "HEAD"], dir);
      const write = async (name: string, nodes: string[]) => {
        const f = join(files, name);
        const g: Record<string, unknown> = {};
        for (const d of nodes) g[d] = { hash: await pin(d), disabled: false };
        await Deno.writeTextFile(f, JSON.stringify({ comfyui: null, git_custom_nodes: g }));
        return f;
      };
      const fresh = await scratch.copyEnv(template);
      const before = await truthFiles(fresh);
      const tree = await listDir(join(fresh, "ComfyUI", "custom_nodes"));
      const c = await govIn(fresh, ["snapshot", "import", await write("c.json", [ca, cb])]);
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
      const core = await govIn(fresh, ["snapshot", "import", await write("t.json", [numpy1])]);
      assertTrue(core.code !== 0, core.stderr);
      assertMatch(core.stderr, /core packages: numpy/);
      assertMatch(core.stderr, /--approve-core/);
      assertEquals(await truthFiles(fresh), before);
      assertEquals(await listDir(join(fresh, "ComfyUI", "custom_nodes")), tree);
      assertEquals(await prodFreeze(fresh), await prodFreeze(template));
      // The way out the error names: the same import with a resolution pin.
      const pinned = await govJson(fresh, [
        "snapshot",
        "import",
        join(files, "c.json"),
        "--pin",
        "sortedcontainers==2.4.0",
      ]);
      assertEquals(pinned.status, "promoted");
      assertEquals(Object.keys(await plugins(fresh)).sort(), ["Node-C23", "Node-C24"]);
      assertTrue((await prodFreeze(fresh)).includes("sortedcontainers==2.4.0"));
      // The core change, approved; the diff flags it.
      const approved = await govJson(fresh, [
        "snapshot",
        "import",
        join(files, "t.json"),
        "--approve-core",
      ]);
      assertEquals(approved.status, "promoted");
      const d = await govJson(fresh, ["snapshot", "diff", approved.before_snapshot, "current"]);
      assertEquals(d.packages.downgraded, [
        { name: "numpy", from: "2.1.0", to: "1.26.4", core: true },
      ]);
      assertEquals(d.nodes.added.map((n: { id: string }) => n.id), ["Node-Numpy1"]);
      const text = await govIn(fresh, ["snapshot", "diff", approved.before_snapshot, "current"]);
      assertMatch(text.stdout, /↓ numpy 2\.1\.0 -> 1\.26\.4 {2}\[core\]/);
    });

    await t.step("rollback to the pre-import snapshot undoes the import", async () => {
      const r = await govJson(env, ["rollback", preSnapshot]);
      assertEquals(r.disabled.sort(), ["ComfyUI-Alpha", "ComfyUI-Beta", "reg-node"]);
      assertEquals(Object.keys(await plugins(env)), []);
      assertEquals(await prodFreeze(env), await prodFreeze(template));
    });

    await t.step("bad snapshot files are usage errors", async () => {
      const junk = join(files, "junk.json");
      await Deno.writeTextFile(junk, '{"something": 1}');
      const r = await govIn(env, ["snapshot", "import", junk]);
      assertEquals(r.code, 2, r.stderr);
      assertMatch(r.stderr, /git_custom_nodes/);
      const missing = await govIn(env, ["snapshot", "import", join(files, "nope.json")]);
      assertEquals(missing.code, 2, missing.stderr);
      const fmt = await govIn(env, ["snapshot", "export", "--format", "pip"]);
      assertEquals(fmt.code, 2, fmt.stderr);
    });
  } finally {
    await reg.close();
    await scratch.close();
  }
});
