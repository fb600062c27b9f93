/**
 * How the command line words an error. Capability layers name the thing and the fix
 * without knowing the flags (a library caller has none); the errors that concern an input a
 * flag gave carry what the CLI needs to word the fix as that flag, here, in one place.
 *
 * @module
 */
import { type GovError, InvalidInputError, MissingInputError } from "../errors.ts";
import {
  CoreImpactError,
  NeedsResolutionError,
  PromoteFailedError,
  PromoteGateError,
} from "../gov/mod.ts";
import { EnvironmentSelectionError } from "../workspace/environment.ts";
import { UnknownNodeError } from "../workflow/errors.ts";
import { WorkspaceNotFoundError } from "../workspace/root.ts";
import { ParameterError } from "../workflow/errors.ts";

/** The flag that names each input of {@linkcode MissingInputError}. */
const INPUT_FLAGS: Record<string, string> = {
  "workspace folder": "--workspace",
  "environment folder": "--env-dir",
  "requirements file": "--requirements",
};

/** The flag that gives each input of {@linkcode InvalidInputError}. */
const VALUE_FLAGS: Record<string, string> = {
  "git ref": "--ref",
};

/**
 * The message and hint the CLI prints for `err`: the error's own, except where the fix is a
 * flag.
 *
 * @example
 * ```ts
 * import { cliWording } from "@/cli/wording.ts";
 * import { EnvironmentSelectionError } from "@/workspace/environment.ts";
 *
 * cliWording(new EnvironmentSelectionError("both")).message;
 * // "--env and --env-dir exclude each other"
 * ```
 */
export function cliWording(err: GovError): { message: string; hint?: string } {
  const own = { message: err.message, hint: err.hint };
  if (err instanceof MissingInputError) {
    const flag = INPUT_FLAGS[err.input];
    if (!flag) return own;
    const what = err.input.endsWith("file") ? "file" : "folder";
    return { ...own, hint: `pass an existing ${what} to ${flag}` };
  }
  if (err instanceof ParameterError) {
    return { ...own, message: `--set ${err.key}: ${err.problem}` };
  }
  if (err instanceof InvalidInputError) {
    const flag = VALUE_FLAGS[err.input];
    return flag ? { ...own, message: `invalid ${flag} '${err.value}'` } : own;
  }
  if (err instanceof EnvironmentSelectionError) {
    switch (err.reason) {
      case "both":
        return {
          message: "--env and --env-dir exclude each other",
          hint: "pass --env NAME for an environment of the workspace, or --env-dir DIR",
        };
      case "no-workspace":
        return {
          message: `--env ${err.env} needs a workspace and none was found`,
          hint: "pass --workspace DIR, or use --env-dir DIR for a standalone environment",
        };
      case "none":
        return {
          message: err.message,
          hint: err.environments
            ? `pass --env NAME (one of: ${err.environments.join(", ") || "none yet"})`
            : "pass --env-dir DIR, or --workspace DIR --env NAME",
        };
    }
  }
  if (err instanceof WorkspaceNotFoundError) {
    return {
      ...own,
      hint:
        "pass --workspace DIR, set COMFYGIT_HOME, or run from inside a folder holding .metadata/",
    };
  }
  if (err instanceof UnknownNodeError && err.hint && !err.hint.includes("--allow-unknown")) {
    return { ...own, hint: `${err.hint}; --allow-unknown converts anyway, best effort` };
  }
  if (err instanceof PromoteGateError) {
    const pin = `gov resolve ${err.txid} --pin <package>==<version>`;
    const hint = err.gate === "core"
      ? `review \`gov tx inspect ${err.txid}\`, then rerun with --approve-core to accept it`
      : err.gate === "failed"
      ? `its ComfyUI test start failed (${err.detail}); promote anyway with --allow-failed-run`
      : err.gate === "needs_resolution"
      ? `resolve the conflict first: ${pin}`
      : err.hint;
    return { ...own, hint };
  }
  if (err instanceof CoreImpactError) {
    return {
      ...own,
      hint:
        `the lock built for it (with its pins) moves them; review \`gov tx inspect ${err.txid}\`, then rerun with --approve-core to accept it`,
    };
  }
  if (err instanceof NeedsResolutionError) {
    return {
      ...own,
      hint: `uv says: ${err.uvSays}\n  full report: ${err.reportPath}\n  ` +
        `then pin versions: gov resolve ${err.txid} --pin <package>==<version>`,
    };
  }
  if (err instanceof PromoteFailedError && !err.resyncError) {
    const tx = err.txid;
    return {
      ...own,
      hint:
        `see \`gov tx inspect ${tx}\`; after fixing the cause, retry with \`gov resolve ${tx}\` (add --pin P==V to change pins) and \`gov tx promote ${tx}\``,
    };
  }
  return own;
}
