/**
 * Start-up of `gov run`: which environment to start, claiming the workspace (the pid file,
 * with pid reuse detected), and what a supervisor that died left behind: its ComfyUI (which
 * holds the port and VRAM), a stale `.cmd`, a switch stuck mid-way, a discarded request.
 *
 * @module
 */
import { join } from "node:path";
import { removeIfExists } from "../fs/atomic.ts";
import { UsageError } from "../errors.ts";
import { signalPid } from "../process/run.ts";
import type { Environment } from "../workspace/environment.ts";
import { listEnvironments, type Workspace } from "../workspace/root.ts";
import { claimOrchestratorPid, readOrchestratorPid } from "../ipc/pid.ts";
import {
  cleanupSwitchRequest,
  isActiveSwitchState,
  peekSwitchRequest,
  readSwitchStatus,
  type SwitchRequest,
  writeSwitchStatus,
} from "../ipc/switch.ts";
import { readStartupState } from "../ipc/startup.ts";
import { clearCommand } from "../ipc/cmd.ts";
import { readSupervisorState, type SupervisorState } from "./state.ts";
import type { SupervisorContext } from "./context.ts";
import { ComfyUIMissingError } from "./child.ts";
import { checkInitialised } from "../gov/mod.ts";
import { exists } from "../fs/atomic.ts";

/** Where the first environment came from. */
export interface StartChoice {
  name: string;
  from: "flag" | "request" | "remembered" | "default" | "only";
  /** The pending switch request the start fulfils. */
  request?: SwitchRequest;
  /** A pending request the start does not fulfil (discarded with a warning). */
  discarded?: SwitchRequest;
}

/**
 * Decides which environment `gov run` starts: `--env`; else a pending switch request
 * (written by `gov switch` when no supervisor ran); else the environment that was active
 * last time (`.startup_state.json`); else `[supervisor] default_env`; else the only
 * environment. Throws a {@linkcode UsageError} listing the choices when none applies.
 *
 * @example
 * ```ts
 * import { workspaceAt } from "../workspace/root.ts";
 * const choice = await chooseStartEnvironment(workspaceAt("/srv/comfy"), {});
 * console.log(choice.name, choice.from);
 * ```
 */
export async function chooseStartEnvironment(
  ws: Workspace,
  opts: { explicit?: string; defaultEnv?: string },
): Promise<StartChoice> {
  const known = listEnvironments(ws);
  const pending = await peekSwitchRequest(ws.metadataDir);
  if (opts.explicit !== undefined) {
    if (pending && pending.target_env === opts.explicit) {
      return { name: opts.explicit, from: "flag", request: pending };
    }
    return { name: opts.explicit, from: "flag", discarded: pending };
  }
  if (pending && known.includes(pending.target_env)) {
    return { name: pending.target_env, from: "request", request: pending };
  }
  const discarded = pending;
  const last = (await readStartupState(ws.metadataDir))?.environment_name;
  if (typeof last === "string" && known.includes(last)) {
    return { name: last, from: "remembered", discarded };
  }
  if (opts.defaultEnv !== undefined) return { name: opts.defaultEnv, from: "default", discarded };
  if (known.length === 1) return { name: known[0], from: "only", discarded };
  throw new UsageError(
    known.length === 0
      ? `no environment to run in ${ws.environmentsDir}`
      : "no environment to run: several exist and none was chosen",
    {
      hint: known.length === 0
        ? `create ${ws.environmentsDir}/<name>/ with a config.toml and ComfyUI/`
        : `pass --env NAME (one of: ${known.join(", ")}), or set [supervisor] default_env in ${
          join(ws.root, "gov.toml")
        }`,
    },
  );
}

/** The workspace claimed: what to start and what the previous supervisor left. */
export interface Claim {
  choice: StartChoice;
  firstEnv: Environment;
  /** Pid of a dead supervisor whose pid file was taken over. */
  previous?: number;
  previousState?: SupervisorState;
}

/**
 * Chooses the environment and claims the workspace's pid file (a live supervisor is
 * refused with `SupervisorRunningError`; a dead one, or a pid reused by another process,
 * is taken over). Nothing is started or cleaned up yet.
 *
 * @example
 * ```ts ignore
 * const claim = await claimWorkspace(ctx);
 * ```
 */
export async function claimWorkspace(ctx: SupervisorContext): Promise<Claim> {
  const { ws, deps } = ctx;
  await Deno.mkdir(ws.metadataDir, { recursive: true });
  const choice = await chooseStartEnvironment(ws, {
    explicit: ctx.opts.env,
    defaultEnv: ctx.settings.defaultEnv,
  });
  const firstEnv = deps.loadEnvironment(ws, choice.name);
  const previousState = await readSupervisorState(ws.metadataDir);
  const stalePid = await staleIdentityPid(ctx, previousState);
  const { previous } = await claimOrchestratorPid(ws.metadataDir, {
    isAlive: (pid) => pid !== stalePid && deps.pidAlive(pid),
  });
  const self = await deps.processInfo(Deno.pid);
  if (self) ctx.state.pid_started_at = Math.round(deps.now() / 1000 - self.elapsedS);
  ctx.emit(
    "supervisor_started",
    `gov supervisor pid ${Deno.pid} for ${ws.root} (environment ${choice.name}, ${
      describeChoice(choice.from)
    })`,
    { pid: Deno.pid, workspace: ws.root, environment: choice.name, from: choice.from },
  );
  if (previous !== undefined) {
    ctx.emit("takeover", `took over from supervisor pid ${previous}, which is no longer running`, {
      previous,
    });
  }
  return { choice, firstEnv, previous, previousState };
}

