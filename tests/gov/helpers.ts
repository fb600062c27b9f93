/**
 * Shared set-up for the dependency-governance tests: environments initialised with the real
 * uv (pinned, `.tools/bin/uv`) offline over the test wheelhouse, custom-node git repositories
 * made with real `git`, readers for the state files the assertions look at, and the
 * fault-injecting uv wrapper.
 *
 * Each test file builds a template environment once ({@linkcode TemplateEnv}) and every test
 * works on its own copy (`cp -a`; uv 0.13.8 records the absolute find-links folder in the
 * lock, so a copy locks and syncs like the original; a venv copied this way still works
 * because gov only runs its `bin/python`, never its console scripts).
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { runProcess } from "../../src/process/run.ts";
import { FAKE_COMFYUI_DIR, UV } from "../helpers/paths.ts";
import { gov, type GovResult } from "../helpers/gov.ts";
import { uvTestEnv } from "../helpers/wheelhouse.ts";
import { assertEquals, assertTrue } from "../helpers/assert.ts";

/** Program to run as uv in tests (helpers and wrapper scripts): the pinned real uv. */
export const UV_BIN = UV;

/** The ComfyUI base requirements of the test environments (all in the wheelhouse). */
export const BASE_REQUIREMENTS = ["torch==2.1.0", "numpy", "pillow"];

/** {@linkcode uvTestEnv} with the lock wait the gov tests use. */
export async function uvEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  return await uvTestEnv({ GOV_LOCK_WAIT: "20", ...extra });
}

/**
 * Creates a git repository holding a custom node: `__init__.py` (importing `imports`) and
 * `requirements.txt`.
 */
export async function makeNodeRepo(
  parent: string,
  name: string,
  requirements: string[],
  opts: { imports?: string[]; pyproject?: boolean } = {},
): Promise<string> {
  const dir = join(parent, name);
  await Deno.mkdir(dir, { recursive: true });
  await git(["init", "-q", "-b", "main"], dir);
  const imports = (opts.imports ?? []).map((m) => `import ${m}\n`).join("");
  await Deno.writeTextFile(join(dir, "__init__.py"), `${imports}NODE_CLASS_MAPPINGS = {}\n`);
  if (opts.pyproject) {
    await Deno.writeTextFile(
      join(dir, "pyproject.toml"),
      `[project]\nname = "${name}"\nversion = "1.0"\ndependencies = ${
        JSON.stringify(requirements)
      }\n`,
    );
  } else {
    await Deno.writeTextFile(join(dir, "requirements.txt"), requirements.join("\n") + "\n");
  }
  await git(["add", "-A"], dir);
  await git([
    "-c",
    "user.name=gov-test",
    "-c",
    "user.email=t@example.invalid",
    "commit",
    "-qm",
    "init",
  ], dir);
  return dir;
}

/** Runs git and throws on failure. */
export async function git(args: string[], cwd: string): Promise<string> {
  const r = await runProcess("git", args, { cwd });
  if (r.code !== 0) throw new Error(`git ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** Top-level folders of an environment that hold venvs. */
const VENV_DIRS = new Set([".venv-prod", ".venv-candidate"]);

/** Copies a folder tree as new folders of hard links to the same files. */
async function linkTree(from: string, to: string): Promise<void> {
  const r = await runProcess("cp", ["-al", from, to]);
  if (r.code !== 0) throw new Error(`cp -al ${from} ${to} failed: ${r.stderr}`);
}

/** Copies a folder tree preserving links and modes. */
export async function copyTree(from: string, to: string): Promise<void> {
  const r = await runProcess("cp", ["-a", from, to]);
  if (r.code !== 0) throw new Error(`cp -a ${from} ${to} failed: ${r.stderr}`);
}

/** A ComfyUI folder (the fake) with the base requirements.txt. */
export async function installComfyUI(dir: string): Promise<void> {
  await Deno.mkdir(join(dir, "custom_nodes"), { recursive: true });
  for (const f of ["main.py", "folder_paths.py"]) {
    await Deno.copyFile(join(FAKE_COMFYUI_DIR, f), join(dir, f));
  }
  await Deno.writeTextFile(join(dir, "requirements.txt"), BASE_REQUIREMENTS.join("\n") + "\n");
}

/** Runs gov in environment folder `envDir` with the pinned uv offline. */
export async function govIn(
  envDir: string,
  args: string[],
  extraEnv: Record<string, string> = {},
  stdin?: string,
): Promise<GovResult> {
  return await gov([...args, "--env-dir", envDir], {
    env: await uvEnv(extraEnv),
    stdin,
    timeoutMs: 120_000,
  });
}

/** Like {@linkcode govIn} but asserts exit code 0 and returns parsed `--json` output. */
// deno-lint-ignore no-explicit-any
export async function govJson(envDir: string, args: string[], extra = {}): Promise<any> {
  const r = await govIn(envDir, [...args, "--json"], extra);
  assertEquals(r.code, 0, `gov ${args.join(" ")} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout);
}

