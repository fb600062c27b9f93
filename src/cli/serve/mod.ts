/**
 * Commands of the serve group.
 *
 * @module
 */
import type { Command } from "../command.ts";

/** The serve commands, in the order `gov --help` lists them. */
export const commands: Command[] = [];
