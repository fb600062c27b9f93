/**
 * `.orchestrator.pid`: the plain-text pid of the supervisor that owns a workspace.
 *
 * @module
 */
import { GovError } from "../errors.ts";
import { readTextIfExists, removeIfExists, writeFileAtomic } from "../fs/atomic.ts";
import { isPidAlive } from "../process/run.ts";
import { metadataPaths, withGuard } from "./files.ts";

/** Another supervisor already runs this workspace. Exit 1. */
export class SupervisorRunningError extends GovError {
  /** Pid of the running supervisor. */
  pid: number;
  constructor(pidFile: string, pid: number) {
    super(`a gov supervisor (pid ${pid}) already runs this workspace (${pidFile})`, {
      hint: "stop it with `gov stop`, or use `gov restart` / `gov switch` to control it",
    });
    this.name = "SupervisorRunningError";
    this.pid = pid;
  }
}

/**
 * Writes `pid` (default: this process) to `.orchestrator.pid` atomically.
 *
 * @example
 * ```ts
 * import { writeOrchestratorPid } from "@/ipc/pid.ts";
 *
 * await writeOrchestratorPid("/ws/.metadata");
 * ```
 */
export async function writeOrchestratorPid(metadataDir: string, pid = Deno.pid): Promise<void> {
  await writeFileAtomic(metadataPaths(metadataDir).pid, `${pid}\n`);
}

/**
 * Reads the pid in `.orchestrator.pid`; `undefined` when missing or not a positive integer.
 *
 * @example
 * ```ts
 * import { readOrchestratorPid } from "@/ipc/pid.ts";
 *
 * const pid = await readOrchestratorPid("/ws/.metadata");
 * ```
 */
export async function readOrchestratorPid(metadataDir: string): Promise<number | undefined> {
  const text = await readTextIfExists(metadataPaths(metadataDir).pid);
  if (text === undefined) return undefined;
  const t = text.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return n > 0 ? n : undefined;
}

/**
 * Removes `.orchestrator.pid`. With `onlyIf`, removes it only when it still holds that pid,
 * so a supervisor never deletes a successor's file.
 *
 * @example
 * ```ts
 * import { cleanupOrchestratorPid } from "@/ipc/pid.ts";
 *
 * await cleanupOrchestratorPid("/ws/.metadata", { onlyIf: Deno.pid });
 * ```
 */
export async function cleanupOrchestratorPid(
  metadataDir: string,
  opts: { onlyIf?: number } = {},
): Promise<void> {
  if (opts.onlyIf !== undefined) {
    const current = await readOrchestratorPid(metadataDir);
    if (current !== undefined && current !== opts.onlyIf) return;
  }
  await removeIfExists(metadataPaths(metadataDir).pid);
}

/**
 * Returns the pid of the live supervisor of this `.metadata/`, or `undefined` when the pid
 * file is missing or names a dead process.
 *
 * @example
 * ```ts
 * import { liveOrchestratorPid } from "@/ipc/pid.ts";
 *
 * const pid = await liveOrchestratorPid("/ws/.metadata");
 * if (pid) console.log(`supervised by ${pid}`);
 * ```
 */
export async function liveOrchestratorPid(
  metadataDir: string,
  isAlive: (pid: number) => boolean = isPidAlive,
): Promise<number | undefined> {
  const pid = await readOrchestratorPid(metadataDir);
  return pid !== undefined && isAlive(pid) ? pid : undefined;
}

/**
 * Makes `pid` the workspace's supervisor: refuses with {@linkcode SupervisorRunningError}
 * when the file names another live process, takes over a dead one. Serialised with other
 * gov processes through the metadata guard, so two `gov run` cannot both win.
 *
 * @example
 * ```ts
 * import { claimOrchestratorPid } from "@/ipc/pid.ts";
 *
 * const { previous } = await claimOrchestratorPid("/ws/.metadata");
 * if (previous) console.log(`took over from dead supervisor ${previous}`);
 * ```
 */
export async function claimOrchestratorPid(
  metadataDir: string,
  opts: { pid?: number; isAlive?: (pid: number) => boolean } = {},
): Promise<{ previous?: number }> {
  const pid = opts.pid ?? Deno.pid;
  const isAlive = opts.isAlive ?? isPidAlive;
  const paths = metadataPaths(metadataDir);
  return await withGuard(paths.guard, async () => {
    const current = await readOrchestratorPid(metadataDir);
    if (current !== undefined && current !== pid && isAlive(current)) {
      throw new SupervisorRunningError(paths.pid, current);
    }
    await writeOrchestratorPid(metadataDir, pid);
    return current !== undefined && current !== pid ? { previous: current } : {};
  });
}