/** A scratch area: one temp folder per test file, holding the template and the copies. */
export class Scratch {
  root = "";
  private n = 0;
  async open(): Promise<void> {
    this.root = await Deno.makeTempDir({ prefix: "gov-test-" });
  }
  async close(): Promise<void> {
    if (this.root) await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }
  /** A new empty folder directly under the scratch root. */
  async dir(prefix: string): Promise<string> {
    const d = join(this.root, `${prefix}-${++this.n}`);
    await Deno.mkdir(d, { recursive: true });
    return d;
  }
  /**
   * Copies environment `envDir` (a folder `<x>/env`) to a fresh `<y>/env`. Its venvs are
   * copied as hard links (a seeded venv is a thousand files): safe for the same reason uv's
   * own default hard-link install from its cache is, since uv and Python replace files and
   * never write into them; everything else (truth files, config, state, which tests do edit
   * in place) is copied.
   */
  async copyEnv(envDir: string): Promise<string> {
    const holder = await this.dir("copy");
    const to = join(holder, basename(envDir));
    await Deno.mkdir(to);
    const jobs: Promise<void>[] = [];
    for await (const e of Deno.readDir(envDir)) {
      const from = join(envDir, e.name);
      jobs.push(
        VENV_DIRS.has(e.name) ? linkTree(from, join(to, e.name)) : copyTree(from, join(to, e.name)),
      );
    }
    await Promise.all(jobs);
    return to;
  }
}

/** Creates and initialises an environment `<holder>/env` with the fake ComfyUI. */
export async function initEnv(
  scratch: Scratch,
  config = "",
  extraEnv: Record<string, string> = {},
): Promise<string> {
  const holder = await scratch.dir("env");
  const env = join(holder, "env");
  await installComfyUI(join(env, "ComfyUI"));
  if (config) await Deno.writeTextFile(join(env, "config.toml"), config);
  const r = await govIn(env, ["init"], extraEnv);
  assertEquals(r.code, 0, `gov init failed:\n${r.stderr}`);
  return env;
}

/** Reads a JSON file. */
// deno-lint-ignore no-explicit-any
export async function readJson(path: string): Promise<any> {
  return JSON.parse(await Deno.readTextFile(path));
}

/** The three truth files' bytes, for before/after comparisons. */
export async function truthFiles(env: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of ["pyproject.toml", "uv.lock", "state/plugins.json"]) {
    out[f] = await Deno.readTextFile(join(env, f));
  }
  return out;
}

/** The truth files stored in a snapshot, keyed like {@linkcode truthFiles}. */
export async function snapshotFiles(env: string, id: string): Promise<Record<string, string>> {
  const dir = join(env, "snapshots", id);
  return {
    "pyproject.toml": await Deno.readTextFile(join(dir, "pyproject.toml")),
    "uv.lock": await Deno.readTextFile(join(dir, "uv.lock")),
    "state/plugins.json": await Deno.readTextFile(join(dir, "plugins.json")),
  };
}

/** `name==version` of everything installed in the environment's `.venv-prod`. */
export async function prodFreeze(env: string): Promise<string[]> {
  const r = await runProcess(UV_BIN, [
    "pip",
    "list",
    "--format",
    "json",
    "--python",
    join(env, ".venv-prod", "bin", "python"),
  ], { env: await uvEnv() });
  assertEquals(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { name: string; version: string }[])
    .map((p) => `${p.name.toLowerCase().replace(/[-_.]+/g, "-")}==${p.version}`).sort();
}

