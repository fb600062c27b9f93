import { assertEquals, assertMatch, assertRejects, assertTrue } from "../helpers/assert.ts";
import { startFakeComfyUI } from "../helpers/fake_comfyui.ts";
import { freePort, waitFor } from "../helpers/net.ts";
import {
  BackendUnreachableError,
  ComfyUIClient,
  PromptDetachedError,
  PromptRejectedError,
  type RunEvent,
} from "../../src/backends/comfyui/mod.ts";
import { GovError } from "../../src/errors.ts";
import { newId, PNG_SIGNATURE, txt2img } from "./_fixtures.ts";
import { TcpProxy } from "./_proxy.ts";

Deno.test("client: runs a prompt end to end over /ws with progress, outputs fetched via /view", async () => {
  const comfy = await startFakeComfyUI({
    env: { FAKE_COMFYUI_EXEC_SECONDS: "0.4", FAKE_COMFYUI_STEPS: "4" },
  });
  try {
    const client = new ComfyUIClient({ host: "127.0.0.1", port: comfy.port, id: "fake" });
    assertEquals(await client.probe(), { queueRemaining: 0 });
    const stats = await client.systemStats();
    assertTrue((stats.devices[0]?.vram_total ?? 0) > 0);
    const info = await client.objectInfo();
    assertTrue("KSampler" in info && "SaveImage" in info);

    const events: RunEvent[] = [];
    const promptId = newId();
    const r = await client.runPrompt(txt2img(), {
      promptId,
      clientId: newId(),
      onEvent: (e) => events.push(e),
    });
    assertEquals(r.status, "success");
    assertEquals(r.transport, "ws");
    assertEquals(r.promptId, promptId);
    assertEquals(r.outputs.length, 1);
    assertEquals(r.outputs[0].nodeId, "9");
    assertEquals(r.outputs[0].type, "output");
    assertMatch(r.outputs[0].filename, /^ComfyUI_\d{5}_\.png$/);

    assertEquals(events[0].type, "queued");
    const progress = events.filter((e) => e.type === "progress");
    assertEquals(progress.map((e) => e.type === "progress" ? [e.node, e.value, e.max] : []), [
      ["3", 1, 4],
      ["3", 2, 4],
      ["3", 3, 4],
      ["3", 4, 4],
    ]);
    assertTrue(events.some((e) => e.type === "executing" && e.node === "3"));
    assertTrue(events.some((e) => e.type === "executed" && e.node === "9"));

    const png = await client.view(r.outputs[0]);
    assertEquals([...png.subarray(0, 8)], PNG_SIGNATURE);
    const onDisk = await Deno.readFile(`${comfy.dir}/output/${r.outputs[0].filename}`);
    assertEquals(png, onDisk);

    // The same graph again is served from ComfyUI's cache: reported, and still succeeds.
    const again: RunEvent[] = [];
    const r2 = await client.runPrompt(txt2img(), {
      promptId: newId(),
      clientId: newId(),
      onEvent: (e) => again.push(e),
    });
    assertEquals(r2.status, "success");
    assertTrue(again.some((e) => e.type === "cached" && e.nodes.includes("3")));
  } finally {
    await comfy.stop();
  }
});

Deno.test("client: a backend whose /ws answers 404 still completes jobs by polling /history", async () => {
  const comfy = await startFakeComfyUI({
    env: { FAKE_COMFYUI_NO_WS: "1", FAKE_COMFYUI_EXEC_SECONDS: "1.5" },
  });
  try {
    const client = new ComfyUIClient({ host: "127.0.0.1", port: comfy.port });
    await assertRejects(() => client.connect("x", {}), BackendUnreachableError, /websocket/);
    const events: RunEvent[] = [];
    const r = await client.runPrompt(txt2img({ seed: 1 }), {
      promptId: newId(),
      clientId: newId(),
      pollIntervalMs: 100,
      onEvent: (e) => events.push(e),
    });
    assertEquals(r.status, "success");
    assertEquals(r.transport, "poll");
    assertEquals(r.outputs.map((o) => o.nodeId), ["9"]);
    assertEquals(events[0], { type: "queued", promptId: r.promptId, number: 0, transport: "poll" });
    // Without a socket, /queue is what tells that the prompt started executing.
    assertEquals(events.filter((e) => e.type === "running"), [
      { type: "running", promptId: r.promptId },
    ]);
    assertEquals([...(await client.view(r.outputs[0])).subarray(0, 8)], PNG_SIGNATURE);
  } finally {
    await comfy.stop();
  }
});

