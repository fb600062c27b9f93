import { assertEquals, assertMatch, assertNotMatch, assertTrue } from "../helpers/assert.ts";
import { startFakeComfyUI } from "../helpers/fake_comfyui.ts";
import { gov } from "../helpers/gov.ts";
import { freePort } from "../helpers/net.ts";

async function workspace(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "gov-backend-cli-" });
  await Deno.mkdir(`${dir}/.metadata`);
  return dir;
}

Deno.test("cli: backend add, list --json with live health, list, remove", async () => {
  const ws = await workspace();
  const comfy = await startFakeComfyUI({
    env: {
      FAKE_COMFYUI_MODELS: JSON.stringify({
        checkpoints: ["sd15.safetensors", "sdxl.safetensors"],
        loras: ["detail.safetensors"],
      }),
    },
  });
  try {
    const dead = freePort();
    let r = await gov([
      "backend",
      "add",
      "gpu1",
      "--host",
      "127.0.0.1",
      "--port",
      String(comfy.port),
      "--tag",
      "sdxl",
      "--tag",
      "a100,fast",
      "--weight",
      "2",
      "--max-queue",
      "6",
      "--token",
      "s3cret-t0ken",
    ], { cwd: ws });
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /^added backend gpu1 \(http:\/\/127\.0\.0\.1:\d+\)/);
    assertMatch(r.stdout, /reachable: answers, queue 0/);

    r = await gov([
      "backend",
      "add",
      "gpu2",
      "--host",
      "127.0.0.1",
      "--port",
      String(dead),
      "--json",
    ], {
      cwd: ws,
    });
    assertEquals(r.code, 0, r.stderr);
    const added = JSON.parse(r.stdout);
    assertEquals([added.id, added.reachable, added.probe], ["gpu2", false, "connection refused"]);

    r = await gov(["backend", "list", "--json"], { cwd: ws });
    assertEquals(r.code, 0, r.stderr);
    assertNotMatch(r.stdout, /s3cret-t0ken/);
    const { backends } = JSON.parse(r.stdout);
    assertEquals(backends.map((b: { id: string }) => b.id), ["gpu1", "gpu2"]);
    const [g1, g2] = backends;
    assertEquals(g1.state, "up");
    assertEquals(g1.token, true);
    assertEquals(g1.tags, ["sdxl", "a100", "fast"]);
    assertEquals([g1.weight, g1.max_queue, g1.queue_remaining], [2, 6, 0]);
    assertTrue(g1.node_classes > 10);
    assertEquals(g1.model_files.ckpt_name, ["sd15.safetensors", "sdxl.safetensors"]);
    assertEquals(g1.model_files.lora_name, ["detail.safetensors"]);
    assertTrue(g1.vram.total > 0 && typeof g1.comfyui_version === "string");
    assertEquals([g2.state, g2.last_error, g2.node_classes], ["down", "connection refused", null]);

    r = await gov(["backend", "list"], { cwd: ws });
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /^ID\s+STATE\s+QUEUE\s+VRAM FREE\/TOTAL\s+VERSION\s+NODES\s+MODELS/);
    assertMatch(r.stdout, /^gpu1\s+up\s+0\/6\s+[\d.]+\/24\.0 GiB\s+\S+\s+\d+\s+3\s/m);
    assertMatch(r.stdout, /^gpu2\s+down\s+-/m);
    assertMatch(r.stdout, /ckpt_name: sd15\.safetensors, sdxl\.safetensors/);
    assertMatch(r.stdout, /gpu2: connection refused/);

    r = await gov(["backend", "remove", "gpu2"], { cwd: ws });
    assertEquals([r.code, r.stdout], [0, "removed backend gpu2\n"]);
    r = await gov(["backend", "list", "--json", "--no-probe", "--workspace", ws]);
    assertEquals(r.code, 0, r.stderr);
    const after = JSON.parse(r.stdout).backends;
    assertEquals(after.map((b: { id: string; state: string }) => [b.id, b.state]), [[
      "gpu1",
      "unknown",
    ]]);
  } finally {
    await comfy.stop();
    await Deno.remove(ws, { recursive: true });
  }
});

Deno.test("cli: bad input is a one-line error with exit 2 and changes nothing", async () => {
  const ws = await workspace();
  try {
    let r = await gov([
      "backend",
      "add",
      "gpu1",
      "--host",
      "127.0.0.1",
      "--port",
      "8188",
      "--no-probe",
    ], {
      cwd: ws,
    });
    assertEquals(r.code, 0, r.stderr);
    const before = await Deno.readTextFile(`${ws}/backends.toml`);
    const cases: [string[], RegExp][] = [
      [["backend", "add", "gpu1", "--host", "h"], /^error: backend 'gpu1' already exists/],
      [
        ["backend", "add", "x", "--host", "h", "--port", "70000"],
        /--port must be an integer >= 1 and <= 65535, got '70000'/,
      ],
      [["backend", "add", "x", "--host", "h", "--weight", "0"], /--weight must be a number > 0/],
      [["backend", "add", "x"], /--host is required/],
      [["backend", "add", "../x", "--host", "h"], /invalid backend id '\.\.\/x'/],
      [["backend", "add", "x", "--host", "h", "--colour"], /unknown flag.*--colour/],
      [["backend", "remove", "nope"], /^error: backend 'nope' not found/],
      [["backend", "list", "--timeout", "abc"], /--timeout must be an integer/],
    ];
    for (const [args, re] of cases) {
      r = await gov(args, { cwd: ws });
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertEquals(r.stdout, "", args.join(" "));
      assertMatch(r.stderr.split("\n")[0], re);
    }
    assertEquals(await Deno.readTextFile(`${ws}/backends.toml`), before);

    // A hand-broken file is reported with its path and the field.
    await Deno.writeTextFile(
      `${ws}/backends.toml`,
      before + '\n[[backend]]\nid = "b"\nhost = "h"\nport = "x"\n',
    );
    r = await gov(["backend", "list", "--no-probe"], { cwd: ws });
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /backends\.toml: backend\[1\]\.port must be an integer from 1 to 65535/);

    // Outside any workspace.
    const bare = await Deno.makeTempDir({ prefix: "gov-no-ws-" });
    try {
      r = await gov(["backend", "list"], { cwd: bare, env: { HOME: bare, COMFYGIT_HOME: "" } });
      assertEquals(r.code, 2);
      assertMatch(r.stderr, /no gov workspace found here/);
    } finally {
      await Deno.remove(bare, { recursive: true });
    }
  } finally {
    await Deno.remove(ws, { recursive: true });
  }
});
