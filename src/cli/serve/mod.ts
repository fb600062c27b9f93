/**
 * Commands of the serve group.
 *
 * @module
 */
import type { CommandEntry } from "../command.ts";

// Name and summary are repeated here so `gov --help` needs no command module; a test
// checks them against the loaded commands.
/** The serve commands, in the order `gov --help` lists them. */
export const commands: CommandEntry[] = [
  {
    name: "serve",
    summary: "run the gateway: an HTTP API that routes ComfyUI workflows across backends",
    load: async () => (await import("./serve.ts")).serveCommand,
  },
  {
    name: "submit",
    summary: "queue a workflow on the gateway (or run it in-process against the backends)",
    load: async () => (await import("./submit.ts")).submitCommand,
  },
];
