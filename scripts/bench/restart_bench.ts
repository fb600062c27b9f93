/**
 * Restart and switch overhead of the supervisor, each against its floor measured in the
 * same run:
 * - restart: ComfyUI exits 42 → the new ComfyUI declared healthy (the supervisor's own
 *   event lines, child_exited → healthy), 20 times;
 * - switch: ComfyUI exits 43 with a switch request → the target environment's ComfyUI
 *   declared healthy, 10 times, alternating between two environments.
 * The floor of each is the time from the same exit until the new ComfyUI first answers
 * `GET /system_stats`, seen by this script polling the port every 2 ms; the overhead is the
 * difference, what the supervisor adds after ComfyUI can answer.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnProcess } from "../../src/process/run.ts";
import { parseEventLine } from "../../src/supervisor/events.ts";
import { acquireSwitchLock, releaseSwitchLock, writeSwitchRequest } from "../../src/ipc/mod.ts";
import { type Figure, hostPython, median, quantile, withFloor } from "../lib/common.ts";
import { freeLoopbackPort } from "../../src/net/port.ts";

const RESTARTS = 20;
const SWITCHES = 10;
const START_DELAY_S = 0.2;
const repo = fileURLToPath(new URL("../../", import.meta.url));

interface Ev {
  time: number;
  type: string;
  message: string;
}

async function makeEnv(root: string, name: string, port: number): Promise<void> {
  const comfy = join(root, "environments", name, "ComfyUI");
  await Deno.mkdir(join(comfy, "custom_nodes"), { recursive: true });
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
    join(root, "environments", name, "config.toml"),
    `[paths]\npython = ${JSON.stringify(hostPython())}\n[comfyui]\nargs = ${
      JSON.stringify(["--listen", "127.0.0.1", "--port", String(port)])
    }\n`,
  );
}

/** Times (epoch ms) at which `GET /system_stats` answered 200, polled every 2 ms. */
function answerPoller(port: number) {
  const answers: number[] = [];
  let on = true;
  const done = (async () => {
    while (on) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/system_stats`);
        await r.body?.cancel();
        if (r.status === 200) answers.push(Date.now());
      } catch { /* not bound */ }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    answers,
    stop: async () => {
      on = false;
      await done;
    },
  };
}

/** Runs `gov run` over a workspace and follows its event lines. */
function startGov(root: string, extra: string[]) {
  const gov = spawnProcess(join(repo, "scripts", "gov"), ["run", "--workspace", root, ...extra], {
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1", PYTHONDONTWRITEBYTECODE: "1" },
  });
  const events: Ev[] = [];
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
  const count = (type: string, re?: RegExp) =>
    events.filter((e) => e.type === type && (!re || re.test(e.message))).length;
  const waitFor = async (type: string, n: number, re?: RegExp) => {
    const end = Date.now() + 60_000;
    while (count(type, re) < n) {
      if (gov.exited()) throw new Error("gov run exited during the benchmark");
      if (Date.now() > end) throw new Error(`no ${type} event #${n}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return {
    events,
    waitFor,
    stop: async () => {
      await gov.terminate(15_000);
      await pump.catch(() => {});
    },
  };
}

/** Per exit with code `code`: [exit → healthy, exit → first answer] in ms. */
function pairs(events: Ev[], answers: number[], code: number): [number, number][] {
  const out: [number, number][] = [];
  const re = new RegExp(`exited with code ${code}\\b`);
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (e.type !== "child_exited" || !re.test(e.message)) continue;
    const healthy = events.slice(i + 1).find((x) => x.type === "healthy");
    const first = answers.find((t) => t > e.time);
    if (healthy && first !== undefined) out.push([healthy.time - e.time, first - e.time]);
  }
  return out;
}

function overheadFigures(what: string, p: [number, number][], detail: string): Figure[] {
  const overheads = p.map(([h, f]) => h - f).sort((a, b) => a - b);
  const floor = median(p.map(([, f]) => f));
  const total = median(p.map(([h]) => h));
  return [
    {
      name: `${what} overhead median`,
      value: quantile(overheads, 0.5),
      unit: "ms",
      detail: `${p.length} runs; ${detail}; (exit → healthy) − (exit → first answer)`,
      goal: "≤ 150 ms",
    },
    { name: `${what} overhead p90`, value: quantile(overheads, 0.9), unit: "ms" },
    withFloor(
      {
        name: `${what}: exit to healthy median`,
        value: total,
        unit: "ms",
        detail: `floor: exit → new ComfyUI first answers /system_stats (fake start ${
          START_DELAY_S * 1000
        } ms)`,
      },
      floor,
    ),
  ];
}

async function restarts(): Promise<Figure[]> {
  const root = await Deno.makeTempDir({ prefix: "gov-restart-bench-" });
  const port = freeLoopbackPort();
  await Deno.mkdir(join(root, ".metadata"));
  await makeEnv(root, "bench", port);
  const gov = startGov(root, []);
  const poller = answerPoller(port);
  try {
    await gov.waitFor("healthy", 1);
    for (let i = 1; i <= RESTARTS; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/fake/exit`, {
        method: "POST",
        body: JSON.stringify({ code: 42 }),
      });
      await r.body?.cancel();
      await gov.waitFor("healthy", i + 1);
    }
  } finally {
    await poller.stop();
    await gov.stop();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
  return overheadFigures("restart", pairs(gov.events, poller.answers, 42), "exit 42");
}

async function switches(): Promise<Figure[]> {
  const root = await Deno.makeTempDir({ prefix: "gov-switch-bench-" });
  const port = freeLoopbackPort();
  const meta = join(root, ".metadata");
  await Deno.mkdir(meta);
  await makeEnv(root, "a", port);
  await makeEnv(root, "b", port);
  const gov = startGov(root, ["--env", "a"]);
  const poller = answerPoller(port);
  try {
    await gov.waitFor("healthy", 1);
    let from = "a";
    for (let i = 1; i <= SWITCHES; i++) {
      const to = from === "a" ? "b" : "a";
      // As ComfyGit's panel does: hold the lock, leave the request, exit 43; the lock keeps
      // the supervisor's poll from taking the request before the exit.
      // The supervisor lets go of the lock just after the previous switch ended.
      const until = Date.now() + 10_000;
      while (!(await acquireSwitchLock(meta))) {
        if (Date.now() > until) throw new Error("switch lock stays held");
        await new Promise((r) => setTimeout(r, 5));
      }
      await writeSwitchRequest(meta, to, from);
      const r = await fetch(`http://127.0.0.1:${port}/fake/exit`, {
        method: "POST",
        body: JSON.stringify({ code: 43 }),
      });
      await r.body?.cancel();
      await gov.waitFor("child_exited", i, /exited with code 43/);
      await releaseSwitchLock(meta);
      await gov.waitFor("healthy", i + 1);
      from = to;
    }
  } finally {
    await poller.stop();
    await gov.stop();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
  return overheadFigures(
    "switch",
    pairs(gov.events, poller.answers, 43),
    "exit 43 → target healthy, alternating a ↔ b",
  );
}

/** Runs the benchmark: restart and switch overheads with their floors. */
export default async function restartBench(): Promise<Figure[]> {
  return [...await restarts(), ...await switches()];
}

if (import.meta.main) {
  for (const f of await restartBench()) console.log(JSON.stringify(f));
}
