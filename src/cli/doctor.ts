/**
 * `gov doctor`: checks the host and the workspace and prints one line per check, with what
 * to fix. The checks live in `src/doctor/`; this file parses and prints.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { type DoctorReport, type Finding, runDoctor } from "../doctor/mod.ts";
import {
  findWorkspaceRoot,
  listEnvironments,
  resolveWorkspace,
  type Workspace,
  workspaceAt,
} from "../workspace/root.ts";
import { type Command, parseFlags, positionalArgs, printJson } from "./command.ts";
import { type Io, type Styles, styles } from "./io.ts";
import { checkSelection } from "./inputs.ts";

const HELP = `Usage: gov doctor [--workspace DIR] [--env NAME] [--unit NAME] [--json]

Checks a host and says what to fix, one line per check: uv (found, version), python, git;
gov.toml; each environment (config, ComfyUI folder with main.py, .venv-prod matching uv.lock,
locks and journals a gov left, open transactions); the supervisor's state files; ComfyUI's
port; disk space; GPU visibility (nvidia-smi); the systemd unit; backends.toml and each
backend's reachability.

Levels: ok, note (nothing to do), warn (fix soon), error (blocks operation).
Exit codes: 0 nothing blocks, 1 some check is an error, 2 usage.

Reading an environment recovers what a killed gov left when nobody holds its lock, as
every gov command does; the recovery is listed as a note.

Flags:
  -w, --workspace DIR  workspace root (default: COMFYGIT_HOME, ~/comfygit, or upward search)
  -e, --env NAME       check only this environment (default: all)
      --unit NAME      systemd unit to check (default comfyui-gov.service)
      --json           print {"blocking", "counts", "findings": [{check, level, message, fix}]}
`;

/**
 * Renders a doctor report, one line per finding and its fix indented below.
 *
 * @example
 * ```ts
 * import { formatDoctor } from "@/cli/doctor.ts";
 * import { type Io, styles } from "@/cli/io.ts";
 * import { type DoctorReport } from "@/doctor/mod.ts";
 * declare const io: Io;
 * declare const report: DoctorReport;
 *
 * io.out(formatDoctor(report, styles(io)));
 * ```
 */
export function formatDoctor(report: DoctorReport, st: Styles): string {
  const mark: Record<Finding["level"], string> = {
    ok: st.green("ok   "),
    note: st.dim("note "),
    warn: st.yellow("warn "),
    error: st.red("error"),
  };
  const width = Math.min(32, Math.max(...report.findings.map((f) => f.check.length)));
  const lines = report.findings.map((f) => {
    const line = `${mark[f.level]} ${f.check.padEnd(width)}  ${f.message}`;
    return f.fix && f.level !== "ok"
      ? `${line}\n${" ".repeat(width + 8)}${st.dim("→ " + f.fix)}`
      : line;
  });
  const c = report.counts;
  lines.push(
    "",
    report.blocking
      ? st.red(`${c.error} error(s) block operation; ${c.warn} warning(s)`)
      : `nothing blocks operation; ${c.warn} warning(s), ${c.note} note(s)`,
  );
  return lines.join("\n") + "\n";
}

async function run(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags("doctor", args, {
    workspace: { type: "string", short: "w" },
    env: { type: "string", short: "e" },
    unit: { type: "string" },
    json: { type: "boolean" },
  });
  positionalArgs("doctor", positionals, []);
  // A file for --workspace, or a COMFYGIT_HOME that names no folder, is bad input like on
  // every other command, not a workspace to diagnose (or silently replace by the cwd's).
  checkSelection(values, io);
  let ws: Workspace | undefined;
  if (values.workspace !== undefined) {
    ws = resolveWorkspace(values.workspace, { cwd: io.cwd(), env: io.env });
  } else {
    const root = findWorkspaceRoot({ cwd: io.cwd(), env: io.env });
    if (root) ws = workspaceAt(root);
  }
  // An environment that is not there is a mistyped name (exit 2), not a finding about the host.
  if (values.env !== undefined && ws && !listEnvironments(ws).includes(values.env)) {
    throw new UsageError(`gov doctor: no environment '${values.env}' in ${ws.environmentsDir}`, {
      hint: `pass --env NAME, one of: ${listEnvironments(ws).join(", ") || "none yet"}`,
    });
  }
  const report = await runDoctor({
    workspace: ws,
    env: values.env,
    unit: values.unit,
    probes: { getenv: io.env },
  });
  if (values.json) printJson(io, report);
  else io.out(formatDoctor(report, styles(io)));
  return report.blocking ? 1 : 0;
}

/** `gov doctor`. */
export const doctorCommand: Command = {
  name: "doctor",
  summary: "check the host and workspace, and say what to fix",
  help: HELP,
  run,
};
