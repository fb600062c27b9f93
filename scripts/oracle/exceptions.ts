/**
 * Workflows whose difference from the real frontend gov cannot know (each one is also
 * explained in the README's "Frontend oracle" section). A listed workflow that differs does
 * not fail the oracle; a listed one that agrees is reported so the entry can go.
 *
 * @module
 */

/** Corpus name (`real/<file>` or `templates/<file>`) to the reason gov cannot match it. */
export const KNOWN_EXCEPTIONS: Readonly<Record<string, string>> = {
  // Compared only with an object_info that defines comfyui-deploy's Python classes.
  "real/comfydeploy_sd15_external_inputs.ui.json":
    "its ComfyDeploy node is made virtual by comfyui-deploy's JavaScript, which the bare " +
    "frontend does not load; without it the frontend emits the node with no class_type (a " +
    "prompt the server rejects), gov drops it by name (FRONTEND_VIRTUAL_CLASSES)",
};
