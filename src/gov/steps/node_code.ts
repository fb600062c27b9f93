/**
 * A custom node's code folder, `custom_nodes/<id>`: where it is, and parking it as
 * `<id>.disabled` when its packages go (node removal, a rollback that unregisters it) and
 * back when they return. ComfyUI and ComfyUI-Manager skip `.disabled` folders.
 *
 * @module
 */
import { join } from "node:path";
import { GovError } from "../../errors.ts";
import { exists } from "../../fs/atomic.ts";
import { readPlugins } from "../state/store.ts";
import { runProcess } from "../../process/run.ts";
import { validateName } from "../../workspace/names.ts";
import type { PluginRecord } from "../state/schema.ts";
import type { GovContext } from "./context.ts";

/** What is on disk in a node's folder, compared with its record. */
export type CodeState =
  /** The recorded commit, checked out, no local changes. */
  | "present"
  /** No folder. */
  | "missing"
  /** Another commit is checked out. */
  | "other-commit"
  /** The recorded commit with uncommitted changes or untracked files. */
  | "modified"
  /** The folder is not a git checkout (or git cannot read it). */
  | "not-a-repo";

/** A registered node with where its code is. */
export interface NodeInfo extends PluginRecord {
  /** Absolute folder of its code. */
  path: string;
  /** Whether that folder exists. */
  code_present: boolean;
  /** What the folder holds compared with the record (absent when not checked). */
  code_state?: CodeState;
  /** The commit checked out in the folder, when it is a git checkout. */
  code_commit?: string | null;
}

/**
 * Looks at what node folder `path` really holds: the commit checked out (`git rev-parse
 * HEAD`) and whether it has local changes, against the `recorded` commit. Read-only: git
 * is told not to refresh its index, so this works on a read-only checkout.
 *
 * @example
 * ```ts
 * import { inspectCode } from "@/gov/steps/node_code.ts";
 *
 * const { state } = await inspectCode("git", "/env/ComfyUI/custom_nodes/impact", "0a1b2c");
 * ```
 */
export async function inspectCode(
  gitExe: string,
  path: string,
  recorded: string | null,
): Promise<{ state: CodeState; commit: string | null }> {
  if (!(await exists(path))) return { state: "missing", commit: null };
  const git = (args: string[]) =>
    runProcess(gitExe, ["--no-optional-locks", "-C", path, ...args], {
      env: { GIT_TERMINAL_PROMPT: "0", GIT_OPTIONAL_LOCKS: "0" },
      timeoutMs: 60_000,
    }).catch(() => undefined);
  // The folder itself must be the top of the checkout: inside another repository (the
  // ComfyUI checkout), rev-parse would answer for that one.
  const top = await git(["rev-parse", "--show-toplevel", "HEAD"]);
  const [topDir, head] = top?.code === 0 ? top.stdout.trim().split("\n") : [];
  if (!topDir || !head || (await Deno.realPath(topDir)) !== (await Deno.realPath(path))) {
    return { state: "not-a-repo", commit: null };
  }
  if (recorded && head !== recorded) return { state: "other-commit", commit: head };
  const st = await git(["status", "--porcelain", "--untracked-files=normal"]);
  if (st?.code !== 0 || st.stdout.trim() !== "") return { state: "modified", commit: head };
  return { state: "present", commit: head };
}

/**
 * Retires a removed node's code: deleted with `purge`, else renamed to
 * `custom_nodes/<id>.disabled`. Left importable, a node whose packages were just removed
 * would fail ComfyUI's import at every start (and every transaction's test run); ComfyUI
 * and ComfyUI-Manager skip `.disabled` folders. Idempotent.
 *
 * @example
 * ```ts
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { retireCode } from "@/gov/steps/node_code.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * await retireCode(ctx, "impact", false); // "disabled"
 * ```
 */
export async function retireCode(
  ctx: GovContext,
  id: string,
  purge: boolean,
): Promise<"purged" | "disabled" | "absent"> {
  const live = join(ctx.paths.customNodesDir, id);
  const parked = `${live}.disabled`;
  // Ids ending in .disabled are refused now, but one registered before may be the live
  // folder of another node: it is never touched as if it were this node's parked code.
  const parkedIsANode = `${id}.disabled` in (await readPlugins(ctx.paths)).plugins;
  if (purge) {
    const had = (await exists(live)) || (!parkedIsANode && (await exists(parked)));
    await Deno.remove(live, { recursive: true }).catch(() => {});
    if (!parkedIsANode) await Deno.remove(parked, { recursive: true }).catch(() => {});
    return had ? "purged" : "absent";
  }
  if (parkedIsANode) {
    if (!(await exists(live))) return "absent";
    throw new GovError(
      `cannot park the code of custom node ${id}: ${parked} is the folder of registered node ${id}.disabled`,
      { hint: `remove node ${id}.disabled first, or remove ${id} deleting its code` },
    );
  }
  if (await exists(live)) {
    // An older parked copy is code too (another removal's, or a folder someone parked by
    // hand): it is kept under a dated name ComfyUI also skips, never deleted to make room.
    if (await exists(parked)) {
      const stamp = new Date().toISOString().replace(/[-:.]/g, "").slice(0, 15);
      await Deno.rename(parked, `${live}.${stamp}-${crypto.randomUUID().slice(0, 4)}.disabled`);
    }
    await Deno.rename(live, parked);
    return "disabled";
  }
  return (await exists(parked)) ? "disabled" : "absent";
}

/**
 * Parks the code of nodes a rollback unregistered as `<id>.disabled` (their packages are
 * gone with the rollback). Returns the ids disabled.
 *
 * @example
 * ```ts
 * import { disableCode } from "@/gov/steps/node_code.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * await disableCode(ctx, ["impact"]);
 * ```
 */
export async function disableCode(ctx: GovContext, ids: string[]): Promise<string[]> {
  const done: string[] = [];
  for (const id of ids) {
    if ((await retireCode(ctx, validateName("custom node id", id), false)) === "disabled") {
      done.push(id);
    }
  }
  return done;
}

/**
 * Re-enables the code of nodes a rollback registered again, when their folder was parked
 * as `<id>.disabled` by `gov node remove`. Returns the ids re-enabled.
 *
 * @example
 * ```ts
 * import { reenableCode } from "@/gov/steps/node_code.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * await reenableCode(ctx, ["impact"]);
 * ```
 */
export async function reenableCode(ctx: GovContext, ids: string[]): Promise<string[]> {
  const done: string[] = [];
  for (const id of ids) {
    const live = join(ctx.paths.customNodesDir, validateName("custom node id", id));
    if (!(await exists(live)) && (await exists(`${live}.disabled`))) {
      await Deno.rename(`${live}.disabled`, live);
      done.push(id);
    }
  }
  return done;
}
