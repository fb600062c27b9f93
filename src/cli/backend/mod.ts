/**
 * Commands of the backend group.
 *
 * @module
 */
import type { Command } from "../command.ts";

/** The backend commands, in the order `gov --help` lists them. */
export const commands: Command[] = [];
