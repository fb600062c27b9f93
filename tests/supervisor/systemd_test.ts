/**
 * `gov systemd-unit` writes units systemd accepts for any workspace path it can express:
 * spaces, `%`, `$`, quotes and backslashes survive; `systemd-analyze verify` checks the file
 * where it is installed, and the escaping rules of systemd.unit(5)/systemd.service(5) are
 * checked directly everywhere.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { runCli } from "../../src/cli/main.ts";
import { memoryIo } from "../../src/cli/io.ts";
import { systemdUnit } from "../../src/supervisor/systemd.ts";

/** Undoes systemd's word splitting of a command line: quotes, C escapes, `%%`, `$$`. */
function systemdWords(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === " ") i++;
    if (i >= line.length) break;
    let w = "";
    if (line[i] === '"') {
      i++;
      while (line[i] !== '"') {
        if (i >= line.length) throw new Error(`unterminated quote in ${line}`);
        if (line[i] === "\\") i++;
        w += line[i++];
      }
      i++;
    } else {
      while (i < line.length && line[i] !== " ") {
        if (line[i] === "\\" || line[i] === '"') throw new Error(`bare ${line[i]} in ${line}`);
        w += line[i++];
      }
    }
    words.push(w);
  }
  return words;
}

/** What systemd makes of `%%` and `$$` (after splitting); a lone `%` or `$` is an error here. */
function expand(word: string, dollars: boolean): string {
  let out = "";
  for (let i = 0; i < word.length; i++) {
    const c = word[i];
    if (c === "%" || (dollars && c === "$")) {
      if (word[i + 1] !== c) throw new Error(`unescaped ${c} in ${word}`);
      i++;
    }
    out += c;
  }
  return out;
}

function setting(unit: string, key: string): string[] {
  return unit.split("\n").filter((l) => l.startsWith(`${key}=`)).map((l) =>
    l.slice(key.length + 1)
  );
}

const NASTY = ["my comfy", "100% done", "$HOME and ${USER}", `say "hi"`, "back\\slash", "a;b"];

async function hasSystemdAnalyze(): Promise<boolean> {
  try {
    const r = await new Deno.Command("systemd-analyze", { args: ["--version"], stdout: "null" })
      .output();
    return r.success;
  } catch {
    return false;
  }
}

Deno.test("systemd unit: every path survives systemd's quoting rules", async () => {
  const base = await Deno.makeTempDir({ prefix: "gov-systemd-" });
  try {
    for (const name of NASTY) {
      const workspace = join(base, name);
      await Deno.mkdir(join(workspace, ".metadata"), { recursive: true });
      const io = memoryIo({ env: { NO_COLOR: "1" } });
      const code = await runCli(["systemd-unit", "-w", workspace, "--user", "comfy"], io);
      assertEquals(code, 0, io.stderr);
      const unit = io.stdout;
      // ExecStart: split into words, then specifiers and variables: the workspace comes back.
      const exec = systemdWords(setting(unit, "ExecStart")[0]).map((w) => expand(w, true));
      assertEquals(exec.slice(-3), ["run", "--workspace", workspace], unit);
      // Environment=: split and unquoted, specifiers only ($ is not special there).
      const envs = setting(unit, "Environment").flatMap(systemdWords).map((w) => expand(w, false));
      assertTrue(envs.includes(`COMFYGIT_HOME=${workspace}`), envs.join("\n"));
      // WorkingDirectory= takes the rest of the line as the path: no quotes, `%` doubled.
      assertEquals(setting(unit, "WorkingDirectory").map((w) => expand(w, false)), [workspace]);
      assertMatch(
        expand(setting(unit, "Description")[0], false),
        new RegExp(`\\(${RegExp.escape(workspace)}\\)$`),
      );
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("systemd unit: systemd-analyze verify accepts it (where installed)", async (t) => {
  if (!await hasSystemdAnalyze()) {
    t.step({ name: "systemd-analyze not installed", ignore: true, fn: () => {} });
    return;
  }
  const base = await Deno.makeTempDir({ prefix: "gov-systemd-verify-" });
  try {
    for (const name of NASTY) {
      const workspace = join(base, name);
      await Deno.mkdir(workspace, { recursive: true });
      const unit = systemdUnit({ workspace, graceS: 10 });
      const file = join(base, "comfyui-gov.service");
      await Deno.writeTextFile(file, unit);
      const r = await new Deno.Command("systemd-analyze", {
        args: ["verify", "--man=no", file],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const said = new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout);
      assertEquals(r.code, 0, `${name}: ${said}\n${unit}`);
      // verify warns (exit 0) on some settings it cannot parse; none may concern our lines.
      assertTrue(!/WorkingDirectory|ExecStart|Environment|Description|specifier/i.test(said), said);
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("systemd unit: a path systemd cannot express is refused, exit 2, nothing printed", async () => {
  const base = await Deno.makeTempDir({ prefix: "gov-systemd-bad-" });
  try {
    const workspace = join(base, "line\nbreak");
    await Deno.mkdir(join(workspace, ".metadata"), { recursive: true });
    const io = memoryIo({ env: { NO_COLOR: "1" } });
    assertEquals(await runCli(["systemd-unit", "-w", workspace], io), 2, io.stderr);
    assertEquals(io.stdout, "");
    assertMatch(io.stderr, /^error: invalid workspace path '.*line\\nbreak'/);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
