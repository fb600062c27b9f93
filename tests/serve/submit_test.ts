/**
 * `gov submit`: through a running `gov serve` (found via server.json), and in-process
 * against the workspace's backends when no gateway runs; UI workflows converted with the
 * backends' node definitions; bad input exits 2 with the reason.
 */
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { gov } from "../helpers/gov.ts";
import { REAL_WORKFLOWS_DIR } from "../helpers/paths.ts";
import { waitFor } from "../helpers/net.ts";
import { api, newLab, startServe, txt2img, waitJob } from "./_helpers.ts";

const MODELS = JSON.stringify({
  checkpoints: ["v1-5-pruned-emaonly.safetensors", "v1-5-pruned-emaonly-fp16.safetensors"],
});

Deno.test("gov submit goes through gov serve: --wait prints progress and outputs", async () => {
  const lab = await newLab();
  try {
    await lab.addBackend("a", { FAKE_COMFYUI_MODELS: MODELS });
    // b is configured but down: a job only b could run waits for it.
    await (await lab.addBackend("b")).stop();
    const serve = await startServe(lab);
    const wf = `${lab.ws}/wf.json`;
    await Deno.writeTextFile(wf, JSON.stringify(txt2img()));

    const r = await gov([
      "submit",
      wf,
      "--set",
      "seed=11",
      "--set",
      "steps=5",
      "--wait",
      "--workspace",
      lab.ws,
    ], { timeoutMs: 90_000 });
    assertEquals(r.code, 0, r.stderr);
    const urls = r.stdout.trim().split("\n");
    assertEquals(urls.length, 1);
    assertMatch(urls[0], new RegExp(`^${serve.url}/v1/jobs/[^/]+/outputs/0$`));
    assertMatch(r.stderr, /dispatched to a \(attempt 1\)/);
    assertMatch(r.stderr, /progress \d+\/\d+ \d+% KSampler \(node 3\)/);
    assertMatch(r.stderr, /completed on a in [\d.]+ s: 1 output\(s\)/);
    const png = await fetch(urls[0]);
    assertEquals(png.headers.get("content-type"), "image/png");
    await png.body?.cancel();

    // --json without --wait: one JSON document, the job as the API shows it.
    const j = await gov(["submit", wf, "--json", "--workspace", lab.ws], { timeoutMs: 90_000 });
    assertEquals(j.code, 0, j.stderr);
    const job = JSON.parse(j.stdout);
    assertEquals(job.mode, "server");
    assertEquals(job.server, serve.url);
    assertMatch(job.state, /^(queued|dispatched|running)$/);
    await waitJob(serve, job.id, ["completed"]);

    // A UI workflow, converted by the gateway with the backend's node definitions.
    const ui = await gov([
      "submit",
      `${REAL_WORKFLOWS_DIR}/frontend_default.ui.json`,
      "--set",
      "KSampler.steps=4",
      "--wait",
      "--json",
      "--workspace",
      lab.ws,
    ], { timeoutMs: 90_000 });
    assertEquals(ui.code, 0, ui.stderr);
    const uiJob = JSON.parse(ui.stdout);
    assertEquals(uiJob.state, "completed");
    const full = await api(serve, "GET", `/v1/jobs/${uiJob.id}?full=1`);
    const sampler = Object.values(full.body.prompt).find((n) =>
      (n as { class_type: string }).class_type === "KSampler"
    ) as { inputs: Record<string, unknown> };
    assertEquals(sampler.inputs.steps, 4);

    // A job no backend up can take: --wait says why it waits, the queue timeout ends it.
    const stuck = await gov([
      "submit",
      wf,
      "--set",
      "ckpt_name=v1-5-pruned-emaonly.safetensors",
      "--backend",
      "b",
      "--queue-timeout",
      "1",
      "--wait",
      "--workspace",
      lab.ws,
    ], { timeoutMs: 90_000 });
    assertEquals(stuck.code, 1, stuck.stderr);
    assertEquals(stuck.stdout, "");
    assertMatch(stuck.stderr, /waiting for a backend:\n {4}b: (down|not probed)/);
    assertMatch(
      stuck.stderr,
      /error: job \S+ failed: no backend took the job within the queue timeout \(1 s\): b: /,
    );
    assertEquals(stuck.stderr.match(/queue timeout/g)?.length, 1, stuck.stderr);

    // Bad input: exit 2, the reason on stderr, nothing on stdout.
    const bad = await gov(["submit", wf, "--set", "steps=100000", "--workspace", lab.ws], {
      timeoutMs: 90_000,
    });
    assertEquals(bad.code, 2, bad.stderr);
    assertEquals(bad.stdout, "");
    assertMatch(bad.stderr, /steps/);
  } finally {
    await lab.cleanup();
  }
});

