/**
 * `.cmd`: one command for the running supervisor (`restart`, `shutdown`, `abort_switch`).
 *
 * Written as `.cmd.tmp.<pid>` then renamed, so the supervisor never reads half a command.
 * The supervisor takes it by renaming it away first, so a command written while the last
 * one is being read is never lost. When two commands race, the last rename wins.
 *
 * @module
 */
import { join } from "node:path";
import { readTextIfExists, removeIfExists, syncDir } from "../fs/atomic.ts";
import { metadataPaths, nowSeconds } from "./files.ts";

/** Commands the supervisor understands. */
export const SUPERVISOR_COMMANDS = ["restart", "shutdown", "abort_switch"] as const;

/** A supervisor command name. */
export type SupervisorCommandName = typeof SUPERVISOR_COMMANDS[number];

/** Content of `.cmd`. */
export interface SupervisorCommand {
  command: SupervisorCommandName;
  /** Float seconds when it was written. */
  requested_at?: number;
  /** Pid of the writer. */
  requested_by?: number;
  [extra: string]: unknown;
}

/**
 * Writes a command for the supervisor atomically (`.cmd.tmp.<pid>` then rename).
 *
 * @example
 * ```ts
 * import { writeCommand } from "@/ipc/cmd.ts";
 *
 * await writeCommand("/ws/.metadata", "restart");
 * ```
 */
export async function writeCommand(
  metadataDir: string,
  command: SupervisorCommandName,
  extra: Record<string, unknown> = {},
): Promise<SupervisorCommand> {
  const paths = metadataPaths(metadataDir);
  await Deno.mkdir(metadataDir, { recursive: true });
  const body: SupervisorCommand = {
    ...extra,
    command,
    requested_at: nowSeconds(),
    requested_by: Deno.pid,
  };
  const tmp = `${paths.cmd}.tmp.${Deno.pid}`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    await file.write(new TextEncoder().encode(JSON.stringify(body) + "\n"));
    await file.sync();
  } finally {
    file.close();
  }
  try {
    await Deno.rename(tmp, paths.cmd);
  } catch (err) {
    await removeIfExists(tmp);
    throw err;
  }
  await syncDir(metadataDir);
  return body;
}

let takeCounter = 0;

/**
 * Takes the pending command, if any: renames `.cmd` away, reads and deletes it. An unknown
 * command or bad JSON is consumed and reported as `{invalid: text}` so the caller can log
 * it instead of seeing it forever.
 *
 * @example
 * ```ts
 * import { takeCommand } from "@/ipc/cmd.ts";
 *
 * const c = await takeCommand("/ws/.metadata");
 * if (c && "command" in c && c.command === "shutdown") console.log("stopping");
 * ```
 */
export async function takeCommand(
  metadataDir: string,
): Promise<SupervisorCommand | { invalid: string } | undefined> {
  const paths = metadataPaths(metadataDir);
  const taken = join(metadataDir, `.cmd.taken.${Deno.pid}.${takeCounter++}`);
  try {
    await Deno.rename(paths.cmd, taken);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  const text = (await readTextIfExists(taken)) ?? "";
  await removeIfExists(taken);
  try {
    const v = JSON.parse(text);
    if (
      typeof v === "object" && v !== null &&
      (SUPERVISOR_COMMANDS as readonly string[]).includes(v.command)
    ) {
      return v as SupervisorCommand;
    }
  } catch {
    // Falls through to the invalid report.
  }
  return { invalid: text.trim().slice(0, 200) };
}

/**
 * Deletes a pending command without acting on it (at supervisor start, a leftover `.cmd`
 * from a previous run must not restart the new one). With `olderThanMs` (epoch ms, e.g. the
 * new pid file's mtime), only a command written before that instant is deleted: one sent
 * by `gov stop` right after the new supervisor claimed the workspace is kept. Returns
 * whether a command was deleted.
 *
 * @example
 * ```ts
 * import { clearCommand } from "@/ipc/cmd.ts";
 * declare const pidFile: string;
 *
 * await clearCommand("/ws/.metadata", { olderThanMs: (await Deno.stat(pidFile)).mtime!.getTime() });
 * ```
 */
export async function clearCommand(
  metadataDir: string,
  opts: { olderThanMs?: number } = {},
): Promise<boolean> {
  const path = metadataPaths(metadataDir).cmd;
  if (opts.olderThanMs !== undefined) {
    let mtime: number | undefined;
    try {
      mtime = (await Deno.stat(path)).mtime?.getTime();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
    if (mtime !== undefined && mtime >= opts.olderThanMs) return false;
  }
  return await removeIfExists(path);
}
