/**
 * The test wheelhouse: small offline wheels (torch, numpy, conflicting pins, ...) and the
 * pinned seed packages, built by `scripts/build_wheelhouse.py`, for the real uv to resolve
 * against offline; and the environment that points gov and uv at it.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { ensureUv, REPO_ROOT, UV } from "./paths.ts";

/** Absolute path of the wheelhouse builder. */
export const BUILD_WHEELHOUSE_SCRIPT = `${REPO_ROOT}/scripts/build_wheelhouse.py`;

let pending: Promise<string> | undefined;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

function tempRoot(): string {
  return Deno.env.get("TMPDIR") || "/tmp";
}

async function build(): Promise<string> {
  const script = await Deno.readFile(BUILD_WHEELHOUSE_SCRIPT);
  // The folder name changes whenever the builder does, so a stale wheelhouse is never reused.
  const digest = createHash("sha256").update(script).digest("hex").slice(0, 16);
  const target = `${tempRoot()}/gov-wheelhouse-${digest}`;
  if (await exists(`${target}/wheelhouse.json`)) return target;
  // Several test files (and processes) may build at once: each builds privately, then the
  // first rename wins and the others discard their copy.
  const staging = await Deno.makeTempDir({ dir: tempRoot(), prefix: `gov-wheelhouse-${digest}-` });
  try {
    const out = await new Deno.Command("python3", {
      args: [BUILD_WHEELHOUSE_SCRIPT, staging],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (out.code !== 0) {
      throw new Error(
        `build_wheelhouse.py failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`,
      );
    }
    try {
      await Deno.rename(staging, target);
    } catch (err) {
      if (!(await exists(`${target}/wheelhouse.json`))) throw err;
    }
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
  return target;
}

/**
 * Builds the wheelhouse once per run (cached across runs by the builder's hash) and returns
 * its folder, for `--find-links` / `UV_FIND_LINKS` / `[tool.uv] find-links`.
 *
 * @example
 * ```ts
 * const links = await wheelhouse();
 * const env = await uvTestEnv();
 * const out = await new Deno.Command(env.GOV_UV, { args: ["lock"], env }).output();
 * console.log(links, out.code);
 * ```
 */
export function wheelhouse(): Promise<string> {
  pending ??= build().catch((err) => {
    pending = undefined;
    throw err;
  });
  return pending;
}

/**
 * Environment variables that make gov (and uv run by a test) use the pinned uv offline over
 * the wheelhouse, with a uv cache of its own (never the user's) and no interpreter download.
 * Installs the pinned uv first when it is missing.
 *
 * @example
 * ```ts
 * const env = await uvTestEnv({ GOV_LOCK_WAIT: "20" });
 * ```
 */
export async function uvTestEnv(
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  await ensureUv();
  const links = await wheelhouse();
  return {
    GOV_UV: UV,
    UV_FIND_LINKS: links,
    UV_OFFLINE: "1",
    UV_CACHE_DIR: `${links}.uv-cache`,
    UV_PYTHON_DOWNLOADS: "never",
    ...extra,
  };
}
