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
 *   layout ({@linkcode widgetLayout}), or by name when the file has `widgets_values_named`
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
 * - Legacy group nodes (`extra.groupNodes`) expand to `"<group id>:<index>"` nodes.
 * - Classes missing from the definitions are reported together ({@linkcode UnknownNodeError});
 *   frontend-only classes are recognised by name ({@linkcode FRONTEND_VIRTUAL_CLASSES},
 *   `virtualClasses`), since gov cannot run the extension code that marks them virtual.
 *
 * @module
 */
import { UnknownNodeError, WorkflowError } from "./errors.ts";
import {
  classTitle,
  definitionInputs,
  type InputInfo,
  type NodeDefinition,
  type ObjectInfo,
  widgetDefault,
  widgetLayout,
  type WidgetSlot,
} from "./object_info.ts";
import type { ApiNode, ApiPrompt } from "./types.ts";

/**
 * Node classes the frontend or a well-known extension registers as virtual (drawn in the
 * UI, never sent to the backend). gov cannot run extension JavaScript, so it knows them by
 * name; `opts.virtualClasses` adds more. `ComfyDeploy` (comfyui-deploy's workflow-metadata
 * node) is one: its JS sets `isVirtualNode = true` and no Python class exists for it.
 */
export const FRONTEND_VIRTUAL_CLASSES: ReadonlySet<string> = new Set([
  // ComfyUI frontend core
  "Reroute",
  "PrimitiveNode",
  "Note",
  "MarkdownNote",
  // comfyui-deploy
  "ComfyDeploy",
  // ComfyUI-KJNodes (Get redirects to the Set with the same name)
  "SetNode",
  "GetNode",
  // rgthree-comfy
  "Reroute (rgthree)",
  "Fast Muter (rgthree)",
  "Fast Bypasser (rgthree)",
  "Fast Groups Muter (rgthree)",
  "Fast Groups Bypasser (rgthree)",
  "Fast Actions Button (rgthree)",
  "Mute / Bypass Repeater (rgthree)",
  "Mute / Bypass Relay (rgthree)",
  "Random Unmuter (rgthree)",
  "Node Collector (rgthree)",
  "Bookmark (rgthree)",
  "Label (rgthree)",
  // comfyui-mtb
  "Note Plus (mtb)",
]);

// Save nodes whose `filename_prefix` the frontend runs search-and-replace on.
const SAVE_NODE_TYPES = new Set([
  "SaveImage",
  "SaveImageAdvanced",
  "SaveSVGNode",
  "SaveVideo",
  "SaveAnimatedWEBP",
  "SaveWEBM",
  "SaveAudio",
  "SaveAudioMP3",
  "SaveAudioOpus",
  "SaveAudioAdvanced",
  "SaveGLB",
  "SaveAnimatedPNG",
  "CLIPSave",
  "VAESave",
  "ModelSave",
  "LoraSave",
  "SaveLatent",
]);

const MODE_NEVER = 2;
const MODE_BYPASS = 4;
const SUBGRAPH_INPUT_ID = "-10";
const SUBGRAPH_OUTPUT_ID = "-20";

/** Options of {@linkcode workflowToPrompt}. */
export interface ConvertOptions {
  /**
   * Convert even when some node classes are not in the object info. Such nodes keep their
   * linked inputs by name and their widget values as `widget_<n>` (n = position in
   * `widgets_values`), or by name when the workflow stores them as an object: enough to
   * inspect and route the prompt, not to execute it.
   */
  allowUnknown?: boolean;
  /** More classes to treat as frontend-only virtual nodes (dropped, links pass through). */
  virtualClasses?: Iterable<string>;
  /** Resolve `{a|b}` dynamic prompts like the frontend (default true). */
  dynamicPrompts?: boolean;
  /** Random source for dynamic prompts (default Math.random). */
  random?: () => number;
  /** Clock for `%date:...%` in save-node filename prefixes (default now). */
  now?: () => Date;
  /** Receives one line per thing worth telling the user (dropped links, best-effort nodes). */
  onWarning?: (message: string) => void;
}

/**
 * Whether `x` is an API prompt: a non-empty object whose every value has a string
 * `class_type` and an object `inputs`.
 *
 * @example
 * ```ts
 * import { isApiPrompt } from "@/workflow/convert.ts";
 *
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
 * import { isUiWorkflow } from "@/workflow/convert.ts";
 *
 * isUiWorkflow({ nodes: [], links: [] }); // true
 * ```
 */
export function isUiWorkflow(x: unknown): boolean {
  return isObject(x) && Array.isArray(x.nodes);
}

/**
 * Whether converting `doc` needs node definitions: true for UI workflows, false for API
 * prompts and `/prompt` request bodies.
 *
 * @example
 * ```ts
 * import { needsObjectInfo } from "@/workflow/convert.ts";
 * import { type ObjectInfo } from "@/workflow/object_info.ts";
 * import { type UiWorkflow } from "@/workflow/types.ts";
 * declare const doc: UiWorkflow;
 * declare const info: ObjectInfo;
 *
 * if (needsObjectInfo(doc) && !info) throw new Error("pass --object-info");
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
 * import { toApiPrompt } from "@/workflow/convert.ts";
 * import { loadObjectInfo } from "@/workflow/object_info.ts";
 * declare const text: string;
 *
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
 * import { workflowToPrompt } from "@/workflow/convert.ts";
 * import { loadObjectInfo } from "@/workflow/object_info.ts";
 *
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

// ---------------------------------------------------------------------------------------
// Normalized graph model

interface Input {
  name: string;
  type: string;
  link: string | null;
  widgetName?: string;
}

interface Output {
  name: string;
  type: string;
  links: string[];
}

interface Node {
  id: string;
  type: string;
  title?: string;
  mode: number;
  inputs: Input[];
  outputs: Output[];
  widgetsValues: unknown[] | Record<string, unknown> | undefined;
  /** `widgets_values_named` (newer frontends): the same values keyed by widget name. */
  namedValues?: Record<string, unknown>;
  properties: Record<string, unknown>;
  /** Widget values set from outside the node (group-node values), by widget name. */
  presets?: Map<string, unknown>;
}

