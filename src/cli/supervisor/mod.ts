/**
 * Commands of the supervisor group.
 *
 * @module
 */
import type { Command } from "../command.ts";
import { runCommand } from "./run.ts";
import { switchCommand } from "./switch.ts";
import { restartCommand } from "./restart.ts";
import { stopCommand } from "./stop.ts";
import { panelInstallCommand } from "./panel_install.ts";
import { systemdUnitCommand } from "./systemd_unit.ts";

/** The supervisor commands, in the order `gov --help` lists them. */
export const commands: Command[] = [
  runCommand,
  switchCommand,
  restartCommand,
  stopCommand,
  panelInstallCommand,
  systemdUnitCommand,
];
