/**
 * Workflow layer throughput: UI-to-API conversions per second of the frontend's default
 * graph (frontend_default.ui.json against the real object_info.json), in-process, plus the
 * bigger distributed-upscale workflow (reroutes, bypass, custom classes with
 * --allow-unknown) and a patch of the converted prompt.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { loadObjectInfo } from "../../src/workflow/object_info.ts";
import { workflowToPrompt } from "../../src/workflow/convert/mod.ts";
import { patchPrompt } from "../../src/workflow/patch.ts";

const SHARED = fileURLToPath(new URL("../../../shared/real-workflows/", import.meta.url));

function opsPerSecond(fn: () => void, minMs = 1500): { ops: number; n: number } {
  for (let i = 0; i < 200; i++) fn(); // warm up the JIT
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
    elapsed = performance.now() - start;
  }
  return { ops: n / (elapsed / 1000), n };
}

/** Runs the workflow benchmarks and returns their figures. */
export default async function workflowBench(): Promise<
  { name: string; value: number; unit: string; detail?: string }[]
> {
  const info = await loadObjectInfo(`${SHARED}object_info.json`);
  const small = JSON.parse(await Deno.readTextFile(`${SHARED}frontend_default.ui.json`));
  const big = JSON.parse(await Deno.readTextFile(`${SHARED}distributed_upscale.ui.json`));
  const prompt = workflowToPrompt(small, info);
  const a = opsPerSecond(() => workflowToPrompt(small, info));
  const b = opsPerSecond(() => workflowToPrompt(big, info, { allowUnknown: true }));
  const c = opsPerSecond(() =>
    patchPrompt(prompt, [["seed", "random"], ["steps", "30"], ["6.text", "a cat"]], info)
  );
  return [
    {
      name: "convert frontend_default",
      value: Math.round(a.ops),
      unit: "ops/s",
      detail: `${a.n} conversions, 7 nodes`,
    },
    {
      name: "convert distributed_upscale",
      value: Math.round(b.ops),
      unit: "ops/s",
      detail: `${b.n} conversions, 25 nodes (8 reroutes, 1 bypassed)`,
    },
    {
      name: "patch 3 parameters",
      value: Math.round(c.ops),
      unit: "ops/s",
      detail: `${c.n} patches of the converted default graph`,
    },
  ];
}

if (import.meta.main) {
  for (const f of await workflowBench()) {
    console.log(`${f.name}: ${f.value} ${f.unit} (${f.detail})`);
  }
}
