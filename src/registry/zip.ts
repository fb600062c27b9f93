/**
 * Safe unpacking of a zip archive: every entry is checked before anything is written (no
 * absolute names, no `..`, no symlinks, no encrypted or exotic entries, bounded count and
 * size), data is inflated with a byte budget and its CRC checked, and the tree is written to
 * a temporary sibling folder that is renamed into place only when complete.
 *
 * Deno's `DecompressionStream("deflate-raw")` inflates, so no unzip program runs.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { RegistryDestinationExistsError, UnsafeArchiveError } from "./errors.ts";

/** Bounds on what an archive may unpack to. */
export interface UnpackLimits {
  /** Entries (files and folders), default 20 000. */
  maxEntries?: number;
  /** Total uncompressed bytes, default 1 GiB. */
  maxTotalBytes?: number;
}

/** Options of {@link unpackZipSafely}. */
export interface UnpackOptions extends UnpackLimits {
  /** Name of the archive in error messages. */
  archive?: string;
  /**
   * The temporary folder to unpack into before the rename (must not exist; same file
   * system as `dest`). Default: a fresh `.gov-unpack-*` folder beside `dest`. A caller that
   * journals its steps passes its own, so recovery knows what to remove.
   */
  staging?: string;
}

/** Default entry bound. */
export const DEFAULT_MAX_ENTRIES = 20_000;
/** Default total uncompressed bound. */
export const DEFAULT_MAX_TOTAL_BYTES = 1024 * 1024 * 1024;

/** One entry of the central directory, checked. */
interface Entry {
  /** Relative path segments. */
  parts: string[];
  dir: boolean;
  method: number;
  crc: number;
  compSize: number;
  size: number;
  localOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_CD = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Checks an entry name and returns its segments; throws naming the entry when unsafe. */
function safeParts(name: string, archive: string): string[] {
  const bad = (why: string) => new UnsafeArchiveError(archive, `entry '${name}' ${why}`);
  if (name.includes("\0")) throw bad("has a NUL in its name");
  // Archives made on Windows may use backslashes; they are separators for this check.
  const norm = name.replace(/\\/g, "/");
  if (norm.startsWith("/") || /^[A-Za-z]:/.test(norm)) throw bad("has an absolute path");
  const parts = norm.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === "..")) throw bad("escapes the node folder with '..'");
  return parts;
}

