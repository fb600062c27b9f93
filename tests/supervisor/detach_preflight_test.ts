/**
 * A supervisor started in the background (`gov run --detach`, or `gov switch` when none
 * runs) for an environment it could only refuse is refused up front, with the foreground's
 * one line and exit 2, and nothing is left behind. Before, the answer depended on whether
 * the background supervisor wrote its pid file before it exited: "started", or exit 1.
 *
 * @module
 */
import { join } from "node:path";
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { gov } from "../helpers/gov.ts";
import { installFakeComfyUI } from "../helpers/fake_comfyui.ts";

/** A workspace with one environment gov manages (no `[paths] python`) and never initialised. */
async function uninitialisedWorkspace(): Promise<{ root: string; env: string }> {
  const root = await Deno.makeTempDir({ prefix: "gov-preflight-" });
  await Deno.mkdir(join(root, ".metadata"));
  const env = join(root, "environments", "prod");
  await installFakeComfyUI(join(env, "ComfyUI"));
  await Deno.writeTextFile(join(env, "config.toml"), "[comfyui]\nargs = []\n");
  return { root, env };
}

async function leftovers(root: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(join(root, ".metadata"))) {
    if ([".orchestrator.pid", ".switch_request.json", ".switch_status.json"].includes(e.name)) {
      names.push(e.name);
    }
  }
  return names.sort();
}

Deno.test("gov run --detach refuses an environment never initialised, at once (exit 2), leaving nothing", async () => {
  const { root } = await uninitialisedWorkspace();
  try {
    for (let i = 0; i < 3; i++) {
      const r = await gov(["run", "--detach", "-w", root, "-e", "prod"]);
      assertEquals(r.code, 2, r.stderr);
      assertMatch(r.stderr, /environment prod is not initialised/);
      assertMatch(r.stderr, /gov init/);
      assertEquals(r.stdout, "");
      assertEquals(await leftovers(root), []);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("gov switch with no supervisor refuses a target it could not start (exit 2), writing no request", async () => {
  const { root } = await uninitialisedWorkspace();
  try {
    const r = await gov(["switch", "prod", "-w", root]);
    assertEquals(r.code, 2, r.stderr);
    assertMatch(r.stderr, /environment prod is not initialised/);
    assertEquals(await leftovers(root), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("gov run --detach without ComfyUI's main.py names the missing ComfyUI (exit 2)", async () => {
  const { root, env } = await uninitialisedWorkspace();
  try {
    await Deno.remove(join(env, "ComfyUI", "main.py"));
    const r = await gov(["run", "--detach", "-w", root, "-e", "prod"]);
    assertEquals(r.code, 2, r.stderr);
    assertMatch(r.stderr, /ComfyUI's main\.py is missing in .*environments\/prod\/ComfyUI/);
    assertEquals(await leftovers(root), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
