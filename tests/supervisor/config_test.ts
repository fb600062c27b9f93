// Settings ([supervisor] in gov.toml), environment detection and choice (seed table
// "test_environment_detection"), status, systemd unit, and switch requests in-process.
import { join } from "node:path";
import {
  assertEquals,
  assertMatch,
  assertRejects,
  assertThrows,
  assertTrue,
} from "../helpers/assert.ts";
import { ConfigError, GovError, NotFoundError, UsageError } from "../../src/errors.ts";
import {
  crashDelayS,
  DEFAULT_SUPERVISOR_SETTINGS,
  loadSupervisorSettings,
  parseSupervisorSettings,
} from "../../src/supervisor/settings.ts";
import { detectEnvironmentType, findWorkspaceRoot, workspaceAt } from "../../src/workspace/root.ts";
import { chooseStartEnvironment } from "../../src/supervisor/start.ts";
import { supervisorStatus } from "../../src/supervisor/status.ts";
import { systemdQuote, systemdUnit, unitGovCommand } from "../../src/supervisor/systemd.ts";
import {
  abortSwitch,
  requestSwitch,
  shouldSpawnSupervisorForSwitch,
  SwitchInProgressError,
} from "../../src/supervisor/control.ts";
import {
  acquireSwitchLock,
  cleanupSwitchStatus,
  isSwitchLocked,
  readSwitchRequest,
  readSwitchStatus,
  releaseSwitchLock,
  takeCommand,
  writeOrchestratorPid,
  writeStartupState,
  writeSwitchRequest,
  writeSwitchStatus,
} from "../../src/ipc/mod.ts";
import { makeWorkspace } from "./_helpers.ts";

Deno.test("settings: defaults without gov.toml; [supervisor] keys override them", async () => {
  const t = await makeWorkspace({ a: {} });
  try {
    assertEquals(await loadSupervisorSettings(t.ws), { ...DEFAULT_SUPERVISOR_SETTINGS });
    assertEquals(DEFAULT_SUPERVISOR_SETTINGS.pollIntervalMs, 250);
    assertEquals(DEFAULT_SUPERVISOR_SETTINGS.healthTimeoutS, 600);
    assertEquals(DEFAULT_SUPERVISOR_SETTINGS.crashDelayS, 10);
    assertEquals(DEFAULT_SUPERVISOR_SETTINGS.crashLimit, 3);
    assertEquals(DEFAULT_SUPERVISOR_SETTINGS.crashWindowS, 300);
    await Deno.writeTextFile(
      join(t.root, "gov.toml"),
      '[supervisor]\ngrace = 3\ncrash_limit = 5\ndefault_env = "a"\n' +
        'comfyui_args = ["--port", "9"]\n',
    );
    const s = await loadSupervisorSettings(t.ws);
    assertEquals([s.graceS, s.crashLimit, s.defaultEnv, s.comfyuiArgs], [3, 5, "a", [
      "--port",
      "9",
    ]]);
    assertEquals(s.pollIntervalMs, 250);
  } finally {
    await t.cleanup();
  }
});

Deno.test("settings: wrong types, bounds and unknown keys name the file and the key", () => {
  const cases: [string, RegExp][] = [
    ["[supervisor]\ngrace = 'x'\n", /supervisor\.grace must be a number >= 0/],
    ["[supervisor]\ncrash_limit = 1.5\n", /supervisor\.crash_limit must be an integer >= 1/],
    ["[supervisor]\npoll_interval_ms = 1\n", /poll_interval_ms must be an integer >= 10/],
    [
      "[supervisor]\ngrase = 3\n",
      /unknown key supervisor\.grase \(did you mean supervisor\.grace\?\)/,
    ],
    ["[supervisor]\ndefault_env = '../x'\n", /default_env must be a valid environment name/],
    ["[supervisor]\ncomfyui_args = '--port 1'\n", /comfyui_args must be a list of strings/],
    ["supervisor = 3\n", /\[supervisor\] must be a table/],
    ["[supervisor\n", /is not valid TOML/],
    ["[supervisr]\ngrace = 3\n", /unknown section \[supervisr\] \(did you mean \[supervisor\]\?\)/],
  ];
  for (const [text, re] of cases) {
    const err = assertThrows(() => parseSupervisorSettings(text, "/ws/gov.toml"), ConfigError, re);
    assertMatch(err.message, /^\/ws\/gov\.toml: /);
    assertEquals((err as ConfigError).exitCode, 2);
  }
});

