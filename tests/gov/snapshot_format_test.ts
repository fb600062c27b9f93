// Reading and writing ComfyUI-Manager / comfy-cli snapshot files: the shapes ComfyUI-Manager
// 4.3 writes (json.dump with indent 4; PyYAML's dump under custom_nodes:) and their edge
// cases (null pips, the Manager itself, .git URLs, disabled nodes, URL and editable pips).
import {
  nodeIdOfUrl,
  normalizeGitUrl,
  parseManagerSnapshot,
  renderManagerSnapshot,
} from "../../src/gov/ops/snapshot_format.ts";
import { UsageError } from "../../src/errors.ts";
import { registryUrl } from "../../src/gov/ops/node_add_registry.ts";
import { makeContext } from "../../src/gov/steps/context.ts";
import { DEFAULT_REGISTRY_URL } from "../../src/registry/mod.ts";
import { loadEnvironment } from "../../src/workspace/environment.ts";
import { workspaceAt } from "../../src/workspace/root.ts";
import { join } from "node:path";
import { assertEquals, assertThrows } from "../helpers/assert.ts";

// What PyYAML 6 prints for such a snapshot (keys sorted, block style), as cm-cli saves it.
const PYYAML = `custom_nodes:
  cnr_custom_nodes:
    comfyui-impact-pack: 8.8.1
    rgthree-comfy: '1.0'
  comfyui: 4e8cbbb8b3ab4f1c2bd6b7e6e4c0d2a9b0c3f1aa
  file_custom_nodes:
  - disabled: false
    filename: example_node.py
  git_custom_nodes:
    https://github.com/cubiq/ComfyUI_essentials.git:
      disabled: true
      hash: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
    https://github.com/kijai/ComfyUI-KJNodes:
      disabled: false
      hash: 1234567e89012345678901234567890123456789
    https://github.com/ltdrdata/ComfyUI-Manager:
      disabled: false
      hash: cccccccccccccccccccccccccccccccccccccccc
  pips:
    -e git+https://github.com/x/y@abc#egg=y: ''
    mypkg: file:///tmp/mypkg-1.0-py3-none-any.whl
    numpy==1.26.4: ''
    torch==2.3.1+cu121: ''
`;

Deno.test("a PyYAML (comfy-cli / cm-cli) snapshot reads as the Manager's JSON does", () => {
  const s = parseManagerSnapshot(PYYAML, "s.yaml");
  assertEquals(s.comfyui, "4e8cbbb8b3ab4f1c2bd6b7e6e4c0d2a9b0c3f1aa");
  assertEquals(s.git.map((g) => [g.id, g.disabled, g.commit.slice(0, 8)]), [
    ["ComfyUI_essentials", true, "bbbbbbbb"],
    // Digits and one 'e': a float to YAML 1.2, a string to PyYAML's YAML 1.1.
    ["ComfyUI-KJNodes", false, "1234567e"],
  ]);
  assertEquals(s.registry, [
    { id: "comfyui-impact-pack", version: "8.8.1" },
    { id: "rgthree-comfy", version: "1.0" },
  ]);
  assertEquals(s.skipped.length, 1);
  assertEquals(s.files, [{ filename: "example_node.py", disabled: false }]);
  const pips = Object.fromEntries(s.pips.map((p) => [p.raw, [p.name, p.version, p.url]]));
  assertEquals(pips["numpy==1.26.4"], ["numpy", "1.26.4", undefined]);
  assertEquals(pips["torch==2.3.1+cu121"], ["torch", "2.3.1+cu121", undefined]);
  assertEquals(pips["mypkg"], ["mypkg", undefined, "file:///tmp/mypkg-1.0-py3-none-any.whl"]);
  assertEquals(pips["-e git+https://github.com/x/y@abc#egg=y"], [undefined, undefined, undefined]);
  // The same snapshot as the Manager's json.dump(indent=4) writes it.
  const json = JSON.stringify(
    {
      comfyui: "4e8cbbb8b3ab4f1c2bd6b7e6e4c0d2a9b0c3f1aa",
      git_custom_nodes: {
        "https://github.com/cubiq/ComfyUI_essentials.git": {
          hash: "b".repeat(40),
          disabled: true,
        },
        "https://github.com/kijai/ComfyUI-KJNodes": {
          hash: "1234567e89012345678901234567890123456789",
          disabled: false,
        },
        "https://github.com/ltdrdata/ComfyUI-Manager": { hash: "c".repeat(40), disabled: false },
      },
      cnr_custom_nodes: { "comfyui-impact-pack": "8.8.1", "rgthree-comfy": "1.0" },
      file_custom_nodes: [{ filename: "example_node.py", disabled: false }],
      pips: {
        "-e git+https://github.com/x/y@abc#egg=y": "",
        "mypkg": "file:///tmp/mypkg-1.0-py3-none-any.whl",
        "numpy==1.26.4": "",
        "torch==2.3.1+cu121": "",
      },
    },
    null,
    4,
  );
  assertEquals(parseManagerSnapshot(json, "s.json"), s);
});

