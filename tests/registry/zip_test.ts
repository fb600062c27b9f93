// Safe unpacking on crafted archives (built with fflate, not by gov's reader): corrupt data,
// an entry inflating past its declared size, names that clash or escape with backslashes,
// and the staging folder a journaling caller passes.
import { join } from "node:path";
import { zipSync } from "fflate";
import { unpackZipSafely, UnsafeArchiveError } from "../../src/registry/mod.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";

const enc = new TextEncoder();

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "gov-zip-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function names(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

/** Offset of the first central-directory entry (after the local entries). */
function centralOffset(zip: Uint8Array): number {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  for (let i = zip.length - 22; i >= 0; i--) {
    if (dv.getUint32(i, true) === 0x06054b50) return dv.getUint32(i + 16, true);
  }
  throw new Error("no end record");
}

Deno.test("a stored entry whose bytes were altered fails its CRC; nothing is written", async () => {
  await withDir(async (dir) => {
    const zip = zipSync({ "a.py": enc.encode("print('hello')\n") }, { level: 0 });
    // The stored data starts after the 30-byte local header and the 4-byte name.
    zip[30 + 4] ^= 0xff;
    await assertRejects(
      () => unpackZipSafely(zip, join(dir, "node")),
      UnsafeArchiveError,
      /entry 'a\.py' fails its CRC check/,
    );
    assertEquals(await names(dir), []);
  });
});

Deno.test("an entry inflating past the size it declares is refused (zip bomb)", async () => {
  await withDir(async (dir) => {
    const zip = zipSync({ "big.bin": new Uint8Array(1 << 20) }, { level: 9 });
    // Lower the declared uncompressed size in the central directory to 1 KiB.
    const cd = centralOffset(zip);
    new DataView(zip.buffer).setUint32(cd + 24, 1024, true);
    await assertRejects(
      () => unpackZipSafely(zip, join(dir, "node")),
      UnsafeArchiveError,
      /entry 'big\.bin' is corrupt or larger than it declares/,
    );
    assertEquals(await names(dir), []);
  });
});

Deno.test("escaping with backslashes, duplicate names, a file under a file: refused", async () => {
  await withDir(async (dir) => {
    const cases: [Uint8Array, RegExp][] = [
      [zipSync({ "..\\evil.py": enc.encode("x") }), /escapes the node folder/],
      [zipSync({ "C:/evil.py": enc.encode("x") }), /has an absolute path/],
      [zipSync({ "a/./b.py": enc.encode("x"), "a/b.py": enc.encode("y") }), /appears twice/],
      [zipSync({ "a": enc.encode("x"), "a/b.py": enc.encode("y") }), /lies under the file 'a'/],
      [new Uint8Array(100), /not a zip file/],
    ];
    for (const [zip, re] of cases) {
      await assertRejects(() => unpackZipSafely(zip, join(dir, "node")), UnsafeArchiveError, re);
    }
    assertEquals(await names(dir), []);
  });
});

Deno.test("a staging folder given by the caller is used, then renamed to the destination", async () => {
  await withDir(async (dir) => {
    const zip = zipSync({ "pkg/__init__.py": enc.encode("X = 1\n"), "README.md": enc.encode("r") });
    const staging = join(dir, ".gov-clone-node-abcd");
    const dest = join(dir, "custom_nodes", "node");
    assertEquals(await unpackZipSafely(zip, dest, { staging }), 2);
    assertEquals(await Deno.readTextFile(join(dest, "pkg", "__init__.py")), "X = 1\n");
    assertEquals(await names(dir), ["custom_nodes"]);
    // A staging folder that exists belongs to someone else: refused, left alone.
    await Deno.mkdir(staging);
    await assertRejects(
      () => unpackZipSafely(zip, join(dir, "other"), { staging }),
      Deno.errors.AlreadyExists,
    );
    assertEquals(await names(dir), [".gov-clone-node-abcd", "custom_nodes"]);
  });
});
