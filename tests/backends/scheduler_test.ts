import { assertEquals, assertMatch, assertThrows, assertTrue } from "../helpers/assert.ts";
import {
  NoBackendError,
  rankBackends,
  refusalFor,
  scoreOf,
  selectBackend,
} from "../../src/backends/scheduler.ts";
import type { BackendConfig, BackendStatus, PromptRequirements } from "../../src/backends/types.ts";
import { GovError } from "../../src/errors.ts";

const CORE = [
  "CheckpointLoaderSimple",
  "CLIPTextEncode",
  "EmptyLatentImage",
  "KSampler",
  "LoraLoader",
  "SaveImage",
  "VAEDecode",
];

function backend(id: string, extra: Partial<BackendConfig> = {}): BackendConfig {
  return {
    id,
    name: id,
    host: "127.0.0.1",
    port: 8188,
    weight: 1,
    tags: [],
    max_queue: 4,
    ...extra,
  };
}

function up(id: string, extra: Partial<BackendStatus> = {}): BackendStatus {
  return {
    id,
    state: "up",
    lastProbeAt: 1,
    failures: 0,
    successes: 1,
    queueRemaining: 0,
    inFlight: 0,
    nodeClasses: CORE,
    models: { ckpt_name: ["sd15.safetensors", "SDXL/base.safetensors"], lora_name: [] },
    capabilitiesAt: 1,
    ...extra,
  };
}

const txt2img: PromptRequirements = {
  classTypes: ["CheckpointLoaderSimple", "CLIPTextEncode", "KSampler", "SaveImage"],
  models: [{ input: "ckpt_name", name: "sd15.safetensors", nodeId: "4" }],
};

Deno.test("scheduler: raises NoBackendError (a GovError) when there are no backends at all", () => {
  const err = assertThrows(
    () => selectBackend(txt2img, [], []),
    NoBackendError,
    /no backends are configured/,
  ) as NoBackendError;
  assertTrue(err instanceof GovError);
  assertEquals(err.refusals, []);
  assertEquals(err.retryable, false);
  assertMatch(err.hint ?? "", /gov backend add/);
});

Deno.test("scheduler: only backends with every node class the prompt needs are eligible", () => {
  const req: PromptRequirements = {
    classTypes: [...txt2img.classTypes, "IPAdapterApply", "UltimateSDUpscale"],
    models: [],
  };
  const backends = [backend("plain"), backend("custom")];
  const statuses = [
    up("plain"),
    up("custom", {
      nodeClasses: [...CORE, "IPAdapterApply", "UltimateSDUpscale"],
      queueRemaining: 3,
    }),
  ];
  assertEquals(selectBackend(req, backends, statuses).id, "custom");
  const err = assertThrows(
    () => selectBackend(req, [backend("plain")], statuses),
    NoBackendError,
  ) as NoBackendError;
  assertEquals(err.refusals, [{
    backend: "plain",
    reason: "missing nodes IPAdapterApply, UltimateSDUpscale",
    kind: "missing_node",
  }]);
  assertEquals(err.retryable, false);
});

Deno.test("scheduler: a backend without the model file is refused, path separators do not matter", () => {
  const backends = [backend("a"), backend("b")];
  const statuses = [
    up("a", { models: { ckpt_name: ["other.safetensors"] } }),
    up("b", { models: { ckpt_name: ["SDXL\\base.safetensors"] }, queueRemaining: 2 }),
  ];
  const req: PromptRequirements = {
    classTypes: ["CheckpointLoaderSimple"],
    models: [{ input: "ckpt_name", name: "SDXL/base.safetensors", nodeId: "4" }],
  };
  assertEquals(selectBackend(req, backends, statuses).id, "b");
  const r = refusalFor(req, backends[0], statuses[0]);
  assertEquals(r, {
    backend: "a",
    reason: "missing model SDXL/base.safetensors (ckpt_name)",
    kind: "missing_model",
  });
});

Deno.test("scheduler: least loaded wins, relative to weight; ties are deterministic", () => {
  const backends = [backend("a"), backend("b"), backend("big", { weight: 2 })];
  // Loads 2, 1 and 2: scores 3/1, 2/1, 3/2 -> big.
  let statuses = [
    up("a", { queueRemaining: 2 }),
    up("b", { queueRemaining: 1 }),
    up("big", { queueRemaining: 2 }),
  ];
  assertEquals(selectBackend(txt2img, backends, statuses).id, "big");
  assertEquals(scoreOf(backends[2], statuses[2]), 1.5);
  // gov's own in-flight count is current even when queue_remaining is a probe behind.
  statuses = [
    up("a", { queueRemaining: 0, inFlight: 3 }),
    up("b", { queueRemaining: 1 }),
    up("big", { queueRemaining: 0, inFlight: 3 }),
  ];
  assertEquals(selectBackend(txt2img, backends, statuses).id, "b");
  // All idle: equal weight-1 scores tie, broken by id; the weight-2 backend is preferred.
  statuses = [up("b"), up("a"), up("big")];
  const { candidates } = rankBackends(txt2img, backends, statuses);
  assertEquals(candidates.map((c) => c.backend.id), ["big", "a", "b"]);
  // Equal score: fewer in-flight first.
  const eq = rankBackends(txt2img, [backend("a"), backend("b")], [
    up("a", { queueRemaining: 2, inFlight: 2 }),
    up("b", { queueRemaining: 2, inFlight: 1 }),
  ]);
  assertEquals(eq.candidates.map((c) => c.backend.id), ["b", "a"]);
});