Deno.test("custom-nodes-only snapshots (comfyui and pips null) and empty sections read", () => {
  const s = parseManagerSnapshot(
    JSON.stringify({
      comfyui: null,
      git_custom_nodes: {},
      cnr_custom_nodes: {},
      file_custom_nodes: [],
      pips: null,
    }),
    "s.json",
  );
  assertEquals([s.comfyui, s.git, s.registry, s.pips], [null, [], [], []]);
});

Deno.test("bad snapshot files are usage errors naming the field", () => {
  const bad = (text: string, re: RegExp) =>
    assertThrows(() => parseManagerSnapshot(text, "s.json"), UsageError, re);
  bad("{not json", /neither JSON nor YAML/);
  bad('{"pips": {}}', /neither git_custom_nodes nor cnr_custom_nodes/);
  bad('{"git_custom_nodes": {"https://x/a": {"hash": "zz"}}}', /hash is not a commit/);
  bad('{"git_custom_nodes": {"https://x/a": "abc"}}', /hash is not a commit/);
  bad('{"cnr_custom_nodes": {"a": 1}}', /is not a version/);
  bad('{"cnr_custom_nodes": {"../x": "1.0.0"}}', /not a registry id/);
  bad(
    `{"git_custom_nodes": {"https://x/a/N": {"hash": "${
      "a".repeat(40)
    }"}, "https://y/b/N.git": {"hash": "${"b".repeat(40)}"}}}`,
    /would both be custom node N/,
  );
});

Deno.test("node ids and URL normalisation follow the Manager", () => {
  assertEquals(nodeIdOfUrl("https://github.com/a/ComfyUI-X.git"), "ComfyUI-X");
  assertEquals(nodeIdOfUrl("https://github.com/a/ComfyUI-X/"), "ComfyUI-X");
  assertEquals(normalizeGitUrl("git@github.com:a/b.git"), "https://github.com/a/b");
  assertEquals(normalizeGitUrl("https://github.com/a/b.git"), "https://github.com/a/b");
  assertEquals(normalizeGitUrl("https://git.example/a/b.git"), "https://git.example/a/b");
});

Deno.test("rendered snapshots read back to the same content, JSON and YAML", () => {
  const content = {
    comfyui: null,
    git: [
      {
        url: "https://github.com/a/N1",
        commit: "1234567e89012345678901234567890123456789",
        disabled: false,
      },
      { url: "https://github.com/a/N2.git", commit: "b".repeat(40), disabled: true },
    ],
    registry: [{ id: "reg", version: "1.0" }],
    packages: ["numpy==1.26.4", "on==1.0"],
  };
  for (const format of ["manager", "comfy-cli"] as const) {
    const text = renderManagerSnapshot(content, format);
    const s = parseManagerSnapshot(text, `s.${format}`);
    assertEquals(
      s.git.map((g) => ({ url: g.url, commit: g.commit, disabled: g.disabled })),
      content.git,
    );
    assertEquals(s.registry, content.registry);
    assertEquals(s.pips.map((p) => p.raw), content.packages);
  }
  const yaml = renderManagerSnapshot(content, "comfy-cli");
  assertEquals(yaml.startsWith("custom_nodes:\n"), true);
  // A string PyYAML would read as a number is quoted.
  assertEquals(/version|'1\.0'|"1\.0"/.test(yaml), true);
});

Deno.test("the registry comes from GOV_REGISTRY_URL, else [registry] url of gov.toml, else the public one", async () => {
  const root = await Deno.makeTempDir({ prefix: "gov-registry-url-" });
  try {
    const envDir = join(root, "environments", "prod");
    await Deno.mkdir(envDir, { recursive: true });
    const env = loadEnvironment(envDir, workspaceAt(root));
    const none = () => undefined;
    assertEquals(await registryUrl(makeContext(env, { getenv: none })), DEFAULT_REGISTRY_URL);
    await Deno.writeTextFile(
      join(root, "gov.toml"),
      '[registry]\nurl = "http://127.0.0.1:9/mirror/"\n',
    );
    assertEquals(
      await registryUrl(makeContext(env, { getenv: none })),
      "http://127.0.0.1:9/mirror",
    );
    const over = (n: string) => n === "GOV_REGISTRY_URL" ? "http://127.0.0.1:8/" : undefined;
    assertEquals(await registryUrl(makeContext(env, { getenv: over })), "http://127.0.0.1:8");
    // Outside a workspace there is no gov.toml to read.
    assertEquals(
      await registryUrl(makeContext(loadEnvironment(envDir), { getenv: none })),
      DEFAULT_REGISTRY_URL,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
