/**
 * The pure parts of dependency governance: reading uv's failures (real uv texts from
 * REFERENCE.md), pyproject.toml edits that keep the user's layout, pins, freezes and diffs.
 */
import { assertEquals, assertMatch, assertThrows, assertTrue } from "../helpers/assert.ts";
import {
  classifyUvFailure,
  UvConflictError,
  UvEnvironmentError,
  uvErrorFor,
  UvStaleLockError,
  UvUnavailableError,
} from "../../src/uv/errors.ts";
import { locateUv } from "../../src/uv/driver.ts";
import {
  nodeGroup,
  parsePyproject,
  removeGroup,
  removeOverrides,
  requirementName,
  setOverrides,
} from "../../src/gov/state/pyproject.ts";
import { mergePins, parsePin } from "../../src/gov/ops/resolve.ts";
import {
  coreImpact,
  corePackages,
  describeDiff,
  diffFreeze,
  lockFreeze,
} from "../../src/gov/state/freeze.ts";
import { validatePlugins } from "../../src/gov/state/schema.ts";
import { importFailures, testArgs } from "../../src/gov/steps/comfyrun.ts";
import { ConfigError, type GovError, UsageError } from "../../src/errors.ts";

const CONFLICT = `  × No solution found when resolving dependencies:
  ╰─▶ Because project:node-beta depends on sortedcontainers==2.4.0 and project:node-alpha.v2 depends on sortedcontainers==2.3.0, we can conclude that project:node-alpha.v2 and project:node-beta are incompatible.
      And because your project requires project:node-alpha.v2 and project:node-beta, we can conclude that your project's requirements are unsatisfiable.
`;

const OFFLINE = `  × No solution found when resolving dependencies:
  ╰─▶ Because tinydep was not found in the package registry and project:node-x depends on tinydep, we can conclude that your project's requirements are unsatisfiable.

      hint: Packages were unavailable because the network was disabled. When the network is disabled, registry packages may only be read from the cache.
`;

const BASE = `  × No solution found when resolving dependencies:
  ╰─▶ Because your project depends on torch==2.1.0 and project:node-newtorch depends on torch==2.3.1, we can conclude that your project and project:node-newtorch are incompatible.
`;

Deno.test("uv failures: a conflict names the custom nodes from project:node-<id>", () => {
  const f = classifyUvFailure(CONFLICT, 1, ["alpha.v2", "beta"]);
  assertEquals(f.kind, "conflict");
  assertEquals(f.groups, ["node-alpha.v2", "node-beta"]);
  assertEquals(f.nodes, ["alpha.v2", "beta"]);
  assertEquals(f.involvesBase, false);
  assertEquals(f.packages, ["sortedcontainers"]);
  assertMatch(f.summary, /^Because project:node-beta depends on/);
  assertTrue(uvErrorFor("lock", 1, "", CONFLICT) instanceof UvConflictError);
});

Deno.test("uv failures: network disabled is an environment error, never a conflict", () => {
  const f = classifyUvFailure(OFFLINE, 1);
  assertEquals(f.kind, "environment");
  const err = uvErrorFor("lock", 1, "", OFFLINE);
  assertTrue(err instanceof UvEnvironmentError);
  assertTrue(!(err instanceof UvConflictError));
  assertMatch(err.hint ?? "", /network/);
});

Deno.test("uv failures: the base requirements taking part are recognised", () => {
  const f = classifyUvFailure(BASE, 1, ["newtorch"]);
  assertEquals(f.kind, "conflict");
  assertEquals(f.nodes, ["newtorch"]);
  assertEquals(f.involvesBase, true);
  assertEquals(f.packages, ["torch"]);
});

// What real uv prints for a package no index has (network on): not a conflict, and not a
// host problem either.
const MISSING = `  × No solution found when resolving dependencies:
  ╰─▶ Because nosuchpkg was not found in the package registry and project:node-x depends on nosuchpkg, we can conclude that your project's requirements are unsatisfiable.
`;

