import { assertEquals, assertTrue } from "../helpers/assert.ts";
import { type FakeComfyUI, startFakeComfyUI } from "../helpers/fake_comfyui.ts";
import { freePort, waitFor } from "../helpers/net.ts";
import { REAL_WORKFLOWS_DIR } from "../helpers/paths.ts";
import { ComfyUIClient } from "../../src/backends/comfyui/mod.ts";
import { HealthMonitor } from "../../src/backends/health.ts";
import type { BackendConfig, BackendStatus } from "../../src/backends/types.ts";
import { newId, txt2img } from "./_fixtures.ts";

function cfg(id: string, port: number, extra: Partial<BackendConfig> = {}): BackendConfig {
  return { id, name: id, host: "127.0.0.1", port, weight: 1, tags: [], max_queue: 4, ...extra };
}

Deno.test("health: hysteresis marks a killed backend down after 2 failures, up after 2 successes, on the same port", async () => {
  const port = freePort();
  let comfy: FakeComfyUI | undefined = await startFakeComfyUI({ port });
  const monitor = new HealthMonitor([cfg("a", port)], {
    timeoutMs: 2000,
    downAfter: 2,
    upAfter: 2,
    followStatus: false,
  });
  try {
    const state = () => monitor.status("a")!;
    assertEquals(state().state, "unknown");
    await monitor.probeAll();
    assertEquals([state().state, state().successes], ["unknown", 1]);
    await monitor.probeAll();
    assertEquals(state().state, "up");
    assertEquals(state().capabilitiesAt !== undefined, true);
    assertEquals(state().models.ckpt_name, ["v1-5-pruned-emaonly.safetensors"]);

    await comfy.stop();
    await monitor.probeAll();
    // One failure is not enough to route around a backend.
    assertEquals([state().state, state().failures, state().lastError], [
      "up",
      1,
      "connection refused",
    ]);
    await monitor.probeAll();
    assertEquals([state().state, state().failures], ["down", 2]);

    // Back on the same port, with other models: the capabilities are learned again.
    comfy = await startFakeComfyUI({
      port,
      env: { FAKE_COMFYUI_MODELS: JSON.stringify({ checkpoints: ["sdxl.safetensors"] }) },
    });
    await monitor.probeAll();
    assertEquals([state().state, state().successes], ["down", 1]);
    await monitor.probeAll();
    assertEquals(state().state, "up");
    assertEquals(state().lastError, undefined);
    assertEquals(state().models.ckpt_name, ["sdxl.safetensors"]);
  } finally {
    await monitor.stop();
    await comfy?.stop();
  }
});

Deno.test("health: the running monitor follows a backend going away and coming back by itself", async () => {
  const port = freePort();
  let comfy: FakeComfyUI | undefined = await startFakeComfyUI({ port });
  const monitor = new HealthMonitor([cfg("a", port)], {
    intervalMs: 100,
    timeoutMs: 2000,
    downAfter: 2,
  });
  const seen: BackendStatus["state"][] = [];
  monitor.onChange((s) => {
    if (seen[seen.length - 1] !== s.state) seen.push(s.state);
  });
  try {
    monitor.start();
    assertTrue(await waitFor(() => monitor.status("a")?.state === "up", 20_000));
    await comfy.stop();
    assertTrue(await waitFor(() => monitor.status("a")?.state === "down", 20_000));
    comfy = await startFakeComfyUI({ port });
    assertTrue(await waitFor(() => monitor.status("a")?.state === "up", 20_000));
    assertEquals(seen, ["up", "down", "up"]);
  } finally {
    await monitor.stop();
    await comfy?.stop();
  }
});

