/**
 * Workspace checks of `gov doctor`: gov.toml, each environment (config, ComfyUI folder,
 * `.venv-prod` against uv.lock, locks and journals a gov left), the supervisor's state
 * files, ComfyUI's port, and the backends of backends.toml. Governance state is read through
 * `gov/mod.ts` (the same reader as `gov status`), never re-implemented here.
 *
 * @module
 */
import { join } from "node:path";
import { exists } from "../fs/atomic.ts";
import { type EnvironmentStatus, environmentStatus } from "../gov/mod.ts";
import { readOrchestratorPid } from "../ipc/pid.ts";
import { metadataPaths } from "../ipc/files.ts";
import { readSwitchLock } from "../ipc/lock.ts";
import { isActiveSwitchState } from "../ipc/switch.ts";
import { loadRegistrySettings } from "../registry/settings.ts";
import { backendsFile, readBackends } from "../backends/registry.ts";
import { listenTarget } from "../supervisor/health.ts";
import { loadSupervisorSettings, type SupervisorSettings } from "../supervisor/settings.ts";
import { type SupervisorStatus, supervisorStatus } from "../supervisor/status.ts";
import { type Environment, workspaceEnvironment } from "../workspace/environment.ts";
import type { Workspace } from "../workspace/root.ts";
import { type Finding, finding } from "./finding.ts";
import type { DoctorProbes } from "./probes.ts";

function oneLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split("\n")[0];
}

/**
 * gov.toml: valid `[supervisor]` and `[registry]` tables. Returns the settings for the
 * other checks (the defaults when the file is broken).
 *
 * @example
 * ```ts
 * import { checkGovToml } from "@/doctor/workspace.ts";
 * import { workspaceAt } from "@/workspace/root.ts";
 *
 * const { findings } = await checkGovToml(workspaceAt("/srv/comfy"));
 * ```
 */
export async function checkGovToml(
  ws: Workspace,
): Promise<{ findings: Finding[]; settings?: SupervisorSettings }> {
  const file = join(ws.root, "gov.toml");
  const findings: Finding[] = [];
  let settings: SupervisorSettings | undefined;
  try {
    settings = await loadSupervisorSettings(ws);
    const reg = await loadRegistrySettings(ws.root);
    findings.push(finding(
      "gov.toml",
      "ok",
      `${(await exists(file)) ? file : "no gov.toml (defaults)"}; registry ${reg.url}`,
    ));
  } catch (err) {
    findings.push(finding("gov.toml", "error", oneLine(err), `fix ${file} by hand`));
  }
  return { findings, settings };
}

/** An environment that loaded, with its governance state when that could be read. */
export interface CheckedEnvironment {
  env: Environment;
  status?: EnvironmentStatus;
}

/**
 * One environment: its config, ComfyUI folder with main.py, `.venv-prod` matching uv.lock,
 * the lock and any interrupted operation, open transactions. Reading the state recovers
 * what a killed gov left when nobody holds the lock, as every gov command does; the
 * recovery is reported as a note.
 *
 * @example
 * ```ts
 * import { checkEnvironment } from "@/doctor/workspace.ts";
 * import { hostProbes } from "@/doctor/probes.ts";
 * import { workspaceAt } from "@/workspace/root.ts";
 *
 * const { findings } = await checkEnvironment(workspaceAt("/srv/comfy"), "prod", hostProbes());
 * ```
 */
export async function checkEnvironment(
  ws: Workspace,
  name: string,
  probes: DoctorProbes,
): Promise<{ findings: Finding[]; checked?: CheckedEnvironment }> {
  const c = `env ${name}`;
  const out: Finding[] = [];
  let env: Environment;
  try {
    env = workspaceEnvironment(ws, name);
  } catch (err) {
    out.push(finding(`${c}: config`, "error", oneLine(err), "fix the environment's config.toml"));
    return { findings: out };
  }
  out.push(finding(`${c}: config`, "ok", `${env.configPath} valid`));
  const mainPy = join(env.comfyuiDir, "main.py");
  if (await exists(mainPy)) {
    out.push(finding(`${c}: comfyui`, "ok", `ComfyUI at ${env.comfyuiDir}`));
  } else {
    out.push(finding(
      `${c}: comfyui`,
      "error",
      `no ComfyUI at ${env.comfyuiDir} (${mainPy} missing)`,
      `clone ComfyUI there, or set [paths] comfyui_dir in ${env.configPath}`,
    ));
  }
  const notes: string[] = [];
  let st: EnvironmentStatus;
  try {
    st = await environmentStatus(env, { getenv: probes.getenv, onNote: (m) => notes.push(m) });
  } catch (err) {
    out.push(finding(`${c}: state`, "error", oneLine(err), (err as { hint?: string }).hint));
    return { findings: out, checked: { env } };
  }
  for (const n of notes) out.push(finding(`${c}: recovery`, "note", n));
  if (!st.initialised) {
    out.push(finding(
      `${c}: venv`,
      "warn",
      "not initialised (no pyproject.toml/uv.lock)",
      `gov init --env ${name}`,
    ));
  } else if (st.prod.in_sync === null) {
    out.push(finding(`${c}: venv`, "ok", st.prod.reason));
  } else if (st.prod.in_sync) {
    out.push(finding(`${c}: venv`, "ok", `${st.prod.venv} matches uv.lock`));
  } else {
    out.push(finding(
      `${c}: venv`,
      "error",
      `${st.prod.venv} does not match uv.lock: ${st.prod.reason}`,
      `gov run syncs it at start; or restore a snapshot: gov rollback --env ${name}`,
    ));
  }
  out.push(...lockFindings(c, st, probes));
  if (st.open_transactions.length) {
    const list = st.open_transactions.map((t) => `${t.txid} (${t.node_id}, ${t.status})`);
    out.push(finding(
      `${c}: transactions`,
      "note",
      `open: ${list.join(", ")}`,
      `promote or abort them: gov tx list --env ${name}`,
    ));
  }
  return { findings: out, checked: { env, status: st } };
}

