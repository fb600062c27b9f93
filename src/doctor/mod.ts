/**
 * `gov doctor` as a library: checks a host and a workspace and returns findings, one per
 * check, each with what to fix. Nothing here prints or exits; `blocking` says whether
 * something stops gov from operating (the CLI exits 1 then).
 *
 * @module
 */
import type { Workspace } from "../workspace/root.ts";
import { listEnvironments } from "../workspace/root.ts";
import { locateUv } from "../uv/driver.ts";
import { type Finding, finding } from "./finding.ts";
import {
  checkDisk,
  checkGpu,
  checkSystemd,
  checkTool,
  checkUv,
  TESTED_UV_VERSION,
} from "./host.ts";
import { type DoctorProbes, hostProbes } from "./probes.ts";
import {
  checkBackends,
  type CheckedEnvironment,
  checkEnvironment,
  checkGovToml,
  checkPort,
  checkSupervisor,
  comfyuiPort,
} from "./workspace.ts";

export type { Finding, Level } from "./finding.ts";
export type { DoctorProbes, ProbeRun } from "./probes.ts";
export { hostProbes } from "./probes.ts";
export { MIN_UV_VERSION, TESTED_UV_VERSION } from "./host.ts";

/** The systemd unit `gov systemd-unit` suggests installing. */
export const DEFAULT_UNIT = "comfyui-gov.service";

/** What to check. */
export interface DoctorOptions {
  /** The workspace; `undefined` when none was found (an error finding, host checks still run). */
  workspace?: Workspace;
  /** Check only this environment (default: all of the workspace's). */
  env?: string;
  /** systemd unit name. */
  unit?: string;
  /** Probes of the host (default: the real one). */
  probes?: Partial<DoctorProbes>;
}

/** The doctor's answer. */
export interface DoctorReport {
  findings: Finding[];
  /** Some finding is an error: gov cannot operate until it is fixed. */
  blocking: boolean;
  /** Counts per level. */
  counts: Record<Finding["level"], number>;
}

/**
 * Runs every check and returns the findings in a stable order: host tools, workspace,
 * environments, supervisor, port, disk, GPU, systemd, backends.
 *
 * @example
 * ```ts
 * import { runDoctor } from "@/doctor/mod.ts";
 * import { workspaceAt } from "@/workspace/root.ts";
 *
 * const report = await runDoctor({ workspace: workspaceAt("/srv/comfy") });
 * for (const f of report.findings) console.log(f.level, f.check, f.message);
 * ```
 */
export async function runDoctor(opts: DoctorOptions = {}): Promise<DoctorReport> {
  const probes: DoctorProbes = { ...hostProbes(), ...opts.probes };
  const ws = opts.workspace;
  const findings: Finding[] = [];
  let envNames: string[] = [];
  if (ws) {
    envNames = listEnvironments(ws);
    if (opts.env !== undefined && !envNames.includes(opts.env)) {
      findings.push(finding(
        `env ${opts.env}`,
        "error",
        `no environment '${opts.env}' in ${ws.environmentsDir}`,
        envNames.length ? `pick one of: ${envNames.join(", ")}` : "create it with gov init",
      ));
      envNames = [];
    } else if (opts.env !== undefined) {
      envNames = [opts.env];
    }
  }
  const checked: CheckedEnvironment[] = [];
  const envFindings: Finding[] = [];
  for (const name of envNames) {
    const r = await checkEnvironment(ws!, name, probes);
    envFindings.push(...r.findings);
    if (r.checked) checked.push(r.checked);
  }
  const first = checked[0]?.env;
  try {
    const uvPath = locateUv({
      configured: first?.config.tools.uv,
      baseDir: first?.dir ?? ".",
      getenv: probes.getenv,
    });
    findings.push(...await checkUv(probes, uvPath));
  } catch (err) {
    findings.push(finding(
      "uv",
      "error",
      (err as Error).message.split("\n")[0],
      `install uv ${TESTED_UV_VERSION} (pip install uv==${TESTED_UV_VERSION}), or set GOV_UV or [tools] uv`,
    ));
  }
  findings.push(
    ...await checkTool(
      probes,
      "python",
      "python3",
      false,
      "uv provides Python for gov's venvs; install python3 only for host-managed environments",
    ),
  );
  findings.push(
    ...await checkTool(
      probes,
      "git",
      first?.config.tools.git ?? "git",
      true,
      "install git (apt-get install git): nodes from git URLs need it",
    ),
  );
  if (!ws) {
    findings.push(finding(
      "workspace",
      "error",
      "no gov workspace found",
      "pass --workspace DIR or set COMFYGIT_HOME",
    ));
  } else {
    const toml = await checkGovToml(ws);
    findings.push(finding(
      "workspace",
      envNames.length || opts.env !== undefined ? "ok" : "warn",
      `${ws.root}: ${listEnvironments(ws).length} environment(s)`,
      envNames.length || opts.env !== undefined
        ? undefined
        : `create one: gov init --env-dir ${ws.environmentsDir}/prod`,
    ));
    findings.push(...toml.findings, ...envFindings);
    const sup = await checkSupervisor(ws, probes);
    findings.push(...sup.findings);
    const env = checked.find((c) =>
      c.env.name === (sup.status?.environment ?? toml.settings?.defaultEnv)
    )?.env ??
      first;
    findings.push(
      ...await checkPort(comfyuiPort(sup.status, toml.settings, env), sup.status, probes),
    );
    findings.push(...await checkDisk(probes, ws.root));
  }
  findings.push(...await checkGpu(probes));
  findings.push(...await checkSystemd(probes, opts.unit ?? DEFAULT_UNIT));
  if (ws) findings.push(...await checkBackends(ws, probes));
  const counts = { ok: 0, note: 0, warn: 0, error: 0 };
  for (const f of findings) counts[f.level]++;
  return { findings, blocking: counts.error > 0, counts };
}