Deno.test("gov submit runs in-process when no gov serve is reachable", async () => {
  const lab = await newLab();
  try {
    const a = await lab.addBackend("a");
    const wf = `${lab.ws}/wf.json`;
    await Deno.writeTextFile(wf, JSON.stringify(txt2img()));
    const r = await gov(["submit", wf, "--wait", "--json", "--workspace", lab.ws], {
      timeoutMs: 90_000,
    });
    assertEquals(r.code, 0, r.stderr);
    const job = JSON.parse(r.stdout);
    assertEquals(job.mode, "local");
    assertEquals(job.state, "completed");
    assertEquals(job.backend, "a");
    assertTrue(job.outputs[0].url.startsWith(`${a.url}/view?`), job.outputs[0].url);
    const png = await fetch(job.outputs[0].url);
    assertEquals(png.headers.get("content-type"), "image/png");
    await png.body?.cancel();
    // Nothing was written to the gateway's store by an in-process run.
    assertTrue(!(await Deno.stat(`${lab.ws}/.metadata/serve/jobs.sqlite`).catch(() => null)));

    // A prompt no backend can run: exit 2 with each backend's reason.
    const none = txt2img();
    none["11"] = { class_type: "NoSuchNode", inputs: {} };
    await Deno.writeTextFile(wf, JSON.stringify(none));
    const refused = await gov(["submit", wf, "--workspace", lab.ws], { timeoutMs: 90_000 });
    assertEquals(refused.code, 2, refused.stderr);
    assertMatch(refused.stderr, /no backend can run this prompt/);
    assertMatch(refused.stderr, /^ {2}a: missing node NoSuchNode$/m);

    // Unreadable workflow: exit 2.
    await Deno.writeTextFile(wf, "{nope");
    const broken = await gov(["submit", wf, "--workspace", lab.ws], { timeoutMs: 90_000 });
    assertEquals(broken.code, 2);
    assertMatch(broken.stderr, /not valid JSON/);
  } finally {
    await lab.cleanup();
  }
});

Deno.test("gov submit --wait rides out a gov serve restart and says so", async () => {
  const lab = await newLab();
  try {
    await lab.addBackend("a", { FAKE_COMFYUI_EXEC_SECONDS: "4" });
    const first = await startServe(lab);
    const wf = `${lab.ws}/wf.json`;
    await Deno.writeTextFile(wf, JSON.stringify(txt2img("restart")));
    const submit = gov(["submit", wf, "--wait", "--workspace", lab.ws], { timeoutMs: 120_000 });
    let id = "";
    assertTrue(
      await waitFor(async () => {
        const jobs = (await api(first, "GET", "/v1/jobs")).body.jobs;
        id = jobs[0]?.id ?? "";
        return jobs[0]?.state === "running";
      }, 30_000),
      first.log(),
    );
    await first.kill();
    const second = await startServe(lab, [], { port: first.port });
    const r = await submit;
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, new RegExp(`^${second.url}/v1/jobs/${id}/outputs/0\\n$`));
    assertMatch(r.stderr, /lost the connection to gov serve/);
    assertMatch(r.stderr, /completed on a in [\d.]+ s: 1 output\(s\)/);
    assertEquals(r.stderr.match(/lost the connection/g)?.length, 1, r.stderr);
    assertMatch(second.log(), /re-attaching to prompt/);
  } finally {
    await lab.cleanup();
  }
});
