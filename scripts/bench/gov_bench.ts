/**
 * Dependency-governance figures:
 * - `gov status --json`, `gov tx list --json` and `environmentStatus` (the environment part
 *   of `gov status`) on an environment with 1,000 transactions and 50 snapshots;
 * - promote's own overhead: a promotion's total time minus the time spent inside uv (from
 *   the uv driver's timing), with the pinned real uv offline over the test wheelhouse.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runProcess } from "../../src/process/run.ts";
import {
  addNode,
  environmentStatus,
  type GovOptions,
  initEnvironment,
  promoteTransaction,
  runTransaction,
} from "../../src/gov/mod.ts";
import { loadEnvironment } from "../../src/workspace/environment.ts";
import { renderInitialPyproject } from "../../src/gov/state/pyproject.ts";
import { ensureUv, UV_VERSION } from "../tools.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const GOV = join(root, "scripts/gov");
const FAKE_COMFYUI = join(root, "fixtures/comfyui");

import { type Figure, median, withFloor } from "../lib/common.ts";

function iso(i: number): string {
  return new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString();
}

function stamp(i: number): string {
  return iso(i).replace(/[-:]/g, "").replace("T", "-").replace(/\.(\d+)Z$/, "-$1");
}

/** An environment with `txCount` transactions and `snapCount` snapshots, written directly. */
async function bigEnvironment(dir: string, txCount: number, snapCount: number): Promise<void> {
  const state = join(dir, "state");
  for (const d of ["transactions", "conflicts", "logs", "work"]) {
    await Deno.mkdir(join(state, d), { recursive: true });
  }
  await Deno.writeTextFile(join(dir, "config.toml"), '[paths]\ncomfyui_dir = "ComfyUI"\n');
  const pyproject = renderInitialPyproject({
    name: "comfyui-env-bench",
    requirements: ["torch==2.1.0", "numpy", "pillow"],
    requiresPython: ">=3.10",
    envName: "bench",
  });
  const lock = 'version = 1\nrevision = 3\nrequires-python = ">=3.10"\n';
  const plugins = JSON.stringify({ version: 1, plugins: {} }, null, 2) + "\n";
  await Deno.writeTextFile(join(dir, "pyproject.toml"), pyproject);
  await Deno.writeTextFile(join(dir, "uv.lock"), lock);
  await Deno.writeTextFile(join(state, "plugins.json"), plugins);
  const freeze = Array.from({ length: 40 }, (_, i) => `package-${i}==1.${i}.0`);
  const statuses = ["promoted", "aborted", "completed", "failed", "needs_resolution"];
  for (let i = 0; i < txCount; i++) {
    const txid = `tx-${stamp(i)}-${i.toString(16).padStart(4, "0")}`;
    const tx = {
      txid,
      node_id: `node${i % 37}`,
      started_at: iso(i),
      ended_at: iso(i + 1),
      candidate_env: join(dir, ".venv-candidate", txid),
      status: statuses[i % statuses.length],
      pre_freeze: freeze,
      post_freeze: [...freeze, `extra-${i}==1.0`],
      diff: { added: [`extra-${i}==1.0`], removed: [], changed: [] },
      core_impact: [],
      stdout: "Starting server\n".repeat(50),
      stderr: "Import times for custom nodes:\n".repeat(50),
      run_exit_code: 0,
      conflict_report: null,
      resolution_pins: [],
      promotion_plan: null,
      promotion: null,
    };
    await Deno.writeTextFile(
      join(state, "transactions", `${txid}.json`),
      JSON.stringify(tx, null, 2),
    );
  }
  const snapshots = [];
  for (let i = 0; i < snapCount; i++) {
    const id = `snap-${stamp(i)}-${i.toString(16).padStart(4, "0")}`;
    const meta = { id, created_at: iso(i), reason: "pre-promote", ref: null };
    const sd = join(dir, "snapshots", id);
    await Deno.mkdir(sd, { recursive: true });
    await Deno.writeTextFile(join(sd, "pyproject.toml"), pyproject);
    await Deno.writeTextFile(join(sd, "uv.lock"), lock);
    await Deno.writeTextFile(join(sd, "plugins.json"), plugins);
    await Deno.writeTextFile(join(sd, "meta.json"), JSON.stringify(meta, null, 2));
    snapshots.push(meta);
  }
  await Deno.writeTextFile(
    join(state, "snapshots_index.json"),
    JSON.stringify({ version: 1, snapshots }, null, 2),
  );
}

