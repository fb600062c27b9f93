/**
 * The dispatcher in-process: a real job store, in-memory backends that run a repeated
 * `prompt_id` again (as ComfyUI does), a health view the test steers and a clock it moves.
 * Failover, retry, cancel and queue timeout run in milliseconds; so does the proof that a
 * prompt whose POST outcome is unknown runs once, including across a gateway restart.
 */
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { waitFor } from "../helpers/net.ts";
import { backendConfig, FakeBackend, FakeHealth } from "../backends/_fake_backend.ts";
import { txt2img } from "../helpers/prompts.ts";
import { REAL_WORKFLOWS_DIR } from "../helpers/paths.ts";
import { Dispatcher, type DispatcherOptions } from "../../src/serve/dispatcher.ts";
import { JobStore } from "../../src/serve/store.ts";
import type { Job, JobState } from "../../src/serve/types.ts";

const CLASSES = [
  "CheckpointLoaderSimple",
  "CLIPTextEncode",
  "EmptyLatentImage",
  "KSampler",
  "SaveImage",
  "VAEDecode",
];

/** A dispatcher over in-memory backends; `restart()` gives a new one on the same store. */
class World {
  readonly fakes = new Map<string, FakeBackend>();
  readonly health: FakeHealth;
  readonly lines: string[] = [];
  clock = 1_700_000_000_000;
  store!: JobStore;
  dispatcher!: Dispatcher;
  #dir = "";
  #ids: string[];
  #opts: Partial<DispatcherOptions>;

  constructor(ids: string[], opts: Partial<DispatcherOptions> = {}) {
    this.#ids = ids;
    this.#opts = opts;
    for (const id of ids) this.fakes.set(id, new FakeBackend(id));
    this.health = new FakeHealth(ids, CLASSES);
  }

  static async start(ids: string[], opts: Partial<DispatcherOptions> = {}): Promise<World> {
    const w = new World(ids, opts);
    w.#dir = await Deno.makeTempDir({ prefix: "gov-dispatcher-test-" });
    w.store = JobStore.open(`${w.#dir}/jobs.db`);
    w.#newDispatcher();
    return w;
  }

  #newDispatcher(): void {
    const backends = this.#ids.map((id) => backendConfig(id));
    this.dispatcher = new Dispatcher({
      store: this.store,
      monitor: this.health,
      backends: () => backends,
      pollIntervalMs: 1,
      passIntervalMs: 20,
      log: (l) => this.lines.push(l),
      ...this.#opts,
      deps: {
        client: (b, o) => {
          const fake = this.fakes.get(b.id)!;
          return o?.signal ? fake.withSignal(o.signal) : fake;
        },
        now: () => this.clock,
      },
    });
    this.dispatcher.start();
  }

  /** Stops this gateway without touching job states and starts a new one on the same store. */
  async restart(): Promise<void> {
    await this.dispatcher.stop();
    this.#newDispatcher();
  }

  fake(id: string): FakeBackend {
    return this.fakes.get(id)!;
  }

  job(id: string): Job {
    return this.store.get(id)!;
  }

  async until(id: string, states: JobState[]): Promise<Job> {
    const ok = await waitFor(() => states.includes(this.job(id).state), 10_000, 2);
    assertTrue(ok, `job stayed ${this.job(id).state}: ${this.lines.join("\n")}`);
    return this.job(id);
  }

  /** Asks for a dispatch pass and returns once it ran (its timer fires before ours). */
  async pass(): Promise<void> {
    this.dispatcher.kick();
    await new Promise((r) => setTimeout(r, 1));
  }

  /** Total executions of a prompt across every backend. */
  runs(promptId: string): number {
    return [...this.fakes.values()].reduce((n, f) => n + f.executions(promptId), 0);
  }

  events(id: string): { type: string; data: Record<string, unknown> }[] {
    return this.store.events(id).map((e) => ({ type: e.type, data: e.data }));
  }

  async close(): Promise<void> {
    await this.dispatcher.stop();
    this.store.close();
    await Deno.remove(this.#dir, { recursive: true });
  }
}

