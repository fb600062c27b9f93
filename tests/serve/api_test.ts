/**
 * `gov serve` end to end: a job's life over the HTTP API against real fake-ComfyUI
 * backends, its event stream, its output, metrics, the status page and input errors.
 */
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { api, newLab, prometheusProblems, startServe, txt2img, waitJob } from "./_helpers.ts";
import { parseSse } from "../../src/serve/client.ts";

Deno.test("gov serve runs a job: SSE in order, PNG output, metrics, status page", async () => {
  const lab = await newLab();
  try {
    await lab.addBackend("a");
    const gov = await startServe(lab);
    const created = await api(gov, "POST", "/v1/jobs", {
      workflow: txt2img(),
      set: { seed: 7, steps: 12 },
    });
    assertEquals(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    assertMatch(created.body.state, /^(queued|dispatched)$/);

    // The event stream replays history, then streams live, then closes after the end.
    const res = await fetch(`${gov.url}/v1/jobs/${id}/events`);
    assertEquals(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const types: string[] = [];
    const seqs: number[] = [];
    for await (const e of parseSse(res.body!)) {
      types.push(e.event);
      seqs.push(Number(e.id));
    }
    const order = types.filter((t) => t !== "progress" && t !== "executed");
    assertEquals(order, ["queued", "dispatched", "accepted", "running", "completed"]);
    assertTrue(types.includes("progress"), `no progress event in ${types}`);
    assertEquals([...seqs].sort((a, b) => a - b), seqs, "event ids increase");

    const job = await waitJob(gov, id, ["completed"]);
    assertEquals(job.backend, "a");
    assertEquals(job.attempts, 1);
    assertEquals(job.sets, [["seed", "7"], ["steps", "12"]]);
    assertEquals(job.outputs.length, 1);
    assertTrue(job.dispatch_ms >= 0);

    // The prompt that ran had the patched values.
    const full = await api(gov, "GET", `/v1/jobs/${id}?full=1`);
    assertEquals(full.body.prompt["3"].inputs.seed, 7);
    assertEquals(full.body.prompt["3"].inputs.steps, 12);

    const png = await fetch(`${gov.url}${job.outputs[0].url}`);
    assertEquals(png.status, 200);
    assertEquals(png.headers.get("content-type"), "image/png");
    const bytes = new Uint8Array(await png.arrayBuffer());
    assertEquals([...bytes.slice(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assertEquals((await api(gov, "GET", `/v1/jobs/${id}/outputs/5`)).status, 404);

    // Replaying a finished job's stream gives the same events and ends.
    const again = await fetch(`${gov.url}/v1/jobs/${id}/events`);
    const replay: string[] = [];
    for await (const e of parseSse(again.body!)) replay.push(e.event);
    assertEquals(replay, types);
    // A client that reconnects with Last-Event-ID gets only what it missed.
    const resumed = await fetch(`${gov.url}/v1/jobs/${id}/events`, {
      headers: { "last-event-id": String(seqs[2]) },
    });
    const rest: string[] = [];
    for await (const e of parseSse(resumed.body!)) rest.push(e.event);
    assertEquals(rest, types.slice(3));

    // The page's stream: a snapshot first, then every job change as it happens.
    const live = await fetch(`${gov.url}/v1/events`);
    assertEquals(live.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const feed = parseSse(live.body!);
    const first = (await feed.next()).value!;
    assertEquals(first.event, "snapshot");
    const snap = JSON.parse(first.data);
    assertEquals(snap.jobs.map((j: { id: string }) => j.id), [id]);
    assertEquals(snap.backends.map((b: { id: string; state: string }) => [b.id, b.state]), [
      ["a", "up"],
    ]);
    assertEquals(snap.counts.completed, 1);
    const next = await api(gov, "POST", "/v1/jobs", { workflow: txt2img("live") });
    const seen: string[] = [];
    for await (const e of feed) {
      if (e.event !== "job") continue;
      const d = JSON.parse(e.data);
      if (d.job.id !== next.body.id) continue;
      seen.push(d.event);
      if (d.event === "completed") break;
    }
    await live.body!.cancel();
    assertEquals(seen.filter((t) => t !== "progress" && t !== "executed"), [
      "queued",
      "dispatched",
      "accepted",
      "running",
      "completed",
    ]);

    const metrics = await fetch(`${gov.url}/metrics`);
    assertMatch(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await metrics.text();
    assertMatch(text, /^# TYPE gov_jobs_total counter$/m);
    assertMatch(text, /^gov_jobs_total\{state="completed"\} 2$/m);
    assertMatch(text, /^gov_jobs_in_queue 0$/m);
    assertMatch(text, /^gov_backend_up\{backend="a"\} 1$/m);
    assertMatch(text, /^gov_backend_queue_remaining\{backend="a"\} \d+$/m);
    assertMatch(text, /^# TYPE gov_dispatch_seconds histogram$/m);
    assertMatch(text, /^gov_dispatch_seconds_bucket\{le="\+Inf"\} 2$/m);
    assertMatch(text, /^gov_dispatch_seconds_count 2$/m);
    // The whole document is what a Prometheus scraper accepts.
    assertEquals(prometheusProblems(text), []);

    const page = await fetch(`${gov.url}/`);
    assertEquals(page.status, 200);
    assertMatch(page.headers.get("content-type") ?? "", /^text\/html/);
    const html = await page.text();
    assertMatch(html, /new EventSource\("\/v1\/events"\)/);
    assertTrue(!/<script[^>]+src=|<link[^>]+href=/i.test(html), "page is self-contained");

    const list = await api(gov, "GET", "/v1/jobs?state=completed&limit=5");
    assertEquals(list.body.jobs.map((j: { id: string }) => j.id), [next.body.id, id]);
    const backends = await api(gov, "GET", "/v1/backends");
    assertEquals(backends.body.backends[0].id, "a");
    assertEquals(backends.body.backends[0].state, "up");
    assertEquals("token" in backends.body.backends[0], false);

    assertEquals(await gov.stop(), 0);
    assertTrue(!(await Deno.stat(`${lab.ws}/.metadata/serve/server.json`).catch(() => null)));
  } finally {
    await lab.cleanup();
  }
});

Deno.test("gov serve answers bad input with 400 and the reason", async () => {
  const lab = await newLab();
  try {
    await lab.addBackend("a");
    const gov = await startServe(lab);
    const bad = async (body: unknown, re: RegExp) => {
      const r = await api(gov, "POST", "/v1/jobs", body);
      assertEquals(r.status, 400, JSON.stringify(r.body));
      assertMatch(r.body.error, re);
    };
    await bad("{not json", /not valid JSON/);
    await bad({ prompt: txt2img() }, /no 'workflow'/);
    await bad({ workflow: { hello: 1 } }, /not a ComfyUI workflow/);
    await bad({ workflow: txt2img(), set: { sead: 1 } }, /sead/);
    await bad({ workflow: txt2img(), set: { steps: 0 } }, /steps/);
    await bad({ workflow: txt2img(), set: [["sampler_name", "nope"]] }, /sampler_name/);
    await bad({ workflow: txt2img(), backend: "zz" }, /unknown backend 'zz'/);
    // Names are looked up as the prompt's own inputs, never inherited object properties.
    for (const key of ["3.constructor", "3.__proto__", "3.valueOf", "constructor", "toString"]) {
      await bad({ workflow: txt2img(), set: [[key, "1"]] }, /matches no node input|has no input/);
    }
    const proto = txt2img() as Record<string, { class_type: string }>;
    proto["3"].class_type = "constructor";
    await bad({ workflow: proto, set: [["3.seed", "1"]] }, /constructor/);
    assertEquals((await api(gov, "GET", "/v1/jobs?state=bogus")).status, 400);
    assertEquals((await api(gov, "GET", "/v1/jobs/nope")).status, 404);
    assertEquals((await api(gov, "DELETE", "/v1/jobs/nope")).status, 404);
    assertEquals((await api(gov, "PUT", "/v1/jobs")).status, 405);
    // Nothing was created by the refused requests.
    assertEquals((await api(gov, "GET", "/v1/jobs")).body.jobs.length, 0);
  } finally {
    await lab.cleanup();
  }
});
