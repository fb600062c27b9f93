// File IPC of `.metadata/` (seed table "test_file_communication"): switch request and
// status, orchestrator pid, switch lock, startup state, and `.cmd`.
import { join } from "node:path";
import { assertEquals, assertRejects, assertTrue } from "../helpers/assert.ts";
import {
  acquireSwitchLock,
  claimOrchestratorPid,
  cleanupOrchestratorPid,
  cleanupSwitchStatus,
  clearCommand,
  isActiveSwitchState,
  isSwitchLocked,
  liveOrchestratorPid,
  metadataPaths,
  peekSwitchRequest,
  readOrchestratorPid,
  readStartupState,
  readSwitchLock,
  readSwitchRequest,
  readSwitchStatus,
  refreshSwitchLock,
  releaseSwitchLock,
  SupervisorRunningError,
  takeCommand,
  writeCommand,
  writeOrchestratorPid,
  writeStartupState,
  writeSwitchRequest,
  writeSwitchStatus,
} from "../../src/ipc/mod.ts";
import { REPO_ROOT } from "../helpers/paths.ts";

async function withMeta(fn: (dir: string) => Promise<void>) {
  const root = await Deno.makeTempDir({ prefix: "gov-ipc-" });
  const dir = join(root, ".metadata");
  await Deno.mkdir(dir);
  try {
    await fn(dir);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** A pid that is certainly dead: a process we started and reaped. */
async function deadPid(): Promise<number> {
  const c = new Deno.Command("true").spawn();
  await c.status;
  return c.pid;
}

Deno.test("switch request: written with target, source and a float timestamp", async () => {
  await withMeta(async (dir) => {
    const before = Date.now() / 1000;
    await writeSwitchRequest(dir, "staging", "prod");
    const raw = JSON.parse(await Deno.readTextFile(join(dir, ".switch_request.json")));
    assertEquals(raw.target_env, "staging");
    assertEquals(raw.source_env, "prod");
    assertTrue(typeof raw.timestamp === "number" && raw.timestamp >= before - 1);
  });
});

Deno.test("switch request: reading returns it and deletes the file", async () => {
  await withMeta(async (dir) => {
    await writeSwitchRequest(dir, "staging", "prod");
    const req = await readSwitchRequest(dir);
    assertEquals(req?.target_env, "staging");
    assertEquals(req?.source_env, "prod");
    assertEquals(await readSwitchRequest(dir), undefined);
    assertTrue(!(await exists(join(dir, ".switch_request.json"))));
  });
});

Deno.test("switch request: missing file, bad JSON, missing target_env are no request", async () => {
  await withMeta(async (dir) => {
    assertEquals(await readSwitchRequest(dir), undefined);
    const p = join(dir, ".switch_request.json");
    await Deno.writeTextFile(p, "{not json");
    assertEquals(await peekSwitchRequest(dir), undefined);
    assertEquals(await readSwitchRequest(dir), undefined);
    assertTrue(!(await exists(p)), "an invalid request is consumed so it cannot fire again");
    await Deno.writeTextFile(p, JSON.stringify({ source_env: "prod", timestamp: 1 }));
    assertEquals(await readSwitchRequest(dir), undefined);
    await Deno.writeTextFile(p, JSON.stringify(["staging"]));
    assertEquals(await readSwitchRequest(dir), undefined);
  });
});

Deno.test("switch request: peek does not consume; a ComfyGit request without source reads", async () => {
  await withMeta(async (dir) => {
    const p = join(dir, ".switch_request.json");
    await Deno.writeTextFile(p, JSON.stringify({ target_env: "b", timestamp: 12.5 }));
    assertEquals((await peekSwitchRequest(dir))?.target_env, "b");
    assertTrue(await exists(p));
    const req = await readSwitchRequest(dir);
    assertEquals(req, { target_env: "b", timestamp: 12.5 });
  });
});

Deno.test("switch status: state, standard progress, message, updated_at and extra keys", async () => {
  await withMeta(async (dir) => {
    await writeSwitchStatus(dir, "syncing", { target_env: "b", source_env: "a" });
    const raw = JSON.parse(await Deno.readTextFile(join(dir, ".switch_status.json")));
    assertEquals(raw.state, "syncing");
    assertEquals(raw.progress, 30);
    assertEquals(raw.target_env, "b");
    assertEquals(raw.source_env, "a");
    assertTrue(typeof raw.message === "string" && raw.message.length > 0);
    assertTrue(typeof raw.updated_at === "number");
    const expected: Record<string, number> = {
      preparing: 10,
      syncing: 30,
      starting: 60,
      validating: 80,
      complete: 100,
      rolling_back: 90,
      failed: 100,
      recovering: 50,
      aborted: 100,
    };
    for (const [state, progress] of Object.entries(expected)) {
      await writeSwitchStatus(dir, state as "syncing", { error: "x" });
      const s = await readSwitchStatus(dir);
      assertEquals([s.state, s.progress, s.error], [state, progress, "x"]);
    }
  });
});

Deno.test("switch status: readers fall back to idle on a missing or corrupt file", async () => {
  await withMeta(async (dir) => {
    assertEquals((await readSwitchStatus(dir)).state, "idle");
    assertEquals((await readSwitchStatus(dir)).progress, 0);
    await Deno.writeTextFile(join(dir, ".switch_status.json"), "garbage");
    assertEquals((await readSwitchStatus(dir)).state, "idle");
    await writeSwitchStatus(dir, "complete");
    await cleanupSwitchStatus(dir);
    assertEquals((await readSwitchStatus(dir)).state, "idle");
    assertTrue(isActiveSwitchState("validating"));
    assertTrue(!isActiveSwitchState("failed") && !isActiveSwitchState("idle"));
  });
});

Deno.test("orchestrator pid: written as plain text, read back, cleaned up", async () => {
  await withMeta(async (dir) => {
    await writeOrchestratorPid(dir);
    assertEquals(await Deno.readTextFile(join(dir, ".orchestrator.pid")), `${Deno.pid}\n`);
    assertEquals(await readOrchestratorPid(dir), Deno.pid);
    await cleanupOrchestratorPid(dir);
    assertEquals(await readOrchestratorPid(dir), undefined);
    await cleanupOrchestratorPid(dir); // idempotent
  });
});

Deno.test("orchestrator pid: garbage reads as no pid; cleanup spares another pid's file", async () => {
  await withMeta(async (dir) => {
    await Deno.writeTextFile(join(dir, ".orchestrator.pid"), "abc\n");
    assertEquals(await readOrchestratorPid(dir), undefined);
    await writeOrchestratorPid(dir, 4242);
    await cleanupOrchestratorPid(dir, { onlyIf: Deno.pid });
    assertEquals(await readOrchestratorPid(dir), 4242);
  });
});

Deno.test("orchestrator pid: a live pid is refused, a dead one taken over", async () => {
  await withMeta(async (dir) => {
    const dead = await deadPid();
    await writeOrchestratorPid(dir, dead);
    assertEquals(await liveOrchestratorPid(dir), undefined);
    const r = await claimOrchestratorPid(dir);
    assertEquals(r.previous, dead);
    assertEquals(await readOrchestratorPid(dir), Deno.pid);
    // Our own pid is live: another claimant must be refused, naming it.
    const err = await assertRejects(
      () => claimOrchestratorPid(dir, { pid: 999_999 }),
      SupervisorRunningError,
      new RegExp(`pid ${Deno.pid}`),
    );
    assertEquals((err as SupervisorRunningError).exitCode, 1);
    assertEquals(await readOrchestratorPid(dir), Deno.pid);
  });
});

Deno.test("switch lock: acquire, refuse a second holder, release", async () => {
  await withMeta(async (dir) => {
    assertTrue(!(await isSwitchLocked(dir)));
    assertTrue(await acquireSwitchLock(dir));
    assertTrue(await isSwitchLocked(dir));
    const info = await readSwitchLock(dir);
    assertEquals(info?.pid, Deno.pid);
    assertTrue(typeof info?.created === "number");
    // A different live owner cannot take it.
    assertTrue(!(await acquireSwitchLock(dir, { pid: 1 })));
    // Not re-entrant: a second caller in this same process is refused too.
    assertTrue(!(await acquireSwitchLock(dir)));
    // Another pid cannot release it.
    assertTrue(!(await releaseSwitchLock(dir, { pid: 1 })));
    assertTrue(await isSwitchLocked(dir));
    assertTrue(await releaseSwitchLock(dir));
    assertTrue(!(await isSwitchLocked(dir)));
    assertTrue(!(await exists(join(dir, ".switch.lock"))));
  });
});

Deno.test("switch lock: a dead owner's lock is stale and taken over", async () => {
  await withMeta(async (dir) => {
    const dead = await deadPid();
    await Deno.writeTextFile(
      join(dir, ".switch.lock"),
      JSON.stringify({ pid: dead, created: Date.now() / 1000 }),
    );
    const info = await readSwitchLock(dir);
    assertEquals([info?.pid, info?.stale], [dead, true]);
    assertTrue(!(await isSwitchLocked(dir)));
    assertTrue(await acquireSwitchLock(dir));
    assertEquals((await readSwitchLock(dir))?.pid, Deno.pid);
  });
});

Deno.test("switch lock: an unrefreshed lock older than the timeout is stale, even ownerless", async () => {
  await withMeta(async (dir) => {
    const p = join(dir, ".switch.lock");
    await Deno.writeTextFile(p, ""); // ComfyGit-style lock without owner
    assertTrue(await isSwitchLocked(dir), "a fresh ownerless lock counts as held");
    const old = new Date(Date.now() - 400_000);
    await Deno.utime(p, old, old);
    assertTrue(!(await isSwitchLocked(dir)), "older than 300 s");
    assertTrue(await isSwitchLocked(dir, { timeoutS: 500 }));
    assertTrue(await acquireSwitchLock(dir));
    // A live holder that keeps refreshing stays fresh past the timeout.
    await Deno.utime(p, old, old);
    assertTrue(await refreshSwitchLock(dir));
    assertTrue(await isSwitchLocked(dir));
    assertTrue(!(await refreshSwitchLock(dir, 1)));
  });
});

Deno.test("switch lock: processes racing for one stale lock produce exactly one winner", async () => {
  await withMeta(async (dir) => {
    const dead = await deadPid();
    await Deno.writeTextFile(join(dir, ".switch.lock"), JSON.stringify({ pid: dead }));
    const script = join(dir, "..", "race.ts");
    const lockUrl = new URL(`file://${REPO_ROOT}/src/ipc/lock.ts`).href;
    await Deno.writeTextFile(
      script,
      `import { acquireSwitchLock } from ${JSON.stringify(lockUrl)};\n` +
        `const ok = await acquireSwitchLock(${JSON.stringify(dir)});\n` +
        `console.log(ok ? "won" : "lost");\n` +
        // Hold it until told to go, so a late racer still sees a live owner.
        `await new Promise((r) => setTimeout(r, 1500));\n`,
    );
    const racers = Array.from({ length: 6 }, () =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--no-config", script],
        stdout: "piped",
        stderr: "piped",
      }).output());
    const outs = await Promise.all(racers);
    const results = outs.map((o) => new TextDecoder().decode(o.stdout).trim());
    assertEquals(results.filter((r) => r === "won").length, 1, results.join(","));
    assertEquals(results.filter((r) => r === "lost").length, 5);
  });
});

