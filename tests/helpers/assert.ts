/**
 * Assertions for tests, on top of `node:assert/strict` (JSR's @std/assert is not reachable
 * from our build hosts).
 *
 * @module
 */
import assert from "node:assert/strict";

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.deepStrictEqual(actual, expected, msg);
}

/** Deep strict inequality. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.notDeepStrictEqual(actual, expected, msg);
}

/** Truthiness. */
export function assertTrue(value: unknown, msg?: string): asserts value {
  assert.ok(value, msg);
}

/** The string matches the pattern. */
export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  assert.match(actual, re, msg);
}

/** The string does not match the pattern. */
export function assertNotMatch(actual: string, re: RegExp, msg?: string): void {
  assert.doesNotMatch(actual, re, msg);
}

/** The async function rejects with an error of class `cls` whose message matches `re`. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  cls?: new (...args: any[]) => Error,
  re?: RegExp,
): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    if (cls && !(err instanceof cls)) {
      throw new assert.AssertionError({
        message: `expected ${cls.name}, got ${(err as Error)?.name}: ${(err as Error)?.message}`,
      });
    }
    if (re) assert.match((err as Error).message, re);
    return err as Error;
  }
  throw new assert.AssertionError({ message: "expected the promise to reject" });
}

/** The function throws an error of class `cls` whose message matches `re`. */
export function assertThrows(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  cls?: new (...args: any[]) => Error,
  re?: RegExp,
): Error {
  try {
    fn();
  } catch (err) {
    if (cls && !(err instanceof cls)) {
      throw new assert.AssertionError({
        message: `expected ${cls.name}, got ${(err as Error)?.name}: ${(err as Error)?.message}`,
      });
    }
    if (re) assert.match((err as Error).message, re);
    return err as Error;
  }
  throw new assert.AssertionError({ message: "expected the function to throw" });
}
