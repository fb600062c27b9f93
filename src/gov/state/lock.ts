/**
 * The environment lock (`state/.lock`): one destructive gov command per environment at a
 * time. The file holds the owner's pid and process start time, so a lock left by a killed
 * gov is recognised as stale (dead pid, or a pid reused by another process) and taken over
 * safely, instead of blocking users for minutes the way ComfyGit's age-based switch lock did.
 *
 * @module
 */
import { LockedError } from "../../errors.ts";
import { removeIfExists, syncDir } from "../../fs/atomic.ts";
import { storageErrorOf } from "../../fs/errors.ts";
import { isPidAlive, runProcess } from "../../process/run.ts";
import { dirname } from "node:path";

/** Who holds a lock. */
export interface LockOwner {
  pid: number;
  /** When the owner process started (ms since the epoch), to tell a reused pid apart. */
  start_ms: number | null;
  /** The gov command that holds it. */
  command: string;
  acquired_at: string;
}

/**
 * When process `pid` started, in ms since the epoch (second precision for other
 * processes, from `ps -o etimes=`: Deno's permission model forbids reading /proc/<pid>
 * without --allow-all), or null when unknown.
 *
 * @example
 * ```ts
 * import { processStartMs } from "@/gov/state/lock.ts";
 *
 * await processStartMs(Deno.pid);
 * ```
 */
export async function processStartMs(pid: number): Promise<number | null> {
  if (pid === Deno.pid) return Math.round(performance.timeOrigin);
  try {
    const r = await runProcess("ps", ["-o", "etimes=", "-p", String(pid)], { timeoutMs: 5000 });
    const secs = Number(r.stdout.trim());
    if (r.code !== 0 || r.stdout.trim() === "" || !Number.isFinite(secs)) return null;
    return Date.now() - secs * 1000;
  } catch {
    return null;
  }
}

/**
 * Whether the owner recorded in a lock file is still the same running process: its pid
 * exists and started when the owner did (a pid reused by another process did not).
 *
 * @example
 * ```ts
 * import { ownerAlive } from "@/gov/state/lock.ts";
 * import { type LockOwner } from "@/gov/state/lock.ts";
 * declare const owner: LockOwner;
 *
 * if (!(await ownerAlive(owner))) console.log("stale lock");
 * ```
 */
export async function ownerAlive(owner: LockOwner): Promise<boolean> {
  if (!isPidAlive(owner.pid)) return false;
  if (owner.start_ms === null) return true;
  const now = await processStartMs(owner.pid);
  // etimes is whole seconds; allow for that and a little clock jitter.
  return now === null || Math.abs(now - owner.start_ms) < 3000;
}

/**
 * Reads the owner of a lock file; undefined when there is no lock, null when the file is
 * unreadable (being written, or garbage).
 *
 * @example
 * ```ts
 * import { readLockOwner } from "@/gov/state/lock.ts";
 * import { type Environment } from "@/workspace/environment.ts";
 * declare const env: Environment;
 *
 * const owner = await readLockOwner(`${env.dir}/state/.lock`);
 * ```
 */
export async function readLockOwner(path: string): Promise<LockOwner | null | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  try {
    const o = JSON.parse(text);
    if (typeof o?.pid !== "number") return null;
    return {
      pid: o.pid,
      start_ms: typeof o.start_ms === "number" ? o.start_ms : null,
      command: typeof o.command === "string" ? o.command : "",
      acquired_at: typeof o.acquired_at === "string" ? o.acquired_at : "",
    };
  } catch {
    return null;
  }
}

/** A held environment lock. */
export interface EnvLock {
  /** The lock file. */
  path: string;
  /** What this process wrote into it. */
  owner: LockOwner;
  /** Whether a stale lock was taken over to get it. */
  tookOverFrom?: LockOwner;
  /** Releases it (only if the file is still ours). */
  release(): Promise<void>;
}

const held = new Map<string, { lock: EnvLock; count: number }>();

async function createExclusive(path: string, content: string): Promise<boolean> {
  await Deno.mkdir(dirname(path), { recursive: true });
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { write: true, createNew: true, mode: 0o644 });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return false;
    throw err;
  }
  try {
    const bytes = new TextEncoder().encode(content);
    let off = 0;
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
    await f.sync();
  } catch (err) {
    // A disk that filled up must not leave an empty lock behind for others to wait on.
    f.close();
    await removeIfExists(path).catch(() => {});
    throw storageErrorOf(err, path) ?? err;
  }
  f.close();
  await syncDir(dirname(path));
  return true;
}

