/**
 * Supervisor settings: built-in defaults, then `<workspace>/gov.toml` `[supervisor]`, then
 * command-line flags.
 *
 * ```toml
 * [supervisor]
 * default_env = "prod"          # used when neither --env nor a remembered environment applies
 * comfyui_args = ["--listen", "0.0.0.0", "--port", "8188"]  # else the environment's [comfyui] args
 * poll_interval_ms = 250        # .cmd polls; longest pause between two health probes
 * health_timeout = 600          # seconds ComfyUI may take to answer (big imports are slow)
 * health_successes = 3          # consecutive good answers before "healthy"
 * grace = 10                    # seconds between SIGTERM and SIGKILL
 * crash_delay = 10              # seconds before restarting after a crash (VRAM must drain)
 * crash_delay_max = 60          # cap of the exponential backoff
 * crash_limit = 3               # crashes within crash_window before gov gives up
 * crash_window = 300            # seconds
 * lock_timeout = 300            # seconds after which an unrefreshed .switch.lock is stale
 *
 * [registry]
 * url = "https://api.comfy.org" # Comfy Registry for `gov node add <id>[@version]`
 * ```
 *
 * The `[registry]` table is read by `src/registry/settings.ts`, which the governance layer
 * imports without importing the supervisor.
 *
 * @module
 */
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { ConfigError } from "../errors.ts";
import { readTextIfExists } from "../fs/atomic.ts";
import { validateName } from "../workspace/names.ts";
import { rejectUnknownKeys } from "../workspace/config.ts";
import type { Workspace } from "../workspace/root.ts";

/** Everything that tunes the supervisor loop. Times are in the unit their name says. */
export interface SupervisorSettings {
  /** Interval of health probes and `.cmd` / switch-request polls. */
  pollIntervalMs: number;
  /** How long a starting ComfyUI may take to become healthy. */
  healthTimeoutS: number;
  /** Consecutive successful probes that make ComfyUI healthy. */
  healthSuccesses: number;
  /** SIGTERM to SIGKILL delay when stopping ComfyUI. */
  graceS: number;
  /** Delay before the first restart after a crash; doubles per further crash. */
  crashDelayS: number;
  /** Cap of the crash delay. */
  crashDelayMaxS: number;
  /** Crashes within `crashWindowS` after which the supervisor gives up. */
  crashLimit: number;
  /** Window in which crashes are counted. */
  crashWindowS: number;
  /** Age after which an unrefreshed switch lock is stale. */
  lockTimeoutS: number;
  /** Environment to run when none is named or remembered. */
  defaultEnv?: string;
  /** ComfyUI arguments replacing the environment's `[comfyui] args`. */
  comfyuiArgs?: string[];
}

/** The built-in defaults. */
export const DEFAULT_SUPERVISOR_SETTINGS: Readonly<SupervisorSettings> = Object.freeze({
  pollIntervalMs: 250,
  healthTimeoutS: 600,
  healthSuccesses: 3,
  graceS: 10,
  crashDelayS: 10,
  crashDelayMaxS: 60,
  crashLimit: 3,
  crashWindowS: 300,
  lockTimeoutS: 300,
});

type NumKey = Exclude<keyof SupervisorSettings, "defaultEnv" | "comfyuiArgs">;

/** `gov.toml` key -> setting, with the bounds each must respect. */
const NUMERIC_KEYS: Record<string, { key: NumKey; min: number; integer?: boolean }> = {
  poll_interval_ms: { key: "pollIntervalMs", min: 10, integer: true },
  health_timeout: { key: "healthTimeoutS", min: 0.1 },
  health_successes: { key: "healthSuccesses", min: 1, integer: true },
  grace: { key: "graceS", min: 0 },
  crash_delay: { key: "crashDelayS", min: 0 },
  crash_delay_max: { key: "crashDelayMaxS", min: 0 },
  crash_limit: { key: "crashLimit", min: 1, integer: true },
  // A window of 0 holds one crash at most: with crash_limit above 1, gov would never give up.
  crash_window: { key: "crashWindowS", min: 1 },
  lock_timeout: { key: "lockTimeoutS", min: 1 },
};