/**
 * Clears what an earlier supervisor left: its orphaned ComfyUI, a `.cmd` written before the
 * claim, Manager's reboot marker, a discarded switch request. Returns the target of a
 * switch a dead supervisor left mid-way (now `recovering`), unless a pending request
 * explains the active status.
 *
 * @example
 * ```ts ignore
 * const interrupted = await clearLeftovers(ctx, claim);
 * ```
 */
export async function clearLeftovers(
  ctx: SupervisorContext,
  claim: Claim,
): Promise<string | undefined> {
  const { ws, paths } = ctx;
  const { choice, previous, previousState } = claim;
  if (previous !== undefined || previousState?.running) await reapOrphan(ctx, previousState);
  // Only a .cmd written before our claim is a leftover: `gov stop` may already have
  // addressed this supervisor (it found our pid file), e.g. right after `run --detach`.
  const claimedAt = (await Deno.stat(paths.pid).catch(() => undefined))?.mtime;
  if (await clearCommand(ws.metadataDir, { olderThanMs: claimedAt?.getTime() })) {
    ctx.emit("warning", `ignored a ${paths.cmd} left from before this supervisor`);
  }
  await removeIfExists(ctx.rebootMarker);
  // A pending request explains an active status (gov switch started us): not stale.
  const interrupted = choice.request ? undefined : await staleSwitchStatus(ctx);
  if (choice.discarded) {
    await cleanupSwitchRequest(ws.metadataDir);
    ctx.emit(
      "warning",
      `discarded a pending switch request to '${choice.discarded.target_env}': ${
        choice.from === "flag" ? "--env was given" : "that environment does not exist"
      }`,
    );
  }
  return interrupted;
}

/** A pid file naming a live process that is not the supervisor that wrote it (pid reuse). */
async function staleIdentityPid(
  ctx: SupervisorContext,
  prev?: SupervisorState,
): Promise<number | undefined> {
  const { deps } = ctx;
  const pid = await readOrchestratorPid(ctx.ws.metadataDir);
  if (pid === undefined || pid === Deno.pid || !deps.pidAlive(pid)) return undefined;
  if (!prev || prev.pid !== pid || prev.pid_started_at === undefined || !prev.running) {
    return undefined;
  }
  const info = await deps.processInfo(pid);
  if (!info) return undefined;
  const started = deps.now() / 1000 - info.elapsedS;
  return Math.abs(started - prev.pid_started_at) > 5 ? pid : undefined;
}

/** A ComfyUI left behind by a supervisor that died holds the port and VRAM: end it. */
async function reapOrphan(ctx: SupervisorContext, prev?: SupervisorState): Promise<void> {
  const { deps } = ctx;
  const pid = prev?.child_pid;
  if (!prev || pid === undefined || !deps.pidAlive(pid)) return;
  const info = await deps.processInfo(pid);
  if (!info || info.pgid !== pid || !/main\.py/.test(info.args)) return;
  if (prev.child_started_at !== undefined) {
    const started = deps.now() / 1000 - info.elapsedS;
    if (Math.abs(started - prev.child_started_at) > 5) return;
  }
  // A zombie has exited already; only its (init) parent has not collected it yet.
  const running = async () =>
    deps.pidAlive(pid) && !(await deps.processInfo(pid))?.state.startsWith("Z");
  signalPid(-pid, "SIGTERM");
  const end = deps.now() + ctx.settings.graceS * 1000;
  while (await running() && deps.now() < end) await ctx.pause(100);
  const killed = await running();
  // The group may hold more than the leader (ComfyUI's own subprocesses).
  signalPid(-pid, "SIGKILL");
  ctx.emit(
    "orphan_killed",
    `ended ComfyUI pid ${pid} left behind by dead supervisor pid ${prev.pid}${
      killed ? " (SIGKILL)" : ""
    }`,
    { pid, supervisor: prev.pid },
  );
}

/** A switch status stuck mid-way by a dead supervisor is marked recovering, then failed. */
async function staleSwitchStatus(ctx: SupervisorContext): Promise<string | undefined> {
  const s = await readSwitchStatus(ctx.ws.metadataDir);
  if (!isActiveSwitchState(s.state)) return undefined;
  await writeSwitchStatus(ctx.ws.metadataDir, "recovering", {
    target_env: s.target_env,
    source_env: s.source_env,
    message: "the previous supervisor stopped during a switch; recovering",
  });
  return s.target_env ?? "?";
}

function describeChoice(from: StartChoice["from"]): string {
  switch (from) {
    case "flag":
      return "--env";
    case "request":
      return "pending switch request";
    case "remembered":
      return "active last time";
    case "default":
      return "[supervisor] default_env";
    case "only":
      return "the only environment";
  }
}

/**
 * Refuses, before a detached supervisor is started for `env`, what that supervisor would
 * refuse at its first start: no ComfyUI there, or an environment gov manages that was never
 * initialised (or whose truth files are damaged). The caller then gets the same one-line
 * error and exit code as in the foreground, instead of a race between the background
 * supervisor writing its pid file and exiting 2.
 *
 * @example
 * ```ts
 * import { checkStartable } from "@/supervisor/start.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * await checkStartable(loadEnvironment("/srv/comfy/environments/prod"));
 * ```
 */
export async function checkStartable(env: Environment): Promise<void> {
  if (!(await exists(join(env.comfyuiDir, "main.py")))) {
    throw new ComfyUIMissingError(env.comfyuiDir, env.configPath);
  }
  await checkInitialised(env);
}
