/**
 * Failover through `gov serve`, end to end with real processes: a backend killed mid-job is
 * marked down and the job completes on another one; a backend without `/ws` completes jobs
 * by polling `/history`; a prompt ComfyUI rejects or that fails while executing is not
 * retried; a gateway killed between its POST and the answer re-attaches and the prompt runs
 * once. The dispatcher's rules (failover on a monitor's "down", retry of a lost prompt,
 * cancel, queue timeout, every unknown POST outcome) are proven in-process, in
 * dispatcher_test.ts.
 */
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { waitFor } from "../helpers/net.ts";
import { parseSse } from "../../src/serve/client.ts";
import { TcpProxy } from "../backends/_proxy.ts";
import { api, backendHistory, newLab, startServe, txt2img, waitJob } from "./_helpers.ts";

Deno.test("a backend killed mid-job: the job completes on another one (attempts 2)", async () => {
  const lab = await newLab();
  try {
    const slow = { FAKE_COMFYUI_EXEC_SECONDS: "3" };
    await lab.addBackend("a", slow);
    await lab.addBackend("b", slow);
    const gov = await startServe(lab);
    const r = await api(gov, "POST", "/v1/jobs", { workflow: txt2img() });
    assertEquals(r.status, 201);
    const running = await waitJob(gov, r.body.id, ["running"]);
    const first = running.backend as string;
    const other = first === "a" ? "b" : "a";
    await lab.backends.get(first)!.stop();

    const done = await waitJob(gov, r.body.id, ["completed"], 60_000);
    assertEquals(done.backend, other);
    assertEquals(done.attempts, 2);
    assertEquals(done.outputs.length, 1);
    // The same prompt id ran on the second backend.
    assertTrue((await backendHistory(lab.backends.get(other)!)).includes(done.prompt_id));
    const backends = (await api(gov, "GET", "/v1/backends")).body.backends;
    assertEquals(backends.find((b: { id: string }) => b.id === first).state, "down");

    const events: { type: string; data: Record<string, unknown> }[] = [];
    const res = await fetch(`${gov.url}/v1/jobs/${r.body.id}/events`);
    for await (const e of parseSse(res.body!)) {
      events.push({ type: e.event, data: JSON.parse(e.data) });
    }
    const retry = events.find((e) => e.type === "retry");
    assertTrue(retry, `no retry event: ${events.map((e) => e.type)}`);
    assertEquals(retry.data.backend, first);
    const dispatched = events.filter((e) => e.type === "dispatched").map((e) => e.data.backend);
    assertEquals(dispatched, [first, other]);

    const metrics = await (await fetch(`${gov.url}/metrics`)).text();
    assertMatch(metrics, new RegExp(`^gov_backend_up\\{backend="${first}"\\} 0$`, "m"));
    assertMatch(metrics, /^gov_job_retries_total 1$/m);
  } finally {
    await lab.cleanup();
  }
});

Deno.test("jobs complete through /history polling on a backend without /ws", async () => {
  const lab = await newLab();
  try {
    await lab.addBackend("a", { FAKE_COMFYUI_NO_WS: "1" });
    const gov = await startServe(lab);
    const ws = await fetch(`${lab.backends.get("a")!.url}/ws?clientId=x`);
    assertEquals(ws.status, 404);
    await ws.body?.cancel();
    const r = await api(gov, "POST", "/v1/jobs", { workflow: txt2img() });
    const done = await waitJob(gov, r.body.id, ["completed"]);
    assertEquals(done.backend, "a");
    assertEquals(done.attempts, 1);
    assertEquals(done.outputs.length, 1);
    const png = await fetch(`${gov.url}${done.outputs[0].url}`);
    assertEquals(png.headers.get("content-type"), "image/png");
    await png.body?.cancel();
  } finally {
    await lab.cleanup();
  }
});

Deno.test("an execution error fails the job with ComfyUI's message and is not retried", async () => {
  const lab = await newLab();
  try {
    await lab.addBackend("a");
    await lab.addBackend("b");
    const gov = await startServe(lab);
    const r = await api(gov, "POST", "/v1/jobs", {
      workflow: txt2img("please FAKE_EXECUTION_ERROR now"),
    });
    assertEquals(r.status, 201);
    const failed = await waitJob(gov, r.body.id, ["failed"]);
    assertEquals(failed.attempts, 1);
    assertMatch(failed.error, /FAKE_EXECUTION_ERROR/);

    // A prompt the backend rejects (validation): fails at once with ComfyUI's reason.
    const wf = txt2img();
    (wf["3"] as { inputs: Record<string, unknown> }).inputs.model = ["5", 0];
    const bad = await api(gov, "POST", "/v1/jobs", { workflow: wf });
    assertEquals(bad.status, 201, JSON.stringify(bad.body));
    const rejected = await waitJob(gov, bad.body.id, ["failed"]);
    assertEquals(rejected.attempts, 1);
    assertMatch(rejected.error, /rejected the prompt/);
    assertMatch(rejected.error, /node 3 \(KSampler\)/);
  } finally {
    await lab.cleanup();
  }
});

Deno.test("gov serve killed between its POST and the answer re-attaches on restart; the prompt runs once", async () => {
  const lab = await newLab();
  const comfy = await lab.addBackend("a", { FAKE_COMFYUI_EXEC_SECONDS: "1" });
  // gov reaches the backend through a proxy that counts the POSTs reaching ComfyUI (which
  // runs every one of them, repeated prompt_id or not) and holds back their answers.
  const proxy = TcpProxy.start(comfy.port);
  try {
    await Deno.writeTextFile(
      `${lab.ws}/backends.toml`,
      `[[backend]]\nid = "a"\nhost = "127.0.0.1"\nport = ${proxy.port}\n`,
    );
    proxy.promptAnswers = "hold";
    const gov = await startServe(lab);
    const r = await api(gov, "POST", "/v1/jobs", { workflow: txt2img() });
    assertEquals(r.status, 201);
    assertTrue(await waitFor(() => proxy.promptPosts === 1, 30_000), gov.log());
    await gov.kill();

    proxy.promptAnswers = "deliver";
    const again = await startServe(lab);
    const done = await waitJob(again, r.body.id, ["completed"]);
    assertEquals(done.attempts, 1);
    assertEquals(done.outputs.length, 1);
    assertEquals(proxy.promptPosts, 1);
    assertTrue((await backendHistory(comfy)).includes(done.prompt_id));
    assertMatch(again.log(), new RegExp(`re-attaching to prompt ${done.prompt_id} on a`));
  } finally {
    await proxy.close();
    await lab.cleanup();
  }
});
