/**
 * Starts and installs the fake ComfyUI (`fixtures/comfyui/main.py`) for tests: a real Python
 * process speaking ComfyUI's HTTP and WebSocket API, steered with `FAKE_COMFYUI_*` knobs.
 *
 * @module
 */
import { type SpawnedProcess, spawnProcess } from "../../src/process/run.ts";
import { freePort } from "./net.ts";
import { FAKE_COMFYUI_DIR } from "./paths.ts";

/** Options for {@linkcode startFakeComfyUI}. */
export interface FakeComfyUIOptions {
  /** Extra environment (FAKE_COMFYUI_* knobs, COMFYGIT_SUPERVISED, ...). */
  env?: Record<string, string>;
  /** Port to bind; a free one by default. */
  port?: number;
  /**
   * ComfyUI folder to run in (holding main.py, see {@linkcode installFakeComfyUI}). By default
   * a fresh temporary copy of the fixture, removed again by `stop()`.
   */
  cwd?: string;
  /** Python interpreter; `python3` by default. */
  python?: string;
  /** More ComfyUI command-line flags, after `--listen` and `--port`. */
  args?: string[];
  /** How long to wait for `GET /system_stats` to answer (default 30 s). */
  timeoutMs?: number;
  /** Whether to wait until the server answers (default true). */
  waitHealthy?: boolean;
}

/** A running fake ComfyUI. */
export interface FakeComfyUI {
  /** The port it binds. */
  port: number;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** The ComfyUI folder it runs in (output/ and input/ are inside). */
  dir: string;
  /** The child process (leader of its own process group). */
  process: SpawnedProcess;
  /** Everything it printed so far (stdout and stderr interleaved by line). */
  output(): string;
  /** Kills its whole process group and waits for it to exit. Safe to call twice. */
  stop(): Promise<Deno.CommandStatus>;
}

/** The fake failed to come up. */
export class FakeComfyUIStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FakeComfyUIStartError";
  }
}

async function answers(url: string): Promise<boolean> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 2000);
  try {
    const r = await fetch(`${url}/system_stats`, { signal: ac.signal });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

async function pump(stream: ReadableStream<Uint8Array> | null, sink: string[]): Promise<void> {
  if (!stream) return;
  const dec = new TextDecoder();
  for await (const chunk of stream) sink.push(dec.decode(chunk, { stream: true }));
}

/**
 * Starts the fake ComfyUI and, unless `waitHealthy` is false, waits until `GET /system_stats`
 * answers. Rejects (after killing it) when it exits or stays silent past `timeoutMs`.
 *
 * @example
 * ```ts
 * const comfy = await startFakeComfyUI({ env: { FAKE_COMFYUI_STEPS: "2" } });
 * try {
 *   const stats = await (await fetch(`${comfy.url}/system_stats`)).json();
 * } finally {
 *   await comfy.stop();
 * }
 * ```
 */
export async function startFakeComfyUI(opts: FakeComfyUIOptions = {}): Promise<FakeComfyUI> {
  const port = opts.port ?? freePort();
  const ownDir = opts.cwd === undefined
    ? await installFakeComfyUI(await Deno.makeTempDir({ prefix: "fake-comfyui-" }))
    : undefined;
  const cwd = opts.cwd ?? ownDir!;
  const url = `http://127.0.0.1:${port}`;
  let proc: SpawnedProcess;
  try {
    proc = spawnProcess(
      opts.python ?? "python3",
      ["main.py", "--listen", "127.0.0.1", "--port", String(port), ...(opts.args ?? [])],
      {
        cwd,
        env: { PYTHONUNBUFFERED: "1", PYTHONDONTWRITEBYTECODE: "1", ...(opts.env ?? {}) },
        stdout: "piped",
        stderr: "piped",
      },
    );
  } catch (err) {
    if (ownDir) await Deno.remove(ownDir, { recursive: true }).catch(() => {});
    throw err;
  }
  const chunks: string[] = [];
  const pumps = Promise.all([
    pump(proc.process.stdout, chunks),
    pump(proc.process.stderr, chunks),
  ]);
  let stopped: Promise<Deno.CommandStatus> | undefined;
  const comfy: FakeComfyUI = {
    port,
    url,
    dir: cwd,
    process: proc,
    output: () => chunks.join(""),
    stop() {
      stopped ??= (async () => {
        const { status } = await proc.terminate(5000);
        await pumps.catch(() => {});
        if (ownDir) await Deno.remove(ownDir, { recursive: true }).catch(() => {});
        return status;
      })();
      return stopped;
    },
  };
  if (opts.waitHealthy === false) return comfy;
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (await answers(url)) return comfy;
    if (proc.exited()) {
      const status = await comfy.stop();
      throw new FakeComfyUIStartError(
        `fake ComfyUI exited with code ${status.code} before answering:\n${comfy.output()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await comfy.stop();
  throw new FakeComfyUIStartError(
    `fake ComfyUI did not answer on ${url} within ${opts.timeoutMs ?? 30_000} ms:\n` +
      comfy.output(),
  );
}

/**
 * Copies the fake ComfyUI (main.py and its helper modules) into `dir`, making it a ComfyUI
 * folder with an empty `custom_nodes/`, and returns `dir`. An existing `custom_nodes/` is
 * kept.
 *
 * @example
 * ```ts
 * const comfyDir = await installFakeComfyUI(`${envDir}/ComfyUI`);
 * await Deno.writeTextFile(`${comfyDir}/custom_nodes/hello.py`, "NODE_CLASS_MAPPINGS = {}\n");
 * ```
 */
export async function installFakeComfyUI(dir: string): Promise<string> {
  await Deno.mkdir(`${dir}/custom_nodes`, { recursive: true });
  for await (const entry of Deno.readDir(FAKE_COMFYUI_DIR)) {
    if (entry.isFile && entry.name.endsWith(".py")) {
      await Deno.copyFile(`${FAKE_COMFYUI_DIR}/${entry.name}`, `${dir}/${entry.name}`);
    }
  }
  return dir;
}
