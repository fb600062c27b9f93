/**
 * `gov restart`: ask the running supervisor to restart ComfyUI.
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import type { Io } from "../io.ts";
import { sendSupervisorCommand, waitForRestart } from "../../supervisor/control.ts";
import { readSupervisorState } from "../../supervisor/state.ts";
import { loadSupervisorSettings } from "../../supervisor/settings.ts";
import { requireWaitFor, timeoutMs, WORKSPACE_FLAG, workspaceFor } from "./common.ts";

const HELP = `Usage: gov restart [--workspace DIR] [--wait [--timeout S]] [--json]

Asks the running supervisor (through .metadata/.cmd) to stop ComfyUI, resync its
environment and start it again, like ComfyUI exiting 42. The supervisor acts within one
poll interval (250 ms by default).

Flags:
  -w, --workspace DIR   workspace root (default: COMFYGIT_HOME or discovery from cwd)
      --wait            wait until the new ComfyUI answers
      --timeout S       with --wait: the longest gov waits for the new ComfyUI to answer, in seconds
                        (default: the health timeout)
      --json            print {"supervisor_pid", "child_pid", "port"} as JSON

Exit codes: 0 requested (with --wait: healthy again); 1 it did not come back; 2 bad usage,
or no supervisor runs (start one with gov run).
`;

async function run(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags("restart", args, {
    ...WORKSPACE_FLAG,
    wait: { type: "boolean" },
    timeout: { type: "string" },
    json: { type: "boolean" },
  });
  positionalArgs("restart", positionals, []);
  requireWaitFor("restart", values);
  const ws = workspaceFor(values.workspace, io);
  const settings = await loadSupervisorSettings(ws);
  const waitMs = timeoutMs("restart", values.timeout, settings.healthTimeoutS + 60);
  const before = (await readSupervisorState(ws.metadataDir))?.starts ?? 0;
  const pid = await sendSupervisorCommand(ws, "restart");
  if (!values.wait) {
    if (values.json) printJson(io, { supervisor_pid: pid, requested: "restart" });
    else io.err(`restart requested (supervisor pid ${pid})\n`);
    return 0;
  }
  const r = await waitForRestart(ws, pid, before, waitMs);
  if (values.json) printJson(io, { supervisor_pid: pid, ...r });
  else io.err(`ComfyUI restarted: pid ${r.child_pid}, port ${r.port}\n`);
  return 0;
}

/** `gov restart`. */
export const restartCommand: Command = {
  name: "restart",
  summary: "restart the supervised ComfyUI (resync, start again)",
  help: HELP,
  run,
};
