/**
 * The errors a ComfyUI backend client raises, named for what the gateway does about them:
 * fail over ({@linkcode BackendUnreachableError}, {@linkcode PromptLostError}), fail the job
 * ({@linkcode PromptRejectedError}), or leave the prompt where it is
 * ({@linkcode PromptDetachedError}).
 *
 * @module
 */
import { GovError } from "../../errors.ts";
import type { NodeErrors, PromptErrorInfo } from "../../comfyui/api.ts";

/**
 * The backend could not be reached or did not answer in time (refused, reset, DNS, timeout,
 * or a proxy in front of it answering 502/503/504). The gateway fails over on this error.
 *
 * @example
 * ```ts
 * import { ComfyUIClient } from "./client.ts";
 * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
 * declare function failover(): void;
 * try {
 *   await client.probe();
 * } catch (e) {
 *   if (e instanceof BackendUnreachableError) failover();
 * }
 * ```
 */
export class BackendUnreachableError extends GovError {
  /** The backend's base URL. */
  url: string;
  /** Short reason: "connection refused", "no answer within 5000 ms", ... */
  reason: string;
  constructor(label: string, url: string, reason: string, options?: { cause?: unknown }) {
    super(`${label} is unreachable: ${reason}`, {
      hint: "check that ComfyUI runs there and the host/port in backends.toml are right",
      cause: options?.cause,
    });
    this.name = "BackendUnreachableError";
    this.url = url;
    this.reason = reason;
  }
}

/**
 * A prompt gov queued is neither in the backend's queue nor in its history any more: the
 * backend restarted (ComfyUI's queue is in memory) or someone deleted it there. A subclass
 * of {@linkcode BackendUnreachableError} so the gateway re-dispatches it.
 *
 * @example
 * ```ts
 * declare const err: unknown;
 * if (err instanceof PromptLostError) console.log(`${err.promptId} vanished`);
 * ```
 */
export class PromptLostError extends BackendUnreachableError {
  /** The prompt that vanished. */
  promptId: string;
  constructor(label: string, url: string, promptId: string) {
    super(
      label,
      url,
      `prompt ${promptId} vanished from its queue and history (restarted, or deleted there)`,
    );
    this.name = "PromptLostError";
    this.promptId = promptId;
  }
}

/**
 * gov sent `POST /prompt` and cannot tell whether the backend queued it: the answer was lost
 * (timeout, reset, a proxy's 502/504) or the follow-up look in `/queue` and `/history` could
 * not be made. ComfyUI runs a repeated `prompt_id` again, so the prompt must not be queued
 * anywhere until this backend answers that look. A subclass of
 * {@linkcode BackendUnreachableError}, so callers that do not know it still see the backend
 * as unreachable.
 *
 * @example
 * ```ts
 * declare const err: unknown;
 * if (err instanceof PromptOutcomeUnknownError) console.log(`ask again for ${err.promptId}`);
 * ```
 */
export class PromptOutcomeUnknownError extends BackendUnreachableError {
  /** The prompt that may or may not be on the backend. */
  promptId: string;
  constructor(label: string, url: string, promptId: string, reason: string) {
    super(label, url, `${reason}; whether it queued prompt ${promptId} is unknown`);
    this.name = "PromptOutcomeUnknownError";
    this.promptId = promptId;
  }
}

/**
 * Whether a request that failed with `err` certainly never reached ComfyUI: nothing listened
 * (refused), the name did not resolve, TLS failed, or the client was closed before sending.
 * A timeout, a reset or a proxy's gateway error may come after the server acted on it.
 *
 * @example
 * ```ts
 * import { ComfyUIClient } from "./client.ts";
 * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
 * declare const err: unknown;
 * const id = "p1";
 * if (err instanceof BackendUnreachableError && !neverDelivered(err)) await client.locate(id);
 * ```
 */
export function neverDelivered(err: BackendUnreachableError): boolean {
  return /^(connection refused|host name does not resolve|TLS failure|client closed)/.test(
    err.reason,
  );
}

/**
 * The backend answered with an HTTP error gov has no better name for (401, 404, 500, ...).
 *
 * @example
 * ```ts
 * declare const err: unknown;
 * if (err instanceof BackendHttpError && err.status === 401) console.log("bad token");
 * ```
 */
export class BackendHttpError extends GovError {
  /** HTTP status. */
  status: number;
  /** The start of the answer's body. */
  body: string;
  constructor(label: string, what: string, status: number, body: string, hint?: string) {
    const snippet = body.trim().replace(/\s+/g, " ").slice(0, 200);
    super(`${label} answered ${status} to ${what}${snippet ? `: ${snippet}` : ""}`, {
      hint: hint ??
        (status === 401 || status === 403
          ? "check the backend's token in backends.toml"
          : undefined),
    });
    this.name = "BackendHttpError";
    this.status = status;
    this.body = body;
  }
}

