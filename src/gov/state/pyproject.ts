/**
 * The environment's `pyproject.toml`: the declaration truth. The ComfyUI base requirements
 * are `[project] dependencies`, each custom node is one `[dependency-groups] node-<id>`
 * group (so uv can name the node in a conflict), and resolution pins live in
 * `[tool.uv] override-dependencies` (uv's override mechanism: a pin replaces every declared
 * requirement on that package, transitive ones included).
 *
 * Edits are surgical text edits that keep the user's comments and layout, checked by
 * re-parsing the result; gov refuses an edit it cannot make exactly.
 *
 * @module
 */
import { parse as parseToml } from "smol-toml";
import { ConfigError, GovError } from "../../errors.ts";

/** The parts of pyproject.toml gov reads. */
export interface Pyproject {
  name: string;
  dependencies: string[];
  /** Dependency groups keyed by their normalised name (uv's rule: `Foo_Bar` is `foo-bar`). */
  groups: Record<string, string[]>;
  /** The key each group is written with in the file, by normalised name. */
  groupKeys: Record<string, string>;
  overrides: string[];
  raw: Record<string, unknown>;
}

/**
 * PEP 503 normalised package name.
 *
 * @example
 * ```ts
 * import { canonicalName } from "@/gov/state/pyproject.ts";
 *
 * canonicalName("Typing_Extensions"); // "typing-extensions"
 * ```
 */
export function canonicalName(name: string): string {
  return name.trim().toLowerCase().replace(/[-_.]+/g, "-");
}

/**
 * The dependency group of custom node `id`: `node-<id>` normalised the way uv normalises
 * group names (uv writes and prints `uv add --group node-Comfy_Pack` as `node-comfy-pack`),
 * so gov looks the group up, removes it and maps uv's messages back exactly as uv names it.
 *
 * @example
 * ```ts
 * import { nodeGroup } from "@/gov/state/pyproject.ts";
 *
 * nodeGroup("ComfyUI_Impact.Pack"); // "node-comfyui-impact-pack"
 * ```
 */
export function nodeGroup(id: string): string {
  return `node-${canonicalName(id)}`;
}

/**
 * The package name a PEP 508 requirement line is about, normalised; undefined for lines
 * that are not requirements (comments, options such as `--extra-index-url`, blanks).
 *
 * @example
 * ```ts
 * import { requirementName } from "@/gov/state/pyproject.ts";
 *
 * requirementName("opencv-python>=4.8 ; sys_platform == 'linux'"); // "opencv-python"
 * ```
 */
export function requirementName(line: string): string | undefined {
  const s = line.replace(/(^|\s)#.*$/, "").trim();
  if (!s || s.startsWith("-")) return undefined;
  const m = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)/.exec(s);
  return m ? canonicalName(m[1]) : undefined;
}

/**
 * Requirement lines of a requirements.txt text: comments and blank lines dropped, options
 * (`-r`, `--index-url`, ...) kept aside.
 *
 * @example
 * ```ts
 * import { parseRequirementsText } from "@/gov/state/pyproject.ts";
 *
 * parseRequirementsText("torch\n# c\n--extra-index-url x\n"); // {requirements: ["torch"], options: ["--extra-index-url x"]}
 * ```
 */
export function parseRequirementsText(text: string): { requirements: string[]; options: string[] } {
  const requirements: string[] = [];
  const options: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (!line) continue;
    if (line.startsWith("-")) options.push(line);
    else requirements.push(line);
  }
  return { requirements, options };
}

function strArray(v: unknown, file: string, field: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw new ConfigError(file, field, "a list of strings");
  }
  return v as string[];
}

function table(v: unknown, file: string, field: string): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ConfigError(file, field, "a table");
  }
  return v as Record<string, unknown>;
}

/**
 * Parses and validates pyproject.toml text.
 *
 * @example
 * ```ts
 * import { parsePyproject } from "@/gov/state/pyproject.ts";
 *
 * const file = "/srv/comfy/environments/prod/pyproject.toml";
 * const py = parsePyproject(await Deno.readTextFile(file), file);
 * console.log(Object.keys(py.groups));
 * ```
 */
export function parsePyproject(text: string, file: string): Pyproject {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(file, "", `is not valid TOML (${(err as Error).message.split("\n")[0]})`);
  }
  const project = table(doc.project, file, "[project]");
  if (typeof project.name !== "string" || project.name === "") {
    throw new ConfigError(file, "project.name", "a non-empty string");
  }
  const groupsRaw = table(doc["dependency-groups"], file, "[dependency-groups]");
  const groups: Record<string, string[]> = {};
  const groupKeys: Record<string, string> = {};
  for (const [g, list] of Object.entries(groupsRaw)) {
    // uv allows `{include-group = "x"}` entries; gov's groups hold plain requirement strings.
    if (!Array.isArray(list)) throw new ConfigError(file, `dependency-groups.${g}`, "a list");
    const key = canonicalName(g);
    if (key in groups) {
      throw new ConfigError(
        file,
        `dependency-groups.${g}`,
        `a group name distinct from '${
          groupKeys[key]
        }' after normalisation (uv treats them as one)`,
      );
    }
    groups[key] = list.filter((x) => typeof x === "string") as string[];
    groupKeys[key] = g;
  }
  const tool = table(doc.tool, file, "[tool]");
  const uv = table(tool.uv, file, "[tool.uv]");
  return {
    name: project.name,
    dependencies: strArray(project.dependencies, file, "project.dependencies"),
    groups,
    groupKeys,
    overrides: strArray(uv["override-dependencies"], file, "tool.uv.override-dependencies"),
    raw: doc,
  };
}

