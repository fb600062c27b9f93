/**
 * The Comfy Registry: resolve `<id>[@version]`, download and check the archive, unpack it
 * safely. The one module other layers import.
 *
 * @module
 */
export * from "./errors.ts";
export {
  DEFAULT_REGISTRY_URL,
  parseRegistrySpec,
  RegistryClient,
  type RegistryClientOptions,
  type RegistryNode,
  type RegistryNodeVersion,
} from "./client.ts";
export {
  type FetchedRegistryNode,
  fetchRegistryNode,
  type FetchRegistryNodeOptions,
  sha256Hash,
} from "./install.ts";
export { type UnpackLimits, unpackZipSafely } from "./zip.ts";
export { loadRegistrySettings, parseRegistrySettings, type RegistrySettings } from "./settings.ts";
