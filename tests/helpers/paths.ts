/**
 * Paths of the repository's fixtures and shared data, for tests.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { ensureUv, PINNED_UV } from "../../scripts/tools.ts";

/** Converts a file URL to a path. */
export function fromFileUrl(url: URL): string {
  return fileURLToPath(url);
}

/** Repository root. */
export const REPO_ROOT = fromFileUrl(new URL("../../", import.meta.url)).replace(/\/$/, "");
/** The fake ComfyUI's folder (`fixtures/comfyui`). */
export const FAKE_COMFYUI_DIR = `${REPO_ROOT}/fixtures/comfyui`;
/**
 * The pinned real uv the tests drive (`.tools/bin/uv`, installed by `scripts/tools.ts`;
 * {@linkcode ensureUv} installs it when a test file runs without the `test` task).
 */
export const UV = PINNED_UV;
export { ensureUv };
/** `../shared/real-workflows`, beside the repository. */
export const REAL_WORKFLOWS_DIR = `${REPO_ROOT}/../shared/real-workflows`;
