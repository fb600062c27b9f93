/**
 * Commands of the workflow group.
 *
 * @module
 */
import type { CommandEntry } from "../command.ts";

// Name and summary are repeated here so `gov --help` needs no command module; a test
// checks them against the loaded commands.
/** The workflow commands, in the order `gov --help` lists them. */
export const commands: CommandEntry[] = [
  {
    name: "workflow convert",
    summary: "convert a UI workflow to an API prompt (as the ComfyUI frontend would queue it)",
    load: async () => (await import("./convert.ts")).convertCommand,
  },
  {
    name: "workflow params",
    summary: "list a workflow's tunable parameters (seed, steps, prompts, models, any widget)",
    load: async () => (await import("./params.ts")).paramsCommand,
  },
  {
    name: "workflow patch",
    summary: "set workflow parameters (type-checked) and write the API prompt",
    load: async () => (await import("./patch.ts")).patchCommand,
  },
];
