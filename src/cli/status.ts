/**
 * `gov status`: one look at a host — the workspace's supervisor (is ComfyUI up, which
 * environment, restarts, switch progress) and the governance state of an environment
 * (truth files, prod venv in sync, open transactions, last snapshot).
 *
 * @module
 */
import { ConfigError, UsageError } from "../errors.ts";
import { loadSupervisorSettings } from "../supervisor/settings.ts";
// Not mod.ts: status needs none of the other operations, and loading them doubles its time.
import { type EnvironmentStatus, environmentStatus } from "../gov/read.ts";
import { type SupervisorStatus, supervisorStatus } from "../supervisor/status.ts";
import {
  type Environment,
  EnvironmentSelectionError,
  loadEnvironment,
  selectEnvironment,
  workspaceEnvironment,
} from "../workspace/environment.ts";
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
import { resolve } from "node:path";

const HELP = `Usage: gov status [--workspace DIR] [--env NAME | --env-dir DIR] [--json]

Shows the supervisor of the workspace (pid, environment, ComfyUI pid and port, health,
uptime, restarts, switch progress) and the governance state of one environment
(truth-file hashes, whether .venv-prod is in sync, open transactions, last snapshot).

The environment is --env / --env-dir, else the one the supervisor runs, else the one
whose folder holds the working directory.

What is stale or broken in what is shown is said under "Stale or broken" (and in
"problems" of --json): an unreadable supervisor state or switch file, a supervisor that
died without a word, a switch left half done, an invalid gov.toml, a truth file
(pyproject.toml, uv.lock) that cannot be read. The exit code is 0 all the same: it is
what there is to see.

Flags:
  -w, --workspace DIR  workspace root (default: COMFYGIT_HOME, ~/comfygit, or upward search)
  -e, --env NAME       environment of the workspace to report
      --env-dir DIR    a standalone environment folder to report
      --json           print {"supervisor": ..., "environment": ...} as JSON
`;

/** What `gov status --json` prints. */
export interface HostStatus {
  /** The workspace's supervisor, or null when there is no workspace. */
  supervisor: SupervisorStatus | null;
  /** The selected environment's governance state, or null when none is selected. */
  environment: EnvironmentStatus | null;
  /**
   * What is stale, unknown or broken in what is shown, and why: unreadable supervisor
   * files, a half-done switch, an invalid gov.toml, a truth file that cannot be read.
   */
  problems: string[];
}

/** `gov.toml` problems: the supervisor refuses to start with an invalid one. */
async function settingsProblems(ws: Workspace): Promise<string[]> {
  try {
    await loadSupervisorSettings(ws);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return [`${err.message}; \`gov run\` refuses to start until it is fixed`];
  }
}

function pickEnvironment(
  values: { workspace?: string; env?: string; "env-dir"?: string },
  io: Io,
  ws: Workspace | undefined,
  sup: SupervisorStatus | null,
): Environment | undefined {
  if (values["env-dir"] !== undefined || values.env !== undefined) {
    return selectEnvironment({
      workspace: ws?.root,
      env: values.env,
      envDir: values["env-dir"],
      cwd: io.cwd(),
      getenv: io.env,
    });
  }
  if (ws && sup?.environment && listEnvironments(ws).includes(sup.environment)) {
    return workspaceEnvironment(ws, sup.environment);
  }
  try {
    return selectEnvironment({ workspace: ws?.root, cwd: io.cwd(), getenv: io.env });
  } catch (err) {
    if (err instanceof EnvironmentSelectionError && err.reason === "none") return undefined;
    throw err;
  }
}

async function run(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags("status", args, {
    workspace: { type: "string" },
    env: { type: "string" },
    "env-dir": { type: "string" },
    json: { type: "boolean" },
  });
  positionalArgs("status", positionals, []);
  checkSelection(values, io);
  if (values.env !== undefined && values["env-dir"] !== undefined) {
    throw new UsageError("gov status: --env and --env-dir exclude each other", {
      hint: "pass one of them",
    });
  }
  let ws: Workspace | undefined;
  if (values.workspace !== undefined) {
    ws = resolveWorkspace(values.workspace, { cwd: io.cwd(), env: io.env });
  } else if (values["env-dir"] === undefined) {
    const root = findWorkspaceRoot({ cwd: io.cwd(), env: io.env });
    if (root) ws = workspaceAt(root);
  }
  const supervisor = ws ? await supervisorStatus(ws) : null;
  const env = pickEnvironment(values, io, ws, supervisor) ??
    (values["env-dir"] ? loadEnvironment(resolve(io.cwd(), values["env-dir"])) : undefined);
  if (!ws && !env) {
    throw new UsageError("no gov workspace or environment found here", {
      hint: "pass --workspace DIR, --env-dir DIR, or set COMFYGIT_HOME",
    });
  }
  const environment = env ? await environmentStatus(env) : null;
  const status: HostStatus = {
    supervisor,
    environment,
    problems: [
      ...(supervisor?.problems ?? []),
      ...(ws ? await settingsProblems(ws) : []),
      ...(environment?.truth_error
        ? [`${environment.truth_error}; whether .venv-prod is in sync is unknown`]
        : []),
    ],
  };
  if (values.json) {
    printJson(io, status);
    return 0;
  }
  io.out(formatStatus(status, styles(io)));
  return 0;
}