interface Link {
  id: string;
  originId: string;
  originSlot: number;
  targetId: string;
  targetSlot: number;
  type: string;
}

interface Graph {
  nodes: Node[];
  byId: Map<string, Node>;
  links: Map<string, Link>;
}

interface SubgraphDef {
  id: string;
  name: string;
  graph: Graph;
  inputs: { name: string; type: string; linkIds: string[] }[];
  outputs: { name: string; type: string; linkIds: string[] }[];
}

/** A node in one place of the expanded workflow (the frontend's ExecutableNodeDTO). */
interface Exec {
  id: string;
  node: Node;
  graph: Graph;
  /** Execution ids of the subgraph instances this node sits in, outermost first. */
  path: string[];
  /** The instance this node sits in (when inside a subgraph). */
  instance?: Exec;
  /** For a subgraph instance: its definition. */
  subgraph?: SubgraphDef;
  def?: NodeDefinition;
  virtual: boolean;
  /** Widget values applied from outside (PrimitiveNode, subgraph proxies), by widget name. */
  applied: Map<string, unknown>;
  /** For a subgraph instance: promoted values from `properties.proxyWidgets`, by input name. */
  proxied?: Map<string, unknown>;
  /** Computed widget values by widget name (value slots only); filled lazily. */
  widgetValues?: Map<string, unknown>;
}

interface Resolved {
  originId?: string;
  originSlot?: number;
  widgetValue?: { value: unknown };
}

class Converter {
  private readonly virtualClasses: Set<string>;
  private readonly subgraphs = new Map<string, SubgraphDef>();
  private readonly execs = new Map<string, Exec>();
  private readonly order: Exec[] = [];
  private readonly warn: (m: string) => void;
  private readonly unknown = new Map<string, Set<string>>();
  private readonly random: () => number;
  private replacementNodes?: Exec[];

  constructor(
    private readonly doc: Record<string, unknown>,
    private readonly objectInfo: ObjectInfo,
    private readonly opts: ConvertOptions,
  ) {
    this.virtualClasses = new Set([...FRONTEND_VIRTUAL_CLASSES, ...(opts.virtualClasses ?? [])]);
    this.warn = opts.onWarning ?? (() => {});
    this.random = opts.random ?? Math.random;
  }

  run(): ApiPrompt {
    this.collectSubgraphs(this.doc, new Set());
    const root = parseGraph(this.doc.nodes as unknown[], this.doc.links, "workflow");
    const groupDefs = isObject(this.doc.extra) && isObject(this.doc.extra.groupNodes)
      ? this.doc.extra.groupNodes
      : {};
    expandGroupNodes(
      root,
      groupDefs,
      this.objectInfo,
      this.warn,
      (cls, id) => this.noteUnknown(cls, id),
    );
    this.enumerate(root, [], undefined, new Set());
    if (this.unknown.size > 0 && !this.opts.allowUnknown) {
      throw new UnknownNodeError(
        [...this.unknown].sort(([a], [b]) => a.localeCompare(b)).map(([classType, ids]) => ({
          classType,
          nodeIds: [...ids].sort(compareIds),
        })),
      );
    }
    for (const exec of this.order) {
      if (exec.subgraph && !isSkipped(exec.node.mode)) this.applyProxyWidgets(exec);
    }
    for (const exec of this.order) {
      if (exec.node.type === "PrimitiveNode") this.applyPrimitive(exec);
    }
    const output: ApiPrompt = {};
    for (const exec of this.order) {
      if (exec.virtual || exec.subgraph || isSkipped(exec.node.mode)) continue;
      output[exec.id] = this.emit(exec);
    }
    // The frontend drops inputs that point at nodes it did not emit (muted, virtual, ...).
    for (const [id, node] of Object.entries(output)) {
      for (const [name, value] of Object.entries(node.inputs)) {
        if (Array.isArray(value) && value.length === 2 && !(String(value[0]) in output)) {
          delete node.inputs[name];
          this.warn(
            `node ${id} (${node.class_type}): input '${name}' dropped, it comes from node ` +
              `${value[0]}, which is muted, bypassed without a matching input, or not executable`,
          );
        }
      }
    }
    return output;
  }

  private noteUnknown(classType: string, id: string) {
    const ids = this.unknown.get(classType) ?? new Set<string>();
    ids.add(id);
    this.unknown.set(classType, ids);
  }

  private collectSubgraphs(holder: Record<string, unknown>, seen: Set<unknown>) {
    const defs = isObject(holder.definitions) ? holder.definitions.subgraphs : undefined;
    if (!Array.isArray(defs)) return;
    for (const raw of defs) {
      if (!isObject(raw) || seen.has(raw)) continue;
      seen.add(raw);
      const id = String(raw.id ?? "");
      if (!id) throw new WorkflowError("workflow: a subgraph definition has no id");
      const slots = (list: unknown) =>
        (Array.isArray(list) ? list : []).map((s) => ({
          name: String(isObject(s) ? s.name ?? "" : ""),
          type: String(isObject(s) ? s.type ?? "*" : "*"),
          linkIds: (isObject(s) && Array.isArray(s.linkIds) ? s.linkIds : []).map(String),
        }));
      this.subgraphs.set(id, {
        id,
        name: String(raw.name ?? id),
        graph: parseGraph(
          Array.isArray(raw.nodes) ? raw.nodes : [],
          raw.links,
          `subgraph '${raw.name ?? id}'`,
        ),
        inputs: slots(raw.inputs),
        outputs: slots(raw.outputs),
      });
      this.collectSubgraphs(raw, seen);
    }
  }

