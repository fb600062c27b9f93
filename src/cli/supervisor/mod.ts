/**
 * Commands of the supervisor group.
 *
 * @module
 */
import type { Command } from "../command.ts";

/** The supervisor commands, in the order `gov --help` lists them. */
export const commands: Command[] = [];
