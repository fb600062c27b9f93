/**
 * Shared set-up of the snapshot import suites (snapshot_import_test.ts,
 * snapshot_import_gate_test.ts): the node repositories a ComfyUI-Manager snapshot names,
 * that snapshot as a file, a fake Comfy Registry serving reg-node 1.0.0 per test, and two
 * templates per test file: a freshly initialised environment, and one with that snapshot
 * imported.
 *
 * @module
 */
import { join } from "node:path";
import { startFakeRegistry } from "../../fixtures/registry/fake_registry.ts";
import { assertEquals } from "../helpers/assert.ts";
import {
  git,
  govJson,
  initEnv,
  makeNodeRepo,
  readJson,
  type Scratch,
  TemplateEnv,
} from "./helpers.ts";

/** Commits `text` as `file` in repository `dir`; returns the new HEAD. */
export async function commitFile(dir: string, file: string, text: string): Promise<string> {
  await Deno.writeTextFile(join(dir, file), text);
  await git(["add", "-A"], dir);
  await git(
    ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", file],
    dir,
  );
  return await git(["rev-parse", "HEAD"], dir);
}

/** The names in a folder, sorted. */
export async function listDir(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

/** The plugins of an environment's plugins.json. */
export async function plugins(env: string): Promise<Record<string, Record<string, unknown>>> {
  return (await readJson(join(env, "state", "plugins.json"))).plugins;
}

/** How many transaction files an environment holds. */
export async function txCount(env: string): Promise<number> {
  return (await listDir(join(env, "state", "transactions"))).length;
}

/** What the templates' builder made: repositories, their pins, the snapshot file. */
export const fx = {
  repos: "",
  alpha: "",
  alphaPin: "",
  beta: "",
  betaPin: "",
  gamma: "",
  gammaPin: "",
  broken: "",
  regSrc: "",
  jsonFile: "",
};

/** Runs `fn` with a fake registry serving reg-node 1.0.0 (its env: GOV_REGISTRY_URL). */
export async function withRegistry<T>(
  fn: (renv: Record<string, string>) => Promise<T>,
): Promise<T> {
  const reg = await startFakeRegistry({ "reg-node": { "1.0.0": { dir: fx.regSrc } } });
  try {
    return await fn({ GOV_REGISTRY_URL: reg.url });
  } finally {
    await reg.close();
  }
}

async function buildRepos(scratch: Scratch): Promise<void> {
  const repos = fx.repos = await scratch.dir("repos");
  // Alpha: pinned at its first commit although a later one exists; URL without .git.
  fx.alpha = await makeNodeRepo(repos, "ComfyUI-Alpha", ["einops==0.7.0"], {
    imports: ["einops"],
  });
  fx.alphaPin = await git(["rev-parse", "HEAD"], fx.alpha);
  await commitFile(fx.alpha, "requirements.txt", "einops==0.8.0\n");
  // Beta: a bare repository whose URL ends in .git.
  const betaWork = await makeNodeRepo(repos, "beta-src", []);
  fx.beta = join(repos, "ComfyUI-Beta.git");
  await git(["clone", "-q", "--bare", betaWork, fx.beta], repos);
  fx.betaPin = await git(["rev-parse", "HEAD"], betaWork);
  // Gamma: disabled in the snapshot.
  fx.gamma = await makeNodeRepo(repos, "ComfyUI-Gamma", ["no-such-package-anywhere"]);
  fx.gammaPin = await git(["rev-parse", "HEAD"], fx.gamma);
  fx.broken = await makeNodeRepo(repos, "ComfyUI-Broken", ["broken-import"], {
    imports: ["broken_import"],
  });
  fx.regSrc = join(repos, "reg-node-1.0.0");
  await Deno.mkdir(fx.regSrc);
  await Deno.writeTextFile(join(fx.regSrc, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
  await Deno.writeTextFile(join(fx.regSrc, "requirements.txt"), "sortedcontainers==2.3.0\n");
  const manager = {
    comfyui: "4e8cbbb8b3ab4f1c2bd6b7e6e4c0d2a9b0c3f1aa",
    git_custom_nodes: {
      [fx.alpha]: { hash: fx.alphaPin, disabled: false },
      [fx.beta]: { hash: fx.betaPin, disabled: false },
      [fx.gamma]: { hash: fx.gammaPin, disabled: true },
      "https://github.com/ltdrdata/ComfyUI-Manager": {
        hash: "a".repeat(40),
        disabled: false,
      },
    },
    cnr_custom_nodes: { "reg-node": "1.0.0", "night-node": "nightly" },
    file_custom_nodes: [{ filename: "example_node.py", disabled: false }],
    pips: {
      "einops==0.7.0": "",
      "pyyaml==6.0.2": "",
      "torch==2.1.0": "",
      "mypkg": "file:///tmp/mypkg-1.0-py3-none-any.whl",
    },
  };
  fx.jsonFile = join(await scratch.dir("files"), "20260101_000000_snapshot.json");
  await Deno.writeTextFile(fx.jsonFile, JSON.stringify(manager, null, 4));
}

/** A template environment with a scratch folder for a test's own files. */
class Template extends TemplateEnv {
  /** A new empty folder in this template's scratch area. */
  async dir(prefix: string): Promise<string> {
    await this.env();
    return await this.scratch.dir(prefix);
  }
}

/** A freshly initialised environment (and the repositories and snapshot file in `fx`). */
export const template = new Template(async (scratch) => {
  await buildRepos(scratch);
  return await initEnv(scratch);
});

/** What `gov snapshot import --json` of the Manager snapshot answered. */
export interface ImportResult {
  txid: string;
  before_snapshot: string;
  post_snapshot: string;
}

let importResult: ImportResult | undefined;

/** {@linkcode template} with the Manager snapshot `fx.jsonFile` imported. */
export const imported = Object.assign(
  new Template(async (scratch) => {
    const env = await scratch.copyEnv(await template.env());
    const r = await withRegistry((renv) => govJson(env, ["snapshot", "import", fx.jsonFile], renv));
    assertEquals(r.status, "promoted");
    importResult = r;
    return env;
  }),
  {
    /** The import's answer (builds the template on first use). */
    async result(): Promise<ImportResult> {
      await imported.env();
      return importResult!;
    },
  },
);
