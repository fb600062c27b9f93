/**
 * `gov snapshot diff`: nodes and packages between two snapshots (or `current`).
 *
 * @module
 */
import { type Command, parseFlags, positionalArgs, printJson } from "../command.ts";
import { diffSnapshots, type SnapshotDiff } from "../../gov/mod.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions } from "./common.ts";

function short(pin: string): string {
  return /^[0-9a-f]{40}$/.test(pin) ? pin.slice(0, 12) : pin;
}

function render(d: SnapshotDiff): string {
  const out: string[] = [`${d.a} -> ${d.b}`];
  const core = (c: boolean) => (c ? "  [core]" : "");
  for (const n of d.nodes.added) out.push(`+ node ${n.id} ${n.source} ${short(n.pin)}`);
  for (const n of d.nodes.removed) out.push(`- node ${n.id} ${n.source} ${short(n.pin)}`);
  for (const n of d.nodes.moved) {
    out.push(`~ node ${n.id} ${n.source} ${short(n.from)} -> ${short(n.to)}`);
  }
  const p = d.packages;
  for (const x of p.added) out.push(`+ ${x.name} ${x.version}${core(x.core)}`);
  for (const x of p.removed) out.push(`- ${x.name} ${x.version}${core(x.core)}`);
  for (const x of p.upgraded) out.push(`↑ ${x.name} ${x.from} -> ${x.to}${core(x.core)}`);
  for (const x of p.downgraded) out.push(`↓ ${x.name} ${x.from} -> ${x.to}${core(x.core)}`);
  if (out.length === 1) out.push("no difference");
  return out.join("\n") + "\n";
}

/** `gov snapshot diff`. */
export const snapshotDiffCommand: Command = {
  name: "snapshot diff",
  summary: "show nodes and packages that differ between two snapshots",
  help: `Usage: gov snapshot diff <a> <b> [--json]

<a> and <b> are snapshot ids (see \`gov snapshot list\`) or "current". Shows the custom
nodes added, removed and moved (with their commits or registry versions), and the
packages of each side's uv.lock added, removed, upgraded and downgraded; core packages
([tx] core_packages: torch, numpy, ...) are flagged [core].

Flags:
  --json   print the difference as JSON

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("snapshot diff", args, {
      ...ENV_FLAGS,
      json: { type: "boolean" },
    });
    const [a, b] = positionalArgs("snapshot diff", positionals, ["<a>", "<b>"]);
    const d = await diffSnapshots(envFromFlags(values, io), a, b, govOptions(io));
    if (values.json) printJson(io, d);
    else io.out(render(d));
    return 0;
  },
};