/**
 * Reads and validates a pyproject.toml file.
 *
 * @example
 * ```ts
 * import { readPyproject } from "@/gov/state/pyproject.ts";
 * import { type Environment } from "@/workspace/environment.ts";
 * declare const env: Environment;
 *
 * const py = await readPyproject(`${env.dir}/pyproject.toml`);
 * ```
 */
export async function readPyproject(path: string): Promise<Pyproject> {
  return parsePyproject(await Deno.readTextFile(path), path);
}

interface Section {
  name: string;
  header: number;
  start: number;
  end: number;
}

function normTable(s: string): string {
  return s.split(".").map((p) => p.trim().replace(/^["']|["']$/g, "")).join(".");
}

function sections(lines: string[]): Section[] {
  const out: Section[] = [];
  let open: Section | undefined;
  let inMulti: string | null = null;
  lines.forEach((line, i) => {
    if (inMulti) {
      if (line.includes(inMulti)) inMulti = null;
      return;
    }
    const m = /^\s*\[(\[)?\s*([^\[\]]+?)\s*\](\])?\s*(#.*)?$/.exec(line);
    if (m) {
      if (open) open.end = i;
      open = {
        name: m[1] ? `[[${normTable(m[2])}]]` : normTable(m[2]),
        header: i,
        start: i + 1,
        end: lines.length,
      };
      out.push(open);
      return;
    }
    const tq = /("""|''')/.exec(line);
    if (tq && line.split(tq[1]).length === 2) inMulti = tq[1];
  });
  return out;
}

/** Index of the line after the value that starts on line `from` (after `=`). */
function valueEnd(lines: string[], from: number): number {
  let depth = 0;
  let str: string | null = null;
  for (let i = from; i < lines.length; i++) {
    const line = lines[i];
    let j = i === from ? line.indexOf("=") + 1 : 0;
    for (; j < line.length; j++) {
      const c = line[j];
      if (str) {
        if (str.length === 3) {
          if (line.startsWith(str, j)) {
            j += 2;
            str = null;
          }
        } else if (c === "\\" && str === '"') j++;
        else if (c === str) str = null;
        continue;
      }
      if (line.startsWith('"""', j) || line.startsWith("'''", j)) {
        str = line.slice(j, j + 3);
        j += 2;
      } else if (c === '"' || c === "'") str = c;
      else if (c === "#") break;
      else if (c === "[" || c === "{") depth++;
      else if (c === "]" || c === "}") depth--;
    }
    if (depth <= 0 && str === null) return i + 1;
  }
  return lines.length;
}

function findKey(lines: string[], sec: Section, key: string): number {
  const esc = key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const re = new RegExp(`^\\s*(?:"${esc}"|'${esc}'|${esc})\\s*=`);
  for (let i = sec.start; i < sec.end; i++) if (re.test(lines[i])) return i;
  return -1;
}

function tomlArray(items: string[]): string {
  if (items.length === 0) return "[]";
  return `[\n${items.map((s) => `    ${JSON.stringify(s)},`).join("\n")}\n]`;
}

function splitLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/**
 * Sets `[tool.uv] override-dependencies`: each pin replaces any existing override on the
 * same package, other overrides stay. An empty result removes the key.
 *
 * @example
 * ```ts
 * import { setOverrides } from "@/gov/state/pyproject.ts";
 * declare const text: string;
 *
 * const text2 = setOverrides(text, ["numpy==1.26.4"], "pyproject.toml");
 * ```
 */
export function setOverrides(text: string, pins: string[], file: string): string {
  const before = parsePyproject(text, file);
  const pinned = new Set(pins.map((p) => requirementName(p)));
  return writeOverrides(text, [
    ...before.overrides.filter((o) => !pinned.has(requirementName(o))),
    ...pins,
  ], file);
}

/**
 * Removes the overrides on packages `names` from `[tool.uv] override-dependencies` (others
 * stay; an empty result removes the key).
 *
 * @example
 * ```ts
 * import { removeOverrides } from "@/gov/state/pyproject.ts";
 * declare const text: string;
 *
 * const text2 = removeOverrides(text, ["numpy"], "pyproject.toml");
 * ```
 */
export function removeOverrides(text: string, names: string[], file: string): string {
  const before = parsePyproject(text, file);
  const drop = new Set(names.map(canonicalName));
  const kept = before.overrides.filter((o) => !drop.has(requirementName(o) ?? ""));
  return kept.length === before.overrides.length ? text : writeOverrides(text, kept, file);
}

function writeOverrides(text: string, merged: string[], file: string): string {
  const lines = splitLines(text);
  const sec = sections(lines).find((s) => s.name === "tool.uv");
  const key = "override-dependencies";
  if (sec) {
    const at = findKey(lines, sec, key);
    const repl = merged.length ? `${key} = ${tomlArray(merged)}`.split("\n") : [];
    if (at !== -1) lines.splice(at, valueEnd(lines, at) - at, ...repl);
    else {
      // After the section's last key, before the blank lines that separate it from the next.
      let end = sec.end;
      while (end > sec.start && lines[end - 1].trim() === "") end--;
      lines.splice(end, 0, ...repl);
    }
  } else if (merged.length) {
    if (lines.length && lines[lines.length - 1].trim() !== "") lines.push("");
    lines.push("[tool.uv]", ...`${key} = ${tomlArray(merged)}`.split("\n"));
  }
  const out = lines.join("\n") + "\n";
  const after = parsePyproject(out, file);
  if (JSON.stringify(after.overrides) !== JSON.stringify(merged)) {
    throw new GovError(`cannot set [tool.uv] override-dependencies in ${file} automatically`, {
      hint: "write it as a [tool.uv] table with override-dependencies = [...] and retry",
    });
  }
  return out;
}

/**
 * Removes dependency group `group` from `[dependency-groups]` (a no-op when absent), found by
 * its normalised name whatever spelling the file uses.
 *
 * @example
 * ```ts
 * import { removeGroup } from "@/gov/state/pyproject.ts";
 * declare const text: string;
 *
 * const text2 = removeGroup(text, "node-impact", "pyproject.toml");
 * ```
 */
export function removeGroup(text: string, group: string, file: string): string {
  const before = parsePyproject(text, file);
  group = canonicalName(group);
  if (!(group in before.groups)) return text;
  const lines = splitLines(text);
  const sec = sections(lines).find((s) => s.name === "dependency-groups");
  const at = sec ? findKey(lines, sec, before.groupKeys[group]) : -1;
  if (at !== -1) lines.splice(at, valueEnd(lines, at) - at);
  const out = lines.join("\n") + "\n";
  const after = parsePyproject(out, file);
  const expected = { ...before.groups };
  delete expected[group];
  if (at === -1 || JSON.stringify(after.groups) !== JSON.stringify(expected)) {
    throw new GovError(`cannot remove dependency group ${group} from ${file} automatically`, {
      hint: `declare it as \`${group} = [...]\` under [dependency-groups] and retry`,
    });
  }
  return out;
}

/**
 * A project name uv accepts for an environment: `comfyui-env-<name>`, normalised.
 *
 * @example
 * ```ts
 * import { projectNameFor } from "@/gov/state/pyproject.ts";
 *
 * projectNameFor("Prod_1"); // "comfyui-env-prod-1"
 * ```
 */
export function projectNameFor(envName: string): string {
  const n = envName.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  return `comfyui-env-${n || "default"}`;
}

/**
 * The pyproject.toml `gov init` writes: a virtual project (uv never builds or installs it)
 * holding the ComfyUI base requirements, an empty `[dependency-groups]` for custom nodes,
 * and `default-groups = "all"` so even a hand-typed `uv sync` keeps every node's packages.
 *
 * @example
 * ```ts
 * import { renderInitialPyproject } from "@/gov/state/pyproject.ts";
 *
 * renderInitialPyproject({
 *   name: "comfyui-env-prod",
 *   requirements: ["torch"],
 *   requiresPython: ">=3.10",
 *   envName: "prod",
 * });
 * ```
 */
export function renderInitialPyproject(opts: {
  name: string;
  requirements: string[];
  requiresPython: string;
  envName: string;
}): string {
  return [
    "# Python dependencies of the ComfyUI environment " + JSON.stringify(opts.envName) + ".",
    "# Managed by gov: change it with `gov tx run` / `gov tx promote` / `gov node remove`;",
    "# every change is snapshotted under snapshots/ and can be undone with `gov rollback`.",
    "[project]",
    `name = ${JSON.stringify(opts.name)}`,
    'version = "0.0.0"',
    `requires-python = ${JSON.stringify(opts.requiresPython)}`,
    "# The ComfyUI base requirements.",
    `dependencies = ${tomlArray(opts.requirements)}`,
    "",
    "# One group per custom node (node-<id>), so a conflict names the nodes involved.",
    "[dependency-groups]",
    "",
    "[tool.uv]",
    "# A virtual project: uv installs its dependencies, never the project itself.",
    "package = false",
    'default-groups = "all"',
    "",
  ].join("\n");
}
