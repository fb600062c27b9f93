/**
 * `gov node add`: clone a custom node and register it with group `node-<id>` and no
 * managed dependencies yet. It clones into a hidden folder beside `custom_nodes/` and
 * renames it into place, so a failed or interrupted clone leaves nothing behind (the
 * journal's `node-add` entry lets recovery remove it).
 *
 * @module
 */
import { join } from "node:path";
import { GovError, InvalidInputError, RefusedError, ToolError, UsageError } from "../../errors.ts";
import { exists } from "../../fs/atomic.ts";
import { runProcess, SpawnError } from "../../process/run.ts";
import { validateName, validateNodeId } from "../../workspace/names.ts";
import { timedStep } from "../../uv/driver.ts";
import { beginJournal, type JournalHandle } from "../state/journal.ts";
import { nodeGroup } from "../state/pyproject.ts";
import type { PluginRecord, PluginsFile } from "../state/schema.ts";
import { newId, nowIso, readPlugins, writePlugins } from "../state/store.ts";
import type { GovContext } from "../steps/context.ts";
import type { NodeInfo } from "../steps/node_code.ts";
import type { RecoverJournal } from "../steps/undo.ts";
import { requireTruthIntact } from "../steps/guards.ts";

/** What `gov node add` clones. */
export interface NodeSource {
  /** Clone URL or path. */
  url: string;
  /** Branch, tag or commit to check out. */
  ref?: string;
}

/**
 * What a failed git run means, in the user's terms: git's own last line says it in git's
 * words ("fatal: couldn't find remote ref x"), which reads like an internal failure.
 */
