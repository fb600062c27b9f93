/**
 * The run-prompt state machine in-process, against an in-memory backend that, like the real
 * ComfyUI, runs a repeated `prompt_id` again: whenever the outcome of `POST /prompt` is
 * unknown, gov looks for the id in `/queue` and `/history` before queueing it again, and the
 * prompt runs once.
 */
import { assertEquals, assertMatch, assertRejects, assertTrue } from "../helpers/assert.ts";
import {
  BackendUnreachableError,
  PromptDetachedError,
  PromptOutcomeUnknownError,
  runPrompt,
} from "../../src/backends/comfyui/mod.ts";
import { FakeBackend } from "./_fake_backend.ts";
import { newId, txt2img } from "./_fixtures.ts";

const fast = { pollIntervalMs: 1, watchdogIntervalMs: 1 };

Deno.test("run: a prompt runs once and its outputs come from /history", async () => {
  const b = new FakeBackend("a");
  const promptId = newId();
  const r = await runPrompt(b, txt2img(), { promptId, clientId: newId(), ...fast });
  assertEquals(r.status, "success");
  assertEquals(r.outputs.map((o) => o.filename), [`${promptId}.png`]);
  assertEquals(b.executions(promptId), 1);
});

Deno.test("run: the fake backend, like ComfyUI, runs a repeated prompt_id again", async () => {
  // What makes the rest of this file matter: the server does not deduplicate.
  const b = new FakeBackend("a");
  const promptId = newId();
  await b.queuePrompt(txt2img(), { promptId, clientId: "c" });
  await b.queuePrompt(txt2img(), { promptId, clientId: "c" });
  assertEquals(b.queued(), [promptId, promptId]);
});

Deno.test("run: a POST that timed out before ComfyUI got it is looked for, then sent once more", async () => {
  const b = new FakeBackend("a");
  b.postFaults = ["timeout-unsent"];
  const promptId = newId();
  const r = await runPrompt(b, txt2img(), { promptId, clientId: newId(), ...fast });
  assertEquals(r.status, "success");
  assertEquals(b.executions(promptId), 1);
  // The second POST came only after /queue and /history said the first never arrived.
  const i = b.requests.indexOf(`POST /prompt ${promptId}`);
  assertTrue(i > 0, b.requests.join("\n"));
  assertEquals(b.requests.slice(i - 2, i), ["GET /queue", `GET /history/${promptId}`]);
});

Deno.test("run: a POST whose answer was lost is found in /queue and followed, not sent again", async () => {
  const b = new FakeBackend("a");
  b.postFaults = ["answer-lost"];
  const promptId = newId();
  const r = await runPrompt(b, txt2img(), { promptId, clientId: newId(), ...fast });
  assertEquals(r.status, "success");
  assertEquals(b.posts, [promptId]);
  assertEquals(b.executions(promptId), 1);
});

Deno.test("run: answer lost and the backend stops answering: the outcome is unknown, not 'unreachable'", async () => {
  const b = new FakeBackend("a");
  b.postFaults = ["answer-lost"];
  b.onPost = () => b.mode = "wedged";
  const promptId = newId();
  const err = await assertRejects(
    () => runPrompt(b, txt2img(), { promptId, clientId: newId(), ...fast }),
    PromptOutcomeUnknownError,
    /connection reset; whether it queued prompt .* is unknown/,
  );
  assertEquals((err as PromptOutcomeUnknownError).promptId, promptId);
  assertEquals(b.posts, [promptId]);
});

Deno.test("run: a refused POST never arrived, so it is not looked for and fails over as is", async () => {
  const b = new FakeBackend("a");
  b.mode = "refused";
  const err = await assertRejects(
    () => runPrompt(b, txt2img(), { promptId: newId(), clientId: newId(), ...fast }),
    BackendUnreachableError,
    /connection refused/,
  );
  assertTrue(!(err instanceof PromptOutcomeUnknownError));
  assertEquals(b.requests.filter((r) => r === "GET /queue"), []);
});

Deno.test("run: attach follows a prompt already queued and reads a finished one from /history", async () => {
  const b = new FakeBackend("a");
  const promptId = newId();
  await b.queuePrompt(txt2img(), { promptId, clientId: "old-gateway" });
  const r = await runPrompt(b, txt2img(), { promptId, clientId: newId(), attach: true, ...fast });
  assertEquals(r.status, "success");
  const again = await runPrompt(b, txt2img(), {
    promptId,
    clientId: newId(),
    attach: true,
    ...fast,
  });
  assertEquals(again.outputs, r.outputs);
  assertEquals(b.posts, [promptId]);
  assertEquals(b.executions(promptId), 1);
});

Deno.test("run: attach to a backend that does not answer says the outcome is unknown", async () => {
  const b = new FakeBackend("a");
  b.mode = "wedged";
  await assertRejects(
    () => runPrompt(b, txt2img(), { promptId: newId(), clientId: newId(), attach: true, ...fast }),
    PromptOutcomeUnknownError,
    /no answer within 20 ms/,
  );
  assertEquals(b.posts, []);
});

Deno.test("run: detaching while the POST is in flight says the backend may hold the prompt", async () => {
  const b = new FakeBackend("a");
  b.postFaults = ["answer-hangs"];
  const detach = new AbortController();
  b.onPost = () => detach.abort();
  const promptId = newId();
  const err = await assertRejects(
    () =>
      runPrompt(b, txt2img(), {
        promptId,
        clientId: newId(),
        detachSignal: detach.signal,
        ...fast,
      }),
    PromptDetachedError,
    /whether the backend got it is unknown/,
  );
  assertTrue((err as PromptDetachedError).outcomeUnknown);
  assertEquals(b.queued(), [promptId]);
});

Deno.test("run: detaching a prompt that is running leaves it there, outcome known", async () => {
  const b = new FakeBackend("a");
  b.runPolls = 0;
  const detach = new AbortController();
  const promptId = newId();
  const run = runPrompt(b, txt2img(), {
    promptId,
    clientId: newId(),
    detachSignal: detach.signal,
    onEvent: (e) => {
      if (e.type === "running") detach.abort();
    },
    ...fast,
  });
  const err = await assertRejects(() => run, PromptDetachedError);
  assertEquals((err as PromptDetachedError).outcomeUnknown, false);
  assertMatch((err as Error).message, /left on the backend/);
  assertEquals(b.queued(), [promptId]);
});
