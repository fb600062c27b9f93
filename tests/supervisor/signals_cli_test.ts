// Stopping and detaching (seed table "test_orchestrator_bootstrap"): SIGTERM with a
// ComfyUI that ignores it and has a grandchild, `gov run --detach`, and `gov switch`
// starting a supervisor when none runs.
import { join } from "node:path";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { gov } from "../helpers/gov.ts";
import { isPortOpen, waitFor } from "../helpers/net.ts";
import { readOrchestratorPid, readSwitchStatus } from "../../src/ipc/mod.ts";
import { supervisorStatus } from "../../src/supervisor/status.ts";
import { readSupervisorState } from "../../src/supervisor/state.ts";
import { alive, makeWorkspace, startGov, terminate } from "./_helpers.ts";

const HEALTHY = /Z healthy /;

Deno.test("SIGTERM: a ComfyUI ignoring it and its grandchild are killed after the grace period", async () => {
  const t = await makeWorkspace(
    { a: { fake: { ignore_sigterm: 1, spawn_child: 1 } } },
    { fakeComfy: true },
  );
  const g = startGov(["run", "--workspace", t.root, "--grace", "1", "--poll-interval", "100"]);
  try {
    assertTrue(await g.waitForLog(HEALTHY), g.stderr());
    const [child] = await t.starts("a");
    const grandchild = Number(await Deno.readTextFile(join(t.stateDir("a"), "child.pid")));
    assertTrue(await alive(grandchild));
    const guard = (await readSupervisorState(t.meta))?.guard_pid;
    assertEquals(await terminate(g), 0);
    assertMatch(g.stderr(), /stopping ComfyUI pid \d+ \(received SIGTERM\)/);
    assertMatch(g.stderr(), /SIGKILL after 1 s grace/);
    assertTrue(!(await alive(child.pid)), "ComfyUI is gone");
    assertTrue(await waitFor(async () => !(await alive(grandchild)), 5000), "no orphan grandchild");
    assertTrue(!(await isPortOpen(t.port)), "the port is free");
    assertTrue(guard !== undefined && !(await alive(guard)), "the orphan guard ended too");
    assertEquals(await readOrchestratorPid(t.meta), undefined);
    assertTrue(!(await exists(join(t.meta, ".switch.lock"))));
    const s = await supervisorStatus(t.ws);
    assertEquals([s.running, s.stop_reason], [false, "received SIGTERM"]);
  } finally {
    await g.kill();
    await t.cleanup();
  }
});

Deno.test("Ctrl-C twice: the second SIGINT SIGKILLs ComfyUI's group without waiting the grace", async () => {
  const t = await makeWorkspace({ a: { fake: { ignore_sigterm: 1 } } }, { fakeComfy: true });
  const g = startGov(["run", "--workspace", t.root, "--grace", "600", "--poll-interval", "100"]);
  try {
    assertTrue(await g.waitForLog(HEALTHY), g.stderr());
    const [child] = await t.starts("a");
    g.proc.kill("SIGINT");
    assertTrue(await g.waitForLog(/stopping ComfyUI pid \d+ \(received SIGINT\)/), g.stderr());
    assertTrue(await alive(child.pid), "SIGTERM is ignored: the grace period runs");
    g.proc.kill("SIGINT");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise((r) => timer = setTimeout(r, 20_000, "still running after 20 s"));
    const exited = await Promise.race([g.done, late]);
    clearTimeout(timer);
    assertEquals(exited, 0, g.stderr());
    assertMatch(g.stderr(), /stop requested again: SIGKILL to ComfyUI pid/);
    assertTrue(!(await alive(child.pid)));
    assertTrue(!(await isPortOpen(t.port)), "the port is free");
  } finally {
    await g.kill();
    await t.cleanup();
  }
});

