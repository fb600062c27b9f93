/**
 * Runs `syncEnvironment` (what the supervisor calls before every start) on the environment
 * folder given as argument, in its own process so that the test can choose its
 * environment variables, and prints `{ok, steps, error?}` as JSON.
 *
 * @module
 */
import { syncEnvironment } from "../../src/gov/mod.ts";
import { loadEnvironment } from "../../src/workspace/environment.ts";

const steps: string[] = [];
try {
  await syncEnvironment(loadEnvironment(Deno.args[0]), (s) => steps.push(s));
  console.log(JSON.stringify({ ok: true, steps }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, steps, error: (err as Error).message }));
}
