// gov doctor's checks in-process, over a real temporary workspace with the host's programs,
// ports and processes replaced by probes: each check's levels and the fix it names.
import { join } from "node:path";
import { type DoctorProbes, type Finding, type ProbeRun, runDoctor } from "../../src/doctor/mod.ts";
import { workspaceAt } from "../../src/workspace/root.ts";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { FAKE_COMFYUI_DIR } from "../helpers/paths.ts";

type Programs = Record<string, (args: string[]) => ProbeRun | undefined>;

const ok = (stdout: string): ProbeRun => ({ code: 0, stdout, stderr: "" });

/** A healthy host: uv 0.13.8, python, git, 100 GiB free, no GPU tools, no systemd. */
function healthyPrograms(): Programs {
  return {
    uv: () => ok("uv 0.13.8 (abc123 2026-01-01)\n"),
    python3: () => ok("Python 3.12.3\n"),
    git: () => ok("git version 2.43.0\n"),
    df: (a) =>
      ok(
        "Filesystem 1024-blocks Used Available Capacity Mounted on\n" +
          `/dev/sda1 209715200 104857600 104857600 50% ${a[1]}\n`,
      ),
  };
}

// gov finds uv by looking for an executable file; the stand-in file is never run (the run
// probe answers for it).
const UV_FILE = Deno.makeTempFileSync({ prefix: "gov-doctor-uv-" });
Deno.chmodSync(UV_FILE, 0o755);
globalThis.addEventListener("unload", () => Deno.removeSync(UV_FILE));

function probes(programs: Programs, extra: Partial<DoctorProbes> = {}): Partial<DoctorProbes> {
  return {
    run: (cmd, args) =>
      Promise.resolve(programs[cmd === UV_FILE ? "uv" : cmd.split("/").pop()!]?.(args)),
    getenv: (n) => (n === "PATH" ? "/usr/bin" : n === "GOV_UV" ? UV_FILE : undefined),
    portOpen: () => Promise.resolve(false),
    portListeners: () => Promise.resolve(undefined),
    processCommand: () => Promise.resolve(undefined),
    pidAlive: () => false,
    now: () => 1_000_000,
    ...extra,
  };
}

async function workspace(envs: Record<string, { mainPy?: boolean; config?: string }>) {
  const root = await Deno.makeTempDir({ prefix: "gov-doctor-" });
  for (const [name, e] of Object.entries(envs)) {
    const dir = join(root, "environments", name);
    await Deno.mkdir(join(dir, "ComfyUI"), { recursive: true });
    if (e.mainPy !== false) {
      await Deno.copyFile(join(FAKE_COMFYUI_DIR, "main.py"), join(dir, "ComfyUI", "main.py"));
    }
    if (e.config) await Deno.writeTextFile(join(dir, "config.toml"), e.config);
  }
  await Deno.mkdir(join(root, ".metadata"), { recursive: true });
  return root;
}

function byCheck(findings: Finding[], check: string): Finding {
  const f = findings.find((x) => x.check === check);
  assertTrue(f, `no finding '${check}' in ${findings.map((x) => x.check).join(", ")}`);
  return f;
}

