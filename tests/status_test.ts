import { assertEquals, assertMatch } from "./helpers/assert.ts";
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