Deno.test("crash delay doubles per crash and is capped", () => {
  const s = { ...DEFAULT_SUPERVISOR_SETTINGS };
  assertEquals([1, 2, 3, 4, 5].map((n) => crashDelayS(s, n)), [10, 20, 40, 60, 60]);
});

Deno.test("detection: COMFYGIT_HOME wins, then ~/comfygit with .metadata, then upward search", async () => {
  const t = await makeWorkspace({ prod: {} });
  const home = await Deno.makeTempDir({ prefix: "gov-home-" });
  try {
    const cwd = join(t.root, "environments", "prod", "ComfyUI");
    const env = (vars: Record<string, string>) => (n: string) => vars[n];
    assertEquals(findWorkspaceRoot({ cwd: "/", env: env({ COMFYGIT_HOME: t.root }) }), t.root);
    assertEquals(findWorkspaceRoot({ cwd, env: env({ HOME: home }) }), t.root);
    await Deno.mkdir(join(home, "comfygit", ".metadata"), { recursive: true });
    assertEquals(
      findWorkspaceRoot({ cwd: "/", env: env({ HOME: home }) }),
      join(home, "comfygit"),
    );
    assertEquals(
      findWorkspaceRoot({ cwd: "/", env: env({ COMFYGIT_HOME: join(home, "missing") }) }),
      undefined,
    );
  } finally {
    await Deno.remove(home, { recursive: true });
    await t.cleanup();
  }
});

Deno.test("detection: managed only inside <ws>/environments/<known>/ComfyUI", async () => {
  const t = await makeWorkspace({ prod: {} });
  try {
    const env = () => undefined;
    const comfy = join(t.root, "environments", "prod", "ComfyUI");
    await Deno.mkdir(join(comfy, "custom_nodes"), { recursive: true });
    const managed = detectEnvironmentType({ cwd: comfy, env });
    assertEquals([managed.managed, managed.environment, managed.workspace?.root], [
      true,
      "prod",
      t.root,
    ]);
    assertTrue(detectEnvironmentType({ cwd: join(comfy, "custom_nodes"), env }).managed);
    assertTrue(!detectEnvironmentType({ cwd: join(t.root, "environments", "prod"), env }).managed);
    assertTrue(!detectEnvironmentType({ cwd: t.root, env }).managed);
    const unknown = join(t.root, "environments", "ghost", "ComfyUI");
    assertTrue(!detectEnvironmentType({ cwd: unknown, env }).managed);
    const outside = await Deno.makeTempDir();
    try {
      const d = detectEnvironmentType({ cwd: outside, env });
      assertEquals([d.managed, d.workspace], [false, undefined]);
    } finally {
      await Deno.remove(outside);
    }
  } finally {
    await t.cleanup();
  }
});

Deno.test("a switch needs a new supervisor only when none runs and we are not supervised", async () => {
  const t = await makeWorkspace({ a: {} });
  try {
    assertEquals(await shouldSpawnSupervisorForSwitch(t.ws, () => undefined), true);
    assertEquals(
      await shouldSpawnSupervisorForSwitch(
        t.ws,
        (n) => n === "COMFYGIT_SUPERVISED" ? "1" : undefined,
      ),
      false,
    );
    await writeOrchestratorPid(t.meta); // this test process: alive
    assertEquals(await shouldSpawnSupervisorForSwitch(t.ws, () => undefined), false);
  } finally {
    await t.cleanup();
  }
});

