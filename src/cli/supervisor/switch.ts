/**
 * `gov switch <env>`: ask the supervisor to run another environment.
 *
 * @module
 */
import { GovError, RefusedError, UsageError } from "../../errors.ts";
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { type Io, styles } from "../io.ts";
import { abortSwitch, requestSwitch, waitForSwitch } from "../../supervisor/control.ts";
import { readSwitchStatus, type SwitchStatus } from "../../ipc/switch.ts";
import { loadSupervisorSettings } from "../../supervisor/settings.ts";
import { nowSeconds } from "../../ipc/files.ts";
import { requireWaitFor, timeoutMs, WORKSPACE_FLAG, workspaceFor } from "./common.ts";

const HELP = `Usage: gov switch <env> [--workspace DIR] [--wait [--timeout S]] [--json]
       gov switch --abort [--workspace DIR] [--wait] [--json]

Switches the supervised ComfyUI to environment <env>: writes
.metadata/.switch_request.json, which the running supervisor picks up (ComfyUI does not
need to exit 43 itself). The supervisor stops ComfyUI, syncs <env>, starts it and waits for
it to answer; when it does not, it rolls back to the previous environment. Progress is
published in .metadata/.switch_status.json (preparing, syncing, starting, validating,
complete | rolling_back, failed | aborted). When no supervisor runs, one is started in the
background for <env>. Only one switch runs at a time: a concurrent one to another
environment fails with "switch in progress"; one to the same environment joins it (with
--wait, follows it to the end).

Flags:
  -w, --workspace DIR   workspace root (default: COMFYGIT_HOME or discovery from cwd)
      --wait            follow the switch until it is complete, failed or aborted
      --timeout S       with --wait: the longest gov waits for the switch to end, in seconds
                        (default: health timeout + 5 min)
      --abort           abort the switch in progress (the supervisor rolls back), or
                        withdraw a request no supervisor has started yet
      --json            print the request (and with --wait the final status) as JSON

Exit codes: 0 requested or joined (with --wait: complete); 1 another switch in progress,
the switch failed or was aborted; 2 unknown environment, bad usage, or <env> already runs
(nothing to switch).
With --abort: 0 withdrawn or aborting (with --wait: aborted); 2 nothing to abort.
`;

function describe(s: SwitchStatus): string {
  return `${s.state} (${s.progress}%)${s.message ? `: ${s.message}` : ""}`;
}

async function run(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags("switch", args, {
    ...WORKSPACE_FLAG,
    wait: { type: "boolean" },
    timeout: { type: "string" },
    abort: { type: "boolean" },
    json: { type: "boolean" },
  });
  // Arguments first: a usage error must not depend on finding a workspace.
  const [target] = values.abort
    ? positionalArgs("switch --abort", positionals, [])
    : positionalArgs("switch", positionals, ["<env>"]);
  requireWaitFor("switch", values);
  const ws = workspaceFor(values.workspace, io);
  const settings = await loadSupervisorSettings(ws);
  const waitMs = timeoutMs("switch", values.timeout, settings.healthTimeoutS + 300);
  const s = styles(io);
  const progress = (st: SwitchStatus) => {
    if (!values.json) io.err(`  ${describe(st)}\n`);
  };

  if (values.abort) {
    const since = nowSeconds();
    const aborted = await abortSwitch(ws);
    if (aborted.outcome === "withdrawn") {
      if (values.json) {
        printJson(io, { ...aborted, status: await readSwitchStatus(ws.metadataDir) });
      } else {io.err(
          `switch aborted: the request to switch to ${aborted.target_env} was withdrawn\n`,
        );}
      return 0;
    }
    if (!values.wait) {
      if (values.json) printJson(io, aborted);
      else {
        io.err(
          `asked supervisor pid ${aborted.supervisor_pid} to abort the switch to ${aborted.target_env}\n`,
        );
      }
      return 0;
    }
    const final = await waitForSwitch(ws, { since, timeoutMs: waitMs, onUpdate: progress });
    if (values.json) printJson(io, { ...aborted, status: final });
    else io.err(`switch ${final.state}: ${final.message}\n`);
    return final.state === "aborted" ? 0 : 1;
  }

  const result = await requestSwitch(ws, target, { lockTimeoutS: settings.lockTimeoutS });
  if (result.outcome === "already") {
    throw new RefusedError(
      `${target} is already running (supervisor pid ${result.supervisor_pid}); nothing to switch`,
      { hint: "restart it with `gov restart`" },
    );
  }
  if (!values.json) {
    const by = result.supervisor_pid ? ` (supervisor pid ${result.supervisor_pid})` : "";
    io.err(
      result.outcome === "started"
        ? `no supervisor was running: started one (pid ${result.supervisor_pid}) for ${target}\n`
        : result.outcome === "in_progress"
        ? `a switch to ${target} is already in progress${by}\n`
        : `switch ${result.source_env ?? "?"} -> ${target} requested${by}\n`,
    );
  }
  if (!values.wait) {
    if (values.json) printJson(io, result);
    else io.err(`  follow it with \`gov switch ${target} --wait\` or \`gov status\`\n`);
    return 0;
  }
  const final = await waitForSwitch(ws, {
    since: result.since,
    timeoutMs: waitMs,
    onUpdate: progress,
  });
  if (values.json) {
    printJson(io, { ...result, status: final });
    return final.state === "complete" ? 0 : 1;
  }
  if (final.state === "complete") {
    io.err(`${s.green("switched")} to ${target}${final.port ? ` (port ${final.port})` : ""}\n`);
    return 0;
  }
  const back = final.rolled_back_to ? `; rolled back to ${final.rolled_back_to}` : "";
  const err = new GovError(
    `switch to ${target} ${final.state}: ${final.error ?? final.message}${back}`,
    { hint: "see the supervisor's log (.metadata/orchestrator.log for a detached one)" },
  );
  throw err;
}

/** `gov switch`. */
export const switchCommand: Command = {
  name: "switch",
  summary: "switch the supervised ComfyUI to another environment (rolls back on failure)",
  help: HELP,
  run: (args, io) => {
    if (args.length === 0) {
      throw new UsageError("gov switch: missing <env>", { hint: "usage: gov switch <env>" });
    }
    return run(args, io);
  },
};
