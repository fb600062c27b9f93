/**
 * The command line refuses bad input early and in one line (exit 2, nothing changed), takes
 * the selection flags before the command, and never lets printing abort an operation.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertNotMatch, assertTrue } from "../helpers/assert.ts";
import { runCli } from "../../src/cli/main.ts";
import { memoryIo } from "../../src/cli/io.ts";
import { ALL_COMMANDS } from "../../src/cli/main.ts";
import { GOV_SCRIPT } from "../helpers/gov.ts";
import { installFakeComfyUI } from "../helpers/fake_comfyui.ts";
import { uvTestEnv } from "../helpers/wheelhouse.ts";

/** A workspace with one (uninitialised) environment `prod`, and a plain file beside it. */
async function workspace(): Promise<{ root: string; file: string; cleanup(): Promise<void> }> {
  const root = await Deno.makeTempDir({ prefix: "gov-cli-hard-" });
  await Deno.mkdir(join(root, ".metadata"));
  await Deno.mkdir(join(root, "environments", "prod"), { recursive: true });
  await Deno.writeTextFile(join(root, "environments", "prod", "config.toml"), "");
  const file = join(root, "plain.txt");
  await Deno.writeTextFile(file, "not a folder\n");
  return { root, file, cleanup: () => Deno.remove(root, { recursive: true }) };
}

/** Every file under `dir` with its size, to prove a refused command changed nothing. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else out.push(`${p} ${(await Deno.stat(p)).size}`);
    }
  };
  await walk(dir);
  return out.sort();
}

async function cli(args: string[], env: Record<string, string> = {}, cwd?: string) {
  const io = memoryIo({ env: { NO_COLOR: "1", ...env }, cwd });
  const code = await runCli(args, io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

/** A usage error: exit 2, one error line (plus its hint), naming `what`. */
function assertUsage(r: { code: number; stderr: string }, what: RegExp) {
  assertEquals(r.code, 2, r.stderr);
  const lines = r.stderr.trimEnd().split("\n");
  assertTrue(lines.length <= 2, r.stderr);
  assertMatch(lines[0], /^error: /);
  assertMatch(lines[0], what);
  assertNotMatch(r.stderr, /internal error/);
}

Deno.test("bad selection and value inputs are refused up front: exit 2, one line, nothing changed", async () => {
  const ws = await workspace();
  try {
    const before = await tree(ws.root);
    const missingHome = join(ws.root, "no-such-home");
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        ["node", "list", "--env-dir", ws.file],
        {},
        /--env-dir .*plain\.txt is a file, not a folder/,
      ],
      [["tx", "list", "--workspace", ws.file, "-e", "prod"], {}, /--workspace .* is a file/],
      [["init", "--env-dir", ws.file], {}, /--env-dir .* is a file/],
      [
        ["init", "--workspace", ws.root, "-e", "prod", "--requires-python", "banana"],
        {},
        /--requires-python 'banana' is not a version specifier/,
      ],
      [["node", "list", "--workspace="], {}, /--workspace needs a non-empty value/],
      [["status", "--workspace="], {}, /--workspace needs a non-empty value/],
      [["node", "list", "-w", ws.root, "-e", "a", "-e", "prod"], {}, /--env given twice/],
      [["status", "--env", "a", "--env=prod", "-w", ws.root], {}, /--env given twice/],
      [
        ["node", "list", "-e", "prod"],
        { COMFYGIT_HOME: missingHome },
        /COMFYGIT_HOME=.*not an existing folder/,
      ],
      [["status"], { COMFYGIT_HOME: missingHome }, /COMFYGIT_HOME=/],
      [["backend", "list", "--no-probe"], { COMFYGIT_HOME: missingHome }, /COMFYGIT_HOME=/],
      [
        ["switch", "prod", "-w", ws.root, "--timeout", "5"],
        {},
        /--timeout only applies with --wait/,
      ],
      [["stop", "-w", ws.root, "--timeout", "5"], {}, /--timeout only applies with --wait/],
      [["restart", "-w", ws.root, "--timeout", "5"], {}, /--timeout only applies with --wait/],
      [
        ["node", "list", "-w", ws.root, "-e", "prod"],
        { GOV_LOCK_WAIT: "soon" },
        /GOV_LOCK_WAIT=soon/,
      ],
    ];
    for (const [args, env, what] of cases) {
      const r = await cli(args, env, ws.root);
      assertUsage(r, what);
      assertEquals(r.stdout, "", args.join(" "));
    }
    assertEquals(await tree(ws.root), before, "a refused command changed nothing");
  } finally {
    await ws.cleanup();
  }
});