Deno.test("uv failures: a package the registry does not have is neither conflict nor host", () => {
  const f = classifyUvFailure(MISSING, 1, ["x"]);
  assertEquals(f.kind, "unavailable");
  assertEquals(f.packages, ["nosuchpkg"]);
  assertEquals(f.nodes, ["x"]);
  const err = uvErrorFor(
    "lock",
    1,
    "",
    MISSING.replace("package registry", "provided package locations"),
  );
  assertTrue(err instanceof UvUnavailableError);
  assertMatch(err.message, /nosuchpkg not found in the package registry or find-links/);
  // Offline, the same sentence comes with uv's network hint: the host's problem.
  assertEquals(classifyUvFailure(OFFLINE, 1).kind, "environment");
});

Deno.test("uv failures: uv's normalised group names map back to the registered node ids", () => {
  // uv writes and prints `--group node-ComfyUI_Impact.Pack` as `node-comfyui-impact-pack`.
  const text = `  × No solution found when resolving dependencies:
  ╰─▶ Because project:node-comfyui-impact-pack depends on sortedcontainers==2.4.0 and project:node-was-ns depends on sortedcontainers==2.3.0, we can conclude that project:node-comfyui-impact-pack and project:node-was-ns are incompatible.
      And because your project requires project:node-comfyui-impact-pack and project:node-was-ns, we can conclude that your project's requirements are unsatisfiable.
`;
  const f = classifyUvFailure(text, 1, ["ComfyUI_Impact.Pack", "WAS_NS"]);
  assertEquals(f.kind, "conflict");
  assertEquals(f.groups, ["node-comfyui-impact-pack", "node-was-ns"]);
  assertEquals(f.nodes, ["ComfyUI_Impact.Pack", "WAS_NS"]);
  assertEquals(nodeGroup("ComfyUI_Impact.Pack"), "node-comfyui-impact-pack");
});

Deno.test("uv failures: a stale lock under --locked", () => {
  const text =
    "error: The lockfile at `uv.lock` needs to be updated, but `--locked` was provided. To update the lockfile, run `uv lock`.\n";
  assertEquals(classifyUvFailure(text, 1).kind, "stale-lock");
  assertTrue(uvErrorFor("sync", 1, "", text) instanceof UvStaleLockError);
  assertEquals(classifyUvFailure("\x1b[31merror\x1b[0m: boom\n", 2).summary, "error: boom");
});

