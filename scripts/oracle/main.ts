/**
 * `deno task oracle`: the real ComfyUI frontend decides what a conversion must produce.
 * Installs the pinned frontend and templates from PyPI into `.tools/`, serves the frontend
 * from the fake ComfyUI with the same object_info gov converts with, loads every workflow
 * of the corpus through the frontend's own `app.loadGraphData` in one headless Chromium
 * page, and compares `app.graphToPrompt().output` with gov's conversion (`toApiPrompt`, what
 * `gov workflow convert` runs) node by node.
 *
 * Dynamic parts are made deterministic on both sides rather than masked: during the
 * frontend's graphToPrompt the page's `Math.random` returns 0.5 and `Date` is frozen at one
 * instant, and gov gets the same through its `random` and `now` options. Seeds need no care:
 * graphToPrompt sends the widget's current value; control_after_generate only acts around
 * a real queue, which the oracle never does.
 *
 * Exits 1 when a compared workflow differs and is not a known exception.
 *
 * @module
 */
import { toApiPrompt } from "../../src/workflow/convert/mod.ts";
import type { ObjectInfo } from "../../src/workflow/object_info.ts";
import { comparePrompts } from "./compare.ts";
import { buildCorpus, definesAll } from "./corpus.ts";
import { handMadeCases } from "./cases.ts";
import { KNOWN_EXCEPTIONS } from "./exceptions.ts";
import { FRONTEND, installWheel, TEMPLATES } from "./install.ts";
import { startChromium, startFakeComfy } from "./processes.ts";
import type { CdpPage } from "./cdp.ts";

const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const REAL_DIR = Deno.env.get("ORACLE_REAL_WORKFLOWS") ?? `${REPO}/../shared/real-workflows`;
const FIXED_TIME = Date.UTC(2024, 4, 6, 7, 8, 9);
const RANDOM = 0.5;

function log(line: string) {
  console.log(line);
}

async function waitForApp(page: CdpPage): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const ready = await page.evaluate<boolean>(
      "!!(window.app && window.app.rootGraph && window.app.vueAppReady)",
    ).catch(() => false);
    if (ready) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the frontend did not boot within 60 s (see the console lines above)");
}

/** Loads one workflow through the frontend and returns graphToPrompt's output. */
async function frontendPrompt(page: CdpPage, doc: unknown): Promise<Record<string, never>> {
  const text = await page.evaluate<string>(`(async () => {
    const wf = ${JSON.stringify(JSON.stringify(doc))};
    await window.app.loadGraphData(JSON.parse(wf), true, false, null,
      { skipAssetScans: true, silentAssetErrors: true, deferWarnings: true });
    const RealDate = Date, realRandom = Math.random, fixed = ${FIXED_TIME};
    class FixedDate extends RealDate {
      constructor(...a) { a.length ? super(...a) : super(fixed); }
      static now() { return fixed; }
    }
    Math.random = () => ${RANDOM};
    globalThis.Date = FixedDate;
    try {
      const r = await window.app.graphToPrompt();
      return JSON.stringify(r.output);
    } finally {
      globalThis.Date = RealDate;
      Math.random = realRandom;
    }
  })()`);
  return JSON.parse(text);
}

/** The differences between the frontend's prompt and gov's for one workflow, as lines. */
async function compareOne(
  page: CdpPage,
  doc: unknown,
  info: ObjectInfo,
  dump: boolean,
): Promise<string[]> {
  let front: Record<string, never>;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // A workflow that wedges the page (a modal awaiting a click) must not hang CI.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("no answer within 60 s")), 60_000);
    });
    front = await Promise.race([frontendPrompt(page, doc), timeout]);
  } catch (e) {
    return [`the frontend failed on it: ${(e as Error).message}`];
  } finally {
    clearTimeout(timer);
  }
  let gov: Record<string, never>;
  try {
    gov = toApiPrompt(structuredClone(doc), info, {
      random: () => RANDOM,
      now: () => new Date(FIXED_TIME),
    }) as Record<string, never>;
  } catch (e) {
    return [`gov refused it: ${(e as Error).message}`];
  }
  if (dump && Deno.env.get("ORACLE_DUMP")) {
    log(`frontend: ${JSON.stringify(front)}\ngov:      ${JSON.stringify(gov)}`);
  }
  return comparePrompts(front, gov);
}

