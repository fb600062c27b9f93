/**
 * Findings of the repeated review sweep on the gateway: a workflow that is neither a UI
 * workflow nor an API prompt is refused when posted (not stored to fail once a backend is
 * up), paging with an unknown job id is an error rather than an empty page, and the raw
 * test client sends all of a large request.
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { localGateway, rawExchange, statusOf } from "./_gateway.ts";
import { txt2img } from "./_helpers.ts";
import { freePort } from "../helpers/net.ts";

/** A backend nothing listens on: no node definitions are known, jobs wait for it. */
const DOWN_BACKEND = `[[backend]]\nid = "down"\nhost = "127.0.0.1"\nport = ${freePort()}\n`;

function post(url: string, body: unknown): Promise<Response> {
  return fetch(`${url}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

Deno.test("a workflow of neither form is refused at once, even before any backend is known", async () => {
  const { gw, close } = await localGateway({ backendsToml: DOWN_BACKEND });
  try {
    for (
      const workflow of [
        {},
        { nodes: 5 },
        { "1": { class_type: 5, inputs: {} } },
        { "1": { class_type: "KSampler", inputs: null } },
        { "1": null },
        { workflow: { nodes: "x" } },
      ]
    ) {
      const r = await post(gw.url, { workflow });
      assertEquals(r.status, 400, JSON.stringify(workflow));
      assertMatch((await r.json()).error, /not a ComfyUI workflow/);
    }
    assertEquals(gw.store.list().length, 0);
    // A UI workflow still waits for the backends' node definitions, and an API prompt is
    // taken as before.
    const ui = await post(gw.url, { workflow: { nodes: [], links: [] } });
    assertEquals(ui.status, 201, await ui.text());
    const api = await post(gw.url, { workflow: txt2img() });
    assertEquals(api.status, 201, await api.text());
    const wrapped = await post(gw.url, { workflow: { workflow: { nodes: [], links: [] } } });
    assertEquals(wrapped.status, 201, await wrapped.text());
    assertEquals(gw.store.list().length, 3);
  } finally {
    await close();
  }
});

Deno.test("paging with an unknown job id is a 400 naming it, not an empty page", async () => {
  const { gw, close } = await localGateway({ backendsToml: DOWN_BACKEND });
  try {
    const made = await post(gw.url, { workflow: txt2img() });
    const { id } = await made.json();
    const bad = await fetch(`${gw.url}/v1/jobs?before=no-such-job`);
    assertEquals(bad.status, 400);
    assertMatch((await bad.json()).error, /before: no job 'no-such-job'/);
    const ok = await fetch(`${gw.url}/v1/jobs?before=${id}`);
    assertEquals(ok.status, 200);
    assertEquals((await ok.json()).jobs, []);
  } finally {
    await close();
  }
});

Deno.test("the raw test client sends all of a request larger than one socket write", async () => {
  const { gw, close } = await localGateway({ backendsToml: DOWN_BACKEND });
  try {
    const port = Number(new URL(gw.url).port);
    const body = JSON.stringify({
      workflow: txt2img(),
      set: { "3.seed": "1" },
      pad: "x".repeat(5_000_000),
    });
    const raw = `POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    const r = await rawExchange(port, raw);
    // The whole body arrived: the unknown field is named (a short write left it waiting).
    assertEquals(statusOf(r.text), 400, r.text.slice(0, 200));
    assertMatch(r.text, /unknown field\(s\) \\"pad\\"/);
  } finally {
    await close();
  }
});

Deno.test("a bad set pair is worded as the request's `set` field, not the CLI's --set flag", async () => {
  const { gw, close } = await localGateway({ backendsToml: DOWN_BACKEND });
  try {
    const r = await post(gw.url, { workflow: txt2img(), set: { "3.constructor": "1" } });
    assertEquals(r.status, 400);
    const { error } = await r.json();
    assertMatch(error, /^set 3\.constructor: node 3 \(KSampler\) has no input 'constructor'/);
    assertEquals(gw.store.list().length, 0);
  } finally {
    await close();
  }
});