  /** Builds the executable nodes in execution order, descending into subgraph instances. */
  private enumerate(graph: Graph, path: string[], instance: Exec | undefined, stack: Set<string>) {
    for (const node of executionOrder(graph)) {
      const id = [...path, node.id].join(":");
      const subgraph = this.subgraphs.get(node.type);
      const def = subgraph ? undefined : this.objectInfo[node.type];
      const virtual = !subgraph && this.virtualClasses.has(node.type) && !def;
      const exec: Exec = {
        id,
        node,
        graph,
        path,
        instance,
        subgraph,
        def,
        virtual,
        applied: new Map(),
      };
      this.execs.set(id, exec);
      this.order.push(exec);
      if (subgraph) {
        if (isSkipped(node.mode)) continue;
        if (stack.has(subgraph.id)) {
          throw new WorkflowError(
            `workflow: subgraph '${subgraph.name}' contains itself (through node ${id})`,
          );
        }
        const inner = new Set(stack).add(subgraph.id);
        this.enumerate(subgraph.graph, [...path, node.id], exec, inner);
      } else if (!def && !virtual && !isSkipped(node.mode)) {
        this.noteUnknown(node.type, id);
      }
    }
  }

  // -------------------------------------------------------------------------------------
  // Widget values

  /** The node's widget values by widget name, as its widgets hold them before queueing. */
  private widgetValues(exec: Exec): Map<string, unknown> {
    if (exec.widgetValues) return exec.widgetValues;
    const values = new Map<string, unknown>();
    exec.widgetValues = values;
    const node = exec.node;
    const raw = node.widgetsValues;
    if (exec.def) {
      const layout = widgetLayout(exec.def, node.type);
      layout.forEach((slot, i) => {
        if (slot.kind !== "value" || !slot.input) return;
        let value: unknown;
        // Names beat positions: they survive a node definition gaining or losing widgets.
        if (node.namedValues && slot.name in node.namedValues) value = node.namedValues[slot.name];
        else if (Array.isArray(raw)) value = raw[i];
        else if (isObject(raw)) value = raw[slot.name];
        if (value === undefined) value = widgetDefault(slot.input);
        values.set(slot.name, value);
      });
    } else if (exec.subgraph) {
      // Promoted widgets of a subgraph instance: handled by promotedValue().
    } else if (!exec.virtual) {
      if (Array.isArray(raw)) raw.forEach((v, i) => values.set(`widget_${i}`, v));
      else if (isObject(raw)) { for (const [k, v] of Object.entries(raw)) values.set(k, v); }
    }
    for (const [name, value] of node.presets ?? []) values.set(name, value);
    for (const [name, value] of exec.applied) values.set(name, value);
    return values;
  }

  private emit(exec: Exec): ApiNode {
    const node = exec.node;
    const inputs: Record<string, unknown> = {};
    const values = this.widgetValues(exec);
    const layout = exec.def ? widgetLayout(exec.def, node.type) : undefined;
    if (layout) {
      for (const slot of layout) {
        if (slot.kind !== "value" || !slot.input) continue;
        const value = this.serializeWidget(exec, slot, values.get(slot.name));
        if (value !== undefined) inputs[slot.name] = wrap(value);
      }
    } else {
      if (values.size > 0) {
        this.warn(
          `node ${exec.id} (${node.type}): class unknown to the node definitions, widget values ` +
            `kept ${Array.isArray(node.widgetsValues) ? "as widget_<n> (best effort)" : "by name"}`,
        );
      }
      for (const [name, value] of values) if (value !== undefined) inputs[name] = wrap(value);
    }
    node.inputs.forEach((input, slot) => {
      if (input.link === null) return;
      const resolved = this.resolveInput(exec, slot, undefined, new Set());
      if (!resolved) return;
      if (resolved.widgetValue) {
        const value = resolved.widgetValue.value;
        if (value !== undefined) inputs[input.name] = wrap(value);
        return;
      }
      inputs[input.name] = [resolved.originId!, resolved.originSlot!];
    });
    return {
      inputs,
      class_type: node.type,
      _meta: { title: node.title ?? classTitle(this.objectInfo, node.type) },
    };
  }

  /** What the widget's serializeValue returns (dynamic prompts, save-node replacements). */
  private serializeWidget(exec: Exec, slot: WidgetSlot, value: unknown): unknown {
    const input = slot.input!;
    if (
      typeof value === "string" && input.type === "STRING" && input.options.dynamicPrompts &&
      this.opts.dynamicPrompts !== false
    ) {
      value = processDynamicPrompt(value, this.random);
    }
    if (
      typeof value === "string" && slot.name === "filename_prefix" &&
      SAVE_NODE_TYPES.has(exec.node.type)
    ) {
      value = this.applyTextReplacements(value);
    }
    return value;
  }

