/**
 * Prompts and small helpers shared by the backend tests.
 *
 * @module
 */
export { txt2img } from "../helpers/prompts.ts";

/** A fresh id, like the gateway gives each job. */
export function newId(): string {
  return crypto.randomUUID();
}

/** The 8-byte PNG signature. */
export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
