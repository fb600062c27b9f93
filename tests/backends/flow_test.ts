/**
 * The seed's "backend flow" and "scheduler raises when no backends" tests, in spirit and
 * against real processes: register backends in the workspace registry, let the health
 * monitor find them up and learn what they can run, and schedule a prompt on the one that
 * fits. Running a prompt on a backend is client_test.ts's (end to end) and run_test.ts's
 * (in-process); placing and running jobs through the dispatcher is dispatcher_test.ts's.
 */
import { assertEquals, assertMatch, assertThrows, assertTrue } from "../helpers/assert.ts";
import { startFakeComfyUI } from "../helpers/fake_comfyui.ts";
import { addBackend, readBackends } from "../../src/backends/registry.ts";
import { HealthMonitor } from "../../src/backends/health.ts";
import { NoBackendError, selectBackend } from "../../src/backends/scheduler.ts";
import { promptRequirements } from "../../src/workflow/requirements.ts";
import { workspaceAt } from "../../src/workspace/root.ts";
import { txt2img } from "./_fixtures.ts";

Deno.test("flow: registered backends are probed up and the prompt goes where its model is", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gov-flow-" });
  const ws = workspaceAt(dir);
  const pc1 = await startFakeComfyUI();
  const pc2 = await startFakeComfyUI({
    env: {
      FAKE_COMFYUI_MODELS: JSON.stringify({ checkpoints: ["sdxl_base_1.0.safetensors"] }),
    },
  });
  let monitor: HealthMonitor | undefined;
  try {
    // No backends yet: the scheduler refuses with a named error (seed task 3).
    assertThrows(
      () => selectBackend(promptRequirements(txt2img()), [], []),
      NoBackendError,
      /no backends are configured/,
    );

    await addBackend(ws, { id: "b1", name: "PC1", host: "127.0.0.1", port: pc1.port });
    await addBackend(ws, { id: "b2", name: "PC2", host: "127.0.0.1", port: pc2.port });
    const backends = await readBackends(ws);
    monitor = new HealthMonitor(backends, { followStatus: false });
    await monitor.probeAll();
    // Seed task 1: the monitor run updates each backend's status.
    assertEquals(monitor.statuses().map((s) => [s.id, s.state]), [["b1", "up"], ["b2", "up"]]);

    const prompt = txt2img({ ckpt: "sdxl_base_1.0.safetensors", seed: 7 });
    const chosen = selectBackend(promptRequirements(prompt), backends, monitor.statuses());
    assertEquals(chosen.id, "b2");

    // Running it there is the client's part, proven end to end in client_test.ts.

    // A model no backend has: refused by both, each with its reason.
    const err = assertThrows(
      () =>
        selectBackend(
          promptRequirements(txt2img({ ckpt: "flux1-dev.safetensors" })),
          backends,
          monitor!.statuses(),
        ),
      NoBackendError,
    ) as NoBackendError;
    assertEquals(err.refusals.map((r) => r.backend), ["b1", "b2"]);
    assertMatch(
      err.message,
      /b1: missing model flux1-dev\.safetensors \(ckpt_name\); b2: missing model/,
    );

    // PC2 goes away: the same prompt has nowhere to go, and the error says why.
    await pc2.stop();
    await monitor.probeAll();
    await monitor.probeAll();
    const down = assertThrows(
      () => selectBackend(promptRequirements(prompt), backends, monitor!.statuses()),
      NoBackendError,
    ) as NoBackendError;
    assertEquals(down.refusals.map((r) => [r.backend, r.kind]), [
      ["b1", "missing_model"],
      ["b2", "down"],
    ]);
    assertTrue(down.retryable);
  } finally {
    await monitor?.stop();
    await pc1.stop();
    await pc2.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