  /** The frontend's `%date:fmt%` and `%NodeName.widget%` replacement. */
  private applyTextReplacements(value: string): string {
    return value.replace(/%([^%]+)%/g, (match, text: string) => {
      const split = text.split(".");
      if (split.length !== 2) {
        if (split[0].startsWith("date:")) {
          return formatDate(split[0].substring(5), this.opts.now?.() ?? new Date());
        }
        return match;
      }
      this.replacementNodes ??= this.order.filter((e) => !e.subgraph);
      const srName = (e: Exec) =>
        e.node.properties["Node name for S&R"] ??
          (SAVE_NODE_TYPES.has(e.node.type) ? undefined : e.node.type);
      let nodes = this.replacementNodes.filter((e) => srName(e) === split[0]);
      if (!nodes.length) {
        nodes = this.replacementNodes.filter((e) =>
          (e.node.title ?? classTitle(this.objectInfo, e.node.type)) === split[0]
        );
      }
      if (!nodes.length) return match;
      const values = this.widgetValues(nodes[0]);
      if (!values.has(split[1])) return match;
      // deno-lint-ignore no-control-regex
      return String(values.get(split[1]) ?? "").replaceAll(/[/?<>\\:*|"\x00-\x1F\x7F]/g, "_");
    });
  }

  /** PrimitiveNode.applyToGraph: copy the primitive's value into every widget it feeds. */
  private applyPrimitive(exec: Exec) {
    const raw = exec.node.widgetsValues;
    if (!Array.isArray(raw) || raw.length === 0) return;
    let value = raw[0];
    if (typeof value === "string" && exec.node.properties["Run widget replace on values"]) {
      value = this.applyTextReplacements(value);
    }
    const linkIds = new Set(exec.node.outputs[0]?.links ?? []);
    for (const link of exec.graph.links.values()) {
      if (link.originId === exec.node.id) linkIds.add(link.id);
    }
    for (const linkId of linkIds) {
      const link = exec.graph.links.get(linkId);
      if (!link || link.originId !== exec.node.id) continue;
      const target = this.execs.get([...exec.path, link.targetId].join(":"));
      if (!target) continue;
      const input = target.node.inputs.find((i) => i.link === link.id) ??
        target.node.inputs[link.targetSlot];
      const widgetName = input?.widgetName;
      if (!input || !widgetName) {
        this.warn(
          `node ${exec.id} (PrimitiveNode): its link to node ${target.id} does not reach a ` +
            "widget; value not applied",
        );
        continue;
      }
      target.applied.set(widgetName, value);
      target.widgetValues = undefined;
    }
  }

  /**
   * Newer frontends keep a subgraph instance's promoted widgets as `properties.proxyWidgets`
   * (`[innerNodeId, widgetName]` pairs, `"-1"` for a widget behind a subgraph input) with
   * the values in `widgets_values`, position by position. When the two lists disagree in
   * length the pairing is unknowable, so the inner widgets keep their own values.
   */
  private applyProxyWidgets(instance: Exec) {
    const proxies = instance.node.properties.proxyWidgets;
    if (!Array.isArray(proxies)) return;
    const values = instance.node.widgetsValues;
    if (!Array.isArray(values)) return;
    if (values.length !== proxies.length) {
      this.warn(
        `subgraph node ${instance.id}: ${proxies.length} promoted widgets but ` +
          `${values.length} values; inner widgets keep their own values`,
      );
      return;
    }
    instance.proxied = new Map();
    proxies.forEach((entry, i) => {
      if (!Array.isArray(entry) || entry.length < 2) return;
      const innerId = String(entry[0]);
      const name = String(entry[1]);
      if (innerId === "-1") {
        instance.proxied!.set(name, values[i]);
        return;
      }
      const inner = this.execs.get([...instance.path, instance.node.id, innerId].join(":"));
      if (!inner) return;
      const isValue = !inner.def ||
        widgetLayout(inner.def, inner.node.type).some((s) => s.kind === "value" && s.name === name);
      if (!isValue) return; // a control_after_generate or filter companion
      inner.applied.set(name, values[i]);
      inner.widgetValues = undefined;
    });
  }

  // -------------------------------------------------------------------------------------
  // Link resolution (the frontend's ExecutableNodeDTO.resolveInput / resolveOutput)

  private resolveInput(
    exec: Exec,
    slot: number,
    type: string | undefined,
    visited: Set<string>,
  ): Resolved | undefined {
    const key = `${exec.id}[I]${slot}`;
    if (visited.has(key)) {
      throw new WorkflowError(
        `workflow: circular link through input ${slot} of node ${exec.id}`,
        "remove the loop in the workflow (Reroutes or bypassed nodes linked in a circle)",
      );
    }
    visited.add(key);
    const input = exec.node.inputs[slot];
    if (!input || input.link === null) return undefined;
    const link = exec.graph.links.get(input.link);
    if (!link) {
      this.warn(`node ${exec.id}: input '${input.name}' refers to missing link ${input.link}`);
      return undefined;
    }
    const wantType = type ?? input.type;
    if (link.originId === SUBGRAPH_INPUT_ID && exec.instance) {
      return this.resolveFromSubgraphInput(exec.instance, link.originSlot, wantType, visited);
    }
    const origin = this.execs.get([...exec.path, link.originId].join(":"));
    if (!origin) {
      this.warn(
        `node ${exec.id}: input '${input.name}' is linked to node ${link.originId}, which does ` +
          "not exist; input dropped",
      );
      return undefined;
    }
    return this.resolveOutput(origin, link.originSlot, wantType, visited);
  }

  /** An inner link starts at the subgraph's input node: continue outside the instance. */
  private resolveFromSubgraphInput(
    instance: Exec,
    subgraphSlot: number,
    type: string,
    visited: Set<string>,
  ): Resolved | undefined {
    const slot = instanceInputIndex(instance, subgraphSlot);
    const input = instance.node.inputs[slot];
    if (input?.link !== null && input?.link !== undefined) {
      return this.resolveInput(instance, slot, type, visited);
    }
    const promoted = this.promotedValue(instance, subgraphSlot);
    return promoted ? { widgetValue: promoted } : undefined;
  }

  private resolveOutput(
    exec: Exec,
    slot: number,
    type: string,
    visited: Set<string>,
  ): Resolved | undefined {
    const key = `${exec.id}[O]${slot}`;
    if (visited.has(key)) {
      throw new WorkflowError(
        `workflow: circular link through output ${slot} of node ${exec.id}`,
        "remove the loop in the workflow (Reroutes or bypassed nodes linked in a circle)",
      );
    }
    visited.add(key);
    const node = exec.node;
    if (node.mode === MODE_BYPASS) {
      const index = bypassSlotIndex(node, slot, type);
      if (index < 0) {
        this.warn(
          `node ${exec.id} (${node.type}) is bypassed but has no input of type ${type} to pass ` +
            "through; the link is dropped",
        );
        return undefined;
      }
      return this.resolveInput(exec, index, undefined, visited);
    }
    if (exec.subgraph && !isSkipped(node.mode)) {
      return this.resolveSubgraphOutput(exec, slot, type, visited);
    }
    if (exec.virtual) {
      if (node.inputs[slot]) return this.resolveInput(exec, slot, type, visited);
      if (node.type === "GetNode") {
        const setter = this.findSetter(exec);
        if (setter) return this.resolveInput(setter, 0, type, visited);
        this.warn(`node ${exec.id} (GetNode): no SetNode named '${getterName(exec.node)}'`);
      }
      return undefined;
    }
    return { originId: exec.id, originSlot: slot };
  }

  private resolveSubgraphOutput(
    instance: Exec,
    slot: number,
    type: string,
    visited: Set<string>,
  ): Resolved | undefined {
    const sg = instance.subgraph!;
    const linkId = sg.outputs[slot]?.linkIds[0];
    let link = linkId !== undefined ? sg.graph.links.get(linkId) : undefined;
    link ??= [...sg.graph.links.values()].find((l) =>
      l.targetId === SUBGRAPH_OUTPUT_ID && l.targetSlot === slot
    );
    if (!link) {
      this.warn(
        `subgraph '${sg.name}' (node ${instance.id}): output ${slot} is not connected inside`,
      );
      return undefined;
    }
    if (link.originId === SUBGRAPH_INPUT_ID) {
      return this.resolveFromSubgraphInput(instance, link.originSlot, type, visited);
    }
    const inner = this.execs.get([...instance.path, instance.node.id, link.originId].join(":"));
    if (!inner) {
      this.warn(`subgraph '${sg.name}': output ${slot} comes from missing node ${link.originId}`);
      return undefined;
    }
    return this.resolveOutput(inner, link.originSlot, type, visited);
  }

  /**
   * The value of a subgraph instance's promoted widget for subgraph input `subgraphSlot`:
   * the instance's own `widgets_values` entry (one per promoted input, in input order; old
   * files also keep a slot for the inner widget's seed control), else the inner widget's
   * value.
   */
  private promotedValue(instance: Exec, subgraphSlot: number): { value: unknown } | undefined {
    const interior = this.interiorWidget(instance, subgraphSlot);
    if (!interior) return undefined;
    const slot = instanceInputIndex(instance, subgraphSlot);
    const input = instance.node.inputs[slot];
    if (input?.widgetName !== undefined && instance.applied.has(input.widgetName)) {
      return { value: instance.applied.get(input.widgetName) };
    }
    if (Array.isArray(instance.node.properties.proxyWidgets)) {
      // widgets_values pair with proxyWidgets, not with the promoted inputs.
      const name = input?.name ?? "";
      const proxied = instance.proxied;
      return { value: proxied?.has(name) ? proxied.get(name) : interior.value };
    }
    const raw = instance.node.widgetsValues;
    if (Array.isArray(raw) && input) {
      const promoted = instance.node.inputs.filter((i) => i.widgetName !== undefined);
      const legacy = raw.length > promoted.length;
      let index = 0;
      for (const p of promoted) {
        if (p === input) return { value: raw[index] !== undefined ? raw[index] : interior.value };
        index += 1;
        const pSlot = subgraphSlotOf(instance, instance.node.inputs.indexOf(p));
        if (legacy && this.interiorWidget(instance, pSlot)?.hasControl) index += 1;
      }
    } else if (isObject(raw) && input?.widgetName !== undefined && input.widgetName in raw) {
      return { value: raw[input.widgetName] };
    }
    return { value: interior.value };
  }

  /** The inner widget a subgraph input feeds: its value and whether it has a seed control. */
  private interiorWidget(
    instance: Exec,
    subgraphSlot: number,
  ): { value: unknown; hasControl: boolean } | undefined {
    const sg = instance.subgraph!;
    for (const link of sg.graph.links.values()) {
      if (link.originId !== SUBGRAPH_INPUT_ID || link.originSlot !== subgraphSlot) continue;
      const inner = this.execs.get([...instance.path, instance.node.id, link.targetId].join(":"));
      const input = inner?.node.inputs.find((i) => i.link === link.id) ??
        inner?.node.inputs[link.targetSlot];
      if (!inner || !input?.widgetName) continue;
      const values = this.widgetValues(inner);
      if (!values.has(input.widgetName)) continue;
      const hasControl = !!inner.def &&
        widgetLayout(inner.def, inner.node.type).some((s) =>
          s.kind === "control" && s.input?.name === input.widgetName
        );
      return { value: values.get(input.widgetName), hasControl };
    }
    return undefined;
  }

  private findSetter(getter: Exec): Exec | undefined {
    const name = getterName(getter.node);
    const inScope = (path: string[]) =>
      this.order.find((e) =>
        e.node.type === "SetNode" && e.path.join(":") === path.join(":") &&
        getterName(e.node) === name
      );
    return inScope(getter.path) ?? inScope([]);
  }
}

// ---------------------------------------------------------------------------------------
// Parsing

function parseGraph(rawNodes: unknown[], rawLinks: unknown, where: string): Graph {
  const nodes: Node[] = [];
  const byId = new Map<string, Node>();
  rawNodes.forEach((raw, i) => {
    if (!isObject(raw)) throw new WorkflowError(`${where}: nodes[${i}] is not an object`);
    if (raw.id === undefined || raw.id === null) {
      throw new WorkflowError(`${where}: nodes[${i}] has no id`);
    }
    if (typeof raw.type !== "string" || raw.type === "") {
      throw new WorkflowError(`${where}: node ${raw.id} has no type`);
    }
    const node: Node = {
      id: String(raw.id),
      type: raw.type,
      title: typeof raw.title === "string" ? raw.title : undefined,
      mode: typeof raw.mode === "number" ? raw.mode : 0,
      inputs: (Array.isArray(raw.inputs) ? raw.inputs : []).map((s) => {
        const slot = isObject(s) ? s : {};
        return {
          name: String(slot.name ?? ""),
          type: typeof slot.type === "string" ? slot.type : "*",
          link: slot.link === null || slot.link === undefined ? null : String(slot.link),
          widgetName: isObject(slot.widget) && typeof slot.widget.name === "string"
            ? slot.widget.name
            : undefined,
        };
      }),
      outputs: (Array.isArray(raw.outputs) ? raw.outputs : []).map((s) => {
        const slot = isObject(s) ? s : {};
        return {
          name: String(slot.name ?? ""),
          type: typeof slot.type === "string" ? slot.type : "*",
          links: Array.isArray(slot.links) ? slot.links.map(String) : [],
        };
      }),
      widgetsValues: Array.isArray(raw.widgets_values) || isObject(raw.widgets_values)
        ? raw.widgets_values as unknown[] | Record<string, unknown>
        : undefined,
      namedValues: isObject(raw.widgets_values_named) ? raw.widgets_values_named : undefined,
      properties: isObject(raw.properties) ? raw.properties : {},
    };
    if (byId.has(node.id)) throw new WorkflowError(`${where}: two nodes have id ${node.id}`);
    nodes.push(node);
    byId.set(node.id, node);
  });
  const links = new Map<string, Link>();
  const list = Array.isArray(rawLinks)
    ? rawLinks
    : isObject(rawLinks)
    ? Object.values(rawLinks)
    : [];
  for (const raw of list) {
    const link = parseLink(raw);
    if (link) links.set(link.id, link);
  }
  return { nodes, byId, links };
}

function parseLink(raw: unknown): Link | undefined {
  if (Array.isArray(raw)) {
    if (raw.length < 5 || raw[0] === null || raw[0] === undefined) return undefined;
    return {
      id: String(raw[0]),
      originId: String(raw[1]),
      originSlot: Number(raw[2]),
      targetId: String(raw[3]),
      targetSlot: Number(raw[4]),
      type: typeof raw[5] === "string" ? raw[5] : "*",
    };
  }
  if (isObject(raw) && raw.id !== undefined && raw.id !== null) {
    return {
      id: String(raw.id),
      originId: String(raw.origin_id),
      originSlot: Number(raw.origin_slot),
      targetId: String(raw.target_id),
      targetSlot: Number(raw.target_slot),
      type: typeof raw.type === "string" ? raw.type : "*",
    };
  }
  return undefined;
}

/**
 * Nodes in execution order (LiteGraph's computeExecutionOrder): a topological sort over the
 * links, nodes without inputs first, ties in file order; nodes caught in cycles last.
 */
function executionOrder(graph: Graph): Node[] {
  const remaining = new Map<string, number>();
  const targets = new Map<string, string[]>();
  for (const node of graph.nodes) remaining.set(node.id, 0);
  for (const node of graph.nodes) {
    for (const input of node.inputs) {
      if (input.link === null) continue;
      const link = graph.links.get(input.link);
      if (!link || !graph.byId.has(link.originId) || link.originId === node.id) continue;
      remaining.set(node.id, remaining.get(node.id)! + 1);
      const list = targets.get(link.originId) ?? [];
      list.push(node.id);
      targets.set(link.originId, list);
    }
  }
  const queue = graph.nodes.filter((n) => remaining.get(n.id) === 0);
  const out: Node[] = [];
  const done = new Set<string>();
  while (queue.length) {
    const node = queue.shift()!;
    out.push(node);
    done.add(node.id);
    for (const t of targets.get(node.id) ?? []) {
      const left = remaining.get(t)! - 1;
      remaining.set(t, left);
      if (left === 0) queue.push(graph.byId.get(t)!);
    }
  }
  for (const node of graph.nodes) if (!done.has(node.id)) out.push(node);
  return out;
}

// ---------------------------------------------------------------------------------------
// Legacy group nodes (`extra.groupNodes`, node type `workflow>NAME`)

interface GroupConfig {
  /** Group widget positions: inner node index and widget name, or hidden positions. */
  widgets: { index: number; name: string; kind: WidgetSlot["kind"] }[];
  /** Group input slot -> inner node index and input slot. */
  inputs: { index: number; slot: number }[];
  /** Group output slot -> inner node index and output slot. */
  outputs: { index: number; slot: number }[];
  nodes: Record<string, unknown>[];
  links: unknown[][];
}

function expandGroupNodes(
  graph: Graph,
  groupDefs: Record<string, unknown>,
  objectInfo: ObjectInfo,
  warn: (m: string) => void,
  noteUnknown: (cls: string, id: string) => void,
) {
  const configs = new Map<string, GroupConfig | undefined>();
  let changed = false;
  const newNodes: Node[] = [];
  for (const node of graph.nodes) {
    const m = /^workflow[>/](.+)$/.exec(node.type);
    const name = m?.[1];
    if (!name || !isObject(groupDefs[name]) || objectInfo[node.type]) {
      newNodes.push(node);
      continue;
    }
    if (isSkipped(node.mode)) {
      // Not expanded: a muted group emits nothing and a bypassed one passes its inputs on.
      newNodes.push(node);
      continue;
    }
    if (!configs.has(name)) {
      configs.set(name, groupConfig(groupDefs[name] as Record<string, unknown>, objectInfo));
    }
    const config = configs.get(name);
    if (!config) {
      newNodes.push(node);
      continue;
    }
    changed = true;
    const prefix = `${node.id}:`;
    const inner: Node[] = config.nodes.map((raw, i) => {
      const parsed = parseGraph([{ ...raw, id: `${prefix}${i}` }], [], `group node ${node.id}`)
        .nodes[0];
      for (const input of parsed.inputs) input.link = null;
      for (const output of parsed.outputs) output.links = [];
      if (!objectInfo[parsed.type] && !FRONTEND_VIRTUAL_CLASSES.has(parsed.type)) {
        noteUnknown(parsed.type, parsed.id);
      }
      return parsed;
    });
    const values = Array.isArray(node.widgetsValues) ? node.widgetsValues : [];
    config.widgets.forEach((w, i) => {
      if (w.kind !== "value" || values[i] === undefined) return;
      const target = inner[w.index];
      if (target.type === "PrimitiveNode") {
        const own = Array.isArray(target.widgetsValues) ? [...target.widgetsValues] : [];
        own[0] = values[i];
        target.widgetsValues = own;
      } else {
        target.presets ??= new Map();
        target.presets.set(w.name, values[i]);
      }
    });
    config.links.forEach((l, n) => {
      const [o, os, t, ts] = l as number[];
      if (o === null || o === undefined || !inner[o] || !inner[t]) return;
      const id = `${prefix}L${n}`;
      graph.links.set(id, {
        id,
        originId: inner[o].id,
        originSlot: Number(os),
        targetId: inner[t].id,
        targetSlot: Number(ts),
        type: typeof l[5] === "string" ? l[5] : "*",
      });
      ensureInput(inner[t], Number(ts)).link = id;
      ensureOutput(inner[o], Number(os)).links.push(id);
    });
    node.inputs.forEach((input, g) => {
      const map = config.inputs[g];
      if (input.link === null || !map) return;
      const link = graph.links.get(input.link);
      if (!link) return;
      link.targetId = inner[map.index].id;
      link.targetSlot = map.slot;
      ensureInput(inner[map.index], map.slot).link = link.id;
    });
    node.outputs.forEach((output, k) => {
      const map = config.outputs[k];
      for (const linkId of output.links) {
        const link = graph.links.get(linkId);
        if (!link) continue;
        if (!map) {
          warn(`group node ${node.id}: output ${k} does not exist in its definition`);
          continue;
        }
        link.originId = inner[map.index].id;
        link.originSlot = map.slot;
        ensureOutput(inner[map.index], map.slot).links.push(link.id);
      }
    });
    // Links from outside may name the group node by slot without listing ids on the output.
    for (const link of graph.links.values()) {
      if (link.originId !== node.id) continue;
      const map = config.outputs[link.originSlot];
      if (!map) continue;
      link.originId = inner[map.index].id;
      link.originSlot = map.slot;
    }
    newNodes.push(...inner);
  }
  if (!changed) return;
  graph.nodes = newNodes;
  graph.byId = new Map(newNodes.map((n) => [n.id, n]));
}

function ensureInput(node: Node, slot: number): Input {
  while (node.inputs.length <= slot) node.inputs.push({ name: "", type: "*", link: null });
  return node.inputs[slot];
}

function ensureOutput(node: Node, slot: number): Output {
  while (node.outputs.length <= slot) node.outputs.push({ name: "", type: "*", links: [] });
  return node.outputs[slot];
}

/** The frontend's GroupNodeConfig: how a group node's slots and widgets map inside. */
function groupConfig(
  data: Record<string, unknown>,
  objectInfo: ObjectInfo,
): GroupConfig | undefined {
  const nodes = (Array.isArray(data.nodes) ? data.nodes : []).filter(isObject);
  const links = (Array.isArray(data.links) ? data.links : []).filter(Array.isArray) as unknown[][];
  const linksTo = new Map<number, Map<number, unknown[]>>();
  const linksFrom = new Map<number, Map<number, unknown[][]>>();
  for (const l of links) {
    const [o, os, t, ts] = l as number[];
    if (o === null || o === undefined) continue;
    if (!linksFrom.has(o)) linksFrom.set(o, new Map());
    const from = linksFrom.get(o)!;
    from.set(os, [...(from.get(os) ?? []), l]);
    if (!linksTo.has(t)) linksTo.set(t, new Map());
    linksTo.get(t)!.set(ts, l);
  }
  const external = new Map<number, Set<number>>();
  for (const e of Array.isArray(data.external) ? data.external : []) {
    if (!Array.isArray(e)) continue;
    if (!external.has(e[0])) external.set(e[0], new Set());
    external.get(e[0])!.add(e[1]);
  }
  const config: GroupConfig = { widgets: [], inputs: [], outputs: [], nodes, links };
  const converted: (() => void)[] = [];
  nodes.forEach((raw, index) => {
    const type = String(raw.type ?? "");
    const to = linksTo.get(index) ?? new Map();
    const from = linksFrom.get(index);
    let def: NodeDefinition | undefined = objectInfo[type];
    if (!def && type === "PrimitiveNode") {
      if (!from) return;
      const first = from.get(0)?.[0];
      let valueType: unknown = first?.[5];
      if (valueType === "COMBO" && first) {
        const target = nodes[first[2] as number];
        const targetInputs = Array.isArray(target?.inputs) ? target.inputs : [];
        const targetInput = targetInputs[first[3] as number];
        const widget = isObject(targetInput) && isObject(targetInput.widget)
          ? String(targetInput.widget.name)
          : undefined;
        const tdef = objectInfo[String(target?.type)];
        const spec = widget
          ? tdef?.input?.required?.[widget] ?? tdef?.input?.optional?.[widget]
          : undefined;
        valueType = spec?.[0];
      }
      def = {
        input: { required: { value: [valueType, { control_after_generate: true }] } },
        output: [String(valueType)],
      };
    } else if (!def && type === "Reroute") {
      if (to.size && from && !external.get(index)?.has(0)) return; // used internally
      def = { input: { required: { "*": ["*", { forceInput: true }] } }, output: ["*"] };
    }
    if (!def) return;
    const inputs = definitionInputs(def);
    const layout = widgetLayout(def, type);
    const rawInputs = (Array.isArray(raw.inputs) ? raw.inputs : []).filter(isObject);
    const isConverted = (name: string) =>
      rawInputs.some((i) => i.name === name && isObject(i.widget) && i.widget.name === name);
    for (const slot of layout) {
      const owner = slot.input?.name ?? slot.name;
      if (slot.kind !== "upload" && isConverted(owner)) continue;
      config.widgets.push({ index, name: slot.name, kind: slot.kind });
    }
    const sockets = inputs.filter((i) => !i.isWidget);
    sockets.forEach((_, s) => {
      if (to.has(s)) return;
      config.inputs.push({ index, slot: s });
    });
    const convertedInputs = inputs.filter((i) => i.isWidget && isConverted(i.name));
    converted.push(() => {
      convertedInputs.forEach((input, k) => {
        const slot = sockets.length + k;
        if (to.has(slot)) return;
        config.inputs.push({ index, slot });
        for (const s of widgetLayoutOf(input, type)) {
          config.widgets.push({ index, name: s.name, kind: s.kind });
        }
      });
    });
    (def.output ?? []).forEach((_, o) => {
      const hasLink = from?.has(o) && !external.get(index)?.has(o);
      if (!hasLink) config.outputs.push({ index, slot: o });
    });
  });
  for (const f of converted) f();
  return config;
}

function widgetLayoutOf(input: InputInfo, classType: string): WidgetSlot[] {
  return widgetLayout({
    input: {
      required: {
        [input.name]: [input.type === "COMBO" ? input.choices : input.type, input.options],
      },
    },
  }, classType);
}

// ---------------------------------------------------------------------------------------
// Helpers

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Orders node ids as numbers when they are, else as text ("2" < "10" < "10:1"). */
function compareIds(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

function isSkipped(mode: number): boolean {
  return mode === MODE_NEVER || mode === MODE_BYPASS;
}

function wrap(value: unknown): unknown {
  return Array.isArray(value) ? { __value__: value } : value;
}

function getterName(node: Node): unknown {
  return Array.isArray(node.widgetsValues) ? node.widgetsValues[0] : undefined;
}

/** The instance input that carries subgraph input `subgraphSlot` (matched by name). */
function instanceInputIndex(instance: Exec, subgraphSlot: number): number {
  const sg = instance.subgraph!;
  const want = sg.inputs[subgraphSlot];
  if (!want) return subgraphSlot;
  const inputs = instance.node.inputs;
  // Inputs are bound to subgraph slots by name and type, then name, then position.
  const sameIndex = inputs[subgraphSlot];
  if (sameIndex && sameIndex.name === want.name) return subgraphSlot;
  let index = inputs.findIndex((i) => i.name === want.name && i.type === want.type);
  if (index < 0) index = inputs.findIndex((i) => i.name === want.name);
  return index < 0 ? subgraphSlot : index;
}

/** The subgraph input slot an instance input is bound to (by name, else position). */
function subgraphSlotOf(instance: Exec, inputIndex: number): number {
  const input = instance.node.inputs[inputIndex];
  const inputs = instance.subgraph!.inputs;
  if (!input) return inputIndex;
  if (inputs[inputIndex]?.name === input.name) return inputIndex;
  let k = inputs.findIndex((s) => s.name === input.name && s.type === input.type);
  if (k < 0) k = inputs.findIndex((s) => s.name === input.name);
  return k < 0 ? inputIndex : k;
}

/**
 * LiteGraph.isValidConnection: wildcard, equal, or overlapping comma-separated lists.
 *
 * @example
 * ```ts
 * import { isValidConnection } from "@/workflow/convert.ts";
 *
 * isValidConnection("IMAGE", "*"); // true
 * isValidConnection("STRING,INT", "int"); // true
 * ```
 */
export function isValidConnection(a: string, b: string): boolean {
  if (a === "" || a === "*" || b === "" || b === "*" || a === b) return true;
  const la = a.toLowerCase();
  const lb = b.toLowerCase();
  if (!la.includes(",") && !lb.includes(",")) return la === lb;
  const sa = la.split(",");
  const sb = lb.split(",");
  return sa.some((x) => sb.some((y) => isValidConnection(x, y)));
}

/** Which input a bypassed node passes to its output `slot` for a consumer of `type`. */
function bypassSlotIndex(node: Node, slot: number, type: string): number {
  const inputs = node.inputs;
  if (type === "*" || type === "") return inputs.length > slot ? slot : inputs.length ? 0 : -1;
  const outputType = node.outputs[slot]?.type ?? "*";
  const opposite = inputs[slot];
  if (
    opposite && isValidConnection(opposite.type, outputType) &&
    isValidConnection(opposite.type, type)
  ) {
    return slot;
  }
  const exact = inputs.findIndex((i) => i.type === type);
  if (exact >= 0) return exact;
  return inputs.findIndex((i) =>
    isValidConnection(i.type, outputType) && isValidConnection(i.type, type)
  );
}

/**
 * The frontend's processDynamicPrompt: strips C-style comments, then replaces every
 * `{a|b|c}` (nested allowed, `\{` escapes) with one option chosen by `random`.
 *
 * @example
 * ```ts
 * import { processDynamicPrompt } from "@/workflow/convert.ts";
 *
 * processDynamicPrompt("a {red|blue} car", () => 0.9); // "a blue car"
 * ```
 */
export function processDynamicPrompt(source: string, random: () => number = Math.random): string {
  const text = source.replace(/\/\*[\s\S]*?\*\/|\/\/.*/g, "");
  let i = 0;
  let result = "";
  const escape = () => "\\" + (text[i++] ?? "");
  const choice = (): string => {
    const options: string[] = [];
    let current = "";
    let depth = 0;
    while (i < text.length) {
      const c = text[i++];
      if (c === "\\") {
        current += escape();
        continue;
      }
      if (c === "{") depth++;
      else if (c === "}") {
        if (!depth) break;
        depth--;
      } else if (c === "|" && !depth) {
        options.push(current);
        current = "";
        continue;
      }
      current += c;
    }
    options.push(current);
    const picked = options[Math.floor(random() * options.length)] ?? "";
    return processDynamicPrompt(picked, random);
  };
  while (i < text.length) {
    const c = text[i++];
    if (c === "\\") result += escape();
    else if (c === "{") result += choice();
    else result += c;
  }
  return result.replace(/\\([{}|])/g, "$1");
}

/** The frontend's formatDate for `%date:...%`: d, dd, M, MM, h, hh, m, mm, s, ss, yy, yyyy. */
function formatDate(format: string, date: Date): string {
  const parts: Record<string, (d: Date) => number> = {
    d: (d) => d.getDate(),
    M: (d) => d.getMonth() + 1,
    h: (d) => d.getHours(),
    m: (d) => d.getMinutes(),
    s: (d) => d.getSeconds(),
  };
  return format.replace(/dd?|MM?|hh?|mm?|ss?|yyy?y?/g, (token) => {
    if (token === "yy") return String(date.getFullYear()).substring(2);
    if (token === "yyyy") return String(date.getFullYear());
    const part = parts[token[0]];
    if (part) return String(part(date)).padStart(token.length, "0");
    return token;
  });
}
