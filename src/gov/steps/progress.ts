/**
 * Progress of a step whose failure is a result rather than an exception (a smoke test that
 * exits 1, a ComfyUI test start that never came up): shown as failed, never with a ✓.
 *
 * @module
 */
import { type OnStep, timedStep } from "../../uv/driver.ts";

class FailedResult<T> extends Error {
  constructor(readonly result: T) {
    super("step failed");
  }
}

/**
 * Runs `fn` as progress step `step` and returns its result; the step reads "failed" when
 * `ok(result)` is false, "done" otherwise.
 *
 * @example
 * ```ts
 * import { judgedStep } from "@/gov/steps/progress.ts";
 * import { runProcess } from "@/process/run.ts";
 *
 * const r = await judgedStep(undefined, "python -V", () => runProcess("python3", ["-V"]), (r) =>
 *   r.code === 0);
 * ```
 */
export async function judgedStep<T>(
  onStep: OnStep | undefined,
  step: string,
  fn: () => Promise<T>,
  ok: (result: T) => boolean,
): Promise<T> {
  try {
    return await timedStep(onStep, step, async () => {
      const r = await fn();
      if (!ok(r)) throw new FailedResult(r);
      return r;
    });
  } catch (err) {
    if (err instanceof FailedResult) return err.result as T;
    throw err;
  }
}
