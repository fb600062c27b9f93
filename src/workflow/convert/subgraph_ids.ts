/**
 * The frontend's subgraph definition normalisation on load (LiteGraph's
 * normalizeSubgraphDefinitions): nested definitions are flattened, the first definition of
 * an id wins, and an inner node whose id is already taken (by a root node or a node of an
 * earlier definition) gets a fresh one, so execution ids like `"2:3"` match the frontend's.
 *
 * @module
 */
import { isObject } from "./graph.ts";

/** Subgraph definitions and root nodes as the frontend holds them after loading. */
export interface NormalizedSubgraphs {
  /** Every definition, nested ones flattened, first per id, node ids made unique. */
  definitions: Record<string, unknown>[];
  /** The root nodes, with promoted-widget references following renumbered inner nodes. */
  rootNodes: unknown[];
  /** Mints the next node id the way the frontend's graph state does after loading. */
  newId: () => number;
}

function flatten(list: unknown, out: Record<string, unknown>[]) {
  if (!Array.isArray(list)) return;
  for (const raw of list) {
    if (!isObject(raw)) continue;
    out.push(raw);
    if (isObject(raw.definitions)) flatten(raw.definitions.subgraphs, out);
  }
}

/** The id as an integer when its text is one ("7"), else null, like numericSerializedNodeId. */
function numericId(id: unknown): number | null {
  const text = String(id);
  const n = Number(text);
  return Number.isInteger(n) && String(n) === text ? n : null;
}

/**
 * Renumbers inner node ids that collide, as the frontend does when it loads `doc`; returns
 * copies, `doc` is not changed.
 *
 * @example
 * ```ts
 * const doc = {
 *   version: 0.4, last_node_id: 2, nodes: [{ id: 2, type: "sg" }], links: [],
 *   definitions: { subgraphs: [{ id: "sg", nodes: [{ id: 2, type: "VAEEncode" }], links: [] }] },
 * };
 * normalizeSubgraphIds(doc).definitions[0].nodes; // [{ id: 3, type: "VAEEncode" }]
 * ```
 */
export function normalizeSubgraphIds(doc: Record<string, unknown>): NormalizedSubgraphs {
  const rootNodes = Array.isArray(doc.nodes) ? doc.nodes : [];
  const reserved = new Set<string>();
  const numeric = new Set<number>();
  for (const n of rootNodes) {
    if (!isObject(n)) continue;
    reserved.add(String(n.id));
    const k = numericId(n.id);
    if (k !== null) numeric.add(k);
  }
  // The graph's state.lastNodeId: `last_node_id` (schema 0.4) or `state.lastNodeId` (1).
  const last = doc.version === 0.4
    ? doc.last_node_id
    : isObject(doc.state)
    ? doc.state.lastNodeId
    : 0;
  let lastNodeId = Number.isSafeInteger(last) && (last as number) >= 0 ? last as number : 0;
  const newId = (): number => {
    let next = lastNodeId + 1;
    while (numeric.has(next)) next++;
    lastNodeId = next;
    numeric.add(next);
    return next;
  };
  const observeRoot = () => {
    // Adding the root nodes afterwards raises lastNodeId to the largest id among them.
    for (const k of numeric) if (k > lastNodeId) lastNodeId = k;
  };

  const flat: Record<string, unknown>[] = [];
  if (isObject(doc.definitions)) flatten(doc.definitions.subgraphs, flat);
  if (flat.length === 0) {
    observeRoot();
    return { definitions: [], rootNodes, newId };
  }
  const seenIds = new Set<string>();
  const definitions = flat.filter((d) => {
    const id = String(d.id ?? "");
    if (seenIds.has(id)) return false;
    seenIds.add(id);
    return true;
  }).map((d) => structuredClone(d));

  const remaps = new Map<string, Map<string, number>>();
  for (const def of definitions) {
    const remap = new Map<string, number>();
    for (const node of Array.isArray(def.nodes) ? def.nodes : []) {
      if (!isObject(node)) continue;
      const key = String(node.id);
      const k = numericId(node.id);
      if (reserved.has(key)) {
        const id = newId();
        remap.set(key, id);
        node.id = id;
        reserved.add(String(id));
      } else {
        reserved.add(key);
        if (k !== null) {
          numeric.add(k);
          if (k > lastNodeId) lastNodeId = k;
        }
      }
    }
    if (remap.size === 0) continue;
    remaps.set(String(def.id), remap);
    const links = [
      ...(Array.isArray(def.links) ? def.links : []),
      ...(Array.isArray(def.floatingLinks) ? def.floatingLinks : []),
    ];
    for (const link of links) {
      if (!isObject(link)) continue; // the frontend patches object-form links only
      const origin = remap.get(String(link.origin_id));
      if (origin !== undefined) link.origin_id = origin;
      const target = remap.get(String(link.target_id));
      if (target !== undefined) link.target_id = target;
    }
    for (const widget of Array.isArray(def.widgets) ? def.widgets : []) {
      if (!isObject(widget)) continue;
      const id = remap.get(String(widget.id));
      if (id !== undefined) widget.id = id;
    }
  }
  observeRoot();
  if (remaps.size === 0) return { definitions, rootNodes, newId };

  // Promoted widgets name inner nodes by id: follow the renumbering.
  const patchNodes = (nodes: unknown[]): unknown[] =>
    nodes.map((n) => {
      if (!isObject(n) || !remaps.has(String(n.type))) return n;
      const proxies = isObject(n.properties) ? n.properties.proxyWidgets : undefined;
      if (!Array.isArray(proxies)) return n;
      const remap = remaps.get(String(n.type))!;
      const copy = structuredClone(n);
      for (const entry of (copy.properties as Record<string, unknown>).proxyWidgets as unknown[]) {
        if (!Array.isArray(entry)) continue;
        const id = remap.get(String(entry[0]));
        if (id !== undefined) entry[0] = String(id);
      }
      return copy;
    });
  for (const def of definitions) if (Array.isArray(def.nodes)) def.nodes = patchNodes(def.nodes);
  return { definitions, rootNodes: patchNodes(rootNodes), newId };
}
