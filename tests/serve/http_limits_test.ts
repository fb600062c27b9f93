/**
 * What one client may cost the gateway: body size counted as it streams (chunked too),
 * caps on `set` pairs and workflow nodes, lists that never carry (or parse) workflows,
 * header/body/idle timeouts and a connection cap. Each limit is named in its error.
 */
import { queuedJob } from "./_job.ts";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { localGateway, rawExchange, statusOf } from "./_gateway.ts";
import { txt2img } from "./_helpers.ts";
import type { Job } from "../../src/serve/types.ts";

const post = (url: string, body: BodyInit, headers: Record<string, string> = {}) =>
  fetch(`${url}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });

Deno.test("a chunked body is cut off at the size limit with 413 while it still streams", async () => {
  const { gw, close } = await localGateway({ transport: { idleTimeoutMs: 1000 } });
  try {
    const chunk = new Uint8Array(1024 * 1024).fill(0x20);
    // Spaces without end: only a server that counts while it reads ever answers.
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(chunk);
      },
    });
    const stop = new AbortController();
    const r = await fetch(`${gw.url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: stop.signal,
    });
    assertEquals(r.status, 413);
    assertMatch((await r.json()).error, /over the limit of 33554432 bytes/);
    stop.abort();
  } finally {
    await close();
  }
});

Deno.test("a client that streams on after its 413 is disconnected", async () => {
  const { gw, close } = await localGateway();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: gw.port });
  try {
    await conn.write(new TextEncoder().encode(
      "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n" +
        "transfer-encoding: chunked\r\n\r\n",
    ));
    const head = new TextEncoder().encode(`${(1024 * 1024).toString(16)}\r\n`);
    const chunk = new Uint8Array(head.length + 1024 * 1024 + 2).fill(0x20);
    chunk.set(head);
    chunk.set([0x0d, 0x0a], chunk.length - 2);
    // Drain what the gateway answers so its writes never block.
    const answer = (async () => {
      const buf = new Uint8Array(4096);
      let text = "";
      try {
        for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
          text += new TextDecoder().decode(buf.subarray(0, n));
        }
      } catch { /* reset */ }
      return text;
    })();
    let sentMb = 0;
    try {
      while (sentMb < 500) {
        for (let off = 0; off < chunk.length;) off += await conn.write(chunk.subarray(off));
        sentMb++;
      }
    } catch { /* disconnected: what this test waits for */ }
    assertTrue(sentMb < 500, "a 500 MB body was accepted to the end");
    const text = await answer;
    assertEquals(statusOf(text), 413, text);
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
    await close();
  }
});

Deno.test("more set pairs or workflow nodes than the limits are 400 naming the limit", async () => {
  const { gw, close } = await localGateway();
  try {
    const sets = Array.from({ length: 257 }, (_, i) => [`6.text`, `v${i}`]);
    const r1 = await post(gw.url, JSON.stringify({ workflow: txt2img(), set: sets }));
    assertEquals(r1.status, 400);
    assertMatch((await r1.json()).error, /set has 257 pairs; the limit is 256/);
    const longKey = await post(
      gw.url,
      JSON.stringify({ workflow: txt2img(), set: { ["x".repeat(300_000)]: 1 } }),
    );
    assertEquals(longKey.status, 400);
    assertMatch((await longKey.json()).error, /a key is 300000 characters; the limit is 256/);
    const fields: Record<string, unknown> = { workflow: txt2img() };
    for (let i = 0; i < 1000; i++) fields[`f${i}`] = 1;
    const many = await post(gw.url, JSON.stringify(fields));
    assertEquals(many.status, 400);
    const manyError = (await many.json()).error;
    assertMatch(manyError, /and 995 more/);
    assertTrue(manyError.length < 300, "the error repeats every unknown field");
    const big: Record<string, unknown> = {};
    for (let i = 0; i < 10_001; i++) big[String(i)] = { class_type: "Note", inputs: {} };
    const r2 = await post(gw.url, JSON.stringify({ workflow: big }));
    assertEquals(r2.status, 400);
    assertMatch((await r2.json()).error, /workflow has 10001 nodes; the limit is 10000/);
    const ui = { nodes: Array.from({ length: 10_001 }, (_, i) => ({ id: i })), links: [] };
    const r3 = await post(gw.url, JSON.stringify({ workflow: ui }));
    assertEquals(r3.status, 400);
    assertMatch((await r3.json()).error, /the limit is 10000/);
  } finally {
    await close();
  }
});

