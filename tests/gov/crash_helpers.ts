/**
 * Shared set-up of the crash-safety suites (`crash_*_test.ts`): gov is SIGKILLed right after
 * a journaled step (test-only `GOV_FAULT=<op>:<step>`), and the next gov command must find
 * the interrupted operation and finish or undo it so that truth files, snapshots,
 * plugins.json, transaction statuses and `.venv-prod` agree.
 *
 * Every crash test copies one template per file: node good promoted, node tq with a
 * completed (unpromoted) transaction, node late only a repository.
 *
 * @module
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import {
  exists,
  failingNextProdSync,
  govIn,
  govJson,
  initEnv,
  makeNodeRepo,
  prodFreeze,
  readJson,
  type Scratch,
  snapshotIndex,
  TemplateEnv,
  truthFiles,
} from "./helpers.ts";

/** What the crash tests know about their template. */
export interface CrashFixture {
  /** The template environment (copy it, never change it). */
  env: string;
  /** Folder holding the node repositories good, tq and late. */
  repos: string;
  /** The snapshot `gov init` took. */
  initSnap: string;
  /** tq's completed transaction. */
  tqTx: string;
  /** The template's truth files. */
  truth0: Record<string, string>;
  /** The template's `.venv-prod` freeze. */
  freeze0: string[];
}

/** A template built once per test file; `fixture()` gives its facts, `copy()` a fresh env. */
export class CrashTemplate {
  private facts?: Omit<CrashFixture, "env">;
  private readonly template = new TemplateEnv(async (scratch: Scratch) => {
    const repos = await scratch.dir("repos");
    await makeNodeRepo(repos, "good", ["requests"], { imports: ["requests"] });
    await makeNodeRepo(repos, "tq", ["tqdm"], { imports: ["tqdm"] });
    await makeNodeRepo(repos, "late", ["einops"]);
    const env = await initEnv(scratch);
    const initSnap = (await snapshotIndex(env))[0].id;
    for (const id of ["good", "tq"]) {
      assertEquals((await govIn(env, ["node", "add", id, join(repos, id)])).code, 0);
    }
    const goodTx = await govJson(env, ["tx", "run", "good"]);
    await govJson(env, ["tx", "promote", goodTx.txid]);
    const tqTx = (await govJson(env, ["tx", "run", "tq"])).txid as string;
    this.facts = {
      repos,
      initSnap,
      tqTx,
      truth0: await truthFiles(env),
      freeze0: await prodFreeze(env),
    };
    return env;
  });

  /** The template's facts (builds it on first use). */
  async fixture(): Promise<CrashFixture> {
    const env = await this.template.env();
    return { env, ...this.facts! };
  }

  /** A fresh copy of the template. */
  async copy(): Promise<string> {
    return await this.template.copy();
  }

  /** A new empty folder in this file's scratch area. */
  async dir(prefix: string): Promise<string> {
    await this.template.env();
    return await this.template.scratch.dir(prefix);
  }

  /** Extra environment making the next `.venv-prod` sync fail (to reach an undo step). */
  async failingProdSync(): Promise<Record<string, string>> {
    await this.template.env();
    const s = this.template.scratch;
    return { GOV_UV: await failingNextProdSync(s, join(s.root, "fail-next-prod-sync")) };
  }
}

/** Runs gov with GOV_FAULT set and checks it died right after journaling that step. */
export async function killAt(
  env: string,
  args: string[],
  fault: string,
  extra: Record<string, string> = {},
): Promise<void> {
  const r = await govIn(env, args, { ...extra, GOV_FAULT: fault });
  assertEquals(r.code, 137, `expected SIGKILL at ${fault}, got ${r.code}:\n${r.stderr}`);
  const journal = await readJson(join(env, "state/journal.json"));
  assertEquals(`${journal.op}:${journal.step}`, fault);
  // The killed gov still "holds" the lock: the next command must take it over.
  assertTrue(await exists(join(env, "state/.lock")));
}

/** The next gov command recovers; returns its stderr notes. */
export async function recoverWith(env: string, args: string[]): Promise<string> {
  const r = await govIn(env, args);
  assertEquals(r.code, 0, `recovery via gov ${args.join(" ")} failed:\n${r.stderr}`);
  assertMatch(r.stderr, /recovery: /);
  return r.stderr;
}
