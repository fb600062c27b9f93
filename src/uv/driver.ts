/**
 * The uv driver: finds uv, runs it through the process layer with a clean environment,
 * reports progress, keeps the time spent inside uv (so gov can measure its own overhead),
 * and turns failures into classified errors.
 *
 * gov only speaks uv's public CLI: `lock`, `sync`, `add`, `venv`, `pip list`, `--version`.
 *
 * @module
 */
import { isAbsolute, join, resolve } from "node:path";
import { type ProcessResult, runProcess, SpawnError } from "../process/run.ts";
import { UvError, uvErrorFor, UvNotFoundError } from "./errors.ts";

/** A progress event for a long step (a uv or git run, a ComfyUI test start). */
export interface StepEvent {
  /** Human name of the step, e.g. "uv lock (workdir)". */
  step: string;
  /** start, still running (every few seconds), done, or failed. */
  state: "start" | "running" | "done" | "failed";
  /** Milliseconds since the step started. */
  elapsedMs: number;
}

/** Receives {@linkcode StepEvent}s; the CLI renders them on stderr. */
export type OnStep = (event: StepEvent) => void;

/**
 * Runs `fn` as a named step: emits start, a "running" tick every `tickMs`, then done or
 * failed with the elapsed time.
 *
 * @example
 * ```ts
 * const onStep: OnStep = (e) => console.error(e.step, e.state, e.elapsedMs);
 * await timedStep(onStep, "sleep", () => new Promise((r) => setTimeout(r, 10)));
 * ```
 */
export async function timedStep<T>(
  onStep: OnStep | undefined,
  step: string,
  fn: () => Promise<T>,
  tickMs = 5000,
): Promise<T> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  onStep?.({ step, state: "start", elapsedMs: 0 });
  const timer = onStep
    ? setInterval(() => onStep({ step, state: "running", elapsedMs: elapsed() }), tickMs)
    : undefined;
  try {
    const out = await fn();
    onStep?.({ step, state: "done", elapsedMs: elapsed() });
    return out;
  } catch (err) {
    onStep?.({ step, state: "failed", elapsedMs: elapsed() });
    throw err;
  } finally {
    if (timer !== undefined) clearInterval(timer);
  }
}

function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0o755) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Finds the uv executable: `GOV_UV` (one-off override, e.g. for tests and CI), else
 * `[tools] uv` of the environment's config.toml (relative paths are relative to the
 * environment folder), else `uv` on `PATH`. Throws {@linkcode UvNotFoundError} with the fix.
 *
 * @example
 * ```ts
 * const uv = locateUv({ configured: "./tools/uv", baseDir: "/srv/envs/prod", getenv: Deno.env.get });
 * ```
 */
