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
      ...args,
    ],
    // The environment, not --token: a token on the command line shows in `ps`.
    { env: { ...opts.env, ...(opts.token ? { GOV_SERVE_TOKEN: opts.token } : {}) } },
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

/**
 * Checks a Prometheus text exposition (format 0.0.4) the way a scraper reads it: every line
 * a HELP, TYPE or sample line with valid names, escaped label values and a number; one TYPE
 * per family, before its samples, which are contiguous; histograms with ascending `le`
 * buckets, cumulative counts, a `+Inf` bucket equal to `_count`, and a `_sum`. Returns the
 * problems found (empty when valid).
 *
 * @example
 * ```ts
 * assertEquals(prometheusProblems(await (await fetch(url + "/metrics")).text()), []);
 * ```
 */
export function prometheusProblems(text: string): string[] {
  const problems: string[] = [];
  if (!text.endsWith("\n")) problems.push("does not end with a newline");
  const name = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const value = String.raw`(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?Inf|NaN)`;
  const label = String.raw`[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"`;
  const sample = new RegExp(
    `^(${name})(?:\\{(${label}(?:,${label})*)?,?\\})? (${value})(?: -?\\d+)?$`,
  );
  const types = new Map<string, string>();
  const seen = new Set<string>();
  let current = "";
  const hist = new Map<string, { le: number[]; counts: number[]; count?: number; sum?: boolean }>();
  const familyOf = (metric: string): string => {
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      const base = metric.slice(0, -suffix.length);
      if (metric.endsWith(suffix) && types.get(base) === "histogram") return base;
    }
    return metric;
  };
  text.split("\n").slice(0, -1).forEach((line, i) => {
    const where = `line ${i + 1} '${line}'`;
    if (line.startsWith("#")) {
      const m = new RegExp(`^# (HELP|TYPE) (${name}) ?(.*)$`).exec(line);
      if (!m) {
        if (!/^# /.test(line)) problems.push(`${where}: bad comment`);
        return;
      }
      if (m[1] === "TYPE") {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(m[3])) {
          problems.push(`${where}: unknown type`);
        }
        if (types.has(m[2])) problems.push(`${where}: second TYPE for ${m[2]}`);
        if (seen.has(m[2])) problems.push(`${where}: TYPE after samples of ${m[2]}`);
        types.set(m[2], m[3]);
      }
      return;
    }
    const m = sample.exec(line);
    if (!m) {
      problems.push(`${where}: not a sample line`);
      return;
    }
    const family = familyOf(m[1]);
    if (family !== current) {
      if (seen.has(family)) problems.push(`${where}: samples of ${family} are not contiguous`);
      seen.add(family);
      current = family;
    }
    if (types.get(family) === "counter" && !family.endsWith("_total")) {
      problems.push(`${where}: counter ${family} does not end in _total`);
    }
    if (types.get(family) === "histogram") {
      const h = hist.get(family) ?? { le: [], counts: [] };
      hist.set(family, h);
      const v = Number(m[3].replace("Inf", "Infinity"));
      if (m[1].endsWith("_bucket")) {
        const le = /le="([^"]+)"/.exec(m[2] ?? "")?.[1];
        if (le === undefined) problems.push(`${where}: bucket without le`);
        else h.le.push(Number(le.replace("+Inf", "Infinity")));
        h.counts.push(v);
      } else if (m[1].endsWith("_count")) h.count = v;
      else h.sum = true;
    }
  });
  for (const [family, h] of hist) {
    for (let k = 1; k < h.le.length; k++) {
      if (!(h.le[k] > h.le[k - 1])) problems.push(`${family}: le not ascending`);
      if (h.counts[k] < h.counts[k - 1]) problems.push(`${family}: buckets not cumulative`);
    }
    if (h.le[h.le.length - 1] !== Infinity) problems.push(`${family}: no +Inf bucket`);
    if (h.counts[h.counts.length - 1] !== h.count) {
      problems.push(`${family}: +Inf bucket differs from _count`);
    }
    if (!h.sum) problems.push(`${family}: no _sum`);
  }
  return problems;
}
