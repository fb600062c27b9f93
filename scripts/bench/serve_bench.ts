/**
 * Gateway throughput: jobs per second routed through a real `gov serve` to 4 fake ComfyUI
 * backends that execute in zero time, and the dispatch overhead per job (from the job
 * being accepted to its prompt being queued on a backend, from the store's timestamps).
 *
 * @module
 */
import { startBenchGateway } from "../lib/gateway.ts";
import { txt2img } from "../../tests/helpers/prompts.ts";
import { quantile } from "../lib/common.ts";

const BACKENDS = 4;
const JOBS = 300;
const CONCURRENCY = 16;
const IDLE_JOBS = 40;

const PROMPT = txt2img({ text: "bench", prefix: "bench" });

/** Runs the gateway benchmark and returns its figures. */
export default async function serveBench(): Promise<
  { name: string; value: number; unit: string; detail?: string }[]
> {
  const gateway = await startBenchGateway({
    prefix: "gov-serve-bench-",
    backends: BACKENDS,
    serveArgs: ["--probe-interval", "500"],
  });
  const { url } = gateway;
  try {
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
    await gateway.stop();
  }
}
