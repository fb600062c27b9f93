/**
 * Shared fixtures of the supervisor tests: temporary workspaces with environments that run
 * the fake ComfyUI on the host python, fake children for unit tests of the loop, and a
 * handle on a running `gov` process whose output is drained and searchable.
 *
 * @module
 */
import { join } from "node:path";
import type { ChildHandle, SpawnRequest, SupervisorDeps } from "../../src/supervisor/deps.ts";
import type { HealthTarget, ProbeResult } from "../../src/supervisor/health.ts";
import type { Environment } from "../../src/workspace/environment.ts";
import { type Workspace, workspaceAt } from "../../src/workspace/root.ts";
import { isPidAlive } from "../../src/process/run.ts";
import { processRunning } from "../../src/supervisor/procinfo.ts";
import { installFakeComfyUI } from "../helpers/fake_comfyui.ts";
import { spawnGov } from "../helpers/gov.ts";
import { freePort, waitFor } from "../helpers/net.ts";

/** The host interpreter itself (not a pyenv shim), for `[paths] python`. */
export const PYTHON: string = (() => {
  const out = new Deno.Command("python3", {
    args: ["-c", "import sys; print(sys.executable)"],
    stdout: "piped",
  }).outputSync();
  return new TextDecoder().decode(out.stdout).trim() || "python3";
})();

/** Per-environment setup of a test workspace. */
export interface EnvSpec {
  /** Knobs written to the environment's fake_comfyui.json. */
  fake?: Record<string, unknown>;
  /** Extra `[comfyui] args`. */
  args?: string[];
}

/** A temporary workspace. */
export interface TestWorkspace {
  root: string;
  ws: Workspace;
  meta: string;
  port: number;
  /** Folder where the fake of environment `name` records its starts. */
  stateDir(name: string): string;
  /** The starts recorded by the fake of `name` (pid, argv, cwd, env). */
  starts(name: string): Promise<FakeStart[]>;
  /** Kills every process the fakes recorded (cleanup after a failed test). */
  killAll(): Promise<void>;
  cleanup(): Promise<void>;
}

/** One line of the fake's starts.jsonl. */
export interface FakeStart {
  pid: number;
  argv: string[];
  cwd: string;
  port: number;
  env: { COMFYGIT_SUPERVISED: string | null; __COMFY_CLI_SESSION__: string | null };
  time: number;
}

/**
 * Creates a workspace with the given environments. With `fakeComfy`, each environment's
 * ComfyUI is a copy of the fake; otherwise ComfyUI/main.py is an empty placeholder (unit
 * tests inject their own spawn).
 */
