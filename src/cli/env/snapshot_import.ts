/**
 * `gov snapshot import`: a ComfyUI-Manager or comfy-cli snapshot brought in as one
 * transaction.
 *
 * @module
 */
import { type Command, numberFlag, parseFlags, positionalArgs, printJson } from "../command.ts";
import { styles } from "../io.ts";
import { type ImportResult, importSnapshot } from "../../gov/mod.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions, table } from "./common.ts";

function render(r: ImportResult): string {
  const lines: string[] = [];
  if (r.nodes.length) {
    lines.push(
      table([
        ["NODE", "SOURCE", "PIN", "ACTION", "NOTE"],
        ...r.nodes.map((n) => [
          n.id,
          n.source,
          n.source === "git" ? n.pin.slice(0, 12) : n.pin,
          n.action,
          n.note ?? "",
        ]),
      ]).trimEnd(),
    );
  } else lines.push("the snapshot has no custom nodes");
  const p = r.pips;
  if (p.pinned.length) lines.push(`pips pinned (group snapshot-pips): ${p.pinned.length}`);
  if (p.left_out.length) {
    lines.push(`pips no node requires, left out (--with-pips pins them): ${p.left_out.join(", ")}`);
  }
  for (const d of p.differ) {
    lines.push(`pip ${d.name}: snapshot ${d.snapshot}, installed ${d.installed}`);
  }
  if (p.not_installed.length) {
    lines.push(`pips gov never installs from a snapshot: ${p.not_installed.join(", ")}`);
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines.join("\n") + "\n";
}

/** `gov snapshot import`. */
export const snapshotImportCommand: Command = {
  name: "snapshot import",
  summary: "bring the nodes of a ComfyUI-Manager or comfy-cli snapshot in, as one transaction",
  help: `Usage: gov snapshot import <file> [--dry-run] [--with-pips] [--approve-core]
                           [--pin PKG==VER]... [--timeout S] [--json]

Reads a snapshot saved by ComfyUI-Manager (JSON) or comfy-cli / cm-cli (YAML under
custom_nodes:) and brings every custom node in at its pinned commit (git_custom_nodes) or
registry version (cnr_custom_nodes), as ONE transaction: one candidate venv, one test
start of ComfyUI, one diff, the core gate, one promotion with pre/post snapshots. Any
failure takes the imported nodes out again; the transaction stays for \`gov tx inspect\`.

Disabled nodes come in parked (custom_nodes/<id>.disabled, unregistered). A folder that
is already there at the pinned commit is adopted; one at another commit refuses the
import. Registry nodes at nightly/unknown are skipped (add them by git URL); "latest"
takes the registry's latest version. Entries of pips that nothing requires are listed
and left out, unless --with-pips pins every pips entry in dependency group snapshot-pips
(torch, nvidia-* and URL entries never: the host's CUDA decides those).

Flags:
  --dry-run        show what would change; touch nothing
  --with-pips      pin the snapshot's pips too
  --approve-core   accept changes to core packages (torch, numpy, ...)
  --pin P          resolution pin <package>==<version> for a conflict (repeatable)
  --timeout S      the longest gov waits for the candidate ComfyUI to come up, in seconds
  --json           print the result as JSON

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("snapshot import", args, {
      ...ENV_FLAGS,
      "dry-run": { type: "boolean" },
      "with-pips": { type: "boolean" },
      "approve-core": { type: "boolean" },
      pin: { type: "string", multiple: true },
      timeout: { type: "string" },
      json: { type: "boolean" },
    });
    const [file] = positionalArgs("snapshot import", positionals, ["<file>"]);
    const timeoutSec = values.timeout === undefined
      ? undefined
      : numberFlag("snapshot import", "--timeout", values.timeout, 120, { min: 1, max: 86_400 });
    const env = envFromFlags(values, io);
    const r = await importSnapshot(env, file, {
      dryRun: values["dry-run"],
      withPips: values["with-pips"],
      approveCore: values["approve-core"],
      pins: values.pin,
      timeoutSec,
    }, govOptions(io));
    if (values.json) {
      printJson(io, r);
      return 0;
    }
    io.out(render(r));
    const s = styles(io);
    if (r.dry_run) io.out("dry run: nothing was changed\n");
    else if (r.txid) {
      io.out(
        `${s.green("✓")} imported ${r.tx_nodes.length} node(s) in transaction ${r.txid}` +
          ` (snapshots ${r.pre_snapshot} -> ${r.post_snapshot})\n`,
      );
    } else io.out("nothing to import: every node is already in place\n");
    return 0;
  },
};
