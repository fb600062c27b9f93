/**
 * Access control of `gov serve`: a non-loopback listen needs a token, and with a token
 * every route but /healthz answers 401 without it.
 */
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { gov } from "../helpers/gov.ts";
import { freePort } from "../helpers/net.ts";
import { api, newLab, startServe, txt2img, waitJob } from "./_helpers.ts";

Deno.test("gov serve refuses a non-loopback listen without a token (exit 2)", async () => {
  const lab = await newLab();
  try {
    const r = await gov(["serve", "--workspace", lab.ws, "--listen", `0.0.0.0:${freePort()}`], {
      timeoutMs: 60_000,
    });
    assertEquals(r.code, 2, r.stderr);
    assertMatch(r.stderr, /refusing to listen on 0\.0\.0\.0 without a token/);
    assertMatch(r.stderr, /--token/);
    const bad = await gov(["serve", "--workspace", lab.ws, "--listen", "nope:port"], {
      timeoutMs: 60_000,
    });
    assertEquals(bad.code, 2);
    assertMatch(bad.stderr, /--listen must be HOST:PORT/);
  } finally {
    await lab.cleanup();
  }
});

Deno.test("with a token every route but /healthz needs it", async () => {
  const lab = await newLab();
  try {
    await lab.addBackend("a");
    const token = "s3cret-token-for-tests";
    const g = await startServe(lab, [], { token });
    const auth = { authorization: `Bearer ${token}` };
    assertEquals((await api(g, "GET", "/healthz")).status, 200);
    for (
      const [method, path] of [
        ["GET", "/"],
        ["GET", "/v1/jobs"],
        ["GET", "/v1/backends"],
        ["GET", "/v1/events"],
        ["GET", "/metrics"],
        ["GET", "/v1/jobs/x/events"],
        ["DELETE", "/v1/jobs/x"],
      ]
    ) {
      const r = await api(g, method, path);
      assertEquals(r.status, 401, `${method} ${path}`);
      assertEquals(r.body.error, "missing or wrong bearer token");
    }
    assertEquals((await api(g, "POST", "/v1/jobs", { workflow: txt2img() })).status, 401);
    assertEquals(
      (await api(g, "GET", "/v1/jobs", undefined, { authorization: "Bearer wrong" })).status,
      401,
    );
    // Nothing was created by the refused POST.
    assertEquals((await api(g, "GET", "/v1/jobs", undefined, auth)).body.jobs.length, 0);

    const created = await api(g, "POST", "/v1/jobs", { workflow: txt2img() }, auth);
    assertEquals(created.status, 201);
    const done = await waitJob(g, created.body.id, ["completed"], 45_000, auth);
    // The status page bootstraps with ?token= and uses it for its event stream and links.
    const page = await fetch(`${g.url}/?token=${token}`);
    assertEquals(page.status, 200);
    await page.body?.cancel();
    // ... and sets a session cookie (not the token itself) so a reload keeps working.
    const setCookie = page.headers.get("set-cookie") ?? "";
    assertMatch(
      setCookie,
      /^gov_serve_session=[0-9a-f]{64}; Path=\/; Max-Age=43200; HttpOnly; SameSite=Strict$/,
    );
    assertTrue(!setCookie.includes(token), "the cookie carries the token");
    const session = { cookie: setCookie.split(";")[0] };
    const reload = await fetch(`${g.url}/`, { headers: session });
    assertEquals(reload.status, 200);
    assertMatch(await reload.text(), /new EventSource/);
    assertEquals((await api(g, "GET", "/v1/jobs", undefined, session)).status, 200);
    assertEquals(
      (await api(g, "GET", "/v1/jobs", undefined, {
        cookie: `gov_serve_session=${"0".repeat(64)}`,
      }))
        .status,
      401,
    );
    // A browser without the token gets a sign-in form (still 401), never the data.
    const html = { accept: "text/html,application/xhtml+xml" };
    const form = await fetch(`${g.url}/`, { headers: html });
    assertEquals(form.status, 401);
    const formHtml = await form.text();
    assertMatch(formHtml, /<form method="get" action="\/">/);
    assertTrue(!formHtml.includes("EventSource"), "the sign-in page holds the status page");
    const wrong = await fetch(`${g.url}/?token=nope`, { headers: html });
    assertEquals(wrong.status, 401);
    assertMatch(await wrong.text(), /not the right one/);
    assertEquals(wrong.headers.get("set-cookie"), null);
    const sse = await fetch(`${g.url}/v1/events?token=${token}`);
    assertEquals(sse.status, 200);
    await sse.body?.cancel();
    const png = await fetch(`${g.url}${done.outputs[0].url}?token=${token}`);
    assertEquals(png.status, 200);
    await png.body?.cancel();
    // A query token is for GETs only.
    assertEquals(
      (await api(g, "POST", `/v1/jobs?token=${token}`, { workflow: txt2img() })).status,
      401,
    );
  } finally {
    await lab.cleanup();
  }
});

Deno.test("gov serve takes its token from --token-file and warns that --token shows in ps", async () => {
  const lab = await newLab();
  try {
    const token = "file-token-for-tests";
    const file = `${lab.ws}/token`;
    await Deno.writeTextFile(file, `${token}\n`);
    const g = await startServe(lab, ["--token-file", file]);
    const cmdline = await Deno.readTextFile(`/proc/${g.process.pid}/cmdline`).catch(() => "");
    assertTrue(!cmdline.includes(token), "the token is on the command line");
    assertEquals((await api(g, "GET", "/v1/jobs")).status, 401);
    const auth = { authorization: `Bearer ${token}` };
    assertEquals((await api(g, "GET", "/v1/jobs", undefined, auth)).status, 200);
    assertTrue(!/warning: --token/.test(g.log()), g.log());
    await g.stop();
    const viaFlag = await startServe(lab, ["--token", token]);
    assertMatch(
      viaFlag.log(),
      /warning: --token is visible .* use --token-file FILE or GOV_SERVE_TOKEN/,
    );
    await viaFlag.stop();
    const help = await gov(["serve", "--help"], { timeoutMs: 60_000 });
    assertMatch(help.stdout, /--token-file FILE/);
    assertMatch(help.stdout, /GOV_SERVE_TOKEN/);
    assertMatch(help.stdout, /--allow-host NAME/);
    const both = await gov(
      ["serve", "--workspace", lab.ws, "--token", "x", "--token-file", file],
      { timeoutMs: 60_000 },
    );
    assertEquals(both.code, 2);
    assertMatch(both.stderr, /--token or --token-file, not both/);
  } finally {
    await lab.cleanup();
  }
});
