/**
 * `gov stop`: ask the running supervisor to stop ComfyUI and exit.
 *
 * @module
 */
import { GovError } from "../../errors.ts";
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import type { Io } from "../io.ts";
import { sendSupervisorCommand, waitForExit } from "../../supervisor/control.ts";
import { loadSupervisorSettings } from "../../supervisor/settings.ts";
import { requireWaitFor, timeoutMs, WORKSPACE_FLAG, workspaceFor } from "./common.ts";

const HELP = `Usage: gov stop [--workspace DIR] [--wait [--timeout S]] [--json]

Asks the running supervisor (through .metadata/.cmd) to stop ComfyUI's process group
(SIGTERM, then SIGKILL after its grace period) and exit 0. Under systemd, prefer
\`systemctl stop\`: a supervisor that exits 0 is not restarted either way.

Flags:
  -w, --workspace DIR   workspace root (default: COMFYGIT_HOME or discovery from cwd)
      --wait            wait until the supervisor process has exited
      --timeout S       with --wait: the longest gov waits for the supervisor to exit, in seconds
                        (default: grace + 60)
      --json            print {"supervisor_pid", "stopped"} as JSON

Exit codes: 0 requested (with --wait: stopped); 1 it is still running after the timeout;
2 bad usage, or no supervisor runs (nothing to stop).
`;

async function run(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags("stop", args, {
    ...WORKSPACE_FLAG,
    wait: { type: "boolean" },
    timeout: { type: "string" },
    json: { type: "boolean" },
  });
  positionalArgs("stop", positionals, []);
  requireWaitFor("stop", values);
  const ws = workspaceFor(values.workspace, io);
  const settings = await loadSupervisorSettings(ws);
  const waitMs = timeoutMs("stop", values.timeout, settings.graceS + 60);
  const pid = await sendSupervisorCommand(ws, "shutdown");
  if (!values.wait) {
    if (values.json) printJson(io, { supervisor_pid: pid, stopped: false, requested: "shutdown" });
    else io.err(`shutdown requested (supervisor pid ${pid})\n`);
    return 0;
  }
  if (!(await waitForExit(pid, waitMs))) {
    throw new GovError(`the supervisor (pid ${pid}) is still running after ${waitMs / 1000} s`, {
      hint: `send it SIGTERM (kill ${pid}) or check its log`,
    });
  }
  if (values.json) printJson(io, { supervisor_pid: pid, stopped: true });
  else io.err(`supervisor pid ${pid} stopped\n`);
  return 0;
}

/** `gov stop`. */
export const stopCommand: Command = {
  name: "stop",
  summary: "stop the supervised ComfyUI and its supervisor",
  help: HELP,
  run,
};
