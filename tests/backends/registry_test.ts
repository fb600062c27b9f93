import { join } from "node:path";
import { assertEquals, assertRejects, assertTrue } from "../helpers/assert.ts";
import {
  addBackend,
  backendsFile,
  getBackend,
  readBackends,
  removeBackend,
} from "../../src/backends/registry.ts";
import { ConfigError, GovError, NotFoundError, UsageError } from "../../src/errors.ts";
import { type Workspace, workspaceAt } from "../../src/workspace/root.ts";

async function withWorkspace(fn: (ws: Workspace) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gov-backends-" });
  try {
    await fn(workspaceAt(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("registry: a workspace without backends.toml has no backends", async () => {
  await withWorkspace(async (ws) => {
    assertEquals(await readBackends(ws), []);
  });
});

Deno.test("registry: add fills defaults and round-trips every field through the file", async () => {
  await withWorkspace(async (ws) => {
    const a = await addBackend(ws, { id: "gpu1", host: "10.0.0.5", port: 8188 });
    assertEquals(a, {
      id: "gpu1",
      name: "gpu1",
      host: "10.0.0.5",
      port: 8188,
      weight: 1,
      tags: [],
      max_queue: 4,
    });
    const b = await addBackend(ws, {
      id: "gpu2",
      name: 'A100 "rack" 3',
      host: "comfy-b.internal",
      port: 8189,
      weight: 2.5,
      tags: ["sdxl", "a100", "sdxl"],
      max_queue: 8,
      token: "s3cret",
      tls: true,
    });
    assertEquals(b.tags, ["sdxl", "a100"]);
    const text = await Deno.readTextFile(backendsFile(ws));
    assertEquals(text.match(/^\[\[backend\]\]$/gm)?.length, 2);
    assertEquals(await readBackends(ws), [a, b]);
    assertEquals((await getBackend(ws, "gpu2")).token, "s3cret");
    // Only the registry itself is left in the folder: no temp files of the atomic write.
    const names = [];
    for await (const e of Deno.readDir(ws.root)) names.push(e.name);
    assertEquals(names.sort(), [".metadata", "backends.toml"]);
  });
});

Deno.test("registry: duplicate ids and a second entry for one host:port are refused, file unchanged", async () => {
  await withWorkspace(async (ws) => {
    await addBackend(ws, { id: "gpu1", host: "127.0.0.1", port: 8188 });
    const before = await Deno.readTextFile(backendsFile(ws));
    await assertRejects(
      () => addBackend(ws, { id: "gpu1", host: "127.0.0.1", port: 9000 }),
      UsageError,
      /backend 'gpu1' already exists/,
    );
    await assertRejects(
      () => addBackend(ws, { id: "other", host: "127.0.0.1", port: 8188 }),
      UsageError,
      /backend 'gpu1' already points at 127\.0\.0\.1:8188/,
    );
    assertEquals(await Deno.readTextFile(backendsFile(ws)), before);
  });
});

Deno.test("registry: bad ids, ports, weights, hosts and tokens are usage errors naming the field", async () => {
  await withWorkspace(async (ws) => {
    await assertRejects(
      () => addBackend(ws, { id: "../x", host: "h", port: 1 }),
      UsageError,
      /invalid backend id '\.\.\/x'/,
    );
    await assertRejects(
      () => addBackend(ws, { id: "a", host: "h", port: 70000 }),
      UsageError,
      /backend 'a': port must be an integer from 1 to 65535/,
    );
    await assertRejects(
      () => addBackend(ws, { id: "a", host: "h", port: 0 }),
      UsageError,
      /port must be an integer from 1 to 65535/,
    );
    await assertRejects(
      () => addBackend(ws, { id: "a", host: "h", port: 80, weight: 0 }),
      UsageError,
      /weight must be a number greater than 0/,
    );
    await assertRejects(
      () => addBackend(ws, { id: "a", host: "http://h", port: 80 }),
      UsageError,
      /host must be a bare host name or address/,
    );
    await assertRejects(
      () => addBackend(ws, { id: "a", host: "h", port: 80, max_queue: 0 }),
      UsageError,
      /max_queue must be an integer of at least 1/,
    );
    await assertRejects(
      () => addBackend(ws, { id: "a", host: "h", port: 80, token: "two words" }),
      UsageError,
      /token must be a non-empty string without whitespace/,
    );
    assertEquals(await readBackends(ws), []);
  });
});

async function expectConfigError(ws: Workspace, text: string, field: string, re: RegExp) {
  await Deno.writeTextFile(backendsFile(ws), text);
  const err = await assertRejects(() => readBackends(ws), ConfigError, re) as ConfigError;
  assertEquals(err.field, field);
  assertEquals(err.file, backendsFile(ws));
  assertTrue(err.message.startsWith(backendsFile(ws)), err.message);
}

Deno.test("registry: a hand-edited file is validated, errors name the file and backend[<i>].<key>", async () => {
  await withWorkspace(async (ws) => {
    const ok = '[[backend]]\nid = "a"\nhost = "127.0.0.1"\nport = 8188\n\n';
    await expectConfigError(
      ws,
      ok + '[[backend]]\nid = "b"\nhost = "127.0.0.1"\nport = "8189"\n',
      "backend[1].port",
      /backend\[1\]\.port must be an integer from 1 to 65535/,
    );
    await expectConfigError(
      ws,
      '[[backend]]\nid = "a"\nhots = "x"\nhost = "h"\nport = 1\n',
      "backend[0].hots",
      /unknown key backend\[0\]\.hots \(did you mean backend\[0\]\.host\?\)/,
    );
    await expectConfigError(
      ws,
      ok + '[[backend]]\nid = "a"\nhost = "127.0.0.2"\nport = 8188\n',
      "backend[1].id",
      /unique \('a' is already backend\[0\]\.id\)/,
    );
    await expectConfigError(
      ws,
      '[[backend]]\nid = "a b"\nhost = "h"\nport = 1\n',
      "backend[0].id",
      /backend\[0\]\.id must be a name/,
    );
    await expectConfigError(
      ws,
      ok.replace("port = 8188", "port = 8188\ntags = [1]"),
      "backend[0].tags",
      /a list of non-empty strings/,
    );
    await expectConfigError(ws, "backend = 3\n", "backend", /an array of tables/);
    await expectConfigError(ws, "[[backend]\n", "", /is not valid TOML/);
  });
});

Deno.test("registry: remove deletes one entry and keeps the others", async () => {
  await withWorkspace(async (ws) => {
    await Deno.writeTextFile(
      backendsFile(ws),
      '[[backend]]\nid = "a"\nhost = "h1"\nport = 1\n\n' +
        '[[backend]]\nid = "b"\nhost = "h2"\nport = 2\nweight = 3\n',
    );
    await removeBackend(ws, "a");
    const left = await readBackends(ws);
    assertEquals(left.map((b) => [b.id, b.weight]), [["b", 3]]);
    await assertRejects(() => removeBackend(ws, "a"), NotFoundError, /backend 'a' not found/);
    await assertRejects(() => getBackend(ws, "zzz"), NotFoundError, /backend 'zzz' not found/);
  });
});

Deno.test("registry: concurrent adds are serialised by the lock and none is lost", async () => {
  await withWorkspace(async (ws) => {
    const ids = ["a", "b", "c", "d", "e", "f"];
    await Promise.all(ids.map((id, i) => addBackend(ws, { id, host: "h", port: 9000 + i })));
    assertEquals((await readBackends(ws)).map((b) => b.id).sort(), ids);
    // The lock is gone afterwards.
    const meta = [];
    for await (const e of Deno.readDir(join(ws.root, ".metadata"))) meta.push(e.name);
    assertEquals(meta, []);
  });
});

Deno.test("registry: a lock left by a dead process is taken over", async () => {
  await withWorkspace(async (ws) => {
    await Deno.mkdir(ws.metadataDir, { recursive: true });
    // pid 2^22+1 is above Linux's pid_max default, so no live process holds it.
    await Deno.writeTextFile(join(ws.metadataDir, ".backends.lock"), "4194305\n");
    await addBackend(ws, { id: "a", host: "h", port: 1 });
    assertEquals((await readBackends(ws)).length, 1);
  });
});

Deno.test("backends.toml: a misspelled [[backends]] table is refused with the right name, not read as no backends", async () => {
  const root = await Deno.makeTempDir({ prefix: "gov-backends-" });
  try {
    await Deno.mkdir(join(root, ".metadata"));
    await Deno.writeTextFile(
      join(root, "backends.toml"),
      '[[backends]]\nid = "a"\nhost = "127.0.0.1"\nport = 8188\n',
    );
    await assertRejects(
      () => readBackends(workspaceAt(root)),
      GovError,
      /unknown section \[backends\] \(did you mean \[backend\]\?\)/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
