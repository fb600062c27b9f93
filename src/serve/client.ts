/**
 * A client of the `gov serve` HTTP API (what `gov submit` uses when a gateway is running):
 * submit, look up, cancel, and follow a job's server-sent events, resuming after a dropped
 * connection with `Last-Event-ID`.
 *
 * @module
 */
import { GovError, UsageError } from "../errors.ts";
import type { Refusal } from "../backends/types.ts";
import { JobInputError } from "./dispatcher.ts";
import type { JobState } from "./types.ts";

/** A job as the API returns it (see `jobView`). */
export interface JobView {
  id: string;
  state: JobState;
  backend: string | null;
  prompt_id: string;
  attempts: number;
  max_attempts: number;
  error: string | null;
  refusals: Refusal[] | null;
  progress: { value: number; max: number; node?: string } | null;
  outputs: { node_id: string; filename: string; subfolder: string; type: string; url: string }[];
  created_at: string;
  finished_at: string | null;
  [key: string]: unknown;
}

/** One server-sent event of a job. */
export interface JobStreamEvent {
  /** Event type: queued, dispatched, accepted, running, progress, executed, retry, ... */
  type: string;
  /** Its data (job id, state, backend, value/max, error...). */
  data: Record<string, unknown>;
}

/** What `/healthz` says. */
export interface GatewayHealth {
  status: string;
  version: string;
  workspace: string;
}

/**
 * Talks to one gateway.
 *
 * @example
 * ```ts
 * declare const workflow: unknown;
 * const gw = new GatewayClient("http://127.0.0.1:8190");
 * const job = await gw.submit({ workflow, set: [["seed", "1"]] });
 * ```
 */
export class GatewayClient {
  /** Base URL without a trailing slash. */
  readonly url: string;
  #token?: string;

