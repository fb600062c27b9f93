/**
 * The snapshot files of ComfyUI-Manager and comfy-cli, read and written.
 *
 * What ComfyUI-Manager 4.3 writes (`get_current_snapshot`, `save_snapshot_with_postfix`):
 *
 * ```json
 * {
 *     "comfyui": "<commit or null>",
 *     "git_custom_nodes": {"<origin url>": {"hash": "<commit>", "disabled": false}},
 *     "cnr_custom_nodes": {"<registry id>": "<version>"},
 *     "file_custom_nodes": [{"filename": "x.py", "disabled": false}],
 *     "pips": {"<pip freeze line>": "", "<name>": "<url>"}
 * }
 * ```
 *
 * - `comfyui` is null when ComfyUI is no git checkout; `pips` is null for a custom-nodes-only
 *   snapshot. `pips` keys are whole `pip freeze` lines (`numpy==1.26.4`) with an empty
 *   value, or a name whose value is the URL of a `name @ url` line.
 * - Registry nodes at `nightly`/`latest`/`unknown` are written under `git_custom_nodes`;
 *   a disabled registry node is left out; a disabled git node (`<name>.disabled` or
 *   `custom_nodes/.disabled/<name>`) has `disabled: true`.
 * - The YAML form (`.yaml`, the Manager's CLI and comfy-cli) is the same object under
 *   `custom_nodes:`. On restore the Manager skips any URL containing `comfyui-manager`,
 *   names a cloned folder after the URL's last segment without `.git`, ignores
 *   `file_custom_nodes`, and never installs `torch*`/`nvidia-*` pips.
 *
 * @module
 */
import { basename } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { UsageError } from "../../errors.ts";
import { isValidName } from "../../workspace/names.ts";
import { canonicalName } from "../state/pyproject.ts";

/** A git node of a snapshot. */
export interface SnapshotGitNode {
  /** The custom node id gov gives it: the URL's last segment without `.git`. */
  id: string;
  url: string;
  commit: string;
  disabled: boolean;
}

/** A registry node of a snapshot. */
export interface SnapshotRegistryNode {
  id: string;
  /** As written: a version, or `nightly`/`latest`/`unknown`. */
  version: string;
}

/** One `pips` entry. */
export interface SnapshotPip {
  /** The key as written. */
  raw: string;
  /** Canonical package name, when the entry names one. */
  name?: string;
  /** `==` version, when pinned that way. */
  version?: string;
  /** URL, for `name @ url` entries. */
  url?: string;
}

/** A Manager/comfy-cli snapshot, normalised. */
export interface ManagerSnapshot {
  comfyui: string | null;
  git: SnapshotGitNode[];
  registry: SnapshotRegistryNode[];
  files: { filename: string; disabled: boolean }[];
  pips: SnapshotPip[];
  /** Entries skipped while reading (the Manager's own node), one line each. */
  skipped: string[];
}

function bad(file: string, why: string): UsageError {
  return new UsageError(`snapshot ${file}: ${why}`, {
    hint: "pass a snapshot saved by ComfyUI-Manager (.json) or comfy-cli/cm-cli (.yaml)",
  });
}

// YAML's null and booleans as PyYAML writes them, for scalars read as strings.
function isNull(v: unknown): v is null | undefined | string {
  return v === null || v === undefined ||
    (typeof v === "string" && /^(null|Null|NULL|~|)$/.test(v));
}

