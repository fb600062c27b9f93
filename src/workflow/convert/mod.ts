/**
 * UI workflow to API prompt, the way ComfyUI's own frontend does it when you press Queue
 * (`graphToPrompt` over `ExecutableNodeDTO`s in Comfy-Org/ComfyUI_frontend), without a
 * browser or a backend: only the node definitions (`/object_info`) are needed.
 *
 * The rules, in the frontend's words:
 * - Every node is emitted under its execution id except virtual nodes (Reroute,
 *   PrimitiveNode, Note, MarkdownNote, subgraph and group-node containers, and nodes that
 *   frontend extensions register as virtual, see {@linkcode FRONTEND_VIRTUAL_CLASSES}) and
 *   muted (mode 2) or bypassed (mode 4) nodes.
 * - Widget values are positional (`widgets_values`) in the order of the class's widget
 *   layout (`widgetLayout`), or by name when the file has `widgets_values_named`
 *   or object-form values; hidden positions (seed control, combo filter, upload button)
 *   never reach the prompt; missing values take the widget default; arrays are
 *   wrapped as `{"__value__": [...]}`; STRING widgets with `dynamicPrompts` resolve
 *   `{a|b}` choices and strip comments; save nodes expand `%date:...%` and `%Node.widget%`
 *   in `filename_prefix`.
 * - A linked input becomes `[originId, slot]` and overrides a widget of the same name.
 *   Links are followed through Reroutes and other pass-through virtual nodes, through
 *   bypassed nodes (same slot if type-compatible, else the first input of a matching type),
 *   into subgraphs (outputs) and out of them (inputs, or the instance's promoted widget,
 *   also as `properties.proxyWidgets`). Muted or bypassed subgraph instances mute or pass
 *   through as a whole.
 *   A PrimitiveNode writes its value into the widgets it feeds.
 * - Inputs left pointing at nodes that were not emitted are dropped.
 * - Legacy group nodes (`extra.groupNodes`) expand the way the frontend converts them to
 *   subgraphs on load: `"<new instance id>:<new inner id>"`, whatever the group's mode.
 * - Subgraph inner nodes whose ids are taken are renumbered on load, as the frontend does.
 * - Classes missing from the definitions are reported together ({@linkcode UnknownNodeError});
 *   frontend-only classes are recognised by name ({@linkcode FRONTEND_VIRTUAL_CLASSES},
 *   `virtualClasses`), since gov cannot run the extension code that marks them virtual.
 *
 * @module
 */
import { WorkflowError } from "../errors.ts";
import type { ObjectInfo } from "../object_info.ts";
import type { ApiPrompt } from "../types.ts";
import { isObject } from "./graph.ts";
import { Converter, type ConvertOptions } from "./converter.ts";

export { FRONTEND_VIRTUAL_CLASSES, isValidConnection } from "./graph.ts";
export { processDynamicPrompt } from "./text.ts";
export type { ConvertOptions } from "./converter.ts";

/**
 * Whether `x` is an API prompt: a non-empty object whose every value has a string
 * `class_type` and an object `inputs`.
 *
 * @example
 * ```ts
 * isApiPrompt({ "3": { class_type: "KSampler", inputs: {} } }); // true
 * isApiPrompt({ nodes: [], links: [] }); // false
 * ```
 */
export function isApiPrompt(x: unknown): x is ApiPrompt {
  if (!isObject(x)) return false;
  const values = Object.values(x);
  if (values.length === 0) return false;
  return values.every((v) => isObject(v) && typeof v.class_type === "string" && isObject(v.inputs));
}

/**
 * Whether `x` looks like a UI workflow (has a `nodes` array).
 *
 * @example
 * ```ts
 * isUiWorkflow({ nodes: [], links: [] }); // true
 * ```
 */
export function isUiWorkflow(x: unknown): boolean {
  return isObject(x) && Array.isArray(x.nodes);
}

