/**
 * Host checks of `gov doctor`: uv, Python, git, disk space, GPU visibility, the systemd
 * unit. Each returns findings and never throws for what it finds.
 *
 * @module
 */
import { type Finding, finding } from "./finding.ts";
import type { DoctorProbes } from "./probes.ts";

/** Oldest uv gov works with (the uv whose behaviour gov's stand-in copies). */
export const MIN_UV_VERSION = "0.12.5";
/** The uv gov's tests pin. */
export const TESTED_UV_VERSION = "0.13.8";

const TIMEOUT_MS = 10_000;

function versionTuple(v: string): number[] {
  return v.split(".").map((x) => parseInt(x, 10) || 0);
}

function compareVersions(a: string, b: string): number {
  const x = versionTuple(a);
  const y = versionTuple(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/**
 * uv: found, and a version gov supports (>= {@link MIN_UV_VERSION}; tested with
 * {@link TESTED_UV_VERSION}).
 *
 * @example
 * ```ts
 * import { checkUv } from "@/doctor/host.ts";
 * import { hostProbes } from "@/doctor/probes.ts";
 *
 * const findings = await checkUv(hostProbes(), "uv");
 * ```
 */
export async function checkUv(
  probes: DoctorProbes,
  uv: string,
): Promise<Finding[]> {
  const r = await probes.run(uv, ["--version"], TIMEOUT_MS);
  if (!r || r.code !== 0) {
    return [finding(
      "uv",
      "error",
      r ? `${uv} --version failed (exit ${r.code})` : `uv not found at ${uv}`,
      `install uv ${TESTED_UV_VERSION} (pip install uv==${TESTED_UV_VERSION}), or set GOV_UV or [tools] uv`,
    )];
  }
  const m = /uv\s+(\d+\.\d+\.\d+)/.exec(r.stdout);
  if (!m) {
    return [finding("uv", "warn", `${uv} printed an unknown version '${r.stdout.trim()}'`)];
  }
  const v = m[1];
  if (compareVersions(v, MIN_UV_VERSION) < 0) {
    return [finding(
      "uv",
      "error",
      `uv ${v} at ${uv} is older than ${MIN_UV_VERSION}, the oldest gov supports`,
      `upgrade: pip install uv==${TESTED_UV_VERSION}`,
    )];
  }
  const [ma, mi] = versionTuple(v);
  const [tma, tmi] = versionTuple(TESTED_UV_VERSION);
  if (ma > tma || (ma === tma && mi > tmi)) {
    return [finding(
      "uv",
      "warn",
      `uv ${v} at ${uv} is newer than gov was tested with (${TESTED_UV_VERSION})`,
      `if gov misbehaves, pin uv ${TESTED_UV_VERSION}`,
    )];
  }
  return [
    finding(
      "uv",
      "ok",
      `uv ${v} at ${uv} (supported: >= ${MIN_UV_VERSION}, tested ${TESTED_UV_VERSION})`,
    ),
  ];
}

/**
 * A program answering `--version`: `python3` (uv can provide Python, so absence is a note)
 * or `git` (node installs from git need it: absence is an error).
 *
 * @example
 * ```ts
 * import { checkTool } from "@/doctor/host.ts";
 * import { hostProbes } from "@/doctor/probes.ts";
 *
 * await checkTool(hostProbes(), "git", "git", true, "apt-get install git");
 * ```
 */
export async function checkTool(
  probes: DoctorProbes,
  name: string,
  program: string,
  required: boolean,
  fix: string,
): Promise<Finding[]> {
  const r = await probes.run(program, ["--version"], TIMEOUT_MS);
  if (!r || r.code !== 0) {
    return [
      finding(
        name,
        required ? "error" : "note",
        `${program} not usable${r ? ` (exit ${r.code})` : " (not found)"}`,
        fix,
      ),
    ];
  }
  const line = (r.stdout.trim() || r.stderr.trim()).split("\n")[0];
  return [finding(name, "ok", line)];
}

/** Free space below this blocks installs (a torch wheel alone is ~2 GiB). */
export const DISK_ERROR_BYTES = 2 * 1024 ** 3;
/** Free space below this is a warning. */
export const DISK_WARN_BYTES = 10 * 1024 ** 3;

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/**
 * Free space in the workspace's file system, from `df -Pk` (POSIX output, 1 KiB blocks).
 *
 * @example
 * ```ts
 * import { checkDisk } from "@/doctor/host.ts";
 * import { hostProbes } from "@/doctor/probes.ts";
 *
 * await checkDisk(hostProbes(), "/srv/comfy");
 * ```
 */
export async function checkDisk(probes: DoctorProbes, path: string): Promise<Finding[]> {
  const r = await probes.run("df", ["-Pk", path], TIMEOUT_MS);
  const cols = r?.code === 0 ? r.stdout.trim().split("\n")[1]?.trim().split(/\s+/) : undefined;
  const avail = cols && cols.length >= 6 ? Number(cols[3]) * 1024 : NaN;
  const total = cols && cols.length >= 6 ? Number(cols[1]) * 1024 : NaN;
  if (!Number.isFinite(avail)) {
    return [finding("disk", "note", `could not read free space of ${path} (df -Pk)`)];
  }
  const msg = `${gib(avail)} free of ${gib(total)} at ${path}`;
  if (avail < DISK_ERROR_BYTES) {
    return [
      finding(
        "disk",
        "error",
        msg,
        `free space: gov needs >= ${
          gib(DISK_ERROR_BYTES)
        } for a candidate venv (remove old snapshots, caches)`,
      ),
    ];
  }
  if (avail < DISK_WARN_BYTES) {
    return [
      finding("disk", "warn", msg, "a transaction builds a full candidate venv: free some space"),
    ];
  }
  return [finding("disk", "ok", msg)];
}

/**
 * GPU visibility through `nvidia-smi -L`; no nvidia-smi is a note (a CPU or non-NVIDIA host).
 *
 * @example
 * ```ts
 * import { checkGpu } from "@/doctor/host.ts";
 * import { hostProbes } from "@/doctor/probes.ts";
 *
 * await checkGpu(hostProbes());
 * ```
 */
export async function checkGpu(probes: DoctorProbes): Promise<Finding[]> {
  const r = await probes.run("nvidia-smi", ["-L"], TIMEOUT_MS);
  if (!r) {
    return [
      finding(
        "gpu",
        "note",
        "nvidia-smi not found: no NVIDIA GPU visible (ComfyUI runs on CPU or another backend)",
      ),
    ];
  }
  const gpus = r.stdout.split("\n").filter((l) => /^GPU \d+:/.test(l.trim()));
  if (r.code !== 0 || gpus.length === 0) {
    const why = (r.stderr.trim() || r.stdout.trim()).split("\n")[0] || `exit ${r.code}`;
    return [
      finding(
        "gpu",
        "warn",
        `nvidia-smi sees no GPU: ${why}`,
        "check the NVIDIA driver (and the container's GPU access)",
      ),
    ];
  }
  return [
    finding(
      "gpu",
      "ok",
      `${gpus.length} GPU${gpus.length > 1 ? "s" : ""}: ${
        gpus.map((g) => g.trim().replace(/\s*\(UUID:.*\)$/, "")).join("; ")
      }`,
    ),
  ];
}

/**
 * The systemd unit running `gov run`: present and active. No systemd (a container, another
 * init) is a note.
 *
 * @example
 * ```ts
 * import { checkSystemd } from "@/doctor/host.ts";
 * import { hostProbes } from "@/doctor/probes.ts";
 *
 * await checkSystemd(hostProbes(), "comfyui-gov.service");
 * ```
 */
export async function checkSystemd(probes: DoctorProbes, unit: string): Promise<Finding[]> {
  const check = `systemd ${unit}`;
  const load = await probes.run(
    "systemctl",
    ["show", "-p", "LoadState", "--value", unit],
    TIMEOUT_MS,
  );
  if (!load || load.code !== 0 || !load.stdout.trim()) {
    return [finding(check, "note", "systemd is not running here: no unit to check")];
  }
  if (load.stdout.trim() === "not-found") {
    return [
      finding(
        check,
        "note",
        `unit ${unit} is not installed`,
        `to run gov at boot: gov systemd-unit | sudo tee /etc/systemd/system/${unit}`,
      ),
    ];
  }
  const active = (await probes.run("systemctl", ["is-active", unit], TIMEOUT_MS))?.stdout.trim() ??
    "unknown";
  if (active === "active") return [finding(check, "ok", `unit ${unit} is active`)];
  if (active === "failed") {
    return [
      finding(
        check,
        "error",
        `unit ${unit} failed`,
        `see journalctl -u ${unit}, then systemctl restart ${unit}`,
      ),
    ];
  }
  return [finding(check, "warn", `unit ${unit} is ${active}`, `systemctl enable --now ${unit}`)];
}
