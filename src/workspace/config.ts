/**
 * An environment's `config.toml`: where its ComfyUI and interpreter live, which tools gov
 * drives, and the transaction and rollback policy. Every key is optional; every wrong type
 * is an error that names the file, the key and what is expected, and so is every unknown
 * section or key (with the nearest known one: a typo must not silently keep a default).
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

/**
 * A key or section a configuration file does not know, most likely a typo that would
 * otherwise silently keep a default. Names the file, the key and the nearest known key.
 * Exit code 2 (a {@linkcode ConfigError}).
 *
 * @example
 * ```ts
 * import { UnknownKeyError } from "@/workspace/config.ts";
 *
 * throw new UnknownKeyError("config.toml", "tx.timeot", ["timeout", "core_packages"]);
 * ```
 */
export class UnknownKeyError extends ConfigError {
  /** The nearest known key, when one is close enough to be the meant one. */
  suggestion?: string;
  constructor(file: string, field: string, known: string[]) {
    const dot = field.lastIndexOf(".");
    const prefix = field.slice(0, dot + 1);
    const name = field.slice(dot + 1);
    const near = nearestKey(name, known);
    const kind = prefix ? "key" : "section";
    const show = (k: string) => prefix ? prefix + k : `[${k}]`;
    super(
      file,
      "",
      `unknown ${kind} ${show(name)}${near !== undefined ? ` (did you mean ${show(near)}?)` : ""}`,
    );
    this.name = "UnknownKeyError";
    this.field = field;
    this.suggestion = near === undefined ? undefined : prefix + near;
    const where = prefix ? ` of ${prefix.slice(0, -1)}` : "";
    this.hint = `known ${kind}s${where}: ${known.map((k) => prefix ? k : show(k)).join(", ")}; ` +
      "gov changed nothing";
  }
}

/**
 * Edit distance counting a swap of two neighbours as one edit (optimal string alignment),
 * for suggesting the key a typo meant: `hots` is one edit from `host`.
 */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The known key nearest to `name` by edit distance (case ignored), when it is close enough
 * to be a typo of it: at most a third of its length, and at least 1.
 *
 * @example
 * ```ts
 * import { nearestKey } from "@/workspace/config.ts";
 *
 * nearestKey("timeot", ["timeout", "smoke_test_cmd"]); // "timeout"
 * ```
 */
export function nearestKey(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= Math.max(1, Math.floor(Math.max(name.length, 1) / 3)) ? best : undefined;
}

/**
 * Throws {@linkcode UnknownKeyError} for the first key of `table` not in `known`. The one
 * check every configuration file of gov uses (`config.toml`, `gov.toml`), for its sections
 * (`section` = "") and for the keys of each section.
 *
 * @example
 * ```ts
 * import { rejectUnknownKeys } from "@/workspace/config.ts";
 *
 * rejectUnknownKeys("gov.toml", "supervisor", { grace: 5 }, ["grace", "crash_limit"]);
 * ```
 */
export function rejectUnknownKeys(
  file: string,
  section: string,
  table: Record<string, unknown>,
  known: readonly string[],
): void {
  for (const k of Object.keys(table)) {
    if (!known.includes(k)) {
      throw new UnknownKeyError(file, section ? `${section}.${k}` : k, [...known]);
    }
  }
}

/** The sections of `config.toml` and the keys of each. */
const CONFIG_KEYS: Record<string, readonly string[]> = {
  paths: ["comfyui_dir", "python"],
  tools: ["uv", "git"],
  comfyui: ["args"],
  tx: ["timeout", "smoke_test_cmd", "core_packages"],
  rollback: ["snapshot_retention"],
};

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
  rejectUnknownKeys(file, "", doc, Object.keys(CONFIG_KEYS));
  for (const [section, keys] of Object.entries(CONFIG_KEYS)) {
    const t = table(doc, file, section);
    rejectUnknownKeys(file, section, t.values, keys);
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
  if (smoke && (smoke.length === 0 || smoke[0].trim() === "")) {
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