Deno.test("dispatcher: a job runs on a backend, once, and completes with its outputs", async () => {
  const w = await World.start(["a"]);
  try {
    const job = w.dispatcher.submit({ workflow: txt2img() });
    const done = await w.until(job.id, ["completed"]);
    assertEquals(done.backend, "a");
    assertEquals(done.attempts, 1);
    assertEquals(done.outputs.map((o) => o.filename), [`${job.promptId}.png`]);
    assertEquals(w.runs(job.promptId), 1);
    assertEquals(w.events(job.id).map((e) => e.type).filter((t) => t !== "progress"), [
      "queued",
      "dispatched",
      "accepted",
      "running",
      "completed",
    ]);
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: a backend that dies mid-job is marked down and the job completes on another", async () => {
  const w = await World.start(["a", "b"]);
  try {
    for (const f of w.fakes.values()) f.runPolls = 0;
    const job = w.dispatcher.submit({ workflow: txt2img() });
    const running = await w.until(job.id, ["running"]);
    const first = running.backend!;
    const other = first === "a" ? "b" : "a";
    w.fake(other).runPolls = 2;
    w.fake(first).mode = "refused";
    const done = await w.until(job.id, ["completed"]);
    assertEquals(done.backend, other);
    assertEquals(done.attempts, 2);
    assertEquals(done.failedBackends, [first]);
    assertEquals(w.health.markedDown.map(([id]) => id), [first]);
    const retry = w.events(job.id).find((e) => e.type === "retry")!;
    assertEquals(retry.data.backend, first);
    assertMatch(String(retry.data.reason), /connection refused/);
    const dispatched = w.events(job.id).filter((e) => e.type === "dispatched");
    assertEquals(dispatched.map((e) => e.data.backend), [first, other]);
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: the health monitor marking a backend down moves its running job", async () => {
  const w = await World.start(["a", "b"]);
  try {
    w.fake("a").runPolls = 0;
    w.health.set("b", "down", "not yet");
    const job = w.dispatcher.submit({ workflow: txt2img() });
    assertEquals((await w.until(job.id, ["running"])).backend, "a");
    w.health.set("b", "up");
    // a stops answering; the monitor notices before the job's own polls give up.
    w.fake("a").mode = "wedged";
    w.health.set("a", "down", "probe timed out");
    const moved = await w.until(job.id, ["completed"]);
    assertEquals(moved.backend, "b");
    assertEquals(moved.attempts, 2);
    const retry = w.events(job.id).find((e) => e.type === "retry")!;
    assertMatch(String(retry.data.reason), /backend a went down \(probe timed out\)/);
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: a prompt the backend forgot (it restarted) is retried and completes", async () => {
  const w = await World.start(["a"]);
  try {
    w.fake("a").runPolls = 0;
    const job = w.dispatcher.submit({ workflow: txt2img() });
    await w.until(job.id, ["running"]);
    w.fake("a").restart();
    w.fake("a").runPolls = 2;
    const done = await w.until(job.id, ["completed"]);
    assertEquals(done.attempts, 2);
    const retry = w.events(job.id).find((e) => e.type === "retry")!;
    assertMatch(String(retry.data.reason), /vanished from its queue and history/);
    // The backend stayed up: a lost prompt is not a dead backend.
    assertEquals(w.health.markedDown, []);
    assertEquals(w.fake("a").executions(job.promptId), 2);
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: after maxAttempts failovers the job fails with the last reason", async () => {
  const w = await World.start(["a"], { maxAttempts: 1 });
  try {
    w.fake("a").runPolls = 0;
    const job = w.dispatcher.submit({ workflow: txt2img() });
    await w.until(job.id, ["running"]);
    w.fake("a").mode = "refused";
    const failed = await w.until(job.id, ["failed"]);
    assertMatch(failed.error ?? "", /gave up after 1 attempt\(s\); last: .*connection refused/);
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: an execution error fails the job at once, without a retry", async () => {
  const w = await World.start(["a", "b"]);
  try {
    for (const f of w.fakes.values()) f.outcome = "error";
    const job = w.dispatcher.submit({ workflow: txt2img() });
    const failed = await w.until(job.id, ["failed"]);
    assertEquals(failed.attempts, 1);
    assertMatch(failed.error ?? "", /RuntimeError: FAKE_EXECUTION_ERROR \(node 3 KSampler\)/);
    assertEquals(w.events(job.id).filter((e) => e.type === "retry"), []);
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: cancelling a running job interrupts it on its backend", async () => {
  const w = await World.start(["a"]);
  try {
    w.fake("a").runPolls = 0;
    const job = w.dispatcher.submit({ workflow: txt2img() });
    await w.until(job.id, ["running"]);
    const cancelled = await w.dispatcher.cancel(job.id);
    assertEquals(cancelled.state, "cancelled");
    assertEquals(w.fake("a").queued(), []);
    assertTrue(w.fake("a").requests.includes(`POST /queue delete ${job.promptId}`));
    assertEquals(w.job(job.id).state, "cancelled");
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: cancelling a queued job never sends it anywhere", async () => {
  const w = await World.start(["a"]);
  try {
    w.health.set("a", "down", "stopped");
    const job = w.dispatcher.submit({ workflow: txt2img() });
    await w.until(job.id, ["queued"]);
    await w.dispatcher.cancel(job.id);
    w.health.set("a", "up");
    w.dispatcher.kick();
    // A later job is dispatched and run: the cancelled one was passed over.
    const next = w.dispatcher.submit({ workflow: txt2img({ seed: 3 }) });
    await w.until(next.id, ["completed"]);
    assertEquals(w.fake("a").posts, [next.promptId]);
    assertEquals(w.job(job.id).state, "cancelled");
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: a job waits for a backend up to its queue timeout, measured on the clock", async () => {
  const w = await World.start(["a"]);
  try {
    w.health.set("a", "down", "connection refused");
    const job = w.dispatcher.submit({ workflow: txt2img(), queueTimeoutMs: 5000 });
    const waiting = () => w.events(job.id).some((e) => e.type === "waiting");
    assertTrue(await waitFor(waiting, 10_000, 2), "no waiting event");
    w.clock += 4999;
    // The pass that sees 4,999 ms leaves it queued; the one at 5,000 ms fails it.
    await w.pass();
    assertEquals(w.job(job.id).state, "queued");
    w.clock += 1;
    w.dispatcher.kick();
    const failed = await w.until(job.id, ["failed"]);
    assertMatch(
      failed.error ?? "",
      /no backend took the job within the queue timeout \(5 s\): a: down \(connection refused\)/,
    );
    assertEquals(w.fake("a").posts, []);
  } finally {
    await w.close();
  }
});

// --- unknown outcomes: the prompt runs once ---

Deno.test("dispatcher: a POST that timed out unsent is looked for, then sent again: it runs once", async () => {
  const w = await World.start(["a", "b"]);
  try {
    for (const f of w.fakes.values()) f.postFaults = ["timeout-unsent"];
    const job = w.dispatcher.submit({ workflow: txt2img() });
    const done = await w.until(job.id, ["completed"]);
    assertEquals(done.attempts, 1);
    assertEquals(w.runs(job.promptId), 1);
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: a POST whose answer was lost is followed where it landed: it runs once", async () => {
  const w = await World.start(["a", "b"]);
  try {
    for (const f of w.fakes.values()) f.postFaults = ["answer-lost"];
    const job = w.dispatcher.submit({ workflow: txt2img() });
    const done = await w.until(job.id, ["completed"]);
    assertEquals(done.attempts, 1);
    assertEquals(w.runs(job.promptId), 1);
    assertEquals(w.fake(done.backend!).posts, [job.promptId]);
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: answer lost and the backend silent: the job waits for it, never runs elsewhere", async () => {
  const w = await World.start(["a", "b"]);
  try {
    const job = w.dispatcher.submit({ workflow: txt2img(), backend: "a" });
    // Unpinned jobs could go to b; pinning only picks the first backend, the rest is gov's.
    const a = w.fake("a");
    a.postFaults = ["answer-lost"];
    a.onPost = () => a.mode = "wedged";
    await waitFor(() => a.posts.length === 1, 10_000, 2);
    // The monitor sees it down too: the job must still not move.
    w.health.set("a", "down", "probe timed out");
    const looks = () => a.requests.filter((r) => r === "GET /queue").length;
    assertTrue(await waitFor(() => looks() >= 5, 10_000, 2), "gov stopped looking");
    assertEquals(w.job(job.id).state, "dispatched");
    assertMatch(w.job(job.id).error ?? "", /waiting for a to answer before running it anywhere/);
    assertEquals(w.fake("b").posts, []);

    a.mode = "up";
    w.health.set("a", "up");
    const done = await w.until(job.id, ["completed"]);
    assertEquals(done.backend, "a");
    assertEquals(a.posts, [job.promptId]);
    assertEquals(w.runs(job.promptId), 1);
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: unknown outcome, unpinned job: no other backend gets it while the first is silent", async () => {
  const w = await World.start(["a", "b"]);
  try {
    for (const id of ["a", "b"]) {
      const f = w.fake(id);
      f.postFaults = ["answer-lost"];
      f.onPost = () => f.mode = "wedged";
    }
    const job = w.dispatcher.submit({ workflow: txt2img() });
    const reached = () => [...w.fakes.values()].some((f) => f.posts.length === 1);
    assertTrue(await waitFor(reached, 10_000, 2));
    const first = w.job(job.id).backend!;
    const f = w.fake(first);
    const other = w.fake(first === "a" ? "b" : "a");
    w.health.set(first, "down", "probe timed out");
    assertTrue(await waitFor(() => f.requests.length >= 12, 10_000, 2));
    assertEquals(other.posts, []);
    f.mode = "up";
    const done = await w.until(job.id, ["completed"]);
    assertEquals(done.backend, first);
    assertEquals(w.runs(job.promptId), 1);
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: cancelling a job unsure of its backend drops the prompt there once it answers", async () => {
  const w = await World.start(["a"]);
  try {
    const a = w.fake("a");
    a.postFaults = ["answer-lost"];
    a.runPolls = 0;
    a.onPost = () => a.mode = "wedged";
    const job = w.dispatcher.submit({ workflow: txt2img() });
    assertTrue(await waitFor(() => /waiting for a/.test(w.job(job.id).error ?? ""), 10_000, 2));
    // Cancelled while a still does not answer: the prompt is dropped there once it does.
    await w.dispatcher.cancel(job.id);
    assertEquals(w.job(job.id).state, "cancelled");
    assertEquals(a.queued(), [job.promptId]);
    a.mode = "up";
    assertTrue(await waitFor(() => a.queued().length === 0, 10_000, 2), a.requests.join("\n"));
    assertTrue(a.requests.includes(`POST /queue delete ${job.promptId}`));
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: a gateway stopped between its POST and the answer re-attaches: it runs once", async () => {
  const w = await World.start(["a", "b"]);
  try {
    for (const f of w.fakes.values()) {
      f.postFaults = ["answer-hangs"];
      f.runPolls = 0;
    }
    const job = w.dispatcher.submit({ workflow: txt2img() });
    await waitFor(() => [...w.fakes.values()].some((f) => f.posts.length === 1), 10_000, 2);
    const first = w.job(job.id).backend!;
    assertEquals(w.job(job.id).state, "dispatched");
    await w.restart();
    // The new gateway looks first and finds the prompt the old one sent.
    w.fake(first).runPolls = 2;
    const done = await w.until(job.id, ["completed"]);
    assertEquals(done.backend, first);
    assertEquals(done.attempts, 1);
    assertEquals(w.runs(job.promptId), 1);
    assertEquals(w.fake(first).posts, [job.promptId]);
    assertTrue(w.lines.some((l) => l.includes(`re-attaching to prompt ${job.promptId}`)));
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: a restarted gateway whose backend never got the POST sends it once", async () => {
  const w = await World.start(["a"]);
  try {
    const a = w.fake("a");
    a.postFaults = ["answer-hangs"];
    a.runPolls = 0;
    const job = w.dispatcher.submit({ workflow: txt2img() });
    await waitFor(() => a.posts.length === 1, 10_000, 2);
    await w.restart();
    // As if the old POST had never reached ComfyUI: it is not there when the new one looks.
    a.restart();
    a.runPolls = 2;
    const done = await w.until(job.id, ["completed"]);
    assertEquals(done.attempts, 1);
    assertEquals(a.executions(job.promptId), 1);
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: a restarted gateway whose backend is silent waits for it, never runs elsewhere", async () => {
  const w = await World.start(["a", "b"]);
  try {
    const job = w.dispatcher.submit({ workflow: txt2img(), backend: "a" });
    const a = w.fake("a");
    a.postFaults = ["answer-hangs"];
    a.runPolls = 0;
    await waitFor(() => a.posts.length === 1, 10_000, 2);
    a.mode = "wedged";
    await w.restart();
    const looks = () => a.requests.filter((r) => r === "GET /queue").length;
    assertTrue(await waitFor(() => looks() >= 3, 10_000, 2));
    assertEquals(w.fake("b").posts, []);
    a.mode = "up";
    a.runPolls = 2;
    const done = await w.until(job.id, ["completed"]);
    assertEquals(done.backend, "a");
    assertEquals(w.runs(job.promptId), 1);
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: a prompt left queued on a backend that recovers is deleted there once its job ran elsewhere", async () => {
  const w = await World.start(["a", "b"]);
  try {
    const a = w.fake("a");
    a.runPolls = 0;
    // Something else runs on a, so the job's prompt waits in a's queue.
    await a.queuePrompt(txt2img({ seed: 99 }), { promptId: "other", clientId: "x" });
    w.health.set("b", "down", "not yet");
    const job = w.dispatcher.submit({ workflow: txt2img() });
    assertTrue(await waitFor(() => a.queued().includes(job.promptId), 10_000, 2));
    w.health.set("b", "up");
    // a stops answering with the prompt still pending there; the job moves to b.
    a.mode = "wedged";
    const done = await w.until(job.id, ["completed"]);
    assertEquals(done.backend, "b");
    assertEquals(a.queued(), ["other", job.promptId]);

    a.mode = "up";
    w.health.set("a", "up");
    assertTrue(await waitFor(() => !a.queued().includes(job.promptId), 10_000, 2));
    a.finish();
    assertEquals(a.executions(job.promptId), 0);
    assertEquals(w.runs(job.promptId), 1);
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: jobs submitted together share one durable write; each is stored when answered", async () => {
  const w = await World.start(["a"]);
  const batches: number[] = [];
  const createMany = w.store.createMany.bind(w.store);
  w.store.createMany = (items) => {
    batches.push(items.length);
    return createMany(items);
  };
  try {
    const submitted = [1, 2, 3].map((seed) =>
      w.dispatcher.submitBatched({ workflow: txt2img({ seed }) })
    );
    const bad = w.dispatcher.submitBatched({ workflow: txt2img(), backend: "nope" })
      .then(() => "stored", (e) => e.message);
    const stored = await Promise.all(submitted.map((p) => p.then((j) => w.store.get(j.id))));
    assertEquals(stored.map((j) => j?.id), (await Promise.all(submitted)).map((j) => j.id));
    const jobs = await Promise.all(submitted);
    assertMatch(await bad, /unknown backend 'nope'/);
    assertEquals(batches, [3]);
    for (const job of jobs) await w.until(job.id, ["completed"]);
    assertEquals(w.store.countByState().completed, 3);
  } finally {
    await w.close();
  }
});

Deno.test("dispatcher: a UI workflow waiting for node definitions says so, once", async () => {
  // FakeHealth knows no backend's /object_info: a UI workflow cannot be converted yet.
  const w = await World.start(["a"]);
  try {
    const ui = JSON.parse(
      await Deno.readTextFile(`${REAL_WORKFLOWS_DIR}/frontend_default.ui.json`),
    );
    const job = w.dispatcher.submit({ workflow: ui });
    for (let i = 0; i < 5; i++) await w.pass();
    assertEquals(w.job(job.id).state, "queued");
    const waits = w.events(job.id).filter((e) => e.type === "waiting");
    assertEquals(waits.length, 1);
    assertMatch(String(waits[0].data.reason), /waiting for node definitions.*\/object_info/);
  } finally {
    await w.close();
  }
});
