import { assertEquals, assertMatch, assertTrue } from "./helpers/assert.ts";
import { gov, GOV_SCRIPT } from "./helpers/gov.ts";
import { VERSION } from "../src/version.ts";
import { runCli } from "../src/cli/main.ts";
import { memoryIo } from "../src/cli/io.ts";

Deno.test("gov --version prints the version and exits 0", async () => {
  const r = await gov(["--version"]);
  assertEquals(r.code, 0);
  assertEquals(r.stdout.trim(), `gov ${VERSION}`);
});

Deno.test("gov --help lists commands and exits 0", async () => {
  const r = await gov(["--help"]);
  assertEquals(r.code, 0);
  assertMatch(r.stdout, /Usage: gov <command>/);
});

Deno.test("an unknown command is a usage error with exit 2 and a hint", async () => {
  const r = await gov(["frobnicate"]);
  assertEquals(r.code, 2);
  assertMatch(r.stderr, /unknown command 'frobnicate'/);
  assertMatch(r.stderr, /gov --help/);
  assertEquals(r.stdout, "");
});

/** Runs a shell line in a pseudo-terminal (util-linux `script`), as an operator's shell would. */
async function inTerminal(line: string, env: Record<string, string>) {
  const out = await new Deno.Command("script", {
    args: ["-qec", line, "/dev/null"],
    env: { SHELL: "/bin/sh", GOV: GOV_SCRIPT, DENO: Deno.execPath(), ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, text: new TextDecoder().decode(out.stdout) };
}

const hasScript = (() => {
  try {
    return new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "colour only on a terminal: not with NO_COLOR, not into a redirected stderr or a pipe",
  ignore: !hasScript,
  fn: async () => {
    const red = "\x1b[31merror:";
    const tty = await inTerminal('"$GOV" frobnicate', { NO_COLOR: "" });
    assertEquals(tty.code, 2);
    assertTrue(tty.text.includes(red), tty.text);
    const noColor = await inTerminal('"$GOV" frobnicate', { NO_COLOR: "1" });
    assertMatch(noColor.text, /error: unknown command/);
    assertTrue(!noColor.text.includes("\x1b["), noColor.text);
    const dir = await Deno.makeTempDir({ prefix: "gov-colour-" });
    try {
      const log = `${dir}/err.txt`;
      await inTerminal(`"$GOV" frobnicate 2>"${log}"`, { NO_COLOR: "" });
      const logged = await Deno.readTextFile(log);
      assertMatch(logged, /error: unknown command/);
      assertTrue(!logged.includes("\x1b["), logged);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    const piped = await gov(["frobnicate"], { env: { NO_COLOR: "" } });
    assertTrue(!piped.stderr.includes("\x1b["), piped.stderr);
  },
});

Deno.test("flag and argument errors say what to type instead (in-process, nothing touched)", async () => {
  const cases: [string[], RegExp, RegExp][] = [
    [["run", "--grace", "-1"], /--grace needs a value .*--grace=-VALUE/, /gov run --help/],
    [["run", "--grace"], /gov run: --grace needs a value/, /gov run --help/],
    [["restart", "now"], /unexpected argument 'now'/, /gov restart takes no arguments/],
    [["stop", "--colour"], /unknown flag '--colour'/, /gov stop --help/],
    [["switch", "a", "b"], /unexpected argument 'b'/, /usage: gov switch <env>/],
  ];
  for (const [args, message, hint] of cases) {
    const io = memoryIo({ cwd: "/nonexistent" });
    assertEquals(await runCli(args, io), 2, args.join(" "));
    const [first, second] = io.stderr.split("\n");
    assertMatch(first, message);
    assertMatch(second, hint);
    assertEquals(io.stdout, "");
  }
});
