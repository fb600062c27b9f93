import { assertEquals, assertMatch, assertNotMatch, assertTrue } from "../helpers/assert.ts";
import { runCli } from "../../src/cli/main.ts";
import { memoryIo } from "../../src/cli/io.ts";
import { InvalidInputError, MissingInputError, UsageError } from "../../src/errors.ts";
import { checkNodeAdd } from "../../src/gov/ops/node_add.ts";
import { EnvironmentSelectionError, selectEnvironment } from "../../src/workspace/environment.ts";
import { resolveWorkspace } from "../../src/workspace/root.ts";
import { PromoteGateError } from "../../src/gov/errors.ts";
import { cliWording } from "../../src/cli/wording.ts";

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a throw");
}

Deno.test("selecting an environment: the workspace layer's errors name no flag and exit 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases = [
      thrown(() => selectEnvironment({ env: "a", envDir: "b", cwd: dir, getenv: () => undefined })),
      thrown(() => selectEnvironment({ envDir: "missing", cwd: dir, getenv: () => undefined })),
      thrown(() => selectEnvironment({ env: "prod", cwd: dir, getenv: () => undefined })),
      thrown(() => selectEnvironment({ cwd: dir, getenv: () => undefined })),
      thrown(() => resolveWorkspace(`${dir}/missing`, { cwd: dir, env: () => undefined })),
      thrown(() => resolveWorkspace(undefined, { cwd: dir, env: () => undefined })),
    ];
    for (const err of cases) {
      assertTrue(err instanceof UsageError, `${err.name}: ${err.message}`);
      assertEquals((err as UsageError).exitCode, 2);
      assertNotMatch(err.message, /--/);
      assertNotMatch((err as UsageError).hint ?? "", /--/);
    }
    assertTrue(cases[0] instanceof EnvironmentSelectionError);
    assertTrue(cases[1] instanceof MissingInputError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the CLI words environment-selection errors in its flags", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const both = memoryIo({ cwd: dir });
    assertEquals(await runCli(["tx", "list", "--env", "a", "--env-dir", "b"], both), 2);
    assertMatch(both.stderr, /--env and --env-dir exclude each other/);
    const missing = memoryIo({ cwd: dir });
    assertEquals(await runCli(["tx", "list", "--env-dir", "nope"], missing), 2);
    assertMatch(missing.stderr, /environment folder .*nope does not exist/);
    assertMatch(missing.stderr, /pass an existing folder to --env-dir/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a promote gate names the way past it without flags; the CLI adds the flag", () => {
  const failed = new PromoteGateError("tx-1", "failed", "exit 1");
  assertNotMatch(failed.hint ?? "", /--/);
  assertMatch(cliWording(failed).hint ?? "", /promote anyway with --allow-failed-run/);
  const core = new PromoteGateError("tx-1", "core", "torch");
  assertNotMatch(core.hint ?? "", /--/);
  assertMatch(cliWording(core).hint ?? "", /--approve-core/);
  assertEquals(cliWording(core).message, core.message);
});

Deno.test("a malformed git ref: the gov layer says git ref, the CLI says --ref", () => {
  const err = thrown(() => checkNodeAdd("impact", { url: "https://example.org/r", ref: "-x" }));
  assertTrue(err instanceof InvalidInputError);
  assertEquals(err.message, "invalid git ref '-x'");
  assertEquals(cliWording(err).message, "invalid --ref '-x'");
});