/** Reads and checks the central directory; nothing is written yet. */
function readEntries(zip: Uint8Array, archive: string, limits: Required<UnpackLimits>): Entry[] {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const fail = (why: string) => new UnsafeArchiveError(archive, why);
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 65535); i--) {
    if (dv.getUint32(i, true) === SIG_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw fail("it is not a zip file (no end-of-directory record)");
  const count = dv.getUint16(eocd + 10, true);
  const cdSize = dv.getUint32(eocd + 12, true);
  const cdOffset = dv.getUint32(eocd + 16, true);
  if (count === 0xffff || cdOffset === 0xffffffff) throw fail("zip64 archives are not supported");
  if (count > limits.maxEntries) throw fail(`it has ${count} entries, over ${limits.maxEntries}`);
  if (cdOffset + cdSize > eocd) throw fail("its central directory is out of bounds");
  const entries: Entry[] = [];
  const seen = new Set<string>();
  let total = 0;
  let p = cdOffset;
  const decoder = new TextDecoder();
  for (let i = 0; i < count; i++) {
    if (p + 46 > eocd || dv.getUint32(p, true) !== SIG_CD) {
      throw fail("its central directory is corrupt");
    }
    const madeBy = dv.getUint16(p + 4, true);
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    const compSize = dv.getUint32(p + 20, true);
    const size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    const attrs = dv.getUint32(p + 38, true);
    const localOffset = dv.getUint32(p + 42, true);
    const name = decoder.decode(zip.subarray(p + 46, p + 46 + nameLen));
    p += 46 + nameLen + extraLen + commentLen;
    const parts = safeParts(name, archive);
    const mode = attrs >>> 16;
    // Host 3 is Unix: its high attribute bits are the file mode, where links show.
    if ((madeBy >> 8) === 3 && (mode & S_IFMT) === S_IFLNK) {
      throw fail(`entry '${name}' is a symbolic link`);
    }
    if (flags & 1) throw fail(`entry '${name}' is encrypted`);
    const dir = name.endsWith("/") || name.endsWith("\\");
    if (!dir && method !== 0 && method !== 8) {
      throw fail(`entry '${name}' uses compression method ${method} (only stored and deflate)`);
    }
    if (parts.length === 0) {
      if (dir) continue;
      throw fail(`entry '${name}' has an empty name`);
    }
    const key = parts.join("/");
    if (seen.has(key)) throw fail(`entry '${name}' appears twice`);
    seen.add(key);
    total += size;
    if (total > limits.maxTotalBytes) {
      throw fail(`it unpacks to more than ${limits.maxTotalBytes} bytes`);
    }
    entries.push({ parts, dir, method, crc, compSize, size, localOffset });
  }
  // A file whose path runs through another file would be written through it.
  const files = new Set(entries.filter((e) => !e.dir).map((e) => e.parts.join("/")));
  for (const e of entries) {
    for (let k = 1; k < e.parts.length; k++) {
      const prefix = e.parts.slice(0, k).join("/");
      if (files.has(prefix)) {
        throw fail(`entry '${e.parts.join("/")}' lies under the file '${prefix}'`);
      }
    }
  }
  return entries;
}

async function inflateBounded(
  data: Uint8Array,
  max: number,
  what: () => Error,
): Promise<Uint8Array> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(
    new DecompressionStream("deflate-raw"),
  );
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    for await (const chunk of stream) {
      n += chunk.length;
      if (n > max) throw what();
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof UnsafeArchiveError) throw err;
    throw what();
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

async function entryData(zip: Uint8Array, e: Entry, archive: string): Promise<Uint8Array> {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const name = e.parts.join("/");
  const fail = (why: string) => new UnsafeArchiveError(archive, `entry '${name}' ${why}`);
  if (e.localOffset + 30 > zip.length || dv.getUint32(e.localOffset, true) !== SIG_LOCAL) {
    throw fail("has no local header");
  }
  const start = e.localOffset + 30 + dv.getUint16(e.localOffset + 26, true) +
    dv.getUint16(e.localOffset + 28, true);
  if (start + e.compSize > zip.length) throw fail("runs past the end of the archive");
  const raw = zip.subarray(start, start + e.compSize);
  const data = e.method === 0
    ? raw
    : await inflateBounded(raw, e.size, () => fail("is corrupt or larger than it declares"));
  if (data.length !== e.size) throw fail("is not the size it declares");
  if (crc32(data) !== e.crc) throw fail("fails its CRC check");
  return data;
}

/**
 * Unpacks `zip` into the new folder `dest` (which must not exist), safely: the archive is
 * checked whole first, unpacked into a temporary folder (`opts.staging`, else a sibling of
 * `dest`), then renamed into place, so `dest` either appears complete or not at all.
 * Returns the number of files written.
 *
 * @example
 * ```ts
 * import { unpackZipSafely } from "@/registry/zip.ts";
 *
 * const bytes = await Deno.readFile("node.zip");
 * await unpackZipSafely(bytes, "/srv/comfy/custom_nodes/my-node", { archive: "node.zip" });
 * ```
 */
export async function unpackZipSafely(
  zip: Uint8Array,
  dest: string,
  opts: UnpackOptions = {},
): Promise<number> {
  const archive = opts.archive ?? "archive";
  const limits = {
    maxEntries: opts.maxEntries ?? DEFAULT_MAX_ENTRIES,
    maxTotalBytes: opts.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES,
  };
  const entries = readEntries(zip, archive, limits);
  try {
    await Deno.lstat(dest);
    throw new RegistryDestinationExistsError(dest);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const parent = dirname(dest);
  await Deno.mkdir(parent, { recursive: true });
  let tmp: string;
  if (opts.staging !== undefined) {
    tmp = opts.staging;
    await Deno.mkdir(dirname(tmp), { recursive: true });
    // Not recursive: a staging folder that already exists is someone else's.
    await Deno.mkdir(tmp);
  } else {
    tmp = await Deno.makeTempDir({ dir: parent, prefix: ".gov-unpack-" });
  }
  let files = 0;
  try {
    for (const e of entries) {
      const target = join(tmp, ...e.parts);
      if (e.dir) {
        await Deno.mkdir(target, { recursive: true });
        continue;
      }
      const data = await entryData(zip, e, archive);
      await Deno.mkdir(dirname(target), { recursive: true });
      // createNew: a second write to one path would mean the checks above missed a clash.
      await Deno.writeFile(target, data, { createNew: true, mode: 0o644 });
      files++;
    }
    await Deno.chmod(tmp, 0o755);
    await Deno.rename(tmp, dest);
  } catch (err) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw err;
  }
  return files;
}