export function locateUv(opts: {
  configured?: string;
  baseDir: string;
  getenv: (name: string) => string | undefined;
}): string {
  const fromEnv = opts.getenv("GOV_UV");
  const wanted = fromEnv || opts.configured || "uv";
  const source = fromEnv ? "GOV_UV" : opts.configured ? "[tools] uv" : "PATH";
  if (wanted.includes("/")) {
    const abs = isAbsolute(wanted) ? wanted : resolve(opts.baseDir, wanted);
    if (!isExecutable(abs)) {
      throw new UvNotFoundError(abs, `no executable file there (from ${source})`);
    }
    return abs;
  }
  for (const dir of (opts.getenv("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const candidate = join(dir, wanted);
    if (isExecutable(candidate)) return candidate;
  }
  throw new UvNotFoundError(wanted, `not found on PATH (from ${source})`);
}

/** Carries a non-zero uv result through {@linkcode timedStep} so the step reads "failed". */
class FailedRun extends Error {
  constructor(readonly result: ProcessResult) {
    super(`exit ${result.code}`);
  }
}

/** Options of one uv run. */
export interface UvRunOptions {
  /** Project folder (holds pyproject.toml). */
  cwd: string;
  /** Venv uv syncs into (`UV_PROJECT_ENVIRONMENT`). */
  projectEnvironment?: string;
  /** Progress name; default "uv <subcommand>". */
  step?: string;
  /** Kill uv after this long (default 30 minutes: large torch wheels on slow links). */
  timeoutMs?: number;
}

/** One finished uv call, for timing reports. */
export interface UvCall {
  /** Arguments after `uv`. */
  args: string[];
  /** Wall-clock milliseconds. */
  durationMs: number;
  /** Exit code. */
  code: number;
}

/** A package as `uv pip list --format json` reports it. */
export interface InstalledPackage {
  name: string;
  version: string;
}

/**
 * A configured uv: every run goes through {@linkcode Uv.run}, which records its duration.
 *
 * @example
 * ```ts
 * const dir = "/srv/envs/prod";
 * const uv = new Uv(locateUv({ baseDir: dir, getenv: Deno.env.get }));
 * await uv.lock({ cwd: dir });
 * console.log(uv.totalMs);
 * ```
 */
export class Uv {
  /** Absolute path of the executable. */
  readonly path: string;
  /** Every call made so far. */
  readonly calls: UvCall[] = [];
  /** Custom node ids, so conflict messages map `node-<id>` groups back exactly. */
  knownNodes: string[] = [];
  private onStep?: OnStep;
  private extraEnv: Record<string, string>;

  constructor(path: string, opts: { onStep?: OnStep; env?: Record<string, string> } = {}) {
    this.path = path;
    this.onStep = opts.onStep;
    this.extraEnv = opts.env ?? {};
  }

  /** Total milliseconds spent inside uv. */
  get totalMs(): number {
    return this.calls.reduce((a, c) => a + c.durationMs, 0);
  }

  /**
   * Runs uv and returns its result whatever the exit code.
   *
   * @example
   * ```ts
   * const uv = new Uv("uv");
   * const r = await uv.exec(["--version"], { cwd: "/" });
   * ```
   */
  async exec(args: string[], opts: UvRunOptions): Promise<ProcessResult> {
    const env: Record<string, string> = {
      NO_COLOR: "1",
      UV_NO_PROGRESS: "1",
      ...this.extraEnv,
    };
    const unsetEnv = ["VIRTUAL_ENV", "FORCE_COLOR", "CLICOLOR_FORCE"];
    if (opts.projectEnvironment) env.UV_PROJECT_ENVIRONMENT = opts.projectEnvironment;
    else unsetEnv.push("UV_PROJECT_ENVIRONMENT");
    const step = opts.step ?? `uv ${args.filter((a) => !a.startsWith("-")).slice(0, 2).join(" ")}`;
    let result: ProcessResult;
    try {
      result = await timedStep(this.onStep, step, async () => {
        const r = await runProcess(this.path, args, {
          cwd: opts.cwd,
          env,
          unsetEnv,
          timeoutMs: opts.timeoutMs ?? 30 * 60_000,
        });
        // A failed uv run must show as a failed step, not as done.
        if (r.code !== 0 || r.timedOut) throw new FailedRun(r);
        return r;
      });
    } catch (err) {
      if (err instanceof FailedRun) result = err.result;
      else if (err instanceof SpawnError) {
        throw new UvNotFoundError(this.path, (err.cause as Error)?.message ?? "cannot start");
      } else throw err;
    }
    this.calls.push({ args, durationMs: result.durationMs, code: result.code });
    return result;
  }

  /**
   * Runs uv and throws a classified {@linkcode UvError} when it fails.
   *
   * @example
   * ```ts
   * const uv = new Uv("uv");
   * const workdir = "/srv/envs/.prod.gov-work.tx-1";
   * await uv.run(["lock"], { cwd: workdir });
   * ```
   */
  async run(args: string[], opts: UvRunOptions): Promise<ProcessResult> {
    const r = await this.exec(args, opts);
    const sub = args.find((a) => !a.startsWith("-")) ?? "";
    if (r.timedOut) {
      throw uvErrorFor(
        sub,
        r.code,
        r.stdout,
        `${r.stderr}\nerror: gov stopped uv after ${Math.round(r.durationMs / 1000)} s`,
        this.knownNodes,
      );
    }
    if (r.code !== 0) throw uvErrorFor(sub, r.code, r.stdout, r.stderr, this.knownNodes);
    return r;
  }

  /**
   * `uv lock` in a project folder.
   *
   * @example
   * ```ts
   * const uv = new Uv("uv");
   * const workdir = "/srv/envs/.prod.gov-work.tx-1";
   * await uv.lock({ cwd: workdir, projectEnvironment: `${workdir}/.venv` });
   * ```
   */
  lock(opts: UvRunOptions): Promise<ProcessResult> {
    return this.run(["lock"], { step: "uv lock", ...opts });
  }

  /**
   * `uv sync --locked --all-groups` into `venv` (exact: packages not in the lock go away).
   * `--all-groups` because uv installs only the `dev` group by default, and every custom
   * node lives in its own group.
   *
   * @example
   * ```ts
   * const uv = new Uv("uv");
   * const env = { dir: "/srv/envs/prod" };
   * await uv.sync({ cwd: env.dir, projectEnvironment: `${env.dir}/.venv-prod` });
   * ```
   */
  sync(opts: UvRunOptions & { projectEnvironment: string }): Promise<ProcessResult> {
    return this.run(["sync", "--locked", "--all-groups"], { step: "uv sync", ...opts });
  }

  /**
   * `uv add --group <group> --no-sync --raw -r <requirements>`: declares a custom node's
   * requirements as written in its own group and relocks (uv reverts both files itself
   * when the lock fails).
   *
   * @example
   * ```ts
   * const uv = new Uv("uv");
   * const workdir = "/srv/envs/.prod.gov-work.tx-1";
   * await uv.addGroup("node-impact", "/work/requirements.txt", { cwd: workdir });
   * ```
   */
  addGroup(group: string, requirementsFile: string, opts: UvRunOptions): Promise<ProcessResult> {
    return this.run(
      ["add", "--group", group, "--no-sync", "--raw", "-r", requirementsFile],
      { step: `uv add --group ${group}`, ...opts },
    );
  }

  /**
   * `uv venv <path>` (optionally with `--python`, and `--seed` for pip: ComfyUI-Manager runs
   * pip in ComfyUI's venv, and uv's exact sync keeps the seed packages of a seeded venv).
   *
   * @example
   * ```ts
   * const uv = new Uv("uv");
   * const workdir = "/srv/envs/.prod.gov-work.tx-1";
   * await uv.venv("/env/.venv-candidate/tx-1", { cwd: workdir, seed: true });
   * ```
   */
  venv(
    path: string,
    opts: UvRunOptions & { python?: string; seed?: boolean },
  ): Promise<ProcessResult> {
    const args = ["venv", path];
    if (opts.seed) args.push("--seed");
    if (opts.python) args.push("--python", opts.python);
    return this.run(args, { step: "uv venv", ...opts });
  }

  /**
   * What is installed in the venv of interpreter `python` (`uv pip list --format json`).
   *
   * @example
   * ```ts
   * const uv = new Uv("uv");
   * const env = { dir: "/srv/envs/prod" };
   * const pkgs = await uv.pipList("/env/.venv-prod/bin/python", { cwd: env.dir });
   * ```
   */
  async pipList(python: string, opts: UvRunOptions): Promise<InstalledPackage[]> {
    const r = await this.run(["pip", "list", "--format", "json", "--python", python], {
      step: "uv pip list",
      ...opts,
    });
    let parsed: unknown;
    try {
      parsed = JSON.parse(r.stdout.trim() || "[]");
    } catch {
      throw new UvError("pip list", 0, r.stdout, "uv pip list printed something that is not JSON", {
        kind: "other",
        summary: "uv pip list printed something that is not JSON",
        groups: [],
        nodes: [],
        involvesBase: false,
        packages: [],
      });
    }
    if (!Array.isArray(parsed)) return [];
    return parsed
      .filter((p) => typeof p?.name === "string" && typeof p?.version === "string")
      .map((p) => ({ name: p.name as string, version: p.version as string }));
  }

  /**
   * `uv --version`, e.g. "uv 0.12.5".
   *
   * @example
   * ```ts
   * const uv = new Uv("uv");
   * console.log(await uv.version());
   * ```
   */
  async version(): Promise<string> {
    const r = await this.run(["--version"], { cwd: "/", step: "uv --version" });
    return r.stdout.trim();
  }
}
