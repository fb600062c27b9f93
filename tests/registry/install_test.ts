// Registry installs against the fake registry: by id, by id@version, latest, the hash check,
// unsafe archives refused with nothing left on disk, and 404s named.
import { join } from "node:path";
import {
  fetchRegistryNode,
  parseRegistrySettings,
  RegistryClient,
  RegistryHashMismatchError,
  RegistryNotFoundError,
  RegistrySpecError,
  sha256Hash,
  UnsafeArchiveError,
} from "../../src/registry/mod.ts";
import { type FakeNodes, startFakeRegistry } from "../../fixtures/registry/fake_registry.ts";
import { assertEquals, assertRejects, assertTrue } from "../helpers/assert.ts";
import { ConfigError } from "../../src/errors.ts";

async function nodeDir(root: string, name: string, marker: string): Promise<string> {
  const dir = join(root, "src", name);
  await Deno.mkdir(join(dir, "sub"), { recursive: true });
  await Deno.writeTextFile(join(dir, "__init__.py"), `NODE_CLASS_MAPPINGS = {}  # ${marker}\n`);
  await Deno.writeTextFile(join(dir, "sub", "util.py"), `VERSION = "${marker}"\n`);
  await Deno.writeTextFile(join(dir, "requirements.txt"), "# deps\nsix>=1.0\n");
  return dir;
}

async function listTree(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    out.push(p.slice(base.length + 1) + (e.isDirectory ? "/" : ""));
    if (e.isDirectory) out.push(...await listTree(p, base));
  }
  return out.sort();
}

