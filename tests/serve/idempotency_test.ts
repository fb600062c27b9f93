/**
 * A client that lost the answer to its POST (gov serve killed mid-request, a dropped
 * connection) retries with the same Idempotency-Key and gets the job the first request
 * created, even across a restart, never a second run.
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { startFakeComfyUI } from "../helpers/fake_comfyui.ts";
import { localGateway } from "./_gateway.ts";
import { txt2img } from "./_helpers.ts";
import { GatewayClient } from "../../src/serve/client.ts";

Deno.test("a repeated POST with the same Idempotency-Key answers the first job, across a restart", async () => {
  const comfy = await startFakeComfyUI({ env: { FAKE_COMFYUI_EXEC_SECONDS: "0.1" } });
  const ws = await Deno.makeTempDir({ prefix: "gov-idem-test-" });
  const toml = `[[backend]]\nid = "a"\nhost = "127.0.0.1"\nport = ${comfy.port}\n`;
  try {
    const post = (url: string, body: unknown, key?: string) =>
      fetch(`${url}/v1/jobs`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(key !== undefined ? { "idempotency-key": key } : {}),
        },
        body: JSON.stringify(body),
      });
    const body = { workflow: txt2img(), set: { seed: 5 } };
    let first: { id: string };
    {
      const { gw, close } = await localGateway({ ws, backendsToml: toml });
      try {
        const r1 = await post(gw.url, body, "retry-me-1");
        assertEquals(r1.status, 201);
        first = await r1.json();
        const r2 = await post(gw.url, body, "retry-me-1");
        assertEquals(r2.status, 200);
        assertEquals(r2.headers.get("idempotent-replayed"), "true");
        assertEquals((await r2.json()).id, first.id);
        // The same key for another request is the client's bug: refused, nothing created.
        const other = await post(gw.url, { workflow: txt2img("other") }, "retry-me-1");
        assertEquals(other.status, 422);
        assertMatch((await other.json()).error, /was used for another request/);
        const bad = await post(gw.url, body, "has space");
        assertEquals(bad.status, 400);
        await bad.body?.cancel();
        assertEquals(gw.store.list().length, 1);
      } finally {
        await close();
      }
    }
    // The key is in the job store: a gateway restarted after the crash still knows it.
    const { gw, close } = await localGateway({ ws, backendsToml: toml });
    try {
      const r3 = await post(gw.url, body, "retry-me-1");
      assertEquals(r3.status, 200);
      assertEquals((await r3.json()).id, first.id);
      assertEquals(gw.store.list().length, 1);
    } finally {
      await close();
    }
  } finally {
    await comfy.stop();
    await Deno.remove(ws, { recursive: true }).catch(() => {});
  }
});

Deno.test("GatewayClient.submit sends an Idempotency-Key and retries a lost answer with it", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const keys: string[] = [];
  const served = (async () => {
    for (let n = 0; n < 2; n++) {
      const conn = await listener.accept();
      const buf = new Uint8Array(64 * 1024);
      let text = "";
      while (!/\r\n\r\n[\s\S]*\}$/.test(text)) {
        const got = await conn.read(buf);
        if (got === null) break;
        text += new TextDecoder().decode(buf.subarray(0, got));
      }
      keys.push(/^idempotency-key: (.+)$/im.exec(text)?.[1].trim() ?? "");
      if (n === 0) {
        // Committed, then the gateway died: the client never sees an answer.
        conn.close();
        continue;
      }
      const body = JSON.stringify({ id: "job-1", state: "queued" });
      await conn.write(new TextEncoder().encode(
        `HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      ));
      conn.close();
    }
  })();
  try {
    const client = new GatewayClient(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`);
    const job = await client.submit({ workflow: txt2img() });
    await served;
    assertEquals(job.id, "job-1");
    assertEquals(keys.length, 2);
    assertMatch(keys[0], /^[0-9a-f-]{36}$/);
    assertEquals(keys[1], keys[0]);
  } finally {
    listener.close();
  }
});
