/**
 * Findings of the repeated review sweep on the command line: flag errors name the long
 * flag, `gov doctor` checks its selection like every command, and an OS error no layer
 * translated (a file gov keeps replaced by a folder) names the path instead of reading as
 * gov's own bug.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertNotMatch, assertThrows } from "../helpers/assert.ts";
import { ConfigError } from "../../src/errors.ts";
import { parseSupervisorSettings } from "../../src/supervisor/settings.ts";
import { parseEnvironmentConfig } from "../../src/workspace/config.ts";
import { freePort } from "../helpers/net.ts";
import { txt2img } from "../serve/_helpers.ts";
import { eventShown } from "../../src/cli/serve/submit.ts";
import type { JobStreamEvent } from "../../src/serve/client.ts";
import { runCli } from "../../src/cli/main.ts";
import { memoryIo } from "../../src/cli/io.ts";

async function cli(args: string[], env: Record<string, string> = {}, cwd?: string) {
  const io = memoryIo({ env: { NO_COLOR: "1", ...env }, cwd });
  const code = await runCli(args, io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

Deno.test("a flag with a short form that lacks its value is named by its long form", async () => {
  for (
    const [args, flag] of [
      [["node", "list", "-w"], "--workspace"],
      [["node", "list", "--workspace"], "--workspace"],
      [["tx", "list", "--env"], "--env"],
      [["node", "list", "-w", "-x"], "--workspace"],
    ] as const
  ) {
    const r = await cli([...args]);
    assertEquals(r.code, 2, r.stderr);
    assertMatch(r.stderr, new RegExp(`^error: gov \\S+ \\S+: ${flag} needs a value`));
    assertNotMatch(r.stderr, /-w,/);
  }
  // The way to pass a value starting with '-' is spelled with the long flag, which takes `=`.
  const r = await cli(["node", "list", "-e", "-x"]);
  assertMatch(r.stderr, /write one starting with '-' as --env=-VALUE/);
});

Deno.test("gov doctor refuses a --workspace that is a file and a COMFYGIT_HOME that is no folder", async () => {
  const root = await Deno.makeTempDir({ prefix: "gov-sweep-doctor-" });
  try {
    const file = join(root, "plain.txt");
    await Deno.writeTextFile(file, "x\n");
    const asFile = await cli(["doctor", "-w", file]);
    assertEquals(asFile.code, 2, asFile.stderr);
    assertMatch(asFile.stderr, /--workspace .*plain\.txt is a file, not a folder/);
    // Before, doctor silently diagnosed the working folder's workspace instead.
    const home = await cli(["doctor"], { COMFYGIT_HOME: join(root, "missing") }, root);
    assertEquals(home.code, 2, home.stderr);
    assertMatch(home.stderr, /COMFYGIT_HOME=.*missing is not an existing folder/);
    assertEquals(home.stdout, "");
    // A mistyped environment is bad input too, not a blocking finding (exit 1) about the host.
    await Deno.mkdir(join(root, "ws", ".metadata"), { recursive: true });
    await Deno.mkdir(join(root, "ws", "environments", "prod"), { recursive: true });
    const typo = await cli(["doctor", "-w", join(root, "ws"), "-e", "prdo"]);
    assertEquals(typo.code, 2, typo.stderr);
    assertMatch(typo.stderr, /no environment 'prdo' in .*\n.*one of: prod/);
    assertEquals(typo.stdout, "");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a file gov reads replaced by a folder is named, never an internal error", async () => {
  const root = await Deno.makeTempDir({ prefix: "gov-sweep-eisdir-" });
  try {
    await Deno.mkdir(join(root, ".metadata"));
    const env = join(root, "environments", "prod");
    await Deno.mkdir(join(env, "config.toml"), { recursive: true });
    await Deno.mkdir(join(root, "backends.toml"));
    for (
      const [args, path] of [
        [["node", "list", "--env-dir", env], "config.toml"],
        [["status", "-w", root, "-e", "prod"], "config.toml"],
        [["backend", "list", "-w", root], "backends.toml"],
      ] as const
    ) {
      const r = await cli([...args]);
      assertNotMatch(r.stderr, /internal error/);
      assertMatch(r.stderr, new RegExp(`${path} is a folder where gov expects a file`));
      assertMatch(r.stderr, /move what is there aside/);
      assertEquals(r.code, 1, r.stderr);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("configuration values that would disarm a safety are refused, naming the key", () => {
  // A crash window of 0 holds one crash at most: with crash_limit 3, gov never gave up.
  assertThrows(
    () => parseSupervisorSettings("[supervisor]\ncrash_window = 0\n", "/ws/gov.toml"),
    ConfigError,
    /supervisor\.crash_window/,
  );
  assertEquals(
    parseSupervisorSettings("[supervisor]\ncrash_window = 1\n", "/ws/gov.toml").crashWindowS,
    1,
  );
  // A smoke test whose program is empty passed the check and failed only at promote.
  for (const cmd of ['[""]', '["", "-c", "x"]', '["  "]']) {
    assertThrows(
      () => parseEnvironmentConfig(`[tx]\nsmoke_test_cmd = ${cmd}\n`, "/env/config.toml"),
      ConfigError,
      /tx\.smoke_test_cmd/,
    );
  }
  assertEquals(
    parseEnvironmentConfig('[tx]\nsmoke_test_cmd = ["python", ""]\n', "/env/config.toml").tx
      .smoke_test_cmd,
    ["python", ""],
  );
});

Deno.test("gov submit without --wait prints why a job waits (silence read as a hang)", () => {
  const waiting = { type: "waiting", data: { reason: "gone: down" } } as JobStreamEvent;
  const progress = { type: "progress", data: { value: 1, max: 2 } } as JobStreamEvent;
  assertEquals(eventShown(waiting, false, () => false), true);
  assertEquals(eventShown(progress, false, () => true), false);
  assertEquals(eventShown(progress, true, () => true), true);
  assertEquals(eventShown(waiting, true, () => false), false);
});

Deno.test("gov submit run in-process names no 'backend null' for a job no backend took", async () => {
  const root = await Deno.makeTempDir({ prefix: "gov-sweep-submit-" });
  try {
    await Deno.mkdir(join(root, ".metadata"));
    const port = freePort();
    await Deno.writeTextFile(
      join(root, "backends.toml"),
      `[[backend]]\nid = "gone"\nhost = "127.0.0.1"\nport = ${port}\n`,
    );
    const wf = join(root, "api.json");
    await Deno.writeTextFile(wf, JSON.stringify(txt2img()));
    const r = await cli(["submit", wf, "--local", "--queue-timeout", "1", "-w", root]);
    assertEquals(r.code, 1, r.stderr);
    assertMatch(r.stderr, /no backend took the job within the queue timeout \(1 s\)/);
    // Before, the job line named "backend null".
    assertNotMatch(r.stdout, /backend null/);
    assertMatch(r.stdout, /failed: no backend took it/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a JSON file that is no workflow is named as such, not as a UI workflow needing definitions", async () => {
  const root = await Deno.makeTempDir({ prefix: "gov-sweep-wf-" });
  try {
    const files: Record<string, string> = {
      "array.json": "[1, 2]",
      "null.json": "null",
      "number.json": "5",
      "empty.json": "{}",
      "nodes.json": '{"nodes": 5}',
    };
    for (const [name, text] of Object.entries(files)) {
      const path = join(root, name);
      await Deno.writeTextFile(path, text);
      for (
        const args of [["workflow", "params", path], ["workflow", "patch", path, "--set", "a=1"]]
      ) {
        const r = await cli(args);
        assertEquals(r.code, 2, r.stderr);
        assertMatch(r.stderr, new RegExp(`${name}: not a ComfyUI workflow`));
        assertNotMatch(r.stderr, /is a UI workflow/);
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a value with control characters is shown escaped in the error, never sent raw to the terminal", async () => {
  const root = await Deno.makeTempDir({ prefix: "gov-sweep-ctl-" });
  try {
    const env = join(root, "env");
    await Deno.mkdir(join(env, "ComfyUI", "custom_nodes"), { recursive: true });
    await Deno.writeTextFile(join(env, "config.toml"), "");
    // An id holding an escape sequence (clear screen) and a line break.
    const r = await cli(["node", "add", "a\x1b[2Jb\nerror: forged", "/x", "--env-dir", env]);
    assertEquals(r.code, 2, r.stderr);
    assertEquals(r.stderr.includes("\x1b"), false, "a raw escape reached the terminal");
    assertMatch(r.stderr, /invalid custom node id 'a\\x1b\[2Jb/);
    // The user's line break cannot start a line of its own: it is indented under the error.
    assertNotMatch(r.stderr, /^error: forged/m);
    const unknown = await cli(["no\x07such"]);
    assertEquals(unknown.code, 2);
    assertMatch(unknown.stderr, /unknown command 'no\\x07such'/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
