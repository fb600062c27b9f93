/**
 * The job routes: `POST /v1/jobs` (the one place that reads and validates a job request
 * off the wire), listing, looking up and cancelling jobs.
 *
 * @module
 */
import { NotFoundError } from "../../errors.ts";
import type { Dispatcher, JobRequest } from "../dispatcher.ts";
import type { JobStore } from "../store.ts";
import { type Job, JOB_STATES, type JobState } from "../types.ts";
import { HttpError, json } from "./respond.ts";
import { jobSummaryView, jobView } from "./views.ts";

/**
 * What one request may cost. Each limit is named in the error that enforces it, so a
 * client knows which one it hit.
 */
export interface RequestLimits {
  /** Largest request body in bytes, counted as it streams in (chunked bodies too): 413. */
  maxBodyBytes: number;
  /** Most `set` pairs of one job: 400. */
  maxSets: number;
  /** Most nodes of one workflow (subgraph nodes included): 400. */
  maxNodes: number;
  /** Deepest nesting of objects and arrays in a body: 400. */
  maxDepth: number;
  /** Most milliseconds to receive a whole body once its headers are in: 408. */
  bodyTimeoutMs: number;
}

/** Default {@linkcode RequestLimits}. */
export const DEFAULT_LIMITS: RequestLimits = {
  maxBodyBytes: 32 * 1024 * 1024,
  maxSets: 256,
  maxNodes: 10_000,
  maxDepth: 128,
  bodyTimeoutMs: 60_000,
};

/** Longest `set` key (`<node id or title>.<input>`). */
const MAX_SET_KEY = 256;

/** Fields a job request may have. */
const FIELDS = ["workflow", "set", "backend", "queue_timeout"];

/** Parses `set` of a job request: `{KEY: VALUE}` or `[[KEY, VALUE], ...]`. */
function parseSets(raw: unknown, limits: RequestLimits): [string, string][] {
  if (raw === undefined || raw === null) return [];
  const str = (v: unknown, where: string): string => {
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    throw new HttpError(400, `set: ${where} must be a string, number or boolean`);
  };
  if (typeof raw !== "object") {
    throw new HttpError(400, "set must be an object {KEY: VALUE} or a list of [KEY, VALUE] pairs");
  }
  const n = Array.isArray(raw) ? raw.length : Object.keys(raw).length;
  if (n > limits.maxSets) {
    throw new HttpError(400, `set has ${n} pairs; the limit is ${limits.maxSets} per job`);
  }
  const key = (k: string): string => {
    // A key names a node and an input; a megabyte of it only costs every lookup.
    if (k.length > MAX_SET_KEY) {
      throw new HttpError(400, `set: a key is ${k.length} characters; the limit is ${MAX_SET_KEY}`);
    }
    return k;
  };
  if (Array.isArray(raw)) {
    return raw.map((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string") {
        throw new HttpError(400, `set[${i}] must be a [KEY, VALUE] pair`);
      }
      return [key(pair[0]), str(pair[1], `value of ${pair[0]}`)];
    });
  }
  return Object.entries(raw as Record<string, unknown>).map(([k, v]) => [
    key(k),
    str(v, `value of ${k}`),
  ]);
}

/** Nodes of a workflow: an API prompt's entries, or a UI workflow's nodes and subgraphs'. */
function nodeCount(workflow: Record<string, unknown>): number {
  if (!Array.isArray(workflow.nodes)) return Object.keys(workflow).length;
  let n = workflow.nodes.length;
  const defs = workflow.definitions as { subgraphs?: unknown } | undefined;
  if (defs && Array.isArray(defs.subgraphs)) {
    for (const g of defs.subgraphs) {
      const nodes = (g as { nodes?: unknown } | null)?.nodes;
      if (Array.isArray(nodes)) n += nodes.length;
    }
  }
  return n;
}

/**
 * How deeply JSON text nests, scanned without recursion: a body nested 100,000 deep
 * parses, but every recursive walk after that (copy, stringify, convert) overflows the
 * stack.
 */
function nestingDepth(text: string, stopAt: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max && (max = depth) > stopAt) return max;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

/**
 * Reads a request body as JSON, counting bytes as they stream in: a chunked body has no
 * Content-Length to refuse up front, so the count is what stops it (413). A body that
 * does not arrive within the body timeout is 408.
 *
 * @example
 * ```ts
 * const req = new Request("http://x/", { method: "POST", body: "{}" });
 * const body = await readJsonBody(req, DEFAULT_LIMITS);
 * ```
 */