Deno.test("startup state: written with a timestamp and read back; garbage reads as none", async () => {
  await withMeta(async (dir) => {
    assertEquals(await readStartupState(dir), undefined);
    await writeStartupState(dir, {
      python_executable: "/usr/bin/python3",
      working_directory: "/ws/environments/a/ComfyUI",
      argv: ["main.py", "--port", "8188"],
      environment_name: "a",
      workspace_root: "/ws",
      port: 8188,
      ignored: undefined,
    });
    const s = await readStartupState(dir);
    assertEquals(s?.environment_name, "a");
    assertEquals(s?.argv, ["main.py", "--port", "8188"]);
    assertEquals(s?.port, 8188);
    assertTrue(typeof s?.timestamp === "number" && s.timestamp > 0);
    assertTrue(!("ignored" in (s ?? {})));
    await Deno.writeTextFile(join(dir, ".startup_state.json"), "[1,2");
    assertEquals(await readStartupState(dir), undefined);
  });
});

Deno.test(".cmd: written atomically via .cmd.tmp.<pid>, taken once", async () => {
  await withMeta(async (dir) => {
    assertEquals(await takeCommand(dir), undefined);
    await writeCommand(dir, "restart");
    assertTrue(!(await exists(join(dir, `.cmd.tmp.${Deno.pid}`))));
    const raw = JSON.parse(await Deno.readTextFile(metadataPaths(dir).cmd));
    assertEquals(raw.command, "restart");
    assertEquals(raw.requested_by, Deno.pid);
    const c = await takeCommand(dir);
    assertEquals(c && "command" in c ? c.command : undefined, "restart");
    assertEquals(await takeCommand(dir), undefined);
    const left = [...Deno.readDirSync(dir)].map((e) => e.name);
    assertEquals(left.filter((n) => n.startsWith(".cmd")), []);
  });
});

Deno.test(".cmd: an unknown command or garbage is consumed and reported invalid", async () => {
  await withMeta(async (dir) => {
    await Deno.writeTextFile(join(dir, ".cmd"), JSON.stringify({ command: "dance" }));
    const c = await takeCommand(dir);
    assertTrue(c !== undefined && "invalid" in c);
    await Deno.writeTextFile(join(dir, ".cmd"), "{{");
    assertTrue((await takeCommand(dir)) !== undefined);
    assertEquals(await takeCommand(dir), undefined);
    await writeCommand(dir, "shutdown");
    await clearCommand(dir);
    assertEquals(await takeCommand(dir), undefined);
  });
});

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}
