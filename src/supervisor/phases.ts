/**
 * The supervisor's states and the transitions allowed between them, as tables a reader can
 * check against the contract without reading the loop. This module imports nothing but a
 * type, so every other supervisor module can depend on it and none can pull it into a cycle.
 *
 * Three tables:
 * - {@linkcode EXIT_ACTIONS}: what ComfyUI's exit code asks for (ComfyGit's contract: 0
 *   stop, 42 restart, 43 switch, anything else a crash; Manager's reboot marker turns 0 into
 *   a restart).
 * - {@linkcode LOOP}: the steps of the loop in `supervisor.ts` and which step may follow
 *   which. Only `restart` (the rate gate) and `crash` (count, back off, give up) lead back
 *   to `start`, so no way of ending a ComfyUI can restart it without the crash policy.
 * - {@linkcode PHASES} and {@linkcode SWITCH_STATES}: the phase published in
 *   `.supervisor_state.json` and the state of a switch in `.switch_status.json`, each with the
 *   states that may follow. {@linkcode transition} asserts a move before it is published.
 *
 * @module
 */
import type { SwitchState } from "../ipc/switch.ts";

/** ComfyUI stopped on purpose: stop supervising (unless Manager's reboot marker is there). */
export const EXIT_CLEAN = 0;
/** ComfyUI asks to be resynced and started again. */
export const EXIT_RESTART = 42;
/** ComfyUI asks to switch to the environment in `.switch_request.json`. */
export const EXIT_SWITCH_ENV = 43;

/** What the loop does after ComfyUI exits. */
export type ExitAction = "stop" | "restart" | "switch" | "crash";

/** Exit code (or Manager's reboot marker) -> what it means and what the loop does. */
export const EXIT_ACTIONS: Readonly<
  Record<"clean" | "restart" | "switch" | "manager" | "other", {
    meaning: string;
    action: ExitAction;
  }>
> = Object.freeze({
  clean: { meaning: "clean stop", action: "stop" },
  restart: { meaning: "restart requested", action: "restart" },
  switch: { meaning: "switch requested", action: "switch" },
  manager: { meaning: "ComfyUI-Manager restart", action: "restart" },
  other: { meaning: "crash", action: "crash" },
});

/**
 * Looks an exit up in {@linkcode EXIT_ACTIONS}. `rebootMarker`: Manager's
 * `<session>.reboot` exists (it only matters for exit 0).
 *
 * @example
 * ```ts
 * exitAction(0, true).action; // "restart"
 * ```
 */
export function exitAction(
  code: number,
  rebootMarker: boolean,
): { meaning: string; action: ExitAction } {
  if (code === EXIT_RESTART) return EXIT_ACTIONS.restart;
  if (code === EXIT_SWITCH_ENV) return EXIT_ACTIONS.switch;
  if (code === EXIT_CLEAN) return rebootMarker ? EXIT_ACTIONS.manager : EXIT_ACTIONS.clean;
  return EXIT_ACTIONS.other;
}

/** Steps of the supervisor loop. */
export type LoopStep =
  | "begin"
  | "start"
  | "supervise"
  | "exited"
  | "restart"
  | "crash"
  | "switch"
  | "end";

/** The loop: what each step does and which steps may follow it. */
export const LOOP: Readonly<Record<LoopStep, { does: string; next: readonly LoopStep[] }>> = Object
  .freeze({
    begin: {
      does: "claim the workspace; a pending switch request is carried out first",
      next: ["start", "switch", "end"],
    },
    start: {
      does: "sync the environment, check its port is free, spawn ComfyUI",
      next: ["supervise", "crash", "end"],
    },
    supervise: {
      does: "probe health, poll .cmd and switch requests until something happens",
      next: ["exited", "restart", "switch", "crash", "end"],
    },
    exited: {
      does: "act on the exit code (EXIT_ACTIONS)",
      next: ["restart", "switch", "crash", "end"],
    },
    restart: {
      does: "rate gate: crash_limit restarts within crash_window of a ComfyUI that never " +
        "answered count as one crash",
      next: ["start", "crash"],
    },
    crash: {
      does: "count the crash; give up at crash_limit within crash_window, else back off " +
        "(.cmd and switch requests still honoured)",
      next: ["start", "switch", "end"],
    },
    switch: {
      does: "the switch protocol (switch.ts); rolls back to the source when the target fails",
      next: ["supervise", "restart", "crash", "end"],
    },
    end: { does: "stop ComfyUI's group, clean up, return the exit code", next: [] },
  });

/** Phases published in `.supervisor_state.json`. */
export type SupervisorPhase =
  | "starting"
  | "syncing"
  | "waiting_health"
  | "running"
  | "restarting"
  | "backoff"
  | "switching"
  | "stopping"
  | "stopped";

/** The published phases, each with the phases that may follow it. */
export const PHASES: Readonly<Record<SupervisorPhase, readonly SupervisorPhase[]>> = Object.freeze({
  starting: ["syncing", "switching", "stopped"],
  // Again syncing: a switch's target failed to sync and the source is synced for rollback.
  syncing: ["syncing", "waiting_health", "backoff", "stopped"],
  // syncing/backoff: a switch's target exited before answering (rollback, or nothing left).
  waiting_health: [
    "running",
    "stopping",
    "restarting",
    "switching",
    "syncing",
    "backoff",
    "stopped",
  ],
  running: ["stopping", "restarting", "switching", "stopped"],
  restarting: ["syncing", "switching", "backoff", "stopped"],
  backoff: ["syncing", "switching", "stopped"],
  switching: ["stopping", "syncing", "backoff", "stopped"],
  stopping: ["syncing", "backoff", "stopped"],
  stopped: [],
});

/** States of one switch (`idle` = not begun), each with the states that may follow it. */
export const SWITCH_STATES: Readonly<Record<SwitchState, readonly SwitchState[]>> = Object.freeze({
  // complete: the target already runs; failed: the target was refused before anything stopped.
  idle: ["preparing", "complete", "failed"],
  preparing: ["syncing", "aborted"],
  syncing: ["starting", "rolling_back", "failed", "aborted"],
  starting: ["validating", "rolling_back", "failed", "aborted"],
  validating: ["complete", "rolling_back", "failed", "aborted"],
  rolling_back: ["failed", "aborted"],
  // A switch left mid-way by a supervisor that died: found at start, failed once ComfyUI runs.
  recovering: ["failed"],
  complete: [],
  failed: [],
  aborted: [],
});

/** A move the tables do not allow: a bug in the supervisor, never a user's mistake. */
export class TransitionError extends Error {
  override name = "TransitionError";
  /** @param table which table refused the move */
  constructor(table: string, from: string, to: string) {
    super(`${table}: ${from} -> ${to} is not an allowed transition`);
  }
}

/**
 * Asserts that `table` allows `from -> to` (staying in the same state always is) and returns
 * `to`; throws a {@linkcode TransitionError} otherwise.
 *
 * @example
 * ```ts
 * transition("phase", PHASES, "syncing", "waiting_health"); // "waiting_health"
 * ```
 */
export function transition<S extends string>(
  table: string,
  allowed: Readonly<Record<S, readonly S[] | { readonly next: readonly S[] }>>,
  from: S,
  to: S,
): S {
  const entry = allowed[from];
  const next: readonly S[] = Array.isArray(entry) ? entry : (entry as { next: readonly S[] }).next;
  if (from !== to && !next.includes(to)) throw new TransitionError(table, from, to);
  return to;
}
