/**
 * File IPC between gov's supervisor, gov's commands, and the panels inside ComfyUI: the
 * ComfyGit state files of `<workspace>/.metadata/`.
 *
 * @module
 */
export * from "./files.ts";
export * from "./switch.ts";
export * from "./pid.ts";
export * from "./lock.ts";
export * from "./startup.ts";
export * from "./cmd.ts";