/** The snapshot index entries. */
// deno-lint-ignore no-explicit-any
export async function snapshotIndex(env: string): Promise<any[]> {
  return (await readJson(join(env, "state", "snapshots_index.json"))).snapshots;
}

/**
 * Asserts the snapshot index and the snapshot folders agree, no temporary folder is
 * left, the journal is gone and the lock is free.
 */
export async function assertConsistent(env: string): Promise<void> {
  const index = (await snapshotIndex(env)).map((s: { id: string }) => s.id).sort();
  const dirs: string[] = [];
  for await (const e of Deno.readDir(join(env, "snapshots"))) dirs.push(e.name);
  assertEquals(dirs.sort(), index, "snapshot folders and index disagree");
  for (const id of index) {
    const meta = await readJson(join(env, "snapshots", id, "meta.json"));
    assertEquals(meta.id, id);
  }
  assertTrue(!(await exists(join(env, "state", "journal.json"))), "journal left behind");
  assertTrue(!(await exists(join(env, "state", ".lock"))), "lock left behind");
  const siblings: string[] = [];
  for await (const e of Deno.readDir(dirname(env))) {
    if (e.name.startsWith(".env.gov-work.")) siblings.push(e.name);
  }
  assertEquals(siblings, [], "workdirs left behind");
}

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** The txid of the last line of `gov tx list --json`. */
export async function lastTxid(env: string): Promise<string> {
  const list = await govJson(env, ["tx", "list"]);
  return list[list.length - 1].txid;
}

/** What {@linkcode flakyUv} makes fail once: the next `.venv-prod` sync, or the next `uv lock`. */
export type UvFault = "prod-sync" | "lock";

/**
 * A uv that fails its next `sync` into `.venv-prod` (or its next `lock`) while `flag` exists
 * (and removes the flag), then behaves as {@linkcode UV_BIN}: what a dropped connection or a
 * full disk does to a real uv half-way. Everything else runs the real uv.
 */
export async function flakyUv(
  dir: string,
  flag: string,
  fault: UvFault = "prod-sync",
): Promise<string> {
  const path = join(dir, "uv-flaky");
  const when = fault === "lock"
    ? `"$1" == "lock"`
    : `"$1" == "sync" && "\${UV_PROJECT_ENVIRONMENT:-}" == *"/.venv-prod"`;
  const message = fault === "lock"
    ? "error: failed to write to file `uv.lock`: No space left on device (os error 28) (injected by the test)"
    : "error: Failed to install: connection reset while downloading (injected by the test)";
  await Deno.writeTextFile(
    path,
    `#!/bin/bash
if [[ ${when} && -e "${flag}" ]]; then
  rm -f "${flag}"
  echo "${message.replaceAll("`", "\\`")}" >&2
  exit 2
fi
exec "${UV_BIN}" "$@"
`,
  );
  await Deno.chmod(path, 0o755);
  return path;
}

/** A fresh {@linkcode flakyUv} with its own armed flag (a unique name next to `flagBase`). */
export async function failingNextProdSync(
  scratch: Scratch,
  flagBase: string,
  fault: UvFault = "prod-sync",
): Promise<string> {
  const flag = `${flagBase}-${crypto.randomUUID()}`;
  await Deno.writeTextFile(flag, "");
  return await flakyUv(await scratch.dir("uv"), flag, fault);
}

/**
 * One template environment per test file, built on first use and copied per test (so each
 * test stands alone and one failure does not hide the others); its scratch folder goes
 * away when the test process ends.
 */
export class TemplateEnv {
  readonly scratch = new Scratch();
  private built?: Promise<string>;
  constructor(private readonly build: (scratch: Scratch) => Promise<string>) {
    globalThis.addEventListener("unload", () => {
      if (this.scratch.root) {
        try {
          Deno.removeSync(this.scratch.root, { recursive: true });
        } catch {
          // already gone
        }
      }
    });
  }
  /** The template itself (built once); never change it, copy it. */
  env(): Promise<string> {
    this.built ??= (async () => {
      await this.scratch.open();
      return await this.build(this.scratch);
    })();
    return this.built;
  }
  /** A fresh copy of the template, for one test. */
  async copy(): Promise<string> {
    return await this.scratch.copyEnv(await this.env());
  }
}
