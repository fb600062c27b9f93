/**
 * Shapes of the two workflow formats ComfyUI speaks: the API prompt that `POST /prompt`
 * executes, and the UI workflow (LiteGraph serialization) that the frontend saves.
 *
 * @module
 */

// The API prompt is ComfyUI's own vocabulary, shared with the backend clients; it lives in
// src/comfyui and is re-exported here so workflow code keeps importing it from this file.
export type { ApiLink, ApiNode, ApiPrompt } from "../comfyui/prompt.ts";
export { isApiLink } from "../comfyui/prompt.ts";

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