Deno.test("client: a socket dropped mid-job falls back to /history and the job completes", async () => {
  const comfy = await startFakeComfyUI({ env: { FAKE_COMFYUI_EXEC_SECONDS: "1.5" } });
  const proxy = TcpProxy.start(comfy.port);
  try {
    const client = new ComfyUIClient({ host: "127.0.0.1", port: proxy.port });
    const events: RunEvent[] = [];
    const run = client.runPrompt(txt2img({ seed: 2 }), {
      promptId: newId(),
      clientId: newId(),
      pollIntervalMs: 100,
      onEvent: (e) => events.push(e),
    });
    assertTrue(await waitFor(() => events.some((e) => e.type === "progress"), 20_000));
    assertEquals(proxy.dropWebSockets(), 1);
    const r = await run;
    assertEquals(r.status, "success");
    assertEquals(r.transport, "poll");
    assertEquals(r.outputs.length, 1);
  } finally {
    await proxy.close();
    await comfy.stop();
  }
});

Deno.test("client: a rejected prompt raises PromptRejectedError with ComfyUI's node errors", async () => {
  const comfy = await startFakeComfyUI();
  try {
    const client = new ComfyUIClient({ host: "127.0.0.1", port: comfy.port, id: "gpu1" });
    const bad = txt2img();
    bad["3"].inputs.steps = 100000;
    bad["4"].inputs.ckpt_name = "nope.safetensors";
    const err = await assertRejects(
      () => client.runPrompt(bad, { promptId: newId(), clientId: newId() }),
      PromptRejectedError,
    ) as PromptRejectedError;
    assertTrue(err instanceof GovError);
    assertEquals(err.error.type, "prompt_outputs_failed_validation");
    assertEquals(Object.keys(err.nodeErrors).sort(), ["3", "4"]);
    assertEquals(err.nodeErrors["3"].class_type, "KSampler");
    assertMatch(err.message, /^backend 'gpu1' \(http:\/\/127\.0\.0\.1:\d+\) rejected the prompt: /);
    assertMatch(err.message, /node 3 \(KSampler\): [^;]*steps/);
    assertMatch(err.message, /node 4 \(CheckpointLoaderSimple\): [^;]*nope\.safetensors/);

    const unknown = { ...txt2img(), "10": { class_type: "NoSuchNode", inputs: {} } };
    await assertRejects(
      () => client.queuePrompt(unknown, { promptId: newId(), clientId: "c" }),
      PromptRejectedError,
      /NoSuchNode/,
    );
    // Nothing was queued by either attempt.
    assertEquals((await client.queue()).pending, []);
    assertEquals(await client.probe(), { queueRemaining: 0 });
  } finally {
    await comfy.stop();
  }
});

Deno.test("client: an execution error ends the job with status error and ComfyUI's exception", async () => {
  const comfy = await startFakeComfyUI({ env: { FAKE_COMFYUI_EXEC_SECONDS: "0.2" } });
  try {
    const client = new ComfyUIClient({ host: "127.0.0.1", port: comfy.port });
    const r = await client.runPrompt(txt2img({ text: "FAKE_EXECUTION_ERROR please" }), {
      promptId: newId(),
      clientId: newId(),
    });
    assertEquals(r.status, "error");
    assertEquals(r.transport, "ws");
    assertEquals(r.error?.nodeId, "6");
    assertEquals(r.error?.nodeType, "CLIPTextEncode");
    assertMatch(r.error?.message ?? "", /FAKE_EXECUTION_ERROR found in the prompt text/);
    assertMatch(r.error?.exceptionType ?? "", /FakeExecutionError/);
  } finally {
    await comfy.stop();
  }
});

