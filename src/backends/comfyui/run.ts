/**
 * The run-prompt state machine: queue a prompt under the caller's `prompt_id`, follow it over
 * `/ws` with `/history` as the authority (skipped only after a success the socket saw whole,
 * see `seenFromStart`), and end with its outcome. It falls back to polling
 * `/history` when the socket cannot open (404, proxy without WebSocket) or drops mid-job,
 * and polls `/history` slowly even while the socket is up: that catches missed messages and
 * a backend that stops answering while its socket stays open.
 *
 * It drives a {@linkcode PromptApi}, the few requests it needs, so the gateway's tests can
 * run it against an in-memory backend; {@linkcode ComfyUIClient} is the real one.
 *
 * @module
 */
import type { HistoryEntry, PromptLocation, WsMessage } from "../../comfyui/api.ts";
import type { ApiPrompt } from "../../comfyui/prompt.ts";
import {
  BackendUnreachableError,
  neverDelivered,
  PromptDetachedError,
  PromptLostError,
  PromptOutcomeUnknownError,
} from "./errors.ts";
import { outputsFromNode, resultFromHistory, type RunResult } from "./history.ts";

/**
 * Progress of a running prompt, as {@linkcode runPrompt} reports it. `running`
 * comes from `/queue` when there is no socket (a socket reports `executing` instead).
 */
export type RunEvent =
  | { type: "queued"; promptId: string; number: number; transport: "ws" | "poll" }
  | { type: "running"; promptId: string }
  | { type: "executing"; promptId: string; node: string }
  | { type: "progress"; promptId: string; node?: string; value: number; max: number }
  | { type: "executed"; promptId: string; node: string; output: Record<string, unknown> }
  | { type: "cached"; promptId: string; nodes: string[] };

/** Options of {@linkcode runPrompt}. */
export interface RunOptions {
  /** The prompt id to queue under (reuse it on retries). */
  promptId: string;
  /** The client id the `/ws` socket registers as; ComfyUI sends execution events only there. */
  clientId: string;
  /** Receives progress. Exceptions it throws are ignored. */
  onEvent?: (e: RunEvent) => void;
  /** Aborting cancels the prompt on the backend and resolves with status "interrupted". */
  signal?: AbortSignal;
  /**
   * Aborting stops following the prompt without cancelling it (it keeps running on the
   * backend); runPrompt then rejects with {@linkcode PromptDetachedError}.
   */
  detachSignal?: AbortSignal;
  /** `/history` poll interval without a socket (500 ms). */
  pollIntervalMs?: number;
  /** `/history` check interval while the socket is up (2 000 ms). */
  watchdogIntervalMs?: number;
  /** Consecutive failed polls before the backend counts as unreachable (3). */
  maxPollFailures?: number;
  /** How long to wait for `/ws` to open before falling back to polling (5 000 ms). */
  wsOpenTimeoutMs?: number;
  /** Passed to ComfyUI as `extra_data`. */
  extraData?: Record<string, unknown>;
  /**
   * The prompt may already be on this backend (a gateway restarted, a retry): look in
   * `/queue` and `/history` first and follow it there instead of queueing it again.
   */
  attach?: boolean;
  /** Never use `/ws` (tests, proxies known to break WebSockets). */
  noWebSocket?: boolean;
}

/** An open `/ws` socket as {@linkcode runPrompt} uses it. */
export interface PromptSocket {
  /** Whether it is still open. */
  readonly isOpen: boolean;
  /** Closes it and waits until it is closed. */
  close(): Promise<void>;
}

/**
 * The requests {@linkcode runPrompt} makes of one backend. `ComfyUIClient` implements it over
 * HTTP; tests implement it in memory. Network failures must reject with
 * {@linkcode BackendUnreachableError}.
 */
