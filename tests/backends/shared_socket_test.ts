// One long-lived /ws per backend (shared_socket.ts): prompts queued under one client id are
// all followed over one socket, each hearing only its own events; a dropped socket is opened
// again by the next prompt; a backend without /ws is not asked again for every job.
import { assertEquals, assertTrue } from "../helpers/assert.ts";
import { startFakeComfyUI } from "../helpers/fake_comfyui.ts";
import { waitFor } from "../helpers/net.ts";
import {
  ComfyUIClient,
  ComfyUISocket,
  type PromptApi,
  type RunEvent,
  runPrompt,
  SharedSocket,
} from "../../src/backends/comfyui/mod.ts";
import { newId, txt2img } from "./_fixtures.ts";
import { TcpProxy } from "./_proxy.ts";
import { FakeBackend } from "./_fake_backend.ts";

const wsOpens = (p: TcpProxy) => p.heads.filter((h) => /^GET \/ws\?/.test(h)).length;

Deno.test("shared socket: prompts at once and one after another follow one /ws, each its own events", async () => {
  const comfy = await startFakeComfyUI({
    env: { FAKE_COMFYUI_EXEC_SECONDS: "0.1", FAKE_COMFYUI_STEPS: "2" },
  });
  const proxy = TcpProxy.start(comfy.port);
  const client = new ComfyUIClient({ host: "127.0.0.1", port: proxy.port, id: "fake" });
  const shared = new SharedSocket(client, `gov-${newId()}`);
  try {
    const run = async () => {
      const promptId = newId();
      const events: RunEvent[] = [];
      const r = await runPrompt(shared.api(client), txt2img({ seed: Math.random() * 1e9 }), {
        promptId,
        clientId: shared.clientId,
        onEvent: (e) => events.push(e),
      });
      return { promptId, r, events };
    };
    const runs = await Promise.all([run(), run()]);
    runs.push(await run());
    for (const { promptId, r, events } of runs) {
      assertEquals([r.status, r.transport, r.outputs.length], ["success", "ws", 1]);
      assertTrue(events.some((e) => e.type === "progress"), JSON.stringify(events));
      assertTrue(events.every((e) => e.promptId === promptId), "only its own events");
    }
    assertEquals(wsOpens(proxy), 1, proxy.heads.join("\n"));
    assertEquals(proxy.openWebSockets(), 1, "the socket stays open between prompts");

    // The backend drops the socket (a restart, a proxy): the next prompt opens it again.
    assertEquals(proxy.dropWebSockets(), 1);
    assertTrue(await waitFor(() => !shared.isOpen, 5000, 5), "the drop reaches the client");
    const again = await run();
    assertEquals([again.r.status, again.r.transport], ["success", "ws"]);
    assertEquals(wsOpens(proxy), 2);
  } finally {
    await shared.close();
    await proxy.close();
    await comfy.stop();
  }
});

Deno.test("shared socket: a backend without /ws is polled, and its socket not retried per job", async () => {
  const b = new FakeBackend("a");
  let connects = 0;
  const counting = Object.assign(Object.create(b), {
    connect: (...args: Parameters<FakeBackend["connect"]>) => {
      connects++;
      return b.connect(...args);
    },
  });
  const shared = new SharedSocket(counting, "gov-test", 60_000);
  for (const promptId of ["p1", "p2", "p3"]) {
    const r = await runPrompt(shared.api(b), txt2img(), {
      promptId,
      clientId: shared.clientId,
      pollIntervalMs: 1,
    });
    assertEquals([r.status, r.transport], ["success", "poll"]);
    assertEquals(b.executions(promptId), 1);
  }
  assertEquals(connects, 1);
  await shared.close();
});

