/**
 * Placement through `gov serve`: a busy backend is avoided, a job that needs a node or a
 * model only one backend has goes there, a prompt no backend can run is refused with each
 * backend's reason, and a job that can only wait for a down backend waits, then runs.
 */
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { waitFor } from "../helpers/net.ts";
import { parseSse } from "../../src/serve/client.ts";
import { api, newLab, startServe, txt2img, waitJob } from "./_helpers.ts";

Deno.test("gov serve avoids the busy backend and routes by node class and model", async () => {
  const lab = await newLab();
  try {
    const extraInfo = `${lab.ws}/extra_object_info.json`;
    await Deno.writeTextFile(
      extraInfo,
      JSON.stringify({
        SharpenSpecial: {
          input: { required: { image: ["IMAGE"], amount: ["FLOAT", { default: 1, min: 0 }] } },
          input_order: { required: ["image", "amount"] },
          output: ["IMAGE"],
          output_is_list: [false],
          output_name: ["IMAGE"],
          name: "SharpenSpecial",
          display_name: "Sharpen (special)",
          description: "",
          category: "image",
          output_node: false,
          python_module: "custom_nodes.special",
        },
      }),
    );
    const busy = await lab.addBackend("a", { FAKE_COMFYUI_EXEC_SECONDS: "4" });
    await lab.addBackend("b", {
      FAKE_COMFYUI_OBJECT_INFO: extraInfo,
      FAKE_COMFYUI_MODELS: JSON.stringify({
        checkpoints: ["v1-5-pruned-emaonly.safetensors", "special-xl.safetensors"],
      }),
    });
    const gov = await startServe(lab);

    // Someone else's work keeps backend a busy; gov must see it and use b.
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${busy.url}/prompt`, {
        method: "POST",
        body: JSON.stringify({ prompt: txt2img(`outside ${i}`) }),
      });
      assertEquals(r.status, 200);
    }
    assertTrue(
      await waitFor(async () => {
        const b = (await api(gov, "GET", "/v1/backends")).body.backends;
        return b.find((x: { id: string }) => x.id === "a").queue_remaining >= 1;
      }, 20_000),
      "gov never saw backend a's queue",
    );
    const plain = await api(gov, "POST", "/v1/jobs", { workflow: txt2img() });
    assertEquals(plain.status, 201, JSON.stringify(plain.body));
    assertEquals((await waitJob(gov, plain.body.id, ["completed"])).backend, "b");

    // A model only b has.
    const model = txt2img();
    const mJob = await api(gov, "POST", "/v1/jobs", {
      workflow: model,
      set: { ckpt_name: "special-xl.safetensors" },
    });
    assertEquals(mJob.status, 201, JSON.stringify(mJob.body));
    assertEquals((await waitJob(gov, mJob.body.id, ["completed"])).backend, "b");

    // A node class only b has.
    const node = txt2img();
    node["10"] = { class_type: "SharpenSpecial", inputs: { image: ["8", 0], amount: 0.5 } };
    (node["9"] as { inputs: Record<string, unknown> }).inputs.images = ["10", 0];
    const nJob = await api(gov, "POST", "/v1/jobs", { workflow: node });
    assertEquals(nJob.status, 201, JSON.stringify(nJob.body));
    assertEquals((await waitJob(gov, nJob.body.id, ["completed"])).backend, "b");

    // Neither has this node: refused at once, naming each backend's reason.
    const none = txt2img();
    none["11"] = { class_type: "NoSuchNode", inputs: {} };
    const refused = await api(gov, "POST", "/v1/jobs", { workflow: none });
    assertEquals(refused.status, 400);
    assertMatch(refused.body.error, /no backend can run this prompt/);
    const reasons = Object.fromEntries(
      refused.body.refusals.map((r: { backend: string; reason: string }) => [r.backend, r.reason]),
    );
    assertMatch(reasons.a, /missing node NoSuchNode/);
    assertMatch(reasons.b, /missing node NoSuchNode/);
    // A model nobody has, pinned to a: refused with a's reason.
    const pinned = await api(gov, "POST", "/v1/jobs", {
      workflow: txt2img(),
      set: { ckpt_name: "special-xl.safetensors" },
      backend: "a",
    });
    assertEquals(pinned.status, 400, JSON.stringify(pinned.body));
    assertMatch(pinned.body.error, /a: .*special-xl/);
  } finally {
    await lab.cleanup();
  }
});

Deno.test("gov serve keeps a job queued while the only capable backend is down", async () => {
  const lab = await newLab();
  try {
    await lab.addBackend("a");
    const models = JSON.stringify({ checkpoints: ["only-on-b.safetensors"] });
    const b = await lab.addBackend("b", { FAKE_COMFYUI_MODELS: models });
    const gov = await startServe(lab);
    await b.stop();
    assertTrue(
      await waitFor(async () => {
        const list = (await api(gov, "GET", "/v1/backends")).body.backends;
        return list.find((x: { id: string }) => x.id === "b").state === "down";
      }, 30_000),
    );
    const wf = txt2img();
    const r = await api(gov, "POST", "/v1/jobs", {
      workflow: wf,
      set: { ckpt_name: "only-on-b.safetensors" },
    });
    assertEquals(r.status, 201, JSON.stringify(r.body));
    // It waits, and says why.
    const waiting = await waitJob(gov, r.body.id, ["queued"]);
    assertTrue(
      await waitFor(async () => {
        const j = (await api(gov, "GET", `/v1/jobs/${r.body.id}`)).body;
        return j.state === "queued" && Array.isArray(j.refusals) && j.refusals.length === 2;
      }, 10_000),
      JSON.stringify(waiting),
    );
    const j = (await api(gov, "GET", `/v1/jobs/${r.body.id}`)).body;
    const reasons = Object.fromEntries(
      j.refusals.map((x: { backend: string; reason: string }) => [x.backend, x.reason]),
    );
    assertMatch(reasons.a, /missing model only-on-b/);
    assertMatch(reasons.b, /down/);

    // With a queue timeout the same wait ends: failed, naming every backend's reason.
    const impatient = await api(gov, "POST", "/v1/jobs", {
      workflow: wf,
      set: { ckpt_name: "only-on-b.safetensors" },
      queue_timeout: 1,
    });
    assertEquals(impatient.status, 201, JSON.stringify(impatient.body));
    assertEquals(impatient.body.queue_timeout_s, 1);
    const expired = await waitJob(gov, impatient.body.id, ["failed"], 30_000);
    assertMatch(expired.error, /^no backend took the job within the queue timeout \(1 s\): /);
    assertMatch(expired.error, /a: missing model only-on-b.*b: down/);
    assertEquals(expired.attempts, 0);
    const bad = await api(gov, "POST", "/v1/jobs", { workflow: wf, queue_timeout: -3 });
    assertEquals(bad.status, 400);
    assertMatch(bad.body.error, /queue_timeout must be seconds >= 0/);

    // b comes back on its port: the first job (no timeout) runs there.
    await lab.addBackend("b", { FAKE_COMFYUI_MODELS: models });
    const done = await waitJob(gov, r.body.id, ["completed"]);
    assertEquals(done.backend, "b");
    assertEquals(done.attempts, 1);
    // Its event stream told why it waited before it was dispatched.
    const events: { type: string; data: Record<string, unknown> }[] = [];
    const res = await fetch(`${gov.url}/v1/jobs/${r.body.id}/events`);
    for await (const e of parseSse(res.body!)) {
      events.push({ type: e.event, data: JSON.parse(e.data) });
    }
    const types = events.map((e) => e.type);
    assertEquals(types.filter((t) => t === "waiting").length, 1, types.join());
    assertTrue(types.indexOf("waiting") < types.indexOf("dispatched"), types.join());
    const waitEvent = events.find((e) => e.type === "waiting")!;
    assertMatch(String(waitEvent.data.reason), /^waiting for a backend: a: missing model/);
    assertEquals(
      (waitEvent.data.refusals as { backend: string; kind: string }[]).map((x) => x.kind),
      ["missing_model", "down"],
    );
  } finally {
    await lab.cleanup();
  }
});

Deno.test("a job accepted before any backend was seen fails once none can run it", async () => {
  const lab = await newLab();
  try {
    const a = await lab.addBackend("a");
    await a.stop();
    const gov = await startServe(lab);
    const wf = txt2img();
    wf["11"] = { class_type: "NoSuchNode", inputs: {} };
    // Nothing is known about a yet: the job may fit later, so it is accepted and waits.
    const r = await api(gov, "POST", "/v1/jobs", { workflow: wf });
    assertEquals(r.status, 201, JSON.stringify(r.body));
    assertEquals((await api(gov, "GET", `/v1/jobs/${r.body.id}`)).body.state, "queued");
    await lab.addBackend("a");
    const failed = await waitJob(gov, r.body.id, ["failed"]);
    assertEquals(failed.attempts, 0);
    assertMatch(failed.error, /no backend can run this prompt: a: missing node NoSuchNode/);
    assertEquals(failed.refusals.map((x: { backend: string }) => x.backend), ["a"]);
  } finally {
    await lab.cleanup();
  }
});
