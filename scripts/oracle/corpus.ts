/**
 * The oracle's corpus, generated at run time: every UI workflow (`*.ui.json`) of the
 * real-workflows folder and every UI workflow of the templates package, split into those
 * whose node classes the object info defines (compared) and the rest (skipped, with the
 * classes they miss). gov's own converter decides what is unknown, so a fuller object info
 * widens the corpus with no code change.
 *
 * @module
 */
import { UnknownNodeError } from "../../src/workflow/errors.ts";
import { isUiWorkflow, workflowToPrompt } from "../../src/workflow/convert/mod.ts";
import type { ObjectInfo } from "../../src/workflow/object_info.ts";

/** One workflow file of the corpus. */
export interface Entry {
  /** `real/<file>` or `templates/<file>`. */
  name: string;
  path: string;
  doc: unknown;
}

/** What the corpus holds. */
export interface Corpus {
  compared: Entry[];
  skipped: { name: string; missing: string[] }[];
  /** Template files that are not UI workflows (API prompts, indexes). */
  notWorkflows: number;
}

function jsonFiles(dir: string, filter: (name: string) => boolean): string[] {
  return [...Deno.readDirSync(dir)].filter((e) => e.isFile && filter(e.name)).map((e) => e.name)
    .sort();
}

/** Whether gov finds every node class of `doc` in `info` (frontend-only classes aside). */
export function definesAll(doc: unknown, info: ObjectInfo): boolean {
  try {
    workflowToPrompt(structuredClone(doc), info);
  } catch (e) {
    if (e instanceof UnknownNodeError) return false;
  }
  return true;
}

/**
 * Lists the corpus and sorts each workflow into compared or skipped; `extraDir` (optional)
 * adds a folder of workflows, e.g. hand-made cases to ask the frontend about one rule.
 */
export function buildCorpus(
  realDir: string,
  templatesDir: string,
  info: ObjectInfo,
  extraDir?: string,
): Corpus {
  const files: { name: string; path: string }[] = [
    ...(extraDir ? jsonFiles(extraDir, (n) => n.endsWith(".json")) : []).map((n) => ({
      name: `extra/${n}`,
      path: `${extraDir}/${n}`,
    })),
    ...jsonFiles(realDir, (n) => n.endsWith(".ui.json")).map((n) => ({
      name: `real/${n}`,
      path: `${realDir}/${n}`,
    })),
    ...jsonFiles(templatesDir, (n) => n.endsWith(".json") && n !== "index.json").map((n) => ({
      name: `templates/${n}`,
      path: `${templatesDir}/${n}`,
    })),
  ];
  const corpus: Corpus = { compared: [], skipped: [], notWorkflows: 0 };
  for (const f of files) {
    let doc: unknown;
    try {
      doc = JSON.parse(Deno.readTextFileSync(f.path));
    } catch {
      corpus.notWorkflows++;
      continue;
    }
    if (!isUiWorkflow(doc)) {
      corpus.notWorkflows++;
      continue;
    }
    try {
      workflowToPrompt(structuredClone(doc), info);
    } catch (e) {
      if (e instanceof UnknownNodeError) {
        corpus.skipped.push({ name: f.name, missing: e.missing.map((m) => m.classType) });
        continue;
      }
      // Any other refusal is gov's to explain: compare it, the frontend decides.
    }
    corpus.compared.push({ ...f, doc });
  }
  return corpus;
}