Deno.test("client: cancel deletes a pending prompt and interrupts the running one", async () => {
  const comfy = await startFakeComfyUI({ env: { FAKE_COMFYUI_EXEC_SECONDS: "20" } });
  try {
    const client = new ComfyUIClient({ host: "127.0.0.1", port: comfy.port });
    const running = newId();
    const events: RunEvent[] = [];
    const run = client.runPrompt(txt2img({ seed: 11 }), {
      promptId: running,
      clientId: newId(),
      onEvent: (e) => events.push(e),
    });
    assertTrue(await waitFor(() => events.some((e) => e.type === "executing"), 20_000));
    const pending = newId();
    await client.queuePrompt(txt2img({ seed: 12 }), { promptId: pending, clientId: "other" });
    assertEquals(await client.locate(pending), "pending");
    assertEquals(await client.locate(running), "running");

    assertEquals(await client.cancel(pending), { deleted: true, interrupted: false });
    assertEquals(await client.locate(pending), undefined);

    assertEquals(await client.cancel(running), { deleted: false, interrupted: true });
    const r = await run;
    assertEquals(r.status, "interrupted");
    assertEquals((await client.history(running))?.status?.status_str, "error");
    assertEquals(await client.probe(), { queueRemaining: 0 });
  } finally {
    await comfy.stop();
  }
});

Deno.test("client: aborting runPrompt's signal cancels the prompt on the backend", async () => {
  const comfy = await startFakeComfyUI({ env: { FAKE_COMFYUI_EXEC_SECONDS: "20" } });
  try {
    const client = new ComfyUIClient({ host: "127.0.0.1", port: comfy.port });
    const ac = new AbortController();
    const events: RunEvent[] = [];
    const promptId = newId();
    const run = client.runPrompt(txt2img({ seed: 21 }), {
      promptId,
      clientId: newId(),
      signal: ac.signal,
      onEvent: (e) => events.push(e),
    });
    assertTrue(await waitFor(() => events.some((e) => e.type === "executing"), 20_000));
    ac.abort();
    const r = await run;
    assertEquals(r.status, "interrupted");
    assertTrue(await waitFor(async () => (await client.probe()).queueRemaining === 0, 10_000));
    assertTrue(await waitFor(async () => (await client.locate(promptId)) === "done", 10_000));
  } finally {
    await comfy.stop();
  }
});

Deno.test("client: a POST whose answer is lost or late is found on the backend and sent once", async () => {
  const comfy = await startFakeComfyUI({ env: { FAKE_COMFYUI_EXEC_SECONDS: "0.3" } });
  const proxy = TcpProxy.start(comfy.port);
  try {
    // The connection is cut as the answer comes back: gov looks, finds it, follows it.
    proxy.promptAnswers = "reset";
    const client = new ComfyUIClient({ host: "127.0.0.1", port: proxy.port, timeoutMs: 1500 });
    const lost = newId();
    const r = await client.runPrompt(txt2img({ seed: 31 }), {
      promptId: lost,
      clientId: newId(),
      noWebSocket: true,
      pollIntervalMs: 100,
    });
    assertEquals(r.status, "success");
    assertEquals(proxy.promptPosts, 1);

    // The answer never comes: the POST times out, and the same look finds the prompt.
    proxy.promptAnswers = "hold";
    const late = newId();
    const r2 = await client.runPrompt(txt2img({ seed: 32 }), {
      promptId: late,
      clientId: newId(),
      noWebSocket: true,
      pollIntervalMs: 100,
    });
    assertEquals(r2.status, "success");
    assertEquals(proxy.promptPosts, 2);

    // Attaching after it finished reads the result from /history without queueing again.
    proxy.promptAnswers = "deliver";
    const again = await client.runPrompt(txt2img({ seed: 31 }), {
      promptId: lost,
      clientId: newId(),
      attach: true,
    });
    assertEquals(again.outputs, r.outputs);
    assertEquals(proxy.promptPosts, 2);
    const history = await (await fetch(`${comfy.url}/history`)).json();
    assertEquals([lost, late].filter((id) => id in history), [lost, late]);
  } finally {
    await proxy.close();
    await comfy.stop();
  }
});

Deno.test("client: a backend killed mid-job raises BackendUnreachableError (the gateway fails over)", async () => {
  const comfy = await startFakeComfyUI({ env: { FAKE_COMFYUI_EXEC_SECONDS: "20" } });
  try {
    const client = new ComfyUIClient({ host: "127.0.0.1", port: comfy.port, timeoutMs: 2000 });
    const events: RunEvent[] = [];
    const run = client.runPrompt(txt2img({ seed: 41 }), {
      promptId: newId(),
      clientId: newId(),
      pollIntervalMs: 100,
      onEvent: (e) => events.push(e),
    });
    assertTrue(await waitFor(() => events.some((e) => e.type === "executing"), 20_000));
    await comfy.stop();
    await assertRejects(() => run, BackendUnreachableError, /connection refused/);
  } finally {
    await comfy.stop();
  }
});