Deno.test("selection flags before the command work like after it", async () => {
  const ws = await workspace();
  try {
    const elsewhere = await Deno.makeTempDir();
    try {
      const after = await cli(["switch", "--abort", "-w", ws.root, "--json"], {}, elsewhere);
      const before = await cli(["-w", ws.root, "switch", "--abort", "--json"], {}, elsewhere);
      const eq = await cli(
        [`--workspace=${ws.root}`, "switch", "--abort", "--json"],
        {},
        elsewhere,
      );
      assertEquals(before.stdout, after.stdout);
      assertEquals(eq.stdout, after.stdout);
      assertEquals(before.code, after.code, before.stderr);
      assertEquals(before.stderr, after.stderr);
      assertNotMatch(before.stderr, /unknown command/);
      const both = await cli(["-w", ws.root, "-e", "prod", "status", "--json"], {}, elsewhere);
      assertEquals(both.code, 0, both.stderr);
      assertEquals(JSON.parse(both.stdout).environment.name, "prod");
      // A command that takes no --env says so, as it would written after the command.
      assertUsage(await cli(["-e", "prod", "restart"], {}, elsewhere), /unknown flag '-e'/);
      assertUsage(await cli(["-w", ws.root], {}, elsewhere), /needs a command after it/);
      // Never after a `--` (which hands the rest to ComfyUI on `gov run`).
      const dashdash = await cli(["-w", ws.root, "status", "--json", "--"], {}, elsewhere);
      assertEquals(dashdash.code, 0, dashdash.stderr);
      assertUsage(await cli(["-w", ws.root, "frob"], {}, elsewhere), /unknown command 'frob'/);
    } finally {
      await Deno.remove(elsewhere, { recursive: true });
    }
  } finally {
    await ws.cleanup();
  }
});

Deno.test("every --help lists the short form of each flag that has one", async () => {
  let checked = 0;
  for (const c of ALL_COMMANDS) {
    const r = await cli([...c.name.split(" "), "--help"]);
    assertEquals(r.code, 0, c.name);
    for (const [long, short] of Object.entries({ workspace: "w", env: "e", output: "o" })) {
      for (const line of r.stdout.split("\n")) {
        if (!new RegExp(`^ +(-[a-z], )?--${long}(?![a-z-])`).test(line)) continue;
        checked++;
        assertMatch(line, new RegExp(`^ +-${short}, --${long}(?![a-z-])`), `gov ${c.name} --help`);
      }
    }
  }
  assertTrue(checked > 25, `only ${checked} flag lines found`);
});

