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
import { jobView } from "./views.ts";

/** Largest request body accepted (a workflow with embedded data can be big). */
export const MAX_BODY = 32 * 1024 * 1024;

/** Fields a job request may have. */
const FIELDS = ["workflow", "set", "backend", "queue_timeout"];

/** Parses `set` of a job request: `{KEY: VALUE}` or `[[KEY, VALUE], ...]`. */
function parseSets(raw: unknown): [string, string][] {
  if (raw === undefined || raw === null) return [];
  const str = (v: unknown, where: string): string => {
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    throw new HttpError(400, `set: ${where} must be a string, number or boolean`);
  };
  if (Array.isArray(raw)) {
    return raw.map((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string") {
        throw new HttpError(400, `set[${i}] must be a [KEY, VALUE] pair`);
      }
      return [pair[0], str(pair[1], `value of ${pair[0]}`)];
    });
  }
  if (typeof raw === "object") {
    return Object.entries(raw as Record<string, unknown>).map(([k, v]) => [
      k,
      str(v, `value of ${k}`),
    ]);
  }
  throw new HttpError(400, "set must be an object {KEY: VALUE} or a list of [KEY, VALUE] pairs");
}

/**
 * Reads a request body as JSON, within {@linkcode MAX_BODY}.
 *
 * @example
 * ```ts
 * import { readJsonBody } from "./jobs.ts";
 * const body = await readJsonBody(new Request("http://x/", { method: "POST", body: "{}" }));
 * ```
 */
export async function readJsonBody(req: Request): Promise<unknown> {
  const len = Number(req.headers.get("content-length") ?? "0");
  if (len > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
  const text = await req.text();
  if (text.length > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
  if (text.trim() === "") throw new HttpError(400, "empty request body: expected JSON");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Turns the JSON body of `POST /v1/jobs` into a {@linkcode JobRequest}, or throws a 400
 * naming what is wrong. What the body means (does the workflow convert, do the `set`
 * names exist, is the backend configured) is the dispatcher's to judge.
 *
 * @example
 * ```ts
 * import { parseJobRequest } from "./jobs.ts";
 * const req = parseJobRequest({ workflow: {}, set: { seed: 1 } });
 * req.sets; // [["seed", "1"]]
 * ```
 */
export function parseJobRequest(body: unknown): JobRequest {
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(
      400,
      "request body must be a JSON object {workflow, set?, backend?, queue_timeout?}",
    );
  }
  const b = body as Record<string, unknown>;
  if (!("workflow" in b)) {
    throw new HttpError(400, "request body has no 'workflow' (UI workflow or API prompt)");
  }
  const unknown = Object.keys(b).filter((k) => !FIELDS.includes(k));
  if (unknown.length) {
    throw new HttpError(400, `unknown field(s) ${unknown.join(", ")} in request body`);
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
    sets: parseSets(b.set),
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
}

function jobOr404(store: JobStore, id: string): Job {
  const job = store.get(id);
  if (!job) throw new NotFoundError("job", id);
  return job;
}

/**
 * `POST /v1/jobs`: validates and records a job; 201 with the job.
 *
 * @example
 * ```ts
 * import { createJob, type JobRoutesContext } from "./jobs.ts";
 * declare const ctx: JobRoutesContext;
 * const res = await createJob(ctx, new Request("http://x/v1/jobs", { method: "POST", body: "{}" }));
 * ```
 */
export async function createJob(ctx: JobRoutesContext, req: Request): Promise<Response> {
  const job = ctx.dispatcher.submit(parseJobRequest(await readJsonBody(req)));
  const now = ctx.store.get(job.id) ?? job;
  return json(jobView(now), 201, { location: `/v1/jobs/${job.id}` });
}

/**
 * `GET /v1/jobs[?state=&limit=&before=]`: recent jobs, newest first, with counts by state.
 *
 * @example
 * ```ts
 * import { listJobs, type JobRoutesContext } from "./jobs.ts";
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
  const jobs = ctx.store.list({ states: states as JobState[], limit, before });
  return json({ jobs: jobs.map((j) => jobView(j)), counts: ctx.store.countByState() });
}

/**
 * `GET /v1/jobs/{id}[?full=1]`: one job (with its workflow and prompt when `full`).
 *
 * @example
 * ```ts
 * import { getJob, type JobRoutesContext } from "./jobs.ts";
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
 * import { listOutputs, type JobRoutesContext } from "./jobs.ts";
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
 * import { cancelJob, type JobRoutesContext } from "./jobs.ts";
 * declare const ctx: JobRoutesContext;
 * const res = await cancelJob(ctx, "some-job-id");
 * ```
 */
export async function cancelJob(ctx: JobRoutesContext, id: string): Promise<Response> {
  return json(jobView(await ctx.dispatcher.cancel(id)));
}
