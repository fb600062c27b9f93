/**
 * Client of the Comfy Registry's public API (the routes and shapes of its published OpenAPI
 * description, `https://api.comfy.org/openapi`): a node, its versions, and the version to
 * install with its download URL.
 *
 * @module
 */
import { RegistryNotFoundError, RegistrySpecError, RegistryUnavailableError } from "./errors.ts";

/** The public registry. */
export const DEFAULT_REGISTRY_URL = "https://api.comfy.org";

/** How long one API request may take. */
export const DEFAULT_API_TIMEOUT_MS = 30_000;

/** The fields gov reads of the API's `NodeVersion`; the registry sends more. */
export interface RegistryNodeVersion {
  /** The node's id (`node_id`; absent from some older answers). */
  nodeId?: string;
  /** Semantic version, `1.2.3`. */
  version: string;
  /** Where the version's zip lives. */
  downloadUrl: string;
  /** Pip requirements the publisher declared. */
  dependencies: string[];
  /** The publisher deprecated this version. */
  deprecated: boolean;
  /** `NodeVersionStatusActive`, `...Banned`, ... */
  status?: string;
  /**
   * SHA-256 of the archive, hex, when the answer carries one (`sha256` or `hash`). The
   * published API has no such field today; gov verifies it whenever one appears.
   */
  sha256?: string;
}

/** The fields gov reads of the API's `Node`. */
export interface RegistryNode {
  id: string;
  name?: string;
  repository?: string;
  latestVersion?: string;
  status?: string;
}

/** Where the registry is and how requests are made (`fetch` injectable for tests). */
export interface RegistryClientOptions {
  /** Base URL, default {@link DEFAULT_REGISTRY_URL}. */
  baseUrl?: string;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** The fetch to use. */
  fetch?: typeof fetch;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
// The API's own pattern for the `version` query parameter.
const VERSION_RE = /^\d+\.\d+\.\d+$/;

/**
 * Splits `<id>[@version]` and checks both against what the API accepts.
 *
 * @example
 * ```ts
 * import { parseRegistrySpec } from "@/registry/client.ts";
 *
 * parseRegistrySpec("comfyui-kjnodes@1.1.0"); // { id: "comfyui-kjnodes", version: "1.1.0" }
 * ```
 */
export function parseRegistrySpec(spec: string): { id: string; version?: string } {
  const at = spec.indexOf("@");
  const id = at === -1 ? spec : spec.slice(0, at);
  const version = at === -1 ? undefined : spec.slice(at + 1);
  if (!ID_RE.test(id)) {
    throw new RegistrySpecError(spec, "a registry id is letters, digits, '.', '_' or '-'");
  }
  if (version !== undefined) checkVersion(id, version);
  return version === undefined ? { id } : { id, version };
}

function checkVersion(id: string, version: string): void {
  if (!VERSION_RE.test(version)) {
    throw new RegistrySpecError(
      `${id}@${version}`,
      "a registry version is three numbers like 1.2.3; omit @version for the latest",
    );
  }
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** Reads a `NodeVersion` answer, refusing one without a version or download URL. */
function toNodeVersion(raw: unknown, baseUrl: string): RegistryNodeVersion {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new RegistryUnavailableError(baseUrl, "answered a NodeVersion that is not an object");
  }
  const o = raw as Record<string, unknown>;
  const version = str(o.version);
  const downloadUrl = str(o.downloadUrl);
  if (!version || !downloadUrl) {
    throw new RegistryUnavailableError(
      baseUrl,
      "answered a NodeVersion without version or downloadUrl",
    );
  }
  const hash = str(o.sha256) ?? str(o.hash);
  const deps = Array.isArray(o.dependencies)
    ? o.dependencies.filter((d): d is string => typeof d === "string")
    : [];
  return {
    nodeId: str(o.node_id),
    version,
    downloadUrl,
    dependencies: deps,
    deprecated: o.deprecated === true,
    status: str(o.status),
    sha256: hash?.replace(/^sha256:/, "").toLowerCase(),
  };
}

/** A Comfy Registry client over its public, unauthenticated read routes. */
export class RegistryClient {
  /** Base URL without a trailing slash. */
  readonly baseUrl: string;
  #timeoutMs: number;
  #fetch: typeof fetch;

