/**
 * Shapes of the two workflow formats ComfyUI speaks: the API prompt that `POST /prompt`
 * executes, and the UI workflow (LiteGraph serialization) that the frontend saves.
 *
 * @module
 */

/** One node of an API prompt: its class and its inputs (values or `[nodeId, slot]` links). */
export interface ApiNode {
  /** ComfyUI node class, e.g. `KSampler`. */
  class_type: string;
  /** Input name to a literal value, or to `[originNodeId, originSlot]` for a link. */
  inputs: Record<string, unknown>;
  /** Ignored by the backend; the frontend puts the node title here. */
  _meta?: { title?: string };
}

/**
 * An API prompt, the body of `POST /prompt` under `prompt`: node id (a string; subgraph
 * and group-node inner nodes use `"<outer>:<inner>"` paths) to node.
 */
export type ApiPrompt = Record<string, ApiNode>;

/** A link between nodes of an API prompt: `[originNodeId, originSlot]`. */
export type ApiLink = [string, number];

/**
 * Whether an API input value is a link (`["4", 0]`), as ComfyUI's executor decides it: an
 * array of exactly a string id and an integer slot. Literal lists are wrapped as
 * `{"__value__": [...]}` precisely so they are never mistaken for this.
 *
 * @example
 * ```ts
 * import { isApiLink } from "@/workflow/types.ts";
 *
 * isApiLink(["4", 1]); // true
 * isApiLink("euler"); // false
 * ```
 */
export function isApiLink(value: unknown): value is ApiLink {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === "string" &&
    typeof value[1] === "number" && Number.isInteger(value[1]);
}

/** A node of a UI workflow as saved by the frontend (only the fields conversion reads). */
export interface UiNode {
  id: number | string;
  type: string;
  title?: string;
  /** 0 always, 1 on event, 2 never (muted), 3 on trigger, 4 bypass. */
  mode?: number;
  inputs?: UiInputSlot[];
  outputs?: UiOutputSlot[];
  /** Positional widget values, or (some custom nodes) an object keyed by widget name. */
  widgets_values?: unknown[] | Record<string, unknown>;
  properties?: Record<string, unknown>;
}

/** An input socket of a UI node. */
export interface UiInputSlot {
  name: string;
  type?: string;
  link?: number | string | null;
  /** Present when the socket belongs to a widget (a "converted" widget input). */
  widget?: { name: string };
  label?: string;
}

/** An output socket of a UI node. */
export interface UiOutputSlot {
  name?: string;
  type?: string;
  links?: (number | string)[] | null;
}

/** A link as the frontend stores it: an array (workflow 0.4) or an object (schema 1). */
export type UiLink =
  | [number | string, number | string, number, number | string, number, string?, ...unknown[]]
  | {
    id: number | string;
    origin_id: number | string;
    origin_slot: number;
    target_id: number | string;
    target_slot: number;
    type?: string;
  };

/** A UI workflow (the JSON the frontend saves and loads). */
export interface UiWorkflow {
  nodes: UiNode[];
  links?: UiLink[];
  extra?: Record<string, unknown>;
  definitions?: { subgraphs?: unknown[] };
  version?: number;
}