Deno.test("locateUv: GOV_UV, then [tools] uv, then PATH; missing uv says how to fix", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const uv = `${dir}/uv`;
    await Deno.writeTextFile(uv, "#!/bin/sh\n");
    await Deno.chmod(uv, 0o755);
    const env = (m: Record<string, string>) => (n: string) => m[n];
    assertEquals(locateUv({ baseDir: "/", getenv: env({ GOV_UV: uv }) }), uv);
    assertEquals(locateUv({ configured: "./uv", baseDir: dir, getenv: env({}) }), uv);
    assertEquals(locateUv({ baseDir: "/", getenv: env({ PATH: `/nonexistent:${dir}` }) }), uv);
    const err = assertThrows(() =>
      locateUv({ baseDir: "/", getenv: env({ PATH: "/nonexistent" }) })
    );
    assertMatch(err.message, /uv not found \(uv: not found on PATH/);
    assertMatch((err as GovError).hint ?? "", /GOV_UV/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const PY = `# my environment
[project]
name = "comfyui-env-prod"
version = "0.0.0"
dependencies = [
    "torch==2.1.0",  # keep in step with the driver
]

[dependency-groups]
node-a = ["tqdm"]
"node-b" = [
    "requests",
    "einops>=0.7", # comment ] inside
]
node-c = []

[tool.uv]
package = false # virtual
`;

Deno.test("pyproject: overrides are set and merged, comments kept", () => {
  const one = setOverrides(PY, ["numpy==1.26.4"], "pyproject.toml");
  assertEquals(parsePyproject(one, "p").overrides, ["numpy==1.26.4"]);
  assertMatch(one, /# my environment/);
  assertMatch(
    one,
    /package = false # virtual\noverride-dependencies = \[\n {4}"numpy==1\.26\.4",\n\]/,
  );
  const two = setOverrides(one, ["Numpy==2.1.0", "tqdm==4.66.4"], "p");
  assertEquals(parsePyproject(two, "p").overrides, ["Numpy==2.1.0", "tqdm==4.66.4"]);
  const noTable = setOverrides(`[project]\nname = "x"\n`, ["a==1"], "p");
  assertEquals(parsePyproject(noTable, "p").overrides, ["a==1"]);
  const less = removeOverrides(two, ["NUMPY"], "p");
  assertEquals(parsePyproject(less, "p").overrides, ["tqdm==4.66.4"]);
  assertEquals(removeOverrides(less, ["numpy"], "p"), less);
  const none = removeOverrides(less, ["tqdm"], "p");
  assertEquals(parsePyproject(none, "p").overrides, []);
  assertTrue(!none.includes("override-dependencies"));
  assertMatch(none, /package = false # virtual/);
});

Deno.test("pyproject: a group is removed exactly, others and comments kept", () => {
  const out = removeGroup(PY, "node-b", "p");
  const py = parsePyproject(out, "p");
  assertEquals(py.groups, { "node-a": ["tqdm"], "node-c": [] });
  assertMatch(out, /# keep in step with the driver/);
  assertEquals(removeGroup(out, "node-b", "p"), out);
  assertEquals(parsePyproject(removeGroup(PY, "node-a", "p"), "p").groups["node-b"], [
    "requests",
    "einops>=0.7",
  ]);
});

Deno.test("pyproject: groups are found by their normalised name, whatever the spelling", () => {
  const text =
    `[project]\nname = "x"\n\n[dependency-groups]\nnode-Comfy_Up = ["tqdm"]\nnode-b = []\n`;
  const py = parsePyproject(text, "p");
  assertEquals(py.groups, { "node-comfy-up": ["tqdm"], "node-b": [] });
  assertEquals(py.groupKeys["node-comfy-up"], "node-Comfy_Up");
  const out = removeGroup(text, nodeGroup("Comfy_Up"), "p");
  assertEquals(parsePyproject(out, "p").groups, { "node-b": [] });
  // Two spellings of one group are one group to uv: refused, naming the field.
  assertMatch(
    assertThrows(() => parsePyproject(text + 'node-comfy-up = ["x"]\n', "p")).message,
    /dependency-groups\.node-comfy-up must be a group name distinct from 'node-Comfy_Up'/,
  );
  // plugins.json records the group uv uses; the id as typed is accepted too.
  const rec = (group: string) => ({
    version: 1,
    plugins: {
      Comfy_Up: {
        id: "Comfy_Up",
        group,
        url: "u",
        managed_deps: [],
        added_at: "2026-01-01T00:00:00Z",
        updated_at: "2026-01-01T00:00:00Z",
      },
    },
  });
  validatePlugins(rec("node-comfy-up"), "plugins.json");
  validatePlugins(rec("node-Comfy_Up"), "plugins.json");
  assertMatch(
    assertThrows(() => validatePlugins(rec("node-other"), "plugins.json")).message,
    /plugins\.Comfy_Up\.group must be 'node-comfy-up'/,
  );
});

Deno.test("pyproject: invalid files name the field", () => {
  const e = assertThrows(() => parsePyproject("[project]\nversion = 1\n", "/e/pyproject.toml"));
  assertTrue(e instanceof ConfigError);
  assertMatch(e.message, /pyproject\.toml: project\.name must be a non-empty string/);
  assertMatch(
    assertThrows(() => parsePyproject('[project]\nname="x"\ndependencies = "torch"\n', "p"))
      .message,
    /project\.dependencies must be a list of strings/,
  );
});

Deno.test("pins and requirement names", () => {
  assertEquals(parsePin("NumPy == 1.26.4"), "numpy==1.26.4");
  assertEquals(parsePin("typing_extensions==4.12.2"), "typing-extensions==4.12.2");
  for (const bad of ["numpy", "numpy>=1", "numpy==", "numpy==1.0; rm", "../x==1", "numpy==x.y"]) {
    assertTrue(assertThrows(() => parsePin(bad)) instanceof UsageError, bad);
  }
  assertEquals(mergePins(["numpy==2.1.0", "tqdm==1"], ["numpy==1.26.4"]), [
    "tqdm==1",
    "numpy==1.26.4",
  ]);
  assertEquals(requirementName("opencv-python>=4.8 ; sys_platform == 'linux'"), "opencv-python");
  assertEquals(requirementName("Pillow[extra]"), "pillow");
  assertEquals(requirementName("--extra-index-url https://x"), undefined);
  assertEquals(requirementName("# comment"), undefined);
});

Deno.test("freeze diff and core impact", () => {
  const d = diffFreeze(
    ["numpy==2.1.0", "torch==2.1.0", "tqdm==4.66.4"],
    ["numpy==1.26.4", "torch==2.1.0", "Requests==2.32.3"],
  );
  assertEquals(d, {
    added: ["requests==2.32.3"],
    removed: ["tqdm==4.66.4"],
    changed: [{ name: "numpy", from: "2.1.0", to: "1.26.4" }],
  });
  assertEquals(coreImpact(d, corePackages([])), ["numpy"]);
  assertEquals(coreImpact(d, corePackages(["TQDM"])), ["numpy", "tqdm"]);
  assertEquals(coreImpact({ added: [], removed: [], changed: [] }, corePackages([])), []);
  assertEquals(describeDiff(d), ["numpy 2.1.0 -> 1.26.4", "+requests 2.32.3", "-tqdm 4.66.4"]);
  assertEquals(describeDiff(d, ["numpy"]), ["numpy 2.1.0 -> 1.26.4"]);
});

Deno.test("lock freeze: what a uv.lock installs, the project itself left out", () => {
  const lock = `version = 1
revision = 3
requires-python = ">=3.10"

[[package]]
name = "comfyui-env-prod"
version = "0.0.0"
source = { virtual = "." }

[[package]]
name = "Torch"
version = "2.1.0"
source = { registry = "../wheels" }

[[package]]
name = "typing_extensions"
version = "4.12.2"
source = { registry = "../wheels" }
`;
  assertEquals(lockFreeze(lock, "uv.lock"), ["torch==2.1.0", "typing-extensions==4.12.2"]);
  const moved = lockFreeze(lock.replace('"2.1.0"', '"2.3.1"'), "uv.lock");
  const d = diffFreeze(lockFreeze(lock, "uv.lock"), moved);
  assertEquals(coreImpact(d, corePackages([])), ["torch"]);
  assertMatch(
    assertThrows(() => lockFreeze('version = 1\n[[package]]\nversion = "1"\n', "/e/uv.lock"))
      .message,
    /uv\.lock: package\[0\]\.name must be a string/,
  );
});

Deno.test("ComfyUI test start: import failures and port flags", () => {
  const log = [
    "Import times for custom nodes:",
    "   0.0 seconds: /c/ComfyUI/custom_nodes/ok",
    "   0.1 seconds (IMPORT FAILED): /c/ComfyUI/custom_nodes/broken",
    "   0.0 seconds (IMPORT FAILED): /c/ComfyUI/custom_nodes/single.py",
  ].join("\n");
  assertEquals(importFailures(log), ["broken", "single"]);
  assertEquals(testArgs(["--listen", "0.0.0.0", "--port", "8188", "--cpu"]), ["--cpu"]);
  assertEquals(testArgs(["--listen", "--cpu", "--port=9000"]), ["--cpu"]);
});
