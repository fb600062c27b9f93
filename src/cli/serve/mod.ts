/**
 * Commands of the serve group.
 *
 * @module
 */
import type { Command } from "../command.ts";
import { serveCommand } from "./serve.ts";
import { submitCommand } from "./submit.ts";

/** The serve commands, in the order `gov --help` lists them. */
export const commands: Command[] = [serveCommand, submitCommand];