Deno.test("stdout and stderr closed by the reader: the operation still completes, exit 0", async () => {
  const ws = await workspace();
  try {
    await installFakeComfyUI(join(ws.root, "environments", "prod", "ComfyUI"));
    const child = new Deno.Command(GOV_SCRIPT, {
      args: ["init", "--workspace", ws.root, "--env", "prod"],
      env: { NO_COLOR: "1", DENO: Deno.execPath(), ...(await uvTestEnv()) },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Like `gov init 2>&1 | head -0`: the reader is gone before gov prints its progress.
    await child.stdout.cancel();
    await child.stderr.cancel();
    const status = await child.status;
    assertEquals(status.code, 0);
    const dir = join(ws.root, "environments", "prod");
    assertTrue((await Deno.stat(join(dir, "uv.lock"))).isFile);
    assertTrue((await Deno.stat(join(dir, ".venv-prod"))).isDirectory);
    const r = await cli(["status", "-w", ws.root, "-e", "prod", "--json"]);
    assertEquals(r.code, 0, r.stderr);
    const env = JSON.parse(r.stdout).environment;
    assertEquals(env.initialised, true);
    assertEquals(env.prod.in_sync, true, JSON.stringify(env.prod));
  } finally {
    await ws.cleanup();
  }
});

Deno.test("config.toml and gov.toml reject unknown sections and keys alike, naming the nearest", async () => {
  const ws = await workspace();
  try {
    const config = join(ws.root, "environments", "prod", "config.toml");
    const cases: [string, RegExp][] = [
      ["[tx]\ntimeot = 5\n", /config\.toml: unknown key tx\.timeot \(did you mean tx\.timeout\?\)/],
      [
        "[rolback]\nsnapshot_retention = 3\n",
        /unknown section \[rolback\] \(did you mean \[rollback\]\?\)/,
      ],
      [
        "[paths]\ncomfyui_dri = 'x'\n",
        /unknown key paths\.comfyui_dri \(did you mean paths\.comfyui_dir\?\)/,
      ],
      ["[tools]\nzzzzzz = 'x'\n", /unknown key tools\.zzzzzz$/m],
    ];
    for (const [text, re] of cases) {
      await Deno.writeTextFile(config, text);
      const r = await cli(["node", "list", "-w", ws.root, "-e", "prod"]);
      assertUsage(r, re);
      assertMatch(r.stderr, /known (keys of [a-z]+|sections): /);
    }
    await Deno.writeTextFile(config, "");
    await Deno.writeTextFile(join(ws.root, "gov.toml"), "[supervisor]\ncrash_limt = 3\n");
    assertUsage(
      await cli(["systemd-unit", "-w", ws.root]),
      /gov\.toml: unknown key supervisor\.crash_limt \(did you mean supervisor\.crash_limit\?\)/,
    );
    await Deno.writeTextFile(join(ws.root, "gov.toml"), "[superviser]\ngrace = 3\n");
    assertUsage(await cli(["systemd-unit", "-w", ws.root]), /\(did you mean \[supervisor\]\?\)/);
    await Deno.writeTextFile(
      join(ws.root, "backends.toml"),
      '[[backend]]\nid = "a"\nhost = "127.0.0.1"\nport = 8188\nwieght = 3\n',
    );
    assertUsage(
      await cli(["backend", "list", "--no-probe", "-w", ws.root]),
      /backends\.toml: unknown key backend\[0\]\.wieght \(did you mean backend\[0\]\.weight\?\)/,
    );
  } finally {
    await ws.cleanup();
  }
});

/** A git repository holding a custom node without requirements. */
async function nodeRepo(dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
  const git = async (...args: string[]) => {
    const r = await new Deno.Command("git", {
      args: ["-c", "user.name=t", "-c", "user.email=t@t", ...args],
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).output();
    assertTrue(r.success, new TextDecoder().decode(r.stderr));
  };
  await git("init", "-q", "-b", "main");
  await git("add", ".");
  await git("commit", "-q", "-m", "node");
  return dir;
}

Deno.test("refusals exit 2 with nothing changed: already registered, already aborted, no supervisor", async () => {
  const ws = await workspace();
  try {
    await installFakeComfyUI(join(ws.root, "environments", "prod", "ComfyUI"));
    const env = await uvTestEnv();
    const sel = ["-w", ws.root, "-e", "prod"];
    assertEquals((await cli(["init", ...sel], env)).code, 0);
    const repo = await nodeRepo(join(ws.root, "src-node"));
    const add = await cli(["node", "add", "q", repo, ...sel], env);
    assertEquals(add.code, 0, add.stderr);
    const state = join(ws.root, "environments", "prod", "state");
    const registry = await Deno.readTextFile(join(state, "plugins.json"));
    const again = await cli(["node", "add", "q", repo, ...sel], env);
    assertUsage(again, /custom node q is already registered/);
    assertEquals(await Deno.readTextFile(join(state, "plugins.json")), registry);

    const run = await cli(["tx", "run", "q", "--json", ...sel], env);
    const txid = JSON.parse(run.stdout).txid as string;
    const first = await cli(["tx", "abort", txid, ...sel], env);
    assertEquals(first.code, 0, first.stderr);
    assertMatch(first.stdout, /aborted/);
    const record = join(state, "transactions", `${txid}.json`);
    const aborted = await Deno.readTextFile(record);
    const second = await cli(["tx", "abort", txid, ...sel], env);
    assertUsage(second, new RegExp(`transaction ${txid} is already aborted; nothing to do`));
    assertEquals(second.stdout, "", "no ✓ for what was not done");
    assertEquals(await Deno.readTextFile(record), aborted);
    assertUsage(await cli(["tx", "promote", txid, ...sel], env), /aborted; it cannot be promoted/);

    assertUsage(await cli(["stop", "-w", ws.root]), /no gov supervisor is running/);
    assertUsage(await cli(["restart", "-w", ws.root]), /no gov supervisor is running/);
  } finally {
    await ws.cleanup();
  }
});

Deno.test("the exit-code rule is the same in gov --help and the README", async () => {
  const help = (await cli(["--help"])).stdout;
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const rule = help.slice(help.indexOf("Exit codes:")).trim().split("\n").slice(1)
    .map((l) => l.trim()).join(" ").replace(/ +/g, " ");
  const flat = readme.replace(/\s+/g, " ");
  for (const code of ["0", "1", "2"]) {
    const clause = rule.split(/ (?=[012] {1,2}[a-z])/).find((c) => c.startsWith(`${code} `));
    assertTrue(clause, `rule for ${code} in gov --help`);
    const words = clause!.slice(2).trim();
    assertTrue(flat.includes(words), `README lacks: ${words}`);
  }
  assertMatch(help, /GOV_LOCK_WAIT/);
  assertMatch(readme, /GOV_LOCK_WAIT/);
});

Deno.test("gov status says what is stale or broken, and why", async () => {
  const ws = await workspace();
  try {
    await installFakeComfyUI(join(ws.root, "environments", "prod", "ComfyUI"));
    const sel = ["-w", ws.root, "-e", "prod"];
    assertEquals((await cli(["init", ...sel], await uvTestEnv())).code, 0);
    const meta = join(ws.root, ".metadata");
    const dead = new Deno.Command("true").spawn();
    const deadPid = dead.pid;
    await dead.status;
    const status = async () => {
      const text = await cli(["status", ...sel]);
      const json = await cli(["status", "--json", ...sel]);
      assertEquals(text.code, 0, text.stderr);
      assertEquals(json.code, 0, json.stderr);
      return { text: text.stdout, json: JSON.parse(json.stdout) };
    };
    const clean = await status();
    assertEquals(clean.json.problems, []);
    assertNotMatch(clean.text, /Stale or broken/);

    // A supervisor state file cut short by a full disk.
    await Deno.writeTextFile(join(meta, ".supervisor_state.json"), '{"pid": 12, "restar');
    let s = await status();
    assertMatch(s.text, /Stale or broken\n.*\.supervisor_state\.json is unreadable .*truncated/);
    assertMatch(s.json.problems.join("\n"), /restarts, crashes, port and last exit are unknown/);

    // A supervisor killed -9 mid-switch: its state says running, the switch says 80%.
    await Deno.writeTextFile(
      join(meta, ".supervisor_state.json"),
      JSON.stringify({ pid: deadPid, running: true, environment: "prod", started_at: 1 }),
    );
    await Deno.writeTextFile(
      join(meta, ".switch_status.json"),
      JSON.stringify({
        state: "validating",
        progress: 80,
        message: "",
        updated_at: 1,
        target_env: "prod",
      }),
    );
    s = await status();
    const problems = s.json.problems.join("\n");
    assertMatch(
      problems,
      new RegExp(`supervisor \\(pid ${deadPid}\\) ended without recording why`),
    );
    assertMatch(problems, /switch to prod stopped at validating 80%: no supervisor is running/);

    // An invalid gov.toml, and a uv.lock that is no longer TOML.
    await Deno.writeTextFile(join(ws.root, "gov.toml"), "[supervisor]\ngrace = 'x'\n");
    const lock = join(ws.root, "environments", "prod", "uv.lock");
    await Deno.writeTextFile(lock, (await Deno.readTextFile(lock)).slice(0, 40) + "\n[[[");
    s = await status();
    assertMatch(
      s.json.problems.join("\n"),
      /gov\.toml: supervisor\.grace must be .*refuses to start/,
    );
    assertMatch(s.json.problems.join("\n"), /uv\.lock: is not valid TOML.*in sync is unknown/);
    assertMatch(s.text, /prod venv .*: unknown/);
    assertNotMatch(s.text, /out of sync/);
  } finally {
    await ws.cleanup();
  }
});

Deno.test("help texts: no seed citations, GOV_LOCK_WAIT on every env command, one --timeout meaning", async () => {
  const envCommands = ["init", "node add", "node list", "node remove", "tx run", "tx inspect"];
  for (const c of ALL_COMMANDS) {
    const help = (await cli([...c.name.split(" "), "--help"])).stdout;
    assertNotMatch(help, /\bseed \d{3}\b|§/, `gov ${c.name} --help`);
    if (envCommands.includes(c.name)) assertMatch(help, /GOV_LOCK_WAIT/, `gov ${c.name} --help`);
    for (const line of help.split("\n").filter((l) => /^ +--timeout /.test(l))) {
      assertMatch(line, /--timeout S +(with --wait: )?the longest gov waits for .*, in seconds/);
    }
  }
});

Deno.test("same class: user-named files and numbers are checked before anything runs", async () => {
  const ws = await workspace();
  try {
    const before = await tree(ws.root);
    const dir = join(ws.root, "environments");
    const wf = join(ws.root, "wf.json");
    await Deno.writeTextFile(wf, "{}");
    const noUv = { GOV_UV: join(ws.root, "no-such-uv") };
    const cases: [string[], RegExp][] = [
      [
        ["init", "-w", ws.root, "-e", "prod", "--requirements", dir],
        /--requirements: .* is a folder, not a file/,
      ],
      [
        ["init", "-w", ws.root, "-e", "prod", "--requirements", `${dir}/none.txt`],
        /--requirements: .* does not exist/,
      ],
      [
        ["init", "-w", ws.root, "-e", "prod", "--comfyui", ws.file],
        /--comfyui .* is a file, not a folder/,
      ],
      [
        ["workflow", "patch", wf, "--set-file", `a=${dir}`],
        /--set-file a=PATH: .* is a folder, not a file/,
      ],
      [
        ["backend", "add", "a", "--host", "127.0.0.1", "--port", "0x50", "-w", ws.root],
        /--port must be an integer/,
      ],
      [["systemd-unit", "-w", ws.root, "--grace", "1e3"], /--grace must be a number/],
    ];
    for (const [args, what] of cases) {
      const r = await cli(args, noUv, ws.root);
      assertUsage(r, what);
    }
    await Deno.remove(wf);
    assertEquals(await tree(ws.root), before);
  } finally {
    await ws.cleanup();
  }
});
