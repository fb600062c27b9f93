/**
 * Pieces the supervisor commands share: finding the workspace and turning flags into
 * supervisor settings.
 *
 * @module
 */
import { numberFlag } from "../command.ts";
import { UsageError } from "../../errors.ts";
import type { Io } from "../io.ts";
import { workspaceFromFlag } from "../inputs.ts";
import type { Workspace } from "../../workspace/root.ts";
import { loadSupervisorSettings, type SupervisorSettings } from "../../supervisor/settings.ts";

/** Flags every supervisor command takes. */
export const WORKSPACE_FLAG = { workspace: { type: "string" as const } };

/**
 * The workspace named by `--workspace`, else discovered from the cwd/`COMFYGIT_HOME`.
 *
 * @example
 * ```ts
 * import { workspaceFor } from "@/cli/supervisor/common.ts";
 * import { type Io } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * const ws = workspaceFor("/srv/comfy", io);
 * ```
 */
export function workspaceFor(flag: string | undefined, io: Io): Workspace {
  return workspaceFromFlag(flag, io);
}

/** Setting flags of `gov run`, with the setting each overrides and its bounds. */
export const SETTING_FLAGS = {
  "poll-interval": { key: "pollIntervalMs", min: 10, integer: true, unit: "MS" },
  "health-timeout": { key: "healthTimeoutS", min: 0.1, integer: false, unit: "S" },
  "health-successes": { key: "healthSuccesses", min: 1, integer: true, unit: "N" },
  "grace": { key: "graceS", min: 0, integer: false, unit: "S" },
  "crash-delay": { key: "crashDelayS", min: 0, integer: false, unit: "S" },
  "crash-max-delay": { key: "crashDelayMaxS", min: 0, integer: false, unit: "S" },
  "crash-limit": { key: "crashLimit", min: 1, integer: true, unit: "N" },
  "crash-window": { key: "crashWindowS", min: 0, integer: false, unit: "S" },
} as const;

/**
 * Settings of a workspace (`gov.toml`) with the given flags applied over them.
 *
 * @example
 * ```ts
 * import { settingsWithFlags } from "@/cli/supervisor/common.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const ws: Workspace;
 *
 * const settings = await settingsWithFlags("run", ws, { grace: "5" });
 * ```
 */
export async function settingsWithFlags(
  command: string,
  ws: Workspace,
  values: Record<string, unknown>,
): Promise<SupervisorSettings> {
  const settings = await loadSupervisorSettings(ws);
  for (const [flag, spec] of Object.entries(SETTING_FLAGS)) {
    const raw = values[flag];
    if (typeof raw !== "string") continue;
    settings[spec.key] = numberFlag(command, `--${flag}`, raw, settings[spec.key], {
      min: spec.min,
      integer: spec.integer,
    });
  }
  return settings;
}

/**
 * Parses `--timeout S` into milliseconds.
 *
 * @example
 * ```ts
 * import { timeoutMs } from "@/cli/supervisor/common.ts";
 *
 * const ms = timeoutMs("stop", "30", 60); // 30000
 * ```
 */
export function timeoutMs(command: string, raw: unknown, fallbackS: number): number {
  return numberFlag(command, "--timeout", typeof raw === "string" ? raw : undefined, fallbackS, {
    min: 0.1,
  }) * 1000;
}

/**
 * Refuses `--timeout` without `--wait`: without waiting there is nothing to time out, and
 * silently ignoring it would let a script believe it bounded the command.
 *
 * @example
 * ```ts
 * import { requireWaitFor } from "@/cli/supervisor/common.ts";
 *
 * requireWaitFor("stop", { wait: true, timeout: "30" });
 * ```
 */
export function requireWaitFor(command: string, values: { wait?: boolean; timeout?: string }) {
  if (values.timeout !== undefined && !values.wait) {
    throw new UsageError(`gov ${command}: --timeout only applies with --wait`, {
      hint: `add --wait (gov ${command} --wait --timeout ${values.timeout}), or drop --timeout`,
    });
  }
}
