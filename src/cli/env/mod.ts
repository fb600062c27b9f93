/**
 * Commands of the env group.
 *
 * @module
 */
import type { Command } from "../command.ts";

/** The env commands, in the order `gov --help` lists them. */
export const commands: Command[] = [];
