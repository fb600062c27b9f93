/**
 * Cancelling jobs (queued and running) and restarting `gov serve` with jobs in flight
 * (SIGKILL mid-job): nothing is lost and nothing runs twice.
 */
import { DatabaseSync } from "node:sqlite";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { gov as runGov } from "../helpers/gov.ts";
import { freePort, waitFor } from "../helpers/net.ts";
import { api, backendHistory, newLab, startServe, txt2img, waitJob } from "./_helpers.ts";

async function queueOf(url: string): Promise<string[]> {
  const q = await (await fetch(`${url}/queue`)).json();
  return [...q.queue_running, ...q.queue_pending].map((e: unknown[]) => String(e[1]));
}

Deno.test("one gateway per workspace; cancel a queued job at once, a running one on its backend", async () => {
  const lab = await newLab();
  try {
    const a = await lab.addBackend("a", { FAKE_COMFYUI_EXEC_SECONDS: "20" }, "max_queue = 1");
    const gov = await startServe(lab);
    // One gateway per workspace: a second one is refused, even without server.json.
    const serveArgs = ["serve", "--workspace", lab.ws, "--listen", `127.0.0.1:${freePort()}`];
    const refused = await runGov(serveArgs, { timeoutMs: 60_000 });
    assertEquals(refused.code, 1, refused.stderr);
    assertMatch(refused.stderr, /already runs for this workspace/);
    await Deno.remove(`${lab.ws}/.metadata/serve/server.json`);
    const locked = await runGov(serveArgs, { timeoutMs: 60_000 });
    assertEquals(locked.code, 1, locked.stderr);
    assertMatch(locked.stderr, new RegExp(`pid ${gov.process.pid}`));

    const first = await api(gov, "POST", "/v1/jobs", { workflow: txt2img("one") });
    const second = await api(gov, "POST", "/v1/jobs", { workflow: txt2img("two") });
    const running = await waitJob(gov, first.body.id, ["running"]);
    // a has room for one: the second waits in the gateway's queue.
    assertEquals((await api(gov, "GET", `/v1/jobs/${second.body.id}`)).body.state, "queued");
    assertEquals(await queueOf(a.url), [running.prompt_id]);

    const c2 = await api(gov, "DELETE", `/v1/jobs/${second.body.id}`);
    assertEquals(c2.status, 200);
    assertEquals(c2.body.state, "cancelled");

    const c1 = await api(gov, "DELETE", `/v1/jobs/${first.body.id}`);
    assertEquals(c1.status, 200);
    assertEquals(c1.body.state, "cancelled");
    // The prompt is gone from the backend (interrupted), well before its 20 s.
    assertTrue(await waitFor(async () => (await queueOf(a.url)).length === 0, 10_000));
    const hist = await (await fetch(`${a.url}/history/${running.prompt_id}`)).json();
    const messages = JSON.stringify(hist[running.prompt_id]?.status?.messages ?? []);
    assertMatch(messages, /execution_interrupted/);

    // Cancelling again is a conflict; the job stays cancelled and was never re-dispatched.
    assertEquals((await api(gov, "DELETE", `/v1/jobs/${first.body.id}`)).status, 409);
    await new Promise((r) => setTimeout(r, 500));
    const after = (await api(gov, "GET", `/v1/jobs/${second.body.id}`)).body;
    assertEquals(after.state, "cancelled");
    assertEquals(after.attempts, 0);
    const metrics = await (await fetch(`${gov.url}/metrics`)).text();
    assertMatch(metrics, /^gov_jobs_total\{state="cancelled"\} 2$/m);
  } finally {
    await lab.cleanup();
  }
});

Deno.test("restart: SIGTERM and SIGKILL gov serve mid-job; every job completes, none twice", async () => {
  const lab = await newLab();
  try {
    const env = { FAKE_COMFYUI_EXEC_SECONDS: "3" };
    const a = await lab.addBackend("a", env, "max_queue = 1");
    const b = await lab.addBackend("b", env, "max_queue = 1");
    const gov = await startServe(lab);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await api(gov, "POST", "/v1/jobs", { workflow: txt2img(`job ${i}`) });
      assertEquals(r.status, 201);
      ids.push(r.body.id);
    }
    // Two run (one per backend), two wait in the gateway.
    assertTrue(
      await waitFor(async () => {
        const jobs = (await api(gov, "GET", "/v1/jobs")).body.jobs;
        return jobs.filter((j: { state: string }) => j.state === "running").length === 2;
      }, 20_000),
      gov.log(),
    );
    // SIGTERM: a clean stop lets go of the running jobs and leaves them as they were.
    assertEquals(await gov.stop("SIGTERM"), 0);
    const db = new DatabaseSync(`${lab.ws}/.metadata/serve/jobs.sqlite`, { readOnly: true });
    const states = db.prepare("SELECT state FROM jobs ORDER BY state").all()
      .map((r) => String(r.state));
    db.close();
    assertEquals(states, ["queued", "queued", "running", "running"]);
    await startServe(lab, [], { port: gov.port });
    // ...the next start re-attached them; now SIGKILL it while they run.
    const second = lab.servers[lab.servers.length - 1];
    assertTrue(
      await waitFor(async () => {
        const jobs = (await api(second, "GET", "/v1/jobs")).body.jobs;
        return jobs.some((j: { state: string }) => j.state === "running");
      }, 20_000),
      second.log(),
    );
    await second.kill();

    const again = await startServe(lab, [], { port: gov.port });
    const done = [];
    for (const id of ids) done.push(await waitJob(again, id, ["completed"], 60_000));
    for (const j of done) assertEquals(j.outputs.length, 1);
    // Each prompt ran exactly once across the backends (the re-attached ones were not
    // queued again): 4 prompt ids in the histories, 4 PNG files written.
    const histories = [...await backendHistory(a), ...await backendHistory(b)];
    assertEquals(histories.sort(), done.map((j) => j.prompt_id).sort());
    let pngs = 0;
    for (const comfy of [a, b]) {
      for await (const f of Deno.readDir(`${comfy.dir}/output`)) {
        if (f.name.endsWith(".png")) pngs++;
      }
    }
    assertEquals(pngs, 4);
    assertMatch(again.log(), /re-attaching to prompt/);
  } finally {
    await lab.cleanup();
  }
});
