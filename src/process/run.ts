/**
 * The one place gov starts programs. Always `Deno.Command` with an argument array (never a
 * shell string), each child in its own process group so that it and everything it starts
 * can be signalled together and no orphan survives gov.
 *
 * @module
 */
import nodeProcess from "node:process";

/** Options shared by {@linkcode runProcess} and {@linkcode spawnProcess}. */
export interface ProcessOptions {
  /** Working folder of the child. */
  cwd?: string;
  /** Extra environment variables, merged over gov's own environment. */
  env?: Record<string, string>;
  /** Variables to remove from the inherited environment. */
  unsetEnv?: string[];
  /** Text written to the child's stdin, which is then closed. */
  stdin?: string;
}

/** Outcome of a finished process. */
export interface ProcessResult {
  /** Exit code; 128+n when killed by signal n (Deno's convention). */
  code: number;
  /** Signal that ended it, if any. */
  signal: Deno.Signal | null;
  /** Captured stdout. */
  stdout: string;
  /** Captured stderr. */
  stderr: string;
  /** Wall-clock time in milliseconds. */
  durationMs: number;
  /** Whether gov killed it because the timeout ran out. */
  timedOut: boolean;
}

/** Raised when the program to run does not exist or cannot be executed. */
export class SpawnError extends Error {
  /** The program gov tried to start. */
  command: string;
  constructor(command: string, cause: unknown) {
    super(`cannot start ${command}: ${(cause as Error)?.message ?? cause}`, { cause });
    this.name = "SpawnError";
    this.command = command;
  }
}

function buildEnv(opts: ProcessOptions): Record<string, string> | undefined {
  if (!opts.env && !opts.unsetEnv) return undefined;
  const env = { ...Deno.env.toObject(), ...(opts.env ?? {}) };
  for (const k of opts.unsetEnv ?? []) delete env[k];
  return env;
}

/**
 * Runs a program to completion and captures its output. On timeout the whole process group
 * gets SIGTERM, then SIGKILL after `killGraceMs`.
 *
 * @example
 * ```ts
 * import { runProcess } from "@/process/run.ts";
 * declare const envDir: string;
 *
 * const r = await runProcess("uv", ["lock"], { cwd: envDir, timeoutMs: 600_000 });
 * if (r.code !== 0) console.error(r.stderr);
 * ```
 */
export async function runProcess(
  command: string,
  args: string[],
  opts: ProcessOptions & {
    timeoutMs?: number;
    killGraceMs?: number;
    onStdoutLine?: (line: string) => void;
    onStderrLine?: (line: string) => void;
  } = {},
): Promise<ProcessResult> {
  const child = spawnProcess(command, args, { ...opts, stdout: "piped", stderr: "piped" });
  const started = performance.now();
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (opts.timeoutMs !== undefined) {
    timer = setTimeout(() => {
      timedOut = true;
      child.terminate(opts.killGraceMs ?? 5000).catch(() => {});
    }, opts.timeoutMs);
  }
  try {
    const [stdout, stderr, status] = await Promise.all([
      collect(child.process.stdout, opts.onStdoutLine),
      collect(child.process.stderr, opts.onStderrLine),
      child.status,
    ]);
    return {
      code: status.code,
      signal: status.signal,
      stdout,
      stderr,
      durationMs: performance.now() - started,
      timedOut,
    };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

async function collect(
  stream: ReadableStream<Uint8Array> | null,
  onLine?: (line: string) => void,
): Promise<string> {
  if (!stream) return "";
  let text = "";
  let pending = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    const s = decoder.decode(chunk, { stream: true });
    text += s;
    if (onLine) {
      pending += s;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const l of lines) onLine(l);
    }
  }
  const tail = decoder.decode();
  text += tail;
  if (onLine && (pending + tail) !== "") onLine(pending + tail);
  return text;
}

/** A started child process leading its own process group. */
export interface SpawnedProcess {
  /** Pid of the child (also its process-group id). */
  pid: number;
  /** The underlying Deno child, for its streams. */
  process: Deno.ChildProcess;
  /** Resolves when the child exits. */
  status: Promise<Deno.CommandStatus>;
  /** Pid of the orphan guard watching the group, when one runs. */
  guardPid?: number;
  /** Whether the child has exited. */
  exited(): boolean;
  /** Sends a signal to the child's whole process group. */
  signalGroup(signal: Deno.Signal): void;
  /**
   * SIGTERM to the group, wait up to `graceMs`, then SIGKILL to the group. Resolves with
   * the exit status and whether SIGKILL was needed. Also ends the orphan guard, if any:
   * call it even after the child exited on its own.
   */
  terminate(graceMs: number): Promise<{ status: Deno.CommandStatus; killed: boolean }>;
}

/**
 * The orphan guard, run by a Python interpreter: it blocks reading its stdin, a pipe whose
 * only writer is gov. The kernel closes that pipe however gov ends, SIGKILL included, so
 * EOF means "gov is gone": if the guarded process group still exists, it gets SIGTERM, the
 * grace period, then SIGKILL. When gov stopped the group itself first, the guard finds no
 * group and just exits.
 */
