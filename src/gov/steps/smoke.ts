/**
 * The smoke test after a promotion: `[tx] smoke_test_cmd` when configured, else the
 * default `python -c "import sys; print(sys.version)"` followed by importing every
 * top-level module of the node's managed packages with the production interpreter. A
 * package that installs but cannot be imported (a missing system library, a broken wheel)
 * fails the promotion before ComfyUI is restarted on it.
 *
 * A first word of `python` or `python3` in the configured command means the production
 * interpreter.
 *
 * @module
 */
import { runProcess, SpawnError } from "../../process/run.ts";
import { judgedStep } from "./progress.ts";
import type { GovContext } from "./context.ts";
import { requirementName } from "../state/pyproject.ts";

/** Outcome of the smoke test. */
export interface SmokeResult {
  ok: boolean;
  cmd: string[];
  code: number;
  stdout: string;
  stderr: string;
  /** Packages whose modules were imported (default test only). */
  imported: string[];
}

/** The default command of seed 003 §4.5 step 8. */
export const DEFAULT_SMOKE = ["python", "-c", "import sys; print(sys.version)"];

const IMPORT_CHECK = `
import importlib, importlib.metadata as md, sys
failed = []
for dist in sys.argv[1:]:
    try:
        d = md.distribution(dist)
    except md.PackageNotFoundError:
        failed.append((dist, "not installed"))
        continue
    tops = (d.read_text("top_level.txt") or "").split()
    if not tops:
        tops = sorted({
            f.parts[0][:-3] if f.parts[0].endswith(".py") else f.parts[0]
            for f in (d.files or [])
            if f.parts and not f.parts[0].endswith((".dist-info", ".data", ".pth"))
            and f.parts[0] not in ("__pycache__", "..") and (len(f.parts) > 1 or f.parts[0].endswith(".py"))
        })
    for top in tops:
        if top.startswith("_"):
            continue
        try:
            importlib.import_module(top)
            print(f"ok {dist}: import {top}")
        except BaseException as e:
            failed.append((dist, f"import {top}: {type(e).__name__}: {e}"))
for dist, why in failed:
    print(f"IMPORT FAILED {dist}: {why}", file=sys.stderr)
sys.exit(1 if failed else 0)
`;

async function run(ctx: GovContext, cmd: string[]): Promise<{
  code: number;
  stdout: string;
  stderr: string;
}> {
  const exe = cmd[0] === "python" || cmd[0] === "python3" ? ctx.env.python : cmd[0];
  try {
    const r = await runProcess(exe, cmd.slice(1), {
      // Not the ComfyUI folder: its own modules (utils, nodes, ...) would shadow packages.
      cwd: ctx.paths.dir,
      env: ctx.childEnv,
      unsetEnv: ["VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"],
      timeoutMs: ctx.env.config.tx.timeout * 1000,
    });
    return {
      code: r.timedOut ? 124 : r.code,
      stdout: r.stdout,
      stderr: r.timedOut ? `${r.stderr}\n(timed out)` : r.stderr,
    };
  } catch (err) {
    if (err instanceof SpawnError) return { code: 127, stdout: "", stderr: err.message };
    throw err;
  }
}

/**
 * Runs the smoke test against `.venv-prod`.
 *
 * @example
 * ```ts
 * import { smokeTest } from "@/gov/steps/smoke.ts";
 * import { type GovContext } from "@/gov/steps/context.ts";
 * declare const ctx: GovContext;
 *
 * const s = await smokeTest(ctx, ["opencv-python>=4"]);
 * if (!s.ok) console.log(s.stderr);
 * ```
 */
export async function smokeTest(ctx: GovContext, managedDeps: string[]): Promise<SmokeResult> {
  return await judgedStep(ctx.onStep, "smoke test", async (): Promise<SmokeResult> => {
    const configured = ctx.env.config.tx.smoke_test_cmd;
    const cmd = configured ?? DEFAULT_SMOKE;
    const first = await run(ctx, cmd);
    if (first.code !== 0 || configured) {
      return { ok: first.code === 0, cmd, ...first, imported: [] };
    }
    const names = [
      ...new Set(managedDeps.map((d) => requirementName(d)).filter((n): n is string => !!n)),
    ];
    if (names.length === 0) return { ok: true, cmd, ...first, imported: [] };
    const check = await run(ctx, ["python", "-c", IMPORT_CHECK, ...names]);
    return {
      ok: check.code === 0,
      cmd: [...cmd, "&&", "python", "-c", "<import check>", ...names],
      code: check.code,
      stdout: first.stdout + check.stdout,
      stderr: first.stderr + check.stderr,
      imported: names,
    };
  }, (r) => r.ok);
}
