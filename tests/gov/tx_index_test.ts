/**
 * The transaction index is a cache that is never wrong: `gov status` and `gov tx list` read
 * the same summaries as parsing every transaction would, after a kill between a
 * transaction's write and its index entry, a deleted or truncated index, a hand edit, and
 * on a read-only state folder (where nothing is written).
 *
 * @module
 */
import { join } from "node:path";
import { assertEquals, assertTrue } from "../helpers/assert.ts";
import { runProcess } from "../../src/process/run.ts";
import { type GovPaths, govPaths } from "../../src/gov/state/paths.ts";
import type { Transaction } from "../../src/gov/state/schema.ts";
import { listTxs, writeTx } from "../../src/gov/state/store.ts";
import { listTxSummaries, summarizeTx, txIndexPath } from "../../src/gov/state/tx_index.ts";
import { loadEnvironment } from "../../src/workspace/environment.ts";
import { renderInitialPyproject } from "../../src/gov/state/pyproject.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const GOV = join(ROOT, "scripts/gov");
const PROBE = new URL("./mount_probe.ts", import.meta.url).pathname;
const STATUSES = ["promoted", "aborted", "completed", "failed", "needs_resolution"] as const;

function tx(i: number, status: string = STATUSES[i % STATUSES.length]): Transaction {
  const at = new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString();
  return {
    txid: `tx-20260101-${String(i).padStart(6, "0")}-000-00${i % 10}a`,
    node_id: `node${i % 3}`,
    started_at: at,
    ended_at: at,
    candidate_env: `/nowhere/${i}`,
    status,
    pre_freeze: ["a==1"],
    post_freeze: ["a==1", `extra-${i}==1.0`],
    diff: { added: [`extra-${i}==1.0`], removed: [], changed: [] },
    core_impact: [],
    stdout: "out\n".repeat(20),
    stderr: "",
    run_exit_code: 0,
    conflict_report: null,
    resolution_pins: [],
    promotion_plan: null,
    promotion: null,
  } as unknown as Transaction;
}

/** An initialised-looking environment holding `n` transactions written through writeTx. */
async function environment(n: number): Promise<{ dir: string; p: GovPaths }> {
  const dir = await Deno.makeTempDir({ prefix: "gov-txindex-" });
  const state = join(dir, "state");
  await Deno.mkdir(join(state, "transactions"), { recursive: true });
  await Deno.writeTextFile(join(dir, "config.toml"), '[paths]\ncomfyui_dir = "ComfyUI"\n');
  await Deno.writeTextFile(
    join(dir, "pyproject.toml"),
    renderInitialPyproject({
      name: "comfyui-env-t",
      requirements: ["numpy"],
      requiresPython: ">=3.10",
      envName: "t",
    }),
  );
  await Deno.writeTextFile(join(dir, "uv.lock"), 'version = 1\nrequires-python = ">=3.10"\n');
  await Deno.writeTextFile(
    join(state, "plugins.json"),
    JSON.stringify({ version: 1, plugins: {} }),
  );
  const p = govPaths(loadEnvironment(dir));
  for (let i = 0; i < n; i++) await writeTx(p, tx(i));
  return { dir, p };
}

/** What parsing every transaction file gives: the reference the index must equal. */
async function truth(p: GovPaths) {
  return (await listTxs(p)).map(summarizeTx);
}

async function indexEntries(p: GovPaths): Promise<{ txid: string; status: string }[]> {
  return JSON.parse(await Deno.readTextFile(txIndexPath(p))).entries;
}

