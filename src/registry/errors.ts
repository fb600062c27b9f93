/**
 * Failures of Comfy Registry installs, each a one-line message naming the fix.
 *
 * @module
 */
import { GovError, UsageError } from "../errors.ts";

/**
 * The registry has no node with this id, or no such version of it. Bad input: exit 2.
 *
 * @example
 * ```ts
 * import { RegistryNotFoundError } from "@/registry/errors.ts";
 *
 * throw new RegistryNotFoundError("comfyui-foo", "1.2.3");
 * ```
 */
export class RegistryNotFoundError extends UsageError {
  /** The node id asked for. */
  nodeId: string;
  /** The version asked for, when one was. */
  version?: string;
  constructor(nodeId: string, version?: string, baseUrl?: string) {
    const where = baseUrl ? ` at ${baseUrl}` : "";
    super(
      version
        ? `registry node '${nodeId}' has no version ${version}${where}`
        : `registry node '${nodeId}' not found${where}`,
      {
        hint: version
          ? `pick a published version (GET /nodes/${nodeId}/versions), or omit @version for the latest`
          : "check the id on registry.comfy.org (ids are the node's registry name, not its git URL)",
      },
    );
    this.name = "RegistryNotFoundError";
    this.nodeId = nodeId;
    this.version = version;
  }
}

/**
 * A registry id or version that cannot be asked for at all. Exit 2.
 *
 * @example
 * ```ts
 * import { RegistrySpecError } from "@/registry/errors.ts";
 *
 * throw new RegistrySpecError("foo@latest", "a version is three numbers, like 1.2.3");
 * ```
 */
export class RegistrySpecError extends UsageError {
  constructor(spec: string, fix: string) {
    super(`invalid registry node '${spec}'`, { hint: fix });
    this.name = "RegistrySpecError";
  }
}

/**
 * The registry could not be reached, answered an error, or answered something that is not
 * the published API's shape. Exit 1; nothing was installed.
 *
 * @example
 * ```ts
 * import { RegistryUnavailableError } from "@/registry/errors.ts";
 *
 * throw new RegistryUnavailableError("https://api.comfy.org", "HTTP 503");
 * ```
 */
export class RegistryUnavailableError extends GovError {
  constructor(baseUrl: string, why: string) {
    super(`Comfy Registry at ${baseUrl} failed: ${why}`, {
      hint: "retry later, or set [registry] url in gov.toml to a registry that answers",
    });
    this.name = "RegistryUnavailableError";
  }
}

/**
 * The downloaded archive's SHA-256 differs from the one expected. Nothing was installed.
 *
 * @example
 * ```ts
 * import { RegistryHashMismatchError } from "@/registry/errors.ts";
 *
 * throw new RegistryHashMismatchError("comfyui-foo", "1.0.0", "sha256:aa", "sha256:bb");
 * ```
 */
export class RegistryHashMismatchError extends GovError {
  /** The hash that was expected. */
  expected: string;
  /** The hash of the bytes received. */
  actual: string;
  constructor(nodeId: string, version: string, expected: string, actual: string) {
    super(
      `archive of registry node '${nodeId}' ${version} has hash ${actual}, expected ${expected}; nothing installed`,
      {
        hint:
          "the archive changed or was corrupted in transit: retry, and report it to the node's publisher if it persists",
      },
    );
    this.name = "RegistryHashMismatchError";
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * The archive is unsafe or malformed (a path escaping the folder, a symlink, too large, too
 * many entries, corrupt data). Nothing was installed.
 *
 * @example
 * ```ts
 * import { UnsafeArchiveError } from "@/registry/errors.ts";
 *
 * throw new UnsafeArchiveError("comfyui-foo-1.0.0.zip", "entry '../x' escapes the node folder");
 * ```
 */
export class UnsafeArchiveError extends GovError {
  constructor(archive: string, why: string) {
    super(`refusing archive ${archive}: ${why}; nothing installed`, {
      hint: "report the archive to the node's publisher; install a different version meanwhile",
    });
    this.name = "UnsafeArchiveError";
  }
}

/**
 * The folder the node would be unpacked into already exists. Exit 1; nothing was changed.
 *
 * @example
 * ```ts
 * import { RegistryDestinationExistsError } from "@/registry/errors.ts";
 *
 * throw new RegistryDestinationExistsError("/srv/comfy/custom_nodes/foo");
 * ```
 */
export class RegistryDestinationExistsError extends GovError {
  constructor(dest: string) {
    super(`${dest} already exists; nothing installed`, {
      hint: "remove the node first (gov node remove), or install into another folder",
    });
    this.name = "RegistryDestinationExistsError";
  }
}
