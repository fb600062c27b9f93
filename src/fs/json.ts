/**
 * Reading JSON state files with validation, so a corrupt or hand-edited file gives an error
 * naming the file and the field instead of a crash far away.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import { readTextIfExists } from "./atomic.ts";

/** A validator: returns the typed value or throws a message naming the bad field. */
export type Validator<T> = (value: unknown, file: string) => T;

/**
 * Reads and validates a JSON file. Returns `undefined` when the file does not exist; throws
 * {@linkcode ConfigError} when it does not parse or does not validate.
 *
 * @example
 * ```ts
 * import { readJsonFile } from "@/fs/json.ts";
 * import { validateTransaction } from "@/gov/state/schema.ts";
 *
 * const tx = await readJsonFile("/env/state/transactions/tx-1.json", validateTransaction);
 * ```
 */
export async function readJsonFile<T>(
  path: string,
  validate: Validator<T>,
): Promise<T | undefined> {
  const text = await readTextIfExists(path);
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(path, "", `is not valid JSON (${(err as Error).message})`);
  }
  return validate(value, path);
}

/** Field checks for hand-written validators; each throws a {@linkcode ConfigError}. */
export const check = {
  /** The value is a plain object. */
  object(v: unknown, file: string, field: string): Record<string, unknown> {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw new ConfigError(file, field || "(top level)", "an object");
    }
    return v as Record<string, unknown>;
  },
  /** The value is a string. */
  string(v: unknown, file: string, field: string): string {
    if (typeof v !== "string") throw new ConfigError(file, field, "a string");
    return v;
  },
  /** The value is a string or absent/null. */
  optString(v: unknown, file: string, field: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    return check.string(v, file, field);
  },
  /** The value is a finite number. */
  number(v: unknown, file: string, field: string): number {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new ConfigError(file, field, "a number");
    }
    return v;
  },
  /** The value is a number or absent/null. */
  optNumber(v: unknown, file: string, field: string): number | undefined {
    if (v === undefined || v === null) return undefined;
    return check.number(v, file, field);
  },
  /** The value is a boolean. */
  boolean(v: unknown, file: string, field: string): boolean {
    if (typeof v !== "boolean") throw new ConfigError(file, field, "true or false");
    return v;
  },
  /** The value is an array of strings. */
  stringArray(v: unknown, file: string, field: string): string[] {
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
      throw new ConfigError(file, field, "a list of strings");
    }
    return v as string[];
  },
  /** The value is one of the given strings. */
  oneOf<T extends string>(v: unknown, file: string, field: string, choices: readonly T[]): T {
    if (typeof v !== "string" || !choices.includes(v as T)) {
      throw new ConfigError(file, field, `one of ${choices.join(", ")}`);
    }
    return v as T;
  },
};
