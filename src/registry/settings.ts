/**
 * The `[registry]` table of `<workspace>/gov.toml`:
 *
 * ```toml
 * [registry]
 * url = "https://api.comfy.org"   # the Comfy Registry gov installs nodes from
 * ```
 *
 * It lives here rather than with the supervisor's settings so that the governance layer,
 * which installs nodes, reads it without importing the supervisor.
 *
 * @module
 */
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { ConfigError } from "../errors.ts";
import { readTextIfExists } from "../fs/atomic.ts";
import { rejectUnknownKeys } from "../workspace/config.ts";
import { DEFAULT_REGISTRY_URL } from "./client.ts";

/** Registry settings. */
export interface RegistrySettings {
  /** Base URL of the registry API. */
  url: string;
}

/**
 * Parses the `[registry]` table of a gov.toml text; the public registry when absent.
 *
 * @example
 * ```ts
 * import { parseRegistrySettings } from "@/registry/settings.ts";
 *
 * parseRegistrySettings('[registry]\nurl = "http://127.0.0.1:9000"\n', "gov.toml").url;
 * ```
 */
export function parseRegistrySettings(text: string, file: string): RegistrySettings {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(file, "", `is not valid TOML (${(err as Error).message.split("\n")[0]})`);
  }
  const table = doc.registry;
  if (table === undefined) return { url: DEFAULT_REGISTRY_URL };
  if (typeof table !== "object" || table === null || Array.isArray(table)) {
    throw new ConfigError(file, "[registry]", "a table");
  }
  const out: RegistrySettings = { url: DEFAULT_REGISTRY_URL };
  rejectUnknownKeys(file, "registry", table as Record<string, unknown>, ["url"]);
  for (const v of Object.values(table as Record<string, unknown>)) {
    let ok = false;
    if (typeof v === "string") {
      try {
        ok = ["http:", "https:"].includes(new URL(v).protocol);
      } catch { /* not a URL */ }
    }
    if (!ok) throw new ConfigError(file, "registry.url", "an http(s) URL");
    out.url = (v as string).replace(/\/+$/, "");
  }
  return out;
}

/**
 * The registry settings of the workspace at `root` (its gov.toml, else the defaults).
 *
 * @example
 * ```ts
 * import { loadRegistrySettings } from "@/registry/settings.ts";
 *
 * const { url } = await loadRegistrySettings("/srv/comfy");
 * ```
 */
export async function loadRegistrySettings(root: string): Promise<RegistrySettings> {
  const file = join(root, "gov.toml");
  const text = await readTextIfExists(file);
  return text === undefined ? { url: DEFAULT_REGISTRY_URL } : parseRegistrySettings(text, file);
}
