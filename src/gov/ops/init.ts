/**
 * `gov init` (seed 003 §4.1): the environment layout (§3.1), `uv lock`, and `.venv-prod`
 * synced with `uv sync --locked --all-groups`. Idempotent: on an initialised environment
 * it only relocks (a no-op when nothing changed) and re-syncs when production drifted,
 * which also makes it the way to repair `.venv-prod`.
 *
 * The ComfyUI base requirements come from `--requirements FILE`, else ComfyUI's own
 * `requirements.txt`, else none; they are written once into `[project] dependencies`.
 * `.venv-prod` is created with `uv venv --seed`: pip is there for ComfyUI-Manager (uv's
 * exact sync keeps a seeded venv's pip), but what Manager installs is drift the next sync
 * removes; dependency changes go through `gov tx run` and `gov tx promote`.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { MissingInputError } from "../../errors.ts";
import { exists, readTextIfExists, writeFileAtomic, writeJsonAtomic } from "../../fs/atomic.ts";
import { type Environment, loadEnvironment } from "../../workspace/environment.ts";
import { type GovContext, type GovOptions, makeContext } from "../steps/context.ts";
import { syncProd } from "../steps/prod.ts";
import { missingVersionOf } from "../steps/workdir.ts";
import { requireGovManagedPython, requireTruthIntact } from "../steps/guards.ts";
import {
  parseRequirementsText,
  projectNameFor,
  readPyproject,
  renderInitialPyproject,
} from "../state/pyproject.ts";
import { createSnapshot, readSnapshotIndex } from "../state/snapshots.ts";
import { readPlugins } from "../state/store.ts";

/** Flags of `gov init`. */
export interface InitOptions {
  /** A requirements.txt with the ComfyUI base requirements. */
  requirementsFile?: string;
  /** `[paths] comfyui_dir` for a new config.toml. */
  comfyuiDir?: string;
  /** `requires-python` of a new pyproject.toml (default ">=3.10"). */
  requiresPython?: string;
}

/** What `gov init` did. */
export interface InitResult {
  env: string;
  dir: string;
  /** Files and folders it created. */
  created: string[];
  /** Whether pyproject.toml and uv.lock were there already. */
  already_initialised: boolean;
  base_requirements: string[];
  prod: "synced" | "in-sync";
  snapshot: string | null;
  warnings: string[];
  uv: string;
}

function configTemplate(comfyuiDir?: string): string {
  return [
    "# gov environment configuration; every key is optional (see `gov init --help`).",
    "[paths]",
    `comfyui_dir = ${JSON.stringify(comfyuiDir ?? "ComfyUI")}`,
    '# python = "/opt/python/bin/python3"   # host-managed interpreter: gov never syncs it',
    "",
    "[tools]",
    '# uv = "/usr/local/bin/uv"   # default: uv on PATH; the GOV_UV variable overrides both',
    '# git = "git"',
    "",
    "[comfyui]",
    '# args = ["--listen", "127.0.0.1", "--port", "8188"]',
    "",
    "[tx]",
    "timeout = 120   # seconds a candidate ComfyUI may take to come up",
    '# smoke_test_cmd = ["python", "-c", "import torch"]',
    '# core_packages = ["opencv-python"]   # guarded in addition to torch, torchvision, torchaudio, xformers, numpy',
    "",
    "[rollback]",
    "snapshot_retention = 50",
    "",
  ].join("\n");
}

/** What `gov init` settled before taking the lock. */
export interface InitPlan {
  /** The environment (its config.toml written when it was missing). */
  env: Environment;
  /** The uv it will use. */
  uvPath: string;
  /** The text of the requirements file given, if one was. */
  reqText?: string;
  /** Files created so far. */
  created: string[];
}

/**
 * First half of `gov init`, before the lock exists: checks uv and the inputs, then writes
 * config.toml when missing (the lock lives in the environment's folder).
 *
 * @example
 * ```ts
 * import { prepareInit } from "@/gov/ops/init.ts";
 *
 * const plan = await prepareInit("/srv/comfy/environments/prod", {});
 * console.log(plan.uvPath);
 * ```
 */
export async function prepareInit(
  dir: string,
  opts: InitOptions,
  gopts: GovOptions = {},
): Promise<InitPlan> {
  const abs = resolve(dir);
  // uv must exist before anything is written: a failed init leaves no half layout.
  let env: Environment = loadEnvironment(abs);
  const probe = makeContext(env, gopts);
  requireGovManagedPython(probe);
  const uvPath = probe.uv().path;
  let reqText: string | undefined;
  if (opts.requirementsFile !== undefined) {
    reqText = await readTextIfExists(opts.requirementsFile);
    if (reqText === undefined) {
      throw new MissingInputError(
        "requirements file",
        opts.requirementsFile,
        "pass an existing requirements file",
      );
    }
  }
  const created: string[] = [];
  await Deno.mkdir(abs, { recursive: true });
  if (!(await exists(env.configPath))) {
    await writeFileAtomic(env.configPath, configTemplate(opts.comfyuiDir));
    created.push("config.toml");
    env = loadEnvironment(abs, env.workspace);
  }
  return { env, uvPath, reqText, created };
}

