/**
 * Workflows whose difference from the real frontend gov cannot know (each one is also
 * explained in the README's "Frontend oracle" section). A listed workflow that differs does
 * not fail the oracle; a listed one that agrees is reported so the entry can go.
 *
 * @module
 */

/** Corpus name (`real/<file>` or `templates/<file>`) to the reason gov cannot match it. */
export const KNOWN_EXCEPTIONS: Readonly<Record<string, string>> = {};
