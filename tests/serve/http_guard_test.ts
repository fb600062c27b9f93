/**
 * What keeps web pages the operator opens from using the gateway: the Host check (DNS
 * rebinding), the same-origin rule for requests that change state, JSON-only POSTs, and a
 * session cookie that is no credential for other origins; plus the small protocol rules
 * (405 with Allow, HEAD like GET, 400 for malformed ids).
 */
import { queuedJob } from "./_job.ts";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { localGateway, rawExchange, statusOf } from "./_gateway.ts";
import { txt2img } from "./_helpers.ts";
import { freePort } from "../helpers/net.ts";
import type { Job } from "../../src/serve/types.ts";

const TOKEN = "guard-test-token";
/** A backend nothing listens on: stored jobs wait for it, queued, instead of failing. */
const DOWN_BACKEND = `[[backend]]\nid = "down"\nhost = "127.0.0.1"\nport = ${freePort()}\n`;
const bearer = { authorization: `Bearer ${TOKEN}` };

/** A queued job put straight into the store (no backend needed). */
function storedJob(id: string): Job {
  return {
    ...queuedJob(id, Date.now(), [["seed", "1"]]),
    workflow: txt2img(),
    promptId: crypto.randomUUID(),
    clientId: "c",
  };
}

Deno.test("a text/plain POST (no CORS preflight) is refused with 415 and queues nothing", async () => {
  const { gw, close } = await localGateway();
  try {
    const r = await fetch(`${gw.url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ workflow: txt2img() }),
    });
    assertEquals(r.status, 415);
    assertMatch((await r.json()).error, /application\/json/);
    assertEquals(gw.store.list().length, 0);
  } finally {
    await close();
  }
});

Deno.test("a request with a foreign Host is refused with 421; --allow-host names are served", async () => {
  const { gw, close } = await localGateway({ allowHosts: ["gov.example.test"] });
  try {
    const ask = (host: string) =>
      rawExchange(
        gw.port,
        `GET /v1/jobs HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      );
    const evil = await ask(`rebind.example.test:${gw.port}`);
    assertEquals(statusOf(evil.text), 421, evil.text);
    assertMatch(evil.text, /--allow-host/);
    for (const host of [`127.0.0.1:${gw.port}`, `localhost:${gw.port}`, "gov.example.test"]) {
      const ok = await ask(host);
      assertEquals(statusOf(ok.text), 200, `${host}: ${ok.text}`);
    }
  } finally {
    await close();
  }
});

Deno.test("a cross-origin or other-port request that changes state is refused with 403", async () => {
  const { gw, close } = await localGateway({ backendsToml: DOWN_BACKEND });
  try {
    gw.store.create(storedJob("j1"));
    const foreign: Record<string, string>[] = [
      { origin: "http://evil.example.test" },
      // ComfyUI's own page on another port of the same host.
      { origin: `http://127.0.0.1:8188` },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
      { origin: "null" },
    ];
    for (const h of foreign) {
      const post = await fetch(`${gw.url}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json", ...h },
        body: JSON.stringify({ workflow: txt2img() }),
      });
      assertEquals(post.status, 403, JSON.stringify(h));
      await post.body?.cancel();
      const del = await fetch(`${gw.url}/v1/jobs/j1`, { method: "DELETE", headers: h });
      assertEquals(del.status, 403, JSON.stringify(h));
      await del.body?.cancel();
    }
    assertEquals(gw.store.get("j1")?.state, "queued");
    assertEquals(gw.store.list().length, 1);
    // The gateway's own page may.
    const own = await fetch(`${gw.url}/v1/jobs/j1`, {
      method: "DELETE",
      headers: { origin: gw.url, "sec-fetch-site": "same-origin" },
    });
    assertEquals(own.status, 200);
    assertEquals((await own.json()).state, "cancelled");
  } finally {
    await close();
  }
});

Deno.test("the session cookie expires and is no credential from another port or without Origin", async () => {
  const { gw, close } = await localGateway({ token: TOKEN, backendsToml: DOWN_BACKEND });
  try {
    gw.store.create(storedJob("j1"));
    const page = await fetch(`${gw.url}/?token=${TOKEN}`);
    await page.body?.cancel();
    const setCookie = page.headers.get("set-cookie") ?? "";
    assertMatch(setCookie, /Max-Age=\d+/);
    const cookie = { cookie: setCookie.split(";")[0] };
    // Same origin: the page, its feed and its links work.
    const list = await fetch(`${gw.url}/v1/jobs`, {
      headers: { ...cookie, "sec-fetch-site": "same-origin" },
    });
    assertEquals(list.status, 200);
    await list.body?.cancel();
    // From ComfyUI's page on :8188 the browser sends the same cookie: not enough.
    const cross = await fetch(`${gw.url}/v1/jobs`, {
      headers: { ...cookie, "sec-fetch-site": "same-site" },
    });
    assertEquals(cross.status, 401);
    await cross.body?.cancel();
    // A state change on the cookie alone needs the gateway's own Origin.
    const bare = await fetch(`${gw.url}/v1/jobs/j1`, { method: "DELETE", headers: cookie });
    assertEquals(bare.status, 401);
    await bare.body?.cancel();
    assertEquals(gw.store.get("j1")?.state, "queued");
    const own = await fetch(`${gw.url}/v1/jobs/j1`, {
      method: "DELETE",
      headers: { ...cookie, origin: gw.url },
    });
    assertEquals(own.status, 200);
    await own.body?.cancel();
  } finally {
    await close();
  }
});

Deno.test("?token= works on HEAD as on GET, and never on a POST", async () => {
  const { gw, close } = await localGateway({ token: TOKEN });
  try {
    const head = await fetch(`${gw.url}/v1/jobs?token=${TOKEN}`, { method: "HEAD" });
    assertEquals(head.status, 200);
    const get = await fetch(`${gw.url}/v1/jobs?token=${TOKEN}`);
    assertEquals(get.status, 200);
    await get.body?.cancel();
    const post = await fetch(`${gw.url}/v1/jobs?token=${TOKEN}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ workflow: txt2img() }),
    });
    assertEquals(post.status, 401);
    await post.body?.cancel();
  } finally {
    await close();
  }
});