function isTrue(v: unknown): boolean {
  return v === true || (typeof v === "string" && /^(true|True|TRUE|yes|Yes|on|On)$/.test(v));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The custom node id of a git URL: its last path segment without `.git` (the folder the
 * Manager clones into), so `https://github.com/a/B.git` and `.../a/B` are the same node.
 *
 * @example
 * ```ts
 * import { nodeIdOfUrl } from "@/gov/ops/snapshot_format.ts";
 *
 * nodeIdOfUrl("https://github.com/ltdrdata/ComfyUI-Impact-Pack.git"); // "ComfyUI-Impact-Pack"
 * ```
 */
export function nodeIdOfUrl(url: string): string {
  return basename(url.replace(/[\\/]+$/, "")).replace(/\.git$/, "");
}

/**
 * The URL a snapshot compares by: GitHub URLs as `https://github.com/<owner>/<repo>`, as
 * the Manager normalises them; others without a trailing `.git` or `/`.
 *
 * @example
 * ```ts
 * import { normalizeGitUrl } from "@/gov/ops/snapshot_format.ts";
 *
 * normalizeGitUrl("git@github.com:a/b.git"); // "https://github.com/a/b"
 * ```
 */
export function normalizeGitUrl(url: string): string {
  const u = url.trim().replace(/[\\/]+$/, "").replace(/\.git$/, "");
  const gh = /^(?:https?:\/\/|ssh:\/\/git@|git@)github\.com[:/]([^/]+)\/([^/]+)$/.exec(u);
  return gh ? `https://github.com/${gh[1]}/${gh[2]}` : u;
}

function parsePip(raw: string, value: unknown): SnapshotPip {
  const v = typeof value === "string" ? value : "";
  const line = raw.trim();
  if (v) {
    const name = /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(line) ? canonicalName(line) : undefined;
    return { raw, url: v, ...(name ? { name } : {}) };
  }
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;]+)$/.exec(line);
  if (m) return { raw, name: canonicalName(m[1]), version: m[2] };
  const at = /^([A-Za-z0-9][A-Za-z0-9._-]*)\s+@\s+(\S+)$/.exec(line);
  if (at) return { raw, name: canonicalName(at[1]), url: at[2] };
  return { raw };
}

/**
 * Reads a Manager snapshot (JSON) or a comfy-cli/cm-cli one (YAML under `custom_nodes:`),
 * telling them apart by content, not by name. Bad input is a {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * import { parseManagerSnapshot } from "@/gov/ops/snapshot_format.ts";
 *
 * const s = parseManagerSnapshot('{"comfyui": null, "git_custom_nodes": {}}', "s.json");
 * console.log(s.git.length); // 0
 * ```
 */