Deno.test("index: built on first read, kept current by writeTx, equal to the files", async () => {
  const { dir, p } = await environment(6);
  try {
    // writeTx never builds a missing index (that would parse every file on a write).
    assertTrue(!(await exists(txIndexPath(p))));
    assertEquals(await listTxSummaries(p), await truth(p));
    assertEquals((await indexEntries(p)).length, 6);
    // A current index is only read: the atomic rewrite would give it a new inode.
    const ino = (await Deno.stat(txIndexPath(p))).ino;
    await listTxSummaries(p);
    assertEquals((await Deno.stat(txIndexPath(p))).ino, ino);
    // A write updates its own entry in place.
    await writeTx(p, tx(2, "aborted"));
    await writeTx(p, tx(9));
    const entries = await indexEntries(p);
    assertEquals(entries.length, 7);
    assertEquals(entries.find((e) => e.txid === tx(2).txid)?.status, "aborted");
    assertEquals(await listTxSummaries(p), await truth(p));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("index: a kill between a transaction's file and its entry reads correctly", async () => {
  const { dir, p } = await environment(4);
  try {
    await listTxSummaries(p);
    const script = join(dir, "write.ts");
    const store = new URL("../../src/gov/state/store.ts", import.meta.url).href;
    const paths = new URL("../../src/gov/state/paths.ts", import.meta.url).href;
    const envMod = new URL("../../src/workspace/environment.ts", import.meta.url).href;
    const changed = { ...tx(1, "failed"), run_exit_code: 3 };
    await Deno.writeTextFile(
      script,
      `import { writeTx } from ${JSON.stringify(store)};
import { govPaths } from ${JSON.stringify(paths)};
import { loadEnvironment } from ${JSON.stringify(envMod)};
await writeTx(govPaths(loadEnvironment(${JSON.stringify(dir)})), ${JSON.stringify(changed)});
console.log("not killed");`,
    );
    const r = await runProcess(Deno.execPath(), [
      "run",
      "-A",
      "--config",
      join(ROOT, "deno.json"),
      script,
    ], {
      env: { GOV_FAULT: "tx:written" },
    });
    assertTrue(r.code !== 0 && !r.stdout.includes("not killed"), `${r.code} ${r.stderr}`);
    // The file is new, its entry is old: exactly the state a crash leaves.
    assertEquals((await truth(p))[1].status, "failed");
    assertEquals((await indexEntries(p))[1].status, STATUSES[1]);
    const read = await listTxSummaries(p);
    assertEquals(read[1].status, "failed");
    assertEquals(read[1].run_exit_code, 3);
    assertEquals(read, await truth(p));
    assertEquals((await indexEntries(p))[1].status, "failed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Runs `fn` on a fresh environment of five transactions whose index has been written. */
async function withIndexed(fn: (p: GovPaths) => Promise<void>): Promise<void> {
  const { dir, p } = await environment(5);
  try {
    await listTxSummaries(p);
    await fn(p);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("index: a deleted index is rebuilt from the transaction files", () =>
  withIndexed(async (p) => {
    await Deno.remove(txIndexPath(p));
    assertEquals(await listTxSummaries(p), await truth(p));
    assertTrue(await exists(txIndexPath(p)));
  }));

Deno.test("index: a truncated index is read past and rewritten", () =>
  withIndexed(async (p) => {
    const text = await Deno.readTextFile(txIndexPath(p));
    await Deno.writeTextFile(txIndexPath(p), text.slice(0, text.length / 2));
    assertEquals(await listTxSummaries(p), await truth(p));
    assertEquals((await indexEntries(p)).length, 5);
  }));

Deno.test("index: valid JSON that is not an index is not trusted", () =>
  withIndexed(async (p) => {
    await Deno.writeTextFile(txIndexPath(p), '{"version":1,"entries":[{"txid":1}]}');
    assertEquals(await listTxSummaries(p), await truth(p));
  }));

Deno.test("index: a transaction edited in place by hand is read as edited", () =>
  withIndexed(async (p) => {
    const file = join(p.transactionsDir, `${tx(3).txid}.json`);
    const edited = JSON.parse(await Deno.readTextFile(file));
    edited.status = "aborted";
    edited.node_id = "edited";
    // In place: same inode, as an editor that overwrites the file keeps it.
    const f = await Deno.open(file, { write: true, truncate: true });
    await f.write(new TextEncoder().encode(JSON.stringify(edited, null, 2)));
    f.close();
    const read = await listTxSummaries(p);
    assertEquals(read[3].node_id, "edited");
    assertEquals(read, await truth(p));
  }));

Deno.test("index: a transaction removed and one added by hand are both seen", () =>
  withIndexed(async (p) => {
    await Deno.remove(join(p.transactionsDir, `${tx(0).txid}.json`));
    await Deno.writeTextFile(
      join(p.transactionsDir, `${tx(7).txid}.json`),
      JSON.stringify(tx(7)),
    );
    const read = await listTxSummaries(p);
    assertEquals(read.map((s) => s.txid), [1, 2, 3, 4, 7].map((i) => tx(i).txid));
    assertEquals(read, await truth(p));
  }));

async function canMount(): Promise<boolean> {
  try {
    const r = await runProcess("unshare", ["--mount", "--propagation", "private", "true"]);
    return r.code === 0;
  } catch {
    return false;
  }
}

Deno.test("index: gov status and tx list on a read-only state read without writing", async () => {
  const { dir, p } = await environment(5);
  try {
    // A hand-written transaction the index does not know, and no index yet.
    await Deno.writeTextFile(
      join(p.transactionsDir, `${tx(8).txid}.json`),
      JSON.stringify(tx(8, "completed")),
    );
    const cli = async (args: string[], ro: boolean) => {
      const cmd = [GOV, ...args, "--json", "--env-dir", dir];
      const r = ro
        ? await runProcess("unshare", [
          "--mount",
          "--propagation",
          "private",
          "--",
          Deno.execPath(),
          "run",
          "-A",
          PROBE,
          "ro",
          p.stateDir,
          "--",
          "env",
          "NO_COLOR=1",
          `DENO=${Deno.execPath()}`,
          ...cmd,
        ])
        : await runProcess(cmd[0], cmd.slice(1), { env: { NO_COLOR: "1" } });
      assertEquals(r.code, 0, `gov ${args.join(" ")}: ${r.stderr}`);
      return JSON.parse(r.stdout);
    };
    const expected = await truth(p);
    if (await canMount()) {
      assertEquals(await cli(["tx", "list"], true), expected);
      const s = await cli(["status"], true);
      assertEquals(s.environment.transactions.total, 6);
      assertTrue(!(await exists(txIndexPath(p))), "an index was written on a read-only state");
    }
    // Writable: the same answers, and the index is written.
    assertEquals(await cli(["tx", "list"], false), expected);
    const s = await cli(["status"], false);
    const byStatus: Record<string, number> = {};
    for (const e of expected) byStatus[e.status] = (byStatus[e.status] ?? 0) + 1;
    assertEquals(s.environment.transactions, { total: 6, by_status: byStatus });
    assertEquals(
      s.environment.open_transactions.map((o: { txid: string }) => o.txid),
      expected.filter((e) => !["promoted", "aborted"].includes(e.status)).map((e) => e.txid),
    );
    assertEquals((await indexEntries(p)).length, 6);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
