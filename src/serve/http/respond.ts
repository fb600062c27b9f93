/**
 * The gateway's HTTP error and JSON answers: one place that maps an error to a status, so
 * every route answers the same way.
 *
 * @module
 */
import { GovError, NotFoundError } from "../../errors.ts";
import { JobInputError, JobStateError } from "../dispatcher.ts";

/**
 * A failure of the request itself, with the HTTP status to answer.
 *
 * @example
 * ```ts
 * const err = new HttpError(413, "request body over 33554432 bytes");
 * ```
 */
export class HttpError extends Error {
  /** HTTP status. */
  status: number;
  /** Response headers to add (`allow` of a 405). */
  headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.headers = headers;
  }
}

/**
 * A JSON response (pretty, newline-terminated: people read it with curl).
 *
 * @example
 * ```ts
 * const res = json({ jobs: [] });
 * ```
 */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/**
 * An ISO 8601 time, or null.
 *
 * @example
 * ```ts
 * iso(0); // "1970-01-01T00:00:00.000Z"
 * ```
 */
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * The answer to an error thrown by a route: 4xx for what the caller must fix, 503 for a
 * condition of the gateway, 500 only for a bug.
 *
 * @example
 * ```ts
 * const res = errorResponse(new Error("boom")); // 500
 * ```
 */
export function errorResponse(err: unknown): Response {
  if (err instanceof HttpError) {
    // After a body that was too big or too slow, the rest of it is not worth reading:
    // close the connection instead of draining it.
    const close: Record<string, string> = err.status === 408 || err.status === 413
      ? { connection: "close" }
      : {};
    return json({ error: err.message }, err.status, { ...err.headers, ...close });
  }
  if (err instanceof JobInputError) {
    return json({
      error: err.message,
      ...(err.hint ? { hint: err.hint } : {}),
      ...(err.refusals ? { refusals: err.refusals } : {}),
    }, 400);
  }
  if (err instanceof NotFoundError) return json({ error: err.message }, 404);
  if (err instanceof JobStateError) return json({ error: err.message }, 409);
  if (err instanceof GovError) {
    return json({ error: err.message, ...(err.hint ? { hint: err.hint } : {}) }, 503);
  }
  return json({ error: `internal error: ${(err as Error)?.message ?? err}` }, 500);
}
