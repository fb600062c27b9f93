/**
 * An in-memory ComfyUI backend for in-process tests of the run-prompt state machine and the
 * dispatcher: it implements the client's `PromptApi` (queue, history, locate, cancel) with
 * ComfyUI's semantics, including the sharp one that matters here: a second `POST /prompt`
 * with the same `prompt_id` is queued and executed again, as the real server does. It counts
 * executions per prompt id so a test can prove gov never ran one twice, and it fails on
 * demand the ways a network does: refused, wedged (no answer), an answer lost after the
 * prompt was queued, a POST that times out before the server got it.
 *
 * A companion {@linkcode FakeHealth} is the dispatcher's view of backend health.
 *
 * @module
 */
import type { HistoryEntry, PromptLocation, WsMessage } from "../../src/comfyui/api.ts";
import type { ApiPrompt } from "../../src/comfyui/prompt.ts";
import {
  BackendUnreachableError,
  type PromptApi,
  type PromptSocket,
} from "../../src/backends/comfyui/mod.ts";
import type { BackendConfig, BackendStatus } from "../../src/backends/types.ts";
import type { ObjectInfo } from "../../src/comfyui/object_info.ts";

/** How the next `POST /prompt` goes wrong. */
export type PostFault =
  /** Times out before the server read it: nothing queued. */
  | "timeout-unsent"
  /** The server queued it, then the answer was lost (connection reset). */
  | "answer-lost"
  /** The server queued it and its answer never comes (until the caller gives up). */
  | "answer-hangs";

/** How a prompt ends when it runs. */
export type Outcome = "success" | "error";

interface Item {
  promptId: string;
  prompt: ApiPrompt;
}

/**
 * One fake backend. Prompts run one at a time: a queued prompt starts on the next request
 * after it reaches the head of the queue and finishes `runPolls` requests later (0 = only
 * when the test calls {@linkcode FakeBackend.finish}).
 *
 * @example
 * ```ts
 * const b = new FakeBackend("a");
 * const r = await runPrompt(b, prompt, { promptId: "p", clientId: "c", pollIntervalMs: 1 });
 * assertEquals(b.executions("p"), 1);
 * ```
 */
export class FakeBackend implements PromptApi {
  readonly label: string;
  readonly baseUrl: string;
  /** "up" answers, "refused" is a stopped server, "wedged" a server that no longer answers. */
  mode: "up" | "refused" | "wedged" = "up";
  /** Requests until a running prompt finishes; 0 waits for {@linkcode finish}. */
  runPolls = 2;
  /** How prompts end. */
  outcome: Outcome = "success";
  /** Faults for the coming POSTs, in order. */
  postFaults: PostFault[] = [];
  /** Every POST /prompt that reached the server, in order. */
  readonly posts: string[] = [];
  /** Called after each POST reached the server (to change the mode mid-request). */
  onPost?: () => void;
  /** Every request made, as "GET /queue", "POST /prompt p1", ... */
  readonly requests: string[] = [];
  #pending: Item[] = [];
  #running?: Item & { left: number };
  #history = new Map<string, HistoryEntry>();
  #runs = new Map<string, number>();
  #signal?: AbortSignal;
  #root: FakeBackend;

  constructor(id: string, root?: FakeBackend, signal?: AbortSignal) {
    this.label = `backend '${id}'`;
    this.baseUrl = `fake://${id}`;
    this.#root = root ?? this;
    this.#signal = signal;
  }

  /** How many times the prompt started executing on this backend. */
  executions(promptId: string): number {
    return this.#root.#runs.get(promptId) ?? 0;
  }