async function git(args: string[], cwd: string): Promise<void> {
  const r = await runProcess("git", args, { cwd });
  if (r.code !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
}

async function promoteOverhead(tmp: string): Promise<Figure[]> {
  const links = join(tmp, "wheelhouse");
  const built = await runProcess("python3", [join(root, "scripts/build_wheelhouse.py"), links]);
  if (built.code !== 0) throw new Error(`build_wheelhouse.py: ${built.stderr}`);
  const env = join(tmp, "promote", "env");
  const comfy = join(env, "ComfyUI");
  await Deno.mkdir(join(comfy, "custom_nodes"), { recursive: true });
  for (const f of ["main.py", "folder_paths.py"]) {
    await Deno.copyFile(join(FAKE_COMFYUI, f), join(comfy, f));
  }
  await Deno.writeTextFile(join(comfy, "requirements.txt"), "torch==2.1.0\nnumpy\npillow\n");
  const vars: Record<string, string> = { GOV_UV: await ensureUv() };
  const gopts: GovOptions = {
    getenv: (n) => vars[n] ?? Deno.env.get(n),
    childEnv: { UV_FIND_LINKS: links, UV_OFFLINE: "1", UV_CACHE_DIR: join(tmp, "uv-cache") },
  };
  await initEnvironment(env, {}, gopts);
  const nodes: [string, string][] = [["tq", "tqdm"], ["rq", "requests"], ["ey", "einops"]];
  const totals: number[] = [];
  const uvs: number[] = [];
  const overheads: number[] = [];
  for (const [id, req] of nodes) {
    const repo = join(tmp, "repos", id);
    await Deno.mkdir(repo, { recursive: true });
    await Deno.writeTextFile(join(repo, "requirements.txt"), `${req}\n`);
    await Deno.writeTextFile(join(repo, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
    await git(["init", "-q"], repo);
    await git(["add", "-A"], repo);
    await git(
      ["-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-qm", "x"],
      repo,
    );
    const e = loadEnvironment(env);
    await addNode(e, id, repo, {}, gopts);
    const tx = await runTransaction(e, id, { timeoutSec: 60 }, gopts);
    if (tx.status !== "completed") throw new Error(`tx run ${id}: ${tx.status} ${tx.error}`);
    const done = await promoteTransaction(e, tx.txid, {}, gopts);
    const t = done.promotion?.timings as { total_ms: number; uv_ms: number; overhead_ms: number };
    totals.push(t.total_ms);
    uvs.push(t.uv_ms);
    overheads.push(t.overhead_ms);
  }
  return [
    {
      name: "promote overhead (total minus uv)",
      value: median(overheads),
      unit: "ms",
      detail: `median of ${nodes.length} promotions; overheads ${overheads.join(", ")} ms`,
    },
    {
      name: "promote total",
      value: median(totals),
      unit: "ms",
      detail: `uv ${UV_VERSION}, offline`,
    },
    { name: "promote time inside uv", value: median(uvs), unit: "ms" },
  ];
}

/** Runs the dependency-governance benchmarks. */
export default async function (): Promise<Figure[]> {
  const tmp = await Deno.makeTempDir({ prefix: "gov-bench-" });
  try {
    const env = join(tmp, "big", "env");
    await Deno.mkdir(env, { recursive: true });
    await bigEnvironment(env, 1000, 50);
    // The floor of `gov --version`: a bare `deno run` of an empty module with the flags
    // scripts/gov uses. Runs interleave, so a load change moves every series alike.
    const empty = join(tmp, "empty.ts");
    await Deno.writeTextFile(empty, "");
    const deno = Deno.execPath();
    const bare = ["run", "-q", "-P=gov", "--config", join(root, "deno.json"), empty];
    const timed = async (cmd: string, args: string[], what: string): Promise<[number, string]> => {
      const t0 = performance.now();
      const r = await runProcess(cmd, args, { env: { NO_COLOR: "1" } });
      const ms = performance.now() - t0;
      if (r.code !== 0) throw new Error(`${what}: ${r.stderr}`);
      return [ms, r.stdout];
    };
    const cli: number[] = [];
    const statusCli: number[] = [];
    const startup: number[] = [];
    const floor: number[] = [];
    let count = 0;
    for (let i = 0; i < 7; i++) {
      floor.push((await timed(deno, bare, "bare deno run"))[0]);
      startup.push((await timed(GOV, ["--version"], "gov --version"))[0]);
      const [ms, out] = await timed(GOV, ["tx", "list", "--json", "--env-dir", env], "tx list");
      cli.push(ms);
      count = JSON.parse(out).length;
      const [sms, sout] = await timed(GOV, ["status", "--json", "--env-dir", env], "status");
      statusCli.push(sms);
      JSON.parse(sout);
    }
    const e = loadEnvironment(env);
    const status: number[] = [];
    let open = 0;
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const s = await environmentStatus(e);
      status.push(performance.now() - t0);
      open = s.open_transactions.length;
    }
    const version = median(startup);
    const figures: Figure[] = [
      withFloor({
        name: "gov --version (process start)",
        value: version,
        unit: "ms",
        detail: "median of 7; floor: bare `deno run` of an empty module, same flags",
        goal: "≤ 1.2× floor",
      }, median(floor)),
      withFloor({
        name: "gov status --json (1,000 tx, 50 snapshots)",
        value: median(statusCli),
        unit: "ms",
        detail: "median of 7 CLI runs incl. process start; floor: gov --version",
        goal: "≤ 1.3× floor",
      }, version),
      withFloor({
        name: "gov tx list --json (1,000 tx, 50 snapshots)",
        value: median(cli),
        unit: "ms",
        detail: `median of 7 CLI runs; ${count} transactions listed; floor: gov --version`,
      }, version),
      {
        name: "environmentStatus in-process (1,000 tx, 50 snapshots)",
        value: median(status),
        unit: "ms",
        detail: `median of 10; ${open} open transactions`,
      },
    ];
    figures.push(...await promoteOverhead(tmp));
    return figures;
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
