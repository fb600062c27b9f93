/**
 * A custom node's Python requirements, as ComfyUI-Manager reads them: `requirements.txt`
 * in the node folder, else `[project] dependencies` of its `pyproject.toml`.
 *
 * @module
 */
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { ConfigError } from "../../errors.ts";
import { readTextIfExists, writeFileAtomic } from "../../fs/atomic.ts";
import { parseRequirementsText } from "../state/pyproject.ts";
import { sha256 } from "../state/store.ts";

/** What a node declares. */
export interface NodeRequirements {
  /** Which file they came from. */
  source: "requirements.txt" | "pyproject.toml" | "none";
  /** Requirement lines (PEP 508). */
  requirements: string[];
  /** requirements.txt options gov does not pass on (index URLs, `-e`, includes). */
  ignoredOptions: string[];
  /** sha256 of the requirement lines, to notice a node that changed after its test run. */
  sha256: string;
}

/**
 * Reads the requirements of the custom node in `nodeDir`.
 *
 * @example
 * ```ts
 * import { nodeRequirements } from "@/gov/steps/requirements.ts";
 *
 * const r = await nodeRequirements("/env/ComfyUI/custom_nodes/impact");
 * ```
 */
export async function nodeRequirements(nodeDir: string): Promise<NodeRequirements> {
  const txt = await readTextIfExists(join(nodeDir, "requirements.txt"));
  if (txt !== undefined) {
    const { requirements, options } = parseRequirementsText(txt);
    return {
      source: "requirements.txt",
      requirements,
      ignoredOptions: options,
      sha256: sha256(requirements.join("\n")),
    };
  }
  const pyPath = join(nodeDir, "pyproject.toml");
  const py = await readTextIfExists(pyPath);
  if (py !== undefined) {
    let doc: Record<string, unknown>;
    try {
      doc = parseToml(py) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(
        pyPath,
        "",
        `is not valid TOML (${(err as Error).message.split("\n")[0]})`,
      );
    }
    const deps = (doc.project as Record<string, unknown> | undefined)?.dependencies;
    if (deps !== undefined && (!Array.isArray(deps) || deps.some((d) => typeof d !== "string"))) {
      throw new ConfigError(pyPath, "project.dependencies", "a list of strings");
    }
    const requirements = ((deps as string[] | undefined) ?? []).map((d) => d.trim()).filter(
      Boolean,
    );
    return {
      source: "pyproject.toml",
      requirements,
      ignoredOptions: [],
      sha256: sha256(requirements.join("\n")),
    };
  }
  return { source: "none", requirements: [], ignoredOptions: [], sha256: sha256("") };
}

/**
 * Writes the requirement lines into `<workdir>/<group>.requirements.txt` for `uv add -r`,
 * so the test run and the promotion feed uv exactly the same input.
 *
 * @example
 * ```ts
 * import { writeRequirementsFile } from "@/gov/steps/requirements.ts";
 * declare const workdir: string;
 *
 * const file = await writeRequirementsFile(workdir, "node-impact", ["opencv-python"]);
 * ```
 */
export async function writeRequirementsFile(
  workdir: string,
  group: string,
  requirements: string[],
): Promise<string> {
  const path = join(workdir, `${group}.requirements.txt`);
  await writeFileAtomic(path, requirements.join("\n") + "\n");
  return path;
}
