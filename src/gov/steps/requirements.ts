/**
 * A custom node's Python requirements, as ComfyUI-Manager reads them: `requirements.txt`
 * in the node folder, else `[project] dependencies` of its `pyproject.toml`.
 *
 * @module
 */
import { dirname, join, relative, resolve, sep } from "node:path";
import { parse as parseToml } from "smol-toml";
import { ConfigError, GovError } from "../../errors.ts";
import { readTextIfExists, writeFileAtomic } from "../../fs/atomic.ts";
import { parseRequirementsText } from "../state/pyproject.ts";
import { sha256 } from "../state/store.ts";

/**
 * A node's requirement file cannot be read safely: it leads outside the node's folder (a
 * symlink, or `-r ../x.txt`), or an include is missing. Nothing was changed.
 *
 * @example
 * ```ts
 * import { NodeRequirementsError } from "@/gov/steps/requirements.ts";
 *
 * throw new NodeRequirementsError("/n/requirements.txt", "is a symlink to /etc/passwd");
 * ```
 */
export class NodeRequirementsError extends GovError {
  constructor(file: string, what: string) {
    super(`${file} ${what}; gov reads a custom node's requirements only inside its folder`, {
      hint: "fix the node's requirements (or ask its author to), then run the transaction again",
    });
    this.name = "NodeRequirementsError";
  }
}

async function lexists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** `path` resolved through symlinks, refused when it is not inside `nodeDir`. */
async function insideNode(nodeDir: string, path: string): Promise<string> {
  const root = await Deno.realPath(nodeDir);
  let real: string;
  try {
    real = await Deno.realPath(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new NodeRequirementsError(path, "does not exist (or is a broken link)");
    }
    throw err;
  }
  const rel = relative(root, real);
  if (rel === "" || rel.startsWith(`..${sep}`) || rel === ".." || resolve(root, rel) !== real) {
    throw new NodeRequirementsError(path, `leads to ${real}, outside the node's folder`);
  }
  return real;
}

const INCLUDE = /^(?:-r|--requirement)(?:\s*=?\s*|\s+)(.+)$/;

/**
 * Reads a requirements file and the files it includes with `-r`, each resolved inside the
 * node's folder. Other pip options are returned as dropped lines, naming their file.
 */
async function readRequirementsTree(
  nodeDir: string,
  file: string,
  seen: Set<string>,
): Promise<{ requirements: string[]; options: string[] }> {
  const real = await insideNode(nodeDir, file);
  if (seen.has(real)) return { requirements: [], options: [] };
  seen.add(real);
  const { requirements, options } = parseRequirementsText(await Deno.readTextFile(real));
  const out = { requirements: [...requirements], options: [] as string[] };
  const where = relative(nodeDir, file) || "requirements.txt";
  for (const o of options) {
    const inc = o.match(INCLUDE);
    if (inc) {
      const sub = await readRequirementsTree(
        nodeDir,
        resolve(dirname(real), inc[1].trim()),
        seen,
      );
      out.requirements.push(...sub.requirements);
      out.options.push(...sub.options);
    } else out.options.push(`${where}: ${o}`);
  }
  return out;
}

/** What a node declares. */
export interface NodeRequirements {
  /** Which file they came from. */
  source: "requirements.txt" | "pyproject.toml" | "none";
  /** Requirement lines (PEP 508). */
  requirements: string[];
  /** requirements.txt lines gov does not pass on (index URLs, `-e`, constraints), each
   * prefixed with its file; `-r` includes inside the node's folder are followed. */
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
  const txtPath = join(nodeDir, "requirements.txt");
  if (await lexists(txtPath)) {
    const { requirements, options } = await readRequirementsTree(nodeDir, txtPath, new Set());
    return {
      source: "requirements.txt",
      requirements,
      ignoredOptions: options,
      sha256: sha256(requirements.join("\n")),
    };
  }
  const pyPath = join(nodeDir, "pyproject.toml");
  const py = (await lexists(pyPath))
    ? await readTextIfExists(await insideNode(nodeDir, pyPath))
    : undefined;
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
