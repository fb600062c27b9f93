/**
 * Node definitions as ComfyUI's `GET /object_info` returns them, and the one thing the
 * frontend derives from them that conversion depends on: the widget layout of a node, i.e.
 * which positions of `widgets_values` hold which input, and which positions hold values the
 * frontend keeps for itself (`control_after_generate`, the combo filter, upload buttons).
 *
 * @module
 */
import { readTextIfExists } from "../fs/atomic.ts";
import { ConfigError, NotFoundError } from "../errors.ts";
import type { InputSpec, NodeDefinition, ObjectInfo } from "../comfyui/object_info.ts";

// ComfyUI's /object_info shapes live in src/comfyui (shared with the backends layer).
export type { InputSpec, NodeDefinition, ObjectInfo };

/**
 * Reads an `/object_info` dump from a file. Throws {@linkcode NotFoundError} when the file is
 * missing and {@linkcode ConfigError} when it is not JSON or not an object of definitions.
 *
 * @example
 * ```ts
 * import { loadObjectInfo } from "@/workflow/object_info.ts";
 *
 * const info = await loadObjectInfo("../shared/real-workflows/object_info.json");
 * console.log(Object.keys(info).length);
 * ```
 */
export async function loadObjectInfo(path: string): Promise<ObjectInfo> {
  const text = await readTextIfExists(path);
  if (text === undefined) {
    throw new NotFoundError("object info file", path, "save one with `curl <comfyui>/object_info`");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(path, "", `is not valid JSON (${(err as Error).message})`);
  }
  return parseObjectInfo(value, path);
}

/**
 * Validates a parsed `/object_info` document (from a file or a backend) enough that
 * conversion cannot crash on it: an object whose values are objects.
 *
 * @example
 * ```ts
 * const url = "http://127.0.0.1:8188/object_info";
 * const info = parseObjectInfo(await (await fetch(url)).json(), url);
 * ```
 */
export function parseObjectInfo(value: unknown, source: string): ObjectInfo {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(
      source,
      "",
      "must be an /object_info JSON object (class name to definition)",
    );
  }
  for (const [name, def] of Object.entries(value)) {
    if (typeof def !== "object" || def === null || Array.isArray(def)) {
      throw new ConfigError(source, name, "a node definition object");
    }
    const input = (def as NodeDefinition).input;
    if (input !== undefined && (typeof input !== "object" || input === null)) {
      throw new ConfigError(source, `${name}.input`, "an object");
    }
  }
  return value as ObjectInfo;
}

/** The frontend's widget types: an input of one of these types is drawn as a widget. */
export const WIDGET_TYPES: ReadonlySet<string> = new Set([
  "INT",
  "FLOAT",
  "BOOLEAN",
  "STRING",
  "MARKDOWN",
  "COMBO",
  "COLOR",
  "IMAGECOMPARE",
  "BOUNDING_BOX",
  "CHART",
  "GALLERIA",
  "PAINTER",
  "COMPOSITOR",
  "TEXTAREA",
  "CURVE",
  "RANGE",
  "VIDEO_EDIT",
  "RESOLUTION_PREVIEW",
  "BOUNDING_BOXES",
  "COLORS",
]);

/** What an input spec says, normalized (V1 list combos and V2 `"COMBO"` specs alike). */
export interface InputInfo {
  /** Input name. */
  name: string;
  /** `INT`, `FLOAT`, `STRING`, `BOOLEAN`, `COMBO`, or a socket type (`MODEL`, `IMAGE`...). */
  type: string;
  /** The spec's options object (`default`, `min`, `max`, `step`, ...). */
  options: Record<string, unknown>;
  /** Choices of a COMBO. */
  choices?: unknown[];
  /** Declared under `optional`. */
  optional: boolean;
  /** Drawn as a widget (so it has a slot in `widgets_values`). */
  isWidget: boolean;
}

/**
 * Normalizes one input spec.
 *
 * @example
 * ```ts
 * import { inputInfo } from "@/workflow/object_info.ts";
 *
 * inputInfo("sampler_name", [["euler", "ddim"]]).type; // "COMBO"
 * ```
 */
export function inputInfo(name: string, spec: unknown, optional = false): InputInfo {
  const arr = Array.isArray(spec) ? spec : [spec];
  const head = arr[0];
  const options = (typeof arr[1] === "object" && arr[1] !== null && !Array.isArray(arr[1]))
    ? arr[1] as Record<string, unknown>
    : {};
  let type: string;
  let choices: unknown[] | undefined;
  if (Array.isArray(head)) {
    type = "COMBO";
    choices = head;
  } else if (head === "COMBO") {
    type = "COMBO";
    choices = Array.isArray(options.options) ? options.options as unknown[] : [];
  } else {
    type = typeof head === "string" ? head : "*";
  }
  const isWidget = WIDGET_TYPES.has(type) && !options.forceInput;
  return { name, type, options, choices, optional, isWidget };
}

/**
 * Every input of a definition in the frontend's order: required, then optional.
 *
 * @example
 * ```ts
 * const info = await loadObjectInfo("object_info.json");
 * definitionInputs(info.KSampler).filter((i) => i.isWidget).map((i) => i.name);
 * ```
 */
export function definitionInputs(def: NodeDefinition): InputInfo[] {
  const byName = new Map<string, InputInfo>();
  // A name declared in both sections keeps its required position with the optional spec,
  // as the frontend's object merge does.
  for (const [name, spec] of Object.entries(def.input?.required ?? {})) {
    byName.set(name, inputInfo(name, spec, false));
  }
  for (const [name, spec] of Object.entries(def.input?.optional ?? {})) {
    byName.set(name, inputInfo(name, spec, true));
  }
  return [...byName.values()];
}

