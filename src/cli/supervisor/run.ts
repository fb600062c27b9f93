/**
 * `gov run`: supervise ComfyUI in the foreground, or start a detached supervisor.
 *
 * @module
 */
import { type GovError, UsageError } from "../../errors.ts";
import { type Command, numberFlag, parseFlags, printJson } from "../command.ts";
import type { Io } from "../io.ts";
import { formatEvent, type SupervisorEvent } from "../../supervisor/events.ts";
import { chooseStartEnvironment, Supervisor } from "../../supervisor/supervisor.ts";
import { runningSupervisorPid } from "../../supervisor/status.ts";
import { SupervisorRunningError } from "../../ipc/pid.ts";
import { metadataPaths } from "../../ipc/files.ts";
import { workspaceEnvironment } from "../../workspace/environment.ts";
import { startDetachedSupervisor } from "../../supervisor/control.ts";
import { checkStartable } from "../../supervisor/start.ts";
import { validateName } from "../../workspace/names.ts";
import { SETTING_FLAGS, settingsWithFlags, WORKSPACE_FLAG, workspaceFor } from "./common.ts";

const settingFlagOptions = Object.fromEntries(
  Object.keys(SETTING_FLAGS).map((k) => [k, { type: "string" as const }]),
) as Record<keyof typeof SETTING_FLAGS, { type: "string" }>;

const OPTIONS = {
  ...WORKSPACE_FLAG,
  env: { type: "string" as const },
  detach: { type: "boolean" as const },
  json: { type: "boolean" as const },
  "log-file": { type: "string" as const },
  ...settingFlagOptions,
};

const HELP = `Usage: gov run [--workspace DIR] [--env NAME] [--detach] [flags] [-- <ComfyUI args>]

Starts ComfyUI of an environment and keeps it alive. ComfyUI's exit code decides what
happens next: 42 resync and restart, 43 switch to the environment in
.metadata/.switch_request.json (rolling back when the target does not come up), 0 stop
(restart instead when ComfyUI-Manager's reboot marker exists), anything else is a crash:
restart after --crash-delay (doubling up to --crash-max-delay), and give up with ComfyUI's
exit code after --crash-limit crashes within --crash-window, so systemd can take over.
Restart requests (42, Manager) from a ComfyUI that never answered count as one crash per
--crash-limit of them, so a node asking for a restart on every boot cannot loop forever.
\`gov restart\`, \`gov stop\` and \`gov switch\` control a running supervisor; SIGTERM, SIGINT
and SIGHUP stop ComfyUI's whole process group (SIGKILL after --grace, or at once on a second
signal, e.g. Ctrl-C twice) and exit 0. Should gov
itself be killed (SIGKILL, OOM), a small guard process ends ComfyUI's group the same way, so
no ComfyUI is left holding the port and VRAM.

The environment is --env, else a pending \`gov switch\` request, else the one that ran
last, else [supervisor] default_env in gov.toml, else the only one. ComfyUI arguments are
those after --, else [supervisor] comfyui_args, else the environment's [comfyui] args.
Defaults of the flags below come from gov.toml [supervisor].

Flags:
  -w, --workspace DIR        workspace root (default: COMFYGIT_HOME or discovery from cwd)
  -e, --env NAME             environment to start
  -d, --detach               run in the background (new session, stdin closed, output
                             appended to .metadata/orchestrator.log, rotated like
                             --log-file); prints its pid
      --json                 with --detach: print {"pid", "log_file", "workspace"}
      --log-file FILE        append events and ComfyUI output to FILE instead of the terminal
                             (past 32 MiB it moves to FILE.1 and a new FILE starts)
      --poll-interval MS     health and .cmd poll interval (default 250)
      --health-timeout S     time ComfyUI may take to answer (default 600)
      --health-successes N   consecutive good answers needed (default 3)
      --grace S              SIGTERM to SIGKILL delay (default 10)
      --crash-delay S        delay before the first crash restart (default 10)
      --crash-max-delay S    backoff cap (default 60)
      --crash-limit N        crashes within the window before giving up (default 3)
      --crash-window S       crash counting window (default 300)

Exit codes: 0 stopped cleanly; ComfyUI's exit code after giving up on crashes; 1 another
supervisor runs this workspace; 2 bad usage or configuration (also when the first start
finds no ComfyUI main.py or no Python to run it: retrying would not help).
`;

function splitDashDash(args: string[]): { flags: string[]; comfy?: string[] } {
  const i = args.indexOf("--");
  return i === -1 ? { flags: args } : { flags: args.slice(0, i), comfy: args.slice(i + 1) };
}

/** Size at which the log file is rotated (GOV_LOG_MAX_BYTES overrides). */
const LOG_MAX_BYTES = 32 * 1024 * 1024;

/**
 * A line sink appending to a file (events and ComfyUI output of a detached supervisor). A
 * supervisor runs for weeks and ComfyUI is chatty: past `maxBytes` the file becomes
 * `<file>.1` (replacing the previous one) and a fresh file is started.
 */