Deno.test("gov run --detach prints the pid, logs to orchestrator.log, and gov stop --wait ends it", async () => {
  const t = await makeWorkspace({ a: {} }, { fakeComfy: true });
  try {
    const unknown = await gov(["run", "--detach", "--workspace", t.root, "--env", "zzz"]);
    assertEquals(unknown.code, 2, unknown.stderr);
    assertMatch(unknown.stderr, /^error: environment 'zzz' not found/);
    assertEquals(await readOrchestratorPid(t.meta), undefined);
    const r = await gov(
      ["run", "--detach", "--workspace", t.root, "--poll-interval", "100", "--grace", "2"],
      { timeoutMs: 60_000 },
    );
    assertEquals(r.code, 0, r.stderr);
    const pid = Number(r.stdout.trim());
    assertTrue(pid > 0 && await alive(pid), r.stdout);
    assertEquals(await readOrchestratorPid(t.meta), pid);
    const log = join(t.meta, "orchestrator.log");
    assertTrue(
      await waitFor(async () => HEALTHY.test(await Deno.readTextFile(log).catch(() => "")), 30_000),
    );
    const text = await Deno.readTextFile(log);
    assertMatch(text, /supervisor_started gov supervisor pid \d+/);
    assertMatch(text, /To see the GUI go to/, "ComfyUI's own output is in the log too");
    const status = await supervisorStatus(t.ws);
    assertEquals([status.running, status.pid, status.log_file], [true, pid, log]);

    const again = await gov(["run", "--detach", "--workspace", t.root], { timeoutMs: 60_000 });
    assertEquals(again.code, 1);
    assertMatch(again.stderr, /^error: a gov supervisor \(pid \d+\) already runs this workspace/);
    assertEquals(again.stderr.trimEnd().split("\n").length, 2, "one error line and its hint");
    const sid = new TextDecoder().decode(
      (await new Deno.Command("ps", { args: ["-o", "sid=", "-p", String(pid)] }).output()).stdout,
    ).trim();
    assertEquals(Number(sid), pid, "the detached supervisor leads its own session");

    const stop = await gov(["stop", "--workspace", t.root, "--wait", "--json"], {
      timeoutMs: 60_000,
    });
    assertEquals(stop.code, 0, stop.stderr);
    assertEquals(JSON.parse(stop.stdout), { supervisor_pid: pid, stopped: true });
    assertTrue(!(await alive(pid)));
    assertTrue(!(await isPortOpen(t.port)));
    assertMatch(await Deno.readTextFile(log), /received shutdown/);
  } finally {
    await t.cleanup();
  }
});

Deno.test("gov switch with no supervisor starts one for the target and waits for it", async () => {
  const t = await makeWorkspace({ a: {}, b: {} }, { fakeComfy: true });
  try {
    const r = await gov(["switch", "b", "--workspace", t.root, "--wait"], { timeoutMs: 90_000 });
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stderr, /no supervisor was running: started one \(pid \d+\) for b/);
    assertMatch(r.stderr, /switched to b/);
    const s = await readSwitchStatus(t.meta);
    assertEquals([s.state, s.target_env], ["complete", "b"]);
    const st = await supervisorStatus(t.ws);
    assertEquals([st.running, st.environment, st.healthy], [true, "b", true]);
    assertEquals((await t.starts("a")).length, 0);
    assertMatch(
      await Deno.readTextFile(join(t.meta, "orchestrator.log")),
      /pending switch request/,
    );
    const stop = await gov(["stop", "--workspace", t.root, "--wait"], { timeoutMs: 60_000 });
    assertEquals(stop.code, 0, stop.stderr);
  } finally {
    await t.cleanup();
  }
});

Deno.test("--log-file rotates to FILE.1 past GOV_LOG_MAX_BYTES, keeping the latest lines", async () => {
  const t = await makeWorkspace({ a: {} }, { fakeComfy: true });
  const log = join(t.root, "gov.log");
  const g = startGov(
    ["run", "--workspace", t.root, "--log-file", log, "--poll-interval", "100", "--grace", "1"],
    { env: { GOV_LOG_MAX_BYTES: "1024" } },
  );
  const read = (p: string) => Deno.readTextFile(p).catch(() => "");
  try {
    assertTrue(await waitFor(async () => HEALTHY.test(await read(log)), 30_000), g.stderr());
    assertEquals(g.stderr(), "", "events and ComfyUI output go to the file only");
    assertEquals(await terminate(g), 0);
    const [current, previous] = [await read(log), await read(`${log}.1`)];
    assertMatch(current, /log rotated; earlier lines: .*gov\.log\.1/);
    assertMatch(previous + current, /Z healthy [\s\S]*Z stopped supervisor stopped/);
    for (const text of [current, previous]) {
      assertTrue(new TextEncoder().encode(text).length <= 1024, `${text.length} bytes`);
    }
  } finally {
    await g.kill();
    await t.cleanup();
  }
});

Deno.test("bad flags are usage errors that change nothing", async () => {
  const t = await makeWorkspace({ a: {} }, { fakeComfy: true });
  try {
    for (
      const args of [
        ["run", "--workspace", t.root, "--grace", "-1"],
        ["run", "--workspace", t.root, "--colour"],
        ["run", "--workspace", t.root, "stray"],
        ["run", "--workspace", t.root, "--env", "../x"],
        ["run", "--workspace", join(t.root, "missing")],
      ]
    ) {
      const r = await gov(args);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertMatch(r.stderr, /^error: /);
    }
    const unknown = await gov(["run", "--workspace", t.root, "--env", "zzz"]);
    assertEquals(unknown.code, 2);
    assertMatch(unknown.stderr, /environment 'zzz' not found/);
    await Deno.writeTextFile(join(t.root, "gov.toml"), "[supervisor]\ngrace = 'soon'\n");
    const cfg = await gov(["run", "--workspace", t.root]);
    assertEquals(cfg.code, 2);
    assertMatch(cfg.stderr, /gov\.toml: supervisor\.grace must be a number/);
    assertEquals(await t.starts("a"), []);
    assertEquals(await readOrchestratorPid(t.meta), undefined);
  } finally {
    await t.cleanup();
  }
});

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}
