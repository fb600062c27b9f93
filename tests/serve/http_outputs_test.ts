/**
 * Outputs are files a workflow wrote, served on the gateway's origin: only images, video
 * and audio may render there, everything else downloads as opaque bytes, and nothing
 * served may run script or be sniffed into something that does.
 */
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { localGateway } from "./_gateway.ts";
import { txt2img } from "./_helpers.ts";
import type { Job } from "../../src/serve/types.ts";
import { statusPageHtml } from "../../src/serve/status_page.ts";

/** A stand-in backend whose /view answers each file with the type it claims. */
function stubBackend(types: Record<string, string>): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    if (url.pathname !== "/view") return new Response("not found", { status: 404 });
    const name = url.searchParams.get("filename") ?? "";
    const type = types[name];
    // Bytes, not a string: a string body would get a default text/plain type.
    return new Response(new TextEncoder().encode(`<svg onload="alert(1)"></svg> ${name}`), {
      headers: type ? { "content-type": type } : {},
    });
  });
}

function completedJob(id: string, files: string[]): Job {
  const now = Date.now();
  return {
    id,
    state: "completed",
    workflow: txt2img(),
    sets: [],
    prompt: null,
    pinnedBackend: null,
    backend: "stub",
    promptId: "p",
    clientId: "c",
    attempts: 1,
    maxAttempts: 3,
    error: null,
    refusals: null,
    outputs: files.map((f) => ({ nodeId: "9", filename: f, subfolder: "", type: "output" })),
    progress: null,
    failedBackends: [],
    queueTimeoutMs: null,
    createdAt: now,
    readyAt: now,
    dispatchedAt: now,
    queuedAt: now,
    startedAt: now,
    finishedAt: now,
    updatedAt: now,
  };
}

Deno.test("outputs: only image, video and audio render inline; the rest downloads as bytes", async () => {
  const files: Record<string, string> = {
    "a.png": "image/png",
    "b.svg": "image/svg+xml",
    "c.html": "text/html",
    "d.webm": "video/webm",
    "e.txt": "text/plain",
    // A backend that claims HTML for a .png does not make it render as HTML.
    "f.png": "text/html",
    "g.json": "application/json",
    "h.flac": "",
    'ünïcode "q".png': "image/png",
  };
  const backend = stubBackend(files);
  const { gw, close } = await localGateway({
    backendsToml: `[[backend]]\nid = "stub"\nhost = "127.0.0.1"\nport = ${backend.addr.port}\n`,
  });
  try {
    const names = Object.keys(files);
    gw.store.create(completedJob("j1", names));
    const expected: Record<string, [string, string]> = {
      "a.png": ["image/png", "inline"],
      "b.svg": ["application/octet-stream", "attachment"],
      "c.html": ["application/octet-stream", "attachment"],
      "d.webm": ["video/webm", "inline"],
      "e.txt": ["application/octet-stream", "attachment"],
      "f.png": ["application/octet-stream", "attachment"],
      "g.json": ["application/octet-stream", "attachment"],
      "h.flac": ["audio/flac", "inline"],
      'ünïcode "q".png': ["image/png", "inline"],
    };
    for (const [n, name] of names.entries()) {
      const r = await fetch(`${gw.url}/v1/jobs/j1/outputs/${n}`);
      await r.body?.cancel();
      assertEquals(r.status, 200, name);
      assertEquals(r.headers.get("content-type"), expected[name][0], name);
      assertMatch(r.headers.get("content-disposition") ?? "", new RegExp(`^${expected[name][1]};`));
      assertEquals(r.headers.get("x-content-type-options"), "nosniff", name);
      assertEquals(r.headers.get("content-security-policy"), "sandbox", name);
    }
    const odd = await fetch(`${gw.url}/v1/jobs/j1/outputs/8`);
    await odd.body?.cancel();
    assertMatch(
      odd.headers.get("content-disposition") ?? "",
      /filename\*=UTF-8''%C3%BCn%C3%AFcode%20%22q%22\.png$/,
    );
  } finally {
    await close();
    await backend.shutdown();
  }
});

Deno.test("the status page never puts the token in the links and streams it builds", () => {
  const html = statusPageHtml();
  assertTrue(
    !/withToken|[?&]token=/.test(html.replace(/params\.(get|has|delete)\("token"\)/g, "")),
  );
  assertMatch(html, /new EventSource\("\/v1\/events"\)/);
  assertMatch(html, /href: o\.url/);
});
