// `gov doctor --json` as a process, on a workspace initialised with the uv stand-in:
// healthy (exit 0), then broken (exit 1, the findings naming the fixes).
import { join } from "node:path";
import { gov } from "../helpers/gov.ts";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { freeLoopbackPort } from "../../src/net/port.ts";
import { govIn, installComfyUI, uvEnv } from "../gov/helpers.ts";

interface Report {
  blocking: boolean;
  counts: Record<string, number>;
  findings: { check: string; level: string; message: string; fix?: string }[];
}

Deno.test("gov doctor --json: healthy workspace exits 0, broken one exits 1 naming fixes", async () => {
  const root = await Deno.makeTempDir({ prefix: "gov-doctor-cli-" });
  try {
    const env = join(root, "environments", "prod");
    await installComfyUI(join(env, "ComfyUI"));
    const port = freeLoopbackPort();
    await Deno.writeTextFile(join(env, "config.toml"), `[comfyui]\nargs = ["--port", "${port}"]\n`);
    const init = await govIn(env, ["init"]);
    assertEquals(init.code, 0, init.stderr);

    const healthy = await gov(["doctor", "--workspace", root, "--json"], {
      env: await uvEnv(),
      timeoutMs: 120_000,
    });
    const h = JSON.parse(healthy.stdout) as Report;
    const errors = h.findings.filter((f) => f.level === "error");
    assertEquals(errors, [], healthy.stdout);
    assertEquals(healthy.code, 0, healthy.stderr);
    assertEquals(h.blocking, false);
    const venv = h.findings.find((f) => f.check === "env prod: venv");
    assertEquals(venv?.level, "ok");
    assertMatch(venv!.message, /\.venv-prod matches uv\.lock/);
    assertEquals(h.findings.find((f) => f.check === `port ${port}`)?.message, "free");
    assertTrue(h.findings.some((f) => f.check === "uv" && f.level === "ok"));

    // A gov killed in the middle of `node add` left its journal and a partial clone: doctor
    // names the leftover, and reading the environment recovers it as any gov command would.
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    const tmp = join(env, "ComfyUI", ".gov-clone-ghost-ab12");
    await Deno.mkdir(tmp);
    const at = new Date().toISOString();
    await Deno.writeTextFile(
      join(env, "state", "journal.json"),
      JSON.stringify({
        version: 1,
        op: "node-add",
        op_id: "node-add-test",
        pid: dead.pid,
        started_at: at,
        step: "begun",
        steps: [{ step: "begun", at }],
        data: { node_id: "ghost", tmp, target: join(env, "ComfyUI", "custom_nodes", "ghost") },
      }),
    );
    const leftover = await gov(["doctor", "--workspace", root, "--json"], {
      env: await uvEnv(),
      timeoutMs: 120_000,
    });
    assertEquals(leftover.code, 0, leftover.stdout);
    const l = JSON.parse(leftover.stdout) as Report;
    const rec = l.findings.find((f) => f.check === "env prod: recovery");
    assertEquals(rec?.level, "note", leftover.stdout);
    assertMatch(rec!.message, /undid interrupted `gov node add ghost`/);
    assertEquals(await Deno.stat(tmp).catch(() => null), null);

    // Break it: ComfyUI's main.py gone, uv.lock edited behind gov's back.
    await Deno.remove(join(env, "ComfyUI", "main.py"));
    await Deno.writeTextFile(join(env, "uv.lock"), "# edited by hand\n", { append: true });
    const broken = await gov(["doctor", "--workspace", root, "--env", "prod", "--json"], {
      env: await uvEnv(),
      timeoutMs: 120_000,
    });
    assertEquals(broken.code, 1, broken.stderr);
    const b = JSON.parse(broken.stdout) as Report;
    assertTrue(b.blocking);
    const byCheck = (c: string) => b.findings.find((f) => f.check === c);
    assertEquals(byCheck("env prod: comfyui")?.level, "error");
    assertMatch(byCheck("env prod: comfyui")!.fix!, /comfyui_dir/);
    assertEquals(byCheck("env prod: venv")?.level, "error");
    assertMatch(byCheck("env prod: venv")!.message, /does not match uv\.lock/);
    assertMatch(byCheck("env prod: venv")!.fix!, /gov run syncs it|gov rollback/);

    // Without --json: one line per check, the fix under it.
    const text = await gov(["doctor", "--workspace", root], {
      env: await uvEnv(),
      timeoutMs: 120_000,
    });
    assertEquals(text.code, 1);
    assertMatch(text.stdout, /^error env prod: comfyui\s+no ComfyUI at .*main\.py missing\)$/m);
    assertMatch(text.stdout, /error\(s\) block operation/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
