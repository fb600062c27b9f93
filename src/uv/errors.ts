/**
 * What a failed uv run means. uv prints the same "No solution found" header for a real
 * dependency conflict and for a package it could not fetch because the network is off; gov
 * must tell them apart, because a conflict is fixed with `gov resolve` and pins while an
 * environment problem is fixed on the host, and a pin can never fix a missing network.
 *
 * @module
 */
import { ToolError } from "../errors.ts";

/** Kinds of uv failure gov acts on differently. */
export type UvFailureKind =
  | "conflict"
  | "unavailable"
  | "environment"
  | "stale-lock"
  | "missing-lock"
  | "other";

/** A classified uv failure. */
export interface UvFailure {
  /** What went wrong, as far as gov acts on it. */
  kind: UvFailureKind;
  /** The explanation uv gave (the `╰─▶` paragraph or the `error:` line), without colour. */
  summary: string;
  /** Dependency groups uv named (`project:node-x` gives `node-x`). */
  groups: string[];
  /** Custom node ids behind the `node-<id>` groups. */
  nodes: string[];
  /** Whether the project's own requirements (the ComfyUI base) take part in the conflict. */
  involvesBase: boolean;
  /** Packages named in the explanation. */
  packages: string[];
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/**
 * Removes terminal colour codes from uv output (uv colours even some piped output when
 * FORCE_COLOR is set in the caller's environment).
 *
 * @example
 * ```ts
 * import { stripAnsi } from "@/uv/errors.ts";
 *
 * stripAnsi("\x1b[31merror\x1b[0m"); // "error"
 * ```
 */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

const NETWORK_PATTERNS = [
  /network was disabled/i,
  /network connectivity is disabled/i,
  /because you set `?--offline`?/i,
  /failed to fetch/i,
  /error sending request/i,
  /dns error/i,
  /tcp connect error/i,
  /connection refused/i,
  /network is unreachable/i,
  /could not connect/i,
  /timed out while/i,
];

const UNAVAILABLE =
  /\b([A-Za-z0-9][A-Za-z0-9._-]*) was not found in the (?:package registry|provided package locations)/g;

const ENVIRONMENT_PATTERNS = [
  /no interpreter found/i,
  /no python (interpreter|installation) found/i,
  /no space left on device/i,
  /permission denied/i,
  /read-only file system/i,
];

/**
 * Classifies uv's stderr (and exit code) into a {@linkcode UvFailure}. `knownNodes` maps
 * group names back to node ids precisely when a node id ends in a dot-like character that
 * the sentence punctuation would otherwise swallow.
 *
 * @example
 * ```ts
 * import { classifyUvFailure } from "@/uv/errors.ts";
 * declare const stderr: string;
 *
 * const f = classifyUvFailure(stderr, 1, ["alpha", "beta"]);
 * if (f.kind === "conflict") console.log(f.nodes); // ["alpha", "beta"]
 * ```
 */
export function classifyUvFailure(
  stderr: string,
  _code: number,
  knownNodes: string[] = [],
): UvFailure {
  const text = stripAnsi(stderr);
  const summary = explanation(text);
  // uv prints group names normalised (`node-Comfy_Pack` becomes `node-comfy-pack`): map them
  // back to the node ids as registered.
  const byGroup = new Map(knownNodes.map((n) => [`node-${normalise(n)}`, n]));
  const groups = groupsIn(text, [...byGroup.keys()]);
  const nodes = groups.filter((g) => g.startsWith("node-")).map((g) =>
    byGroup.get(g) ?? g.slice("node-".length)
  );
  const base: UvFailure = {
    kind: "other",
    summary,
    groups,
    nodes,
    // "your project requires project:a and project:b" names only groups; the base itself
    // takes part when uv says the project *depends on* something or is one side.
    involvesBase: /your project depends on|your project and |and your project\b/i.test(text),
    packages: packagesIn(summary),
  };
  if (/needs to be updated, but `--locked` was provided/.test(text)) {
    return { ...base, kind: "stale-lock" };
  }
  if (/Unable to find lockfile|No `uv\.lock` found|lockfile .* not found/i.test(text)) {
    return { ...base, kind: "missing-lock" };
  }
  if (NETWORK_PATTERNS.some((re) => re.test(text))) return { ...base, kind: "environment" };
  if (/No solution found when resolving/i.test(text)) {
    // "Because foo was not found in the package registry and your project depends on foo":
    // nothing conflicts, the package does not exist where uv looks. A pin cannot fix that.
    const missing = [...summary.matchAll(UNAVAILABLE)].map((m) => normalise(m[1]));
    if (missing.length && !/incompatible/i.test(summary)) {
      return { ...base, kind: "unavailable", packages: [...new Set(missing)].sort() };
    }
    return { ...base, kind: "conflict" };
  }
  if (ENVIRONMENT_PATTERNS.some((re) => re.test(text))) return { ...base, kind: "environment" };
  return base;
}

/**
 * uv's own explanation of a failure. uv 0.13 prints its error chain as `error: <what>`
 * followed by `  cause: <why>` paragraphs (continuation lines indented under the text); the
 * last cause is the explanation ("Because ... unsatisfiable."), or for a failure that is
 * not a resolution the innermost reason, after the headline. Older uv drew the same
 * chain as `× <what>` / `╰─▶ <why>`; both are read.
 */
function explanation(text: string): string {
  const lines = text.split("\n");
  const causes: string[][] = [];
  for (const l of lines) {
    const m = /^\s*cause:\s?(.*)$/.exec(l);
    if (m) causes.push([m[1].trim()]);
    else if (causes.length && /^\s{3,}\S/.test(l) && !/^\s*(hint|help|error|warning):/.test(l)) {
      causes[causes.length - 1].push(l.trim());
    } else if (causes.length && l.trim() !== "") break;
  }
  if (causes.length) {
    const last = causes[causes.length - 1].join("\n");
    if (/^Because /.test(last)) return last;
    // A chain that is not a resolution ("Request failed" ... "Connection refused"): the
    // headline says what failed, the innermost cause why.
    const head = lines.find((l) => /^\s*error:/.test(l))?.replace(/^\s*error:\s*/, "").trim();
    return head ? `${head}: ${last}` : last;
  }
  const start = lines.findIndex((l) => /╰─▶/.test(l));
  if (start !== -1) {
    const out: string[] = [lines[start].replace(/^.*╰─▶\s*/, "")];
    for (const l of lines.slice(start + 1)) {
      if (/^\s*(hint|help|error|warning):/.test(l)) break;
      if (l.trim() === "") continue;
      out.push(l.trim());
    }
    return out.join("\n").trim();
  }
  const err = lines.filter((l) => /^\s*(error|×)/.test(l)).map((l) => l.trim());
  if (err.length) return err.join("\n");
  return lines.map((l) => l.trim()).filter(Boolean).slice(-3).join("\n");
}

function normalise(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

function groupsIn(text: string, knownGroups: string[]): string[] {
  const found = new Set<string>();
  const known = new Set(knownGroups);
  for (const m of text.matchAll(/\b[A-Za-z0-9][A-Za-z0-9._-]*:([A-Za-z0-9][A-Za-z0-9._-]*)/g)) {
    let group = m[1];
    // A sentence may end right after the group: "project:node-a." or "project:node-a,".
    while (!known.has(group) && /[.]$/.test(group)) group = group.slice(0, -1);
    if (group.startsWith("node-") || known.has(group)) found.add(group);
  }
  return [...found].sort();
}

function packagesIn(summary: string): string[] {
  const found = new Set<string>();
  for (
    const m of summary.matchAll(
      /(?:depends on|requires|only|of|on) ([A-Za-z0-9][A-Za-z0-9._-]*)(?=\s*(?:==|>=|<=|!=|~=|<|>|\[| is| are|,|$))/gm,
    )
  ) {
    const name = m[1].toLowerCase();
    if (name.includes(":") || ["your", "the", "all", "any"].includes(name)) continue;
    found.add(name.replace(/[-_.]+/g, "-"));
  }
  return [...found].sort();
}

/**
 * uv is not installed or cannot be executed. An environment problem.
 *
 * @example
 * ```ts
 * import { UvNotFoundError } from "@/uv/errors.ts";
 *
 * throw new UvNotFoundError("uv", "not on PATH");
 * ```
 */
export class UvNotFoundError extends ToolError {
  constructor(path: string, why: string) {
    super(
      "uv",
      null,
      `${path}: ${why}`,
      "install uv (https://docs.astral.sh/uv/), or point gov at it with GOV_UV=/path/to/uv or [tools] uv in config.toml",
    );
    this.name = "UvNotFoundError";
    this.message = `uv not found (${path}: ${why})`;
  }
}

/**
 * uv ran and failed. `failure` tells what it means; the subclasses below make the common
 * kinds catchable by class.
 *
 * @example
 * ```ts
 * import { UvError } from "@/uv/errors.ts";
 * import { type Uv } from "@/uv/driver.ts";
 * declare const dir: string;
 * declare const uv: Uv;
 *
 * try { await uv.lock({ cwd: dir }); } catch (e) { if (e instanceof UvError) console.log(e.failure.kind); }
 * ```
 */
export class UvError extends ToolError {
  /** Classification of uv's output. */
  failure: UvFailure;
  /** The uv subcommand that failed, e.g. "lock". */
  subcommand: string;
  /** uv's stdout, for the record. */
  stdout: string;
  constructor(
    subcommand: string,
    code: number,
    stdout: string,
    stderr: string,
    failure: UvFailure,
    hint?: string,
  ) {
    super("uv", code, stderr, hint);
    this.name = "UvError";
    this.failure = failure;
    this.subcommand = subcommand;
    this.stdout = stdout;
    const first = failure.summary.split("\n")[0];
    this.message = `uv ${subcommand} failed (exit ${code})${first ? `: ${first}` : ""}`;
  }
}

/**
 * The requirements cannot all hold at once. Fixed with pins (`gov resolve`).
 *
 * @example
 * ```ts
 * import { UvConflictError } from "@/uv/errors.ts";
 * declare const err: unknown;
 *
 * if (err instanceof UvConflictError) console.log(err.failure.nodes);
 * ```
 */
export class UvConflictError extends UvError {
  constructor(subcommand: string, code: number, stdout: string, stderr: string, f: UvFailure) {
    const who = f.nodes.length
      ? `custom nodes ${f.nodes.join(", ")}${f.involvesBase ? " and the base requirements" : ""}`
      : "the requirements";
    super(subcommand, code, stdout, stderr, f);
    this.name = "UvConflictError";
    this.message = `dependency conflict between ${who}: ${f.summary.split("\n")[0]}`;
  }
}

/**
 * uv could not work because of the host (network off, no interpreter, disk full). Never a
 * conflict: pins cannot fix it.
 *
 * @example
 * ```ts
 * import { UvEnvironmentError } from "@/uv/errors.ts";
 * declare const err: unknown;
 *
 * if (err instanceof UvEnvironmentError) console.log("fix the host, then retry");
 * ```
 */
export class UvEnvironmentError extends UvError {
  constructor(subcommand: string, code: number, stdout: string, stderr: string, f: UvFailure) {
    super(
      subcommand,
      code,
      stdout,
      stderr,
      f,
      /network|offline|fetch|connect|dns/i.test(stderr)
        ? "packages could not be fetched: enable the network, or provide them with UV_FIND_LINKS / UV_OFFLINE and a filled cache"
        : "fix the host problem uv reported, then retry",
    );
    this.name = "UvEnvironmentError";
    const first = f.summary.split("\n")[0];
    this.message = `uv ${subcommand} could not run in this environment${first ? `: ${first}` : ""}`;
  }
}

/**
 * A required package does not exist in the package registry or the find-links folders uv
 * was given (a typo, an unpublished or private package). Neither a conflict (no pin can fix
 * it) nor a host problem.
 *
 * @example
 * ```ts
 * import { UvUnavailableError } from "@/uv/errors.ts";
 * declare const err: unknown;
 *
 * if (err instanceof UvUnavailableError) console.log(err.failure.packages);
 * ```
 */
export class UvUnavailableError extends UvError {
  constructor(subcommand: string, code: number, stdout: string, stderr: string, f: UvFailure) {
    super(
      subcommand,
      code,
      stdout,
      stderr,
      f,
      "check the requirement's spelling, or make the package reachable (index URL, UV_FIND_LINKS)",
    );
    this.name = "UvUnavailableError";
    this.message = `uv ${subcommand} failed: ${
      f.packages.join(", ") || "a required package"
    } not found in the package registry or find-links folders`;
  }
}

/**
 * `--locked` found that uv.lock no longer matches pyproject.toml.
 *
 * @example
 * ```ts
 * import { UvStaleLockError } from "@/uv/errors.ts";
 * declare const err: unknown;
 *
 * if (err instanceof UvStaleLockError) console.log("relock first");
 * ```
 */
export class UvStaleLockError extends UvError {
  constructor(subcommand: string, code: number, stdout: string, stderr: string, f: UvFailure) {
    super(
      subcommand,
      code,
      stdout,
      stderr,
      f,
      "uv.lock does not match pyproject.toml; restore both from a snapshot (`gov rollback`) or relock",
    );
    this.name = "UvStaleLockError";
  }
}

/**
 * Builds the right error class for a failed uv run.
 *
 * @example
 * ```ts
 * import { uvErrorFor } from "@/uv/errors.ts";
 * import { type ProcessResult } from "@/process/run.ts";
 * declare const r: ProcessResult;
 *
 * throw uvErrorFor("lock", r.code, r.stdout, r.stderr, ["alpha"]);
 * ```
 */
export function uvErrorFor(
  subcommand: string,
  code: number,
  stdout: string,
  stderr: string,
  knownNodes: string[] = [],
): UvError {
  const f = classifyUvFailure(stderr, code, knownNodes);
  switch (f.kind) {
    case "conflict":
      return new UvConflictError(subcommand, code, stdout, stderr, f);
    case "unavailable":
      return new UvUnavailableError(subcommand, code, stdout, stderr, f);
    case "environment":
      return new UvEnvironmentError(subcommand, code, stdout, stderr, f);
    case "stale-lock":
    case "missing-lock":
      return new UvStaleLockError(subcommand, code, stdout, stderr, f);
    default:
      return new UvError(subcommand, code, stdout, stderr, f);
  }
}

/**
 * Whether an error is a host problem rather than a problem of the requirements.
 *
 * @example
 * ```ts
 * import { isEnvironmentFailure } from "@/uv/errors.ts";
 * declare const err: unknown;
 *
 * if (isEnvironmentFailure(err)) console.log("not a conflict");
 * ```
 */
export function isEnvironmentFailure(err: unknown): boolean {
  return err instanceof UvNotFoundError || err instanceof UvEnvironmentError;
}
