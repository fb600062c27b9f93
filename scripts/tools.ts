/**
 * Installs the pinned uv the tests, the demo and the benchmarks drive into the project's
 * git-ignored `.tools/` folder, so nothing outside the checkout changes.
 *
 * `.tools/bin/uv` is always the pinned version: a `uv` on PATH of that version is linked,
 * any other case installs the wheel from PyPI with the host's pip. A second run only asks
 * `.tools/bin/uv --version` and returns.
 *
 * Run: `deno run -P=test scripts/tools.ts` (the `test` task does it first).
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The uv version gov is proven against. */
export const UV_VERSION = "0.13.8";

/** The project's tools folder. */
export const TOOLS_DIR = fileURLToPath(new URL("../.tools", import.meta.url));

/** Where the pinned uv lives once installed. */
export const PINNED_UV = join(TOOLS_DIR, "bin", "uv");

async function versionOf(program: string): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(program, { args: ["--version"], stdout: "piped" })
      .output();
    if (!out.success) return undefined;
    return new TextDecoder().decode(out.stdout).trim().split(/\s+/)[1];
  } catch {
    return undefined;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      if (Deno.statSync(candidate).isFile) return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

async function run(program: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-5).join("\n");
    throw new Error(`${program} ${args.join(" ")} failed (exit ${out.code}):\n${err}`);
  }
}

async function link(target: string): Promise<void> {
  await Deno.mkdir(dirname(PINNED_UV), { recursive: true });
  await Deno.remove(PINNED_UV).catch(() => {});
  await Deno.symlink(target, PINNED_UV);
}

/**
 * Makes `.tools/bin/uv` the pinned uv and returns its path; quick when it already is.
 *
 * @example
 * ```ts
 * import { ensureUv } from "./tools.ts";
 * const uv = await ensureUv();
 * console.log(uv);
 * ```
 */
export function ensureUv(log: (line: string) => void = () => {}): Promise<string> {
  ready ??= install(log).catch((err) => {
    ready = undefined;
    throw err;
  });
  return ready;
}

let ready: Promise<string> | undefined;

async function install(log: (line: string) => void): Promise<string> {
  if (await versionOf(PINNED_UV) === UV_VERSION) return PINNED_UV;
  const found = onPath("uv");
  if (found && await versionOf(found) === UV_VERSION) {
    await link(found);
    log(`uv ${UV_VERSION}: linked ${found}`);
    return PINNED_UV;
  }
  log(`uv ${UV_VERSION}: installing from PyPI into ${TOOLS_DIR}`);
  // A fresh folder per install, swapped in by the link, so a half-done install is never used.
  const target = join(TOOLS_DIR, `uv-${UV_VERSION}`);
  const staging = `${target}.partial-${Deno.pid}`;
  await Deno.mkdir(TOOLS_DIR, { recursive: true });
  await Deno.remove(staging, { recursive: true }).catch(() => {});
  await run("python3", ["-m", "pip", "--version"]).catch(() => {
    throw new Error(
      `python3 has no pip to fetch uv ${UV_VERSION} from PyPI: install pip (Debian: python3-pip), or put uv ${UV_VERSION} on PATH`,
    );
  });
  await run("python3", [
    "-m",
    "pip",
    "install",
    "--quiet",
    "--disable-pip-version-check",
    "--no-deps",
    "--only-binary=:all:",
    "--target",
    staging,
    `uv==${UV_VERSION}`,
  ]);
  await Deno.remove(target, { recursive: true }).catch(() => {});
  await Deno.rename(staging, target);
  // Relative, so the checkout can move.
  await link(join("..", `uv-${UV_VERSION}`, "bin", "uv"));
  const got = await versionOf(PINNED_UV);
  if (got !== UV_VERSION) {
    throw new Error(`installed uv reports version ${got ?? "(none)"}, wanted ${UV_VERSION}`);
  }
  return PINNED_UV;
}

if (import.meta.main) {
  try {
    const path = await ensureUv((line) => console.error(line));
    console.error(`uv ${UV_VERSION}: ${path}`);
  } catch (err) {
    console.error(`scripts/tools.ts: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