async function topNames(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

async function withRegistry(
  fn: (ctx: { url: string; root: string; custom: string; requests: string[] }) => Promise<void>,
  extra: (root: string) => Promise<FakeNodes> = () => Promise.resolve({}),
) {
  const root = await Deno.makeTempDir({ prefix: "gov-registry-" });
  const nodes: FakeNodes = {
    "demo-node": {
      "1.0.0": { dir: await nodeDir(root, "v100", "1.0.0") },
      "1.1.0": { dir: await nodeDir(root, "v110", "1.1.0") },
    },
    ...await extra(root),
  };
  const reg = await startFakeRegistry(nodes);
  const custom = join(root, "ComfyUI", "custom_nodes");
  await Deno.mkdir(custom, { recursive: true });
  try {
    await fn({ url: reg.url, root, custom, requests: reg.requests });
  } finally {
    await reg.close();
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("registry install by id takes the latest version, with its files and hash", async () => {
  await withRegistry(async ({ url, custom, requests }) => {
    const dest = join(custom, "demo-node");
    const got = await fetchRegistryNode("demo-node", undefined, { baseUrl: url, dest });
    assertEquals(got.version, "1.1.0");
    assertEquals(got.path, dest);
    assertEquals(got.dependencies, ["six>=1.0"]);
    assertEquals(await Deno.readTextFile(join(dest, "sub", "util.py")), 'VERSION = "1.1.0"\n');
    assertEquals(await listTree(dest), ["__init__.py", "requirements.txt", "sub/", "sub/util.py"]);
    // The recorded hash is the archive's: the same bytes fetched again hash the same.
    const archive = await (await fetch(`${url}/archives/demo-node/1.1.0.zip`)).bytes();
    assertEquals(got.hash, await sha256Hash(archive));
    assertTrue(requests.includes("/nodes/demo-node/install"), requests.join(","));
    // Only the node folder appeared: no temporary sibling is left.
    assertEquals(await topNames(custom), ["demo-node"]);
  });
});

Deno.test("registry install by id@version takes that version", async () => {
  await withRegistry(async ({ url, custom, requests }) => {
    const dest = join(custom, "demo-node");
    const got = await fetchRegistryNode("demo-node", "1.0.0", { baseUrl: url, dest });
    assertEquals(got.version, "1.0.0");
    assertEquals(await Deno.readTextFile(join(dest, "sub", "util.py")), 'VERSION = "1.0.0"\n');
    assertTrue(requests.includes("/nodes/demo-node/install?version=1.0.0"), requests.join(","));
  });
});

Deno.test("a recorded hash is checked on install; a different one refuses, nothing on disk", async () => {
  await withRegistry(async ({ url, custom }) => {
    const dest = join(custom, "demo-node");
    const first = await fetchRegistryNode("demo-node", "1.0.0", { baseUrl: url, dest });
    await Deno.remove(dest, { recursive: true });
    const again = await fetchRegistryNode("demo-node", "1.0.0", {
      baseUrl: url,
      dest,
      expectedHash: first.hash,
    });
    assertEquals(again.hash, first.hash);
    await Deno.remove(dest, { recursive: true });
    const err = await assertRejects(
      () =>
        fetchRegistryNode("demo-node", "1.0.0", {
          baseUrl: url,
          dest,
          expectedHash: "sha256:" + "ab".repeat(32),
        }),
      RegistryHashMismatchError,
      /expected sha256:abab.*nothing installed/,
    );
    assertEquals(err.message.includes(first.hash), true);
    assertEquals(await listTree(custom), []);
  });
});

Deno.test("a hash sent by the registry is verified: right passes, wrong is refused", async () => {
  await withRegistry(async ({ url, custom }) => {
    const ok = await fetchRegistryNode("hashed", undefined, {
      baseUrl: url,
      dest: join(custom, "hashed"),
    });
    assertEquals(ok.version, "2.0.0");
    await assertRejects(
      () => fetchRegistryNode("tampered", undefined, { baseUrl: url, dest: join(custom, "t") }),
      RegistryHashMismatchError,
      /registry node 'tampered' 1\.0\.0 has hash sha256:[0-9a-f]{64}, expected sha256:0{64}/,
    );
    assertEquals(await topNames(custom), ["hashed"]);
  }, async (root) => ({
    hashed: { "2.0.0": { dir: await nodeDir(root, "h", "h"), mode: "right-hash" } },
    tampered: { "1.0.0": { dir: await nodeDir(root, "t", "t"), mode: "wrong-hash" } },
  }));
});

Deno.test("unsafe archives are refused whole and leave nothing on disk", async () => {
  await withRegistry(async ({ url, root, custom }) => {
    const cases: [string, RegExp][] = [
      ["slip", /entry '\.\.\/escaped\.py' escapes the node folder/],
      ["abs", /entry '\/tmp\/gov-absolute\.py' has an absolute path/],
      ["link", /entry 'link_out' is a symbolic link/],
    ];
    for (const [id, re] of cases) {
      await assertRejects(
        () => fetchRegistryNode(id, undefined, { baseUrl: url, dest: join(custom, id) }),
        UnsafeArchiveError,
        re,
      );
    }
    assertEquals(await listTree(custom), []);
    // Nothing escaped next to the custom nodes folder either.
    assertEquals(await Deno.stat(join(root, "ComfyUI", "escaped.py")).catch(() => null), null);
    assertEquals(await Deno.stat(join(custom, "..", "escaped.py")).catch(() => null), null);
  }, async (root) => ({
    slip: { "1.0.0": { dir: await nodeDir(root, "s", "s"), mode: "zip-slip" } },
    abs: { "1.0.0": { dir: await nodeDir(root, "a", "a"), mode: "absolute" } },
    link: { "1.0.0": { dir: await nodeDir(root, "l", "l"), mode: "symlink" } },
  }));
});

Deno.test("archive bounds: too many entries, too many bytes, too large a download", async () => {
  await withRegistry(async ({ url, custom }) => {
    const dest = join(custom, "demo-node");
    await assertRejects(
      () => fetchRegistryNode("demo-node", undefined, { baseUrl: url, dest, maxEntries: 2 }),
      UnsafeArchiveError,
      /has 3 entries, over 2/,
    );
    await assertRejects(
      () => fetchRegistryNode("demo-node", undefined, { baseUrl: url, dest, maxTotalBytes: 20 }),
      UnsafeArchiveError,
      /more than 20 bytes/,
    );
    await assertRejects(
      () => fetchRegistryNode("demo-node", undefined, { baseUrl: url, dest, maxArchiveBytes: 50 }),
      UnsafeArchiveError,
      /larger than 50 bytes/,
    );
    assertEquals(await listTree(custom), []);
  });
});

Deno.test("404s name the node or the version, and bad specs are usage errors", async () => {
  await withRegistry(async ({ url, custom }) => {
    const dest = join(custom, "x");
    const node = await assertRejects(
      () => fetchRegistryNode("no-such-node", undefined, { baseUrl: url, dest }),
      RegistryNotFoundError,
      /registry node 'no-such-node' not found/,
    );
    assertEquals((node as RegistryNotFoundError).exitCode, 2);
    await assertRejects(
      () => fetchRegistryNode("no-such-node", "1.0.0", { baseUrl: url, dest }),
      RegistryNotFoundError,
      /registry node 'no-such-node' not found/,
    );
    await assertRejects(
      () => fetchRegistryNode("demo-node", "9.9.9", { baseUrl: url, dest }),
      RegistryNotFoundError,
      /registry node 'demo-node' has no version 9\.9\.9/,
    );
    await assertRejects(
      () => fetchRegistryNode("demo-node", "latest", { baseUrl: url, dest }),
      RegistrySpecError,
      /invalid registry node 'demo-node@latest'/,
    );
    await assertRejects(
      () => fetchRegistryNode("../etc", undefined, { baseUrl: url, dest }),
      RegistrySpecError,
    );
    assertEquals(await listTree(custom), []);
  });
});

Deno.test("the client reads a node and its versions in the API's shapes", async () => {
  await withRegistry(async ({ url }) => {
    const client = new RegistryClient({ baseUrl: url });
    const node = await client.node("demo-node");
    assertEquals(node.latestVersion, "1.1.0");
    assertEquals(node.repository, "https://github.com/example/demo-node");
    const versions = await client.versions("demo-node");
    assertEquals(versions.map((v) => v.version), ["1.1.0", "1.0.0"]);
    assertEquals(versions[0].nodeId, "demo-node");
    await assertRejects(() => client.versions("nope"), RegistryNotFoundError, /'nope' not found/);
  });
});

Deno.test("an existing destination is refused and left alone", async () => {
  await withRegistry(async ({ url, custom }) => {
    const dest = join(custom, "demo-node");
    await Deno.mkdir(dest);
    await Deno.writeTextFile(join(dest, "mine.py"), "keep\n");
    await assertRejects(
      () => fetchRegistryNode("demo-node", undefined, { baseUrl: url, dest }),
      undefined,
      /already exists; nothing installed/,
    );
    assertEquals(await listTree(custom), ["demo-node/", "demo-node/mine.py"]);
  });
});

Deno.test("[registry] url in gov.toml: default, set, and rejected when not a URL", () => {
  assertEquals(parseRegistrySettings("", "gov.toml").url, "https://api.comfy.org");
  assertEquals(
    parseRegistrySettings('[registry]\nurl = "http://127.0.0.1:9/"\n', "gov.toml").url,
    "http://127.0.0.1:9",
  );
  for (
    const bad of [
      '[registry]\nurl = "ftp://x"\n',
      "[registry]\nurl = 3\n",
      "[registry]\nurI = 'x'\n",
    ]
  ) {
    let err: unknown;
    try {
      parseRegistrySettings(bad, "gov.toml");
    } catch (e) {
      err = e;
    }
    assertTrue(err instanceof ConfigError, bad);
  }
});