function fileSink(path: string, maxBytes: number): { write(line: string): void; close(): void } {
  const open = () => {
    try {
      return Deno.openSync(path, { append: true, create: true });
    } catch (err) {
      throw new UsageError(`cannot open --log-file ${path}: ${(err as Error).message}`, {
        hint: "pass a writable file",
      });
    }
  };
  let file = open();
  let size = file.statSync().size;
  const enc = new TextEncoder();
  const append = (data: Uint8Array) => {
    let off = 0;
    while (off < data.length) off += file.writeSync(data.subarray(off));
    size += data.length;
  };
  return {
    write(line: string) {
      const data = enc.encode(line.endsWith("\n") ? line : line + "\n");
      try {
        if (size > 0 && size + data.length > maxBytes) {
          file.close();
          try {
            Deno.renameSync(path, `${path}.1`);
          } finally {
            file = open();
          }
          size = 0;
          append(enc.encode(`${new Date().toISOString()} log rotated; earlier lines: ${path}.1\n`));
        }
        append(data);
      } catch {
        // A full disk or a failed rotation must not stop supervision.
      }
    },
    close: () => file.close(),
  };
}

async function run(args: string[], io: Io): Promise<number> {
  const { flags, comfy } = splitDashDash(args);
  const { values, positionals } = parseFlags("run", flags, OPTIONS);
  if (positionals.length) {
    throw new UsageError(`gov run: unexpected argument '${positionals[0]}'`, {
      hint: "ComfyUI arguments go after --, e.g. `gov run -- --port 8190`",
    });
  }
  if (values.env !== undefined) validateName("environment name", values.env);
  const ws = workspaceFor(values.workspace, io);
  const settings = await settingsWithFlags("run", ws, values);

  if (values.detach) {
    if (values["log-file"] !== undefined) {
      throw new UsageError("gov run: --detach always logs to .metadata/orchestrator.log", {
        hint: "drop --log-file",
      });
    }
    // Refuse here what the background supervisor would refuse, so the error is the same
    // one line with the same exit code as in the foreground, not a log excerpt.
    const running = await runningSupervisorPid(ws);
    if (running) throw new SupervisorRunningError(metadataPaths(ws.metadataDir).pid, running);
    const choice = await chooseStartEnvironment(ws, {
      explicit: values.env,
      defaultEnv: settings.defaultEnv,
    });
    await checkStartable(workspaceEnvironment(ws, choice.name));
    const pass: string[] = [];
    if (values.env !== undefined) pass.push("--env", values.env);
    for (const flag of Object.keys(SETTING_FLAGS)) {
      const v = (values as Record<string, unknown>)[flag];
      if (typeof v === "string") pass.push(`--${flag}`, v);
    }
    if (comfy) pass.push("--", ...comfy);
    const { pid, logFile } = await startDetachedSupervisor(ws, pass);
    if (values.json) printJson(io, { pid, log_file: logFile, workspace: ws.root });
    else {
      io.out(`${pid}\n`);
      io.err(`gov supervisor running in the background (pid ${pid}); log: ${logFile}\n`);
    }
    return 0;
  }
  if (values.json) {
    throw new UsageError("gov run: --json only applies to --detach", {
      hint: "events are printed one per line on stderr",
    });
  }

  const maxBytes = numberFlag(
    "run",
    "GOV_LOG_MAX_BYTES",
    io.env("GOV_LOG_MAX_BYTES"),
    LOG_MAX_BYTES,
    {
      min: 1024,
      integer: true,
    },
  );
  const sink = values["log-file"] !== undefined
    ? fileSink(values["log-file"], maxBytes)
    : undefined;
  const onEvent = (e: SupervisorEvent) => {
    const line = formatEvent(e);
    if (sink) sink.write(line);
    else io.err(line + "\n");
  };
  const supervisor = new Supervisor({
    workspace: ws,
    env: values.env,
    comfyuiArgs: comfy,
    settings,
    onEvent,
    childOutput: sink ? (line) => sink.write(line) : undefined,
    logFile: values["log-file"],
  });
  const handlers: [Deno.Signal, () => void][] = (["SIGTERM", "SIGINT", "SIGHUP"] as const).map(
    (sig) => [sig, () => supervisor.stop(`received ${sig}`)],
  );
  for (const [sig, h] of handlers) Deno.addSignalListener(sig, h);
  try {
    const result = await supervisor.run();
    return result.exitCode;
  } catch (err) {
    if (sink) {
      const e = err as GovError;
      sink.write(`${new Date().toISOString()} error ${e?.message ?? e}`);
      if (e?.hint) sink.write(`  ${e.hint}`);
    }
    throw err;
  } finally {
    for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
    sink?.close();
  }
}

/** `gov run`. */
export const runCommand: Command = {
  name: "run",
  summary: "run ComfyUI under the supervisor (restart on 42, switch on 43, crash backoff)",
  help: HELP,
  run,
};
