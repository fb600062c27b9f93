// `gov run` end to end (seed table "test_restart_flow"): the real CLI supervising the fake
// ComfyUI on the host python. Exit 42, ComfyUI-Manager's reboot marker, crash backoff and
// give-up, pid file refusal/takeover, `gov restart`, SIGKILL of gov (the orphan guard), and a
// ComfyUI orphaned by a supervisor killed together with its guard.
import { join } from "node:path";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { gov } from "../helpers/gov.ts";
import { freePort, isPortOpen, waitFor } from "../helpers/net.ts";
import { uvTestEnv } from "../helpers/wheelhouse.ts";
import { installFakeComfyUI } from "../helpers/fake_comfyui.ts";
import { readSupervisorState } from "../../src/supervisor/state.ts";
import { readOrchestratorPid, writeOrchestratorPid } from "../../src/ipc/mod.ts";
import { alive, count, makeWorkspace, post, startGov, terminate } from "./_helpers.ts";

const HEALTHY = /Z healthy /;
const FAST = ["--poll-interval", "100", "--grace", "2"];

Deno.test("exit 42 resyncs and restarts ComfyUI under the same supervisor", async () => {
  const t = await makeWorkspace({ a: {} }, { fakeComfy: true });
  const g = startGov(["run", "--workspace", t.root, "--env", "a", ...FAST]);
  try {
    assertTrue(await g.waitForLog(HEALTHY), g.stderr());
    const [first] = await t.starts("a");
    assertEquals(first.env.COMFYGIT_SUPERVISED, "1");
    assertEquals(first.env.__COMFY_CLI_SESSION__, join(t.meta, `comfy-session-${g.pid}`));
    assertEquals(first.cwd, join(t.root, "environments", "a", "ComfyUI"));
    assertEquals(await readOrchestratorPid(t.meta), g.pid);
    const firstGuard = (await readSupervisorState(t.meta))?.guard_pid;

    assertEquals(await post(t.port, "/fake/exit", { code: 42 }), 200);
    assertTrue(await waitFor(() => count(g.stderr(), HEALTHY) >= 2, 30_000), g.stderr());
    const starts = await t.starts("a");
    assertEquals(starts.length, 2);
    assertTrue(starts[0].pid !== starts[1].pid);
    assertTrue(!(await alive(starts[0].pid)));
    assertMatch(g.stderr(), /exited with code 42: restart requested/);
    assertMatch(g.stderr(), /Z sync_started syncing a[\s\S]*Z sync_started syncing a/);
    const state = await readSupervisorState(t.meta);
    assertEquals([state?.restarts, state?.child_pid, state?.healthy], [1, starts[1].pid, true]);
    assertTrue(firstGuard !== undefined && firstGuard !== state?.guard_pid);
    assertTrue(!(await alive(firstGuard!)), "the first child's guard ended with it");
  } finally {
    await terminate(g);
    await t.cleanup();
  }
});

Deno.test("ComfyUI-Manager's restart (reboot marker, exit 0) brings ComfyUI back", async () => {
  const t = await makeWorkspace({ a: {} }, { fakeComfy: true });
  const g = startGov(["run", "--workspace", t.root, ...FAST]);
  try {
    assertTrue(await g.waitForLog(HEALTHY), g.stderr());
    assertEquals(await post(t.port, "/fake/reboot"), 200);
    assertTrue(await waitFor(() => count(g.stderr(), HEALTHY) >= 2, 30_000), g.stderr());
    assertMatch(g.stderr(), /exited with code 0: ComfyUI-Manager restart/);
    assertEquals((await t.starts("a")).length, 2);
    const leftovers = [...Deno.readDirSync(t.meta)].filter((e) => e.name.endsWith(".reboot"));
    assertEquals(leftovers, []);
  } finally {
    await terminate(g);
    await t.cleanup();
  }
});

Deno.test("crashes restart with doubling delays, then gov exits with ComfyUI's code", async () => {
  const t = await makeWorkspace({ a: { fake: { crash_at_start: 5 } } }, { fakeComfy: true });
  const g = startGov([
    "run",
    "--workspace",
    t.root,
    ...FAST,
    "--crash-delay",
    "0.2",
    "--crash-limit",
    "3",
  ]);
  try {
    assertEquals(await g.done, 5, g.stderr());
    assertEquals((await t.starts("a")).length, 3);
    assertMatch(g.stderr(), /crash 1\/3 .*restarting in 0\.2 s/);
    assertMatch(g.stderr(), /crash 2\/3 .*restarting in 0\.4 s/);
    assertMatch(g.stderr(), /giving up: 3 crashes within 300 s .*exiting 5/);
    assertEquals(await readOrchestratorPid(t.meta), undefined);
    const state = await readSupervisorState(t.meta);
    assertEquals([state?.running, state?.exit_code, state?.crashes], [false, 5, 3]);
  } finally {
    await g.kill();
    await t.cleanup();
  }
});