Deno.test("start environment: flag, pending request, remembered, default, only one", async () => {
  const t = await makeWorkspace({ a: {}, b: {} });
  try {
    await assertRejects(
      () => chooseStartEnvironment(t.ws, {}),
      UsageError,
      /several exist.*/,
    );
    assertEquals((await chooseStartEnvironment(t.ws, { defaultEnv: "b" })).from, "default");
    await writeStartupState(t.meta, { environment_name: "b" });
    assertEquals(await chooseStartEnvironment(t.ws, { defaultEnv: "a" }), {
      name: "b",
      from: "remembered",
      discarded: undefined,
    });
    await writeSwitchRequest(t.meta, "a", "b");
    const c = await chooseStartEnvironment(t.ws, {});
    assertEquals([c.name, c.from, c.request?.target_env], ["a", "request", "a"]);
    const f = await chooseStartEnvironment(t.ws, { explicit: "b" });
    assertEquals([f.name, f.from, f.discarded?.target_env], ["b", "flag", "a"]);
    await writeSwitchRequest(t.meta, "ghost");
    assertEquals((await chooseStartEnvironment(t.ws, {})).name, "b");
  } finally {
    await t.cleanup();
  }
  const one = await makeWorkspace({ solo: {} });
  try {
    assertEquals((await chooseStartEnvironment(one.ws, {})).from, "only");
  } finally {
    await one.cleanup();
  }
});

Deno.test("status without a supervisor: not running, idle switch", async () => {
  const t = await makeWorkspace({ a: {} });
  try {
    const s = await supervisorStatus(t.ws);
    assertEquals([s.running, s.pid, s.child_pid, s.healthy], [false, null, null, false]);
    assertEquals([s.switch.state, s.switch.progress], ["idle", 0]);
    assertEquals(s.workspace, t.root);
  } finally {
    await t.cleanup();
  }
});

Deno.test("switch request: unknown env is NotFound; concurrent callers get one winner, same target joins", async () => {
  const t = await makeWorkspace({ a: {}, b: {}, c: {} });
  const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    await assertRejects(() => requestSwitch(t.ws, "zzz"), NotFoundError, /'zzz' not found/);
    await writeOrchestratorPid(t.meta, sleeper.pid); // a live "supervisor"
    await writeStartupState(t.meta, { environment_name: "a" });
    const results = await Promise.allSettled([
      requestSwitch(t.ws, "b"),
      requestSwitch(t.ws, "c"),
    ]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    assertEquals([won.length, lost.length], [1, 1]);
    assertTrue(lost[0].reason instanceof SwitchInProgressError);
    assertMatch(lost[0].reason.message, /switch in progress/);
    const req = await readSwitchRequest(t.meta);
    const winner = (won[0] as PromiseFulfilledResult<{ target_env: string }>).value.target_env;
    assertEquals([req?.target_env, req?.source_env], [winner, "a"]);
    const st = await readSwitchStatus(t.meta);
    assertEquals([st.state, st.target_env], ["preparing", winner]);

    // Callers to one same target: one request is written, the other caller joins it.
    await cleanupSwitchStatus(t.meta); // the supervisor took the request above and finished
    const same = await Promise.all([requestSwitch(t.ws, "c"), requestSwitch(t.ws, "c")]);
    assertEquals(same.map((r) => r.outcome).sort(), ["in_progress", "requested"]);
    const joined = same.find((r) => r.outcome === "in_progress")!;
    const wrote = same.find((r) => r.outcome === "requested")!;
    assertEquals(joined.supervisor_pid, sleeper.pid);
    // Whichever file the joiner read (request, status, or lock), it waits from the same moment.
    assertTrue(Math.abs(joined.since - wrote.request!.timestamp) < 1);
    assertEquals((await readSwitchRequest(t.meta))?.target_env, "c");
    // Another target while that request is pending is refused, naming the pending one.
    await assertRejects(() => requestSwitch(t.ws, "b"), SwitchInProgressError, /to 'c'/);
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
    await t.cleanup();
  }
});