Deno.test("/healthz answers GET and HEAD only: 405 with Allow otherwise", async () => {
  const { gw, close } = await localGateway({ token: TOKEN });
  try {
    const ok = await fetch(`${gw.url}/healthz`);
    assertEquals(ok.status, 200);
    await ok.body?.cancel();
    for (const method of ["POST", "DELETE", "PUT"]) {
      const r = await fetch(`${gw.url}/healthz`, {
        method,
        headers: { "content-type": "application/json" },
        body: method === "DELETE" ? undefined : "{}",
      });
      assertEquals(r.status, 405, method);
      assertEquals(r.headers.get("allow"), "GET, HEAD");
      await r.body?.cancel();
    }
    const jobs = await fetch(`${gw.url}/v1/jobs`, { method: "PUT", headers: bearer });
    assertEquals(jobs.status, 405);
    assertEquals(jobs.headers.get("allow"), "GET, POST, HEAD");
    await jobs.body?.cancel();
  } finally {
    await close();
  }
});

Deno.test("a malformed percent-encoding in a job id is 400, not 500", async () => {
  const { gw, close } = await localGateway();
  try {
    for (const path of ["/v1/jobs/%E0%A4%A", "/v1/jobs/%E0%A4%A/events", "/v1/jobs/%ZZ"]) {
      const r = await fetch(`${gw.url}${path}`);
      assertEquals(r.status, 400, path);
      assertMatch((await r.json()).error, /percent-encoding/);
    }
  } finally {
    await close();
  }
});

Deno.test("JSON nested 100,000 deep is 400 naming the limit, not a stack overflow", async () => {
  const { gw, close } = await localGateway();
  try {
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    const r = await fetch(`${gw.url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: `{"workflow": {"3": {"class_type": "KSampler", "inputs": {"seed": ${deep}}}}}`,
    });
    assertEquals(r.status, 400);
    const body = await r.json();
    assertMatch(body.error, /nests deeper than the limit of \d+ levels/);
    assertTrue(!/stack/i.test(body.error));
  } finally {
    await close();
  }
});

Deno.test("the sign-in form sends the token as a header and gets the session cookie", async () => {
  const { gw, close } = await localGateway({ token: TOKEN });
  try {
    const form = await fetch(`${gw.url}/`, { headers: { accept: "text/html" } });
    assertEquals(form.status, 401);
    const html = await form.text();
    assertMatch(html, /Authorization: "Bearer " \+ token/);
    const page = await fetch(`${gw.url}/`, { headers: { ...bearer, accept: "text/html" } });
    assertEquals(page.status, 200);
    await page.body?.cancel();
    assertMatch(page.headers.get("set-cookie") ?? "", /^gov_serve_session=[0-9a-f]{64};/);
  } finally {
    await close();
  }
});
