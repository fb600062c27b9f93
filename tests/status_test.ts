import { assertEquals, assertMatch, assertTrue } from "./helpers/assert.ts";
import { formatStatus } from "../src/cli/status.ts";
import { memoryIo, styles } from "../src/cli/io.ts";
import { gov } from "./helpers/gov.ts";
import { installFakeComfyUI } from "./helpers/fake_comfyui.ts";
import { join } from "node:path";

async function workspace(): Promise<string> {
  const ws = await Deno.makeTempDir({ prefix: "gov-status-" });
  await Deno.mkdir(join(ws, ".metadata"));
  const env = join(ws, "environments", "prod");
  await installFakeComfyUI(join(env, "ComfyUI"));
  const py = (await new Deno.Command("python3", {
    args: ["-c", "import sys; print(sys.executable)"],
    stdout: "piped",
  }).output()).stdout;
  await Deno.writeTextFile(
    join(env, "config.toml"),
    `[paths]\npython = ${JSON.stringify(new TextDecoder().decode(py).trim())}\n`,
  );
  return ws;
}

Deno.test("gov status --json reports the supervisor and the selected environment", async () => {
  const ws = await workspace();
  try {
    const r = await gov(["status", "--workspace", ws, "--env", "prod", "--json"]);
    assertEquals(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assertEquals(s.supervisor.running, false);
    assertEquals(s.supervisor.workspace, ws);
    assertEquals(s.environment.name, "prod");
    assertEquals(s.environment.prod.host_managed, true);
    assertEquals(s.environment.transactions.total, 0);
  } finally {
    await Deno.remove(ws, { recursive: true });
  }
});

Deno.test("gov status text names the environment; an unknown one is exit 2", async () => {
  const ws = await workspace();
  try {
    const ok = await gov(["status", "--workspace", ws, "--env", "prod"]);
    assertEquals(ok.code, 0, ok.stderr);
    assertMatch(ok.stdout, /Supervisor {2}/);
    assertMatch(ok.stdout, /Environment prod/);
    const bad = await gov(["status", "--workspace", ws, "--env", "nope"]);
    assertEquals(bad.code, 2);
    assertMatch(bad.stderr, /environment 'nope' not found/);
    assertMatch(bad.stderr, /known environments: prod/);
  } finally {
    await Deno.remove(ws, { recursive: true });
  }
});

Deno.test("gov status outside any workspace or environment is a usage error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gov-status-none-" });
  try {
    const r = await gov(["status"], { cwd: dir, env: { HOME: dir, COMFYGIT_HOME: "" } });
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /no gov workspace or environment found here/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("status text: the phase only when ComfyUI is not simply up, the last exit in words", () => {
  const now = Date.now() / 1000;
  const sup = {
    running: true,
    pid: 4242,
    environment: "prod",
    child_pid: null,
    port: 8188,
    healthy: false,
    uptime_s: 75,
    restarts: 2,
    crashes: 2,
    switch: { state: "idle", progress: 0, message: "", updated_at: 0 },
    started_at: now - 75,
    phase: "backoff",
    last_exit: { code: 1, signal: null, at: now - 30, meaning: "crash" },
    stop_reason: null,
    log_file: null,
    workspace: "/srv/comfy",
    problems: [],
  };
  const plain = styles(memoryIo());
  const text = formatStatus({ supervisor: sup, environment: null, problems: [] }, plain);
  assertMatch(text, /state {8}running \(pid 4242, backoff\)/);
  assertMatch(text, /last exit {4}code 1: crash, 3\ds ago/);
  assertMatch(text, /uptime {7}1m15s/);
  const up = formatStatus({
    supervisor: { ...sup, phase: "running", child_pid: 4300, healthy: true, last_exit: null },
    environment: null,
    problems: [],
  }, plain);
  assertMatch(up, /state {8}running \(pid 4242\)\n/);
  assertMatch(up, /ComfyUI {6}pid 4300 on port 8188, healthy/);
  assertTrue(!up.includes("\x1b["), "no colour without a terminal");
});
