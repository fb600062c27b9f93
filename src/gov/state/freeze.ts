/**
 * Freezes of a venv and what changed between two of them: added, removed and changed
 * packages, and which of those touch the core packages (torch & co.) that a custom node
 * must not move without the operator's approval.
 *
 * @module
 */
import { parse as parseToml } from "smol-toml";
import { ConfigError } from "../../errors.ts";
import { DEFAULT_CORE_PACKAGES } from "../../workspace/config.ts";
import type { InstalledPackage } from "../../uv/driver.ts";
import { canonicalName } from "./pyproject.ts";
import type { TxDiff } from "./schema.ts";

/**
 * `name==version` lines, sorted by normalised name.
 *
 * @example
 * ```ts
 * import { freezeLines } from "@/gov/state/freeze.ts";
 *
 * freezeLines([{ name: "Pillow", version: "10.4.0" }]); // ["pillow==10.4.0"]
 * ```
 */
export function freezeLines(pkgs: InstalledPackage[]): string[] {
  return pkgs
    .map((p) => ({ name: canonicalName(p.name), version: p.version }))
    .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    .map((p) => `${p.name}==${p.version}`);
}

function toMap(lines: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of lines) {
    const i = l.indexOf("==");
    if (i > 0) m.set(canonicalName(l.slice(0, i)), l.slice(i + 2));
  }
  return m;
}

/**
 * Difference between two freezes: `added`/`removed` as `name==version`, `changed` with
 * both versions. A changed package appears only in `changed`.
 *
 * @example
 * ```ts
 * import { diffFreeze } from "@/gov/state/freeze.ts";
 *
 * diffFreeze(["numpy==1.26.4"], ["numpy==2.1.0", "tqdm==4.66.4"]);
 * // {added: ["tqdm==4.66.4"], removed: [], changed: [{name: "numpy", from: "1.26.4", to: "2.1.0"}]}
 * ```
 */
export function diffFreeze(pre: string[], post: string[]): TxDiff {
  const a = toMap(pre);
  const b = toMap(post);
  const diff: TxDiff = { added: [], removed: [], changed: [] };
  for (const [name, v] of b) {
    if (!a.has(name)) diff.added.push(`${name}==${v}`);
    else if (a.get(name) !== v) diff.changed.push({ name, from: a.get(name)!, to: v });
  }
  for (const [name, v] of a) if (!b.has(name)) diff.removed.push(`${name}==${v}`);
  diff.added.sort();
  diff.removed.sort();
  diff.changed.sort((x, y) => x.name < y.name ? -1 : 1);
  return diff;
}

/**
 * The environment's core packages: the defaults plus `[tx] core_packages`, normalised.
 *
 * @example
 * ```ts
 * import { corePackages } from "@/gov/state/freeze.ts";
 *
 * corePackages(["opencv-python"]); // ["torch", ..., "numpy", "opencv-python"]
 * ```
 */
export function corePackages(extra: string[]): string[] {
  return [...new Set([...DEFAULT_CORE_PACKAGES, ...extra].map(canonicalName))];
}

/**
 * Core packages the diff adds, removes or moves to another version.
 *
 * @example
 * ```ts
 * import { coreImpact, corePackages } from "@/gov/state/freeze.ts";
 * import { type TxDiff } from "@/gov/state/schema.ts";
 * declare const diff: TxDiff;
 *
 * coreImpact(diff, corePackages([])); // ["numpy"]
 * ```
 */
export function coreImpact(diff: TxDiff, core: string[]): string[] {
  const set = new Set(core.map(canonicalName));
  const touched = new Set<string>();
  for (const l of [...diff.added, ...diff.removed]) {
    const n = canonicalName(l.split("==")[0]);
    if (set.has(n)) touched.add(n);
  }
  for (const c of diff.changed) if (set.has(canonicalName(c.name))) touched.add(c.name);
  return [...touched].sort();
}

/**
 * What a uv.lock installs, as sorted `name==version` lines (the project itself, a virtual
 * or editable source, is left out). `.venv-prod` is synced with every group, so this is
 * what production holds after a sync of that lock.
 *
 * @example
 * ```ts
 * import { lockFreeze } from "@/gov/state/freeze.ts";
 *
 * lockFreeze(await Deno.readTextFile("uv.lock"), "uv.lock"); // ["numpy==2.1.0", ...]
 * ```
 */
export function lockFreeze(text: string, file: string): string[] {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(file, "", `is not valid TOML (${(err as Error).message.split("\n")[0]})`);
  }
  const pkgs = doc.package ?? [];
  if (!Array.isArray(pkgs)) throw new ConfigError(file, "package", "a list of tables");
  const out: InstalledPackage[] = [];
  pkgs.forEach((p, i) => {
    const o = p as Record<string, unknown>;
    if (typeof o?.name !== "string") throw new ConfigError(file, `package[${i}].name`, "a string");
    const source = (o.source ?? {}) as Record<string, unknown>;
    if ("virtual" in source || "editable" in source) return;
    if (typeof o.version !== "string") {
      throw new ConfigError(file, `package[${i}].version`, "a string");
    }
    out.push({ name: o.name, version: o.version });
  });
  return freezeLines(out);
}

/**
 * One line per entry of a diff, for messages: `torch 2.1.0 -> 2.3.1`, `+numpy 1.26.4`,
 * `-xformers 0.0.23`.
 *
 * @example
 * ```ts
 * import { describeDiff } from "@/gov/state/freeze.ts";
 * import { type TxDiff } from "@/gov/state/schema.ts";
 * declare const diff: TxDiff;
 *
 * describeDiff(diff, ["torch"]); // ["torch 2.1.0 -> 2.3.1"]
 * ```
 */
export function describeDiff(diff: TxDiff, only?: string[]): string[] {
  const keep = (n: string) => !only || only.includes(canonicalName(n));
  const split = (l: string) => [l.slice(0, l.indexOf("==")), l.slice(l.indexOf("==") + 2)];
  return [
    ...diff.changed.filter((c) => keep(c.name)).map((c) => `${c.name} ${c.from} -> ${c.to}`),
    ...diff.added.map(split).filter(([n]) => keep(n)).map(([n, v]) => `+${n} ${v}`),
    ...diff.removed.map(split).filter(([n]) => keep(n)).map(([n, v]) => `-${n} ${v}`),
  ];
}