Deno.test("switch request: a lock held by a live process refuses; a dead owner's is taken over", async () => {
  const t = await makeWorkspace({ a: {}, b: {} });
  const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    await writeOrchestratorPid(t.meta, sleeper.pid);
    assertTrue(await acquireSwitchLock(t.meta, { pid: sleeper.pid, extra: { target_env: "a" } }));
    await assertRejects(() => requestSwitch(t.ws, "b"), SwitchInProgressError, /to 'a'/);
    await releaseSwitchLock(t.meta, { force: true });
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    await Deno.writeTextFile(join(t.meta, ".switch.lock"), JSON.stringify({ pid: dead.pid }));
    const r = await requestSwitch(t.ws, "b");
    assertEquals([r.outcome, r.supervisor_pid], ["requested", sleeper.pid]);
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
    await t.cleanup();
  }
});

Deno.test("abort: a pending request is withdrawn; a switch under way gets abort_switch", async () => {
  const t = await makeWorkspace({ a: {}, b: {} });
  const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    await assertRejects(() => abortSwitch(t.ws), GovError, /no switch to abort/);
    await writeOrchestratorPid(t.meta, sleeper.pid);
    await writeStartupState(t.meta, { environment_name: "a" });
    assertEquals((await requestSwitch(t.ws, "b")).outcome, "requested");
    const withdrawn = await abortSwitch(t.ws);
    assertEquals([withdrawn.outcome, withdrawn.target_env], ["withdrawn", "b"]);
    assertEquals(await readSwitchRequest(t.meta), undefined);
    const st = await readSwitchStatus(t.meta);
    assertEquals([st.state, st.target_env, st.source_env], ["aborted", "b", "a"]);
    assertTrue(!(await isSwitchLocked(t.meta)), "the lock was released");

    // The supervisor holds the lock while it switches: it is told through .cmd.
    assertTrue(await acquireSwitchLock(t.meta, { pid: sleeper.pid }));
    await writeSwitchStatus(t.meta, "syncing", { target_env: "b" });
    const told = await abortSwitch(t.ws);
    assertEquals([told.outcome, told.supervisor_pid, told.target_env], [
      "aborting",
      sleeper.pid,
      "b",
    ]);
    const cmd = await takeCommand(t.meta);
    assertEquals(cmd && "command" in cmd ? cmd.command : cmd, "abort_switch");
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
    await t.cleanup();
  }
});

Deno.test("systemd unit: gov run for the workspace, restart on failure, mixed kill mode", () => {
  const unit = systemdUnit({
    workspace: "/srv/my comfy",
    env: "prod",
    user: "comfy",
    graceS: 10,
    command: { command: "/usr/local/bin/gov", args: [] },
  });
  assertMatch(
    unit,
    /^ExecStart=\/usr\/local\/bin\/gov run --workspace "\/srv\/my comfy" --env prod$/m,
  );
  assertMatch(unit, /^Restart=on-failure$/m);
  assertMatch(unit, /^KillMode=mixed$/m);
  assertMatch(unit, /^TimeoutStopSec=30$/m);
  assertMatch(unit, /^User=comfy$/m);
  assertMatch(unit, /^WorkingDirectory=\/srv\/my comfy$/m);
  assertMatch(unit, /^Environment="COMFYGIT_HOME=\/srv\/my comfy"$/m);
  assertMatch(unit, /^RestartPreventExitStatus=2$/m);
  assertTrue(!/DENO=/.test(unit), "a binary needs no Deno");
  assertEquals(systemdQuote("100%"), "100%%");
  assertEquals(systemdQuote('a"b'), '"a\\"b"');

  // From source, scripts/gov runs Deno: the unit names it, as systemd's PATH may not.
  const fromSource = systemdUnit({ workspace: "/srv/comfy", graceS: 5, command: unitGovCommand() });
  assertMatch(fromSource, /^ExecStart=\S+\/scripts\/gov run --workspace \/srv\/comfy$/m);
  assertTrue(fromSource.includes(`Environment=${systemdQuote(`DENO=${Deno.execPath()}`)}`));
  assertMatch(fromSource, /^TimeoutStopSec=25$/m);
});

Deno.test("workspaceAt paths", () => {
  const ws = workspaceAt("/srv/comfy/");
  assertEquals([ws.root, ws.metadataDir], ["/srv/comfy", "/srv/comfy/.metadata"]);
});
