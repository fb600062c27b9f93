/**
 * ComfyUI's API prompt, the body of `POST /prompt` under `prompt`: the one graph format both
 * the workflow layer (which produces it) and the backend clients (which queue it) speak.
 * Plain types and one predicate; this layer imports nothing of gov.
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
 * isApiLink(["4", 1]); // true
 * isApiLink("euler"); // false
 * ```
 */
export function isApiLink(value: unknown): value is ApiLink {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === "string" &&
    typeof value[1] === "number" && Number.isInteger(value[1]);
}