export async function readJsonBody(req: Request, limits: RequestLimits): Promise<unknown> {
  const max = limits.maxBodyBytes;
  const tooBig = () => new HttpError(413, `request body over the limit of ${max} bytes`);
  const len = Number(req.headers.get("content-length") ?? "0");
  if (len > max) throw tooBig();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    const reader = req.body.getReader();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reader.cancel().catch(() => {});
    }, limits.bodyTimeoutMs);
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > max) {
          await reader.cancel().catch(() => {});
          throw tooBig();
        }
        chunks.push(value);
      }
    } catch (err) {
      if (err instanceof HttpError) throw err;
      if (timedOut) {
        throw new HttpError(408, `request body not received within ${limits.bodyTimeoutMs} ms`);
      }
      throw new HttpError(400, `request body could not be read: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    if (timedOut) {
      throw new HttpError(408, `request body not received within ${limits.bodyTimeoutMs} ms`);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  const text = new TextDecoder().decode(bytes);
  if (text.trim() === "") throw new HttpError(400, "empty request body: expected JSON");
  if (nestingDepth(text, limits.maxDepth) > limits.maxDepth) {
    throw new HttpError(
      400,
      `request body nests deeper than the limit of ${limits.maxDepth} levels`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Turns the JSON body of `POST /v1/jobs` into a {@linkcode JobRequest}, or throws a 400
 * naming what is wrong or which limit it passes. This is the one place a job request is
 * read off the wire; what it means (does the workflow convert, do the `set` names exist,
 * is the backend configured) is the dispatcher's to judge.
 *
 * @example
 * ```ts
 * const req = parseJobRequest({ workflow: {}, set: { seed: 1 } }, DEFAULT_LIMITS);
 * req.sets; // [["seed", "1"]]
 * ```
 */
export function parseJobRequest(body: unknown, limits: RequestLimits): JobRequest {
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(
      400,
      "request body must be a JSON object {workflow, set?, backend?, queue_timeout?}",
    );
  }
  const b = body as Record<string, unknown>;
  if (!Object.hasOwn(b, "workflow")) {
    throw new HttpError(400, "request body has no 'workflow' (UI workflow or API prompt)");
  }
  const unknown = Object.keys(b).filter((k) => !FIELDS.includes(k));
  if (unknown.length) {
    const named = unknown.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 40))).join(", ");
    throw new HttpError(
      400,
      `unknown field(s) ${named}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ""} ` +
        `in request body (known: ${FIELDS.join(", ")})`,
    );
  }
  if (b.workflow && typeof b.workflow === "object" && !Array.isArray(b.workflow)) {
    const nodes = nodeCount(b.workflow as Record<string, unknown>);
    if (nodes > limits.maxNodes) {
      throw new HttpError(
        400,
        `workflow has ${nodes} nodes; the limit is ${limits.maxNodes} per job`,
      );
    }
  }
  if (b.backend !== undefined && typeof b.backend !== "string") {
    throw new HttpError(400, "backend must be a backend id (string)");
  }
  const qt = b.queue_timeout;
  if (
    qt !== undefined && qt !== null &&
    (typeof qt !== "number" || !Number.isFinite(qt) || qt < 0)
  ) {
    throw new HttpError(
      400,
      `queue_timeout must be seconds >= 0 (0 = wait as long as it takes), got ${
        JSON.stringify(qt)
      }`,
    );
  }
  return {
    workflow: b.workflow,
    sets: parseSets(b.set, limits),
    backend: b.backend as string | undefined,
    queueTimeoutMs: typeof qt === "number" ? qt * 1000 : undefined,
  };
}

/** What the job routes work on. */
export interface JobRoutesContext {
  /** Places, runs and cancels jobs. */
  dispatcher: Dispatcher;
  /** The job store. */
  store: JobStore;
  /** What one request may cost. */
  limits: RequestLimits;
}

function jobOr404(store: JobStore, id: string): Job {
  const job = store.get(id);
  if (!job) throw new NotFoundError("job", id);
  return job;
}

/** The `Idempotency-Key` of a request: 1 to 200 visible ASCII characters, or none. */
function idempotencyKey(req: Request): string | undefined {
  const key = req.headers.get("idempotency-key");
  if (key === null) return undefined;
  if (!/^[\x21-\x7e]{1,200}$/.test(key)) {
    throw new HttpError(400, "Idempotency-Key must be 1 to 200 visible ASCII characters");
  }
  return key;
}

/** Whether a stored job was made by the same request (a retry, not a reused key). */
function sameRequest(job: Job, r: JobRequest): boolean {
  return JSON.stringify(job.workflow) === JSON.stringify(r.workflow) &&
    JSON.stringify(job.sets) === JSON.stringify(r.sets ?? []) &&
    job.pinnedBackend === (r.backend ?? null) &&
    job.queueTimeoutMs === (r.queueTimeoutMs === undefined ? null : Math.round(r.queueTimeoutMs));
}

/**
 * `POST /v1/jobs`: validates and records a job; 201 with the job. With an
 * `Idempotency-Key` header, a repeat of the request (a client retrying after a lost
 * answer) gets 200 with the job the first one created, never a second job; the key is
 * stored with the job, so this holds across restarts.
 *
 * @example
 * ```ts
 * declare const ctx: JobRoutesContext;
 * const res = await createJob(ctx, new Request("http://x/v1/jobs", { method: "POST", body: "{}" }));
 * ```
 */
export async function createJob(ctx: JobRoutesContext, req: Request): Promise<Response> {
  const key = idempotencyKey(req);
  const request = parseJobRequest(await readJsonBody(req, ctx.limits), ctx.limits);
  // Look-up and submit run in one tick (both synchronous): a concurrent repeat cannot
  // slip in between.
  if (key !== undefined) {
    const earlier = ctx.store.byIdempotencyKey(key);
    if (earlier) {
      if (!sameRequest(earlier, request)) {
        throw new HttpError(
          422,
          `Idempotency-Key '${key}' was used for another request (job ${earlier.id})`,
        );
      }
      return json(jobView(earlier), 200, {
        location: `/v1/jobs/${earlier.id}`,
        "idempotent-replayed": "true",
      });
    }
  }
  // A keyed job is committed in this same tick, so the look-up above and the unique key
  // cannot race; unkeyed jobs share a group commit with the others of this turn.
  const job = key !== undefined
    ? ctx.dispatcher.submit({ ...request, idempotencyKey: key })
    : await ctx.dispatcher.submitBatched(request);
  const now = ctx.store.get(job.id) ?? job;
  return json(jobView(now), 201, { location: `/v1/jobs/${job.id}` });
}

/**
 * `GET /v1/jobs[?state=&limit=&before=]`: recent jobs, newest first, with counts by state.
 *
 * @example
 * ```ts
 * declare const ctx: JobRoutesContext;
 * const res = listJobs(ctx, new URL("http://x/v1/jobs?state=queued"));
 * ```
 */
export function listJobs(ctx: JobRoutesContext, url: URL): Response {
  const states = (url.searchParams.get("state") ?? "").split(",").map((s) => s.trim())
    .filter(Boolean);
  for (const s of states) {
    if (!JOB_STATES.includes(s as JobState)) {
      throw new HttpError(400, `unknown state '${s}' (one of ${JOB_STATES.join(", ")})`);
    }
  }
  const limitRaw = url.searchParams.get("limit");
  const limit = limitRaw === null ? 100 : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new HttpError(400, `limit must be an integer from 1 to 10000, got '${limitRaw}'`);
  }
  const before = url.searchParams.get("before") ?? undefined;
  // An unknown id would page to an empty list, read as "no older jobs".
  if (before !== undefined && !ctx.store.get(before)) {
    throw new HttpError(
      400,
      `before: no job '${before.slice(0, 80)}' (page with a job id from the list)`,
    );
  }
  const jobs = ctx.store.list({ states: states as JobState[], limit, before });
  return json({ jobs: jobs.map(jobSummaryView), counts: ctx.store.countByState() });
}

/**
 * `GET /v1/jobs/{id}[?full=1]`: one job (with its workflow and prompt when `full`).
 *
 * @example
 * ```ts
 * declare const ctx: JobRoutesContext;
 * const res = getJob(ctx, "some-job-id", false);
 * ```
 */
export function getJob(ctx: JobRoutesContext, id: string, full: boolean): Response {
  return json(jobView(jobOr404(ctx.store, id), full));
}

/**
 * `GET /v1/jobs/{id}/outputs`: a job's output list.
 *
 * @example
 * ```ts
 * declare const ctx: JobRoutesContext;
 * const res = listOutputs(ctx, "some-job-id");
 * ```
 */
export function listOutputs(ctx: JobRoutesContext, id: string): Response {
  return json({ outputs: jobView(jobOr404(ctx.store, id)).outputs });
}

/**
 * `DELETE /v1/jobs/{id}`: cancels a job.
 *
 * @example
 * ```ts
 * declare const ctx: JobRoutesContext;
 * const res = await cancelJob(ctx, "some-job-id");
 * ```
 */
export async function cancelJob(ctx: JobRoutesContext, id: string): Promise<Response> {
  return json(jobView(await ctx.dispatcher.cancel(id)));
}
