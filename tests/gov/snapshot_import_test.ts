// `gov snapshot import/export/diff` with snapshots shaped as ComfyUI-Manager 4.3 writes them
// (JSON) and as comfy-cli/cm-cli write them (YAML under custom_nodes:): git nodes at pinned
// commits (URLs with and without .git), a disabled node, registry nodes (a pinned version,
// a nightly one), the Manager itself, a single-file node, pip freeze lines.
//
// Each test works on its own copy of one of two templates: a freshly initialised environment,
// or one into which the Manager snapshot below was imported. Conflicts, the core gate and
// failing imports are in snapshot_import_gate_test.ts.
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { exists, git, govIn, govJson, prodFreeze, readJson, truthFiles } from "./helpers.ts";
import {
  fx,
  imported,
  listDir,
  plugins,
  template,
  txCount,
  withRegistry,
} from "./snapshot_import_helpers.ts";

Deno.test("import --dry-run shows every node's fate and touches nothing", async () => {
  const env = await template.copy();
  const custom = join(env, "ComfyUI", "custom_nodes");
  const before = await truthFiles(env);
  const tree = await listDir(custom);
  const txs = await txCount(env);
  const r = await withRegistry((renv) =>
    govJson(env, ["snapshot", "import", fx.jsonFile, "--dry-run"], renv)
  );
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

Deno.test("import is one transaction: pinned commits, disabled node parked, unneeded pips left out", async () => {
  const env = await template.copy();
  const custom = join(env, "ComfyUI", "custom_nodes");
  const txs = await txCount(env);
  const r = await withRegistry((renv) => govJson(env, ["snapshot", "import", fx.jsonFile], renv));
  assertEquals(r.status, "promoted");
  assertEquals(r.tx_nodes.sort(), ["ComfyUI-Alpha", "ComfyUI-Beta", "reg-node"]);
  assertEquals(await txCount(env), txs + 1);
  const idx = await govJson(env, ["snapshot", "list"]);
  assertEquals(idx.find((s: { id: string }) => s.id === r.before_snapshot)?.reason, "pre-import");
  const tx = await readJson(join(env, "state", "transactions", `${r.txid}.json`));
  assertEquals(tx.node_ids.sort(), ["ComfyUI-Alpha", "ComfyUI-Beta", "reg-node"]);
  assertEquals(tx.status, "promoted");
  const p = await plugins(env);
  assertEquals(Object.keys(p).sort(), ["ComfyUI-Alpha", "ComfyUI-Beta", "reg-node"]);
  assertEquals(p["ComfyUI-Alpha"].commit, fx.alphaPin);
  assertEquals(p["ComfyUI-Beta"].url, fx.beta);
  assertEquals(p["reg-node"].source, "registry");
  assertEquals(p["reg-node"].version, "1.0.0");
  assertEquals(p["ComfyUI-Alpha"].managed_deps, ["einops==0.7.0"]);
  assertEquals(p["reg-node"].last_txid, r.txid);
  assertEquals(await git(["rev-parse", "HEAD"], join(custom, "ComfyUI-Alpha")), fx.alphaPin);
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

Deno.test("importing the same file again changes nothing", async () => {
  const env = await imported.copy();
  const txs = await txCount(env);
  const r = await withRegistry((renv) => govJson(env, ["snapshot", "import", fx.jsonFile], renv));
  assertEquals(r.txid, null);
  assertEquals(
    r.nodes.filter((n: { action: string }) => n.action !== "unchanged").map((
      n: { id: string },
    ) => n.id),
    ["night-node"],
  );
  assertEquals(await txCount(env), txs);
});

Deno.test("code gone from custom_nodes/ is restored; a registry hash is checked", async () => {
  const env = await imported.copy();
  const custom = join(env, "ComfyUI", "custom_nodes");
  await Deno.remove(join(custom, "reg-node"), { recursive: true });
  await Deno.remove(join(custom, "ComfyUI-Beta"), { recursive: true });
  const pluginsFile = join(env, "state", "plugins.json");
  const good = await Deno.readTextFile(pluginsFile);
  const doc = JSON.parse(good);
  doc.plugins["reg-node"].hash = "sha256:" + "0".repeat(64);
  await Deno.writeTextFile(pluginsFile, JSON.stringify(doc, null, 2));
  const tampered = await truthFiles(env);
  await withRegistry(async (renv) => {
    const bad = await govIn(env, ["snapshot", "import", fx.jsonFile], renv);
    assertEquals(bad.code, 1, bad.stderr);
    assertMatch(bad.stderr, /reg-node/);
    assertMatch(bad.stderr, /sha256:0000/);
    assertEquals(await exists(join(custom, "reg-node")), false);
    assertEquals(await exists(join(custom, "ComfyUI-Beta")), false);
    assertEquals(await truthFiles(env), tampered);
    await Deno.writeTextFile(pluginsFile, good);
    const txs = await txCount(env);
    const r = await govJson(env, ["snapshot", "import", fx.jsonFile], renv);
    const act = Object.fromEntries(
      r.nodes.map((n: { id: string; action: string }) => [n.id, n.action]),
    );
    assertEquals(act["reg-node"], "restore");
    assertEquals(act["ComfyUI-Beta"], "restore");
    // Their dependencies were promoted already: no transaction.
    assertEquals(r.txid, null);
    assertEquals(await txCount(env), txs);
  });
  assertTrue(await exists(join(custom, "reg-node", "__init__.py")));
  assertEquals(await git(["rev-parse", "HEAD"], join(custom, "ComfyUI-Beta")), fx.betaPin);
});

/** Exports `env` with `--format manager` into a new file; returns its path. */
async function exportManager(env: string): Promise<string> {
  const exported = join(await imported.dir("export"), "exported.json");
  const r = await govIn(env, ["snapshot", "export", "--format", "manager", "-o", exported]);
  assertEquals(r.code, 0, r.stderr);
  return exported;
}

Deno.test("export --format manager writes what the Manager restores", async () => {
  const env = await imported.copy();
  const { before_snapshot: preSnapshot, post_snapshot: postSnapshot } = await imported.result();
  const exported = await exportManager(env);
  const doc = await readJson(exported);
  assertEquals(Object.keys(doc).sort(), [
    "cnr_custom_nodes",
    "comfyui",
    "file_custom_nodes",
    "git_custom_nodes",
    "pips",
  ]);
  assertEquals(doc.git_custom_nodes[fx.alpha], { hash: fx.alphaPin, disabled: false });
  assertEquals(doc.git_custom_nodes[fx.beta], { hash: fx.betaPin, disabled: false });
  assertEquals(doc.git_custom_nodes[fx.gamma], { hash: fx.gammaPin, disabled: true });
  assertEquals(doc.cnr_custom_nodes, { "reg-node": "1.0.0" });
  assertEquals(doc.pips["einops==0.7.0"], "");
  assertEquals(doc.pips["sortedcontainers==2.3.0"], "");
  // The Manager's own layout: 4-space indented JSON.
  assertMatch(await Deno.readTextFile(exported), /^\{\n {4}"comfyui"/);
  // From gov snapshots: what each recorded (parked folders are not part of them).
  const post = await govIn(env, ["snapshot", "export", postSnapshot, "--format", "manager"]);
  assertEquals(post.code, 0, post.stderr);
  const pdoc = JSON.parse(post.stdout);
  assertEquals(Object.keys(pdoc.git_custom_nodes).sort(), [fx.alpha, fx.beta].sort());
  assertEquals(pdoc.cnr_custom_nodes, { "reg-node": "1.0.0" });
  const pre = await govIn(env, ["snapshot", "export", preSnapshot, "--format", "manager"]);
  const predoc = JSON.parse(pre.stdout);
  assertEquals([predoc.git_custom_nodes, predoc.cnr_custom_nodes], [{}, {}]);
  assertEquals(predoc.pips["einops==0.7.0"], undefined);
});

Deno.test("the Manager export imports into a fresh environment to the same state", async () => {
  const env = await imported.copy();
  const exported = await exportManager(env);
  const fresh = await template.copy();
  const r = await withRegistry((renv) => govJson(fresh, ["snapshot", "import", exported], renv));
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

Deno.test("snapshot diff names the nodes and packages the import brought", async () => {
  const env = await imported.copy();
  const { before_snapshot: preSnapshot, txid } = await imported.result();
  const d = await govJson(env, ["snapshot", "diff", preSnapshot, "current"]);
  assertEquals(
    d.nodes.added.map((n: { id: string; pin: string }) => `${n.id}@${n.pin}`).sort(),
    [`ComfyUI-Alpha@${fx.alphaPin}`, `ComfyUI-Beta@${fx.betaPin}`, "reg-node@1.0.0"],
  );
  assertEquals(d.nodes.removed, []);
  const added = d.packages.added.map((p: { name: string }) => p.name).sort();
  assertTrue(added.includes("einops") && added.includes("sortedcontainers"), added);
  const back = await govJson(env, ["snapshot", "diff", "current", preSnapshot]);
  assertEquals(back.nodes.removed.length, 3);
  const text = await govIn(env, ["snapshot", "diff", preSnapshot, "current"]);
  assertMatch(text.stdout, new RegExp(`\\+ node ComfyUI-Alpha git ${fx.alphaPin.slice(0, 12)}`));
  assertTrue(typeof txid === "string" && txid.length > 0);
});

Deno.test("a comfy-cli YAML snapshot with --with-pips pins the pips; export round-trips", async () => {
  const fresh = await template.copy();
  const alpha = fx.alpha;
  const yamlFile = join(await template.dir("yaml"), "snapshot.yaml");
  await Deno.writeTextFile(
    yamlFile,
    stringifyYaml({
      custom_nodes: {
        comfyui: null,
        git_custom_nodes: { [`${alpha}.git`]: { hash: fx.alphaPin, disabled: false } },
        cnr_custom_nodes: {},
        file_custom_nodes: [],
        pips: { "pyyaml==6.0.2": "", "einops==0.7.0": "" },
      },
    }),
  );
  // Tests of one file run one at a time: no other test sees the renamed repository.
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
      [`${alpha}.git`]: { hash: fx.alphaPin, disabled: false },
    });
    assertEquals(
      (doc.custom_nodes.pips as Record<string, string>)["pyyaml==6.0.2"],
      "",
    );
  } finally {
    await Deno.rename(`${alpha}.git`, alpha);
  }
});

Deno.test("rollback to the pre-import snapshot undoes the import", async () => {
  const env = await imported.copy();
  const { before_snapshot: preSnapshot } = await imported.result();
  const r = await govJson(env, ["rollback", preSnapshot]);
  assertEquals(r.disabled.sort(), ["ComfyUI-Alpha", "ComfyUI-Beta", "reg-node"]);
  assertEquals(Object.keys(await plugins(env)), []);
  assertEquals(await prodFreeze(env), await prodFreeze(await template.env()));
});

Deno.test("bad snapshot files and export formats are usage errors", async () => {
  const env = await imported.copy();
  const files = await imported.dir("files");
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