  constructor(opts: RegistryClientOptions = {}) {
    this.baseUrl = (opts.baseUrl ?? DEFAULT_REGISTRY_URL).replace(/\/+$/, "");
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_API_TIMEOUT_MS;
    this.#fetch = opts.fetch ?? fetch;
  }

  async #get(path: string, notFound: () => Error): Promise<unknown> {
    let res: Response;
    try {
      res = await this.#fetch(this.baseUrl + path, {
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const e = err as Error;
      const why = e.name === "TimeoutError"
        ? `no answer within ${this.#timeoutMs} ms`
        : e.message.split("\n")[0];
      throw new RegistryUnavailableError(this.baseUrl, why);
    }
    const text = await res.text();
    if (res.status === 404) throw notFound();
    if (!res.ok) {
      throw new RegistryUnavailableError(
        this.baseUrl,
        `GET ${path} answered HTTP ${res.status}${errorMessage(text)}`,
      );
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new RegistryUnavailableError(this.baseUrl, `GET ${path} answered non-JSON`);
    }
  }

  /**
   * The version to install: the latest when `version` is omitted (`GET /nodes/{id}/install`).
   *
   * @example
   * ```ts
   * import { RegistryClient } from "@/registry/client.ts";
   *
   * const v = await new RegistryClient().installInfo("comfyui-kjnodes");
   * console.log(v.version, v.downloadUrl);
   * ```
   */
  async installInfo(id: string, version?: string): Promise<RegistryNodeVersion> {
    parseRegistrySpec(id);
    if (version !== undefined) checkVersion(id, version);
    const q = version === undefined ? "" : `?version=${encodeURIComponent(version)}`;
    let raw: unknown;
    try {
      raw = await this.#get(
        `/nodes/${encodeURIComponent(id)}/install${q}`,
        () => new RegistryNotFoundError(id, version, this.baseUrl),
      );
    } catch (err) {
      // The install route answers 404 both for an unknown node and an unknown version;
      // asking for the node tells the user which of the two it is.
      if (err instanceof RegistryNotFoundError && version !== undefined) await this.node(id);
      throw err;
    }
    return toNodeVersion(raw, this.baseUrl);
  }

  /**
   * The node itself (`GET /nodes/{id}`).
   *
   * @example
   * ```ts
   * import { RegistryClient } from "@/registry/client.ts";
   *
   * const n = await new RegistryClient().node("comfyui-kjnodes");
   * ```
   */
  async node(id: string): Promise<RegistryNode> {
    parseRegistrySpec(id);
    const raw = await this.#get(
      `/nodes/${encodeURIComponent(id)}`,
      () => new RegistryNotFoundError(id, undefined, this.baseUrl),
    );
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new RegistryUnavailableError(this.baseUrl, "answered a Node that is not an object");
    }
    const o = raw as Record<string, unknown>;
    const latest = o.latest_version as Record<string, unknown> | undefined;
    return {
      id: str(o.id) ?? id,
      name: str(o.name),
      repository: str(o.repository),
      latestVersion: latest && typeof latest === "object" ? str(latest.version) : undefined,
      status: str(o.status),
    };
  }

  /**
   * Every published version of a node (`GET /nodes/{id}/versions`), as the registry orders them.
   *
   * @example
   * ```ts
   * import { RegistryClient } from "@/registry/client.ts";
   *
   * const versions = await new RegistryClient().versions("comfyui-kjnodes");
   * ```
   */
  async versions(id: string): Promise<RegistryNodeVersion[]> {
    parseRegistrySpec(id);
    const raw = await this.#get(
      `/nodes/${encodeURIComponent(id)}/versions`,
      () => new RegistryNotFoundError(id, undefined, this.baseUrl),
    );
    if (!Array.isArray(raw)) {
      throw new RegistryUnavailableError(
        this.baseUrl,
        "answered a version list that is not a list",
      );
    }
    return raw.map((v) => toNodeVersion(v, this.baseUrl));
  }
}

/** The `message` of an `ErrorResponse`/`Error` body, for the one-line error. */
function errorMessage(text: string): string {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    const m = str(o.message) ?? str(o.error);
    return m ? ` (${m.split("\n")[0].slice(0, 200)})` : "";
  } catch {
    return "";
  }
}
