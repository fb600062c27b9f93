/**
 * What gov learns about other processes without reading `/proc` itself (Deno's permission
 * model closes it to anything short of `--allow-all`): `ps` for a pid's group, age and
 * command line, `ss` (else a Python reading `/proc`) for the process listening on a port.
 * Each answer is best effort: `undefined` when the tool is missing or says nothing.
 *
 * @module
 */
import { isPidAlive, runProcess } from "../process/run.ts";

/** What `ps` reports about one process. */
export interface ProcessInfo {
  pid: number;
  /** Process-group id (a child gov started leads its own group: pgid == pid). */
  pgid: number;
  /** Seconds since it started. */
  elapsedS: number;
  /** `ps` state letters (`S`, `R`, `Z` for a zombie, ...). */
  state: string;
  /** Its command line. */
  args: string;
}

/**
 * Asks `ps` about a pid; `undefined` when it does not exist or `ps` is unavailable.
 *
 * @example
 * ```ts
 * import { processInfo } from "@/supervisor/procinfo.ts";
 *
 * const info = await processInfo(4242);
 * if (info?.args.includes("main.py")) console.log("a ComfyUI");
 * ```
 */
export async function processInfo(pid: number): Promise<ProcessInfo | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const r = await runProcess("ps", ["-o", "pid=,pgid=,etimes=,stat=,args=", "-p", String(pid)], {
      timeoutMs: 5000,
    });
    if (r.code !== 0) return undefined;
    const m = r.stdout.trim().match(/^(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/s);
    if (!m) return undefined;
    return {
      pid: Number(m[1]),
      pgid: Number(m[2]),
      elapsedS: Number(m[3]),
      state: m[4],
      args: m[5],
    };
  } catch {
    return undefined;
  }
}

/**
 * Whether a process exists and is not a zombie (a zombie has exited; only its parent has
 * not collected it yet). Falls back to kill(pid, 0) when `ps` is unavailable.
 *
 * @example
 * ```ts
 * import { processRunning } from "@/supervisor/procinfo.ts";
 *
 * if (!(await processRunning(4242))) console.log("gone");
 * ```
 */
export async function processRunning(pid: number): Promise<boolean> {
  if (!isPidAlive(pid)) return false;
  const info = await processInfo(pid);
  return info ? !info.state.startsWith("Z") : true;
}

/**
 * Pids of the processes listening on TCP `port`: `ss -ltnp` first, else (no `ss`, or it
 * names no owner) `/proc/net/tcp*` and `/proc/<pid>/fd` read by `python`, since Deno opens
 * `/proc` only to `--allow-all`. `undefined` when neither finds an owner (another user's
 * socket, without root).
 *
 * @example
 * ```ts
 * import { portListenerPids } from "@/supervisor/procinfo.ts";
 *
 * const pids = await portListenerPids(8188); // [4242]
 * ```
 */
export async function portListenerPids(
  port: number,
  python?: string,
): Promise<number[] | undefined> {
  return await ssListenerPids(port) ?? (python ? await procListenerPids(port, python) : undefined);
}

async function ssListenerPids(port: number): Promise<number[] | undefined> {
  try {
    const r = await runProcess("ss", ["-Hltnp", `sport = :${port}`], { timeoutMs: 5000 });
    if (r.code !== 0) return undefined;
    return pidList(r.stdout.matchAll(/pid=(\d+)/g));
  } catch {
    return undefined;
  }
}

// Listening sockets (state 0A) of the port, then the processes holding one of their inodes;
// processes of other users are skipped where their fd folder is closed.
const PROC_LISTENERS = `
import os, sys
port = int(sys.argv[1])
inodes = set()
for name in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        with open(name) as f:
            next(f)
            for line in f:
                p = line.split()
                if p[3] == "0A" and int(p[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add("socket:[%s]" % p[9])
    except (OSError, StopIteration, ValueError, IndexError):
        pass
for pid in os.listdir("/proc") if inodes else []:
    if not pid.isdigit():
        continue
    try:
        fds = os.listdir("/proc/%s/fd" % pid)
    except OSError:
        continue
    for fd in fds:
        try:
            if os.readlink("/proc/%s/fd/%s" % (pid, fd)) in inodes:
                print(pid)
                break
        except OSError:
            pass
`;

/** The `/proc` reading of {@linkcode portListenerPids}, run by `python`. */
export async function procListenerPids(
  port: number,
  python: string,
): Promise<number[] | undefined> {
  try {
    const r = await runProcess(python, ["-c", PROC_LISTENERS, String(port)], { timeoutMs: 5000 });
    if (r.code !== 0) return undefined;
    return pidList(r.stdout.matchAll(/^(\d+)$/gm));
  } catch {
    return undefined;
  }
}

function pidList(matches: Iterable<RegExpMatchArray>): number[] | undefined {
  const pids = [...new Set([...matches].map((m) => Number(m[1])))];
  return pids.length ? pids : undefined;
}

/**
 * Whether the listener on `port` belongs to the process group led by `groupLeader`: true,
 * false, or `undefined` when it cannot be told.
 *
 * @example
 * ```ts
 * import { portOwnedByGroup } from "@/supervisor/procinfo.ts";
 * import { type SpawnedProcess } from "@/process/run.ts";
 * declare const child: SpawnedProcess;
 *
 * if (await portOwnedByGroup(8188, child.pid) === false) console.log("a stale process answers");
 * ```
 */
export async function portOwnedByGroup(
  port: number,
  groupLeader: number,
): Promise<boolean | undefined> {
  const pids = await portListenerPids(port);
  if (!pids) return undefined;
  for (const pid of pids) {
    if (pid === groupLeader) return true;
    const info = await processInfo(pid);
    if (info?.pgid === groupLeader) return true;
  }
  return false;
}
