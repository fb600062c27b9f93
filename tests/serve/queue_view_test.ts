/**
 * The queue a dispatch pass keeps between passes: always the store's queue, in its order,
 * whatever happened to jobs in between.
 */
import { assertEquals } from "../helpers/assert.ts";
import { JobStore } from "../../src/serve/store.ts";
import { QueueView } from "../../src/serve/queue_view.ts";
import type { Job } from "../../src/serve/types.ts";
import { queuedJob } from "./_job.ts";

const job = (id: string, createdAt: number): Job => queuedJob(id, createdAt);

Deno.test("queue view: each pass sees the store's queue, in order, after any change", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gov-queue-view-test-" });
  const store = JobStore.open(`${dir}/jobs.sqlite`);
  const view = new QueueView(store);
  view.start();
  // A pass as the dispatcher runs it: `send` are the jobs it dispatches.
  const pass = (room: boolean, send: string[] = []) => {
    const p = view.begin(Date.now(), room);
    if (!p) return undefined;
    const ids = p.refs.map((r) => r.id);
    for (const id of send) {
      store.update(id, { set: { state: "dispatched" }, event: { type: "dispatched" } });
    }
    view.end(p, (id) => send.includes(id));
    return ids;
  };
  const stored = () => store.queuedRefs().map((r) => r.id);
  try {
    for (const [i, id] of ["a", "b", "c"].entries()) store.create(job(id, 1000 + i));
    assertEquals(pass(true, ["a"]), ["a", "b", "c"]);
    // Nothing new, no room: the pass has nothing to do.
    assertEquals(pass(false), undefined);
    // A new job comes last.
    store.create(job("d", 2000));
    assertEquals(pass(true), ["b", "c", "d"]);
    assertEquals(pass(true), stored());
    // A job back from a failover goes ahead of newer ones (the store's order).
    store.update("a", { set: { state: "queued" }, event: { type: "retry" } });
    assertEquals(pass(true), ["a", "b", "c", "d"]);
    assertEquals(pass(true), stored());
    // A cancelled job is gone from the next pass.
    store.update("c", { set: { state: "cancelled" }, event: { type: "cancelled" } });
    assertEquals(pass(true), ["a", "b", "d"]);
    assertEquals(pass(true), stored());
  } finally {
    view.stop();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