export function explainGitFailure(
  stderr: string,
  subject: { url: string; ref?: string },
): { message: string; hint: string } {
  const text = stderr.toLowerCase();
  const ref = subject.ref ?? "";
  if (/no space left on device|read-only file system/.test(text)) {
    return {
      message: `git could not write the clone of ${subject.url}: ${
        text.includes("no space") ? "the disk is full" : "the file system is read-only"
      }`,
      hint: "free space on (or remount read-write) the file system holding ComfyUI, then retry",
    };
  }
  if (
    /pathspec .* did not match|does not take a path argument|unknown revision|couldn't find remote ref|not a commit|invalid reference|reference is not a tree|bad revision|remote branch .* not found/
      .test(text)
  ) {
    return {
      message: `git ref '${ref}' does not exist in ${subject.url}`,
      hint: "pass an existing branch, tag or commit (see `git ls-remote <url>`)",
    };
  }
  if (
    /could not resolve host|unable to access|connection refused|connection timed out|network is unreachable|failed to connect|operation timed out|could not read from remote/
      .test(text) &&
    !/repository .* not found|does not appear to be a git repository|invalid gitfile format|does not look like a v2 or v3 bundle/
      .test(text)
  ) {
    return {
      message: `${subject.url} is unreachable`,
      hint: "check the URL, the network and any proxy, then retry",
    };
  }
  if (
    /does not appear to be a git repository|not a git repository|repository .* not found|does not exist|no such file|invalid gitfile format|does not look like a v2 or v3 bundle/
      .test(text)
  ) {
    return {
      message: `${subject.url} is not a git repository`,
      hint: "pass the clone URL (or path) of the custom node's git repository",
    };
  }
  if (
    /authentication failed|terminal prompts disabled|could not read username|permission denied \(publickey/
      .test(text)
  ) {
    return {
      message: `${subject.url} needs credentials gov cannot give`,
      hint: "use a public clone URL, or configure git credentials for it",
    };
  }
  const last = stderr.trim().split("\n").filter((l) => l.trim()).slice(-1)[0] ?? "";
  return { message: `git failed on ${subject.url}: ${last.trim()}`, hint: "see git's message" };
}

/** A git step of `gov node add` failed; the message says what happened, not git's words. */
export class GitStepError extends ToolError {
  constructor(code: number, stderr: string, subject: { url: string; ref?: string }) {
    const { message, hint } = explainGitFailure(stderr, subject);
    super("git", code, stderr, hint);
    this.name = "GitStepError";
    this.message = `${message}; nothing was changed`;
  }
}

async function git(
  ctx: GovContext,
  args: string[],
  step: string,
  subject: { url: string; ref?: string },
): Promise<string> {
  const exe = ctx.env.config.tools.git ?? "git";
  try {
    // The exit code is judged inside the step, so a failed run is shown as failed.
    return await timedStep(ctx.onStep, step, async () => {
      const r = await runProcess(exe, args, {
        env: { ...ctx.childEnv, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "echo" },
        timeoutMs: 30 * 60_000,
      });
      if (r.code !== 0) throw new GitStepError(r.code, r.stderr, subject);
      return r.stdout.trim();
    });
  } catch (err) {
    if (err instanceof SpawnError) {
      throw new ToolError(
        "git",
        null,
        err.message,
        "install git or set [tools] git in config.toml",
      );
    }
    throw err;
  }
}

/**
 * Checks the arguments of `gov node add` before anything is locked or changed.
 *
 * @example
 * ```ts
 * import { checkNodeAdd } from "@/gov/ops/node_add.ts";
 *
 * checkNodeAdd("impact", { url: "https://github.com/ltdrdata/ComfyUI-Impact-Pack" });
 * ```
 */
export function checkNodeAdd(id: string, src: NodeSource): void {
  validateNodeId(id);
  if (!src.url || src.url.startsWith("-") || /[\0\n]/.test(src.url)) {
    throw new UsageError(`invalid git URL '${src.url}'`, {
      hint: "pass a clone URL or path, e.g. https://github.com/owner/repo",
    });
  }
  if (src.ref !== undefined && (!src.ref || src.ref.startsWith("-") || /\s/.test(src.ref))) {
    throw new InvalidInputError("git ref", src.ref, "pass a branch, tag or commit");
  }
}

/**
 * The checks every `node add` (git or registry) makes before touching disk: the id is free
 * (also as a uv group name), ComfyUI exists, the target folder does not. Returns the
 * target folder.
 *
 * @example
 * ```ts
 * import { checkFreeNodeSlot } from "@/gov/ops/node_add.ts";
 * import { type GovContext } from "@/gov/steps/context.ts";
 * import { type PluginsFile } from "@/gov/state/schema.ts";
 * declare const ctx: GovContext;
 * declare const reg: PluginsFile;
 *
 * const target = await checkFreeNodeSlot(ctx, reg, "impact");
 * ```
 */
export async function checkFreeNodeSlot(
  ctx: GovContext,
  reg: PluginsFile,
  id: string,
): Promise<string> {
  if (reg.plugins[id]) {
    throw new RefusedError(`custom node ${id} is already registered`, {
      hint: `see \`gov node list\`; remove it first with \`gov node remove ${id}\``,
    });
  }
  const clash = Object.values(reg.plugins).find((r) => nodeGroup(r.id) === nodeGroup(id));
  if (clash) {
    throw new UsageError(
      `custom node id ${id} would share dependency group ${
        nodeGroup(id)
      } with registered node ${clash.id}`,
      { hint: "uv treats case, '_', '.' and '-' alike in group names; pick another id" },
    );
  }
  if (!(await exists(ctx.env.comfyuiDir))) {
    throw new GovError(`ComfyUI folder ${ctx.env.comfyuiDir} does not exist`, {
      hint: "install ComfyUI there, or set [paths] comfyui_dir in config.toml",
    });
  }
  const target = join(ctx.paths.customNodesDir, id);
  if (await exists(target)) {
    throw new RefusedError(`${target} already exists; the registry was not changed`, {
      hint: "move the folder away, or pick another id",
    });
  }
  return target;
}

/**
 * Clones `url` into `<comfyui_dir>/custom_nodes/<id>` (optionally checking out `ref`) and
 * registers it with group `node-<id>` and no managed dependencies yet.
 *
 * @example
 * ```ts
 * import { nodeAdd } from "@/gov/ops/node_add.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * await nodeAdd(ctx, "impact", { url: "https://github.com/ltdrdata/ComfyUI-Impact-Pack" });
 * ```
 */
export async function nodeAdd(
  ctx: GovContext,
  id: string,
  src: NodeSource,
): Promise<NodeInfo> {
  await requireTruthIntact(ctx);
  const reg = await readPlugins(ctx.paths);
  const target = await checkFreeNodeSlot(ctx, reg, id);
  await Deno.mkdir(ctx.paths.customNodesDir, { recursive: true });
  // Beside custom_nodes/, not in it: ComfyUI must never import a half-cloned node.
  const tmp = join(ctx.env.comfyuiDir, `.gov-clone-${id}-${newId("c").slice(-4)}`);
  const j = await beginJournal(ctx.paths, "node-add", { node_id: id, tmp, target }, ctx.getenv);
  let placed = false;
  try {
    await git(ctx, ["clone", "--quiet", "--", src.url, tmp], `git clone ${id}`, src);
    if (src.ref) {
      await git(
        ctx,
        ["-C", tmp, "checkout", "--quiet", "--detach", src.ref],
        `git checkout ${src.ref}`,
        src,
      );
    }
    const commit = await git(ctx, ["-C", tmp, "rev-parse", "HEAD"], "git rev-parse", src);
    await j.step("cloned");
    await Deno.rename(tmp, target);
    placed = true;
    await j.step("placed");
    const now = nowIso();
    const rec: PluginRecord = {
      id,
      group: nodeGroup(id),
      url: src.url,
      ref: src.ref ?? null,
      commit,
      managed_deps: [],
      added_at: now,
      updated_at: now,
      last_txid: null,
    };
    reg.plugins[id] = rec;
    await writePlugins(ctx.paths, reg);
    await j.finish();
    return { ...rec, path: target, code_present: true };
  } catch (err) {
    await Deno.remove(placed ? target : tmp, { recursive: true }).catch(() => {});
    await j.finish();
    throw err;
  }
}

/**
 * Undo of an interrupted `node add`: without a registry record, the clone goes away.
 */
async function undoNodeAdd(ctx: GovContext, j: JournalHandle): Promise<string> {
  const id = j.data.node_id as string;
  const reg = await readPlugins(ctx.paths);
  let what = "registration was complete";
  if (!reg.plugins[id]) {
    // Paths are rebuilt from the validated id, never taken from the journal as they are.
    validateName("custom node id", id);
    const tmp = String(j.data.tmp ?? "");
    if (tmp.startsWith(join(ctx.env.comfyuiDir, `.gov-clone-${id}-`))) {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
    if (j.journal.steps.some((s) => s.step === "placed")) {
      await Deno.remove(join(ctx.paths.customNodesDir, id), { recursive: true }).catch(() => {});
    }
    what = "removed its partial clone";
  }
  await j.finish();
  return `undid interrupted \`gov node add ${id}\` (${what})`;
}

/**
 * Recovery of an interrupted `node add`: it is always undone (a registered node is
 * complete, so only its journal goes).
 *
 * @example
 * ```ts
 * import { recoverNodeAdd } from "@/gov/ops/node_add.ts";
 * import { makeContext } from "@/gov/steps/context.ts";
 * import { readJournal, resumeJournal } from "@/gov/state/journal.ts";
 * import { loadEnvironment } from "@/workspace/environment.ts";
 *
 * const ctx = makeContext(loadEnvironment("/srv/comfy/environments/prod"));
 * const journal = await readJournal(ctx.paths);
 * if (journal?.op === "node-add") {
 *   console.log(await recoverNodeAdd(ctx, resumeJournal(ctx.paths, journal, ctx.getenv), ""));
 * }
 * ```
 */
export const recoverNodeAdd: RecoverJournal = (ctx, j) => undoNodeAdd(ctx, j);