function lockFindings(c: string, st: EnvironmentStatus, probes: DoctorProbes): Finding[] {
  const out: Finding[] = [];
  const liveHolder = st.lock.held && st.lock.pid !== null && probes.pidAlive(st.lock.pid);
  if (st.lock.held && st.lock.pid !== null) {
    out.push(
      liveHolder
        ? finding(
          `${c}: lock`,
          "note",
          `held by live pid ${st.lock.pid} (gov ${st.lock.command ?? "?"})`,
        )
        : finding(
          `${c}: lock`,
          "warn",
          `left by pid ${st.lock.pid} (gov ${st.lock.command ?? "?"}), which is dead`,
          "the next gov command on this environment takes it over; nothing to delete",
        ),
    );
  }
  if (st.interrupted) {
    const j = st.interrupted;
    out.push(
      probes.pidAlive(j.pid)
        ? finding(
          `${c}: journal`,
          "note",
          `${j.op} in progress (step ${j.step}) by live pid ${j.pid}`,
        )
        : finding(
          `${c}: journal`,
          "error",
          `${j.op} interrupted at step ${j.step} by pid ${j.pid} (dead) and not recovered`,
          `run gov status --env ${
            c.slice(4)
          } to recover it; if that fails, see the journal in state/`,
        ),
    );
  }
  if (!st.lock.held && !st.interrupted) {
    out.push(finding(`${c}: lock`, "ok", "no lock or journal left"));
  }
  return out;
}

/**
 * The supervisor's state files: a running supervisor, a stale pid file, a switch lock left
 * by a dead process, a switch that claims to run while no supervisor does.
 *
 * @example
 * ```ts
 * import { checkSupervisor } from "@/doctor/workspace.ts";
 * import { hostProbes } from "@/doctor/probes.ts";
 * import { workspaceAt } from "@/workspace/root.ts";
 *
 * const { findings } = await checkSupervisor(workspaceAt("/srv/comfy"), hostProbes());
 * ```
 */
export async function checkSupervisor(
  ws: Workspace,
  probes: DoctorProbes,
): Promise<{ findings: Finding[]; status?: SupervisorStatus }> {
  const out: Finding[] = [];
  let sup: SupervisorStatus;
  try {
    sup = await supervisorStatus(ws);
  } catch (err) {
    out.push(
      finding(
        "supervisor",
        "error",
        `state files unreadable: ${oneLine(err)}`,
        `fix or remove the file named, under ${ws.metadataDir}`,
      ),
    );
    return { findings: out };
  }
  if (sup.running) {
    out.push(finding(
      "supervisor",
      "ok",
      `running (pid ${sup.pid}, env ${sup.environment ?? "?"}, ComfyUI ${
        sup.child_pid ? `pid ${sup.child_pid}` : "not started"
      }, ${sup.healthy ? "healthy" : `phase ${sup.phase ?? "?"}`})`,
    ));
  } else {
    const pid = await readOrchestratorPid(ws.metadataDir);
    if (pid !== undefined && !probes.pidAlive(pid)) {
      out.push(finding(
        "supervisor",
        "warn",
        `not running, but ${metadataPaths(ws.metadataDir).pid} names dead pid ${pid}`,
        "gov run clears it on start; nothing else to do",
      ));
    } else {
      out.push(finding(
        "supervisor",
        "note",
        `not running${sup.stop_reason ? ` (last stop: ${sup.stop_reason})` : ""}`,
        "start it with gov run (or its systemd unit)",
      ));
    }
    if (isActiveSwitchState(sup.switch.state)) {
      out.push(finding(
        "supervisor: switch",
        "warn",
        `a switch to ${
          sup.switch.target_env ?? "?"
        } says '${sup.switch.state}' but no supervisor runs`,
        "the next gov run marks it failed; gov switch again after",
      ));
    }
  }
  const lock = await readSwitchLock(ws.metadataDir, { isAlive: probes.pidAlive });
  if (lock?.stale) {
    out.push(finding(
      "supervisor: switch lock",
      "warn",
      `stale ${metadataPaths(ws.metadataDir).lock} (pid ${lock.pid ?? "?"}, ${
        Math.round(lock.ageS)
      } s old)`,
      "the next switch replaces it; nothing to delete",
    ));
  } else if (lock) {
    out.push(finding("supervisor: switch lock", "note", `held by live pid ${lock.pid ?? "?"}`));
  }
  return { findings: out, status: sup };
}

