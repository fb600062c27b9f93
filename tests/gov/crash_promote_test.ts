/**
 * Crash safety of `gov tx promote` at the ends: SIGKILLed before the truth files moved
 * (nothing changed, promotable again) or after the smoke test passed (finished by the next
 * command). The cases in between are in crash_promote_undo_test.ts.
 */
import { CrashTemplate } from "./crash_helpers.ts";
import {
  FINISHED_STEPS,
  promoteKilledFinished,
  promoteKilledUntouched,
  UNTOUCHED_STEPS,
} from "./crash_promote_cases.ts";

const crash = new CrashTemplate();

for (const step of UNTOUCHED_STEPS) {
  Deno.test(
    `promote killed at ${step} (before the truth files moved) changes nothing and stays promotable`,
    () => promoteKilledUntouched(crash, step),
  );
}

for (const step of FINISHED_STEPS) {
  Deno.test(
    `promote killed at ${step} (after the smoke test passed) is finished by the next command`,
    () => promoteKilledFinished(crash, step),
  );
}