/**
 * Second half of `gov init`, holding the lock: the layout, the truth files, `uv lock`,
 * `.venv-prod` and the first snapshot.
 *
 * @example
 * ```ts
 * import { init, prepareInit } from "@/gov/ops/init.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 *
 * const plan = await prepareInit("/srv/comfy/environments/prod", {});
 * const r = await init(makeContext(plan.env), plan, {});
 * ```
 */
export async function init(
  ctx: GovContext,
  plan: InitPlan,
  opts: InitOptions,
): Promise<InitResult> {
  const { reqText, uvPath } = plan;
  const created = [...plan.created];
  const p = ctx.paths;
  const warnings: string[] = [];
  await requireTruthIntact(ctx);
  const already = (await exists(p.pyproject)) && (await exists(p.lock));
  for (
    const d of [
      p.stateDir,
      p.transactionsDir,
      p.conflictsDir,
      p.logsDir,
      p.workDir,
      p.snapshotsDir,
      p.candidatesDir,
    ]
  ) {
    if (!(await exists(d))) {
      await Deno.mkdir(d, { recursive: true });
      created.push(d.slice(p.dir.length + 1) + "/");
    }
  }
  // An initialised environment without its registry is refused (readPlugins says how to
  // restore it): writing an empty one would forget every node.
  if (!(await exists(p.plugins)) && !already) {
    await writeJsonAtomic(p.plugins, { version: 1, plugins: {} });
    created.push("state/plugins.json");
  } else {
    await readPlugins(p); // validate
  }
  if (!(await exists(p.snapshotsIndex))) {
    await writeJsonAtomic(p.snapshotsIndex, { version: 1, snapshots: [] });
    created.push("state/snapshots_index.json");
  }
  if (!(await exists(ctx.env.comfyuiDir))) {
    warnings.push(`ComfyUI folder ${ctx.env.comfyuiDir} does not exist yet`);
  } else if (!(await exists(join(ctx.env.comfyuiDir, "main.py")))) {
    warnings.push(`${ctx.env.comfyuiDir} has no main.py: transactions cannot test-start ComfyUI`);
  }
  let base: string[] = [];
  // Without uv.lock, an earlier init stopped half way (a bad requirement, no network): its
  // pyproject.toml was only this command's own output, so a new requirements file replaces
  // it and the re-run finishes with the new input.
  const redo = !already && reqText !== undefined && (await exists(p.pyproject)) &&
    Object.keys((await readPyproject(p.pyproject)).groups).length === 0;
  if (redo) {
    warnings.push(
      "the previous gov init had not finished; pyproject.toml was rewritten from the requirements file",
    );
  }
  if (redo || !(await exists(p.pyproject))) {
    const source = reqText ??
      await readTextIfExists(join(ctx.env.comfyuiDir, "requirements.txt"));
    if (source !== undefined) {
      const parsed = parseRequirementsText(source);
      base = parsed.requirements;
      for (const o of parsed.options) warnings.push(`ignored requirements option: ${o}`);
    }
    await writeFileAtomic(
      p.pyproject,
      renderInitialPyproject({
        name: projectNameFor(ctx.env.name),
        requirements: base,
        requiresPython: opts.requiresPython ?? ">=3.10",
        envName: ctx.env.name,
      }),
    );
    if (!redo) created.push("pyproject.toml");
  } else {
    base = (await readPyproject(p.pyproject)).dependencies;
    if (reqText !== undefined) {
      warnings.push("pyproject.toml exists; the requirements file was not applied to it");
    }
  }
  const uv = ctx.uv();
  try {
    await uv.lock({ cwd: p.dir, projectEnvironment: p.prodVenv });
  } catch (err) {
    throw missingVersionOf(err) ?? err;
  }
  const prod = await syncProd(ctx);
  let snapshot: string | null = null;
  if ((await readSnapshotIndex(p)).snapshots.length === 0) {
    snapshot = (await createSnapshot(p, "init", null, { retention: ctx.retention })).id;
  }
  return {
    env: ctx.env.name,
    dir: p.dir,
    created,
    already_initialised: already,
    base_requirements: base,
    prod,
    snapshot,
    warnings,
    uv: uvPath,
  };
}