/**
 * Whether `x` is a workflow in a form {@linkcode toApiPrompt} takes: an API prompt, a UI
 * workflow, or either wrapped (`{prompt}`, `{workflow}`). Anything else is no workflow, and
 * is refused as such before asking for node definitions it could not use.
 *
 * @example
 * ```ts
 * isWorkflowDocument({ nodes: [], links: [] }); // true
 * isWorkflowDocument([1, 2]); // false
 * ```
 */
export function isWorkflowDocument(x: unknown): boolean {
  if (isApiPrompt(x) || isUiWorkflow(x)) return true;
  return isObject(x) && (isApiPrompt(x.prompt) || isUiWorkflow(x.workflow));
}

/**
 * Whether converting `doc` needs node definitions: true for UI workflows, false for API
 * prompts and `/prompt` request bodies.
 *
 * @example
 * ```ts
 * const doc: unknown = JSON.parse('{"nodes": [], "links": []}');
 * if (needsObjectInfo(doc)) console.log("pass --object-info");
 * ```
 */
export function needsObjectInfo(doc: unknown): boolean {
  if (isApiPrompt(doc)) return false;
  return !(isObject(doc) && !Array.isArray(doc.nodes) && isApiPrompt(doc.prompt));
}

/**
 * Returns an API prompt for either format: an API prompt is returned unchanged (the same
 * object); a `/prompt` request body (`{"prompt": {...}}`) gives its prompt; a UI workflow
 * (also under a `workflow` key) is converted with {@linkcode workflowToPrompt}, which needs
 * `objectInfo`.
 *
 * @example
 * ```ts
 * import { loadObjectInfo } from "../object_info.ts";
 * const text = await Deno.readTextFile("workflow.json");
 * const prompt = toApiPrompt(JSON.parse(text), await loadObjectInfo("object_info.json"));
 * ```
 */
export function toApiPrompt(
  workflow: unknown,
  objectInfo?: ObjectInfo,
  opts: ConvertOptions = {},
): ApiPrompt {
  if (isApiPrompt(workflow)) return workflow;
  if (isObject(workflow) && !Array.isArray(workflow.nodes)) {
    if (isApiPrompt(workflow.prompt)) return workflow.prompt;
    // Tools that keep both forms ({workflow, prompt}, PNG metadata dumps) or only the UI one.
    if (isUiWorkflow(workflow.workflow)) workflow = workflow.workflow;
  }
  if (!isUiWorkflow(workflow)) {
    throw new WorkflowError(
      "not a ComfyUI workflow: expected a UI workflow (with a `nodes` list) or an API prompt " +
        "(node ids mapping to {class_type, inputs})",
    );
  }
  if (!objectInfo) {
    throw new WorkflowError(
      "a UI workflow needs node definitions to be converted",
      "pass --object-info FILE (a saved /object_info) or --backend ID",
    );
  }
  return workflowToPrompt(workflow, objectInfo, opts);
}

/**
 * Converts a UI workflow to the API prompt the ComfyUI frontend would queue for it.
 * Throws {@linkcode UnknownNodeError} listing every class the object info lacks (unless
 * `allowUnknown`), and {@linkcode WorkflowError} for documents that are not workflows.
 *
 * @example
 * ```ts
 * import { loadObjectInfo } from "../object_info.ts";
 * const info = await loadObjectInfo("object_info.json");
 * const prompt = workflowToPrompt(JSON.parse(await Deno.readTextFile("wf.json")), info);
 * console.log(prompt["3"].inputs.steps);
 * ```
 */
export function workflowToPrompt(
  workflow: unknown,
  objectInfo: ObjectInfo,
  opts: ConvertOptions = {},
): ApiPrompt {
  if (!isUiWorkflow(workflow)) {
    if (isApiPrompt(workflow)) {
      throw new WorkflowError("this is already an API prompt; use toApiPrompt to accept both");
    }
    throw new WorkflowError("not a UI workflow: it has no `nodes` list");
  }
  return new Converter(workflow as Record<string, unknown>, objectInfo, opts).run();
}