async function main(): Promise<number> {
  const started = performance.now();
  const tools = `${REPO}/.tools`;
  const frontendDir = await installWheel(tools, FRONTEND);
  const templatesDir = await installWheel(tools, TEMPLATES);
  const webRoot = `${frontendDir}/comfyui_frontend_package/static`;
  const templates = `${templatesDir}/comfyui_workflow_templates_json/templates`;
  const objectInfoPath = `${REAL_DIR}/object_info.json`;
  const info = JSON.parse(await Deno.readTextFile(objectInfoPath)) as ObjectInfo;

  const corpus = buildCorpus(REAL_DIR, templates, info, Deno.env.get("ORACLE_EXTRA"));
  const missing = new Map<string, number>();
  for (const s of corpus.skipped) {
    for (const c of s.missing) missing.set(c, (missing.get(c) ?? 0) + 1);
  }
  log(
    `corpus: ${corpus.compared.length + corpus.skipped.length} UI workflows ` +
      `(${Object.keys(info).length} classes in ${objectInfoPath}); ` +
      `${corpus.skipped.length} skipped for unknown node classes`,
  );
  const top = [...missing].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 15);
  if (top.length) {
    log(`most common missing classes: ${top.map(([c, n]) => `${c} (${n})`).join(", ")}`);
  }
  const skippedList = corpus.skipped.map((s) => `${s.name}: ${s.missing.join(", ")}\n`).join("");
  await Deno.writeTextFile(`${tools}/oracle-skipped.txt`, skippedList);
  log(`skipped workflows and their missing classes: .tools/oracle-skipped.txt`);
  if (Deno.env.get("ORACLE_LIST_SKIPPED")) {
    for (const s of corpus.skipped) log(`  skipped ${s.name}: ${s.missing.join(", ")}`);
  }

  const work = await Deno.makeTempDir({ prefix: "gov-oracle-" });
  const fake = await startFakeComfy(REPO, webRoot, objectInfoPath, work);
  let browser: Awaited<ReturnType<typeof startChromium>> | undefined;
  const only = Deno.env.get("ORACLE_ONLY");
  const selected = corpus.compared.filter((e) => !only || e.name.includes(only));
  const cases = handMadeCases(REAL_DIR).filter((c) =>
    (!only || c.name.includes(only)) && definesAll(c.doc, info)
  );
  let identical = 0;
  let casesSame = 0;
  let unexplained = 0;
  try {
    // The first-run tutorial would open a template browser over the canvas.
    await fetch(`${fake.url}/api/settings`, {
      method: "POST",
      body: JSON.stringify({ "Comfy.TutorialCompleted": true }),
    }).then((r) => r.body?.cancel());
    browser = await startChromium(fake.url, work);
    const page = browser.page;
    const consoleLines: string[] = [];
    page.on((method, params) => {
      if (method === "Runtime.exceptionThrown") {
        const d = params.exceptionDetails as Record<string, unknown>;
        consoleLines.push(
          `page exception: ${(d.exception as { description?: string })?.description ?? d.text}`,
        );
      }
    });
    await page.send("Runtime.enable");
    await waitForApp(page).catch((e) => {
      for (const l of consoleLines) log(l);
      throw e;
    });
    log(
      `frontend ${FRONTEND.version} booted in ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s`,
    );

    const run = async (entries: { name: string; doc: unknown }[]) => {
      let same = 0;
      for (const entry of entries) {
        const diffs = await compareOne(page, entry.doc, info, only !== undefined);
        const known = KNOWN_EXCEPTIONS[entry.name];
        if (diffs.length === 0) {
          same++;
          log(`same    ${entry.name}${known ? " (listed as an exception: remove the entry)" : ""}`);
          continue;
        }
        if (!known) unexplained++;
        log(`${known ? "known " : "DIFFERS"} ${entry.name}${known ? `: ${known}` : ""}`);
        for (const d of diffs.slice(0, 12)) log(`          ${d}`);
        if (diffs.length > 12) log(`          ... ${diffs.length - 12} more`);
      }
      return same;
    };
    casesSame = await run(cases);
    identical = await run(selected);
  } finally {
    await browser?.stop();
    await fake.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  log(`hand-made cases: ${cases.length} compared, ${casesSame} identical`);
  log(`wall time ${((performance.now() - started) / 1000).toFixed(1)} s`);
  log(`frontend oracle: ${selected.length} workflows compared, ${identical} identical`);
  return unexplained > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