export interface PromptApi {
  /** How the backend is named in errors. */
  readonly label: string;
  /** The backend's base URL, for errors. */
  readonly baseUrl: string;
  /** `POST /prompt` under the caller's prompt and client ids. */
  queuePrompt(
    prompt: ApiPrompt,
    opts: { promptId: string; clientId: string; extraData?: Record<string, unknown> },
  ): Promise<{ prompt_id: string; number: number }>;
  /** `GET /history/{id}`: the entry once finished, else undefined. */
  history(promptId: string): Promise<HistoryEntry | undefined>;
  /** Where the prompt is: `/queue` first, then `/history`. */
  locate(promptId: string): Promise<PromptLocation | undefined>;
  /** Deletes the prompt from the queue, or interrupts it when it runs. */
  cancel(promptId: string): Promise<{ deleted: boolean; interrupted: boolean }>;
  /**
   * Opens `/ws?clientId=...`; rejects with BackendUnreachableError when it cannot.
   * `handlers.promptId` names the prompt followed, so a shared socket can route to it.
   */
  connect(
    clientId: string,
    handlers: { onMessage?: (m: WsMessage) => void; onClose?: () => void; promptId?: string },
    timeoutMs?: number,
  ): Promise<PromptSocket>;
  /** The same backend with `signal` also ending every request at once. */
  withSignal(signal: AbortSignal): PromptApi;
}

/** A set of waiters that a message, a closed socket or an abort can wake early. */
class Waker {
  #waiting = new Set<() => void>();
  wake(): void {
    for (const w of [...this.#waiting]) w();
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiting.add(done);
    });
  }
}

/**
 * Queues a prompt and follows it to its end. Progress goes to `onEvent`. Resolves with the
 * outcome (success, error with ComfyUI's exception, interrupted); rejects with
 * `PromptRejectedError` when ComfyUI refuses it, and with {@linkcode BackendUnreachableError}
 * when the backend goes away (the prompt may be re-dispatched elsewhere with the same id).
 *
 * @example
 * ```ts
 * import { ComfyUIClient } from "./client.ts";
 * const client = new ComfyUIClient({ host: "127.0.0.1", port: 8188 });
 * const r = await runPrompt(client, {}, { promptId: "p1", clientId: "c1" });
 * if (r.status === "error") console.log(r.error?.message);
 * ```
 */
