/**
 * The converter's model of a UI workflow: nodes, slots and links parsed from the JSON the
 * frontend saves (both link encodings), LiteGraph's execution order, and the slot-type rules
 * links follow through bypassed nodes.
 *
 * @module
 */
import { WorkflowError } from "../errors.ts";

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

export const MODE_NEVER = 2;
export const MODE_BYPASS = 4;
export const SUBGRAPH_INPUT_ID = "-10";
export const SUBGRAPH_OUTPUT_ID = "-20";

export interface Input {
  name: string;
  type: string;
  link: string | null;
  widgetName?: string;
}

export interface Output {
  name: string;
  type: string;
  links: string[];
}

export interface Node {
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

export interface Link {
  id: string;
  originId: string;
  originSlot: number;
  targetId: string;
  targetSlot: number;
  type: string;
}

export interface Graph {
  nodes: Node[];
  byId: Map<string, Node>;
  links: Map<string, Link>;
}

export interface SubgraphDef {
  id: string;
  name: string;
  graph: Graph;
  inputs: { name: string; type: string; linkIds: string[] }[];
  outputs: { name: string; type: string; linkIds: string[] }[];
}

export function parseGraph(rawNodes: unknown[], rawLinks: unknown, where: string): Graph {
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

export function parseLink(raw: unknown): Link | undefined {
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
export function executionOrder(graph: Graph): Node[] {
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

export function ensureInput(node: Node, slot: number): Input {
  while (node.inputs.length <= slot) node.inputs.push({ name: "", type: "*", link: null });
  return node.inputs[slot];
}

export function ensureOutput(node: Node, slot: number): Output {
  while (node.outputs.length <= slot) node.outputs.push({ name: "", type: "*", links: [] });
  return node.outputs[slot];
}

export function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Orders node ids as numbers when they are, else as text ("2" < "10" < "10:1"). */
export function compareIds(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

export function isSkipped(mode: number): boolean {
  return mode === MODE_NEVER || mode === MODE_BYPASS;
}

/**
 * LiteGraph.isValidConnection: wildcard, equal, or overlapping comma-separated lists.
 *
 * @example
 * ```ts
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
export function bypassSlotIndex(node: Node, slot: number, type: string): number {
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
