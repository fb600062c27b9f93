/**
 * The outside world of the supervisor loop, injected ({@linkcode SupervisorDeps}) so tests
 * drive the loop with fake children, probes and clocks; {@linkcode defaultDeps} is the real
 * thing: process groups, uv sync, HTTP probes, `ps`/`ss`, TCP port checks.
 *
 * @module
 */
import { syncEnvironment } from "../gov/mod.ts";
import { isPidAlive, spawnProcess } from "../process/run.ts";
import { type Environment, workspaceEnvironment } from "../workspace/environment.ts";
import type { Workspace } from "../workspace/root.ts";
import { isPortOpen } from "../net/port.ts";
import { type HealthProbe, httpHealthProbe } from "./health.ts";
import { portListenerPids, type ProcessInfo, processInfo } from "./procinfo.ts";

/** A started ComfyUI as the loop sees it. `SpawnedProcess` satisfies it. */
export interface ChildHandle {
  pid: number;
  /** Pid of the orphan guard watching the child's group, when one runs. */
  guardPid?: number;
  status: Promise<{ code: number; signal: Deno.Signal | null }>;
  exited(): boolean;
  /** Sends a signal to the child's whole process group (SIGKILL on a second stop request). */
  signalGroup?(signal: Deno.Signal): void;
  /** SIGTERM to the group, `graceMs`, SIGKILL; also kills stragglers of an exited leader. */
  terminate(
    graceMs: number,
  ): Promise<{ status: { code: number; signal: Deno.Signal | null }; killed: boolean }>;
}

/** What the loop asks its spawn function to start. */
export interface SpawnRequest {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Line sink for the child's output; `undefined` = inherit gov's stdout/stderr. */
  output?: (line: string, stream: "stdout" | "stderr") => void;
  /**
   * Grace period of the orphan guard that ends the child's group should gov die without
   * stopping it (`command` is ComfyUI's Python, which also runs the guard).
   */
  guardGraceMs?: number;
}

/** Everything the loop needs from the outside world. */
export interface SupervisorDeps {
  spawn: (req: SpawnRequest) => ChildHandle;
  sync: (env: Environment, onStep?: (step: string) => void) => Promise<void>;
  probe: HealthProbe;
  /** Milliseconds since the epoch. */
  now: () => number;
  pidAlive: (pid: number) => boolean;
  processInfo: (pid: number) => Promise<ProcessInfo | undefined>;
  /** Whether something accepts connections on `host:port` (checked before each start). */
  portOpen: (host: string, port: number, timeoutMs: number) => Promise<boolean>;
  /** Pids listening on `port`; `python` may read `/proc` where `ss` is missing. */
  portListenerPids: (port: number, python?: string) => Promise<number[] | undefined>;
  loadEnvironment: (ws: Workspace, name: string) => Environment;
}

/**
 * The real spawn: `spawnProcess` (own session and process group, watched by an orphan guard
 * when `req.guardGraceMs` is set), stdout and stderr "inherit"ed, or "piped" line by line
 * into `req.output`.
 *
 * @example
 * ```ts
 * const req = { command: "python3", args: ["main.py"], cwd: "/srv/ComfyUI", env: {} };
 * const child = defaultSpawn(req);
 * await child.terminate(10_000);
 * ```
 */
export function defaultSpawn(req: SpawnRequest): ChildHandle {
  const mode = req.output ? "piped" : "inherit";
  const p = spawnProcess(req.command, req.args, {
    cwd: req.cwd,
    env: req.env,
    stdout: mode,
    stderr: mode,
    orphanGuard: req.guardGraceMs === undefined
      ? undefined
      : { python: req.command, graceMs: req.guardGraceMs },
  });
  if (req.output) {
    pumpLines(p.process.stdout, (l) => req.output!(l, "stdout"));
    pumpLines(p.process.stderr, (l) => req.output!(l, "stderr"));
  }
  return p;
}

function pumpLines(stream: ReadableStream<Uint8Array> | null, sink: (line: string) => void) {
  if (!stream) return;
  (async () => {
    const dec = new TextDecoder();
    let pending = "";
    for await (const chunk of stream) {
      pending += dec.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const l of lines) sink(l);
    }
    pending += dec.decode();
    if (pending) sink(pending);
  })().catch(() => {});
}

/**
 * The real dependencies: process spawning, uv sync, HTTP health probe, wall clock, port
 * checks.
 *
 * @example
 * ```ts
 * const deps = { ...defaultDeps(), sync: () => Promise.resolve() };
 * ```
 */
export function defaultDeps(): SupervisorDeps {
  return {
    spawn: defaultSpawn,
    sync: syncEnvironment,
    probe: httpHealthProbe(),
    now: Date.now,
    pidAlive: isPidAlive,
    processInfo,
    portOpen: isPortOpen,
    portListenerPids,
    loadEnvironment: workspaceEnvironment,
  };
}
