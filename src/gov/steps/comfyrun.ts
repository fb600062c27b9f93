/**
 * The test start of ComfyUI with a candidate venv (`gov tx run`).
 *
 * ComfyUI is a server: it never exits on its own when healthy, and it binds its port only
 * after every custom node in `custom_nodes/` was imported. So gov starts `main.py` on a free
 * loopback port and decides:
 *
 * | what happened                                  | outcome       | run_exit_code |
 * |------------------------------------------------|---------------|---------------|
 * | `main.py` missing                              | missing-main  | 2             |
 * | the port opened (ComfyUI came up): gov stops it | came-up       | 0             |
 * | exited by itself before coming up              | exited        | its exit code |
 * | neither within the timeout: gov kills it       | timeout       | 124           |
 *
 * "IMPORT FAILED" lines ComfyUI logs are collected per custom node folder; `gov tx run`
 * fails the transaction for each of them except registered nodes still waiting for their
 * own promotion (see ops/tx_run.ts): a dependency change that breaks some node's import is
 * exactly what a transaction must catch (`--allow-failed-run` lets an operator promote
 * anyway).
 *
 * @module
 */
import { join } from "node:path";
import { exists } from "../../fs/atomic.ts";
import { SpawnError, spawnProcess } from "../../process/run.ts";
import type { OnStep } from "../../uv/driver.ts";
import { judgedStep } from "./progress.ts";
import { freeLoopbackPort, isPortOpen } from "../../net/port.ts";

/** Result of a test start. */
export interface ComfyRunResult {
  outcome: "came-up" | "exited" | "timeout" | "missing-main" | "spawn-failed";
  exitCode: number;
  cameUp: boolean;
  timedOut: boolean;
  durationMs: number;
  stdout: string;
  stderr: string;
  /** Custom node folders ComfyUI reported as IMPORT FAILED. */
  importFailures: string[];
  port: number;
}

async function drain(stream: ReadableStream<Uint8Array>, sink: { text: string }): Promise<void> {
  const dec = new TextDecoder();
  for await (const chunk of stream) sink.text += dec.decode(chunk, { stream: true });
  sink.text += dec.decode();
}

/**
 * Drops `--listen`/`--port` (and their values) from configured ComfyUI args: the test start
 * must never collide with the production instance's port.
 *
 * @example
 * ```ts
 * import { testArgs } from "@/gov/steps/comfyrun.ts";
 *
 * testArgs(["--listen", "0.0.0.0", "--port", "8188", "--cpu"]); // ["--cpu"]
 * ```
 */
export function testArgs(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--listen" || a === "--port") {
      // `--listen` may stand alone (ComfyUI then listens on 0.0.0.0).
      if (a === "--port" || (args[i + 1] !== undefined && !args[i + 1].startsWith("-"))) i++;
      continue;
    }
    if (a.startsWith("--listen=") || a.startsWith("--port=")) continue;
    out.push(a);
  }
  return out;
}

/**
 * Custom node folder names from ComfyUI's "IMPORT FAILED" lines, e.g.
 * `   0.0 seconds (IMPORT FAILED): /x/ComfyUI/custom_nodes/foo`.
 *
 * @example
 * ```ts
 * import { importFailures } from "@/gov/steps/comfyrun.ts";
 * importFailures("0.0 seconds (IMPORT FAILED): /c/custom_nodes/foo\n"); // ["foo"]
 * ```
 */
export function importFailures(log: string): string[] {
  const found = new Set<string>();
  for (const line of log.split("\n")) {
    if (!line.includes("IMPORT FAILED")) continue;
    const m = /custom_nodes[\/\\]([^\/\\\s]+)/.exec(line);
    found.add(m ? m[1].replace(/\.py$/, "") : line.trim());
  }
  return [...found].sort();
}

/** SIGTERM to SIGKILL for a test-started ComfyUI, from gov or from its orphan guard. */
const TEST_START_GRACE_MS = 5000;

/**
 * Starts ComfyUI's `main.py` with `python`, waits until it comes up, exits, or the timeout
 * passes, then stops it (process group: no orphan survives).
 *
 * @example
 * ```ts
 * import { testStartComfyUI } from "@/gov/steps/comfyrun.ts";
 * declare const comfyuiDir: string;
 * declare const python: string;
 *
 * const r = await testStartComfyUI({ python, comfyuiDir, args: [], timeoutMs: 120_000 });
 * ```
 */
export async function testStartComfyUI(opts: {
  python: string;
  comfyuiDir: string;
  args: string[];
  timeoutMs: number;
  onStep?: OnStep;
  env?: Record<string, string>;
}): Promise<ComfyRunResult> {
  const port = freeLoopbackPort();
  const main = join(opts.comfyuiDir, "main.py");
  const base = {
    cameUp: false,
    timedOut: false,
    durationMs: 0,
    stdout: "",
    importFailures: [],
    port,
  };
  if (!(await exists(main))) {
    return { ...base, outcome: "missing-main", exitCode: 2, stderr: `${main} does not exist\n` };
  }
  const started = performance.now();
  return await judgedStep(opts.onStep, "ComfyUI test start", async (): Promise<ComfyRunResult> => {
    let child;
    try {
      child = spawnProcess(
        opts.python,
        [main, ...testArgs(opts.args), "--listen", "127.0.0.1", "--port", String(port)],
        {
          cwd: opts.comfyuiDir,
          env: { PYTHONUNBUFFERED: "1", ...(opts.env ?? {}) },
          unsetEnv: ["VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH"],
          stdout: "piped",
          stderr: "piped",
          // A gov killed mid test-start must not leave a candidate ComfyUI holding a GPU.
          orphanGuard: { python: opts.python, graceMs: TEST_START_GRACE_MS },
        },
      );
    } catch (err) {
      if (!(err instanceof SpawnError)) throw err;
      return { ...base, outcome: "spawn-failed" as const, exitCode: 127, stderr: err.message };
    }
    const out = { text: "" };
    const errText = { text: "" };
    const reading = Promise.all([
      drain(child.process.stdout!, out),
      drain(child.process.stderr!, errText),
    ]);
    let cameUp = false;
    let timedOut = false;
    const deadline = started + opts.timeoutMs;
    while (!child.exited()) {
      if (await isPortOpen("127.0.0.1", port)) {
        cameUp = !child.exited();
        break;
      }
      if (performance.now() >= deadline) {
        timedOut = true;
        break;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([child.status, new Promise((r) => timer = setTimeout(r, 150))]);
      clearTimeout(timer);
    }
    let status: Deno.CommandStatus;
    // terminate() also after a plain exit: it reaps stragglers and releases the guard.
    if (cameUp || timedOut) status = (await child.terminate(TEST_START_GRACE_MS)).status;
    else status = (await child.terminate(0)).status;
    await reading;
    const log = out.text + "\n" + errText.text;
    const outcome = cameUp ? "came-up" : timedOut ? "timeout" : "exited";
    return {
      outcome,
      exitCode: cameUp ? 0 : timedOut ? 124 : status.code,
      cameUp,
      timedOut,
      durationMs: Math.round(performance.now() - started),
      stdout: out.text,
      stderr: errText.text,
      importFailures: importFailures(log),
      port,
    } as ComfyRunResult;
  }, (r) => r.outcome === "came-up" && r.importFailures.length === 0);
}
