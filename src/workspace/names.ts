/**
 * Validation of the names users type that become file names: environments, custom nodes,
 * transactions, snapshots, backends. One rule for all, so none can escape its folder.
 *
 * @module
 */
import { UsageError } from "../errors.ts";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * Returns `value` when it is a safe name (letters, digits, `.`, `_`, `-`; starts with a
 * letter or digit; no `..`; at most 100 characters), else throws a {@linkcode UsageError}
 * naming the kind of thing.
 *
 * @example
 * ```ts
 * import { validateName } from "@/workspace/names.ts";
 *
 * const id = validateName("custom node id", "ComfyUI-Impact-Pack");
 * ```
 */
export function validateName(kind: string, value: string): string {
  if (!NAME.test(value) || value.includes("..")) {
    throw new UsageError(
      `invalid ${kind} '${value}'`,
      {
        hint:
          "use letters, digits, '.', '_' and '-' only, starting with a letter or digit (no '/' or '..')",
      },
    );
  }
  return value;
}

/**
 * Whether `value` is a safe name, without throwing.
 *
 * @example
 * ```ts
 * import { isValidName } from "@/workspace/names.ts";
 *
 * if (!isValidName("../etc")) console.log("rejected");
 * ```
 */
export function isValidName(value: string): boolean {
  return NAME.test(value) && !value.includes("..");
}

/**
 * Returns `id` when it is a valid custom node id: a safe name ({@linkcode validateName})
 * that ComfyUI would load as `custom_nodes/<id>`. ComfyUI skips entries ending in
 * `.disabled` (gov parks removed nodes that way, so such an id would also collide with the
 * parked code of node `<id without .disabled>`), `__pycache__` and hidden entries; a
 * `.py` suffix would make a file of the same name load instead of the folder.
 *
 * @example
 * ```ts
 * import { validateNodeId } from "@/workspace/names.ts";
 *
 * validateNodeId("ComfyUI-Impact-Pack");
 * ```
 */
export function validateNodeId(id: string): string {
  validateName("custom node id", id);
  const lower = id.toLowerCase();
  if (lower.endsWith(".disabled") || lower.endsWith(".py")) {
    throw new UsageError(`invalid custom node id '${id}'`, {
      hint: `ComfyUI does not load a custom_nodes entry ending in '${
        lower.endsWith(".py") ? ".py" : ".disabled"
      }' as a package (gov parks removed nodes as <id>.disabled); pick an id without it`,
    });
  }
  return id;
}
