/**
 * The converter proper: enumerates the executable nodes (the frontend's
 * ExecutableNodeDTOs), computes widget values, and resolves links through Reroutes,
 * bypassed nodes, subgraphs and PrimitiveNodes into the API prompt.
 *
 * @module
 */
import { UnknownNodeError, WorkflowError } from "../errors.ts";
import {
  classTitle,
  type ObjectInfo,
  widgetDefault,
  widgetLayout,
  type WidgetSlot,
} from "../object_info.ts";
import type { ApiNode, ApiPrompt } from "../types.ts";
import {
  bypassSlotIndex,
  compareIds,
  executionOrder,
  FRONTEND_VIRTUAL_CLASSES,
  type Graph,
  isObject,
  isSkipped,
  MODE_BYPASS,
  parseGraph,
  SUBGRAPH_INPUT_ID,
  SUBGRAPH_OUTPUT_ID,
  type SubgraphDef,
} from "./graph.ts";
import { expandGroupNodes } from "./group_nodes.ts";
import { type Exec, getterName, instanceInputIndex, type Resolved, wrap } from "./exec.ts";
import { normalizeSubgraphIds } from "./subgraph_ids.ts";
import { applyTextReplacements, processDynamicPrompt, SAVE_NODE_TYPES } from "./text.ts";

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

/** One conversion of one workflow; {@linkcode workflowToPrompt} runs it. */
export class Converter {
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
    const { definitions, rootNodes, newId } = normalizeSubgraphIds(this.doc);
    this.collectSubgraphs(definitions);
    const root = parseGraph(rootNodes, this.doc.links, "workflow");
    const groupDefs = isObject(this.doc.extra) && isObject(this.doc.extra.groupNodes)
      ? this.doc.extra.groupNodes
      : {};
    expandGroupNodes(
      root,
      groupDefs,
      this.objectInfo,
      this.warn,
      (cls, id) => this.noteUnknown(cls, id),
      newId,
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

  /** Parses the subgraph definitions, already normalised the way the frontend loads them. */
  private collectSubgraphs(definitions: Record<string, unknown>[]) {
    for (const raw of definitions) {
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
    return applyTextReplacements(value, () => this.opts.now?.() ?? new Date(), (name, widget) => {
      this.replacementNodes ??= this.order.filter((e) => !e.subgraph);
      const srName = (e: Exec) =>
        e.node.properties["Node name for S&R"] ??
          (SAVE_NODE_TYPES.has(e.node.type) ? undefined : e.node.type);
      let nodes = this.replacementNodes.filter((e) => srName(e) === name);
      if (!nodes.length) {
        nodes = this.replacementNodes.filter((e) =>
          (e.node.title ?? classTitle(this.objectInfo, e.node.type)) === name
        );
      }
      if (!nodes.length) return undefined;
      const values = this.widgetValues(nodes[0]);
      return values.has(widget) ? { value: values.get(widget) } : undefined;
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
   * the values in `widgets_values`. The frontend (1.58's proxy-widget migration) pairs them
   * by position even when the lengths differ: a missing value leaves the inner widget as it
   * is, and an entry that names no value widget (a seed control) takes its value nowhere.
   */
  private applyProxyWidgets(instance: Exec) {
    const proxies = instance.node.properties.proxyWidgets;
    if (!Array.isArray(proxies)) return;
    const values = instance.node.widgetsValues;
    if (!Array.isArray(values)) return;
    if (values.length !== proxies.length) {
      this.warn(
        `subgraph node ${instance.id}: ${proxies.length} promoted widgets but ` +
          `${values.length} values; paired by position, as the frontend does`,
      );
    }
    instance.proxied = new Map();
    proxies.forEach((entry, i) => {
      if (!Array.isArray(entry) || entry.length < 2 || values[i] === undefined) return;
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
   * the instance's own `widgets_values` entry (one per promoted input, in input order), or
   * its `proxyWidgets` entry, else the inner widget's value.
   */
  private promotedValue(instance: Exec, subgraphSlot: number): { value: unknown } | undefined {
    const interior = this.interiorWidget(instance, subgraphSlot);
    if (!interior) return undefined;
    const slot = instanceInputIndex(instance, subgraphSlot);
    const input = instance.node.inputs[slot];
    if (input?.widgetName !== undefined && instance.applied.has(input.widgetName)) {
      return { value: instance.applied.get(input.widgetName) };
    }
    const raw = instance.node.widgetsValues;
    // The instance's configure: widgets_values pair with the promoted inputs by position
    // (1.58 keeps no slot for an inner seed control; an old file that does is read shifted,
    // as the frontend reads it).
    const k = input
      ? instance.node.inputs.filter((i) => i.widgetName !== undefined).indexOf(input)
      : -1;
    const configured = Array.isArray(raw) && k >= 0 && raw[k] !== undefined
      ? { value: raw[k] }
      : undefined;
    if (Array.isArray(instance.node.properties.proxyWidgets)) {
      // A proxy entry for this input wins over what configure gave it.
      const name = input?.name ?? "";
      if (instance.proxied?.has(name)) return { value: instance.proxied.get(name) };
      return configured ?? { value: interior.value };
    }
    if (configured) return configured;
    if (isObject(raw) && input?.widgetName !== undefined && input.widgetName in raw) {
      return { value: raw[input.widgetName] };
    }
    return { value: interior.value };
  }

  /** The inner widget a subgraph input feeds, with its value. */
  private interiorWidget(
    instance: Exec,
    subgraphSlot: number,
  ): { value: unknown } | undefined {
    const sg = instance.subgraph!;
    for (const link of sg.graph.links.values()) {
      if (link.originId !== SUBGRAPH_INPUT_ID || link.originSlot !== subgraphSlot) continue;
      const inner = this.execs.get([...instance.path, instance.node.id, link.targetId].join(":"));
      const input = inner?.node.inputs.find((i) => i.link === link.id) ??
        inner?.node.inputs[link.targetSlot];
      if (!inner || !input?.widgetName) continue;
      const values = this.widgetValues(inner);
      if (!values.has(input.widgetName)) continue;
      return { value: values.get(input.widgetName) };
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