/**
 * Summarises ComfyUI's `node_errors` in one line, e.g.
 * `node 3 (KSampler): Value bigger than max: steps, 200 > 150`.
 *
 * @example
 * ```ts
 * summariseNodeErrors({ "3": { class_type: "KSampler", errors: [{ message: "Value bigger than max", details: "steps" }] } });
 * ```
 */
export function summariseNodeErrors(nodeErrors: NodeErrors): string {
  const parts: string[] = [];
  for (const [id, ne] of Object.entries(nodeErrors)) {
    const errs = (ne?.errors ?? []).map((e) =>
      [e.message, e.details].filter((x) => typeof x === "string" && x !== "").join(": ")
    ).filter(Boolean);
    parts.push(`node ${id}${ne?.class_type ? ` (${ne.class_type})` : ""}: ${errs.join("; ")}`);
  }
  return parts.join("; ");
}

/**
 * ComfyUI refused the prompt (HTTP 400): validation failed, an unknown node class, a missing
 * model in a COMBO. Retrying elsewhere with the same prompt will not help, so the gateway
 * fails such a job at once.
 *
 * @example
 * ```ts
 * import { ComfyUIClient } from "./client.ts";
 * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
 * const promptId = crypto.randomUUID();
 * const clientId = crypto.randomUUID();
 * const prompt = {};
 * try {
 *   await client.queuePrompt(prompt, { promptId, clientId });
 * } catch (e) {
 *   if (e instanceof PromptRejectedError) console.log(e.nodeErrors);
 * }
 * ```
 */
export class PromptRejectedError extends GovError {
  /** ComfyUI's error object. */
  error: PromptErrorInfo;
  /** ComfyUI's per-node errors (empty when the error is not about one node). */
  nodeErrors: NodeErrors;
  constructor(label: string, error: PromptErrorInfo, nodeErrors: NodeErrors) {
    const head = [error.message, error.details].filter(Boolean).join(": ");
    const nodes = summariseNodeErrors(nodeErrors);
    super(`${label} rejected the prompt: ${[head, nodes].filter(Boolean).join("; ")}`, {
      hint: "fix the workflow (inputs, models, node classes) and submit it again",
    });
    this.name = "PromptRejectedError";
    this.error = error;
    this.nodeErrors = nodeErrors;
  }
}

/**
 * {@linkcode ComfyUIClient.runPrompt} stopped following a prompt because its `detachSignal`
 * fired; the prompt was left running on the backend.
 *
 * @example
 * ```ts
 * import { ComfyUIClient } from "./client.ts";
 * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
 * const promptId = crypto.randomUUID();
 * const clientId = crypto.randomUUID();
 * const prompt = {};
 * declare function persistForLater(promptId: string): void;
 * try {
 *   await client.runPrompt(prompt, { promptId, clientId, detachSignal: AbortSignal.timeout(1) });
 * } catch (e) {
 *   if (e instanceof PromptDetachedError) persistForLater(e.promptId);
 * }
 * ```
 */
export class PromptDetachedError extends GovError {
  /** The prompt left on the backend. */
  promptId: string;
  /**
   * The detach cut `POST /prompt` short: the backend may or may not hold the prompt, so it
   * must be looked for there before it is queued again anywhere.
   */
  outcomeUnknown: boolean;
  constructor(promptId: string, outcomeUnknown = false) {
    super(
      outcomeUnknown
        ? `stopped queueing prompt ${promptId}; whether the backend got it is unknown`
        : `stopped following prompt ${promptId}; it was left on the backend`,
    );
    this.name = "PromptDetachedError";
    this.promptId = promptId;
    this.outcomeUnknown = outcomeUnknown;
  }
}

/** Turns a fetch/WebSocket failure into a short human reason. */
export function networkReason(err: unknown, timeoutMs: number, timedOut: boolean): string {
  if (timedOut) return `no answer within ${timeoutMs} ms`;
  // Deno's fetch says "fetch failed" and keeps the real failure in `cause`.
  const parts: string[] = [];
  for (let e = err, depth = 0; e && depth < 5; e = (e as Error).cause, depth++) {
    parts.push(String((e as Error)?.message ?? e));
  }
  const msg = parts.join(": ");
  if (/connection refused/i.test(msg)) return "connection refused";
  if (/connection reset/i.test(msg)) return "connection reset";
  if (/dns error|failed to lookup|name or service not known/i.test(msg)) {
    return "host name does not resolve";
  }
  if (/certificate|tls|ssl/i.test(msg)) return `TLS failure (${msg.split(": ").pop()})`;
  if (/unexpected eof|connection closed|incomplete message|broken pipe/i.test(msg)) {
    return "connection closed before the answer was complete";
  }
  return parts[parts.length - 1].split(": ").slice(-1)[0] || "network error";
}
