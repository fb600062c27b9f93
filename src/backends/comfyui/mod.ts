/**
 * The ComfyUI backend client, one import for its users: the HTTP client, its `/ws` socket,
 * the run-prompt state machine, history parsing and the errors. ComfyUI's own data shapes
 * (prompts, `/object_info`, `/history` entries) live in `src/comfyui/`.
 *
 * @module
 */
export type {
  HistoryEntry,
  NodeErrors,
  OutputRef,
  PromptErrorInfo,
  PromptLocation,
  SystemStats,
  WsMessage,
} from "../../comfyui/api.ts";
export { type ClientOptions, ComfyUIClient, type PromptGraph } from "./client.ts";
export {
  BackendHttpError,
  BackendUnreachableError,
  neverDelivered,
  PromptDetachedError,
  PromptLostError,
  PromptOutcomeUnknownError,
  PromptRejectedError,
  summariseNodeErrors,
} from "./errors.ts";
export { resultFromHistory, type RunResult } from "./history.ts";
export {
  type PromptApi,
  type PromptSocket,
  type RunEvent,
  type RunOptions,
  runPrompt,
} from "./run.ts";
export { ComfyUISocket } from "./socket.ts";
export { SharedSocket, type SocketHandlers } from "./shared_socket.ts";
