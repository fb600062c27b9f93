/**
 * Commands of the supervisor group.
 *
 * @module
 */
import type { CommandEntry } from "../command.ts";

// Name and summary are repeated here so `gov --help` needs no command module; a test
// checks them against the loaded commands.
/** The supervisor commands, in the order `gov --help` lists them. */
export const commands: CommandEntry[] = [
  {
    name: "run",
    summary: "run ComfyUI under the supervisor (restart on 42, switch on 43, crash backoff)",
    load: async () => (await import("./run.ts")).runCommand,
  },
  {
    name: "switch",
    summary: "switch the supervised ComfyUI to another environment (rolls back on failure)",
    load: async () => (await import("./switch.ts")).switchCommand,
  },
  {
    name: "restart",
    summary: "restart the supervised ComfyUI (resync, start again)",
    load: async () => (await import("./restart.ts")).restartCommand,
  },
  {
    name: "stop",
    summary: "stop the supervised ComfyUI and its supervisor",
    load: async () => (await import("./stop.ts")).stopCommand,
  },
  {
    name: "panel install",
    summary: "install the gov panel node (restart/switch/status routes) into ComfyUI",
    load: async () => (await import("./panel_install.ts")).panelInstallCommand,
  },
  {
    name: "systemd-unit",
    summary: "print a systemd unit that runs gov run for the workspace",
    load: async () => (await import("./systemd_unit.ts")).systemdUnitCommand,
  },
];
