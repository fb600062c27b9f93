/**
 * `gov systemd-unit`: print a systemd service unit running `gov run`.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs } from "../command.ts";
import type { Io } from "../io.ts";
import { systemdUnit } from "../../supervisor/systemd.ts";
import { workspaceEnvironment } from "../../workspace/environment.ts";
import { UsageError } from "../../errors.ts";
import { settingsWithFlags, WORKSPACE_FLAG, workspaceFor } from "./common.ts";

const HELP = `Usage: gov systemd-unit [--workspace DIR] [--env NAME] [--user USER] [--grace S]

Prints a systemd service unit that runs \`gov run\` for the workspace: Restart=on-failure
(gov exits non-zero only after giving up on a crashing ComfyUI) except for exit 2 (usage
or configuration errors, which a restart cannot fix), KillMode=mixed (gov stops ComfyUI's
process group itself; systemd SIGKILLs leftovers), TimeoutStopSec = grace + 20 s,
WorkingDirectory and COMFYGIT_HOME set to the workspace; run from source, it also names the
Deno to use (DENO=), since systemd's PATH rarely holds it. Save it, e.g.
  gov systemd-unit --user comfy | sudo tee /etc/systemd/system/comfyui-gov.service

Flags:
  -w, --workspace DIR   workspace root (default: COMFYGIT_HOME or discovery from cwd)
  -e, --env NAME        pass --env NAME to gov run (default: the remembered environment)
      --user USER       User= of the service
      --grace S         the supervisor's grace period (default: gov.toml, else 10)
`;

async function run(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags("systemd-unit", args, {
    ...WORKSPACE_FLAG,
    env: { type: "string" },
    user: { type: "string" },
    grace: { type: "string" },
  });
  positionalArgs("systemd-unit", positionals, []);
  const ws = workspaceFor(values.workspace, io);
  if (values.env !== undefined) workspaceEnvironment(ws, values.env);
  if (values.user !== undefined && !/^[a-z_][a-z0-9_-]*\$?$/i.test(values.user)) {
    throw new UsageError(`gov systemd-unit: invalid --user '${values.user}'`, {
      hint: "pass a user name such as comfy",
    });
  }
  const settings = await settingsWithFlags("systemd-unit", ws, values);
  io.out(systemdUnit({
    workspace: ws.root,
    env: values.env,
    user: values.user,
    graceS: settings.graceS,
  }));
  return 0;
}

/** `gov systemd-unit`. */
export const systemdUnitCommand: Command = {
  name: "systemd-unit",
  summary: "print a systemd unit that runs gov run for the workspace",
  help: HELP,
  run,
};
