/**
 * Paths of the repository's fixtures and shared data, for tests.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** Converts a file URL to a path. */
export function fromFileUrl(url: URL): string {
  return fileURLToPath(url);
}

/** Repository root. */
export const REPO_ROOT = fromFileUrl(new URL("../../", import.meta.url)).replace(/\/$/, "");
/** The fake ComfyUI's folder (`fixtures/comfyui`). */
export const FAKE_COMFYUI_DIR = `${REPO_ROOT}/fixtures/comfyui`;
/** The uv stand-in executable (`fixtures/uv/uv`). */
export const FAKE_UV = `${REPO_ROOT}/fixtures/uv/uv`;
/** `../shared/real-workflows`, beside the repository. */
export const REAL_WORKFLOWS_DIR = `${REPO_ROOT}/../shared/real-workflows`;