export function parseManagerSnapshot(text: string, file: string): ManagerSnapshot {
  let doc: unknown;
  const trimmed = text.trimStart();
  try {
    // Every YAML scalar is read as a string and typed here: PyYAML (the writer) leaves a
    // commit like `1234567e89...` unquoted, which a YAML 1.2 or even the `yaml` package's
    // 1.1 schema would turn into a number.
    doc = trimmed.startsWith("{") ? JSON.parse(text) : parseYaml(text, { schema: "failsafe" });
  } catch (err) {
    throw bad(file, `is neither JSON nor YAML (${(err as Error).message.split("\n")[0]})`);
  }
  if (isObject(doc) && isObject(doc.custom_nodes) && !("git_custom_nodes" in doc)) {
    doc = doc.custom_nodes;
  }
  if (!isObject(doc)) throw bad(file, "is not a snapshot object");
  if (!("git_custom_nodes" in doc) && !("cnr_custom_nodes" in doc)) {
    throw bad(file, "has neither git_custom_nodes nor cnr_custom_nodes");
  }
  const out: ManagerSnapshot = {
    comfyui: typeof doc.comfyui === "string" && !isNull(doc.comfyui) ? doc.comfyui : null,
    git: [],
    registry: [],
    files: [],
    pips: [],
    skipped: [],
  };
  const git = isNull(doc.git_custom_nodes) ? {} : doc.git_custom_nodes;
  if (!isObject(git)) {
    throw bad(file, "git_custom_nodes is not a mapping of URL to {hash, disabled}");
  }
  const ids = new Map<string, string>();
  for (const [url, v] of Object.entries(git)) {
    if (url.toLowerCase().includes("comfyui-manager")) {
      out.skipped.push(`${url}: ComfyUI-Manager itself (gov does not install it)`);
      continue;
    }
    if (!isObject(v) || typeof v.hash !== "string" || !/^[0-9a-f]{7,64}$/i.test(v.hash)) {
      throw bad(file, `git_custom_nodes['${url}'].hash is not a commit`);
    }
    const id = nodeIdOfUrl(url);
    if (!isValidName(id) || url.startsWith("-") || /[\0\n]/.test(url)) {
      throw bad(file, `git_custom_nodes key '${url}' is not a usable git URL`);
    }
    const clash = ids.get(id.toLowerCase());
    if (clash !== undefined) {
      throw bad(file, `'${url}' and '${clash}' would both be custom node ${id}`);
    }
    ids.set(id.toLowerCase(), url);
    out.git.push({ id, url, commit: v.hash.toLowerCase(), disabled: isTrue(v.disabled) });
  }
  const cnr = isNull(doc.cnr_custom_nodes) ? {} : doc.cnr_custom_nodes;
  if (!isObject(cnr)) throw bad(file, "cnr_custom_nodes is not a mapping of id to version");
  for (const [id, ver] of Object.entries(cnr)) {
    if (id.toLowerCase().includes("comfyui-manager")) {
      out.skipped.push(`${id}: ComfyUI-Manager itself (gov does not install it)`);
      continue;
    }
    if (!isValidName(id)) throw bad(file, `cnr_custom_nodes key '${id}' is not a registry id`);
    if (typeof ver !== "string" || !ver) {
      throw bad(file, `cnr_custom_nodes['${id}'] is not a version`);
    }
    const clash = ids.get(id.toLowerCase());
    if (clash !== undefined) throw bad(file, `registry node '${id}' clashes with '${clash}'`);
    ids.set(id.toLowerCase(), id);
    out.registry.push({ id, version: ver });
  }
  const files = isNull(doc.file_custom_nodes) ? [] : doc.file_custom_nodes;
  if (!Array.isArray(files)) throw bad(file, "file_custom_nodes is not a list");
  for (const f of files) {
    if (isObject(f) && typeof f.filename === "string") {
      out.files.push({ filename: f.filename, disabled: isTrue(f.disabled) });
    }
  }
  const pips = isNull(doc.pips) ? {} : doc.pips;
  if (!isObject(pips)) throw bad(file, "pips is not a mapping");
  for (const [k, v] of Object.entries(pips)) out.pips.push(parsePip(k, v));
  return out;
}

/** What an export writes: the nodes and packages of one gov state. */
export interface ExportContent {
  comfyui: string | null;
  git: { url: string; commit: string; disabled: boolean }[];
  registry: { id: string; version: string }[];
  /** `name==version` lines (from uv.lock). */
  packages: string[];
}

/**
 * Renders a snapshot the Manager (`manager`, JSON with 4-space indent like its own) or
 * comfy-cli (`comfy-cli`, YAML under `custom_nodes:`) restores.
 *
 * @example
 * ```ts
 * import { renderManagerSnapshot } from "@/gov/ops/snapshot_format.ts";
 *
 * const text = renderManagerSnapshot(
 *   { comfyui: null, git: [], registry: [], packages: ["numpy==2.0.0"] },
 *   "manager",
 * );
 * ```
 */
export function renderManagerSnapshot(c: ExportContent, format: "manager" | "comfy-cli"): string {
  const doc = {
    comfyui: c.comfyui,
    git_custom_nodes: Object.fromEntries(
      c.git.map((g) => [g.url, { hash: g.commit, disabled: g.disabled }]),
    ),
    cnr_custom_nodes: Object.fromEntries(c.registry.map((r) => [r.id, r.version])),
    file_custom_nodes: [] as unknown[],
    pips: Object.fromEntries(c.packages.map((p) => [p, ""])),
  };
  return format === "manager"
    ? JSON.stringify(doc, null, 4) + "\n"
    : stringifyYaml({ custom_nodes: doc }, { version: "1.1" });
}