Deno.test("job lists and the live feed leave out workflows and sets; one job shows its sets", async () => {
  const { gw, close } = await localGateway();
  try {
    const job: Job = {
      ...queuedJob("j1", Date.now(), [["seed", "1"]]),
      workflow: txt2img(),
      prompt: txt2img(),
      promptId: "p",
      clientId: "c",
    };

    gw.store.create(job);
    const list = await (await fetch(`${gw.url}/v1/jobs`)).json();
    assertEquals(list.jobs.length, 1);
    for (const field of ["workflow", "prompt", "sets"]) {
      assertTrue(!(field in list.jobs[0]), `${field} in a list view`);
    }
    const one = await (await fetch(`${gw.url}/v1/jobs/j1`)).json();
    assertEquals(one.sets, [["seed", "1"]]);
    assertTrue(!("workflow" in one));
  } finally {
    await close();
  }
});

Deno.test("a client that never finishes its headers gets 408 and is disconnected", async () => {
  const { gw, close } = await localGateway({ transport: { headerTimeoutMs: 200 } });
  try {
    const r = await rawExchange(gw.port, "GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    assertTrue(r.closed, "the connection stayed open");
    assertEquals(statusOf(r.text), 408, r.text);
    assertMatch(r.text, /request headers not received within 200 ms/);
  } finally {
    await close();
  }
});

Deno.test("headers past the size limit get 431 and the connection closes", async () => {
  const { gw, close } = await localGateway({ transport: { maxHeaderBytes: 8 * 1024 } });
  try {
    const big = "x".repeat(20 * 1024);
    const r = await rawExchange(
      gw.port,
      `GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nx-filler: ${big}\r\n\r\n`,
    );
    assertEquals(statusOf(r.text), 431, r.text);
    assertMatch(r.text, /request headers over 8192 bytes/);
    assertTrue(r.closed, "the connection stayed open");
    // Ordinary requests are untouched by the limit.
    const ok = await rawExchange(
      gw.port,
      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nconnection: close\r\n\r\n",
    );
    assertEquals(statusOf(ok.text), 200, ok.text);
  } finally {
    await close();
  }
});

Deno.test("a body that stalls gets 408 once the body timeout passes", async () => {
  const { gw, close } = await localGateway({
    limits: { bodyTimeoutMs: 200 },
    transport: { idleTimeoutMs: 1000 },
  });
  try {
    const r = await rawExchange(
      gw.port,
      "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n" +
        'content-length: 100\r\nconnection: close\r\n\r\n{"work',
    );
    assertEquals(statusOf(r.text), 408, r.text);
    assertMatch(r.text, /request body not received within 200 ms/);
  } finally {
    await close();
  }
});

Deno.test("an idle kept-alive connection is closed after the idle timeout", async () => {
  const { gw, close } = await localGateway({ transport: { idleTimeoutMs: 300 } });
  try {
    // A complete request, then silence on a kept-alive connection.
    const r = await rawExchange(gw.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assertEquals(statusOf(r.text), 200, r.text);
    assertTrue(r.closed, "the idle connection stayed open");
  } finally {
    await close();
  }
});

Deno.test("connections over the cap are refused with 503 and the gateway stays up", async () => {
  const { gw, close } = await localGateway({ transport: { maxConnections: 2 } });
  const held: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: gw.port });
      await c.write(new TextEncoder().encode("GET / HTTP/1.1\r\n"));
      held.push(c);
    }
    const over = await rawExchange(gw.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assertEquals(statusOf(over.text), 503, over.text);
    assertMatch(over.text, /too many connections \(the limit is 2\)/);
    for (const c of held.splice(0)) c.close();
    // Once they are gone, the gateway answers again.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      const r = await fetch(`${gw.url}/healthz`).catch(() => undefined);
      status = r?.status ?? 0;
      await r?.body?.cancel();
      if (status !== 200) await new Promise((res) => setTimeout(res, 50));
    }
    assertEquals(status, 200);
  } finally {
    for (const c of held) c.close();
    await close();
  }
});