Deno.test("a live supervisor pid is refused (exit 1); a stale one is taken over", async () => {
  const t = await makeWorkspace({ a: {} }, { fakeComfy: true });
  const sleeper = new Deno.Command("sleep", { args: ["60"] }).spawn();
  try {
    await writeOrchestratorPid(t.meta, sleeper.pid);
    const refused = await gov(["run", "--workspace", t.root], { timeoutMs: 60_000 });
    assertEquals(refused.code, 1, refused.stderr);
    assertMatch(refused.stderr, new RegExp(`supervisor \\(pid ${sleeper.pid}\\) already runs`));
    assertMatch(refused.stderr, /gov stop/);
    assertEquals(await t.starts("a"), []);

    sleeper.kill("SIGKILL");
    await sleeper.status;
    const g = startGov(["run", "--workspace", t.root, ...FAST]);
    try {
      assertTrue(await g.waitForLog(HEALTHY), g.stderr());
      assertMatch(g.stderr(), new RegExp(`took over from supervisor pid ${sleeper.pid}`));
      assertEquals(await readOrchestratorPid(t.meta), g.pid);
    } finally {
      await terminate(g);
    }
  } finally {
    try {
      sleeper.kill("SIGKILL");
    } catch { /* gone */ }
    await sleeper.status;
    await t.cleanup();
  }
});