export async function makeWorkspace(
  envs: Record<string, EnvSpec>,
  opts: { fakeComfy?: boolean; port?: number } = {},
): Promise<TestWorkspace> {
  const root = await Deno.makeTempDir({ prefix: "gov-sup-" });
  const port = opts.port ?? freePort();
  await Deno.mkdir(join(root, ".metadata"));
  const stateDir = (name: string) => join(root, "fake-state", name);
  for (const [name, spec] of Object.entries(envs)) {
    const dir = join(root, "environments", name);
    const comfy = join(dir, "ComfyUI");
    await Deno.mkdir(comfy, { recursive: true });
    if (opts.fakeComfy) {
      await installFakeComfyUI(comfy);
      await Deno.writeTextFile(
        join(comfy, "fake_comfyui.json"),
        JSON.stringify({ state_dir: stateDir(name), ...(spec.fake ?? {}) }),
      );
    } else {
      await Deno.writeTextFile(join(comfy, "main.py"), "# placeholder\n");
    }
    const args = ["--listen", "127.0.0.1", "--port", String(port), ...(spec.args ?? [])];
    await Deno.writeTextFile(
      join(dir, "config.toml"),
      `[paths]\npython = ${JSON.stringify(PYTHON)}\n\n[comfyui]\nargs = ${JSON.stringify(args)}\n`,
    );
  }
  const starts = async (name: string): Promise<FakeStart[]> => {
    try {
      const text = await Deno.readTextFile(join(stateDir(name), "starts.jsonl"));
      return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
    } catch {
      return [];
    }
  };
  const killAll = async () => {
    for (const name of Object.keys(envs)) {
      const pids = (await starts(name)).map((s) => s.pid);
      try {
        pids.push(Number(await Deno.readTextFile(join(stateDir(name), "child.pid"))));
      } catch { /* no grandchild */ }
      for (const pid of pids) {
        for (const target of [-pid, pid]) {
          try {
            Deno.kill(target, "SIGKILL");
          } catch { /* gone */ }
        }
      }
    }
  };
  return {
    root,
    ws: workspaceAt(root),
    meta: join(root, ".metadata"),
    port,
    stateDir,
    starts,
    killAll,
    async cleanup() {
      await stopDetached(join(root, ".metadata"));
      await killAll();
      // A process killed a moment ago may still be writing its output folder.
      for (let i = 0; i < 20; i++) {
        try {
          await Deno.remove(root, { recursive: true });
          return;
        } catch (err) {
          if (err instanceof Deno.errors.NotFound) return;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await Deno.remove(root, { recursive: true });
    },
  };
}

/**
 * Stops a supervisor named by the pid file that a test did not start itself (detached):
 * SIGTERM, then SIGKILL after 15 s.
 */
export async function stopDetached(meta: string): Promise<void> {
  let pid: number;
  try {
    pid = Number((await Deno.readTextFile(join(meta, ".orchestrator.pid"))).trim());
  } catch {
    return;
  }
  if (!pid || pid === Deno.pid || !isPidAlive(pid)) return;
  try {
    Deno.kill(pid, "SIGTERM");
  } catch { /* gone */ }
  if (!(await waitFor(() => !isPidAlive(pid), 15_000, 50))) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
}

/** Posts JSON to the fake ComfyUI. */
export async function post(port: number, path: string, body: unknown = {}): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
  await r.body?.cancel();
  return r.status;
}

/** Number of times `re` (global) matches `text`. */
export function count(text: string, re: RegExp): number {
  return (text.match(new RegExp(re.source, "g")) ?? []).length;
}

/** SIGTERMs a gov process and waits for it (SIGKILL after 20 s). */
export async function terminate(g: GovProcess): Promise<number> {
  try {
    g.proc.kill("SIGTERM");
  } catch { /* already gone */ }
  const timer = setTimeout(() => {
    try {
      g.proc.kill("SIGKILL");
    } catch { /* gone */ }
  }, 20_000);
  try {
    return await g.done;
  } finally {
    clearTimeout(timer);
  }
}

/** A `gov` process started by a test, with its output collected. */
export interface GovProcess {
  proc: Deno.ChildProcess;
  pid: number;
  /** Everything printed on stderr so far. */
  stderr(): string;
  /** Everything printed on stdout so far. */
  stdout(): string;
  /** Waits until stderr matches `re` (or the process ends); returns whether it matched. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<boolean>;
  /** Resolves with the exit code once output is drained. */
  done: Promise<number>;
  /** SIGKILLs it if still running and waits (cleanup). */
  kill(): Promise<void>;
}

/**
 * Starts `gov <args>` through scripts/gov and drains its output.
 *
 * @example
 * ```ts
 * const g = startGov(["run", "--workspace", t.root]);
 * await g.waitForLog(/ healthy /);
 * ```
 */
export function startGov(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): GovProcess {
  const proc = spawnGov(args, opts);
  let out = "";
  let err = "";
  let exited = false;
  let lastData = Date.now();
  const readers: ReadableStreamDefaultReader<Uint8Array>[] = [];
  const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
    const d = new TextDecoder();
    const reader = s.getReader();
    readers.push(reader);
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        lastData = Date.now();
        add(d.decode(value, { stream: true }));
      }
    } catch {
      // Cancelled below: a ComfyUI orphaned on purpose still holds the pipe.
    }
  };
  const drained = Promise.all([
    pump(proc.stdout, (t) => out += t),
    pump(proc.stderr, (t) => err += t),
  ]);
  const done = (async () => {
    const s = await proc.status;
    exited = true;
    // Children that inherited gov's stdout keep the pipes open; do not wait for them forever:
    // what gov wrote is in the pipe already, so stop once it has gone quiet (at most 3 s).
    let settled = false;
    drained.then(() => settled = true);
    lastData = Date.now();
    const end = Date.now() + 3000;
    while (!settled && Date.now() < end && Date.now() - lastData < 300) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const r of readers) await r.cancel().catch(() => {});
    await drained;
    return s.code;
  })();
  return {
    proc,
    pid: proc.pid,
    stderr: () => err,
    stdout: () => out,
    async waitForLog(re, timeoutMs = 30_000) {
      return await waitFor(() => re.test(err) || exited, timeoutMs, 50) && re.test(err);
    },
    done,
    async kill() {
      if (!exited) {
        try {
          proc.kill("SIGKILL");
        } catch { /* gone */ }
      }
      await done;
    },
  };
}