  /** Ends the running prompt now (with {@linkcode outcome}). */
  finish(): void {
    const r = this.#root;
    if (r.#running) r.#complete(r.#running);
  }

  /** Forgets queue and history, like a restarted ComfyUI. */
  restart(): void {
    const r = this.#root;
    r.#pending = [];
    r.#running = undefined;
    r.#history.clear();
  }

  /** The ids queued (running first, then pending). */
  queued(): string[] {
    const r = this.#root;
    return [...(r.#running ? [r.#running.promptId] : []), ...r.#pending.map((p) => p.promptId)];
  }

  withSignal(signal: AbortSignal): FakeBackend {
    const both = this.#signal ? AbortSignal.any([this.#signal, signal]) : signal;
    return new FakeBackend(this.label.slice(9, -1), this.#root, both);
  }

  #complete(item: Item): void {
    this.#running = undefined;
    const ok = this.outcome === "success";
    this.#history.set(item.promptId, {
      prompt: [0, item.promptId, item.prompt, {}, ["9"]],
      outputs: ok
        ? { "9": { images: [{ filename: `${item.promptId}.png`, subfolder: "", type: "output" }] } }
        : {},
      status: {
        status_str: ok ? "success" : "error",
        completed: ok,
        messages: ok ? [["execution_success", { prompt_id: item.promptId }]] : [[
          "execution_error",
          {
            prompt_id: item.promptId,
            node_id: "3",
            node_type: "KSampler",
            exception_message: "FAKE_EXECUTION_ERROR",
            exception_type: "RuntimeError",
          },
        ]],
      },
    });
  }

  /** Moves the queue along by one request's worth of time. */
  #tick(): void {
    if (this.#running && this.runPolls > 0 && --this.#running.left <= 0) {
      this.#complete(this.#running);
    }
    if (!this.#running && this.#pending.length) {
      const next = this.#pending.shift()!;
      this.#runs.set(next.promptId, (this.#runs.get(next.promptId) ?? 0) + 1);
      this.#running = { ...next, left: this.runPolls };
    }
  }

  /** Every request passes here: fails as the mode says, else moves the queue. */
  async #request(what: string): Promise<FakeBackend> {
    const r = this.#root;
    r.requests.push(what);
    // A real request is never synchronous; neither is this one.
    await new Promise((res) => setTimeout(res, 0));
    if (this.#signal?.aborted) throw this.#unreachable("client closed");
    if (r.mode === "refused") throw this.#unreachable("connection refused");
    if (r.mode === "wedged") {
      // No answer: wait for the caller to give up (its signal) or a short request timeout.
      await new Promise<void>((res) => {
        const t = setTimeout(done, 20);
        function done() {
          clearTimeout(t);
          res();
        }
        this.#signal?.addEventListener("abort", done, { once: true });
      });
      throw this.#unreachable(this.#signal?.aborted ? "client closed" : "no answer within 20 ms");
    }
    r.#tick();
    return r;
  }

