/**
 * Commands of the env group: dependency governance of one ComfyUI environment (seed 003).
 *
 * @module
 */
import type { CommandEntry } from "../command.ts";

// Name and summary are repeated here so `gov --help` needs no command module; a test
// checks them against the loaded commands.
/** The env commands, in the order `gov --help` lists them. */
export const commands: CommandEntry[] = [
  {
    name: "init",
    summary: "initialise an environment: layout, uv lock, .venv-prod",
    load: async () => (await import("./init.ts")).initCommand,
  },
  {
    name: "node add",
    summary: "clone a custom node into custom_nodes/ and register it",
    load: async () => (await import("./node_add.ts")).nodeAddCommand,
  },
  {
    name: "node list",
    summary: "list the registered custom nodes and their managed dependencies",
    load: async () => (await import("./node_list.ts")).nodeListCommand,
  },
  {
    name: "node remove",
    summary: "remove a custom node, its dependency group and (GC) its packages",
    load: async () => (await import("./node_remove.ts")).nodeRemoveCommand,
  },
  {
    name: "tx run",
    summary: "try a custom node's requirements in a candidate venv and test-start ComfyUI",
    load: async () => (await import("./tx_run.ts")).txRunCommand,
  },
  {
    name: "tx list",
    summary: "list transactions, oldest first",
    load: async () => (await import("./tx_list.ts")).txListCommand,
  },
  {
    name: "tx inspect",
    summary: "show one transaction",
    load: async () => (await import("./tx_inspect.ts")).txInspectCommand,
  },
  {
    name: "tx abort",
    summary: "remove a transaction's candidate venv and mark it aborted",
    load: async () => (await import("./tx_abort.ts")).txAbortCommand,
  },
  {
    name: "tx promote",
    summary: "promote a transaction: snapshot, lock, atomic truth update, sync, smoke test",
    load: async () => (await import("./tx_promote.ts")).txPromoteCommand,
  },
  {
    name: "resolve",
    summary: "pin versions to settle a transaction's dependency conflict",
    load: async () => (await import("./resolve.ts")).resolveCommand,
  },
  {
    name: "rollback",
    summary: "restore a snapshot's truth files and rebuild .venv-prod",
    load: async () => (await import("./rollback.ts")).rollbackCommand,
  },
  {
    name: "snapshot list",
    summary: "list snapshots of the truth files, oldest first",
    load: async () => (await import("./snapshot_list.ts")).snapshotListCommand,
  },
  {
    name: "snapshot inspect",
    summary: "show a snapshot's meta.json",
    load: async () => (await import("./snapshot_inspect.ts")).snapshotInspectCommand,
  },
  {
    name: "snapshot import",
    summary: "bring the nodes of a ComfyUI-Manager or comfy-cli snapshot in, as one transaction",
    load: async () => (await import("./snapshot_import.ts")).snapshotImportCommand,
  },
  {
    name: "snapshot export",
    summary: "write a snapshot ComfyUI-Manager or comfy-cli can restore",
    load: async () => (await import("./snapshot_export.ts")).snapshotExportCommand,
  },
  {
    name: "snapshot diff",
    summary: "show nodes and packages that differ between two snapshots",
    load: async () => (await import("./snapshot_diff.ts")).snapshotDiffCommand,
  },
];
