// `gov switch` end to end: exit 43 with progress published, a failing target rolled back,
// two concurrent switches, a stale lock, and resuming the switched-to environment.
import { join } from "node:path";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { gov } from "../helpers/gov.ts";
import { waitFor } from "../helpers/net.ts";
import {
  acquireSwitchLock,
  readStartupState,
  readSwitchStatus,
  releaseSwitchLock,
  writeSwitchRequest,
} from "../../src/ipc/mod.ts";
import { supervisorStatus } from "../../src/supervisor/status.ts";
import { count, makeWorkspace, post, startGov, terminate } from "./_helpers.ts";

const HEALTHY = /Z healthy /;
const FAST = ["--poll-interval", "100", "--grace", "2"];

Deno.test("exit 43 switches environments, publishing each state; the next run resumes it", async () => {
  const t = await makeWorkspace({ a: {}, b: { fake: { start_delay: 1.0 } } }, { fakeComfy: true });
  let watching = true;
  const seen: string[] = [];
  try {
    await switchThenResume();
  } finally {
    watching = false;
    await t.cleanup();
  }

  async function switchThenResume() {
    const g = startGov(["run", "--workspace", t.root, "--env", "a", ...FAST]);
    try {
      assertTrue(await g.waitForLog(HEALTHY), g.stderr());
      // Like ComfyGit's panel: hold the switch lock, write the request, exit 43. The
      // supervisor cannot take the request from its poll while the lock is held, so this
      // goes through the exit-43 path.
      assertTrue(await acquireSwitchLock(t.meta), "the test takes the switch lock");
      await writeSwitchRequest(t.meta, "b", "a");
      assertEquals(await post(t.port, "/fake/exit", { code: 43 }), 200, g.stderr());
      assertTrue(await g.waitForLog(/exited with code 43: switch requested/), g.stderr());
      const watcher = (async () => {
        while (watching) {
          const s = await readSwitchStatus(t.meta);
          if (seen.at(-1) !== s.state) seen.push(s.state);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      await releaseSwitchLock(t.meta);
      const done = await waitFor(
        async () => (await readSwitchStatus(t.meta)).state === "complete",
        30_000,
      );
      watching = false;
      await watcher;
      // The watcher may have stopped between two polls: record the final state too.
      const last = (await readSwitchStatus(t.meta)).state;
      if (seen.at(-1) !== last) seen.push(last);
      assertTrue(done, g.stderr());
      assertTrue(seen.includes("validating"), seen.join(","));
      assertEquals(seen.at(-1), "complete");
      const order = ["preparing", "syncing", "starting", "validating", "complete"];
      const idx = seen.filter((s) => order.includes(s)).map((s) => order.indexOf(s));
      assertEquals(idx, [...idx].sort((x, y) => x - y), `states out of order: ${seen.join(",")}`);
      const logged = [...g.stderr().matchAll(/switch to b: (\w+)/g)].map((m) => m[1]);
      assertEquals(logged, ["preparing", "syncing", "starting", "validating"], g.stderr());
      const status = await readSwitchStatus(t.meta);
      assertEquals([status.progress, status.target_env, status.source_env], [100, "b", "a"]);
      const [b] = await t.starts("b");
      assertEquals(b?.cwd, join(t.root, "environments", "b", "ComfyUI"), g.stderr());
      assertEquals((await readStartupState(t.meta))?.environment_name, "b", g.stderr());
      assertEquals((await supervisorStatus(t.ws)).environment, "b", g.stderr());
    } finally {
      watching = false;
      await terminate(g);
    }
    const again = startGov(["run", "--workspace", t.root, ...FAST]);
    try {
      assertTrue(await again.waitForLog(HEALTHY), again.stderr());
      assertMatch(again.stderr(), /environment b, active last time/);
      assertEquals((await t.starts("b")).length, 2);
    } finally {
      await terminate(again);
    }
  }
});

Deno.test("a target that crashes at start is rolled back to the source; switch exits 1", async () => {
  const t = await makeWorkspace(
    { a: {}, c: { fake: { crash_at_start: 3 } } },
    { fakeComfy: true },
  );
  const g = startGov(["run", "--workspace", t.root, "--env", "a", ...FAST]);
  try {
    assertTrue(await g.waitForLog(HEALTHY), g.stderr());
    const r = await gov(["switch", "c", "--workspace", t.root, "--wait"], { timeoutMs: 90_000 });
    assertEquals(r.code, 1, r.stderr);
    assertMatch(r.stderr, /switch to c failed: .*exited with code 3.*; rolled back to a/);
    // The rollback is published as a state of its own; `--wait` polls the status file and
    // may miss so short a state, so the supervisor's own event line is what proves it.
    assertMatch(g.stderr(), /switch to c: rolling_back/);
    const s = await readSwitchStatus(t.meta);
    assertEquals([s.state, s.progress, s.rolled_back_to], ["failed", 100, "a"]);
    assertMatch(String(s.error), /exited with code 3/);
    assertEquals((await t.starts("c")).length, 1);
    assertEquals((await t.starts("a")).length, 2);
    const st = await supervisorStatus(t.ws);
    assertEquals([st.running, st.environment, st.healthy], [true, "a", true]);
    assertEquals(count(g.stderr(), HEALTHY), 2);
  } finally {
    await terminate(g);
    await t.cleanup();
  }
});

Deno.test("two concurrent gov switch calls: one wins, the other says switch in progress", async () => {
  const t = await makeWorkspace({ a: {}, b: {}, c: {} }, { fakeComfy: true });
  const g = startGov(["run", "--workspace", t.root, "--env", "a", ...FAST]);
  try {
    assertTrue(await g.waitForLog(HEALTHY), g.stderr());
    const [rb, rc] = await Promise.all([
      gov(["switch", "b", "--workspace", t.root, "--json"], { timeoutMs: 60_000 }),
      gov(["switch", "c", "--workspace", t.root, "--json"], { timeoutMs: 60_000 }),
    ]);
    const codes = [rb.code, rc.code].sort();
    assertEquals(codes, [0, 1], `b: ${rb.stderr} c: ${rc.stderr}`);
    const loser = rb.code === 1 ? rb : rc;
    const winner = rb.code === 0 ? "b" : "c";
    assertMatch(loser.stderr, /switch in progress/);
    assertEquals(loser.stdout, "");
    assertEquals(JSON.parse((rb.code === 0 ? rb : rc).stdout).target_env, winner);
    assertTrue(
      await waitFor(async () => (await readSwitchStatus(t.meta)).state === "complete", 30_000),
      g.stderr(),
    );
    assertEquals((await readSwitchStatus(t.meta)).target_env, winner);
    assertEquals((await t.starts(winner === "b" ? "c" : "b")).length, 0);
  } finally {
    await terminate(g);
    await t.cleanup();
  }
});

Deno.test("a switch lock left by a dead process is taken over; unknown env is exit 2", async () => {
  const t = await makeWorkspace({ a: {}, b: {} }, { fakeComfy: true });
  const g = startGov(["run", "--workspace", t.root, "--env", "a", ...FAST]);
  try {
    assertTrue(await g.waitForLog(HEALTHY), g.stderr());
    const bad = await gov(["switch", "nope", "--workspace", t.root]);
    assertEquals(bad.code, 2);
    assertMatch(bad.stderr, /environment 'nope' not found/);
    assertMatch(bad.stderr, /known environments: a, b/);
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    await Deno.writeTextFile(
      join(t.meta, ".switch.lock"),
      JSON.stringify({ pid: dead.pid, created: Date.now() / 1000 }),
    );
    const r = await gov(["switch", "b", "--workspace", t.root, "--wait"], { timeoutMs: 60_000 });
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stderr, /switched to b/);
    const same = await gov(["switch", "b", "--workspace", t.root]);
    assertEquals(same.code, 2, "a refusal: nothing to switch");
    assertMatch(same.stderr, /already running .*; nothing to switch/);
  } finally {
    await terminate(g);
    await t.cleanup();
  }
});

Deno.test("gov switch --abort stops a switch whose target never answers and rolls back", async () => {
  const t = await makeWorkspace({ a: {}, h: { fake: { hang: 1 } } }, { fakeComfy: true });
  const g = startGov(["run", "--workspace", t.root, "--env", "a", ...FAST]);
  try {
    assertTrue(await g.waitForLog(HEALTHY), g.stderr());
    const none = await gov(["switch", "--abort", "--workspace", t.root]);
    assertEquals(none.code, 2);
    assertMatch(none.stderr, /no switch to abort/);
    const req = await gov(["switch", "h", "--workspace", t.root]);
    assertEquals(req.code, 0, req.stderr);
    assertTrue(
      await waitFor(async () => (await readSwitchStatus(t.meta)).state === "validating", 30_000),
      g.stderr(),
    );
    // Asking again for the same target joins the switch; another target is refused.
    const again = await gov(["switch", "h", "--workspace", t.root, "--json"]);
    assertEquals(again.code, 0, again.stderr);
    assertEquals(JSON.parse(again.stdout).outcome, "in_progress");
    const other = await gov(["switch", "a", "--workspace", t.root]);
    assertEquals(other.code, 1, other.stderr);
    assertMatch(other.stderr, /switch in progress: .*'h'/);
    const follower = gov(["switch", "h", "--workspace", t.root, "--wait"], { timeoutMs: 60_000 });
    const r = await gov(["switch", "--abort", "--workspace", t.root, "--wait"], {
      timeoutMs: 60_000,
    });
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stderr, /switch aborted/);
    const followed = await follower;
    assertEquals(followed.code, 1, followed.stderr);
    assertMatch(followed.stderr, /already in progress[\s\S]*switch to h aborted/);
    const s = await readSwitchStatus(t.meta);
    assertEquals([s.state, s.rolled_back_to], ["aborted", "a"]);
    assertEquals((await t.starts("a")).length, 2);
    assertEquals((await supervisorStatus(t.ws)).environment, "a");
  } finally {
    await terminate(g);
    await t.cleanup();
  }
});
