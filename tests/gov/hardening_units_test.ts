/**
 * Unit tests of the hardening fixes that need no environment: node ids ComfyUI would not
 * load, storage errors named with their path, a node's requirement files kept inside its
 * folder, git failures in the user's terms, uv's "no version" told apart from a conflict,
 * and steps whose failure is a result shown as failed.
 */
import { join } from "node:path";
import { UsageError } from "../../src/errors.ts";
import { isNotWritable, StorageError, storageErrorOf } from "../../src/fs/errors.ts";
import { writeFileAtomic } from "../../src/fs/atomic.ts";
import { NoSuchVersionError } from "../../src/gov/errors.ts";
import { explainGitFailure } from "../../src/gov/ops/node_add.ts";
import { judgedStep } from "../../src/gov/steps/progress.ts";
import { nodeRequirements, NodeRequirementsError } from "../../src/gov/steps/requirements.ts";
import { missingVersionOf } from "../../src/gov/steps/workdir.ts";
import { UvConflictError, uvErrorFor } from "../../src/uv/errors.ts";
import { validateNodeId } from "../../src/workspace/names.ts";
import type { StepEvent } from "../../src/uv/driver.ts";
import {
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertRejects,
  assertThrows,
  assertTrue,
} from "../helpers/assert.ts";

Deno.test("node ids ComfyUI skips or that collide with parked code are refused", () => {
  for (const id of ["q.disabled", "Q.DISABLED", "impact.Disabled", "tool.py"]) {
    assertThrows(() => validateNodeId(id), UsageError, /invalid custom node id/);
  }
  for (const id of ["__pycache__", ".hidden", "a/b", ".."]) {
    assertThrows(() => validateNodeId(id), UsageError);
  }
  for (const id of ["q", "ComfyUI-Impact-Pack", "disabled", "q.disabled2", "x.pyc"]) {
    assertEquals(validateNodeId(id), id);
  }
});

Deno.test("a full disk is named with the file being written", () => {
  // As Deno reports it (writing /dev/full); the end-to-end test mounts a full tmpfs.
  const raw = Object.assign(
    new Error("No space left on device (os error 28): writefile '/dev/full'"),
    { code: "ENOSPC" },
  );
  const e = storageErrorOf(raw);
  assertTrue(e instanceof StorageError, `not mapped: ${raw}`);
  assertEquals(e.condition, "disk-full");
  assertEquals(e.path, "/dev/full");
  assertMatch(e.message, /no space left.*\/dev\/full.*ENOSPC/);
  assertMatch(e.hint ?? "", /free space/);
  // A write on an open file carries no path: the caller's is used.
  const named = storageErrorOf(
    Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" }),
    "/env/state/plugins.json",
  );
  assertEquals(named?.path, "/env/state/plugins.json");
});

Deno.test("read-only file systems and refused permissions are named, other errors are not", () => {
  const rofs = Object.assign(
    new Error("Read-only file system (os error 30): open '/env/state/.lock'"),
    { code: "EROFS" },
  );
  const e = storageErrorOf(rofs);
  assertEquals(e?.condition, "read-only");
  assertEquals(e?.path, "/env/state/.lock");
  assertTrue(isNotWritable(rofs));
  const perm = Object.assign(
    new Error("Operation not permitted (os error 1): rename '/a/x.tmp' -> '/a/x'"),
    { code: "EPERM" },
  );
  assertEquals(storageErrorOf(perm)?.path, "/a/x");
  assertTrue(isNotWritable(perm));
  assertEquals(storageErrorOf(new Error("boom")), undefined);
  assertEquals(storageErrorOf(new UsageError("bad")), undefined);
  assertTrue(!isNotWritable(Object.assign(new Error("x"), { code: "ENOENT" })));
});

