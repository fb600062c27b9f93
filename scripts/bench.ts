/**
 * `deno task bench`: runs every benchmark module in scripts/bench/ and prints its figures.
 * Each module sets up real processes itself and returns what it measured; nothing here
 * asserts a threshold, so a slow machine reports slow figures instead of failing.
 *
 * Usage: deno task bench [name-filter...] [--json]
 *
 * @module
 */
import { basename } from "node:path";
import { fileURLToPath } from "node:url";

export type { Figure } from "./lib/common.ts";
import type { Figure } from "./lib/common.ts";

const dir = fileURLToPath(new URL("./bench/", import.meta.url));
const json = Deno.args.includes("--json");
const filters = Deno.args.filter((a) => a !== "--json");
const modules: string[] = [];
for (const e of Deno.readDirSync(dir)) {
  if (e.isFile && e.name.endsWith(".ts") && !e.name.startsWith("_")) modules.push(e.name);
}
modules.sort();
const selected = modules.filter((m) => filters.length === 0 || filters.some((f) => m.includes(f)));
if (selected.length === 0) {
  console.error(`no benchmark matches ${filters.join(", ")}; have: ${modules.join(", ")}`);
  Deno.exit(2);
}

const results: Record<string, Figure[] | { error: string }> = {};
let failed = false;
for (const m of selected) {
  const name = basename(m, ".ts");
  if (!json) console.error(`running ${name} ...`);
  try {
    const mod = await import(new URL(`./bench/${m}`, import.meta.url).href);
    const figures: Figure[] = await mod.default();
    results[name] = figures;
    if (!json) {
      const width = Math.max(...figures.map((f) => f.name.length), 10);
      console.log(`\n${name}`);
      for (const f of figures) {
        const v = Number.isInteger(f.value) ? String(f.value) : f.value.toFixed(2);
        const floor = f.floor === undefined
          ? ""
          : `  floor ${f.floor.toFixed(2)} ${f.unit}, ratio ${f.ratio?.toFixed(2)}`;
        console.log(
          `  ${f.name.padEnd(width)}  ${v.padStart(10)} ${f.unit}${floor}${
            f.goal ? `  [goal ${f.goal}]` : ""
          }${f.detail ? `  (${f.detail})` : ""}`,
        );
      }
    }
  } catch (err) {
    failed = true;
    results[name] = { error: String((err as Error)?.stack ?? err) };
    if (!json) console.log(`\n${name}\n  FAILED: ${(err as Error)?.message ?? err}`);
  }
}
if (json) console.log(JSON.stringify(results, null, 2));
Deno.exit(failed ? 1 : 0);