async function mtimeAgeMs(path: string): Promise<number> {
  try {
    const st = await Deno.stat(path);
    return Date.now() - (st.mtime?.getTime() ?? Date.now());
  } catch {
    return 0;
  }
}

/**
 * Removes a stale lock file, guarded so that two gov processes that both found it stale
 * cannot remove each other's fresh lock: only the one that creates `<lock>.takeover` first
 * removes it, and only if the file still has the stale content it looked at.
 */
async function takeOverStale(path: string, staleText: string): Promise<boolean> {
  const guard = `${path}.takeover`;
  const mine = JSON.stringify({ pid: Deno.pid, start_ms: await processStartMs(Deno.pid) });
  if (!(await createExclusive(guard, mine))) {
    const g = await readLockOwner(guard);
    if (g === undefined) return false;
    if (g === null ? (await mtimeAgeMs(guard)) > 5000 : !(await ownerAlive(g))) {
      await removeIfExists(guard);
    }
    return false;
  }
  try {
    let now: string | undefined;
    try {
      now = await Deno.readTextFile(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    if (now === staleText) await removeIfExists(path);
    return true;
  } finally {
    await removeIfExists(guard);
  }
}

/**
 * Acquires the lock at `path`, waiting up to `waitMs` for a live holder; a dead holder's
 * lock is taken over at once. Throws {@linkcode LockedError} naming the holder after the
 * wait. Re-entrant within one process (the same path can be acquired again and must be
 * released as often).
 *
 * @example
 * ```ts
 * import { acquireEnvLock } from "@/gov/state/lock.ts";
 *
 * const lock = await acquireEnvLock("/srv/comfy/environments/prod/state/.lock", {
 *   command: "tx promote",
 * });
 * try {
 *   // change the environment
 * } finally {
 *   await lock.release();
 * }
 * ```
 */
export async function acquireEnvLock(
  path: string,
  opts: { command: string; waitMs?: number; pollMs?: number },
): Promise<EnvLock> {
  const existing = held.get(path);
  if (existing) {
    existing.count++;
    return existing.lock;
  }
  const deadline = Date.now() + (opts.waitMs ?? 30_000);
  const owner: LockOwner = {
    pid: Deno.pid,
    start_ms: await processStartMs(Deno.pid),
    command: opts.command,
    acquired_at: new Date().toISOString(),
  };
  const content = JSON.stringify(owner) + "\n";
  let tookOverFrom: LockOwner | undefined;
  while (true) {
    if (await createExclusive(path, content)) break;
    let text: string | undefined;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    const holder = await readLockOwner(path);
    if (holder === undefined) continue;
    // An unreadable file is a lock being written right now, unless it has been like that
    // for a while (a gov killed between create and write).
    const stale = holder === null ? (await mtimeAgeMs(path)) > 5000 : !(await ownerAlive(holder));
    if (stale) {
      if (await takeOverStale(path, text)) {
        if (holder) tookOverFrom = holder;
        continue;
      }
    } else if (Date.now() >= deadline) {
      throw new LockedError(
        path,
        holder?.pid,
        holder?.command
          ? `\`gov ${holder.command}\` (pid ${holder.pid}) is working on this environment; wait for it to finish, then retry`
          : undefined,
      );
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 100));
  }
  const lock: EnvLock = {
    path,
    owner,
    tookOverFrom,
    async release() {
      const h = held.get(path);
      if (h && --h.count > 0) return;
      held.delete(path);
      try {
        if ((await Deno.readTextFile(path)) === content) await removeIfExists(path);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    },
  };
  held.set(path, { lock, count: 1 });
  return lock;
}

/**
 * Acquires the lock only if it is free (or stale) right now; undefined when a live gov
 * holds it.
 *
 * @example
 * ```ts
 * import { tryAcquireEnvLock } from "@/gov/state/lock.ts";
 * declare const path: string;
 *
 * const lock = await tryAcquireEnvLock(path, "tx list");
 * ```
 */
export async function tryAcquireEnvLock(
  path: string,
  command: string,
): Promise<EnvLock | undefined> {
  try {
    return await acquireEnvLock(path, { command, waitMs: 0 });
  } catch (err) {
    if (err instanceof LockedError) return undefined;
    throw err;
  }
}
