/**
 * Flags and rendering shared by the env commands: which environment (`--workspace`,
 * `--env`, `--env-dir`, else the cwd), progress lines on stderr, notes.
 *
 * @module
 */
import type { Io } from "../io.ts";
import { styles } from "../io.ts";
import type { GovOptions } from "../../gov/mod.ts";
import type { StepEvent } from "../../uv/driver.ts";
import { type Environment, selectEnvironment } from "../../workspace/environment.ts";
import { UsageError } from "../../errors.ts";
import { checkSelection } from "../inputs.ts";

/** The flags every env command takes to pick its environment. */
export const ENV_FLAGS = {
  workspace: { type: "string" },
  env: { type: "string" },
  "env-dir": { type: "string" },
} as const;

/** Help text for {@linkcode ENV_FLAGS}. */
export const ENV_FLAGS_HELP = [
  "Environment (default: the environment folder holding the working folder):",
  "  --env NAME         environment NAME of the workspace",
  "  --workspace DIR    the workspace (default: $COMFYGIT_HOME, ~/comfygit, or a parent with .metadata/)",
  "  --env-dir DIR      a standalone environment folder",
  "",
  "GOV_LOCK_WAIT=S: wait up to S seconds for another gov holding the environment (default 30).",
].join("\n");

/**
 * The environment a command works on.
 *
 * @example
 * ```ts
 * import { envFromFlags } from "@/cli/env/common.ts";
 * import { type Io } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * const env = envFromFlags({ env: "prod" }, io);
 * ```
 */
export function envFromFlags(
  values: { workspace?: string; env?: string; "env-dir"?: string },
  io: Io,
): Environment {
  checkSelection(values, io);
  return selectEnvironment({
    workspace: values.workspace,
    env: values.env,
    envDir: values["env-dir"],
    cwd: io.cwd(),
    getenv: (n) => io.env(n),
  });
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 1000)}s`;
}

/**
 * Options that render progress and notes on stderr (stdout stays machine-clean) and read
 * the environment through `io`.
 *
 * @example
 * ```ts
 * import { govOptions } from "@/cli/env/common.ts";
 * import { type Io } from "@/cli/io.ts";
 * import { promoteTransaction } from "@/gov/mod.ts";
 * import { type Environment } from "@/workspace/environment.ts";
 * declare const env: Environment;
 * declare const io: Io;
 * declare const txid: string;
 *
 * await promoteTransaction(env, txid, {}, govOptions(io));
 * ```
 */
export function govOptions(io: Io, opts: { quiet?: boolean } = {}): GovOptions {
  const s = styles(io);
  const lockWait = io.env("GOV_LOCK_WAIT");
  // A typo here would silently mean the 30 s default, so it is refused like a bad flag.
  if (lockWait !== undefined && (lockWait.trim() === "" || !(Number(lockWait) >= 0))) {
    throw new UsageError(`GOV_LOCK_WAIT=${lockWait} is not a number of seconds`, {
      hint:
        "set it to the seconds to wait for another gov's environment lock (e.g. 60), or unset it",
    });
  }
  return {
    getenv: (n) => io.env(n),
    onStep: opts.quiet ? undefined : (e: StepEvent) => {
      if (e.state === "start") io.err(s.dim(`  … ${e.step}\n`));
      else if (e.state === "running") io.err(s.dim(`  … ${e.step} (${seconds(e.elapsedMs)})\n`));
      else if (e.state === "done") io.err(s.dim(`  ✓ ${e.step} ${seconds(e.elapsedMs)}\n`));
      else io.err(`  ${s.red("✗")} ${e.step} ${seconds(e.elapsedMs)}\n`);
    },
    onNote: (m) => io.err(`${s.yellow("note:")} ${m}\n`),
  };
}

/**
 * Left-aligned text table.
 *
 * @example
 * ```ts
 * import { table } from "@/cli/env/common.ts";
 * import { type Io } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * io.out(table([["ID", "STATUS"], ["tx-1", "completed"]]));
 * ```
 */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => widths[i] = Math.max(widths[i] ?? 0, c.length));
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join("  "))
    .join("\n") + "\n";
}
