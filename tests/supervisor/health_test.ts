// Health checking (seed table "test_health_checking"): port connection, /system_stats,
// consecutive successes, abort when the child dies, timeout, and "is it ours?".
import { assertEquals, assertTrue } from "../helpers/assert.ts";
import { freePort } from "../helpers/net.ts";
import {
  type HealthTarget,
  httpHealthProbe,
  listenTarget,
  MIN_PROBE_GAP_MS,
  nextProbeDelay,
  type ProbeResult,
  waitForHealth,
} from "../../src/supervisor/health.ts";
import { portOwnedByGroup } from "../../src/supervisor/procinfo.ts";
import { PYTHON } from "./_helpers.ts";
import { spawnProcess } from "../../src/process/run.ts";
import { isPortOpen } from "../../src/net/port.ts";

function statsServer(body: unknown = { system: { argv: ["main.py"] }, devices: [] }, status = 200) {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) =>
      new URL(req.url).pathname === "/system_stats"
        ? Response.json(body, { status })
        : new Response("nope", { status: 404 }),
  );
  return {
    port: (server.addr as Deno.NetAddr).port,
    async close() {
      ac.abort();
      await server.finished;
    },
  };
}

const target = (port: number, extra: Partial<HealthTarget> = {}): HealthTarget => ({
  host: "127.0.0.1",
  port,
  childPid: Deno.pid,
  portWasBusy: false,
  ...extra,
});

Deno.test("listenTarget reads --listen/--port like ComfyUI's argparse", () => {
  assertEquals(listenTarget([]), { host: "127.0.0.1", port: 8188 });
  assertEquals(listenTarget(["--port", "8190"]), { host: "127.0.0.1", port: 8190 });
  assertEquals(listenTarget(["--port=8191", "--listen"]), { host: "127.0.0.1", port: 8191 });
  assertEquals(listenTarget(["--listen", "--port", "9000"]), { host: "127.0.0.1", port: 9000 });
  assertEquals(listenTarget(["--listen", "0.0.0.0"]).host, "127.0.0.1");
  assertEquals(listenTarget(["--listen", "10.1.2.3,::"]).host, "10.1.2.3");
  assertEquals(listenTarget(["--listen=::"]).host, "::1");
  assertEquals(listenTarget(["--port", "banana"]).port, 8188);
});

Deno.test("isPortOpen: true on a listening port, false on a closed one", async () => {
  const s = statsServer();
  try {
    assertTrue(await isPortOpen("127.0.0.1", s.port));
  } finally {
    await s.close();
  }
  // Port 1: nothing of the tests' listens there, unlike a port that was free a moment ago.
  assertTrue(!(await isPortOpen("127.0.0.1", 1)));
});

Deno.test("the HTTP probe wants GET /system_stats 200 with ComfyUI's JSON", async () => {
  const probe = httpHealthProbe({ ownedByGroup: () => Promise.resolve(true) });
  const good = statsServer();
  const notComfy = statsServer({ hello: "world" });
  const failing = statsServer({ system: {} }, 500);
  try {
    assertEquals((await probe(target(good.port))).ok, true);
    const r1 = await probe(target(notComfy.port));
    assertEquals(r1.ok, false);
    const r2 = await probe(target(failing.port));
    assertEquals([r2.ok, /500/.test(r2.reason ?? "")], [false, true]);
    // Port 1 (tcpmux), not a free port picked now: with test files running in parallel, a
    // port free a moment ago may be another test's listener by the time it is probed.
    assertEquals((await probe(target(1))).reason, "port closed");
  } finally {
    await Promise.all([good.close(), notComfy.close(), failing.close()]);
  }
});

Deno.test("the HTTP probe refuses an answer from a process that is not ours", async () => {
  const s = statsServer();
  try {
    const notOurs = httpHealthProbe({ ownedByGroup: () => Promise.resolve(false) });
    assertMatchReason(await notOurs(target(s.port)), /not ours/);
    const unknown = httpHealthProbe({ ownedByGroup: () => Promise.resolve(undefined) });
    assertEquals((await unknown(target(s.port))).ok, true, "port was free before: trusted");
    assertMatchReason(
      await unknown(target(s.port, { portWasBusy: true, childPid: 1 })),
      /busy before start/,
    );
  } finally {
    await s.close();
  }
});

