/** gov's version, printed by `gov --version`. Kept in step with deno.json. */
export const VERSION = "0.1.0";
