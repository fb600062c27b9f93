/**
 * The gateway's cost per job, each figure against its floor measured in the same run:
 * - added latency: 500 pairs, each a job through `gov serve` (POST /v1/jobs → `completed` on
 *   the gateway's event stream) and a direct submission (POST /prompt → the prompt's end on a
 *   long-lived `/ws`) to the same zero-time fake ComfyUI, in alternating order; the added
 *   latency is the difference within a pair (floor: the direct submission itself);
 * - `POST /v1/jobs` answer time, unloaded (floor: the direct `POST /prompt` answer);
 * - CPU time of the gov serve process per job (`/proc/<pid>/stat`) at concurrency 64 over
 *   4 zero-time backends (floor: CPU per job of this script doing the direct submissions
 *   itself at the same concurrency), and its RSS over the whole run (20,000 jobs by default,
 *   `BENCH_SERVE_JOBS` to change).
 *
 * @module
 */
import { startBenchGateway } from "../lib/gateway.ts";
import { txt2img } from "../../tests/helpers/prompts.ts";
import {
  type Figure,
  median,
  processCpuMs,
  processRssKiB,
  quantile,
  withFloor,
} from "../lib/common.ts";

const BACKENDS = 4;
const PAIRS = Number(Deno.env.get("BENCH_SERVE_PAIRS") ?? 500);
const CONCURRENCY = 64;
const LOAD_JOBS = Number(Deno.env.get("BENCH_SERVE_JOBS") ?? 20_000);
const DIRECT_LOAD_JOBS = 2_000;
const log = Deno.env.get("BENCH_DEBUG") ? (s: string) => console.error(s) : () => {};
// A new seed per submission: ComfyUI would serve a repeated prompt from its cache without
// running anything, which is not the workload a gateway carries.
let seed = Math.floor(Math.random() * 1e9);
const prompt = () => txt2img({ text: "bench", prefix: "bench", seed: seed++ });

/** Waiters keyed by id that also remember ids finished before anyone waited for them. */
class Completions {
  #done = new Map<string, string | undefined>();
  #waiting = new Map<string, (err: string | undefined) => void>();
  finish(id: string, err?: string) {
    const w = this.#waiting.get(id);
    if (w) {
      this.#waiting.delete(id);
      w(err);
    } else this.#done.set(id, err);
  }
  wait(id: string): Promise<void> {
    const settle = (err: string | undefined) => {
      if (err) throw new Error(err);
    };
    if (this.#done.has(id)) {
      const err = this.#done.get(id);
      this.#done.delete(id);
      return Promise.resolve(settle(err));
    }
    return new Promise<string | undefined>((r) => this.#waiting.set(id, r)).then(settle);
  }
}

/** A direct ComfyUI client: one long-lived `/ws` per backend, POST /prompt per job. */
async function directClient(url: string) {
  const clientId = crypto.randomUUID();
  const done = new Completions();
  const ws = new WebSocket(`${url.replace("http", "ws")}/ws?clientId=${clientId}`);
  ws.binaryType = "arraybuffer";
  await new Promise<void>((ok, fail) => {
    ws.onopen = () => ok();
    ws.onerror = () => fail(new Error(`cannot open ${url}/ws`));
  });
  ws.onmessage = (m) => {
    if (typeof m.data !== "string") return;
    const msg = JSON.parse(m.data);
    const pid = msg.data?.prompt_id;
    if (msg.type === "executing" && msg.data?.node === null && pid) done.finish(pid);
    if (msg.type === "execution_error" && pid) done.finish(pid, `prompt ${pid} failed`);
  };
  return {
    /** Submits one prompt; resolves when it ended. `postMs` is the POST's answer time. */
    async run(): Promise<{ totalMs: number; postMs: number }> {
      const t0 = performance.now();
      const r = await fetch(`${url}/prompt`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: prompt(), client_id: clientId }),
      });
      const out = await r.json();
      const postMs = performance.now() - t0;
      if (r.status !== 200) throw new Error(`POST /prompt answered ${r.status}`);
      await done.wait(out.prompt_id);
      return { totalMs: performance.now() - t0, postMs };
    },
    close: () => ws.close(),
  };
}