Deno.test("portOwnedByGroup tells our listener from a foreign one (ss/ps)", async () => {
  const port = freePort();
  const child = spawnProcess(PYTHON, ["-m", "http.server", String(port), "--bind", "127.0.0.1"], {
    stdout: "null",
    stderr: "null",
  });
  try {
    let owned: boolean | undefined;
    for (let i = 0; i < 100 && owned === undefined; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if (await isPortOpen("127.0.0.1", port)) {
        owned = await portOwnedByGroup(port, child.pid);
      }
    }
    if (owned === undefined) {
      console.warn("ss cannot name the listener here; ownership falls back to liveness");
      return;
    }
    assertEquals(owned, true);
    assertEquals(await portOwnedByGroup(port, Deno.pid), false);
  } finally {
    await child.terminate(2000);
  }
});

Deno.test("waitForHealth: 3 consecutive successes make healthy", async () => {
  const answers = [false, true, true, false, true, true, true];
  let n = 0;
  const probe = (): Promise<ProbeResult> => Promise.resolve({ ok: answers[n++] ?? true });
  const r = await waitForHealth(probe, target(1), {
    childExited: () => false,
    timeoutMs: 10_000,
    intervalMs: 1,
  });
  assertEquals([r, n], ["healthy", 7]);
});

Deno.test("waitForHealth: aborts at once when the child dies", async () => {
  let dead = false;
  let resolveExit!: () => void;
  const exited = new Promise<void>((r) => resolveExit = r);
  let probes = 0;
  const probe = (): Promise<ProbeResult> => {
    probes++;
    return Promise.resolve({ ok: false });
  };
  setTimeout(() => {
    dead = true;
    resolveExit();
  }, 50);
  // A clock that has the child starting for ages after the first probe: the wait is in its
  // longest pause (intervalMs) when the child dies.
  let calls = 0;
  const r = await waitForHealth(probe, target(1), {
    childExited: () => dead,
    exitedPromise: exited,
    timeoutMs: 1e12,
    intervalMs: 10_000,
    now: () => calls++ === 0 ? 0 : 1e9,
  });
  assertEquals(r, "died");
  assertEquals(probes, 1, "did not wait out the 10 s interval");
});

Deno.test("waitForHealth: gives up after the timeout", async () => {
  let clock = 0;
  const probe = (): Promise<ProbeResult> => {
    clock += 1000;
    return Promise.resolve({ ok: false });
  };
  const r = await waitForHealth(probe, target(1), {
    childExited: () => false,
    timeoutMs: 5000,
    intervalMs: 1,
    now: () => clock,
  });
  assertEquals(r, "timeout");
  assertEquals(clock, 5000);
});

function assertMatchReason(r: ProbeResult, re: RegExp) {
  assertEquals(r.ok, false);
  assertTrue(re.test(r.reason ?? ""), `reason ${r.reason} !~ ${re}`);
}

Deno.test("nextProbeDelay: at once after an answer; fast, then backing off, before one", () => {
  const poll = 250;
  assertEquals(nextProbeDelay({ ok: true, sinceStartMs: 10, pollIntervalMs: poll }), 0);
  assertEquals(nextProbeDelay({ ok: true, sinceStartMs: 600_000, pollIntervalMs: poll }), 0);
  assertEquals(
    nextProbeDelay({ ok: false, sinceStartMs: 0, pollIntervalMs: poll }),
    MIN_PROBE_GAP_MS,
  );
  const early = nextProbeDelay({ ok: false, sinceStartMs: 400, pollIntervalMs: poll });
  const later = nextProbeDelay({ ok: false, sinceStartMs: 2000, pollIntervalMs: poll });
  assertEquals([early, later], [40, 200]);
  assertEquals(nextProbeDelay({ ok: false, sinceStartMs: 60_000, pollIntervalMs: poll }), poll);
  // A poll interval below the floor is honoured as the longest pause.
  assertEquals(nextProbeDelay({ ok: false, sinceStartMs: 0, pollIntervalMs: 1 }), 1);
});

Deno.test("waitForHealth: once the port answers, the streak is asked for without pauses", async () => {
  // The clock says the child has been starting for ages, so any pause would be the whole
  // interval (a day); three answers in a row must come back without one.
  let n = 0;
  const probe = (): Promise<ProbeResult> => Promise.resolve({ ok: n++ >= 0 });
  let calls = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    waitForHealth(probe, target(1), {
      childExited: () => false,
      timeoutMs: 1e12,
      intervalMs: 86_400_000,
      now: () => calls++ === 0 ? 0 : 1e9,
    }),
    new Promise((ok) => timer = setTimeout(() => ok("paused between answers"), 10_000)),
  ]);
  clearTimeout(timer);
  assertEquals([r, n], ["healthy", 3]);
});