/**
 * ComfyUI's port: in use by the supervised ComfyUI, free, or held by another process (named
 * by pid and command line when they can be read).
 *
 * @example
 * ```ts
 * import { checkPort } from "@/doctor/workspace.ts";
 * import { hostProbes } from "@/doctor/probes.ts";
 *
 * await checkPort(8188, undefined, hostProbes());
 * ```
 */
export async function checkPort(
  port: number,
  sup: SupervisorStatus | undefined,
  probes: DoctorProbes,
): Promise<Finding[]> {
  const c = `port ${port}`;
  if (!(await probes.portOpen(port))) return [finding(c, "ok", "free")];
  const pids = await probes.portListeners(port) ?? [];
  if (sup?.running && sup.child_pid !== null && pids.includes(sup.child_pid)) {
    return [finding(c, "ok", `held by the supervised ComfyUI (pid ${sup.child_pid})`)];
  }
  const who = [];
  for (const pid of pids) who.push(`pid ${pid} (${(await probes.processCommand(pid)) ?? "?"})`);
  const holder = who.length ? who.join(", ") : "a process gov cannot name (another user's?)";
  if (sup?.running) {
    return [
      finding(
        c,
        "warn",
        `held by ${holder}, not by the supervised ComfyUI`,
        "check that this is the ComfyUI gov runs",
      ),
    ];
  }
  return [finding(
    c,
    "error",
    `held by ${holder}: gov run cannot start ComfyUI there`,
    "stop that process, or choose another --port in [comfyui] args",
  )];
}

/**
 * Port ComfyUI listens on: the running supervisor's, else from gov.toml's or the
 * environment's ComfyUI arguments, else ComfyUI's default.
 */
export function comfyuiPort(
  sup: SupervisorStatus | undefined,
  settings: SupervisorSettings | undefined,
  env: Environment | undefined,
): number {
  if (sup?.running && sup.port) return sup.port;
  return listenTarget(settings?.comfyuiArgs ?? env?.config.comfyui.args ?? []).port;
}

/**
 * backends.toml, when the workspace has one: valid, and each backend answering
 * `GET /system_stats` within a short timeout.
 *
 * @example
 * ```ts
 * import { checkBackends } from "@/doctor/workspace.ts";
 * import { hostProbes } from "@/doctor/probes.ts";
 * import { workspaceAt } from "@/workspace/root.ts";
 *
 * await checkBackends(workspaceAt("/srv/comfy"), hostProbes());
 * ```
 */
export async function checkBackends(
  ws: Workspace,
  probes: DoctorProbes,
  timeoutMs = 3000,
): Promise<Finding[]> {
  const file = backendsFile(ws);
  if (!(await exists(file))) return [];
  let backends;
  try {
    backends = await readBackends(ws);
  } catch (err) {
    return [finding("backends", "error", oneLine(err), `fix ${file} by hand`)];
  }
  const out = [finding("backends", "ok", `${file}: ${backends.length} backend(s)`)];
  const answers = await Promise.all(backends.map(async (b): Promise<Finding> => {
    const url = `${b.tls ? "https" : "http"}://${b.host}:${b.port}/system_stats`;
    const c = `backend ${b.id}`;
    try {
      const res = await probes.fetch(url, {
        headers: b.token ? { authorization: `Bearer ${b.token}` } : {},
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body?.cancel();
      if (res.ok) return finding(c, "ok", `${url} answers`);
      const fix = "check the backend's ComfyUI and its token";
      return finding(c, "warn", `${url} answered HTTP ${res.status}`, fix);
    } catch (err) {
      const fix = `start it, or gov backend remove ${b.id}`;
      return finding(c, "warn", `${url} unreachable: ${oneLine(err)}`, fix);
    }
  }));
  return [...out, ...answers];
}
