/**
 * Legacy group nodes (`extra.groupNodes`, node type `workflow>NAME`): the frontend's
 * GroupNodeConfig and their expansion into `"<group id>:<index>"` inner nodes.
 *
 * @module
 */
import {
  definitionInputs,
  type InputInfo,
  type NodeDefinition,
  type ObjectInfo,
  widgetLayout,
  type WidgetSlot,
} from "../object_info.ts";
import {
  ensureInput,
  ensureOutput,
  FRONTEND_VIRTUAL_CLASSES,
  type Graph,
  isObject,
  type Node,
  parseGraph,
} from "./graph.ts";

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

/**
 * Replaces every expandable group node of `graph` by its inner nodes, rewiring links.
 * The frontend converts each legacy group node to a subgraph on load: it pastes the inner
 * nodes (fresh ids, in definition order) and wraps them in a new instance (the next id), so
 * inner node i runs as `"<instance>:<inner>"`; `newId` mints ids the way its graph does.
 */
export function expandGroupNodes(
  graph: Graph,
  groupDefs: Record<string, unknown>,
  objectInfo: ObjectInfo,
  warn: (m: string) => void,
  noteUnknown: (cls: string, id: string) => void,
  newId: () => number,
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
    const rawNodes = (groupDefs[name] as Record<string, unknown>).nodes;
    const innerIds = (Array.isArray(rawNodes) ? rawNodes : []).filter(isObject).map(() => newId());
    const instanceId = newId();
    // A muted or bypassed group node is expanded all the same: the frontend's conversion to
    // a subgraph does not carry the group's mode over, so its inner nodes run.
    if (!configs.has(name)) {
      configs.set(name, groupConfig(groupDefs[name] as Record<string, unknown>, objectInfo));
    }
    const config = configs.get(name);
    if (!config) {
      newNodes.push(node);
      continue;
    }
    changed = true;
    const prefix = `${instanceId}:`;
    const inner: Node[] = config.nodes.map((raw, i) => {
      const parsed =
        parseGraph([{ ...raw, id: `${prefix}${innerIds[i]}` }], [], `group node ${node.id}`)
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