/** Reads a JSON file, or undefined. */
export async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return undefined;
  }
}

/** Whether a pid runs (exists and is not a zombie waiting for init to collect it). */
export const alive = processRunning;

// -- unit-test doubles ---------------------------------------------------------------------

let nextPid = 900_000;

/** A ComfyUI double: exits when told, answers probes while `listening`. */
export class FakeChild implements ChildHandle {
  readonly pid = nextPid++;
  status: Promise<{ code: number; signal: Deno.Signal | null }>;
  listening = false;
  ignoreTerm = false;
  terminations = 0;
  killed = false;
  private done = false;
  private resolve!: (s: { code: number; signal: Deno.Signal | null }) => void;
  constructor(readonly req: SpawnRequest) {
    this.status = new Promise((r) => this.resolve = r);
  }
  exited(): boolean {
    return this.done;
  }
  exit(code: number, signal: Deno.Signal | null = null): void {
    if (this.done) return;
    this.done = true;
    this.listening = false;
    this.resolve({ code, signal });
  }
  signalGroup(signal: Deno.Signal): void {
    if (signal === "SIGKILL" && !this.done) {
      this.killed = true;
      this.exit(137, "SIGKILL");
    } else if (signal === "SIGTERM" && !this.ignoreTerm) this.exit(143, "SIGTERM");
  }
  async terminate(graceMs: number) {
    if (this.done) return { status: await this.status, killed: false };
    this.terminations++;
    if (!this.ignoreTerm) {
      this.exit(143, "SIGTERM");
      return { status: await this.status, killed: false };
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.status, new Promise((r) => timer = setTimeout(r, graceMs))]);
    clearTimeout(timer);
    this.signalGroup("SIGKILL");
    return { status: await this.status, killed: true };
  }
}

/** Scripted fake world for the loop: what each start does, what probes answer. */
export class FakeWorld {
  children: FakeChild[] = [];
  synced: string[] = [];
  syncError?: (env: Environment) => Error | undefined;
  /** Called for each new child right after it was spawned. */
  onSpawn: (child: FakeChild, index: number) => void = (c) => {
    c.listening = true;
  };
  probes = 0;
  probeOverride?: (child: FakeChild, n: number) => boolean;

  deps(extra: Partial<SupervisorDeps> = {}): Partial<SupervisorDeps> {
    return {
      spawn: (req) => {
        const c = new FakeChild(req);
        this.children.push(c);
        this.onSpawn(c, this.children.length - 1);
        return c;
      },
      sync: (env) => {
        this.synced.push(env.name);
        const err = this.syncError?.(env);
        return err ? Promise.reject(err) : Promise.resolve();
      },
      probe: (t: HealthTarget): Promise<ProbeResult> => {
        this.probes++;
        const c = this.children.find((x) => x.pid === t.childPid);
        if (!c) return Promise.resolve({ ok: false, reason: "unknown child" });
        const ok = this.probeOverride ? this.probeOverride(c, this.probes) : c.listening;
        return Promise.resolve(ok ? { ok: true } : { ok: false, reason: "not listening" });
      },
      processInfo: () => Promise.resolve(undefined),
      portListenerPids: () => Promise.resolve(undefined),
      ...extra,
    };
  }

  /** Waits until `n` children were spawned and the last one is healthy-looking. */
  async waitChildren(n: number, timeoutMs = 10_000): Promise<FakeChild> {
    if (!(await waitFor(() => this.children.length >= n, timeoutMs, 5))) {
      throw new Error(`expected ${n} starts, saw ${this.children.length}`);
    }
    return this.children[n - 1];
  }
}

/** Settings that make the loop fast in unit tests. */
export const FAST = {
  pollIntervalMs: 10,
  healthTimeoutS: 5,
  graceS: 0.05,
  crashDelayS: 0.01,
  crashDelayMaxS: 0.04,
  crashLimit: 3,
  crashWindowS: 60,
};
