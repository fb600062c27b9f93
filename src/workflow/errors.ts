/**
 * Errors of the workflow layer. All are bad input (exit 2): the user gave a workflow, an
 * object info or a `--set` that gov cannot use, and gov changed nothing.
 *
 * @module
 */
import { UsageError } from "../errors.ts";

/**
 * The workflow uses node classes the node definitions (`/object_info`) do not know, so its
 * widget values cannot be mapped to input names. Lists every missing class at once.
 *
 * @example
 * ```ts
 * import { UnknownNodeError } from "@/workflow/errors.ts";
 *
 * throw new UnknownNodeError([{ classType: "ImageResize+", nodeIds: ["34"] }]);
 * ```
 */
export class UnknownNodeError extends UsageError {
  /** Each unknown class with the ids of the nodes that use it. */
  missing: { classType: string; nodeIds: string[] }[];
  constructor(missing: { classType: string; nodeIds: string[] }[], hint?: string) {
    const list = missing.map((m) => `${m.classType} (node ${m.nodeIds.join(", ")})`).join("; ");
    super(
      `workflow uses ${missing.length} node ${
        missing.length === 1 ? "class" : "classes"
      } the node definitions do not know: ${list}`,
      {
        hint: hint ??
          "install the custom nodes that provide them, or convert against a backend that has them",
      },
    );
    this.name = "UnknownNodeError";
    this.missing = missing;
  }

  /** The unknown class names, sorted. */
  get classTypes(): string[] {
    return this.missing.map((m) => m.classType);
  }
}

/**
 * The document is not a workflow gov can read (neither a UI workflow nor an API prompt, or
 * structurally broken).
 *
 * @example
 * ```ts
 * import { WorkflowError } from "@/workflow/errors.ts";
 *
 * throw new WorkflowError("workflow.json: nodes[3] has no type");
 * ```
 */
export class WorkflowError extends UsageError {
  constructor(message: string, hint?: string) {
    super(message, {
      hint: hint ?? "give a workflow saved by ComfyUI (UI format) or an API prompt",
    });
    this.name = "WorkflowError";
  }
}

/**
 * A `--set KEY=VALUE` (or a {@linkcode patchPrompt} pair) names no input, several inputs, or
 * a value the input does not accept. The message names the key; the hint says the fix
 * (candidates, range, choices).
 *
 * @example
 * ```ts
 * import { ParameterError } from "@/workflow/errors.ts";
 *
 * throw new ParameterError("steps", "must be an integer from 1 to 10000, got 'many'");
 * ```
 */
export class ParameterError extends UsageError {
  /** The key as the user wrote it. */
  key: string;
  /** What is wrong with it. */
  problem: string;
  constructor(key: string, problem: string, hint?: string) {
    // Worded for every caller (the gateway's `set` field too); the CLI says `--set`.
    super(`set ${key}: ${problem}`, hint ? { hint } : undefined);
    this.name = "ParameterError";
    this.key = key;
    this.problem = problem;
  }
}