Deno.test("run: a success the socket saw whole needs no /history; a cached output node leaves it to /history", async () => {
  const comfy = await startFakeComfyUI({
    env: { FAKE_COMFYUI_EXEC_SECONDS: "0.05", FAKE_COMFYUI_STEPS: "1" },
  });
  const client = new ComfyUIClient({ host: "127.0.0.1", port: comfy.port, id: "fake" });
  let historyCalls = 0;
  const counting: PromptApi = {
    label: client.label,
    baseUrl: client.baseUrl,
    queuePrompt: (p, o) => client.queuePrompt(p, o),
    history: (id) => {
      historyCalls++;
      return client.history(id);
    },
    locate: (id) => client.locate(id),
    cancel: (id) => client.cancel(id),
    connect: (c, h, t) => client.connect(c, h, t),
    withSignal: (s) => client.withSignal(s),
  };
  try {
    const prompt = txt2img({ seed: 4242 });
    const first = await runPrompt(counting, prompt, { promptId: newId(), clientId: newId() });
    assertEquals([first.status, first.transport, first.outputs.length], ["success", "ws", 1]);
    assertEquals(first.outputs[0].nodeId, "9");
    assertEquals(historyCalls, 0);
    // The same prompt again: ComfyUI serves every node from its cache, the image-saving
    // node too; its outputs come from /history.
    const again = await runPrompt(counting, prompt, { promptId: newId(), clientId: newId() });
    assertEquals([again.status, again.outputs.length], ["success", 1]);
    assertEquals(again.outputs[0].filename, first.outputs[0].filename);
    const asked = historyCalls;
    assertTrue(asked >= 1);
    // Another seed: the loader and the text encoders come from the cache, but they feed
    // other nodes; the image is made anew and reported over the socket.
    const other = await runPrompt(counting, txt2img({ seed: 4243 }), {
      promptId: newId(),
      clientId: newId(),
    });
    assertEquals([other.status, other.transport, other.outputs.length], ["success", "ws", 1]);
    assertEquals(historyCalls, asked);
  } finally {
    await comfy.stop();
  }
});

Deno.test("socket: progress_state frames are dropped unparsed; every other message arrives", async () => {
  const comfy = await startFakeComfyUI({
    env: { FAKE_COMFYUI_EXEC_SECONDS: "0", FAKE_COMFYUI_STEPS: "2" },
  });
  const client = new ComfyUIClient({ host: "127.0.0.1", port: comfy.port, id: "fake" });
  const clientId = `gov-${newId()}`;
  const url = `ws://127.0.0.1:${comfy.port}/ws?clientId=${clientId}`;
  // A plain WebSocket first runs a prompt of its own: the backend does send progress_state.
  const raw: string[] = [];
  const plain = new WebSocket(`ws://127.0.0.1:${comfy.port}/ws?clientId=${clientId}-raw`);
  await new Promise((r) => plain.onopen = r);
  const plainClosed = new Promise((r) => plain.onclose = r);
  plain.onmessage = (m) => typeof m.data === "string" && raw.push(JSON.parse(m.data).type);
  await client.queuePrompt(txt2img({ seed: 6 }), {
    promptId: newId(),
    clientId: `${clientId}-raw`,
  });
  assertTrue(await waitFor(() => raw.includes("execution_success"), 10_000, 5), raw.join());
  assertTrue(raw.includes("progress_state"), raw.join());
  const seen: string[] = [];
  let done = () => {};
  const ended = new Promise<void>((r) => done = r);
  const socket = await ComfyUISocket.open(
    url,
    {},
    {
      onMessage: (m) => {
        seen.push(m.type);
        if (m.type === "execution_success") done();
      },
    },
    5000,
    "fake",
  );
  try {
    // The server sends `status` once it has registered this client id: events of a prompt
    // queued before that would go to no socket (as in ComfyUI).
    assertTrue(await waitFor(() => seen.includes("status"), 10_000, 5), seen.join());
    const promptId = newId();
    await client.queuePrompt(txt2img({ seed: 7 }), { promptId, clientId });
    // Bounded: a lost event fails the test instead of hanging the suite.
    let finished = false;
    ended.then(() => finished = true);
    assertTrue(await waitFor(() => finished, 20_000, 5), seen.join());
    assertTrue(seen.includes("progress") && seen.includes("executed"), seen.join());
    assertEquals(seen.filter((t) => t === "progress_state"), []);
  } finally {
    plain.close();
    await plainClosed;
    await socket.close();
    await comfy.stop();
  }
});
