/**
 * A `gov serve` in front of zero-time fake ComfyUI backends, for the gateway benchmarks:
 * started, waited for until every backend is up, and stopped with everything it started.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { type FakeComfyUI, startFakeComfyUI } from "../../tests/helpers/fake_comfyui.ts";
import { freeLoopbackPort } from "../../src/net/port.ts";

const GOV = fileURLToPath(new URL("../gov", import.meta.url));

/** A running benchmark gateway. */
export interface BenchGateway {
  /** The workspace folder (its backends.toml names the fakes). */
  ws: string;
  /** The fake backends, `b0`, `b1`, ... in backends.toml. */
  fakes: FakeComfyUI[];
  /** The `gov serve` process. */
  serve: Deno.ChildProcess;
  /** Where it listens. */
  url: string;
  /** Stops gov serve and the fakes, and removes the workspace. */
  stop(): Promise<void>;
}

/**
 * Starts `backends` zero-time fakes and `gov serve [serveArgs]` over them, and resolves once
 * the gateway reports every backend up (60 s at most).
 */
export async function startBenchGateway(opts: {
  prefix: string;
  backends: number;
  serveArgs?: string[];
}): Promise<BenchGateway> {
  const ws = await Deno.makeTempDir({ prefix: opts.prefix });
  const fakes: FakeComfyUI[] = [];
  let serve: Deno.ChildProcess | undefined;
  const stop = async () => {
    if (serve) {
      try {
        serve.kill("SIGTERM");
      } catch { /* gone */ }
      await serve.status;
    }
    for (const f of fakes) await f.stop();
    await Deno.remove(ws, { recursive: true }).catch(() => {});
  };
  try {
    await Deno.mkdir(`${ws}/.metadata`, { recursive: true });
    const toml: string[] = [];
    for (let i = 0; i < opts.backends; i++) {
      const f = await startFakeComfyUI({
        env: { FAKE_COMFYUI_EXEC_SECONDS: "0", FAKE_COMFYUI_STEPS: "1" },
      });
      fakes.push(f);
      toml.push(`[[backend]]\nid = "b${i}"\nhost = "127.0.0.1"\nport = ${f.port}\nmax_queue = 4\n`);
    }
    await Deno.writeTextFile(`${ws}/backends.toml`, toml.join("\n"));
    const port = freeLoopbackPort();
    const url = `http://127.0.0.1:${port}`;
    serve = new Deno.Command(GOV, {
      args: [
        "serve",
        "--workspace",
        ws,
        "--listen",
        `127.0.0.1:${port}`,
        ...(opts.serveArgs ?? []),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const deadline = Date.now() + 60_000;
    while (true) {
      try {
        const r = await fetch(`${url}/v1/backends`);
        const up = (await r.json()).backends.filter((b: { state: string }) => b.state === "up");
        if (up.length === opts.backends) break;
      } catch { /* not yet */ }
      if (Date.now() > deadline) {
        throw new Error(`gov serve did not come up with ${opts.backends} backends`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return { ws, fakes, serve, url, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
