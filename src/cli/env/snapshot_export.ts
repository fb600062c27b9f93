/**
 * `gov snapshot export`: the current state or a gov snapshot as a ComfyUI-Manager or
 * comfy-cli snapshot.
 *
 * @module
 */
import { UsageError } from "../../errors.ts";
import { writeFileAtomic } from "../../fs/atomic.ts";
import { type Command, parseFlags, printJson } from "../command.ts";
import { exportSnapshot } from "../../gov/mod.ts";
import { ENV_FLAGS, ENV_FLAGS_HELP, envFromFlags, govOptions } from "./common.ts";

/** `gov snapshot export`. */
export const snapshotExportCommand: Command = {
  name: "snapshot export",
  summary: "write a snapshot ComfyUI-Manager or comfy-cli can restore",
  help: `Usage: gov snapshot export [<snapshot-id>] --format manager|comfy-cli [-o FILE] [--json]

Writes the registered nodes (git ones at their commits, registry ones at their versions),
parked nodes (custom_nodes/<id>.disabled, as disabled) and the packages of uv.lock as a
snapshot: --format manager is ComfyUI-Manager's JSON, --format comfy-cli the YAML that
comfy-cli and cm-cli restore. Without an id, the current state; with one, what that gov
snapshot recorded (parked nodes are not part of gov snapshots).

Flags:
  --format F   manager or comfy-cli (required)
  -o, --output FILE   write to FILE instead of standard output
  --json       print {file, left_out} instead of the snapshot (with -o)

${ENV_FLAGS_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parseFlags("snapshot export", args, {
      ...ENV_FLAGS,
      format: { type: "string" },
      output: { type: "string", short: "o" },
      json: { type: "boolean" },
    });
    if (positionals.length > 1) {
      throw new UsageError(`gov snapshot export: unexpected argument '${positionals[1]}'`, {
        hint: "usage: gov snapshot export [<snapshot-id>] --format manager|comfy-cli",
      });
    }
    const format = values.format;
    if (format !== "manager" && format !== "comfy-cli") {
      throw new UsageError(
        `gov snapshot export: --format must be manager or comfy-cli, not '${format ?? ""}'`,
        { hint: "add --format manager (JSON) or --format comfy-cli (YAML)" },
      );
    }
    const out = values.output;
    const env = envFromFlags(values, io);
    const r = await exportSnapshot(env, positionals[0] ?? "current", format, govOptions(io));
    for (const l of r.left_out) io.err(`note: left out ${l}\n`);
    if (out) {
      await writeFileAtomic(out, r.text);
      if (values.json) printJson(io, { file: out, left_out: r.left_out });
      else io.err(`wrote ${out}\n`);
    } else io.out(r.text);
    return 0;
  },
};
