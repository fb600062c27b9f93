/**
 * What the supervisor reports: one event per thing that happened, with a human sentence
 * and machine fields. The CLI prints one line per event; tests and benchmarks read fields.
 *
 * @module
 */

/** Kinds of supervisor events. */
export type SupervisorEventType =
  | "supervisor_started"
  | "takeover"
  | "orphan_killed"
  | "sync_started"
  | "sync_step"
  | "sync_done"
  | "sync_failed"
  | "port_busy"
  | "child_started"
  | "spawn_failed"
  | "healthy"
  | "health_timeout"
  | "child_exited"
  | "restart"
  | "crash"
  | "give_up"
  | "command"
  | "switch_requested"
  | "switch_progress"
  | "switch_complete"
  | "switch_failed"
  | "switch_aborted"
  | "warning"
  | "stopping"
  | "child_stopped"
  | "stopped";

/** One event. `time` is milliseconds since the epoch. */
export interface SupervisorEvent {
  type: SupervisorEventType;
  time: number;
  message: string;
  [field: string]: unknown;
}

/**
 * Formats an event as one log line: ISO time, event type, sentence.
 *
 * @example
 * ```ts
 * import { formatEvent } from "@/supervisor/events.ts";
 *
 * formatEvent({ type: "healthy", time: 0, message: "ComfyUI answers on 127.0.0.1:8188" });
 * // "1970-01-01T00:00:00.000Z healthy ComfyUI answers on 127.0.0.1:8188"
 * ```
 */
export function formatEvent(e: SupervisorEvent): string {
  return `${new Date(e.time).toISOString()} ${e.type} ${e.message}`;
}

/**
 * Parses a line written by {@linkcode formatEvent} back into time, type and message;
 * `undefined` for any other line (ComfyUI's own output in the same log).
 *
 * @example
 * ```ts
 * import { parseEventLine } from "@/supervisor/events.ts";
 *
 * const e = parseEventLine("2026-01-01T00:00:00.000Z healthy ComfyUI answers");
 * console.log(e?.type); // "healthy"
 * ```
 */
export function parseEventLine(
  line: string,
): { time: number; type: SupervisorEventType; message: string } | undefined {
  const m = line.match(/^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) ([a-z_]+) (.*)$/);
  if (!m) return undefined;
  return { time: Date.parse(m[1]), type: m[2] as SupervisorEventType, message: m[3] };
}
