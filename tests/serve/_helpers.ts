/**
 * Shared set-up of the gateway tests: a workspace with fake ComfyUI backends in its
 * `backends.toml`, a real `gov serve` started through scripts/gov, and small API helpers.
 *
 * @module
 */
import { type FakeComfyUI, startFakeComfyUI } from "../helpers/fake_comfyui.ts";
import { spawnGov } from "../helpers/gov.ts";
import { freePort, waitFor } from "../helpers/net.ts";
import { txt2img as txt2imgPrompt } from "../helpers/prompts.ts";

/** ComfyUI's default txt2img graph as an API prompt, with the positive prompt `text`. */
export function txt2img(text = "a lighthouse at dusk"): Record<string, unknown> {
  return txt2imgPrompt({ text });
}

/** A test workspace with backends. */
export interface Lab {
  /** Workspace root. */
  ws: string;
  /** Every `gov serve` started for this lab, oldest first. */
  servers: Gov[];
  /** Backends by id. */
  backends: Map<string, FakeComfyUI>;
  /** Starts (or restarts on its old port) a backend and records it in backends.toml. */
  addBackend(id: string, env?: Record<string, string>, extra?: string): Promise<FakeComfyUI>;
  /** Stops every process and removes the workspace. */
  cleanup(): Promise<void>;
}

/**
 * Creates a workspace (`.metadata/` and `backends.toml`).
 *
 * @example
 * ```ts
 * const lab = await newLab();
 * try { await lab.addBackend("a"); } finally { await lab.cleanup(); }
 * ```
 */
export async function newLab(): Promise<Lab> {
  const ws = await Deno.makeTempDir({ prefix: "gov-serve-test-" });
  await Deno.mkdir(`${ws}/.metadata`, { recursive: true });
  const backends = new Map<string, FakeComfyUI>();
  const entries = new Map<string, string>();
  const writeToml = async () => {
    await Deno.writeTextFile(`${ws}/backends.toml`, [...entries.values()].join("\n"));
  };
  const servers: Gov[] = [];
  const lab: Lab = {
    ws,
    backends,
    servers,
    async addBackend(id, env = {}, extra = "") {
      const old = backends.get(id);
      const comfy = await startFakeComfyUI({
        port: old?.port,
        env: { FAKE_COMFYUI_EXEC_SECONDS: "0.3", FAKE_COMFYUI_STEPS: "3", ...env },
      });
      backends.set(id, comfy);
      entries.set(
        id,
        `[[backend]]\nid = "${id}"\nhost = "127.0.0.1"\nport = ${comfy.port}\n${extra}\n`,
      );
      await writeToml();
      return comfy;
    },
    async cleanup() {
      for (const s of servers) await s.kill();
      for (const b of backends.values()) await b.stop().catch(() => {});
      await Deno.remove(ws, { recursive: true }).catch(() => {});
    },
  };
  return lab;
}

/** A running `gov serve`. */
export interface Gov {
  /** Base URL. */
  url: string;
  /** Port. */
  port: number;
  /** The process. */
  process: Deno.ChildProcess;
  /** stderr (the operator log) so far. */
  log(): string;
  /** Sends a signal and waits for the exit; returns the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
  /** SIGKILL, idempotent. */
  kill(): Promise<void>;
}

/**
 * Starts `gov serve --workspace <lab.ws>` on a free port and waits for /healthz.
 *
 * @example
 * ```ts
 * const gov = await startServe(lab, ["--probe-interval", "300"]);
 * ```
 */
export async function startServe(
  lab: Lab,
  args: string[] = [],
  opts: { port?: number; env?: Record<string, string>; token?: string } = {},
): Promise<Gov> {
  const port = opts.port ?? freePort();
  const child = spawnGov(
    [
      "serve",
      "--workspace",
      lab.ws,
      "--listen",
      `127.0.0.1:${port}`,
      "--probe-interval",
      "300",
      "--probe-timeout",
      "1500",
      ...(opts.token ? ["--token", opts.token] : []),
      ...args,
    ],
    { env: opts.env },
  );
  const errChunks: string[] = [];
  const dec = new TextDecoder();
  const pumps = Promise.all([
    (async () => {
      for await (const c of child.stderr) errChunks.push(dec.decode(c, { stream: true }));
    })(),
    (async () => {
      for await (const _ of child.stdout) { /* the listening line */ }
    })(),
  ]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const gov: Gov = {
    url: `http://127.0.0.1:${port}`,
    port,
    process: child,
    log: () => errChunks.join(""),
    async stop(signal: Deno.Signal = "SIGTERM") {
      if (!exited) {
        try {
          child.kill(signal);
        } catch { /* gone */ }
      }
      const s = await status;
      await pumps;
      return s.code;
    },
    async kill() {
      await gov.stop("SIGKILL");
    },
  };
  lab.servers.push(gov);
  const up = await waitFor(
    async () => {
      if (exited) return true;
      try {
        const r = await fetch(`${gov.url}/healthz`);
        await r.body?.cancel();
        return r.ok;
      } catch {
        return false;
      }
    },
    60_000,
    100,
  );
  if (!up || exited) {
    await gov.kill();
    throw new Error(`gov serve did not come up:\n${gov.log()}`);
  }
  return gov;
}

/**
 * A JSON API call; returns status and parsed body.
 *
 * @example
 * ```ts
 * const { status, body } = await api(gov, "POST", "/v1/jobs", { workflow: txt2img() });
 * ```
 */
export async function api(
  gov: { url: string },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; body: any }> {
  const r = await fetch(`${gov.url}${path}`, {
    method,
    headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: r.status, body: parsed };
}

/**
 * Waits until a job is in one of `states`; returns it. Throws with the job and the log when
 * it does not get there.
 *
 * @example
 * ```ts
 * const job = await waitJob(gov, id, ["completed"]);
 * ```
 */
export async function waitJob(
  gov: Gov,
  id: string,
  states: string[],
  timeoutMs = 45_000,
  headers: Record<string, string> = {},
  // deno-lint-ignore no-explicit-any
): Promise<any> {
  // deno-lint-ignore no-explicit-any
  let last: any;
  const ok = await waitFor(
    async () => {
      last = (await api(gov, "GET", `/v1/jobs/${id}`, undefined, headers)).body;
      return states.includes(last?.state);
    },
    timeoutMs,
    100,
  );
  if (!ok) {
    throw new Error(
      `job ${id} never reached ${states.join("|")}: ${JSON.stringify(last)}\n${gov.log()}`,
    );
  }
  return last;
}

/** History of a backend: its prompt ids. */
export async function backendHistory(comfy: FakeComfyUI): Promise<string[]> {
  const r = await fetch(`${comfy.url}/history`);
  return Object.keys(await r.json());
}