Deno.test("gov restart goes through .cmd; gov restart/stop without a supervisor fail clearly", async () => {
  const t = await makeWorkspace({ a: {} }, { fakeComfy: true });
  try {
    for (const cmd of ["restart", "stop"]) {
      const r = await gov([cmd, "--workspace", t.root]);
      assertEquals(r.code, 2, "a refusal: nothing to restart or stop");
      assertMatch(r.stderr, /no gov supervisor is running/);
      assertMatch(r.stderr, /gov run/);
    }
    const g = startGov(["run", "--workspace", t.root, "--grace", "2"]);
    try {
      assertTrue(await g.waitForLog(HEALTHY), g.stderr());
      const r = await gov(["restart", "--workspace", t.root, "--wait", "--json"], {
        timeoutMs: 60_000,
      });
      assertEquals(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      const starts = await t.starts("a");
      assertEquals(starts.length, 2);
      assertEquals([out.supervisor_pid, out.child_pid], [g.pid, starts[1].pid]);
      assertMatch(g.stderr(), /received restart/);
      const stop = await gov(["stop", "--workspace", t.root, "--wait"], { timeoutMs: 60_000 });
      assertEquals(stop.code, 0, stop.stderr);
      assertEquals(await g.done, 0);
      assertTrue(!(await alive(starts[1].pid)));
    } finally {
      await terminate(g);
    }
  } finally {
    await t.cleanup();
  }
});

Deno.test("SIGKILL of gov: the orphan guard ends ComfyUI's group (SIGTERM ignored) and frees the port", async () => {
  const t = await makeWorkspace(
    { a: { fake: { ignore_sigterm: 1, spawn_child: 1 } } },
    { fakeComfy: true },
  );
  const g = startGov(["run", "--workspace", t.root, "--poll-interval", "100", "--grace", "1"]);
  try {
    assertTrue(await g.waitForLog(HEALTHY), g.stderr());
    const [child] = await t.starts("a");
    const grandchild = Number(await Deno.readTextFile(join(t.stateDir("a"), "child.pid")));
    const guard = (await readSupervisorState(t.meta))?.guard_pid;
    assertTrue(guard !== undefined && await alive(guard), "a guard watches ComfyUI's group");
    g.proc.kill("SIGKILL");
    await g.done;
    const gone = async () =>
      !(await alive(child.pid)) && !(await alive(grandchild)) && !(await isPortOpen(t.port));
    assertTrue(await waitFor(gone, 20_000, 100), "ComfyUI, its grandchild and the port are freed");
    assertTrue(await waitFor(async () => !(await alive(guard!)), 10_000, 100), "the guard exits");
  } finally {
    await t.killAll();
    await g.kill();
    await t.cleanup();
  }
});

Deno.test("a ComfyUI orphaned by a supervisor killed with its guard is ended by the next one", async () => {
  const t = await makeWorkspace({ a: {} }, { fakeComfy: true });
  const first = startGov(["run", "--workspace", t.root, ...FAST]);
  try {
    assertTrue(await first.waitForLog(HEALTHY), first.stderr());
    // Both gone at once (e.g. the OOM killer): nothing was left to stop ComfyUI.
    const guard = (await readSupervisorState(t.meta))?.guard_pid;
    assertTrue(guard !== undefined);
    Deno.kill(guard!, "SIGKILL");
    first.proc.kill("SIGKILL");
    await first.done;
    const [orphan] = await t.starts("a");
    assertTrue(await alive(orphan.pid), "ComfyUI runs in its own session");
    const second = startGov(["run", "--workspace", t.root, ...FAST]);
    try {
      assertTrue(await second.waitForLog(HEALTHY), second.stderr());
      assertMatch(second.stderr(), new RegExp(`ended ComfyUI pid ${orphan.pid} left behind`));
      assertTrue(!(await alive(orphan.pid)));
      assertEquals((await t.starts("a")).length, 2);
    } finally {
      await terminate(second);
    }
  } finally {
    await t.killAll();
    await first.kill();
    await t.cleanup();
  }
});

Deno.test("a uv-managed environment is synced, then ComfyUI runs from its .venv-prod", async () => {
  const root = await Deno.makeTempDir({ prefix: "gov-sup-uv-" });
  const env = await uvTestEnv();
  let g: ReturnType<typeof startGov> | undefined;
  try {
    await Deno.mkdir(join(root, ".metadata"));
    await installFakeComfyUI(join(root, "environments", "u", "ComfyUI"));
    const init = await gov(["init", "--workspace", root, "--env", "u"], {
      env,
      timeoutMs: 120_000,
    });
    assertEquals(init.code, 0, init.stderr);
    const port = freePort();
    g = startGov(["run", "--workspace", root, ...FAST, "--", "--port", String(port)], { env });
    assertTrue(await g.waitForLog(HEALTHY), g.stderr());
    const python = join(root, "environments", "u", ".venv-prod", "bin", "python");
    assertMatch(
      g.stderr(),
      new RegExp(`started ComfyUI pid \\d+ in u: ${python} main\\.py --port ${port}`),
    );
    assertMatch(g.stderr(), /Z sync_done u in sync/);
    assertEquals(await post(port, "/fake/exit", { code: 42 }), 200);
    assertTrue(await waitFor(() => count(g!.stderr(), HEALTHY) >= 2, 30_000), g.stderr());
    assertEquals(
      count(g.stderr(), /Z sync_started syncing u/),
      2,
      "synced again before the restart",
    );
  } finally {
    if (g) await terminate(g);
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
});

Deno.test("a ComfyUI exiting 43 with no switch request is rate-limited, then gov gives up with 43", async () => {
  const t = await makeWorkspace({ a: { fake: { crash_at_start: 43 } } }, { fakeComfy: true });
  const g = startGov([
    "run",
    "--workspace",
    t.root,
    ...FAST,
    "--crash-delay",
    "0.1",
    "--crash-limit",
    "2",
  ]);
  try {
    // Before, gov restarted it at once, forever: the bound turns that into a failure.
    let ended = false;
    g.done.then(() => ended = true);
    assertTrue(await waitFor(() => ended, 60_000), `gov still restarts it: ${g.stderr()}`);
    assertEquals(await g.done, 43, g.stderr());
    assertEquals((await t.starts("a")).length, 4, "2 crashes of 2 restart requests each");
    assertMatch(g.stderr(), /giving up: 2 crashes .*restart requests .* before ComfyUI ever/);
  } finally {
    await g.kill();
    await t.cleanup();
  }
});

Deno.test("a port held by another process: gov names the port and its holder, never starts ComfyUI", async () => {
  const holder = Deno.listen({ hostname: "127.0.0.1", port: freePort() });
  const port = (holder.addr as Deno.NetAddr).port;
  const t = await makeWorkspace({ a: {} }, { fakeComfy: true, port });
  const g = startGov([
    "run",
    "--workspace",
    t.root,
    "--poll-interval",
    "100",
    "--grace",
    "0.2",
    "--crash-delay",
    "0.1",
    "--crash-limit",
    "2",
  ]);
  try {
    assertEquals(await g.done, 1, g.stderr());
    assertEquals(await t.starts("a"), []);
    const held = `port ${port} on 127\\.0\\.0\\.1 is held by pid ${Deno.pid}`;
    assertMatch(g.stderr(), new RegExp(`Z port_busy ${held} \\(.*deno`));
    assertMatch(g.stderr(), new RegExp(`giving up: 2 crashes .*last: ${held}`));
  } finally {
    holder.close();
    await g.kill();
    await t.cleanup();
  }
});