  constructor(url: string, token?: string) {
    this.url = url.replace(/\/+$/, "");
    this.#token = token;
  }

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.#token ? { Authorization: `Bearer ${this.#token}` } : {}), ...extra };
  }

  async #request(
    method: string,
    path: string,
    body?: unknown,
    opts: { headers?: Record<string, string>; retries?: number } = {},
  ): Promise<unknown> {
    let res: Response;
    for (let attempt = 0;; attempt++) {
      try {
        res = await fetch(`${this.url}${path}`, {
          method,
          headers: this.#headers({
            ...(body !== undefined ? { "content-type": "application/json" } : {}),
            ...opts.headers,
          }),
          body: body !== undefined ? JSON.stringify(body) : undefined,
          signal: AbortSignal.timeout(60_000),
        });
        break;
      } catch (err) {
        // Only a request the gateway can recognise when repeated (Idempotency-Key) is
        // retried: its first try may have been committed before the answer was lost.
        if (attempt < (opts.retries ?? 0)) {
          await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
          continue;
        }
        throw new GovError(`gov serve at ${this.url} did not answer: ${(err as Error).message}`, {
          hint: "is `gov serve` running? (or leave out --server to run the job in-process)",
        });
      }
    }
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      json = { error: text.slice(0, 200) };
    }
    if (res.ok) return json;
    const msg = typeof json.error === "string" ? json.error : `HTTP ${res.status}`;
    const hint = typeof json.hint === "string" ? json.hint : undefined;
    if (res.status === 400) {
      throw new JobInputError(msg, {
        hint,
        refusals: Array.isArray(json.refusals) ? json.refusals as Refusal[] : undefined,
      });
    }
    if (res.status === 401) {
      throw new GovError(`gov serve at ${this.url} refused: ${msg}`, {
        hint: "pass --token-file FILE or set GOV_SERVE_TOKEN",
      });
    }
    // A 404 is an id the user gave that the gateway does not know: bad input, exit 2.
    const err = res.status === 404
      ? new UsageError(`gov serve at ${this.url}: ${msg}`, { hint })
      : new GovError(`gov serve at ${this.url}: ${msg}`, { hint });
    throw err;
  }

  /**
   * `/healthz`, or undefined when nothing answers (quickly: this decides whether to run
   * in-process).
   *
   * @example
   * ```ts
   * declare const gw: GatewayClient;
   * if (await gw.health()) console.log("up");
   * ```
   */
  async health(timeoutMs = 2000): Promise<GatewayHealth | undefined> {
    try {
      const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) {
        await res.body?.cancel();
        return undefined;
      }
      const j = await res.json();
      return j && typeof j === "object" && j.status === "ok" ? j as GatewayHealth : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * `POST /v1/jobs` with an `Idempotency-Key` (a new one unless given), retried a few
   * times when the connection fails: a gateway killed after committing the job answers the
   * retry with that job, so it never runs twice. Throws {@linkcode JobInputError} on 400.
   *
   * @example
   * ```ts
   * const gw = new GatewayClient("http://127.0.0.1:8190");
   * const job = await gw.submit({ workflow: {}, set: [["steps", "20"]] });
   * ```
   */
  async submit(
    req: { workflow: unknown; set?: [string, string][]; backend?: string; queue_timeout?: number },
    idempotencyKey: string = crypto.randomUUID(),
  ): Promise<JobView> {
    return await this.#request("POST", "/v1/jobs", req, {
      headers: { "idempotency-key": idempotencyKey },
      retries: 4,
    }) as JobView;
  }

  /**
   * `GET /v1/jobs/{id}`.
   *
   * @example
   * ```ts
   * declare const gw: GatewayClient, id: string;
   * const job = await gw.job(id);
   * ```
   */
  async job(id: string): Promise<JobView> {
    return await this.#request("GET", `/v1/jobs/${encodeURIComponent(id)}`) as JobView;
  }

  /**
   * `DELETE /v1/jobs/{id}`.
   *
   * @example
   * ```ts
   * declare const gw: GatewayClient, id: string;
   * await gw.cancel(id);
   * ```
   */
  async cancel(id: string): Promise<JobView> {
    return await this.#request("DELETE", `/v1/jobs/${encodeURIComponent(id)}`) as JobView;
  }

  /**
   * Follows `GET /v1/jobs/{id}/events` until a terminal event, reconnecting (with
   * `Last-Event-ID`) when the stream drops; returns the final job. A drop is reported once
   * to `onEvent` as a `disconnected` event (not one the gateway sends), so a person
   * watching knows why it went quiet.
   *
   * @example
   * ```ts
   * declare const gw: GatewayClient, id: string;
   * const done = await gw.follow(id, (e) => console.error(e.type));
   * ```
   */
  async follow(
    id: string,
    onEvent: (e: JobStreamEvent) => void,
    signal?: AbortSignal,
  ): Promise<JobView> {
    let lastId = "";
    let failures = 0;
    let connected = true;
    const dropped = (why: string) => {
      if (!connected) return;
      connected = false;
      onEvent({ type: "disconnected", data: { job: id, error: why } });
    };
    while (true) {
      signal?.throwIfAborted();
      let terminal = false;
      try {
        const res = await fetch(`${this.url}/v1/jobs/${encodeURIComponent(id)}/events`, {
          headers: this.#headers({
            accept: "text/event-stream",
            ...(lastId ? { "last-event-id": lastId } : {}),
          }),
          signal,
        });
        if (!res.ok || !res.body) {
          await res.body?.cancel();
          if (res.status === 404 || res.status === 401) return await this.job(id);
          throw new Error(`HTTP ${res.status}`);
        }
        failures = 0;
        connected = true;
        for await (const ev of parseSse(res.body)) {
          if (ev.id) lastId = ev.id;
          let data: Record<string, unknown> = {};
          try {
            data = JSON.parse(ev.data);
          } catch {
            data = { raw: ev.data };
          }
          onEvent({ type: ev.event, data });
          if (["completed", "failed", "cancelled"].includes(ev.event)) terminal = true;
        }
      } catch (err) {
        if (signal?.aborted) throw err;
        dropped((err as Error).message);
        if (++failures > 30) {
          throw new GovError(`lost the event stream of job ${id}: ${(err as Error).message}`);
        }
      }
      if (terminal) return await this.job(id);
      dropped("the event stream ended");
      // The stream ended without a terminal event (gateway restarting): look, then resume.
      const now = await this.job(id).catch(() => undefined);
      if (now && ["completed", "failed", "cancelled"].includes(now.state)) return now;
      await new Promise((r) => setTimeout(r, Math.min(500 * (failures + 1), 3000)));
    }
  }
}

/**
 * Parses a server-sent event stream into `{id, event, data}` records.
 *
 * @example
 * ```ts
 * declare const res: Response;
 * for await (const e of parseSse(res.body!)) console.log(e.event, e.data);
 * ```
 */
export async function* parseSse(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<{ id: string; event: string; data: string }> {
  const dec = new TextDecoder();
  let buf = "";
  let id = "";
  let event = "";
  let data: string[] = [];
  for await (const chunk of body) {
    buf += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
      if (line === "") {
        if (data.length) yield { id, event: event || "message", data: data.join("\n") };
        event = "";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (field === "data") data.push(value);
      else if (field === "event") event = value;
      else if (field === "id") id = value;
    }
  }
}
