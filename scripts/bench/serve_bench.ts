/**
 * Gateway throughput: jobs per second routed through a real `gov serve` to 4 fake ComfyUI
 * backends that execute in zero time, and the dispatch overhead per job (from the job
 * being accepted to its prompt being queued on a backend, from the store's timestamps).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { type FakeComfyUI, startFakeComfyUI } from "../../tests/helpers/fake_comfyui.ts";
import { txt2img } from "../../tests/helpers/prompts.ts";
import { quantile } from "../lib/common.ts";
import { freeLoopbackPort } from "../../src/net/port.ts";

const GOV = fileURLToPath(new URL("../gov", import.meta.url));
const BACKENDS = 4;
const JOBS = 300;
const CONCURRENCY = 16;
const IDLE_JOBS = 40;

const PROMPT = txt2img({ text: "bench", prefix: "bench" });

/** Runs the gateway benchmark and returns its figures. */
export default async function serveBench(): Promise<
  { name: string; value: number; unit: string; detail?: string }[]
> {
  const ws = await Deno.makeTempDir({ prefix: "gov-serve-bench-" });
  const fakes: FakeComfyUI[] = [];
  let serve: Deno.ChildProcess | undefined;
  try {
    await Deno.mkdir(`${ws}/.metadata`, { recursive: true });
    const toml: string[] = [];
    for (let i = 0; i < BACKENDS; i++) {
      const f = await startFakeComfyUI({
        env: { FAKE_COMFYUI_EXEC_SECONDS: "0", FAKE_COMFYUI_STEPS: "1" },
      });
      fakes.push(f);
      toml.push(`[[backend]]\nid = "b${i}"\nhost = "127.0.0.1"\nport = ${f.port}\nmax_queue = 4\n`);
    }
    await Deno.writeTextFile(`${ws}/backends.toml`, toml.join("\n"));
    const port = freeLoopbackPort();
    const url = `http://127.0.0.1:${port}`;
    serve = new Deno.Command(GOV, {
      args: [
        "serve",
        "--workspace",
        ws,
        "--listen",
        `127.0.0.1:${port}`,
        "--probe-interval",
        "500",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const deadline = Date.now() + 60_000;
    while (true) {
      try {
        const r = await fetch(`${url}/v1/backends`);
        const up = (await r.json()).backends.filter((b: { state: string }) => b.state === "up");
        if (up.length === BACKENDS) break;
      } catch { /* not yet */ }
      if (Date.now() > deadline) throw new Error("gov serve did not come up with 4 backends");
      await new Promise((r) => setTimeout(r, 100));
    }

    const body = JSON.stringify({ workflow: PROMPT });
    const submitMs: number[] = [];
    const started = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < JOBS) {
        next++;
        const t = performance.now();
        const r = await fetch(`${url}/v1/jobs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        await r.body?.cancel();
        if (r.status !== 201) throw new Error(`POST /v1/jobs answered ${r.status}`);
        submitMs.push(performance.now() - t);
      }
    }));
    let completed = 0;
    while (completed < JOBS) {
      const r = await fetch(`${url}/v1/jobs?limit=1`);
      const counts = (await r.json()).counts;
      completed = counts.completed;
      if (counts.failed > 0) throw new Error(`${counts.failed} job(s) failed`);
      if (performance.now() - started > 120_000) throw new Error(`only ${completed} completed`);
      if (completed < JOBS) await new Promise((r) => setTimeout(r, 20));
    }
    const seconds = (performance.now() - started) / 1000;
    const jobs = (await (await fetch(`${url}/v1/jobs?limit=${JOBS}`)).json()).jobs as {
      dispatch_ms: number;
      backend: string;
    }[];
    const dispatch = jobs.map((j) => j.dispatch_ms).sort((a, b) => a - b);

    // Unloaded: one job at a time, so the overhead is the gateway's own (no slot wait).
    const idle: number[] = [];
    for (let i = 0; i < IDLE_JOBS; i++) {
      const r = await fetch(`${url}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      const id = (await r.json()).id;
      while (true) {
        const j = await (await fetch(`${url}/v1/jobs/${id}`)).json();
        if (j.state === "completed") {
          idle.push(j.dispatch_ms);
          break;
        }
        if (j.state === "failed") throw new Error(`job ${id} failed: ${j.error}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    idle.sort((a, b) => a - b);
    const submit = submitMs.sort((a, b) => a - b);
    const perBackend = new Map<string, number>();
    for (const j of jobs) perBackend.set(j.backend, (perBackend.get(j.backend) ?? 0) + 1);
    const spread = [...perBackend.entries()].sort().map(([b, n]) => `${b}:${n}`).join(" ");
    return [
      {
        name: "serve jobs/s (4 backends, 0 s execution)",
        value: JOBS / seconds,
        unit: "jobs/s",
        detail: `${JOBS} jobs, ${CONCURRENCY} concurrent clients, ${spread}`,
      },
      {
        name: "serve dispatch overhead p50 (idle)",
        value: quantile(idle, 0.5),
        unit: "ms",
        detail: `accepted -> prompt queued on a backend, ${IDLE_JOBS} jobs one at a time`,
      },
      { name: "serve dispatch overhead p99 (idle)", value: quantile(idle, 0.99), unit: "ms" },
      {
        name: "serve dispatch overhead p50 (backlog)",
        value: quantile(dispatch, 0.5),
        unit: "ms",
        detail: `same, during the ${JOBS}-job burst (includes waiting for a free slot)`,
      },
      {
        name: "serve dispatch overhead p99 (backlog)",
        value: quantile(dispatch, 0.99),
        unit: "ms",
      },
      { name: "serve POST /v1/jobs p50", value: quantile(submit, 0.5), unit: "ms" },
      { name: "serve POST /v1/jobs p99", value: quantile(submit, 0.99), unit: "ms" },
    ];
  } finally {
    if (serve) {
      try {
        serve.kill("SIGTERM");
      } catch { /* gone */ }
      await serve.status;
    }
    for (const f of fakes) await f.stop();
    await Deno.remove(ws, { recursive: true }).catch(() => {});
  }
}
