// `gov run` against ComfyUI-Manager 4.3's own restart route, as the fake serves it: POST
// /v2/manager/reboot is never answered, the marker `<__COMFY_CLI_SESSION__>.reboot` is left,
// ComfyUI exits 0 and the supervisor starts it again. Separate from run_cli_test.ts, which
// drives the fake's /fake/reboot control.
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { waitFor } from "../helpers/net.ts";
import { count, makeWorkspace, startGov, terminate } from "./_helpers.ts";

const HEALTHY = /Z healthy /;

Deno.test("gov run restarts ComfyUI after Manager 4.3's POST /v2/manager/reboot (marker, exit 0)", async () => {
  const t = await makeWorkspace({ a: { fake: { manager: true } } }, { fakeComfy: true });
  const g = startGov(["run", "--workspace", t.root, "--poll-interval", "100", "--grace", "2"]);
  try {
    assertTrue(await g.waitForLog(HEALTHY), g.stderr());
    const [first] = await t.starts("a");
    const session = first.env.__COMFY_CLI_SESSION__;
    assertTrue(typeof session === "string" && session.length > 0);
    // Manager answers nothing: the process ends under the request.
    const answer = await fetch(`http://127.0.0.1:${t.port}/v2/manager/reboot`, { method: "POST" })
      .then(async (r) => {
        await r.body?.cancel();
        return `answered ${r.status}`;
      }, (e) => (e as Error).name);
    assertEquals(answer, "TypeError");
    assertTrue(await waitFor(() => count(g.stderr(), HEALTHY) >= 2, 30_000), g.stderr());
    assertMatch(g.stderr(), /exited with code 0: ComfyUI-Manager restart/);
    const starts = await t.starts("a");
    assertEquals(starts.length, 2);
    assertTrue(starts[0].pid !== starts[1].pid);
    // The supervisor consumed the marker.
    const marker = await Deno.stat(`${session}.reboot`).then(() => true, () => false);
    assertTrue(!marker);
  } finally {
    await terminate(g);
    await t.cleanup();
  }
});
