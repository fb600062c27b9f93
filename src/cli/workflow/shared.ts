/**
 * What the workflow commands share: reading a workflow file, getting node definitions from
 * a file or a backend, and writing a prompt to stdout or a file.
 *
 * @module
 */
import { resolve } from "node:path";
import { NotFoundError, UsageError } from "../../errors.ts";
import { writeFileAtomic } from "../../fs/atomic.ts";
import { workspaceFromFlag } from "../inputs.ts";
import { getBackend } from "../../backends/registry.ts";
import { ComfyUIClient } from "../../backends/comfyui/mod.ts";
import { WorkflowError } from "../../workflow/errors.ts";
import { isWorkflowDocument } from "../../workflow/convert/mod.ts";
import { loadObjectInfo, type ObjectInfo, parseObjectInfo } from "../../workflow/object_info.ts";
import type { ApiPrompt } from "../../workflow/types.ts";
import type { Io } from "../io.ts";

/**
 * Reads and parses a workflow file (UI or API format). Missing file: NotFoundError; bad
 * JSON: WorkflowError naming the file. Both exit 2.
 *
 * @example
 * ```ts
 * import { readWorkflowFile } from "@/cli/workflow/shared.ts";
 * import { type Io } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * const doc = await readWorkflowFile(io, "wf.json");
 * ```
 */
export async function readWorkflowFile(io: Io, path: string): Promise<unknown> {
  const full = resolve(io.cwd(), path);
  let text: string;
  try {
    text = await Deno.readTextFile(full);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new NotFoundError("workflow file", path, "give the path of a saved workflow JSON");
    }
    if (err instanceof Deno.errors.IsADirectory) {
      throw new UsageError(`${path} is a folder, not a workflow file`);
    }
    throw err;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new WorkflowError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  // Checked here, before a command asks for node definitions: a JSON array is no "UI
  // workflow that needs --object-info".
  if (!isWorkflowDocument(doc)) {
    throw new WorkflowError(
      `${path}: not a ComfyUI workflow: expected a UI workflow (with a \`nodes\` list) or an ` +
        "API prompt (node ids mapping to {class_type, inputs})",
    );
  }
  return doc;
}

/** Flags that choose where node definitions come from. */
export interface ObjectInfoSource {
  objectInfo?: string;
  backend?: string;
  workspace?: string;
}

/**
 * Loads node definitions from `--object-info FILE` or from `--backend ID`'s live
 * `/object_info` (the backend as declared in the workspace's `backends.toml`). Returns
 * undefined when neither flag is given.
 *
 * @example
 * ```ts
 * import { objectInfoFrom } from "@/cli/workflow/shared.ts";
 * import { type Io } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * const info = await objectInfoFrom(io, "workflow convert", { objectInfo: "oi.json" });
 * ```
 */
export async function objectInfoFrom(
  io: Io,
  command: string,
  src: ObjectInfoSource,
): Promise<ObjectInfo | undefined> {
  if (src.objectInfo !== undefined && src.backend !== undefined) {
    throw new UsageError(`gov ${command}: give --object-info or --backend, not both`);
  }
  if (src.objectInfo !== undefined) return await loadObjectInfo(resolve(io.cwd(), src.objectInfo));
  if (src.backend === undefined) return undefined;
  const ws = workspaceFromFlag(src.workspace, io);
  const backend = await getBackend(ws, src.backend);
  const client = new ComfyUIClient({
    host: backend.host,
    port: backend.port,
    token: backend.token,
    id: backend.id,
  });
  return parseObjectInfo(await client.objectInfo(), `${client.baseUrl}/object_info`);
}

/**
 * Writes a prompt (or any JSON document) to `-o FILE` atomically, or to stdout.
 *
 * @example
 * ```ts
 * import { writeJsonOutput } from "@/cli/workflow/shared.ts";
 * import { type Io } from "@/cli/io.ts";
 * declare const io: Io;
 *
 * await writeJsonOutput(io, { "3": { class_type: "KSampler", inputs: {} } }, "prompt.json");
 * ```
 */
export async function writeJsonOutput(
  io: Io,
  doc: unknown,
  output: string | undefined,
): Promise<string | undefined> {
  const text = JSON.stringify(doc, null, 2) + "\n";
  if (output === undefined || output === "-") {
    io.out(text);
    return undefined;
  }
  const full = resolve(io.cwd(), output);
  await writeFileAtomic(full, text);
  return full;
}

/**
 * The body ComfyUI's frontend posts to `/prompt`: the prompt plus the UI workflow under
 * `extra_data.extra_pnginfo.workflow` (so saved images embed the editable workflow).
 *
 * @example
 * ```ts
 * import { promptRequest } from "@/cli/workflow/shared.ts";
 * import { type UiWorkflow } from "@/workflow/types.ts";
 * import { type ApiPrompt } from "@/workflow/types.ts";
 * declare const prompt: ApiPrompt;
 *
 * declare const uiWorkflow: UiWorkflow;
 *
 * const body = promptRequest(prompt, uiWorkflow);
 * ```
 */
export function promptRequest(prompt: ApiPrompt, workflow: unknown): Record<string, unknown> {
  const body: Record<string, unknown> = { prompt };
  if (typeof workflow === "object" && workflow !== null && "nodes" in workflow) {
    body.extra_data = { extra_pnginfo: { workflow } };
  }
  return body;
}

/**
 * Prints conversion warnings on stderr, one line each.
 *
 * @example
 * ```ts
 * import { warningPrinter } from "@/cli/workflow/shared.ts";
 * import { type Io } from "@/cli/io.ts";
 * import { toApiPrompt } from "@/workflow/convert/mod.ts";
 * import { type ObjectInfo } from "@/workflow/object_info.ts";
 * import { type UiWorkflow } from "@/workflow/types.ts";
 * declare const doc: UiWorkflow;
 * declare const info: ObjectInfo;
 * declare const io: Io;
 *
 * toApiPrompt(doc, info, { onWarning: warningPrinter(io) });
 * ```
 */
export function warningPrinter(io: Io): (message: string) => void {
  return (message) => io.err(`warning: ${message}\n`);
}