Deno.test("uv: supported, too old, newer than tested, missing", async () => {
  const root = await workspace({});
  try {
    const cases: [string | undefined, string, RegExp][] = [
      [
        "uv 0.13.8",
        "ok",
        /uv 0\.13\.8 at \/.*gov-doctor-uv-.* \(supported: >= 0\.12\.5, tested 0\.13\.8\)/,
      ],
      ["uv 0.12.5 (fake)", "ok", /uv 0\.12\.5/],
      ["uv 0.9.2", "error", /older than 0\.12\.5/],
      ["uv 0.14.1", "warn", /newer than gov was tested with \(0\.13\.8\)/],
      [undefined, "error", /uv not found at \/.*gov-doctor-uv-/],
    ];
    for (const [out, level, re] of cases) {
      const programs = healthyPrograms();
      programs.uv = () => (out === undefined ? undefined : ok(out + "\n"));
      const r = await runDoctor({ workspace: workspaceAt(root), probes: probes(programs) });
      const f = byCheck(r.findings, "uv");
      assertEquals(f.level, level, out);
      assertMatch(f.message, re);
      if (level === "error") {
        assertMatch(f.fix ?? "", /uv==0\.13\.8/);
        assertTrue(r.blocking);
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a healthy workspace with an uninitialised env blocks nothing; no GPU, no systemd are notes", async () => {
  const root = await workspace({ prod: {} });
  try {
    const r = await runDoctor({ workspace: workspaceAt(root), probes: probes(healthyPrograms()) });
    assertEquals(r.blocking, false, JSON.stringify(r.findings, null, 1));
    assertEquals(byCheck(r.findings, "env prod: comfyui").level, "ok");
    const venv = byCheck(r.findings, "env prod: venv");
    assertEquals(venv.level, "warn");
    assertEquals(venv.fix, "gov init --env prod");
    assertEquals(byCheck(r.findings, "gpu").level, "note");
    assertEquals(byCheck(r.findings, "systemd comfyui-gov.service").level, "note");
    assertEquals(byCheck(r.findings, "port 8188").message, "free");
    assertMatch(byCheck(r.findings, "disk").message, /100\.0 GiB free of 200\.0 GiB/);
    assertEquals(byCheck(r.findings, "git").message, "git version 2.43.0");
    // Reading the environment left no state behind in a folder gov never initialised.
    assertEquals(await Deno.stat(join(root, "environments/prod/state")).catch(() => null), null);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("blocking problems: no main.py, bad config.toml, bad gov.toml, unknown --env, low disk, no git", async () => {
  const root = await workspace({
    prod: { mainPy: false },
    broken: { config: "[comfyui]\nargs = 3\n" },
  });
  await Deno.writeTextFile(join(root, "gov.toml"), "[registry]\nurl = 'ftp://nowhere'\n");
  try {
    const programs = healthyPrograms();
    delete programs.git;
    programs.df = () =>
      ok(
        "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/x 10485760 9961472 524288 95% /\n",
      );
    const r = await runDoctor({ workspace: workspaceAt(root), probes: probes(programs) });
    assertTrue(r.blocking);
    const main = byCheck(r.findings, "env prod: comfyui");
    assertEquals(main.level, "error");
    assertMatch(main.message, /main\.py missing/);
    assertMatch(main.fix!, /\[paths\] comfyui_dir/);
    const cfg = byCheck(r.findings, "env broken: config");
    assertEquals(cfg.level, "error");
    assertMatch(cfg.message, /config\.toml: comfyui\.args must be/);
    const toml = byCheck(r.findings, "gov.toml");
    assertEquals(toml.level, "error");
    assertMatch(toml.message, /registry\.url must be an http\(s\) URL/);
    const disk = byCheck(r.findings, "disk");
    assertEquals(disk.level, "error");
    assertMatch(disk.message, /0\.5 GiB free/);
    assertEquals(byCheck(r.findings, "git").level, "error");
    const one = await runDoctor({
      workspace: workspaceAt(root),
      env: "staging",
      probes: probes(healthyPrograms()),
    });
    const env = byCheck(one.findings, "env staging");
    assertEquals(env.level, "error");
    assertMatch(env.fix!, /pick one of: broken, prod/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the port: held by another process is named by pid and command; free is ok", async () => {
  const root = await workspace({ prod: { config: '[comfyui]\nargs = ["--port", "8299"]\n' } });
  try {
    const r = await runDoctor({
      workspace: workspaceAt(root),
      probes: probes(healthyPrograms(), {
        portOpen: (p) => Promise.resolve(p === 8299),
        portListeners: (p) => Promise.resolve(p === 8299 ? [4242] : undefined),
        processCommand: (pid) =>
          Promise.resolve(pid === 4242 ? "python3 -m http.server 8299" : undefined),
      }),
    });
    const f = byCheck(r.findings, "port 8299");
    assertEquals(f.level, "error");
    assertEquals(
      f.message,
      "held by pid 4242 (python3 -m http.server 8299): gov run cannot start ComfyUI there",
    );
    assertMatch(f.fix!, /--port/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("leftovers: a stale supervisor pid file and switch lock, a lock held by a live gov", async () => {
  const root = await workspace({ prod: {} });
  const meta = join(root, ".metadata");
  await Deno.writeTextFile(join(meta, ".orchestrator.pid"), "999999\n");
  await Deno.writeTextFile(join(meta, ".switch.lock"), JSON.stringify({ pid: 999998, created: 1 }));
  const state = join(root, "environments/prod/state");
  await Deno.mkdir(state, { recursive: true });
  // This test process stands for a gov holding the environment lock.
  await Deno.writeTextFile(
    join(state, ".lock"),
    JSON.stringify({ pid: Deno.pid, start_ms: null, command: "tx run", acquired_at: "now" }),
  );
  try {
    const r = await runDoctor({
      workspace: workspaceAt(root),
      probes: probes(healthyPrograms(), { pidAlive: (pid) => pid === Deno.pid }),
    });
    const sup = byCheck(r.findings, "supervisor");
    assertEquals(sup.level, "warn");
    assertMatch(sup.message, /names dead pid 999999/);
    const lock = byCheck(r.findings, "supervisor: switch lock");
    assertEquals(lock.level, "warn");
    assertMatch(lock.message, /stale .*\.switch\.lock \(pid 999998/);
    const envLock = byCheck(r.findings, "env prod: lock");
    assertEquals(envLock.level, "note");
    assertEquals(envLock.message, `held by live pid ${Deno.pid} (gov tx run)`);
    assertEquals(r.blocking, false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("GPU and systemd: listed GPUs, a broken driver, an installed unit active or failed", async () => {
  const root = await workspace({});
  try {
    const cases: [Programs, string, string, RegExp][] = [
      [
        {
          "nvidia-smi": () =>
            ok("GPU 0: NVIDIA A100 (UUID: GPU-1)\nGPU 1: NVIDIA A100 (UUID: GPU-2)\n"),
        },
        "gpu",
        "ok",
        /2 GPUs: GPU 0: NVIDIA A100; GPU 1: NVIDIA A100/,
      ],
      [
        {
          "nvidia-smi": () => ({
            code: 9,
            stdout: "",
            stderr:
              "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n",
          }),
        },
        "gpu",
        "warn",
        /couldn't communicate/,
      ],
      [
        { systemctl: (a) => ok(a[0] === "show" ? "loaded\n" : "active\n") },
        "systemd comfyui-gov.service",
        "ok",
        /is active/,
      ],
      [
        { systemctl: (a) => ok(a[0] === "show" ? "loaded\n" : "failed\n") },
        "systemd comfyui-gov.service",
        "error",
        /failed/,
      ],
      [
        { systemctl: () => ok("not-found\n") },
        "systemd comfyui-gov.service",
        "note",
        /not installed/,
      ],
    ];
    for (const [extra, check, level, re] of cases) {
      const r = await runDoctor({
        workspace: workspaceAt(root),
        probes: probes({ ...healthyPrograms(), ...extra }),
      });
      const f = byCheck(r.findings, check);
      assertEquals(f.level, level, check);
      assertMatch(f.message, re);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("backends.toml: a backend that answers and one that does not", async () => {
  const root = await workspace({});
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) =>
      new URL(req.url).pathname === "/system_stats"
        ? Response.json({ system: {}, devices: [] })
        : new Response("no", { status: 404 }),
  );
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  await Deno.writeTextFile(
    join(root, "backends.toml"),
    `[[backend]]\nid = "up"\nhost = "127.0.0.1"\nport = ${server.addr.port}\n\n` +
      `[[backend]]\nid = "down"\nhost = "127.0.0.1"\nport = ${deadPort}\n`,
  );
  try {
    const r = await runDoctor({
      workspace: workspaceAt(root),
      probes: probes(healthyPrograms(), { fetch }),
    });
    assertMatch(byCheck(r.findings, "backends").message, /2 backend\(s\)/);
    assertEquals(byCheck(r.findings, "backend up").level, "ok");
    const down = byCheck(r.findings, "backend down");
    assertEquals(down.level, "warn");
    assertMatch(down.message, /unreachable/);
    assertEquals(down.fix, "start it, or gov backend remove down");
  } finally {
    await server.shutdown();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the port, on the real host: a listener of this process is named by pid and command", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const root = await workspace({ prod: { config: `[comfyui]\nargs = ["--port", "${port}"]\n` } });
  try {
    const real = probes(healthyPrograms());
    delete real.portOpen;
    delete real.portListeners;
    delete real.processCommand;
    const r = await runDoctor({ workspace: workspaceAt(root), probes: real });
    const f = byCheck(r.findings, `port ${port}`);
    assertEquals(f.level, "error");
    assertMatch(f.message, new RegExp(`^held by pid ${Deno.pid} \\(.*deno.*\\): gov run cannot`));
  } finally {
    listener.close();
    await Deno.remove(root, { recursive: true });
  }
});
