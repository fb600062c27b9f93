/**
 * `deno task demo`: the supervisor in 30 seconds. Builds a throw-away workspace with two
 * environments of the fake ComfyUI (host python), runs `gov run` through scripts/gov,
 * restarts ComfyUI the way ComfyUI itself asks for it (exit 42), switches to the other
 * environment with `gov switch`, stops cleanly, and tells what happened at each step:
 * events, pids, ports and the state files in `.metadata/`. Exit 0 when everything behaved,
 * non-zero with the reason otherwise.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runProcess, type SpawnedProcess, spawnProcess } from "../src/process/run.ts";
import { parseEventLine } from "../src/supervisor/events.ts";
import { hostPython } from "./lib/common.ts";
import { freeLoopbackPort, isPortOpen } from "../src/net/port.ts";

const repo = fileURLToPath(new URL("../", import.meta.url));
const GOV = join(repo, "scripts", "gov");
const t0 = Date.now();
const bold = (s: string) => Deno.stdout.isTerminal() ? `\x1b[1m${s}\x1b[22m` : s;
const say = (s: string) => console.log(s);
const step = (s: string) => say(`\n${bold(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${s}`)}`);

class DemoFailure extends Error {}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return undefined;
  }
}

async function makeWorkspace(port: number): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "gov-demo-" });
  await Deno.mkdir(join(root, ".metadata"));
  for (const [name, delay] of [["stable", 0.2], ["canary", 0.8]] as const) {
    const comfy = join(root, "environments", name, "ComfyUI");
    await Deno.mkdir(join(comfy, "custom_nodes"), { recursive: true });
    for (const e of Deno.readDirSync(join(repo, "fixtures", "comfyui"))) {
      if (e.isFile && e.name.endsWith(".py")) {
        await Deno.copyFile(join(repo, "fixtures", "comfyui", e.name), join(comfy, e.name));
      }
    }
    await Deno.writeTextFile(
      join(comfy, "fake_comfyui.json"),
      JSON.stringify({ start_delay: delay }),
    );
    await Deno.writeTextFile(
      join(root, "environments", name, "config.toml"),
      `[paths]\npython = ${JSON.stringify(hostPython())}\n\n[comfyui]\nargs = ${
        JSON.stringify(["--listen", "127.0.0.1", "--port", String(port)])
      }\n`,
    );
  }
  return root;
}

interface Event {
  time: number;
  type: string;
  message: string;
}

async function main(): Promise<void> {
  const port = freeLoopbackPort();
  const root = await makeWorkspace(port);
  const meta = join(root, ".metadata");
  let gov: SpawnedProcess | undefined;
  const events: Event[] = [];
  let shown = 0;
  const showEvents = () => {
    for (; shown < events.length; shown++) {
      const e = events[shown];
      say(`    ${new Date(e.time).toISOString().slice(11, 23)}  ${e.type.padEnd(16)} ${e.message}`);
    }
  };
  const waitFor = async (what: string, cond: () => boolean | Promise<boolean>, ms = 20_000) => {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (gov?.exited()) throw new DemoFailure(`gov run exited while waiting for ${what}`);
      if (Date.now() > end) throw new DemoFailure(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const count = (type: string) => events.filter((e) => e.type === type).length;
  try {
    step(`A workspace with two environments of the fake ComfyUI: ${root}`);
    say("    environments/stable  (starts in 0.2 s)   environments/canary  (starts in 0.8 s)");
    say(`    both run \`python main.py --listen 127.0.0.1 --port ${port}\` on the host python`);

    step("gov run --env stable");
    gov = spawnProcess(GOV, ["run", "--workspace", root, "--env", "stable", "--grace", "3"], {
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    });
    const pump = (async () => {
      const dec = new TextDecoder();
      let pending = "";
      for await (const chunk of gov!.process.stderr!) {
        pending += dec.decode(chunk, { stream: true });
        const lines = pending.split("\n");
        pending = lines.pop() ?? "";
        for (const l of lines) {
          const e = parseEventLine(l);
          if (e) events.push(e);
        }
      }
    })();
    await waitFor("the first healthy ComfyUI", () => count("healthy") >= 1);
    showEvents();
    const pid = (await Deno.readTextFile(join(meta, ".orchestrator.pid"))).trim();
    const startup = await readJson(join(meta, ".startup_state.json"));
    const state = await readJson(join(meta, ".supervisor_state.json"));
    say(`  .metadata/.orchestrator.pid      ${pid} (the supervisor, gov itself: pid ${gov.pid})`);
    say(
      `  .metadata/.startup_state.json    environment_name=${startup?.environment_name}, ` +
        `port=${startup?.port}, argv=${JSON.stringify(startup?.argv)}`,
    );
    say(
      `  .metadata/.supervisor_state.json phase=${state?.phase}, child_pid=${state?.child_pid}, ` +
        `healthy=${state?.healthy}`,
    );
    const firstChild = state?.child_pid;

    step("ComfyUI asks for a restart: it exits 42 (what a custom-node install does)");
    const r = await fetch(`http://127.0.0.1:${port}/fake/exit`, {
      method: "POST",
      body: JSON.stringify({ code: 42 }),
    });
    await r.body?.cancel();
    await waitFor("ComfyUI to come back", () => count("healthy") >= 2);
    showEvents();
    const after = await readJson(join(meta, ".supervisor_state.json"));
    if (after?.child_pid === firstChild) throw new DemoFailure("the restart kept the same pid");
    say(`  new ComfyUI pid ${after?.child_pid} (was ${firstChild}); restarts=${after?.restarts}`);

    step("gov switch canary --wait");
    const sw = await runProcess(GOV, ["switch", "canary", "--workspace", root, "--wait"], {
      env: { NO_COLOR: "1" },
      timeoutMs: 60_000,
    });
    for (const l of sw.stderr.trimEnd().split("\n")) say(`  gov switch: ${l}`);
    if (sw.code !== 0) throw new DemoFailure(`gov switch exited ${sw.code}`);
    await waitFor("the switch to show up in the log", () => count("switch_complete") >= 1);
    showEvents();
    const status = await readJson(join(meta, ".switch_status.json"));
    say(
      `  .metadata/.switch_status.json    state=${status?.state}, progress=${status?.progress}, ` +
        `${status?.source_env} -> ${status?.target_env}`,
    );
    const statsRes = await fetch(`http://127.0.0.1:${port}/system_stats`);
    await statsRes.body?.cancel();
    const now = await readJson(join(meta, ".supervisor_state.json"));
    if (now?.environment !== "canary") throw new DemoFailure("the supervisor is not on canary");
    say(
      `  GET /system_stats on port ${port}: ${statsRes.status}, answered by ComfyUI pid ` +
        `${now?.child_pid} of ${now?.environment}`,
    );

    step("gov stop --wait");
    const stop = await runProcess(GOV, ["stop", "--workspace", root, "--wait"], {
      env: { NO_COLOR: "1" },
      timeoutMs: 60_000,
    });
    if (stop.code !== 0) throw new DemoFailure(`gov stop exited ${stop.code}: ${stop.stderr}`);
    const status2 = await gov.status;
    await pump.catch(() => {});
    showEvents();
    if (status2.code !== 0) throw new DemoFailure(`gov run exited ${status2.code}`);
    if (await isPortOpen("127.0.0.1", port)) throw new DemoFailure(`port ${port} is still held`);
    let pidGone = false;
    try {
      await Deno.stat(join(meta, ".orchestrator.pid"));
    } catch {
      pidGone = true;
    }
    if (!pidGone) throw new DemoFailure(".orchestrator.pid was left behind");
    say(`  gov run exited 0; port ${port} is free; .orchestrator.pid removed`);
    step("done: restart and switch worked; removing the workspace");
  } finally {
    if (gov && !gov.exited()) await gov.terminate(5000);
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

try {
  await main();
  Deno.exit(0);
} catch (err) {
  console.error(`demo failed: ${(err as Error)?.message ?? err}`);
  Deno.exit(1);
}