Deno.test("scheduler: max_queue is respected with 'queue full (n/max)'", () => {
  const backends = [backend("a", { max_queue: 2 }), backend("b", { max_queue: 3 })];
  const statuses = [up("a", { queueRemaining: 2 }), up("b", { inFlight: 1, queueRemaining: 0 })];
  assertEquals(selectBackend(txt2img, backends, statuses).id, "b");
  const full = [up("a", { queueRemaining: 2 }), up("b", { inFlight: 3 })];
  const err = assertThrows(
    () => selectBackend(txt2img, backends, full),
    NoBackendError,
  ) as NoBackendError;
  assertEquals(err.refusals.map((r) => r.reason), ["queue full (2/2)", "queue full (3/3)"]);
  assertEquals(err.retryable, true);
});

Deno.test("scheduler: the error says per backend why it was refused", () => {
  const backends = [
    backend("down1"),
    backend("new"),
    backend("nocaps"),
    backend("nonode"),
    backend("nomodel"),
    backend("full", { max_queue: 1 }),
  ];
  const statuses = [
    up("down1", { state: "down", lastError: "connection refused" }),
    up("new", { state: "unknown" }),
    up("nocaps", { nodeClasses: [], models: {}, capabilitiesAt: undefined }),
    up("nonode", { nodeClasses: ["KSampler"] }),
    up("nomodel", { models: { ckpt_name: [] } }),
    up("full", { queueRemaining: 1 }),
  ];
  const err = assertThrows(
    () => selectBackend(txt2img, backends, statuses),
    NoBackendError,
  ) as NoBackendError;
  assertEquals(err.refusals.map((r) => [r.backend, r.kind, r.reason]), [
    ["down1", "down", "down (connection refused)"],
    ["new", "unknown", "health unknown yet (not probed)"],
    ["nocaps", "unknown", "node classes unknown yet (object_info not loaded)"],
    ["nonode", "missing_node", "missing nodes CLIPTextEncode, CheckpointLoaderSimple, SaveImage"],
    ["nomodel", "missing_model", "missing model sd15.safetensors (ckpt_name)"],
    ["full", "queue_full", "queue full (1/1)"],
  ]);
  assertMatch(
    err.message,
    /^no backend can run this prompt: down1: down \(connection refused\); new: health unknown yet/,
  );
  assertMatch(
    err.message,
    /nomodel: missing model sd15\.safetensors \(ckpt_name\); full: queue full \(1\/1\)$/,
  );
});

Deno.test("scheduler: a backend missing from the status list counts as not probed", () => {
  const err = assertThrows(
    () => selectBackend(txt2img, [backend("a")], []),
    NoBackendError,
  ) as NoBackendError;
  assertEquals(err.refusals[0].kind, "unknown");
});

Deno.test("scheduler: only pins one backend, still refused with its reason when unfit", () => {
  const backends = [backend("a"), backend("b")];
  const statuses = [up("a"), up("b", { queueRemaining: 3 })];
  assertEquals(selectBackend(txt2img, backends, statuses, { only: "b" }).id, "b");
  const err = assertThrows(
    () => selectBackend(txt2img, backends, [up("a"), up("b", { state: "down" })], { only: "b" }),
    NoBackendError,
    /b: down$/,
  ) as NoBackendError;
  assertEquals(err.refusals.length, 1);
  assertThrows(
    () => selectBackend(txt2img, backends, statuses, { only: "zzz" }),
    NoBackendError,
    /zzz: not in backends\.toml/,
  );
});

Deno.test("scheduler: exclude skips backends that already failed the job (failover)", () => {
  const backends = [backend("a"), backend("b")];
  const statuses = [up("a"), up("b", { queueRemaining: 2 })];
  assertEquals(selectBackend(txt2img, backends, statuses).id, "a");
  assertEquals(selectBackend(txt2img, backends, statuses, { exclude: ["a"] }).id, "b");
  const err = assertThrows(
    () => selectBackend(txt2img, backends, statuses, { exclude: ["a", "b"] }),
    NoBackendError,
  ) as NoBackendError;
  assertEquals(err.refusals.map((r) => r.kind), ["excluded", "excluded"]);
  assertEquals(err.retryable, false);
});

Deno.test("scheduler: a model input the backend does not list as a COMBO is not judged", () => {
  const req: PromptRequirements = {
    classTypes: ["KSampler"],
    models: [{ input: "custom_model_name", name: "x.bin", nodeId: "1" }],
  };
  assertEquals(selectBackend(req, [backend("a")], [up("a")]).id, "a");
});
