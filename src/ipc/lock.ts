/**
 * `.switch.lock`: at most one environment switch at a time.
 *
 * The file holds `{"pid", "created"}`; its mtime is the holder's heartbeat. It is stale when
 * its owner is dead (ComfyGit's panel leaves its lock behind when it `os._exit(43)`s) or when
 * nobody refreshed it for `timeout` seconds (300 by default, ComfyGit's figure). Creation is
 * O_EXCL; every read-check-replace runs under a flock guard, so two processes taking over
 * the same stale lock cannot both win.
 *
 * @module
 */
import { readTextIfExists, removeIfExists } from "../fs/atomic.ts";
import { isPidAlive } from "../process/run.ts";
import { metadataPaths, nowSeconds, withGuard } from "./files.ts";

/** Default age (seconds) after which an unrefreshed lock is stale. */
export const DEFAULT_LOCK_TIMEOUT_S = 300;

/** What a lock file says about its holder. */
export interface SwitchLockInfo {
  /** Holder pid; `undefined` for a lock written without one (older ComfyGit). */
  pid?: number;
  /** Creation time, float seconds. */
  created?: number;
  /** Seconds since the holder last refreshed it (file mtime). */
  ageS: number;
  /** Whether the holder is dead or the lock timed out. */
  stale: boolean;
  /** Other keys the holder stored (e.g. `target_env`). */
  extra: Record<string, unknown>;
}

/** Options shared by the lock functions. */
export interface LockOptions {
  /** Seconds without refresh after which the lock is stale. */
  timeoutS?: number;
  /** Liveness check, injectable for tests. */
  isAlive?: (pid: number) => boolean;
}

/**
 * Reads the lock and judges it; `undefined` when there is no lock.
 *
 * @example
 * ```ts
 * import { readSwitchLock } from "@/ipc/lock.ts";
 *
 * const lock = await readSwitchLock("/ws/.metadata");
 * if (lock && !lock.stale) console.log(`held by ${lock.pid}`);
 * ```
 */
export async function readSwitchLock(
  metadataDir: string,
  opts: LockOptions = {},
): Promise<SwitchLockInfo | undefined> {
  const path = metadataPaths(metadataDir).lock;
  let stat: Deno.FileInfo;
  let text: string | undefined;
  try {
    stat = await Deno.stat(path);
    text = await readTextIfExists(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  if (text === undefined) return undefined;
  let pid: number | undefined;
  let created: number | undefined;
  let extra: Record<string, unknown> = {};
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    pid = Number(t);
  } else if (t !== "") {
    try {
      const v = JSON.parse(t);
      if (typeof v === "object" && v !== null) {
        const { pid: p, created: c, ...rest } = v as Record<string, unknown>;
        if (typeof p === "number" && Number.isInteger(p) && p > 0) pid = p;
        if (typeof c === "number") created = c;
        extra = rest;
      }
    } catch {
      // An unreadable lock is judged by its age alone.
    }
  }
  const mtime = (stat.mtime?.getTime() ?? Date.now()) / 1000;
  const ageS = Math.max(0, nowSeconds() - mtime);
  const isAlive = opts.isAlive ?? isPidAlive;
  const timeout = opts.timeoutS ?? DEFAULT_LOCK_TIMEOUT_S;
  const stale = (pid !== undefined && !isAlive(pid)) || ageS > timeout;
  return { pid, created, ageS, stale, extra };
}

async function createLock(path: string, pid: number, extra: Record<string, unknown>) {
  const file = await Deno.open(path, { write: true, createNew: true, mode: 0o644 });
  try {
    const body = JSON.stringify({ ...extra, pid, created: nowSeconds() }) + "\n";
    await file.write(new TextEncoder().encode(body));
    await file.sync();
  } finally {
    file.close();
  }
}

/**
 * Takes the switch lock for `pid` (default: this process). Returns false when a live,
 * fresh lock is held (also by this same pid: the lock is not re-entrant); takes over a
 * stale one.
 *
 * @example
 * ```ts
 * import { acquireSwitchLock, releaseSwitchLock } from "@/ipc/lock.ts";
 *
 * if (!await acquireSwitchLock("/ws/.metadata")) throw new Error("switch in progress");
 * try {
 *   // ... switch ...
 * } finally {
 *   await releaseSwitchLock("/ws/.metadata");
 * }
 * ```
 */
export async function acquireSwitchLock(
  metadataDir: string,
  opts: LockOptions & { pid?: number; extra?: Record<string, unknown> } = {},
): Promise<boolean> {
  const pid = opts.pid ?? Deno.pid;
  const paths = metadataPaths(metadataDir);
  return await withGuard(paths.guard, async () => {
    try {
      await createLock(paths.lock, pid, opts.extra ?? {});
      return true;
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
    const info = await readSwitchLock(metadataDir, opts);
    // Not re-entrant: two callers inside one process (same pid) must not both win.
    if (info && !info.stale) return false;
    await removeIfExists(paths.lock);
    try {
      await createLock(paths.lock, pid, opts.extra ?? {});
      return true;
    } catch (err) {
      // A writer that does not use the guard (ComfyGit's panel) got there first.
      if (err instanceof Deno.errors.AlreadyExists) return false;
      throw err;
    }
  });
}

async function touch(path: string): Promise<void> {
  const now = new Date();
  try {
    await Deno.utime(path, now, now);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/**
 * Refreshes the heartbeat of a lock held by `pid`, so a long switch (a slow sync, a slow
 * first start) does not look stale. Returns false when `pid` no longer holds it.
 *
 * @example
 * ```ts
 * import { refreshSwitchLock } from "@/ipc/lock.ts";
 *
 * await refreshSwitchLock("/ws/.metadata");
 * ```
 */
export async function refreshSwitchLock(metadataDir: string, pid = Deno.pid): Promise<boolean> {
  const info = await readSwitchLock(metadataDir, { isAlive: () => true });
  if (!info || info.pid !== pid) return false;
  await touch(metadataPaths(metadataDir).lock);
  return true;
}

/**
 * Releases the switch lock. By default only the holder's own lock is removed (a lock of
 * another pid is left alone); `force` removes whatever is there.
 *
 * @example
 * ```ts
 * import { releaseSwitchLock } from "@/ipc/lock.ts";
 *
 * await releaseSwitchLock("/ws/.metadata");
 * ```
 */
export async function releaseSwitchLock(
  metadataDir: string,
  opts: { pid?: number; force?: boolean } = {},
): Promise<boolean> {
  const pid = opts.pid ?? Deno.pid;
  const paths = metadataPaths(metadataDir);
  return await withGuard(paths.guard, async () => {
    if (!opts.force) {
      const info = await readSwitchLock(metadataDir, { isAlive: () => true });
      if (!info) return false;
      if (info.pid !== undefined && info.pid !== pid) return false;
    }
    return await removeIfExists(paths.lock);
  });
}

/**
 * Whether a switch lock is held by a live process and fresh.
 *
 * @example
 * ```ts
 * import { isSwitchLocked } from "@/ipc/lock.ts";
 *
 * if (await isSwitchLocked("/ws/.metadata")) console.log("switch in progress");
 * ```
 */
export async function isSwitchLocked(
  metadataDir: string,
  opts: LockOptions = {},
): Promise<boolean> {
  const info = await readSwitchLock(metadataDir, opts);
  return info !== undefined && !info.stale;
}