Deno.test("writeFileAtomic names a folder it may not write (immutable, so also for root)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gov-imm-" });
  const chattr = async (flag: string) =>
    (await new Deno.Command("chattr", { args: [flag, dir], stderr: "null" }).output()).success;
  if (!(await chattr("+i"))) {
    // No chattr (or a file system without the flag): the mapping is covered above.
    await Deno.remove(dir);
    return;
  }
  try {
    const err = await assertRejects(
      () => writeFileAtomic(join(dir, "x.json"), "{}"),
      StorageError,
      /permission denied/,
    );
    // The temp file beside it is what the OS refused; either names the folder.
    assertTrue((err as StorageError).path.startsWith(`${dir}/`), (err as StorageError).path);
  } finally {
    await chattr("-i");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("requirements: -r is followed inside the node, dropped lines are listed", async () => {
  const node = await Deno.makeTempDir({ prefix: "gov-node-" });
  try {
    await Deno.mkdir(join(node, "reqs"));
    await Deno.writeTextFile(
      join(node, "requirements.txt"),
      "-r reqs/base.txt\n--index-url https://example.invalid/simple\n-e .\nrequests\n",
    );
    await Deno.writeTextFile(join(node, "reqs", "base.txt"), "tqdm\n--requirement=more.txt\n");
    await Deno.writeTextFile(join(node, "reqs", "more.txt"), "einops\n-r ../requirements.txt\n");
    const r = await nodeRequirements(node);
    assertEquals(r.requirements.sort(), ["einops", "requests", "tqdm"]);
    assertEquals(r.ignoredOptions, [
      "requirements.txt: --index-url https://example.invalid/simple",
      "requirements.txt: -e .",
    ]);
  } finally {
    await Deno.remove(node, { recursive: true });
  }
});

Deno.test("requirements: includes and links leading outside the node are refused", async () => {
  const root = await Deno.makeTempDir({ prefix: "gov-node-" });
  try {
    const node = join(root, "node");
    await Deno.mkdir(node);
    await Deno.writeTextFile(join(root, "secret.txt"), "leaked-package\n");
    await Deno.writeTextFile(join(node, "requirements.txt"), "-r ../secret.txt\n");
    await assertRejects(() => nodeRequirements(node), NodeRequirementsError, /outside/);
    await Deno.remove(join(node, "requirements.txt"));
    await Deno.symlink(join(root, "secret.txt"), join(node, "requirements.txt"));
    await assertRejects(() => nodeRequirements(node), NodeRequirementsError, /outside/);
    await Deno.remove(join(node, "requirements.txt"));
    await Deno.symlink(join(root, "secret.txt"), join(node, "pyproject.toml"));
    await assertRejects(() => nodeRequirements(node), NodeRequirementsError, /outside/);
    await Deno.remove(join(node, "pyproject.toml"));
    // A link inside the folder is fine.
    await Deno.writeTextFile(join(node, "deps.txt"), "tqdm\n");
    await Deno.symlink("deps.txt", join(node, "requirements.txt"));
    assertEquals((await nodeRequirements(node)).requirements, ["tqdm"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("git failures are told in the user's terms", () => {
  const src = { url: "https://example.invalid/x.git", ref: "v9" };
  assertMatch(
    explainGitFailure("error: pathspec 'v9' did not match any file(s) known to git\n", src)
      .message,
    /git ref 'v9' does not exist/,
  );
  assertMatch(
    explainGitFailure("fatal: invalid reference: v9\n", src).message,
    /git ref 'v9' does not exist/,
  );
  assertMatch(
    explainGitFailure("fatal: repository '/tmp/nope' does not exist\n", src).message,
    /is not a git repository/,
  );
  assertMatch(
    explainGitFailure(
      "fatal: unable to access 'https://example.invalid/x.git/': Could not resolve host: example.invalid\n",
      src,
    ).message,
    /is unreachable/,
  );
  assertMatch(
    explainGitFailure("fatal: write error: No space left on device\n", src).message,
    /the disk is full/,
  );
});

// What uv 0.13.8 prints (checked against the real uv) for a version that does not exist,
// for versions that are all too old, and for a real conflict between two groups.
const NO_VERSION = "error: No solution found when resolving dependencies\n" +
  "  cause: Because there is no version of six==9.9.9 and x:node-a depends on six==9.9.9, we can conclude that x:node-a's requirements are unsatisfiable.\n" +
  "         And because your project requires x:node-a, we can conclude that your project's requirements are unsatisfiable.\n";
const ONLY_OLDER = "error: No solution found when resolving dependencies\n" +
  "  cause: Because only six<=1.17.0 is available and x:node-a depends on six>=99, we can conclude that x:node-a's requirements are unsatisfiable.\n" +
  "         And because your project requires x:node-a, we can conclude that your project's requirements are unsatisfiable.\n";
const CONFLICT = "error: No solution found when resolving dependencies\n" +
  "  cause: Because x:node-b depends on six>=99 and x:node-a depends on six==9.9.9, we can conclude that x:node-a and x:node-b are incompatible.\n" +
  "         And because your project requires x:node-a and x:node-b, we can conclude that your project's requirements are unsatisfiable.\n";

Deno.test("a version that does not exist is not a conflict between custom nodes", () => {
  const a = uvErrorFor("lock", 1, "", NO_VERSION, ["a"]);
  const missing = missingVersionOf(a);
  assertTrue(missing instanceof NoSuchVersionError, `not told apart: ${a.message}`);
  assertEquals(missing.requirements, ["six==9.9.9"]);
  assertMatch(missing.message, /no version of six==9\.9\.9 exists/);
  assertMatch(missing.message, /nothing conflicts/);
  assertNotMatch(missing.message, /conflict between custom nodes/);
  assertEquals(
    missingVersionOf(uvErrorFor("lock", 1, "", ONLY_OLDER, ["a"]))?.requirements,
    ["six>=99"],
  );
  const real = uvErrorFor("lock", 1, "", CONFLICT, ["a", "b"]);
  assertTrue(real instanceof UvConflictError);
  assertEquals(missingVersionOf(real), undefined);
  assertEquals(missingVersionOf(new Error("other")), undefined);
});

Deno.test("a step whose result is a failure is shown failed, never done", async () => {
  const events: StepEvent[] = [];
  const r = await judgedStep(
    (e) => events.push(e),
    "smoke test",
    () => Promise.resolve(3),
    (n) => n === 0,
  );
  assertEquals(r, 3);
  assertEquals(events.map((e) => e.state), ["start", "failed"]);
  events.length = 0;
  await judgedStep((e) => events.push(e), "ok", () => Promise.resolve(0), (n) => n === 0);
  assertEquals(events.map((e) => e.state), ["start", "done"]);
});

Deno.test("git failures: cloning a plain file is 'not a git repository', not 'unreachable'", async () => {
  const root = await Deno.makeTempDir({ prefix: "gov-gitfile-" });
  try {
    const file = join(root, "node.txt");
    await Deno.writeTextFile(file, "not a repository\n");
    // What the real git says for it, not a pasted copy.
    const out = await new Deno.Command("git", {
      args: ["clone", "-q", file, join(root, "dest")],
      stdout: "null",
      stderr: "piped",
      env: { LC_ALL: "C" },
    }).output();
    assertTrue(out.code !== 0, "git cloned a plain file");
    const told = explainGitFailure(new TextDecoder().decode(out.stderr), { url: file });
    assertMatch(told.message, /is not a git repository/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