/** A gateway client: one event stream (`/v1/events`), POST /v1/jobs per job. */
async function gatewayClient(url: string) {
  const done = new Completions();
  const ac = new AbortController();
  const res = await fetch(`${url}/v1/events`, { signal: ac.signal });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const pump = (async () => {
    let buf = "";
    while (true) {
      const { value, done: end } = await reader.read();
      if (end) return;
      buf += value;
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        if (!block.startsWith("event: job\n")) continue;
        const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6))
          .join("\n");
        const e = JSON.parse(data) as { event: string; job: { id: string; error?: string } };
        if (e.event === "completed") done.finish(e.job.id);
        else if (e.event === "failed" || e.event === "cancelled") {
          done.finish(e.job.id, `job ${e.job.id} ${e.event}: ${e.job.error}`);
        }
      }
    }
  })().catch(() => {});
  return {
    async run(backend?: string): Promise<{ totalMs: number; postMs: number }> {
      const t0 = performance.now();
      const r = await fetch(`${url}/v1/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ workflow: prompt(), ...(backend ? { backend } : {}) }),
      });
      const job = await r.json();
      const postMs = performance.now() - t0;
      if (r.status !== 201) throw new Error(`POST /v1/jobs answered ${r.status}`);
      await done.wait(job.id);
      return { totalMs: performance.now() - t0, postMs };
    },
    async close() {
      ac.abort();
      await reader.cancel().catch(() => {});
      await pump;
    },
  };
}

async function concurrently(n: number, jobs: number, one: () => Promise<unknown>) {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < jobs) {
      next++;
      await one();
    }
  }));
}

/** Runs the benchmark and returns its figures. */
export default async function serveOverhead(): Promise<Figure[]> {
  const gateway = await startBenchGateway({ prefix: "gov-serve-overhead-", backends: BACKENDS });
  const { fakes, serve, url } = gateway;
  try {
    log("gateway up");
    const gw = await gatewayClient(url);
    const direct = await Promise.all(fakes.map((f) => directClient(f.url)));

    // Paired, one job at a time: gateway and direct alternate which goes first.
    for (let i = 0; i < 40; i++) {
      await gw.run(`b${i % BACKENDS}`);
      await direct[i % BACKENDS].run();
    }
    log("warm");
    const added: number[] = [];
    const directMs: number[] = [];
    const gwPost: number[] = [];
    const directPost: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const b = i % BACKENDS;
      let g, d;
      if (i % 2 === 0) {
        g = await gw.run(`b${b}`);
        d = await direct[b].run();
      } else {
        d = await direct[b].run();
        g = await gw.run(`b${b}`);
      }
      added.push(g.totalMs - d.totalMs);
      directMs.push(d.totalMs);
      gwPost.push(g.postMs);
      directPost.push(d.postMs);
    }
    added.sort((a, b) => a - b);
    const directP50 = median(directMs);

    log("paired");
    // Floor of the CPU per job: this process doing the direct submissions itself.
    const selfCpu0 = processCpuMs("self");
    let rr = 0;
    await concurrently(CONCURRENCY, DIRECT_LOAD_JOBS, () => direct[rr++ % BACKENDS].run());
    const directCpuPerJob = (processCpuMs("self") - selfCpu0) / DIRECT_LOAD_JOBS;

    log("direct load");
    // Load: concurrency 64 through the gateway, CPU and RSS of the gov serve process.
    const pid = serve.pid;
    const rss: number[] = [processRssKiB(pid)];
    const loadPost: number[] = [];
    const cpu0 = processCpuMs(pid);
    const ticker = Deno.env.get("BENCH_DEBUG")
      ? setInterval(async () => {
        const r = await fetch(`${url}/v1/jobs?limit=1`);
        log(JSON.stringify((await r.json()).counts));
      }, 3000)
      : undefined;
    const t0 = performance.now();
    let finished = 0;
    await concurrently(CONCURRENCY, LOAD_JOBS, async () => {
      const r = await gw.run();
      loadPost.push(r.postMs);
      if (++finished % 1000 === 0) rss.push(processRssKiB(pid));
      if (finished % 100 === 0) log(`load ${finished}`);
    });
    clearInterval(ticker);
    const seconds = (performance.now() - t0) / 1000;
    const cpuPerJob = (processCpuMs(pid) - cpu0) / LOAD_JOBS;
    rss.push(processRssKiB(pid));
    await gw.close();
    for (const d of direct) d.close();

    // The first 1,000 jobs warm the heap and SQLite's cache; "start" is after them.
    const rssBefore = rss[0] / 1024;
    const rssStart = (rss.length > 2 ? rss[1] : rss[0]) / 1024;
    const rssEnd = rss.at(-1)! / 1024;
    const rssMax = Math.max(...rss.slice(1)) / 1024;
    return [
      withFloor({
        name: "gateway added latency p50",
        value: quantile(added, 0.5),
        unit: "ms",
        detail: `${PAIRS} pairs (gateway job − direct POST /prompt + /ws on the same backend)`,
        goal: "≤ 2 ms",
      }, directP50),
      withFloor({
        name: "gateway added latency p99",
        value: quantile(added, 0.99),
        unit: "ms",
        goal: "≤ 10 ms",
      }, directP50),
      withFloor({
        name: "POST /v1/jobs p50 (unloaded)",
        value: median(gwPost),
        unit: "ms",
        detail: "floor: direct POST /prompt answer",
        goal: "≤ 3 ms",
      }, median(directPost)),
      withFloor({
        name: `POST /v1/jobs p50 (concurrency ${CONCURRENCY})`,
        value: median(loadPost),
        unit: "ms",
      }, median(directPost)),
      withFloor({
        name: `gov serve CPU per job (concurrency ${CONCURRENCY})`,
        value: cpuPerJob,
        unit: "ms",
        detail: `${LOAD_JOBS} jobs over ${BACKENDS} zero-time backends, ${
          (LOAD_JOBS / seconds).toFixed(0)
        } jobs/s; floor: this script's CPU per direct submission`,
        goal: "≤ 1 ms",
      }, directCpuPerJob),
      {
        name: "gov serve RSS start / end / max",
        value: rssEnd,
        unit: "MiB",
        detail: `before load ${rssBefore.toFixed(1)}, start (after 1,000 jobs) ${
          rssStart.toFixed(1)
        }, end ${rssEnd.toFixed(1)}, max ${rssMax.toFixed(1)} MiB over ${LOAD_JOBS} jobs (max ${
          (((rssMax - rssStart) / rssStart) * 100).toFixed(1)
        }% above start)`,
        floor: rssStart,
        ratio: rssEnd / rssStart,
        goal: "flat ±10%",
      },
    ];
  } finally {
    await gateway.stop();
  }
}

if (import.meta.main) {
  for (const f of await serveOverhead()) console.log(JSON.stringify(f));
}
