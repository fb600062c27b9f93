/**
 * Commands of the backend group.
 *
 * @module
 */
import type { CommandEntry } from "../command.ts";

// Name and summary are repeated here so `gov --help` needs no command module; a test
// checks them against the loaded commands.
/** The backend commands, in the order `gov --help` lists them. */
export const commands: CommandEntry[] = [
  {
    name: "backend list",
    summary: "list backends with live health, queue, VRAM, node classes and models",
    load: async () => (await import("./list.ts")).listCommand,
  },
  {
    name: "backend add",
    summary: "register a ComfyUI backend gov may route work to",
    load: async () => (await import("./add.ts")).addCommand,
  },
  {
    name: "backend remove",
    summary: "remove a backend from backends.toml",
    load: async () => (await import("./remove.ts")).removeCommand,
  },
];
