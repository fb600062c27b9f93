/**
 * Crash safety of `gov tx promote` in the middle: SIGKILLed after the truth files moved but
 * before the smoke test passed, or while undoing a failed promotion. The next command undoes
 * it: truth files and `.venv-prod` are as before, the transaction is promote_failed.
 */
import { CrashTemplate } from "./crash_helpers.ts";
import { promoteKilledUndone, UNDONE_STEPS } from "./crash_promote_cases.ts";

const crash = new CrashTemplate();

for (const step of UNDONE_STEPS) {
  Deno.test(
    `promote killed at ${step} (truth files moved, not yet smoke-tested) is undone by the next command`,
    () => promoteKilledUndone(crash, step),
  );
}