Deno.test("health: capabilities, models, VRAM and version are learned from the backend", async () => {
  const comfy = await startFakeComfyUI({
    env: {
      FAKE_COMFYUI_MODELS: JSON.stringify({
        checkpoints: ["sd15.safetensors", "SDXL/base.safetensors"],
        loras: ["detail.safetensors"],
        vae: ["vae-ft-mse.safetensors"],
        upscale_models: ["4x-UltraSharp.pth"],
      }),
      FAKE_COMFYUI_OBJECT_INFO: `${REAL_WORKFLOWS_DIR}/object_info.json`,
      FAKE_COMFYUI_VRAM_TOTAL: String(8 * 1024 ** 3),
    },
  });
  const monitor = new HealthMonitor([cfg("a", comfy.port)], { followStatus: false });
  try {
    await monitor.probeAll();
    const s = monitor.status("a")!;
    assertEquals(s.state, "up");
    assertEquals(s.vram?.total, 8 * 1024 ** 3);
    assertTrue((s.vram?.free ?? -1) >= 0);
    assertTrue(typeof s.comfyuiVersion === "string" && s.comfyuiVersion.length > 0);
    // Classes of the real object_info are there next to the core ones.
    for (const c of ["KSampler", "SaveImage", "UpscaleModelLoader", "GLIGENLoader"]) {
      assertTrue(s.nodeClasses.includes(c), c);
    }
    assertEquals(Object.keys(monitor.objectInfo("a") ?? {}).length, s.nodeClasses.length);
    // Sampler names are COMBOs ending in _name too, but not models.
    assertEquals(s.models.sampler_name, undefined);
    assertTrue(s.models.vae_name !== undefined);
    assertTrue(s.models.lora_name !== undefined);
  } finally {
    await monitor.stop();
    await comfy.stop();
  }
});

Deno.test("health: queue depth follows /ws status messages between probes", async () => {
  const comfy = await startFakeComfyUI({ env: { FAKE_COMFYUI_EXEC_SECONDS: "30" } });
  // Probes far apart: any queue change seen below came over the socket.
  const monitor = new HealthMonitor([cfg("a", comfy.port)], { intervalMs: 600_000 });
  const queues: number[] = [];
  monitor.onChange((s) => queues.push(s.queueRemaining));
  try {
    monitor.start();
    assertTrue(await waitFor(() => monitor.status("a")?.state === "up", 20_000));
    const probedAt = monitor.status("a")!.lastProbeAt;
    assertTrue(await waitFor(() => monitor.status("a")?.statusSocket === true, 20_000));
    const client = new ComfyUIClient({ host: "127.0.0.1", port: comfy.port });
    const ids = [newId(), newId(), newId()];
    for (const [i, id] of ids.entries()) {
      await client.queuePrompt(txt2img({ seed: 100 + i }), { promptId: id, clientId: "x" });
    }
    assertTrue(await waitFor(() => monitor.status("a")?.queueRemaining === 3, 20_000));
    for (const id of ids) await client.cancel(id);
    assertTrue(await waitFor(() => monitor.status("a")?.queueRemaining === 0, 20_000));
    assertEquals(monitor.status("a")!.lastProbeAt, probedAt);
    assertTrue(queues.includes(3));
    await monitor.stop();
    assertEquals(monitor.status("a")?.statusSocket, false);
  } finally {
    await monitor.stop();
    await comfy.stop();
  }
});

Deno.test("health: markDown, adjustInFlight and setBackends", async () => {
  const a = await startFakeComfyUI();
  const b = await startFakeComfyUI();
  const monitor = new HealthMonitor([cfg("a", a.port)], {
    intervalMs: 100,
    timeoutMs: 2000,
    followStatus: false,
  });
  const changes: string[] = [];
  monitor.onChange((s) => changes.push(`${s.id}:${s.state}:${s.inFlight}`));
  try {
    await monitor.probeAll();
    assertEquals(monitor.status("a")?.state, "up");
    monitor.adjustInFlight("a", 2);
    monitor.adjustInFlight("a", -5);
    assertEquals(monitor.status("a")?.inFlight, 0);
    monitor.markDown("a", "connection reset while running job j1");
    assertEquals(monitor.status("a")?.state, "down");
    assertEquals(monitor.status("a")?.lastError, "connection reset while running job j1");
    assertTrue(changes.includes("a:down:0"));
    await monitor.probeAll();
    assertEquals(monitor.status("a")?.state, "up");

    monitor.start();
    monitor.setBackends([cfg("a", a.port, { weight: 3 }), cfg("b", b.port)]);
    assertEquals(monitor.status("a")?.state, "up");
    assertTrue(await waitFor(() => monitor.status("b")?.state === "up", 20_000));
    monitor.setBackends([cfg("b", b.port)]);
    assertEquals(monitor.status("a"), undefined);
    assertEquals(monitor.statuses().map((s) => s.id), ["b"]);
  } finally {
    await monitor.stop();
    await a.stop();
    await b.stop();
  }
});
