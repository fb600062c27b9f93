/**
 * Crash-safe file writes: temp file in the same folder, fsync, rename, fsync the folder.
 *
 * A reader sees either the old content or the new one, never a torn file, whatever instant
 * gov is killed at.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { storageErrorOf } from "./errors.ts";

let counter = 0;

/**
 * Writes `data` to `path` atomically. Creates missing parent folders.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "@/fs/atomic.ts";
 *
 * await writeFileAtomic("/ws/.metadata/.orchestrator.pid", "4242\n");
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: { mode?: number } = {},
): Promise<void> {
  try {
    await writeFileAtomicRaw(path, data, options);
  } catch (err) {
    // A full disk or a read-only mount is named with the file being written.
    throw storageErrorOf(err, path) ?? err;
  }
}

async function writeFileAtomicRaw(
  path: string,
  data: string | Uint8Array,
  options: { mode?: number },
): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp.${Deno.pid}.${counter++}`);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const file = await Deno.open(tmp, {
    write: true,
    create: true,
    truncate: true,
    mode: options.mode ?? 0o644,
  });
  try {
    let off = 0;
    while (off < bytes.length) off += await file.write(bytes.subarray(off));
    await file.sync();
  } catch (err) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  file.close();
  try {
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  await syncDir(dir);
}

/**
 * Writes `value` as pretty JSON (two-space indent, trailing newline) atomically.
 *
 * @example
 * ```ts
 * import { writeJsonAtomic } from "@/fs/atomic.ts";
 *
 * await writeJsonAtomic("/ws/.metadata/.switch_status.json", { state: "idle", progress: 0 });
 * ```
 */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/**
 * Fsyncs a folder so a rename or unlink inside it survives power loss. Best effort: some
 * file systems refuse to open folders for syncing.
 *
 * @example
 * ```ts
 * import { syncDir } from "@/fs/atomic.ts";
 *
 * await syncDir("/ws/.metadata");
 * ```
 */
export async function syncDir(dir: string): Promise<void> {
  try {
    const f = await Deno.open(dir, { read: true });
    try {
      await f.sync();
    } finally {
      f.close();
    }
  } catch {
    // Folder fsync is not supported everywhere; the rename itself is still atomic.
  }
}

/**
 * Reads a file as text, or returns `undefined` when it does not exist.
 *
 * @example
 * ```ts
 * import { readTextIfExists } from "@/fs/atomic.ts";
 *
 * const pid = await readTextIfExists("/ws/.metadata/.orchestrator.pid");
 * ```
 */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/**
 * Removes a file, ignoring a missing one.
 *
 * @example
 * ```ts
 * import { removeIfExists } from "@/fs/atomic.ts";
 *
 * await removeIfExists("/ws/.metadata/.cmd");
 * ```
 */
export async function removeIfExists(path: string): Promise<boolean> {
  try {
    await Deno.remove(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * Tells whether a path exists (file, folder or symlink target).
 *
 * @example
 * ```ts
 * import { exists } from "@/fs/atomic.ts";
 *
 * if (await exists("/ws/.metadata")) console.log("workspace");
 * ```
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return false;
    }
    throw err;
  }
}
