/**
 * Restart overhead of the supervisor: time from ComfyUI exiting 42 to the new ComfyUI being
 * declared healthy, minus the fake ComfyUI's own start delay. 20 restarts of the fake under
 * `gov run` with default settings (250 ms polls, 3 consecutive health answers); times come
 * from the supervisor's own event lines (child_exited, healthy), not from the client side.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnProcess } from "../../src/process/run.ts";
import { parseEventLine } from "../../src/supervisor/events.ts";
import { hostPython, quantile } from "../lib/common.ts";
import { freeLoopbackPort } from "../../src/net/port.ts";

const RESTARTS = 20;
const START_DELAY_S = 0.2;
const repo = fileURLToPath(new URL("../../", import.meta.url));

/** Runs the benchmark; returns median and p90 overhead and the median total restart time. */
export default async function restartBench(): Promise<
  { name: string; value: number; unit: string; detail?: string }[]
> {
  const root = await Deno.makeTempDir({ prefix: "gov-restart-bench-" });
  const port = freeLoopbackPort();
  const comfy = join(root, "environments", "bench", "ComfyUI");
  await Deno.mkdir(join(comfy, "custom_nodes"), { recursive: true });
  await Deno.mkdir(join(root, ".metadata"));
  for (const e of Deno.readDirSync(join(repo, "fixtures", "comfyui"))) {
    if (e.isFile && e.name.endsWith(".py")) {
      await Deno.copyFile(join(repo, "fixtures", "comfyui", e.name), join(comfy, e.name));
    }
  }
  await Deno.writeTextFile(
    join(comfy, "fake_comfyui.json"),
    JSON.stringify({ start_delay: START_DELAY_S }),
  );
  await Deno.writeTextFile(
    join(root, "environments", "bench", "config.toml"),
    `[paths]\npython = ${JSON.stringify(hostPython())}\n[comfyui]\nargs = ${
      JSON.stringify(["--listen", "127.0.0.1", "--port", String(port)])
    }\n`,
  );
  const gov = spawnProcess(join(repo, "scripts", "gov"), ["run", "--workspace", root], {
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1", PYTHONDONTWRITEBYTECODE: "1" },
  });
  const events: { time: number; type: string; message: string }[] = [];
  const pump = (async () => {
    const dec = new TextDecoder();
    let pending = "";
    for await (const chunk of gov.process.stderr!) {
      pending += dec.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const l of lines) {
        const e = parseEventLine(l);
        if (e) events.push(e);
      }
    }
  })();
  const healthyCount = () => events.filter((e) => e.type === "healthy").length;
  const waitHealthy = async (n: number) => {
    const end = Date.now() + 60_000;
    while (healthyCount() < n) {
      if (gov.exited()) throw new Error("gov run exited during the benchmark");
      if (Date.now() > end) throw new Error(`ComfyUI did not become healthy (${n})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    await waitHealthy(1);
    for (let i = 1; i <= RESTARTS; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/fake/exit`, {
        method: "POST",
        body: JSON.stringify({ code: 42 }),
      });
      await r.body?.cancel();
      await waitHealthy(i + 1);
    }
  } finally {
    await gov.terminate(15_000);
    await pump.catch(() => {});
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
  const totals: number[] = [];
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (e.type !== "child_exited" || !/exited with code 42/.test(e.message)) continue;
    const healthy = events.slice(i + 1).find((x) => x.type === "healthy");
    if (healthy) totals.push(healthy.time - e.time);
  }
  const overheads = totals.map((t) => t - START_DELAY_S * 1000).sort((a, b) => a - b);
  totals.sort((a, b) => a - b);
  const detail = `${totals.length} restarts, fake start delay ${START_DELAY_S * 1000} ms, ` +
    "poll 250 ms, 3 health answers";
  return [
    { name: "restart overhead median", value: quantile(overheads, 0.5), unit: "ms", detail },
    { name: "restart overhead p90", value: quantile(overheads, 0.9), unit: "ms" },
    { name: "exit 42 to healthy median", value: quantile(totals, 0.5), unit: "ms" },
  ];
}

if (import.meta.main) {
  for (const f of await restartBench()) {
    console.log(`${f.name}: ${f.value.toFixed(1)} ${f.unit}${f.detail ? ` (${f.detail})` : ""}`);
  }
}
