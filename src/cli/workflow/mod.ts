/**
 * Commands of the workflow group.
 *
 * @module
 */
import type { Command } from "../command.ts";
import { convertCommand } from "./convert.ts";
import { paramsCommand } from "./params.ts";
import { patchCommand } from "./patch.ts";

/** The workflow commands, in the order `gov --help` lists them. */
export const commands: Command[] = [convertCommand, paramsCommand, patchCommand];
