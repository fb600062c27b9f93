/**
 * A systemd unit running `gov run` for a workspace. gov exits non-zero only when it gave up
 * on a crashing ComfyUI, so `Restart=on-failure` takes over exactly then; `KillMode=mixed`
 * lets gov stop ComfyUI's process group itself on SIGTERM and still has systemd SIGKILL
 * whatever is left after `TimeoutStopSec`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { selfCommand } from "../process/self.ts";
import { InvalidInputError } from "../errors.ts";

/** Inputs of {@linkcode systemdUnit}. */
export interface UnitOptions {
  /** Workspace root (absolute). */
  workspace: string;
  /** `--env` for `gov run`, when set. */
  env?: string;
  /** `User=`, when set. */
  user?: string;
  /** Supervisor grace period in seconds (TimeoutStopSec adds a margin to it). */
  graceS: number;
  /** Program and leading arguments that start gov (default: this gov). */
  command?: UnitCommand;
}

/** How a unit starts gov. */
export interface UnitCommand {
  command: string;
  args: string[];
  /** Environment the command needs (e.g. `DENO`: systemd's PATH rarely holds ~/.deno/bin). */
  env?: Record<string, string>;
}

/**
 * A value systemd cannot carry in a unit line: a line break or other control character
 * (the line would end there), or a path ending in a space or backslash (stripped, or read
 * as a line continuation). Thrown by {@linkcode systemdUnit}; nothing is written.
 */
export class UnitValueError extends InvalidInputError {
  constructor(what: string, value: string) {
    super(what, value, "systemd cannot express it in a unit file; move or rename it");
    this.name = "UnitValueError";
  }
}

function checkUnitValue(what: string, value: string, wholeLine = false): void {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(value) || (wholeLine && /[ \\]$/.test(value))) {
    throw new UnitValueError(what, JSON.stringify(value).slice(1, -1));
  }
}

/**
 * Quotes one word of a unit setting that systemd splits into words and C-unescapes
 * (`Environment=`, and `ExecStart=` through {@linkcode systemdExecWord}): `%` becomes `%%`
 * (specifiers), and a word with anything but plain path characters is double-quoted with
 * `\\` and `\"` escaped.
 *
 * @example
 * ```ts
 * import { systemdQuote } from "@/supervisor/systemd.ts";
 *
 * systemdQuote("/srv/my comfy"); // "\"/srv/my comfy\""
 * ```
 */
export function systemdQuote(word: string): string {
  checkUnitValue("value", word);
  const escaped = word.replaceAll("%", "%%");
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/**
 * Quotes one word of an `ExecStart=` line: as {@linkcode systemdQuote}, and `$` doubled,
 * since systemd expands `$NAME` and `${NAME}` in command lines (systemd.service(5),
 * "Command lines").
 *
 * @example
 * ```ts
 * import { systemdExecWord } from "@/supervisor/systemd.ts";
 *
 * systemdExecWord("/srv/$comfy"); // "\"/srv/$$comfy\""
 * ```
 */
export function systemdExecWord(word: string): string {
  const quoted = systemdQuote(word);
  return quoted.includes("$") ? quoted.replaceAll("$", "$$$$") : quoted;
}

/**
 * A path for a setting that takes the rest of the line as one path, unquoted
 * (`WorkingDirectory=`): quotes would be part of the path, so only `%` is escaped.
 *
 * @example
 * ```ts
 * import { systemdPath } from "@/supervisor/systemd.ts";
 *
 * systemdPath("/srv/100% comfy"); // "/srv/100%% comfy"
 * ```
 */
export function systemdPath(path: string): string {
  checkUnitValue("workspace path", path, true);
  if (!path.startsWith("/")) throw new UnitValueError("workspace path (not absolute)", path);
  return path.replaceAll("%", "%%");
}

/**
 * The command that starts gov in a unit: `$GOV_BIN` or the compiled binary; from source,
 * `scripts/gov` (absolute), which runs Deno with the project's permission set.
 *
 * @example
 * ```ts
 * import { unitGovCommand } from "@/supervisor/systemd.ts";
 *
 * const { command } = unitGovCommand();
 * ```
 */
export function unitGovCommand(): UnitCommand {
  const self = selfCommand();
  if (self.args.length === 0) return self;
  const script = fileURLToPath(new URL("../../scripts/gov", import.meta.url));
  return { command: script, args: [], env: { DENO: self.command } };
}

/**
 * Renders the unit file text.
 *
 * @example
 * ```ts
 * import { systemdUnit } from "@/supervisor/systemd.ts";
 *
 * const text = systemdUnit({ workspace: "/srv/comfy", env: "prod", graceS: 10 });
 * await Deno.writeTextFile("/etc/systemd/system/comfyui.service", text);
 * ```
 */
export function systemdUnit(opts: UnitOptions): string {
  // First, so a path systemd cannot carry is reported as the workspace path it is.
  const workspacePath = systemdPath(opts.workspace);
  const cmd = opts.command ?? unitGovCommand();
  const exec = [
    cmd.command,
    ...cmd.args,
    "run",
    "--workspace",
    opts.workspace,
    ...(opts.env ? ["--env", opts.env] : []),
  ].map(systemdExecWord).join(" ");
  const stopTimeout = Math.ceil(opts.graceS) + 20;
  const lines = [
    "# Generated by `gov systemd-unit`. Install with:",
    "#   sudo cp this.service /etc/systemd/system/comfyui-gov.service",
    "#   sudo systemctl daemon-reload && sudo systemctl enable --now comfyui-gov",
    "[Unit]",
    `Description=ComfyUI supervised by gov (${workspacePath})`,
    "Wants=network-online.target",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    ...(opts.user ? [`User=${opts.user}`] : []),
    `WorkingDirectory=${workspacePath}`,
    `Environment=${systemdQuote(`COMFYGIT_HOME=${opts.workspace}`)}`,
    "Environment=PYTHONUNBUFFERED=1",
    ...Object.entries(cmd.env ?? {}).map(([k, v]) => `Environment=${systemdQuote(`${k}=${v}`)}`),
    `ExecStart=${exec}`,
    "# gov exits non-zero only after giving up on a crashing ComfyUI; exit 2 is a usage or",
    "# configuration error that restarting cannot fix.",
    "Restart=on-failure",
    "RestartSec=30",
    "RestartPreventExitStatus=2",
    "# SIGTERM goes to gov, which stops ComfyUI's process group within its grace period;",
    "# whatever is left after TimeoutStopSec is SIGKILLed by systemd.",
    "KillMode=mixed",
    "KillSignal=SIGTERM",
    `TimeoutStopSec=${stopTimeout}`,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ];
  return lines.join("\n");
}