export async function runPrompt(
  api: PromptApi,
  prompt: ApiPrompt,
  opts: RunOptions,
): Promise<RunResult> {
  const { promptId } = opts;
  const pollMs = opts.pollIntervalMs ?? 500;
  const watchdogMs = opts.watchdogIntervalMs ?? 2_000;
  const maxFailures = opts.maxPollFailures ?? 3;
  const waker = new Waker();
  // Socket messages can beat the answer to POST /prompt; hold them so "queued" is first.
  let held: RunEvent[] | undefined = [];
  const emit = (e: RunEvent) => {
    if (held && e.type !== "queued") {
      held.push(e);
      return;
    }
    try {
      opts.onEvent?.(e);
    } catch {
      // The caller's listener must not break the job.
    }
    if (e.type === "queued" && held) {
      const later = held;
      held = undefined;
      for (const h of later) emit(h);
    }
  };
  // What the socket told us; /history stays the authority on the outcome and outputs.
  let finishedOverWs = false;
  // Whether the prompt was seen executing (over /ws, or in /queue's running list).
  let started = false;
  const wsOutputs = new Map<string, Record<string, unknown>>();
  // Whether the socket told the whole story of a success: seen from its start, no node the
  // prompt's graph ends in (where output nodes are) served from ComfyUI's cache (a cached
  // output node may send no `executed`), ended with `execution_success`. Then its
  // `executed` outputs are the history's and /history is not asked (a round trip per job);
  // in every other case /history decides. Cached loaders and encoders feed other nodes.
  let seenFromStart = false;
  let cachedSink = false;
  let succeededOverWs = false;
  const onMessage = (m: WsMessage) => {
    const d = m.data;
    if (d.prompt_id !== promptId) return;
    switch (m.type) {
      case "executing":
        if (d.node === null || d.node === undefined) finishedOverWs = true;
        else {
          started = true;
          emit({ type: "executing", promptId, node: String(d.node) });
        }
        break;
      case "progress":
        emit({
          type: "progress",
          promptId,
          node: d.node == null ? undefined : String(d.node),
          value: Number(d.value),
          max: Number(d.max),
        });
        break;
      case "executed": {
        const output = typeof d.output === "object" && d.output !== null
          ? d.output as Record<string, unknown>
          : {};
        wsOutputs.set(String(d.node), output);
        emit({ type: "executed", promptId, node: String(d.node), output });
        break;
      }
      case "execution_start":
        seenFromStart = true;
        break;
      case "execution_cached":
        if (Array.isArray(d.nodes) && d.nodes.some((n) => !fed(prompt).has(String(n)))) {
          cachedSink = true;
        }
        emit({
          type: "cached",
          promptId,
          nodes: Array.isArray(d.nodes) ? d.nodes.map(String) : [],
        });
        break;
      case "execution_success":
        succeededOverWs = true;
        finishedOverWs = true;
        break;
      case "execution_error":
      case "execution_interrupted":
        finishedOverWs = true;
        break;
    }
    waker.wake();
  };
  const onAbort = () => waker.wake();
  opts.signal?.addEventListener("abort", onAbort);
  opts.detachSignal?.addEventListener("abort", onAbort);

  // Requests that follow the prompt end the moment the caller detaches; a cancel does not.
  const follow = opts.detachSignal ? api.withSignal(opts.detachSignal) : api;
  let socket: PromptSocket | undefined;
  let uncertain = false;
  try {
    if (opts.signal?.aborted) return cancelled(api, promptId, false, "poll");
    if (!opts.noWebSocket) {
      try {
        socket = await follow.connect(
          opts.clientId,
          { onMessage, onClose: onAbort, promptId },
          opts.wsOpenTimeoutMs,
        );
      } catch {
        // No usable /ws: poll /history instead. An unreachable backend shows up below.
        socket = undefined;
      }
    }
    let queued = false;
    // Until the backend says whether it holds the prompt (attach), or answers the POST, the
    // prompt may be there or not: a failure now must not let it be queued elsewhere.
    uncertain = true;
    if (opts.attach) {
      const where = await follow.locate(promptId);
      if (where === "done") {
        const entry = await follow.history(promptId);
        if (entry) return resultFromHistory(promptId, entry, "poll");
      }
      queued = where !== undefined;
    }
    const number = queued ? -1 : (await queueIdempotent(follow, prompt, opts)).number;
    uncertain = false;
    emit({ type: "queued", promptId, number, transport: socket?.isOpen ? "ws" : "poll" });

    let failures = 0;
    let absent = 0;
    let polls = 0;
    let lastCheck = Date.now();
    let finishWaitStart = 0;
    while (true) {
      if (opts.detachSignal?.aborted) throw new PromptDetachedError(promptId);
      const wsUp = socket?.isOpen === true;
      if (opts.signal?.aborted) return cancelled(api, promptId, true, wsUp ? "ws" : "poll");
      if (finishedOverWs && succeededOverWs && seenFromStart && !cachedSink) {
        const outputs = [...wsOutputs].flatMap(([node, out]) => outputsFromNode(node, out));
        return { promptId, status: "success", outputs, transport: "ws" };
      }
      if (finishedOverWs) {
        // The socket said done; /history is written right around then, so poll briskly.
        if (!finishWaitStart) finishWaitStart = Date.now();
      } else {
        // With a socket, /history is only a watchdog; without one it is the only news.
        const wait = lastCheck + (wsUp ? watchdogMs : pollMs) - Date.now();
        if (wait > 0) {
          await waker.sleep(wait);
          continue;
        }
      }
      lastCheck = Date.now();
      polls++;
      let entry: HistoryEntry | undefined;
      try {
        entry = await follow.history(promptId);
        failures = 0;
      } catch (err) {
        if (!(err instanceof BackendUnreachableError)) throw err;
        if (++failures >= maxFailures) throw err;
        continue;
      }
      if (entry) {
        const r = resultFromHistory(promptId, entry, finishedOverWs ? "ws" : "poll");
        if (r.outputs.length === 0 && wsOutputs.size > 0) {
          for (const [node, out] of wsOutputs) r.outputs.push(...outputsFromNode(node, out));
        }
        return r;
      }
      if (finishedOverWs) {
        if (Date.now() - finishWaitStart > 15_000) {
          throw new PromptLostError(api.label, api.baseUrl, promptId);
        }
        await waker.sleep(50);
        continue;
      }
      // Not finished: is it still queued? A restarted ComfyUI has forgotten its queue.
      // The first look comes early: without a socket it is the only news that it started.
      if (polls % 4 === 1) {
        let where: PromptLocation | undefined;
        try {
          where = await follow.locate(promptId);
        } catch (err) {
          if (!(err instanceof BackendUnreachableError)) throw err;
          if (++failures >= maxFailures) throw err;
          continue;
        }
        absent = where === undefined ? absent + 1 : 0;
        if (absent >= 2) throw new PromptLostError(api.label, api.baseUrl, promptId);
        if (where === "running" && !started) {
          started = true;
          emit({ type: "running", promptId });
        }
        if (where === "done") lastCheck = 0;
      }
    }
  } catch (err) {
    // A request the detach cut short says "unreachable"; the caller asked for this.
    if (opts.detachSignal?.aborted && err instanceof BackendUnreachableError) {
      throw new PromptDetachedError(promptId, uncertain);
    }
    if (
      uncertain && err instanceof BackendUnreachableError &&
      !(err instanceof PromptOutcomeUnknownError) && !neverDelivered(err)
    ) {
      throw new PromptOutcomeUnknownError(api.label, api.baseUrl, promptId, err.reason);
    }
    throw err;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    opts.detachSignal?.removeEventListener("abort", onAbort);
    await socket?.close();
  }
}

