/**
 * Executable nodes (the frontend's ExecutableNodeDTO) and the small rules about them that
 * several parts of the converter share: subgraph slot binding, value wrapping.
 *
 * @module
 */
import type { NodeDefinition } from "../object_info.ts";
import type { Graph, Node, SubgraphDef } from "./graph.ts";

/** A node in one place of the expanded workflow (the frontend's ExecutableNodeDTO). */
export interface Exec {
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

export interface Resolved {
  originId?: string;
  originSlot?: number;
  widgetValue?: { value: unknown };
}

/** Arrays are sent as `{"__value__": [...]}` so the backend does not read them as links. */
export function wrap(value: unknown): unknown {
  return Array.isArray(value) ? { __value__: value } : value;
}

/** The name a KJNodes SetNode/GetNode pair shares (its first widget). */
export function getterName(node: Node): unknown {
  return Array.isArray(node.widgetsValues) ? node.widgetsValues[0] : undefined;
}

/** The instance input that carries subgraph input `subgraphSlot` (matched by name). */
export function instanceInputIndex(instance: Exec, subgraphSlot: number): number {
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
