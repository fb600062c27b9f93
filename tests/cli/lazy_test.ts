/**
 * The CLI imports a command's module only when that command runs: what `main.ts` imports
 * statically (all `gov --version` loads) holds no capability layer and no `node:` module,
 * and the command table's names and summaries are those of the commands it loads.
 *
 * @module
 */
import { assertEquals, assertMatch, assertTrue } from "../helpers/assert.ts";
import { runProcess } from "../../src/process/run.ts";
import { ALL_COMMANDS } from "../../src/cli/main.ts";

const ROOT = new URL("../../", import.meta.url);
const GOV = new URL("scripts/gov", ROOT).pathname;

interface Graph {
  roots: string[];
  modules: {
    specifier: string;
    dependencies?: { isDynamic?: boolean; code?: { specifier: string } }[];
  }[];
}

/** Modules reachable from `entry` through static imports only, as `deno info` sees them. */
async function staticGraph(entry: string): Promise<string[]> {
  const r = await runProcess(Deno.execPath(), ["info", "--json", entry], {
    cwd: ROOT.pathname,
  });
  assertEquals(r.code, 0, r.stderr);
  const g = JSON.parse(r.stdout) as Graph;
  const byName = new Map(g.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const todo = [...g.roots];
  while (todo.length) {
    const s = todo.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of byName.get(s)?.dependencies ?? []) {
      if (!d.isDynamic && d.code?.specifier) todo.push(d.code.specifier);
    }
  }
  return [...seen].map((s) => s.replace(ROOT.href, ""));
}

Deno.test("gov --version loads only the command table: no layer, no node: module", async () => {
  const loaded = await staticGraph("main.ts");
  assertTrue(loaded.includes("src/cli/main.ts"), loaded.join("\n"));
  const heavy = loaded.filter((m) =>
    m.startsWith("node:") || m.startsWith("npm:") ||
    /^src\/(gov|serve|supervisor|backends|workflow|doctor|uv|workspace|ipc)\//.test(m)
  );
  assertEquals(heavy, []);
  // The entry, the CLI's main, io, errors, version and one table per command group.
  assertTrue(loaded.length <= 12, `main.ts loads ${loaded.length} modules:\n${loaded.join("\n")}`);
  const r = await runProcess(GOV, ["--version"]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stdout, /^gov \d+\.\d+\.\d+/);
});

Deno.test("the command table names and summarises each command as the command itself", async () => {
  const names = new Set<string>();
  for (const entry of ALL_COMMANDS) {
    const command = await entry.load();
    assertEquals(command.name, entry.name);
    assertEquals(command.summary, entry.summary, `gov ${entry.name}`);
    names.add(entry.name);
  }
  assertEquals(names.size, ALL_COMMANDS.length, "a command is listed twice");
});

Deno.test("help and errors still come from the loaded command", async () => {
  const help = await runProcess(GOV, ["tx", "list", "--help"], { env: { NO_COLOR: "1" } });
  assertEquals(help.code, 0, help.stderr);
  assertMatch(help.stdout, /^Usage: gov tx list/);
  const top = await runProcess(GOV, ["--help"], { env: { NO_COLOR: "1" } });
  for (const c of ALL_COMMANDS) assertTrue(top.stdout.includes(`  ${c.name} `), c.name);
  // A GovError from a lazily loaded command is still worded (with its flag hint).
  const bad = await runProcess(GOV, ["tx", "list", "--env-dir", "/no/such/env"], {
    env: { NO_COLOR: "1" },
  });
  assertEquals(bad.code, 2);
  assertMatch(bad.stderr, /^error: .*\/no\/such\/env.*\n {2}pass .* --env-dir/);
});