/** Kinds of `widgets_values` positions. Only `value` positions reach the prompt. */
export type WidgetSlotKind = "value" | "control" | "filter" | "upload" | "ui";

/** One position of a node's `widgets_values`. */
export interface WidgetSlot {
  /** The widget's name; for a `value` slot the input name it fills. */
  name: string;
  kind: WidgetSlotKind;
  /** For `value` slots: the input. For hidden slots: the input they belong to, if any. */
  input?: InputInfo;
}

// Media loaders whose combo input gets an upload button even when the spec lacks the flag
// (the frontend's own fallback list).
const KNOWN_MEDIA_LOADER_INPUTS: Record<string, string> = {
  LoadImage: "image",
  LoadImageMask: "image",
  LoadVideo: "file",
  LoadAudio: "audio",
};
const AUDIO_UI_CLASSES = new Set([
  "LoadAudio",
  "SaveAudio",
  "PreviewAudio",
  "SaveAudioMP3",
  "SaveAudioOpus",
  "SaveAudioAdvanced",
]);

const layoutCache = new WeakMap<NodeDefinition, WidgetSlot[]>();

/**
 * The widget layout the frontend builds for a node class: one entry per position of
 * `widgets_values`, in order. Widget inputs come in definition order (required, then
 * optional); an INT gets a hidden `control_after_generate` position after it when its spec
 * asks for one or, when the spec is silent, when it is named `seed`/`noise_seed`; a COMBO
 * with `control_after_generate` gets two (control and filter); media loaders get an
 * `upload` button (and audio nodes an `audioUI` player) at the end of the required inputs.
 *
 * @example
 * ```ts
 * const info = await loadObjectInfo("object_info.json");
 * widgetLayout(info.KSampler).map((s) => s.name);
 * // ["seed", "control_after_generate", "steps", "cfg", "sampler_name", "scheduler", "denoise"]
 * ```
 */
export function widgetLayout(def: NodeDefinition, classType?: string): WidgetSlot[] {
  const cached = layoutCache.get(def);
  if (cached) return cached;
  const cls = classType ?? def.name ?? "";
  const inputs = definitionInputs(def);
  const required = inputs.filter((i) => !i.optional);
  const optional = inputs.filter((i) => i.optional);
  const slots: WidgetSlot[] = [];
  const addInput = (input: InputInfo) => {
    if (!input.isWidget) return;
    slots.push({ name: input.name, kind: "value", input });
    const control = input.options.control_after_generate;
    if (input.type === "INT" && (control ?? ["seed", "noise_seed"].includes(input.name))) {
      slots.push({ name: controlName(input, "control_after_generate"), kind: "control", input });
    } else if (input.type === "COMBO" && control) {
      slots.push({ name: controlName(input, "control_after_generate"), kind: "control", input });
      slots.push({ name: controlName(input, "control_filter_list"), kind: "filter", input });
    }
  };
  for (const input of required) addInput(input);
  // Extensions append their extra widgets to the required inputs, so they sit before the
  // optional ones.
  if (AUDIO_UI_CLASSES.has(cls)) slots.push({ name: "audioUI", kind: "ui" });
  const media = required.find((i) =>
    i.type === "COMBO" &&
    (i.options.image_upload === true || i.options.video_upload === true ||
      i.options.animated_image_upload === true || i.options.audio_upload === true)
  ) ?? required.find((i) => i.type === "COMBO" && KNOWN_MEDIA_LOADER_INPUTS[cls] === i.name);
  if (media) slots.push({ name: "upload", kind: "upload", input: media });
  for (const input of optional) addInput(input);
  layoutCache.set(def, slots);
  return slots;
}

function controlName(input: InputInfo, base: string): string {
  const named = input.options[base];
  if (typeof named === "string" && base === "control_after_generate") return named;
  const prefix = input.options.control_prefix;
  return typeof prefix === "string" ? `${prefix} ${base}` : base;
}

/**
 * The value a widget starts with when the workflow does not store one (the frontend's
 * widget constructors): the spec's default, else 0 / "" / false / the first choice.
 *
 * @example
 * ```ts
 * import { inputInfo, widgetDefault } from "@/workflow/object_info.ts";
 *
 * widgetDefault(inputInfo("filename_prefix", ["STRING", { default: "ComfyUI" }])); // "ComfyUI"
 * ```
 */
export function widgetDefault(input: InputInfo): unknown {
  const d = input.options.default;
  switch (input.type) {
    case "INT":
    case "FLOAT":
      return d ?? 0;
    case "STRING":
    case "MARKDOWN":
    case "TEXTAREA":
      return d ?? "";
    case "BOOLEAN":
      return d ?? false;
    case "COMBO":
      if (input.options.multi_select) return d ?? [];
      return d || input.choices?.[0];
    default:
      return d;
  }
}

/**
 * The display title of a class: `display_name`, else its name.
 *
 * @example
 * ```ts
 * const info = await loadObjectInfo("object_info.json");
 * classTitle(info, "CheckpointLoaderSimple"); // "Load Checkpoint"
 * ```
 */
export function classTitle(objectInfo: ObjectInfo | undefined, classType: string): string {
  const def = objectInfo?.[classType];
  return def?.display_name || def?.name || classType;
}
