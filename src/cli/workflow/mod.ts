/**
 * Commands of the workflow group.
 *
 * @module
 */
import type { Command } from "../command.ts";

/** The workflow commands, in the order `gov --help` lists them. */
export const commands: Command[] = [];