  #unreachable(reason: string): BackendUnreachableError {
    return new BackendUnreachableError(this.label, this.baseUrl, reason);
  }

  async queuePrompt(
    prompt: ApiPrompt,
    opts: { promptId: string; clientId: string },
  ): Promise<{ prompt_id: string; number: number }> {
    const fault = this.#root.postFaults.shift();
    if (fault === "timeout-unsent") {
      this.#root.requests.push(`POST /prompt ${opts.promptId} (lost on the way)`);
      throw this.#unreachable("no answer within 20 ms");
    }
    const r = await this.#request(`POST /prompt ${opts.promptId}`);
    const item = { promptId: opts.promptId, prompt: structuredClone(prompt) };
    r.posts.push(opts.promptId);
    // Real ComfyUI keeps a client-chosen id and does not deduplicate: queue it again.
    r.#pending.push(item);
    r.onPost?.();
    if (fault === "answer-lost") throw this.#unreachable("connection reset");
    if (fault === "answer-hangs") {
      const signal = this.#signal;
      await new Promise<void>((res) => {
        if (signal?.aborted) res();
        signal?.addEventListener("abort", () => res(), { once: true });
      });
      throw this.#unreachable("client closed");
    }
    return { prompt_id: opts.promptId, number: r.posts.length };
  }

  async queue(): Promise<{ running: string[]; pending: string[] }> {
    const r = await this.#request("GET /queue");
    return {
      running: r.#running ? [r.#running.promptId] : [],
      pending: r.#pending.map((p) => p.promptId),
    };
  }

  async history(promptId: string): Promise<HistoryEntry | undefined> {
    const r = await this.#request(`GET /history/${promptId}`);
    return structuredClone(r.#history.get(promptId));
  }

  async locate(promptId: string): Promise<PromptLocation | undefined> {
    const q = await this.queue();
    if (q.running.includes(promptId)) return "running";
    if (q.pending.includes(promptId)) return "pending";
    return (await this.history(promptId)) ? "done" : undefined;
  }

  async cancel(promptId: string): Promise<{ deleted: boolean; interrupted: boolean }> {
    const r = await this.#request(`POST /queue delete ${promptId}`);
    const before = r.#pending.length;
    r.#pending = r.#pending.filter((p) => p.promptId !== promptId);
    const deleted = r.#pending.length < before;
    let interrupted = false;
    if (r.#running?.promptId === promptId) {
      interrupted = true;
      const item = r.#running;
      r.#running = undefined;
      r.#history.set(promptId, {
        prompt: [0, promptId, item.prompt, {}, []],
        outputs: {},
        status: {
          status_str: "error",
          completed: false,
          messages: [["execution_interrupted", { prompt_id: promptId }]],
        },
      });
    }
    return { deleted, interrupted };
  }

  connect(
    _clientId: string,
    _handlers: { onMessage?: (m: WsMessage) => void; onClose?: () => void },
  ): Promise<PromptSocket> {
    // No /ws here: the state machine follows the prompt by polling, as behind some proxies.
    return Promise.reject(this.#unreachable("websocket refused (404)"));
  }
}

/** A backend config for tests. */
export function backendConfig(id: string, extra: Partial<BackendConfig> = {}): BackendConfig {
  return {
    id,
    name: id,
    host: "127.0.0.1",
    port: 1,
    weight: 1,
    tags: [],
    max_queue: 4,
    ...extra,
  };
}

/**
 * The dispatcher's health view for tests: every backend up with the classes the test
 * prompts need, until the test says otherwise.
 *
 * @example
 * ```ts
 * const health = new FakeHealth(["a", "b"], ["CheckpointLoaderSimple", "KSampler"]);
 * health.set("a", "down");
 * ```
 */
export class FakeHealth {
  #status = new Map<string, BackendStatus>();
  #listeners = new Set<(s: BackendStatus) => void>();
  /** Backends the dispatcher marked down, with the reason. */
  readonly markedDown: [string, string][] = [];

  constructor(ids: string[], nodeClasses: string[]) {
    for (const id of ids) {
      this.#status.set(id, {
        id,
        state: "up",
        lastProbeAt: 1,
        failures: 0,
        successes: 1,
        queueRemaining: 0,
        inFlight: 0,
        nodeClasses: [...nodeClasses],
        models: {},
        capabilitiesAt: 1,
      });
    }
  }

  /** Changes a backend's state and tells the listeners. */
  set(id: string, state: BackendStatus["state"], lastError?: string): void {
    const s = this.#status.get(id)!;
    s.state = state;
    s.lastError = lastError;
    this.#emit(s);
  }

  #emit(s: BackendStatus): void {
    for (const fn of [...this.#listeners]) fn({ ...s });
  }

  statuses(): BackendStatus[] {
    return [...this.#status.values()].map((s) => ({ ...s }));
  }

  onChange(fn: (s: BackendStatus) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  adjustInFlight(id: string, delta: number): void {
    const s = this.#status.get(id);
    if (!s) return;
    s.inFlight = Math.max(0, s.inFlight + delta);
    this.#emit(s);
  }

  markDown(id: string, reason: string): void {
    this.markedDown.push([id, reason]);
    this.set(id, "down", reason);
  }

  objectInfo(_id: string): ObjectInfo | undefined {
    return undefined;
  }
}
