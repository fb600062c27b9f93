/**
 * The job store on a real SQLite file: state changes with their events, guards against
 * racing changes, persistence across reopening, pruning, and the queue's order.
 */
import { DatabaseSync } from "node:sqlite";
import { assertEquals, assertThrows } from "../helpers/assert.ts";
import { JobStore } from "../../src/serve/store.ts";
import type { Job } from "../../src/serve/types.ts";
import { queuedJob } from "./_job.ts";

const job = (id: string, createdAt: number): Job => queuedJob(id, createdAt, [["seed", "1"]]);

Deno.test("job store: changes, guards, events, reopen, queue order, prune", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gov-store-test-" });
  const path = `${dir}/serve/jobs.sqlite`;
  try {
    let store = JobStore.open(path);
    const seen: string[] = [];
    store.onEvent((e, j) => seen.push(`${e.type}:${j.state}`));
    store.create(job("b", 2000));
    store.create(job("a", 1000));
    assertEquals(store.queuedRefs().map((r) => r.id), ["a", "b"]);

    const d = store.update("a", {
      set: { state: "dispatched", backend: "gpu1", attempts: 1 },
      event: { type: "dispatched", data: { backend: "gpu1" } },
      from: ["queued"],
    });
    assertEquals(d?.state, "dispatched");
    // A guarded change from the wrong state does nothing and records nothing.
    assertEquals(
      store.update("a", {
        set: { state: "cancelled" },
        event: { type: "cancelled" },
        from: ["queued"],
      }),
      null,
    );
    store.update("a", {
      set: {
        state: "completed",
        outputs: [{ nodeId: "9", filename: "x.png", subfolder: "", type: "output" }],
        finishedAt: 5000,
      },
      event: { type: "completed" },
      from: ["dispatched", "running"],
    });
    assertEquals(seen, [
      "queued:queued",
      "queued:queued",
      "dispatched:dispatched",
      "completed:completed",
    ]);
    assertEquals(store.events("a").map((e) => e.type), ["queued", "dispatched", "completed"]);
    const first = store.events("a")[0].seq;
    assertEquals(store.events("a", first).map((e) => e.type), ["dispatched", "completed"]);
    store.close();

    // Everything survives reopening; the file is a WAL-mode SQLite database.
    store = JobStore.open(path);
    const a = store.get("a")!;
    assertEquals(a.state, "completed");
    assertEquals(a.outputs[0].filename, "x.png");
    assertEquals(a.sets, [["seed", "1"]]);
    assertEquals(store.countByState().completed, 1);
    assertEquals(store.countByState().queued, 1);
    assertEquals(store.countEvents().queued, 2);
    assertEquals(store.list({ states: ["queued"] }).map((j) => j.id), ["b"]);
    assertEquals(store.list({ limit: 1 }).map((j) => j.id), ["b"]);
    assertEquals(store.list({ before: "b" }).map((j) => j.id), ["a"]);
    assertEquals(store.prune(4000), 0);
    const counted = store.countEvents();
    assertEquals(store.prune(6000), 1);
    assertEquals(store.get("a"), undefined);
    assertEquals(store.events("a"), []);
    // Pruning forgets jobs, not how many events there were (/metrics counters never drop).
    assertEquals(store.countEvents(), counted);
    store.update("b", { set: {}, event: { type: "dispatched" }, from: ["queued"] });
    assertEquals(store.countEvents().dispatched, 2);
    assertEquals(store.queuedRefs()[0].queueTimeoutMs, null);
    assertEquals(store.queuedRefs()[0].readyAt, 2000);
    store.close();

    const raw = new DatabaseSync(path);
    assertEquals(raw.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
    assertThrows(() => raw.prepare("INSERT INTO jobs (id, state) VALUES ('z', 'bogus')").run());
    raw.exec("PRAGMA user_version = 99");
    raw.close();
    // A store from a newer gov is refused rather than misread.
    assertThrows(() => JobStore.open(path), Error, /schema version 99/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("job store: a version 1 store (before per-job queue timeouts) is upgraded in place", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gov-store-test-" });
  const path = `${dir}/jobs.sqlite`;
  try {
    const store = JobStore.open(path);
    store.create({ ...job("old", 1000), queueTimeoutMs: 5000 });
    store.close();
    // Make it what gov 1 wrote: no queue_timeout_ms column, user_version 1.
    const raw = new DatabaseSync(path);
    raw.exec("ALTER TABLE jobs DROP COLUMN queue_timeout_ms");
    raw.exec("PRAGMA user_version = 1");
    raw.close();
    const upgraded = JobStore.open(path);
    try {
      assertEquals(upgraded.get("old")?.queueTimeoutMs, null);
      assertEquals(upgraded.get("old")?.sets, [["seed", "1"]]);
      upgraded.create({ ...job("new", 2000), queueTimeoutMs: 0 });
      assertEquals(upgraded.queuedRefs().map((r) => [r.id, r.queueTimeoutMs]), [
        ["old", null],
        ["new", 0],
      ]);
    } finally {
      upgraded.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("job store: listing jobs never reads their workflows, prompts or sets", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gov-store-test-" });
  const path = `${dir}/jobs.sqlite`;
  try {
    const store = JobStore.open(path);
    store.create(job("a", 1000));
    // Columns a list must not touch: unparseable, so reading them would throw.
    const raw = new DatabaseSync(path);
    raw.exec("UPDATE jobs SET workflow = '{not json', sets = '[', prompt = '{'");
    raw.close();
    const list = store.list();
    assertEquals(list.map((j) => [j.id, j.state]), [["a", "queued"]]);
    assertEquals("workflow" in list[0] || "sets" in list[0] || "prompt" in list[0], false);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("job store: event counters are kept as events happen, not counted from them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gov-store-test-" });
  const path = `${dir}/jobs.sqlite`;
  try {
    let store = JobStore.open(path);
    store.create(job("a", 1000));
    store.create(job("b", 2000));
    store.update("a", {
      set: { state: "failed", finishedAt: 1500 },
      event: { type: "failed" },
    });
    assertEquals(store.countEvents(), { queued: 2, failed: 1 });
    // Pruning keeps the counts (a Prometheus counter never goes down) ...
    assertEquals(store.prune(Date.now()), 1);
    assertEquals(store.countEvents(), { queued: 2, failed: 1 });
    store.close();
    // ... and the counts are not derived from the event rows.
    const raw = new DatabaseSync(path);
    raw.exec("DELETE FROM events");
    raw.close();
    store = JobStore.open(path);
    assertEquals(store.countEvents(), { queued: 2, failed: 1 });
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("job store: a version 2 store starts its counters from its events and pruned counts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gov-store-test-" });
  const path = `${dir}/jobs.sqlite`;
  try {
    const store = JobStore.open(path);
    store.create(job("a", 1000));
    store.close();
    // Make it what gov wrote before counters: no counters, a pruned count, user_version 2.
    const raw = new DatabaseSync(path);
    raw.exec("DELETE FROM meta WHERE key LIKE 'events:%' OR key LIKE 'jobs:%'");
    raw.exec("INSERT INTO meta (key, value) VALUES ('pruned_events:completed', '4')");
    raw.exec("DROP INDEX jobs_idempotency_key");
    raw.exec("ALTER TABLE jobs DROP COLUMN idempotency_key");
    raw.exec("PRAGMA user_version = 2");
    raw.close();
    const upgraded = JobStore.open(path);
    try {
      assertEquals(upgraded.countEvents(), { queued: 1, completed: 4 });
      assertEquals(upgraded.countByState().queued, 1);
      upgraded.create({ ...job("b", 2000), idempotencyKey: "k" });
      assertEquals(upgraded.byIdempotencyKey("k")?.id, "b");
      assertEquals(upgraded.countEvents(), { queued: 2, completed: 4 });
    } finally {
      upgraded.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("job store: reading or changing a job leaves its workflow unparsed until asked", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gov-store-test-" });
  const path = `${dir}/jobs.sqlite`;
  try {
    const store = JobStore.open(path);
    store.create(job("a", 1000));
    const raw = new DatabaseSync(path);
    raw.exec("UPDATE jobs SET workflow = '{not json'");
    raw.close();
    // A dispatch pass and a progress event read the job and change it: neither parses it.
    assertEquals(store.get("a")?.state, "queued");
    const changed = store.update("a", {
      set: { progress: { value: 1, max: 3 } },
      event: { type: "progress" },
    });
    assertEquals(changed?.progress, { value: 1, max: 3 });
    assertEquals(changed?.sets, [["seed", "1"]]);
    assertThrows(() => changed?.workflow, SyntaxError);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("job store: counts by state are kept through create, change and prune", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gov-store-test-" });
  const path = `${dir}/jobs.sqlite`;
  try {
    let store = JobStore.open(path);
    const counted = () => {
      store.flush(); // another connection sees only committed changes
      const raw = new DatabaseSync(path);
      const rows = raw.prepare("SELECT state, count(*) AS n FROM jobs GROUP BY state").all();
      raw.close();
      return Object.fromEntries(rows.map((r) => [String(r.state), Number(r.n)]));
    };
    const kept = () =>
      Object.fromEntries(Object.entries(store.countByState()).filter(([, n]) => n !== 0));
    for (const [i, id] of ["a", "b", "c"].entries()) store.create(job(id, 1000 + i));
    store.update("a", { set: { state: "running" }, event: { type: "running" } });
    store.update("b", { set: { state: "failed", finishedAt: 1 }, event: { type: "failed" } });
    // A guarded change that does not apply counts nothing.
    store.update("b", { set: { state: "cancelled" }, from: ["queued"] });
    assertEquals(kept(), { queued: 1, running: 1, failed: 1 });
    assertEquals(kept(), counted());
    store.prune(Date.now());
    assertEquals(kept(), { queued: 1, running: 1 });
    assertEquals(kept(), counted());
    store.close();
    // Kept, not counted: a row removed behind the store's back does not change them.
    const raw = new DatabaseSync(path);
    raw.exec("DELETE FROM jobs WHERE id = 'c'");
    raw.close();
    store = JobStore.open(path);
    assertEquals(kept(), { queued: 1, running: 1 });
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("job store: changes commit together when the turn ends; the job read back is the one written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gov-store-test-" });
  const path = `${dir}/jobs.sqlite`;
  const store = JobStore.open(path);
  try {
    const other = () => {
      const raw = new DatabaseSync(path);
      const row = raw.prepare("SELECT state, attempts FROM jobs WHERE id = 'a'").get();
      raw.close();
      return row ? { state: String(row.state), attempts: Number(row.attempts) } : undefined;
    };
    store.create(job("a", 1000));
    // The create is durable: committed before it returns.
    assertEquals(other(), { state: "queued", attempts: 0 });
    const dispatched = store.update("a", {
      set: { state: "dispatched", attempts: 1 },
      event: { type: "dispatched" },
      from: ["queued"],
    });
    store.update("a", { set: { state: "running" }, event: { type: "running" } });
    // This process sees its own changes at once, through get and the guards.
    assertEquals(store.get("a")?.state, "running");
    assertEquals(store.update("a", { set: {}, from: ["dispatched"] }), null);
    assertEquals(dispatched?.state, "dispatched");
    // Another connection sees them once the turn ended.
    assertEquals(other(), { state: "queued", attempts: 0 });
    await new Promise((r) => setTimeout(r, 0));
    assertEquals(other(), { state: "running", attempts: 1 });
    assertEquals(store.events("a").map((e) => e.type), ["queued", "dispatched", "running"]);
    // A durable change commits what the group held before it.
    store.update("a", { set: { state: "completed", finishedAt: 1 }, event: { type: "completed" } });
    store.update("a", { set: { state: "cancelled" }, durable: true });
    assertEquals(other(), { state: "cancelled", attempts: 1 });
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
