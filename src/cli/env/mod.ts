/**
 * Commands of the env group: dependency governance of one ComfyUI environment (seed 003).
 *
 * @module
 */
import type { Command } from "../command.ts";
import { initCommand } from "./init.ts";
import { nodeAddCommand } from "./node_add.ts";
import { nodeListCommand } from "./node_list.ts";
import { nodeRemoveCommand } from "./node_remove.ts";
import { txRunCommand } from "./tx_run.ts";
import { txListCommand } from "./tx_list.ts";
import { txInspectCommand } from "./tx_inspect.ts";
import { txAbortCommand } from "./tx_abort.ts";
import { txPromoteCommand } from "./tx_promote.ts";
import { resolveCommand } from "./resolve.ts";
import { rollbackCommand } from "./rollback.ts";
import { snapshotListCommand } from "./snapshot_list.ts";
import { snapshotInspectCommand } from "./snapshot_inspect.ts";
import { snapshotImportCommand } from "./snapshot_import.ts";
import { snapshotExportCommand } from "./snapshot_export.ts";
import { snapshotDiffCommand } from "./snapshot_diff.ts";

/** The env commands, in the order `gov --help` lists them. */
export const commands: Command[] = [
  initCommand,
  nodeAddCommand,
  nodeListCommand,
  nodeRemoveCommand,
  txRunCommand,
  txListCommand,
  txInspectCommand,
  txAbortCommand,
  txPromoteCommand,
  resolveCommand,
  rollbackCommand,
  snapshotListCommand,
  snapshotInspectCommand,
  snapshotImportCommand,
  snapshotExportCommand,
  snapshotDiffCommand,
];
