/**
 * The facts gov relies on, proven against the real pinned uv (offline over the test
 * wheelhouse): flags, uv.lock format, exit codes and error texts. Where gov parses uv's
 * output (failure classification, `pip list`, lock reading, freezes), the parser is fed
 * what the real uv printed in the same test.
 */
import { parse as parseToml } from "smol-toml";
import { assertEquals, assertMatch, assertNotMatch, assertTrue } from "../helpers/assert.ts";
import { UV } from "../helpers/paths.ts";
import { UV_VERSION } from "../../scripts/tools.ts";
import { Uv } from "../../src/uv/driver.ts";
import {
  classifyUvFailure,
  UvConflictError,
  UvEnvironmentError,
  uvErrorFor,
  UvStaleLockError,
  UvUnavailableError,
} from "../../src/uv/errors.ts";
import { freezeLines, lockFreeze } from "../../src/gov/state/freeze.ts";
import { nodeGroup, parsePyproject } from "../../src/gov/state/pyproject.ts";
import { uvTestEnv } from "../helpers/wheelhouse.ts";

interface UvResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the pinned uv offline over the wheelhouse; an empty value in `env` unsets a variable. */
async function uv(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<UvResult> {
  const vars = {
    ...Deno.env.toObject(),
    ...await uvTestEnv({ NO_COLOR: "1", UV_NO_PROGRESS: "1", ...env }),
  };
  for (const [k, v] of Object.entries(vars)) if (v === "") delete vars[k];
  const out = await new Deno.Command(UV, {
    args,
    cwd,
    env: vars,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function pyproject(
  deps: string[],
  groups: Record<string, string[]> = {},
  extra = "",
  name = "project",
): string {
  const list = (items: string[]) => `[${items.map((d) => JSON.stringify(d)).join(", ")}]`;
  let text =
    `[project]\nname = "${name}"\nversion = "0.1.0"\nrequires-python = ">=3.10"\ndependencies = ${
      list(deps)
    }\n`;
  if (Object.keys(groups).length) {
    text += "\n[dependency-groups]\n";
    for (const [group, items] of Object.entries(groups)) text += `${group} = ${list(items)}\n`;
  }
  return text + extra;
}

async function withProject(
  text: string,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "real-uv-test-" });
  try {
    await Deno.writeTextFile(`${dir}/pyproject.toml`, text);
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// deno-lint-ignore no-explicit-any
type Lock = Record<string, any>;

/** smol-toml builds null-prototype objects; plain ones compare with assertEquals. */
function parseLock(text: string): Lock {
  return JSON.parse(JSON.stringify(parseToml(text)));
}

async function readLock(dir: string): Promise<Lock> {
  return parseLock(await Deno.readTextFile(`${dir}/uv.lock`));
}

function lockedVersions(lock: Lock): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of lock.package) if (p.source.registry) out[p.name] = p.version;
  return out;
}

function freezeMap(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.trim().split("\n").filter(Boolean)) {
    const [name, version] = line.split("==");
    out[name] = version;
  }
  return out;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

function ok(r: UvResult, what: string): void {
  assertEquals(r.code, 0, `${what} failed:\n${r.stderr}`);
}

Deno.test("the pinned uv reports its version to gov; unknown subcommands exit 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const v = await uv(["--version"], dir);
    ok(v, "--version");
    assertMatch(v.stdout, new RegExp(`^uv ${UV_VERSION.replaceAll(".", "\\.")} `));
    assertEquals(await new Uv(UV).version(), v.stdout.trim());
    const bad = await uv(["frobnicate"], dir);
    assertEquals(bad.code, 2);
    assertMatch(bad.stderr, /^error: unrecognized subcommand 'frobnicate'/);
    assertMatch(bad.stderr, /Usage: uv \[OPTIONS\] <COMMAND>/);
    const flag = await uv(["sync", "--frobnicate"], dir);
    assertEquals(flag.code, 2);
    assertMatch(flag.stderr, /error: unexpected argument '--frobnicate' found/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("uv lock: version 1 lock of every group, find-links recorded by absolute path", async () => {
  const links = (await uvTestEnv()).UV_FIND_LINKS;
  await withProject(
    pyproject(["torch==2.1.0", "numpy<2"], { "node-a": ["requests"], "node-b": ["einops"] }),
    async (dir) => {
      const r = await uv(["lock"], dir);
      ok(r, "lock");
      assertMatch(r.stderr, /Resolved 11 packages in /);
      const text = await Deno.readTextFile(`${dir}/uv.lock`);
      // 0.13.8 writes revision 5 (0.12.5 wrote 3); gov reads neither field.
      assertTrue(text.startsWith('version = 1\nrevision = 5\nrequires-python = ">=3.10"\n'));
      const lock = parseLock(text);
      const expected = [
        "certifi==2024.7.4",
        "charset-normalizer==3.3.2",
        "einops==0.8.0",
        "filelock==3.15.4",
        "idna==3.7",
        "numpy==1.26.4",
        "requests==2.32.3",
        "torch==2.1.0",
        "typing-extensions==4.12.2",
        "urllib3==2.2.2",
      ];
      assertEquals(
        Object.entries(lockedVersions(lock)).map(([n, v]) => `${n}==${v}`).sort(),
        expected,
      );
      // gov's lock reader sees exactly what uv locked, the virtual project left out.
      assertEquals(lockFreeze(text, "uv.lock"), expected);
      const root = lock.package.find((p: Lock) => p.name === "project");
      assertEquals(root.source, { virtual: "." });
      assertEquals(root.dependencies, [{ name: "numpy" }, { name: "torch" }]);
      assertEquals(root["dev-dependencies"], {
        "node-a": [{ name: "requests" }],
        "node-b": [{ name: "einops" }],
      });
      assertEquals(root.metadata["requires-dist"], [
        { name: "numpy", specifier: "<2" },
        { name: "torch", specifier: "==2.1.0" },
      ]);
      assertEquals(root.metadata["requires-dev"]["node-a"], [{ name: "requests" }]);
      const torch = lock.package.find((p: Lock) => p.name === "torch");
      // An absolute find-links folder is recorded as it is (not relative to the project), and
      // its wheels by path, without hash or size.
      assertEquals(torch.source, { registry: links });
      assertEquals(torch.dependencies, [{ name: "filelock" }, { name: "typing-extensions" }]);
      assertEquals(torch.wheels, [{ path: `${links}/torch-2.1.0-py3-none-any.whl` }]);
      // An up-to-date lock passes --locked and is not rewritten.
      const locked = await uv(["lock", "--locked"], dir);
      ok(locked, "lock --locked");
      assertEquals(await Deno.readTextFile(`${dir}/uv.lock`), text);
    },
  );
});

Deno.test("uv sync: --locked --all-groups into UV_PROJECT_ENVIRONMENT, exact by default", async () => {
  await withProject(
    pyproject(["numpy==1.26.4"], { "node-a": ["sortedcontainers==2.3.0"], dev: ["tqdm"] }),
    async (dir) => {
      ok(await uv(["lock"], dir), "lock");
      const env = { UV_PROJECT_ENVIRONMENT: ".venv-prod" };
      const sync = await uv(["sync", "--locked", "--all-groups"], dir, env);
      ok(sync, "sync");
      assertMatch(sync.stderr, /Creating virtual environment at: \.venv-prod/);
      assertMatch(sync.stderr, /Installed 3 packages in /);
      assertMatch(sync.stderr, / \+ sortedcontainers==2\.3\.0/);
      assertTrue(!(await exists(`${dir}/.venv`)), "the default .venv must not be created");
      const venv = `${dir}/.venv-prod`;
      const freeze = await uv(["pip", "freeze", "--python", venv], dir);
      ok(freeze, "pip freeze");
      assertEquals(freezeMap(freeze.stdout), {
        numpy: "1.26.4",
        sortedcontainers: "2.3.0",
        tqdm: "4.66.4",
      });
      // The packages are really importable from the venv's interpreter.
      const py = await new Deno.Command(`${venv}/bin/python`, {
        args: ["-c", "import numpy, sortedcontainers; print(numpy.__version__)"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(new TextDecoder().decode(py.stdout).trim(), "1.26.4");

      // Something installed behind uv's back is removed by the next (exact) sync.
      ok(await uv(["pip", "install", "--python", venv, "pyyaml"], dir), "pip install");
      const inexact = await uv(["sync", "--locked", "--all-groups", "--inexact"], dir, env);
      ok(inexact, "sync --inexact");
      assertMatch(inexact.stderr, /Checked 3 packages/);
      assertNotMatch(inexact.stderr, /pyyaml/);
      const exact = await uv(["sync", "--locked", "--all-groups"], dir, env);
      ok(exact, "exact sync");
      assertMatch(exact.stderr, / - pyyaml==6\.0\.2/);
      // Without --all-groups only the dev group is installed: node groups are removed.
      const plain = await uv(["sync", "--locked"], dir, env);
      ok(plain, "default sync");
      assertMatch(plain.stderr, / - sortedcontainers==2\.3\.0/);
      const after = await uv(["pip", "freeze", "--python", venv], dir);
      assertEquals(freezeMap(after.stdout), { numpy: "1.26.4", tqdm: "4.66.4" });
    },
  );
});

Deno.test("uv pip list --format json and pip freeze, read by gov's driver and freeze", async () => {
  await withProject(pyproject(["Typing_Extensions", "pyyaml"]), async (dir) => {
    ok(await uv(["lock"], dir), "lock");
    ok(await uv(["sync", "--locked"], dir), "sync");
    const python = `${dir}/.venv/bin/python`;
    const list = await uv(["pip", "list", "--format", "json", "--python", python], dir);
    ok(list, "pip list");
    // One JSON line of {name, version}; names as the wheels spell them, normalised.
    assertEquals(JSON.parse(list.stdout), [
      { name: "pyyaml", version: "6.0.2" },
      { name: "typing-extensions", version: "4.12.2" },
    ]);
    const freeze = await uv(["pip", "freeze", "--python", python], dir);
    assertEquals(freeze.stdout, "pyyaml==6.0.2\ntyping-extensions==4.12.2\n");
    // gov's driver runs the same command and gets the same list; gov's freeze lines agree
    // with uv's own freeze.
    const driver = new Uv(UV, { env: await uvTestEnv() });
    const pkgs = await driver.pipList(python, { cwd: dir });
    assertEquals(pkgs, JSON.parse(list.stdout));
    assertEquals(freezeLines(pkgs), freeze.stdout.trim().split("\n"));
    // An empty venv lists as [] (gov's empty freeze).
    ok(await uv(["venv", "empty"], dir), "venv");
    assertEquals(await driver.pipList(`${dir}/empty/bin/python`, { cwd: dir }), []);
  });
});

Deno.test("--locked with a stale or missing lock: uv's texts and exit codes, read by gov", async () => {
  await withProject(pyproject(["numpy"]), async (dir) => {
    const missing = await uv(["sync", "--locked"], dir);
    // 0.13.8 exits 1 here (REFERENCE.md had 2, from 0.12.5).
    assertEquals(missing.code, 1);
    assertMatch(
      missing.stderr,
      /^error: Unable to find lockfile at `uv\.lock`, but `--locked` was provided\./m,
    );
    assertTrue(uvErrorFor("sync", missing.code, "", missing.stderr) instanceof UvStaleLockError);
    assertEquals(classifyUvFailure(missing.stderr, missing.code).kind, "missing-lock");
    ok(await uv(["lock"], dir), "lock");
    const before = await Deno.readTextFile(`${dir}/uv.lock`);
    await Deno.writeTextFile(`${dir}/pyproject.toml`, pyproject(["numpy", "einops"]));
    const expected = "error: The lockfile at `uv.lock` needs to be updated, but `--locked` was " +
      "provided.\n\nhint: To update the lockfile, run `uv lock`.\n";
    const lock = await uv(["lock", "--locked"], dir);
    assertEquals(lock.code, 1);
    assertTrue(lock.stderr.endsWith(expected), lock.stderr);
    const sync = await uv(["sync", "--locked"], dir);
    assertEquals(sync.code, 1);
    assertTrue(sync.stderr.endsWith(expected), sync.stderr);
    assertEquals(await Deno.readTextFile(`${dir}/uv.lock`), before, "--locked never writes");
    const err = uvErrorFor("sync", sync.code, "", sync.stderr);
    assertTrue(err instanceof UvStaleLockError);
    assertEquals(err.failure.kind, "stale-lock");
    // The environment is prepared first, but nothing is installed into it.
    const freeze = await uv(["pip", "freeze", "--python", `${dir}/.venv`], dir);
    assertEquals(freeze.stdout, "");
    // Without --locked, sync relocks first.
    const relock = await uv(["sync"], dir);
    ok(relock, "sync relocking");
    assertMatch(relock.stderr, / \+ einops==0\.8\.0/);
    assertEquals(lockedVersions(await readLock(dir)).einops, "0.8.0");
  });
});

Deno.test("a conflict between two node groups: uv's text, and gov names both nodes", async () => {
  await withProject(
    pyproject(["numpy"], {
      "node-Alpha_x": ["conflict-a"],
      "node-ok": ["einops"],
      "node-b": ["conflict-b"],
    }),
    async (dir) => {
      const r = await uv(["lock"], dir);
      assertEquals(r.code, 1);
      // 0.13.8 prints `error:` / `cause:` (0.12.5 drew `×` / `╰─▶`); groups come normalised.
      assertMatch(r.stderr, /^error: No solution found when resolving dependencies\n {2}cause: /m);
      assertMatch(
        r.stderr,
        /we can conclude that project:node-alpha-x and project:node-b are incompatible\./,
      );
      assertMatch(
        r.stderr,
        /\n {9}And because your project requires project:node-alpha-x and project:node-b, we can conclude that your project's requirements are unsatisfiable\.\n$/,
      );
      assertNotMatch(r.stderr, /node-ok/);
      assertNotMatch(r.stderr, /network was disabled/);
      assertTrue(!(await exists(`${dir}/uv.lock`)), "no lock is written on failure");

      const err = uvErrorFor("lock", r.code, r.stdout, r.stderr, ["Alpha_x", "ok", "b"]);
      assertTrue(err instanceof UvConflictError);
      assertEquals(err.failure.kind, "conflict");
      assertEquals(err.failure.groups, ["node-alpha-x", "node-b"]);
      assertEquals(err.failure.nodes, ["Alpha_x", "b"]);
      assertEquals(err.failure.involvesBase, false);
      // Every package the explanation names: the pinned one and both requirers.
      assertEquals(err.failure.packages, ["conflict-a", "conflict-b", "sortedcontainers"]);
      assertMatch(err.failure.summary, /^Because all versions of conflict-b depend on/);
      assertMatch(err.failure.summary, /your project's requirements are unsatisfiable\.$/);
      assertMatch(err.message, /^dependency conflict between custom nodes Alpha_x, b: Because/);
    },
  );
});

Deno.test("a conflict with the project's own requirements: gov sees the base take part", async () => {
  await withProject(
    pyproject(["torch==2.1.0"], { "node-newtorch": ["needs-torch231"] }),
    async (dir) => {
      const r = await uv(["lock"], dir);
      assertEquals(r.code, 1);
      assertMatch(
        r.stderr,
        /And because your project depends on torch==2\.1\.0, we can conclude that your project and project:node-newtorch are incompatible\./,
      );
      const f = classifyUvFailure(r.stderr, r.code, ["newtorch"]);
      assertEquals(f.kind, "conflict");
      assertEquals(f.nodes, ["newtorch"]);
      assertEquals(f.involvesBase, true);
      assertTrue(f.packages.includes("torch"), f.packages.join(","));
    },
  );
});

Deno.test("a package missing offline: the network hint makes it the host's problem", async () => {
  await withProject(pyproject(["numpy"], { "node-x": ["not-in-wheelhouse>=1"] }), async (dir) => {
    const r = await uv(["lock"], dir);
    assertEquals(r.code, 1);
    assertMatch(r.stderr, /^error: No solution found when resolving dependencies$/m);
    assertMatch(
      r.stderr,
      /cause: Because not-in-wheelhouse was not found in the cache and project:node-x depends on not-in-wheelhouse>=1/,
    );
    assertMatch(
      r.stderr,
      /\n\nhint: Packages were unavailable because the network was disabled/,
    );
    const err = uvErrorFor("lock", r.code, r.stdout, r.stderr, ["x"]);
    assertTrue(err instanceof UvEnvironmentError);
    assertTrue(!(err instanceof UvConflictError));
    assertMatch(err.hint ?? "", /network/);
    assertEquals(err.failure.nodes, ["x"]);
  });
  // A version the wheelhouse lacks (offline) is a resolution failure without the hint: gov
  // treats it as a conflict a pin can settle, never as the host's problem.
  await withProject(pyproject(["numpy"], { "node-x": ["numpy>=3"] }), async (dir) => {
    const r = await uv(["lock"], dir);
    assertEquals(r.code, 1);
    assertMatch(r.stderr, /Because only numpy<=2\.1\.0 is available and project:node-x depends/);
    assertNotMatch(r.stderr, /network was disabled/);
    assertEquals(classifyUvFailure(r.stderr, r.code, ["x"]).kind, "conflict");
  });
});

Deno.test("a package no index has (network on): neither a conflict nor the host's problem", async () => {
  // A local index that answers 404 for every project, as PyPI does for a name it lacks.
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("not found", { status: 404 }),
  );
  try {
    const index = `http://127.0.0.1:${server.addr.port}/simple`;
    await withProject(pyproject([], { "node-x": ["nosuchpkg"] }), async (dir) => {
      const r = await uv(["lock"], dir, {
        UV_OFFLINE: "",
        UV_FIND_LINKS: "",
        UV_DEFAULT_INDEX: index,
      });
      assertEquals(r.code, 1);
      assertMatch(r.stderr, /Because nosuchpkg was not found in the package registry/);
      const err = uvErrorFor("lock", r.code, r.stdout, r.stderr, ["x"]);
      assertTrue(err instanceof UvUnavailableError, err.constructor.name);
      assertEquals(err.failure.packages, ["nosuchpkg"]);
    });
  } finally {
    await server.shutdown();
  }
  // Find-links only (`UV_NO_INDEX`, network allowed): the same sentence, the same reading.
  await withProject(pyproject([], { "node-x": ["nosuchpkg"] }), async (dir) => {
    const r = await uv(["lock"], dir, { UV_OFFLINE: "", UV_NO_INDEX: "1" });
    assertEquals(r.code, 1);
    assertMatch(r.stderr, /Because nosuchpkg was not found in the package registry/);
    assertNotMatch(r.stderr, /network was disabled/);
    assertTrue(uvErrorFor("lock", r.code, r.stdout, r.stderr, ["x"]) instanceof UvUnavailableError);
  });
});

Deno.test("an unreachable index: exit 2, an environment error naming the cause", async () => {
  // A port nothing listens on: taken, then released.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  await withProject(pyproject([], { "node-x": ["nosuchpkg"] }), async (dir) => {
    const r = await uv(["lock"], dir, {
      UV_OFFLINE: "",
      UV_FIND_LINKS: "",
      UV_HTTP_RETRIES: "0",
      UV_DEFAULT_INDEX: `http://127.0.0.1:${port}/simple`,
    });
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /^error: Failed to fetch: /m);
    assertMatch(r.stderr, /cause: tcp connect error/);
    const err = uvErrorFor("lock", r.code, r.stdout, r.stderr, ["x"]);
    assertTrue(err instanceof UvEnvironmentError, err.constructor.name);
    assertMatch(err.failure.summary, /^Failed to fetch: .*: Connection refused/);
    assertMatch(err.hint ?? "", /network/);
  });
});

Deno.test("uv exit codes: 0 success, 1 no solution, 2 for usage errors", async () => {
  await withProject(pyproject(["numpy"]), async (dir) => {
    assertEquals((await uv(["lock"], dir)).code, 0);
    assertEquals((await uv(["no-such-subcommand"], dir)).code, 2);
    assertEquals((await uv(["lock", "--no-such-flag"], dir)).code, 2);
    await Deno.writeTextFile(`${dir}/pyproject.toml`, pyproject(["numpy>=3"]));
    assertEquals((await uv(["lock"], dir)).code, 1);
  });
});

Deno.test("relocking keeps locked versions unless a new requirement forces a change", async () => {
  await withProject(pyproject(["torch<2.2", "torchvision"]), async (dir) => {
    ok(await uv(["lock"], dir), "lock");
    assertEquals(lockedVersions(await readLock(dir)).torch, "2.1.0");
    // Loosening the pin alone does not upgrade: uv prefers what is locked.
    await Deno.writeTextFile(
      `${dir}/pyproject.toml`,
      pyproject(["torch", "torchvision"], { "node-a": ["einops"] }),
    );
    const same = await uv(["lock"], dir);
    ok(same, "relock");
    assertNotMatch(same.stderr, /Updated/);
    assertEquals(lockedVersions(await readLock(dir)).torch, "2.1.0");
    // A group that needs another torch moves torch and what pins it, nothing else.
    await Deno.writeTextFile(
      `${dir}/pyproject.toml`,
      pyproject(["torch", "torchvision"], { "node-a": ["einops"], "node-b": ["needs-torch231"] }),
    );
    const moved = await uv(["lock"], dir);
    ok(moved, "relock with node-b");
    assertMatch(moved.stderr, /Updated torch v2\.1\.0 -> v2\.3\.1/);
    assertMatch(moved.stderr, /Updated torchvision v0\.16\.0 -> v0\.18\.1/);
    assertNotMatch(moved.stderr, /Updated (numpy|pillow|einops)/);
  });
});

Deno.test("override-dependencies replace transitive requirements and land in [manifest]", async () => {
  const groups = { "node-x": ["needs-numpy2"] };
  await withProject(pyproject(["numpy"], groups), async (dir) => {
    ok(await uv(["lock"], dir), "lock without override");
    assertEquals(lockedVersions(await readLock(dir)).numpy, "2.1.0");
  });
  await withProject(
    pyproject(["numpy<2"], groups, '\n[tool.uv]\noverride-dependencies = ["numpy==1.26.4"]\n'),
    async (dir) => {
      const r = await uv(["lock"], dir);
      ok(r, "lock with override");
      const lock = await readLock(dir);
      assertEquals(lock.manifest, { overrides: [{ name: "numpy", specifier: "==1.26.4" }] });
      const versions = lockedVersions(lock);
      assertEquals(versions.numpy, "1.26.4");
      assertEquals(versions["needs-numpy2"], "1.0");
      // Removing the override makes the lock stale (the manifest is part of the inputs).
      await Deno.writeTextFile(`${dir}/pyproject.toml`, pyproject(["numpy<2"], groups));
      assertEquals((await uv(["lock", "--locked"], dir)).code, 1);
    },
  );
});

Deno.test("uv add -r with a failing lock restores pyproject.toml and uv.lock byte for byte", async () => {
  await withProject(
    pyproject(["numpy"], {}, "\n# operator notes stay untouched\n[tool.uv]\n"),
    async (dir) => {
      ok(await uv(["add", "--group", "node-a", "--no-sync", "conflict-a"], dir), "add");
      const py = await Deno.readTextFile(`${dir}/pyproject.toml`);
      assertMatch(py, /\[dependency-groups\]\nnode-a = \[\n {4}"conflict-a>=1\.0",\n\]\n/);
      assertMatch(py, /# operator notes stay untouched/);
      const lockBefore = await Deno.readFile(`${dir}/uv.lock`);
      const pyBefore = await Deno.readFile(`${dir}/pyproject.toml`);
      await Deno.writeTextFile(`${dir}/requirements.txt`, "# node b\nconflict-b\neinops\n");
      const r = await uv(
        ["add", "--group", "node-b", "--no-sync", "--raw", "-r", "requirements.txt"],
        dir,
      );
      assertEquals(r.code, 1);
      assertMatch(r.stderr, /project:node-a and project:node-b are incompatible/);
      // The resolver's explanation comes one cause deeper than `uv lock`'s; gov reads it the same.
      assertMatch(r.stderr, /^error: Failed to add dependencies\n {2}cause: No solution found/m);
      const f = classifyUvFailure(r.stderr, r.code, ["a", "b"]);
      assertEquals([f.kind, f.nodes], ["conflict", ["a", "b"]]);
      assertMatch(f.summary, /^Because all versions of conflict-b depend on/);
      assertEquals(await Deno.readFile(`${dir}/pyproject.toml`), pyBefore);
      assertEquals(await Deno.readFile(`${dir}/uv.lock`), lockBefore);
      // --raw keeps specifiers as written.
      await Deno.writeTextFile(`${dir}/requirements.txt`, "einops\n");
      ok(
        await uv(["add", "--group", "node-b", "--no-sync", "--raw", "-r", "requirements.txt"], dir),
        "add --raw",
      );
      assertMatch(
        await Deno.readTextFile(`${dir}/pyproject.toml`),
        /node-b = \[\n {4}"einops",\n\]/,
      );
      const removed = await uv(["remove", "--group", "node-a", "--no-sync", "conflict-a"], dir);
      ok(removed, "remove");
      assertEquals(lockedVersions(await readLock(dir))["conflict-a"], undefined);
      const notThere = await uv(["remove", "--group", "node-a", "--no-sync", "conflict-a"], dir);
      assertEquals(notThere.code, 2);
      assertEquals(
        notThere.stderr,
        "error: The dependency `conflict-a` could not be found in `dependency-groups.node-a`\n",
      );
    },
  );
});

Deno.test("uv venv --seed installs pip (kept by exact --all-groups syncs); plain venvs have none", async () => {
  await withProject(pyproject(["numpy==2.1.0"], { "node-a": ["tqdm"] }), async (dir) => {
    ok(await uv(["venv", "plain"], dir), "venv");
    const plain = await uv(["pip", "freeze", "--python", `${dir}/plain`], dir);
    ok(plain, "freeze plain");
    assertEquals(plain.stdout, "");
    const seeded = await uv(["venv", "--seed", ".venv-prod"], dir);
    ok(seeded, "venv --seed");
    assertMatch(seeded.stderr, /Creating virtual environment with seed packages at: \.venv-prod/);
    const seeds = [...seeded.stderr.matchAll(/^ \+ ([a-z-]+)==/gm)].map((m) => m[1]).sort();
    // uv seeds pip, plus setuptools and wheel below Python 3.12 (the wheelhouse holds all three).
    const py = await new Deno.Command(`${dir}/.venv-prod/bin/python`, {
      args: ["-c", "import sys; print(sys.version_info[1])"],
      stdout: "piped",
    }).output();
    const minor = Number(new TextDecoder().decode(py.stdout).trim());
    assertEquals(seeds, minor < 12 ? ["pip", "setuptools", "wheel"] : ["pip"]);
    ok(await uv(["lock"], dir), "lock");
    const env = { UV_PROJECT_ENVIRONMENT: ".venv-prod" };
    ok(await uv(["sync", "--locked", "--all-groups"], dir, env), "sync");
    const freeze = freezeMap((await uv(["pip", "freeze", "--python", ".venv-prod"], dir)).stdout);
    assertEquals(freeze.numpy, "2.1.0");
    assertEquals(freeze.tqdm, "4.66.4");
    for (const seed of seeds) {
      assertTrue(freeze[seed] !== undefined, `exact sync removed the seed package ${seed}`);
    }
    const pip = await new Deno.Command(`${dir}/.venv-prod/bin/python`, {
      args: ["-m", "pip", "--version"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(pip.code, 0);
  });
});

Deno.test("group names are normalised like uv's; --frozen syncs the lock as it is", async () => {
  await withProject(pyproject(["numpy==2.1.0"], {}, "\n[tool.uv]\n"), async (dir) => {
    // uv writes `--group node-Comfy_Up.x` as `node-comfy-up-x` and names it so in errors.
    ok(await uv(["add", "--group", "node-Comfy_Up.x", "--no-sync", "conflict-a"], dir), "add");
    assertMatch(await Deno.readTextFile(`${dir}/pyproject.toml`), /^node-comfy-up-x = \[/m);
    const clash = await uv(["add", "--group", "node-B", "--no-sync", "conflict-b"], dir);
    assertEquals(clash.code, 1);
    assertMatch(clash.stderr, /project:node-b and project:node-comfy-up-x are incompatible/);
    // gov finds the group under the name uv wrote, and maps uv's names back to the node ids.
    const py = parsePyproject(await Deno.readTextFile(`${dir}/pyproject.toml`), "pyproject.toml");
    assertEquals(py.groups[nodeGroup("Comfy_Up.x")], ["conflict-a>=1.0"]);
    assertEquals(classifyUvFailure(clash.stderr, clash.code, ["Comfy_Up.x", "B"]).nodes, [
      "B",
      "Comfy_Up.x",
    ]);
    // A pyproject.toml edited after locking: --frozen installs the lock, no relock.
    const lockBefore = await Deno.readTextFile(`${dir}/uv.lock`);
    await Deno.writeTextFile(
      `${dir}/pyproject.toml`,
      (await Deno.readTextFile(`${dir}/pyproject.toml`)).replace("numpy==2.1.0", "numpy==1.26.4"),
    );
    ok(await uv(["sync", "--frozen", "--all-groups"], dir), "sync --frozen");
    assertEquals(await Deno.readTextFile(`${dir}/uv.lock`), lockBefore);
    const freeze = freezeMap((await uv(["pip", "freeze", "--python", `${dir}/.venv`], dir)).stdout);
    assertEquals(freeze.numpy, "2.1.0");
    assertEquals(freeze["conflict-a"], "1.0");
    const locked = await uv(["sync", "--locked", "--all-groups"], dir);
    assertEquals(locked.code, 1);
  });
});