Deno.test("client: a wedged backend (port open, no answers) times out as unreachable", async () => {
  const comfy = await startFakeComfyUI({ env: { FAKE_COMFYUI_EXEC_SECONDS: "20" } });
  try {
    const client = new ComfyUIClient({ host: "127.0.0.1", port: comfy.port, timeoutMs: 500 });
    const events: RunEvent[] = [];
    const run = client.runPrompt(txt2img({ seed: 51 }), {
      promptId: newId(),
      clientId: newId(),
      watchdogIntervalMs: 200,
      maxPollFailures: 2,
      onEvent: (e) => events.push(e),
    });
    assertTrue(await waitFor(() => events.some((e) => e.type === "executing"), 20_000));
    const hang = await fetch(`${comfy.url}/fake/hang`, { method: "POST", body: "{}" });
    await hang.body?.cancel();
    await assertRejects(() => run, BackendUnreachableError, /no answer within 500 ms/);
  } finally {
    await comfy.stop();
  }
});

Deno.test("client: detaching from a wedged backend ends the request in flight at once", async () => {
  const comfy = await startFakeComfyUI({ env: { FAKE_COMFYUI_EXEC_SECONDS: "30" } });
  try {
    // A request timeout far longer than this test may take: only the detach can end it.
    const client = new ComfyUIClient({ host: "127.0.0.1", port: comfy.port, timeoutMs: 300_000 });
    const events: RunEvent[] = [];
    const detach = new AbortController();
    const promptId = newId();
    let settled: unknown;
    const run = client.runPrompt(txt2img({ seed: 53 }), {
      promptId,
      clientId: newId(),
      watchdogIntervalMs: 100,
      detachSignal: detach.signal,
      onEvent: (e) => events.push(e),
    }).then((r) => settled = r, (err) => settled = err);
    assertTrue(await waitFor(() => events.some((e) => e.type === "executing"), 20_000));
    const hang = await fetch(`${comfy.url}/fake/hang`, { method: "POST", body: "{}" });
    await hang.body?.cancel();
    // Let a /history watchdog request get stuck on the wedged backend, then detach.
    await new Promise((r) => setTimeout(r, 500));
    detach.abort();
    assertTrue(await waitFor(() => settled !== undefined, 30_000), "runPrompt still waits");
    await run;
    assertTrue(settled instanceof PromptDetachedError, String(settled));
    assertEquals((settled as PromptDetachedError).promptId, promptId);
  } finally {
    await comfy.stop();
  }
});

Deno.test("client: nothing listening is 'connection refused'; the token is sent on HTTP and /ws", async () => {
  const port = freePort();
  const client = new ComfyUIClient({ host: "127.0.0.1", port, id: "gone" });
  const err = await assertRejects(
    () => client.probe(),
    BackendUnreachableError,
  ) as BackendUnreachableError;
  assertEquals(err.reason, "connection refused");
  assertMatch(err.message, /^backend 'gone' \(http:\/\/127\.0\.0\.1:\d+\) is unreachable/);

  const comfy = await startFakeComfyUI({ env: { FAKE_COMFYUI_EXEC_SECONDS: "0.1" } });
  const proxy = TcpProxy.start(comfy.port);
  try {
    const authed = new ComfyUIClient({ host: "127.0.0.1", port: proxy.port, token: "t0k3n" });
    const r = await authed.runPrompt(txt2img({ seed: 61 }), {
      promptId: newId(),
      clientId: newId(),
    });
    assertEquals(r.status, "success");
    // /ws and POST /prompt; no /history after a success the socket reported whole.
    assertTrue(proxy.heads.length >= 2);
    for (const head of proxy.heads) assertMatch(head, /^authorization: Bearer t0k3n$/im, head);
    assertTrue(proxy.heads.some((h) => /^GET \/ws\?clientId=/.test(h)));
    assertTrue(proxy.heads.some((h) => /^POST \/prompt /.test(h)));
  } finally {
    await proxy.close();
    await comfy.stop();
  }
});