/**
 * Parses the `[supervisor]` table of a `gov.toml` text into settings over `base`. Unknown
 * sections and keys are errors naming the nearest known one (a typo must not silently keep
 * a default), checked the same way as `config.toml`'s.
 *
 * @example
 * ```ts
 * import { parseSupervisorSettings } from "@/supervisor/settings.ts";
 *
 * const s = parseSupervisorSettings("[supervisor]\ngrace = 5\n", "gov.toml");
 * console.log(s.graceS); // 5
 * ```
 */
export function parseSupervisorSettings(
  text: string,
  file: string,
  base: SupervisorSettings = { ...DEFAULT_SUPERVISOR_SETTINGS },
): SupervisorSettings {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(file, "", `is not valid TOML (${(err as Error).message.split("\n")[0]})`);
  }
  // `[registry]` belongs to the registry client (src/registry/settings.ts), which checks its keys.
  rejectUnknownKeys(file, "", doc, ["supervisor", "registry"]);
  const table = doc.supervisor;
  if (table === undefined) return { ...base };
  if (typeof table !== "object" || table === null || Array.isArray(table)) {
    throw new ConfigError(file, "[supervisor]", "a table");
  }
  const known = [...Object.keys(NUMERIC_KEYS), "default_env", "comfyui_args"];
  rejectUnknownKeys(file, "supervisor", table as Record<string, unknown>, known);
  const out: SupervisorSettings = { ...base };
  for (const [k, v] of Object.entries(table as Record<string, unknown>)) {
    const field = `supervisor.${k}`;
    const num = NUMERIC_KEYS[k];
    if (num) {
      if (
        typeof v !== "number" || !Number.isFinite(v) || v < num.min ||
        (num.integer && !Number.isInteger(v))
      ) {
        throw new ConfigError(
          file,
          field,
          `${num.integer ? "an integer" : "a number"} >= ${num.min}`,
        );
      }
      out[num.key] = v;
    } else if (k === "default_env") {
      if (typeof v !== "string") throw new ConfigError(file, field, "an environment name");
      try {
        validateName("environment name", v);
      } catch {
        throw new ConfigError(file, field, "a valid environment name (letters, digits, . _ -)");
      }
      out.defaultEnv = v;
    } else if (k === "comfyui_args") {
      if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
        throw new ConfigError(file, field, "a list of strings");
      }
      out.comfyuiArgs = v as string[];
    }
  }
  return out;
}

/**
 * Loads the settings of a workspace: defaults, overridden by `<root>/gov.toml`
 * `[supervisor]` when that file exists.
 *
 * @example
 * ```ts
 * import { loadSupervisorSettings } from "@/supervisor/settings.ts";
 * import { workspaceAt } from "@/workspace/root.ts";
 *
 * const settings = await loadSupervisorSettings(workspaceAt("/srv/comfy"));
 * ```
 */
export async function loadSupervisorSettings(ws: Workspace): Promise<SupervisorSettings> {
  const file = join(ws.root, "gov.toml");
  const text = await readTextIfExists(file);
  if (text === undefined) return { ...DEFAULT_SUPERVISOR_SETTINGS };
  return parseSupervisorSettings(text, file);
}

/**
 * The delay before restart number `crashes` (1 = first crash) under exponential backoff.
 *
 * @example
 * ```ts
 * import { crashDelayS, DEFAULT_SUPERVISOR_SETTINGS } from "@/supervisor/settings.ts";
 *
 * crashDelayS(DEFAULT_SUPERVISOR_SETTINGS, 1); // 10
 * crashDelayS(DEFAULT_SUPERVISOR_SETTINGS, 2); // 20
 * ```
 */
export function crashDelayS(settings: SupervisorSettings, crashes: number): number {
  const d = settings.crashDelayS * 2 ** Math.max(0, crashes - 1);
  return Math.min(d, Math.max(settings.crashDelayMaxS, settings.crashDelayS));
}
