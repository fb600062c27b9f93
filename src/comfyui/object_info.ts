/**
 * ComfyUI's `/object_info` vocabulary: node class definitions and their input specs, as the
 * server answers them. The converter reads them to lay out widgets; the scheduler reads them
 * to learn what a backend can run.
 *
 * @module
 */

/** An input spec: `[type, options?]` where type is a name (`"INT"`) or a list of choices. */
export type InputSpec = [unknown, Record<string, unknown>?];

/** One node class as `/object_info` describes it. */
export interface NodeDefinition {
  input?: {
    required?: Record<string, InputSpec>;
    optional?: Record<string, InputSpec>;
    hidden?: Record<string, unknown>;
  };
  input_order?: { required?: string[]; optional?: string[] };
  output?: (string | string[])[];
  output_is_list?: boolean[];
  output_name?: string[];
  name?: string;
  display_name?: string;
  description?: string;
  category?: string;
  output_node?: boolean;
  python_module?: string;
  deprecated?: boolean;
  experimental?: boolean;
}

/** `/object_info`: node class name to definition. */
export type ObjectInfo = Record<string, NodeDefinition>;
