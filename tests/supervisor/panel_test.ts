// The gov panel custom node: installed by the CLI, imports cleanly in the fake ComfyUI
// (which has no PromptServer), and its routes behave when a PromptServer exists (a stub
// PromptServer and aiohttp.web, since neither is installable here).
import { join } from "node:path";
import { assertEquals, assertMatch, assertNotMatch, assertTrue } from "../helpers/assert.ts";
import { gov } from "../helpers/gov.ts";
import { startFakeComfyUI } from "../helpers/fake_comfyui.ts";
import { PANEL_SOURCE } from "../../src/supervisor/panel.ts";
import { makeWorkspace, PYTHON } from "./_helpers.ts";

const STUB_HARNESS = `
import asyncio, importlib.util, json, os, sys, types

routes = {}
class RouteTable:
    def _add(self, method, path):
        def deco(fn):
            routes[(method, path)] = fn
            return fn
        return deco
    def post(self, path): return self._add("POST", path)
    def get(self, path): return self._add("GET", path)

server = types.ModuleType("server")
class PromptServer: pass
PromptServer.instance = types.SimpleNamespace(routes=RouteTable())
server.PromptServer = PromptServer
sys.modules["server"] = server
aiohttp = types.ModuleType("aiohttp")
web = types.ModuleType("aiohttp.web")
web.json_response = lambda body, status=200: {"status": status, "body": body}
aiohttp.web = web
sys.modules["aiohttp"] = aiohttp
sys.modules["aiohttp.web"] = web

spec = importlib.util.spec_from_file_location("gov_panel", sys.argv[1])
panel = importlib.util.module_from_spec(spec)
spec.loader.exec_module(panel)
exits = []
panel._exit_later = lambda code, delay=0.5: exits.append(code)

class Req:
    def __init__(self, body): self._body = body
    async def json(self):
        if isinstance(self._body, Exception): raise self._body
        return self._body

async def call(method, path, body=None):
    return await routes[(method, path)](Req(body))

async def main():
    out = {"routes": sorted("%s %s" % k for k in routes), "NODE_CLASS_MAPPINGS": panel.NODE_CLASS_MAPPINGS}
    out["status"] = await call("GET", "/gov/status")
    out["restart"] = await call("POST", "/gov/restart")
    out["bad"] = await call("POST", "/gov/switch", ValueError("not json"))
    out["unknown"] = await call("POST", "/gov/switch", {"env": "ghost"})
    out["same"] = await call("POST", "/gov/switch", {"env": "a"})
    out["switch"] = await call("POST", "/gov/switch", {"env": "b"})
    out["again"] = await call("POST", "/gov/switch", {"env": "b"})
    os.environ["COMFYGIT_SUPERVISED"] = "0"
    out["unsupervised"] = await call("POST", "/gov/restart")
    out["exits"] = exits
    print(json.dumps(out))

asyncio.run(main())
`;

Deno.test("gov panel install writes the node into the environment's ComfyUI; rerun is a no-op", async () => {
  const t = await makeWorkspace({ a: {} });
  try {
    const r = await gov(["panel", "install", "--workspace", t.root, "--env", "a", "--json"]);
    assertEquals(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const path = join(
      t.root,
      "environments",
      "a",
      "ComfyUI",
      "custom_nodes",
      "gov_panel",
      "__init__.py",
    );
    assertEquals([out.path, out.changed], [path, true]);
    assertEquals(await Deno.readTextFile(path), PANEL_SOURCE);
    const again = await gov(["panel", "install", "--workspace", t.root, "--env", "a", "--json"]);
    assertEquals(JSON.parse(again.stdout).changed, false);
    const bad = await gov(["panel", "install", "--workspace", t.root, "--env", "nope"]);
    assertEquals(bad.code, 2);
    assertMatch(bad.stderr, /environment 'nope' not found/);
  } finally {
    await t.cleanup();
  }
});

Deno.test("the panel imports cleanly in the fake ComfyUI (no PromptServer there)", async () => {
  const t = await makeWorkspace({ a: {} }, { fakeComfy: true });
  try {
    const r = await gov(["panel", "install", "--workspace", t.root, "--env", "a"]);
    assertEquals(r.code, 0, r.stderr);
    const comfy = await startFakeComfyUI({ cwd: join(t.root, "environments", "a", "ComfyUI") });
    try {
      const log = comfy.output();
      assertMatch(log, /gov_panel/);
      assertNotMatch(log, /IMPORT FAILED|Traceback|Cannot import/);
    } finally {
      await comfy.stop();
    }
  } finally {
    await t.cleanup();
  }
});

Deno.test("panel routes: restart exits 42, switch writes the request and exits 43, status reads state", async () => {
  const t = await makeWorkspace({ a: {}, b: {} });
  try {
    const file = join(t.root, "panel.py");
    await Deno.writeTextFile(file, PANEL_SOURCE);
    const harness = join(t.root, "harness.py");
    await Deno.writeTextFile(harness, STUB_HARNESS);
    await Deno.writeTextFile(
      join(t.meta, ".switch_status.json"),
      JSON.stringify({ state: "complete", progress: 100, message: "", updated_at: 1 }),
    );
    const out = new Deno.Command(PYTHON, {
      args: [harness, file],
      cwd: "/",
      env: { GOV_WORKSPACE: t.root, COMFYGIT_SUPERVISED: "1", GOV_ENVIRONMENT: "a" },
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const dec = new TextDecoder();
    assertEquals(out.code, 0, dec.decode(out.stderr));
    const r = JSON.parse(dec.decode(out.stdout));
    assertEquals(r.routes, ["GET /gov/status", "POST /gov/restart", "POST /gov/switch"]);
    assertEquals(r.NODE_CLASS_MAPPINGS, {});
    assertEquals(r.status.body.switch.state, "complete");
    assertEquals(r.status.body.environments, ["a", "b"]);
    assertEquals(r.restart.status, 202);
    assertEquals(r.bad.status, 400);
    assertEquals(r.unknown.status, 404);
    assertEquals([r.same.status, r.same.body.already], [200, true]);
    assertEquals(r.switch.status, 202);
    assertEquals(r.again.status, 409, "a pending request blocks a second switch");
    assertEquals(r.unsupervised.status, 409);
    assertEquals(r.exits, [42, 43]);
    const req = JSON.parse(await Deno.readTextFile(join(t.meta, ".switch_request.json")));
    assertEquals([req.target_env, req.source_env], ["b", "a"]);
    assertTrue(typeof req.timestamp === "number");
  } finally {
    await t.cleanup();
  }
});

Deno.test("panel restart really exits 42 after answering", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "gov_panel.py"), PANEL_SOURCE);
    const out = new Deno.Command(PYTHON, {
      args: [
        "-c",
        "import sys, time; sys.path.insert(0, sys.argv[1]); import gov_panel as p; " +
        "print(p.request_restart()); sys.stdout.flush(); time.sleep(10)",
        dir,
      ],
      env: { COMFYGIT_SUPERVISED: "1" },
      stdout: "piped",
    }).outputSync();
    assertEquals(out.code, 42);
    assertMatch(new TextDecoder().decode(out.stdout), /202/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