/** Ends a run the caller cancelled, deleting the prompt on the backend when it was queued. */
async function cancelled(
  api: PromptApi,
  promptId: string,
  queued: boolean,
  transport: "ws" | "poll",
): Promise<RunResult> {
  if (queued) {
    try {
      await api.cancel(promptId);
    } catch {
      // Best effort: the backend may be gone, which cancels the prompt too.
    }
  }
  return {
    promptId,
    status: "interrupted",
    outputs: [],
    error: { message: "cancelled" },
    transport,
  };
}

/**
 * POST /prompt, never twice: ComfyUI keeps a client-chosen `prompt_id` but runs a repeated
 * one again. When the answer is lost (timeout, reset, a proxy's gateway error), looks for
 * the id in `/queue` and `/history` and follows it there when found; sends it once more only
 * when the backend says it has not got it. When that look cannot be made either, throws
 * {@linkcode PromptOutcomeUnknownError}: nobody may queue the prompt until this backend
 * answers. A request that never reached ComfyUI (refused) is rethrown as is.
 */
async function queueIdempotent(
  api: PromptApi,
  prompt: ApiPrompt,
  opts: RunOptions,
): Promise<{ prompt_id: string; number: number }> {
  for (let attempt = 1;; attempt++) {
    try {
      return await api.queuePrompt(prompt, opts);
    } catch (err) {
      if (!(err instanceof BackendUnreachableError) || neverDelivered(err)) throw err;
      let where: PromptLocation | undefined;
      try {
        where = await api.locate(opts.promptId);
      } catch {
        throw new PromptOutcomeUnknownError(api.label, api.baseUrl, opts.promptId, err.reason);
      }
      if (where !== undefined) return { prompt_id: opts.promptId, number: -1 };
      // Not there, so the lost POST never took effect: safe to give up on this backend too.
      if (attempt >= 2) throw err;
    }
  }
}

const feeding = new WeakMap<ApiPrompt, Set<string>>();

/** Ids of the prompt's nodes whose output another node takes as input. */
function fed(prompt: ApiPrompt): Set<string> {
  let ids = feeding.get(prompt);
  if (ids) return ids;
  ids = new Set();
  for (const node of Object.values(prompt ?? {})) {
    for (const v of Object.values(node?.inputs ?? {})) {
      if (Array.isArray(v) && v.length === 2 && typeof v[1] === "number") ids.add(String(v[0]));
    }
  }
  feeding.set(prompt, ids);
  return ids;
}
