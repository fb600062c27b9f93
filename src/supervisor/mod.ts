/**
 * The supervisor: `gov run` keeping ComfyUI alive, and everything that controls it.
 *
 * @module
 */
export * from "./settings.ts";
export * from "./health.ts";
export * from "./events.ts";
export * from "./state.ts";
export * from "./phases.ts";
export * from "./supervisor.ts";
export * from "./status.ts";
export * from "./control.ts";
export * from "./panel.ts";
export * from "./systemd.ts";
export * from "./procinfo.ts";
