/**
 * Commands of the backend group.
 *
 * @module
 */
import type { Command } from "../command.ts";
import { addCommand } from "./add.ts";
import { listCommand } from "./list.ts";
import { removeCommand } from "./remove.ts";

/** The backend commands, in the order `gov --help` lists them. */
export const commands: Command[] = [listCommand, addCommand, removeCommand];