function ago(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${Math.round(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
}

/**
 * Renders a {@linkcode HostStatus} for a terminal.
 *
 * @example
 * ```ts
 * import { formatStatus, type HostStatus } from "@/cli/status.ts";
 * import { type Io, styles } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * declare const status: HostStatus;
 *
 * io.out(formatStatus(status, styles(io)));
 * ```
 */
export function formatStatus(s: HostStatus, st: Styles): string {
  const lines: string[] = [];
  const sup = s.supervisor;
  if (sup) {
    lines.push(st.bold(`Supervisor  ${sup.workspace}`));
    if (sup.running) {
      // The phase only adds news when ComfyUI is not simply up (backoff, switching, ...).
      const phase = sup.phase && sup.phase !== "running" ? `, ${sup.phase}` : "";
      lines.push(`  state        ${st.green("running")} (pid ${sup.pid}${phase})`);
      lines.push(`  environment  ${sup.environment ?? "-"}`);
      lines.push(
        `  ComfyUI      ${
          sup.child_pid
            ? `pid ${sup.child_pid} on port ${sup.port ?? "?"}, ${
              sup.healthy ? st.green("healthy") : st.yellow("not healthy yet")
            }`
            : st.yellow("not running")
        }`,
      );
      if (sup.uptime_s !== null) lines.push(`  uptime       ${ago(sup.uptime_s)}`);
    } else {
      lines.push(
        `  state        ${st.dim("not running")}${sup.stop_reason ? ` (${sup.stop_reason})` : ""}`,
      );
      if (sup.environment) lines.push(`  last env     ${sup.environment}`);
    }
    lines.push(`  restarts     ${sup.restarts}, crashes ${sup.crashes}`);
    if (sup.last_exit) {
      const e = sup.last_exit;
      const when = ago(Math.max(0, Date.now() / 1000 - e.at));
      lines.push(
        `  last exit    code ${e.code}${
          e.signal ? ` (${e.signal})` : ""
        }: ${e.meaning}, ${when} ago`,
      );
    }
    if (sup.switch.state !== "idle") {
      const sw = sup.switch;
      const err = typeof sw.error === "string" ? `: ${sw.error}` : "";
      lines.push(`  switch       ${sw.state} ${sw.progress}% ${sw.message ?? ""}${err}`.trimEnd());
    }
    if (sup.log_file) lines.push(`  log          ${sup.log_file}`);
  }
  const env = s.environment;
  if (env) {
    if (lines.length) lines.push("");
    lines.push(st.bold(`Environment ${env.name}  ${env.dir}`));
    if (!env.initialised) {
      lines.push(`  ${st.yellow("not initialised")} (run \`gov init\`)`);
    }
    const sync = env.truth_error
      ? st.yellow("unknown")
      : env.prod.in_sync === null
      ? st.dim("host-managed")
      : env.prod.in_sync
      ? st.green("in sync")
      : st.red("out of sync");
    lines.push(
      `  prod venv    ${env.prod.venv}: ${sync}${
        env.prod.reason && env.prod.in_sync !== null ? ` (${env.prod.reason})` : ""
      }`,
    );
    const short = (h: string | null) => h ? h.slice(0, 12) : "missing";
    lines.push(
      `  truth        pyproject ${short(env.truth.pyproject.sha256)}  uv.lock ${
        short(env.truth.lock.sha256)
      }  plugins ${short(env.truth.plugins.sha256)}`,
    );
    lines.push(`  custom nodes ${env.nodes}`);
    lines.push(
      `  transactions ${env.transactions.total} (${
        Object.entries(env.transactions.by_status).map(([k, v]) => `${k} ${v}`).join(", ") ||
        "none"
      })`,
    );
    for (const t of env.open_transactions) {
      lines.push(`    open ${t.txid}  ${t.node_id}  ${t.status}`);
    }
    lines.push(
      `  snapshots    ${env.snapshots}${
        env.last_snapshot ? `, last ${env.last_snapshot.id} (${env.last_snapshot.reason})` : ""
      }`,
    );
    if (env.interrupted) {
      lines.push(
        st.yellow(
          `  interrupted  ${env.interrupted.op} at ${env.interrupted.step} (pid ${env.interrupted.pid}); the next gov command recovers it`,
        ),
      );
    }
    if (env.lock.held) {
      lines.push(`  lock         held by pid ${env.lock.pid} (${env.lock.command})`);
    }
  }
  if (s.problems.length) {
    if (lines.length) lines.push("");
    lines.push(st.bold(st.yellow("Stale or broken")));
    for (const p of s.problems) lines.push(`  ${st.yellow("!")} ${p}`);
  }
  return lines.join("\n") + "\n";
}

/** `gov status`. */
export const statusCommand: Command = {
  name: "status",
  summary: "show the supervisor and an environment's governance state",
  help: HELP,
  run,
};
