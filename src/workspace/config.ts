/**
 * An environment's `config.toml`: where its ComfyUI and interpreter live, which tools gov
 * drives, and the transaction and rollback policy. Every key is optional; every wrong type
 * is an error that names the file, the key and what is expected.
 *
 * ```toml
 * [paths]
 * comfyui_dir = "ComfyUI"          # relative to the environment folder, or absolute
 * # python = "/opt/python/bin/python3"  # a host-managed interpreter: gov never syncs it
 *
 * [tools]
 * uv = "uv"                        # or an absolute path; GOV_UV overrides
 * git = "git"
 *
 * [comfyui]
 * args = ["--listen", "127.0.0.1", "--port", "8188"]
 *
 * [tx]
 * timeout = 120                    # seconds a candidate ComfyUI may run
 * smoke_test_cmd = ["python", "-c", "import sys; print(sys.version)"]
 * core_packages = ["opencv-python"]  # added to torch, torchvision, torchaudio, xformers, numpy
 *
 * [rollback]
 * snapshot_retention = 50
 * ```
 *
 * @module
 */
import { parse as parseToml } from "smol-toml";
import { ConfigError } from "../errors.ts";

/** Parsed and validated `config.toml`. */
export interface EnvironmentConfig {
  paths: { comfyui_dir?: string; python?: string };
  tools: { uv?: string; git?: string };
  comfyui: { args: string[] };
  tx: { timeout: number; smoke_test_cmd?: string[]; core_packages: string[] };
  rollback: { snapshot_retention: number };
  /** The whole parsed document, for sections other layers own. */
  raw: Record<string, unknown>;
}

/** The core packages every environment guards, before `[tx] core_packages` adds more. */
export const DEFAULT_CORE_PACKAGES = ["torch", "torchvision", "torchaudio", "xformers", "numpy"];

type Section = { name: string; values: Record<string, unknown> };

function table(doc: Record<string, unknown>, file: string, name: string): Section {
  const v = doc[name];
  if (v === undefined) return { name, values: {} };
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ConfigError(file, `[${name}]`, "a table");
  }
  return { name, values: v as Record<string, unknown> };
}

function optStr(t: Section, file: string, key: string): string | undefined {
  const v = t.values[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v === "") {
    throw new ConfigError(file, `${t.name}.${key}`, "a non-empty string");
  }
  return v;
}

function strList(t: Section, file: string, key: string): string[] | undefined {
  const v = t.values[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw new ConfigError(file, `${t.name}.${key}`, "a list of strings");
  }
  return v as string[];
}

function posInt(t: Section, file: string, key: string, def: number): number {
  const v = t.values[key];
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new ConfigError(file, `${t.name}.${key}`, "a positive integer");
  }
  return v;
}

/**
 * Parses and validates the text of a `config.toml`. `file` is only used in error messages.
 *
 * @example
 * ```ts
 * import { parseEnvironmentConfig } from "@/workspace/config.ts";
 *
 * const cfg = parseEnvironmentConfig('[paths]\ncomfyui_dir = "ComfyUI"\n', "config.toml");
 * console.log(cfg.tx.timeout); // 120
 * ```
 */
export function parseEnvironmentConfig(text: string, file: string): EnvironmentConfig {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    const first = (err as Error).message.split("\n")[0];
    throw new ConfigError(file, "", `is not valid TOML (${first})`);
  }
  const paths = table(doc, file, "paths");
  const tools = table(doc, file, "tools");
  const comfyui = table(doc, file, "comfyui");
  const tx = table(doc, file, "tx");
  const rollback = table(doc, file, "rollback");
  let smoke: string[] | undefined;
  if (typeof tx.values.smoke_test_cmd === "string") {
    // A string is split on whitespace, never handed to a shell.
    smoke = tx.values.smoke_test_cmd.trim().split(/\s+/).filter(Boolean);
  } else {
    smoke = strList(tx, file, "smoke_test_cmd");
  }
  if (smoke && smoke.length === 0) {
    throw new ConfigError(file, "tx.smoke_test_cmd", "a non-empty command");
  }
  return {
    paths: {
      comfyui_dir: optStr(paths, file, "comfyui_dir"),
      python: optStr(paths, file, "python"),
    },
    tools: { uv: optStr(tools, file, "uv"), git: optStr(tools, file, "git") },
    comfyui: { args: strList(comfyui, file, "args") ?? [] },
    tx: {
      timeout: posInt(tx, file, "timeout", 120),
      smoke_test_cmd: smoke,
      core_packages: strList(tx, file, "core_packages") ?? [],
    },
    rollback: { snapshot_retention: posInt(rollback, file, "snapshot_retention", 50) },
    raw: doc,
  };
}