const ORPHAN_GUARD_PY = `# gov orphan guard (ends the group below when gov is gone)
import os, signal, sys, time
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
try:
    while os.read(0, 65536):
        pass
except OSError:
    pass
def alive():
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
if alive():
    try:
        os.killpg(pgid, signal.SIGTERM)
    except OSError:
        pass
    end = time.monotonic() + grace
    while alive() and time.monotonic() < end:
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
`;

/** Asks {@linkcode spawnProcess} to keep the child's group from outliving gov. */
export interface OrphanGuardOptions {
  /** A Python 3 interpreter to run the guard with (ComfyUI's own is a good choice). */
  python: string;
  /** SIGTERM to SIGKILL delay the guard grants the group once gov is gone. */
  graceMs: number;
}

/**
 * Starts the orphan guard of process group `pgid`; `undefined` when the interpreter cannot
 * be started (the group then runs unguarded: a later supervisor still reaps it).
 */
function startOrphanGuard(pgid: number, guard: OrphanGuardOptions): Deno.ChildProcess | undefined {
  try {
    return new Deno.Command(guard.python, {
      args: ["-I", "-S", "-c", ORPHAN_GUARD_PY, String(pgid), String(guard.graceMs / 1000)],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
      // Own session: a terminal's SIGINT/SIGHUP to gov's group must not end the guard too.
      detached: true,
    }).spawn();
  } catch {
    return undefined;
  }
}

/**
 * Starts a program in a new session and process group (setsid) and returns at once.
 *
 * With `orphanGuard`, a small watcher process ends the child's whole group should gov die
 * without stopping it (SIGKILL, OOM killer): setsid keeps the group out of reach of the
 * signals that hit gov, so without the guard it would keep ComfyUI's port and VRAM.
 *
 * @example
 * ```ts
 * import { spawnProcess } from "@/process/run.ts";
 * declare const comfyDir: string;
 *
 * const p = spawnProcess("python3", ["main.py", "--port", "8188"], { cwd: comfyDir });
 * const { status } = await p.terminate(10_000);
 * ```
 */
export function spawnProcess(
  command: string,
  args: string[],
  opts: ProcessOptions & {
    stdout?: "inherit" | "piped" | "null";
    stderr?: "inherit" | "piped" | "null";
    orphanGuard?: OrphanGuardOptions;
  } = {},
): SpawnedProcess {
  let proc: Deno.ChildProcess;
  try {
    proc = new Deno.Command(command, {
      args,
      cwd: opts.cwd,
      env: buildEnv(opts),
      stdin: opts.stdin !== undefined ? "piped" : "null",
      stdout: opts.stdout ?? "inherit",
      stderr: opts.stderr ?? "inherit",
      // detached = setsid(): the child leads a new process group we can signal as a whole.
      detached: true,
    }).spawn();
  } catch (err) {
    throw new SpawnError(command, err);
  }
  if (opts.stdin !== undefined) {
    const w = proc.stdin.getWriter();
    w.write(new TextEncoder().encode(opts.stdin)).then(() => w.close()).catch(() => {});
  }
  let done = false;
  const status = proc.status.then((s) => {
    done = true;
    return s;
  });
  const pid = proc.pid;
  const guard = opts.orphanGuard ? startOrphanGuard(pid, opts.orphanGuard) : undefined;
  let guardReleased: Promise<void> | undefined;
  // Only once the group is gone: EOF tells the guard to end whatever is left of it.
  const releaseGuard = () =>
    guardReleased ??= guard
      ? guard.stdin.close().catch(() => {}).then(() => guard.status).then(() => {}, () => {})
      : Promise.resolve();
  const signalGroup = (signal: Deno.Signal) => {
    try {
      Deno.kill(-pid, signal);
    } catch {
      // The group is already gone.
    }
  };
  return {
    pid,
    process: proc,
    guardPid: guard?.pid,
    status,
    exited: () => done,
    signalGroup,
    async terminate(graceMs: number) {
      if (done) {
        // The leader is gone but stragglers in its group may not be.
        signalGroup("SIGKILL");
        await releaseGuard();
        return { status: await status, killed: false };
      }
      signalGroup("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((r) =>
        timer = setTimeout(() => r("timeout"), graceMs)
      );
      const first = await Promise.race([status, timeout]);
      clearTimeout(timer);
      let killed = false;
      if (first === "timeout") {
        killed = true;
        signalGroup("SIGKILL");
      } else {
        // Children of the leader that ignored SIGTERM must not outlive it.
        signalGroup("SIGKILL");
      }
      const final = await status;
      await releaseGuard();
      return { status: final, killed };
    },
  };
}

/**
 * Tells whether a process with this pid exists. Asks the kernel with `kill(pid, 0)`:
 * Deno's permission model refuses reads under /proc short of --allow-all. EPERM still means
 * the process exists (it belongs to another user).
 *
 * @example
 * ```ts
 * import { isPidAlive } from "@/process/run.ts";
 *
 * if (!isPidAlive(4242)) console.log("stale pid file");
 * ```
 */
export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    nodeProcess.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}

/**
 * Sends a signal to a pid, returning false when it no longer exists.
 *
 * @example
 * ```ts
 * import { signalPid } from "@/process/run.ts";
 *
 * signalPid(4242, "SIGTERM");
 * ```
 */
export function signalPid(pid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}
