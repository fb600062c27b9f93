/**
 * Fetching one node from the Comfy Registry into a folder: resolve the version, download the
 * archive with a size bound and a timeout, check its hash, unpack it safely.
 *
 * @module
 */
import { basename } from "node:path";
import { RegistryClient } from "./client.ts";
import {
  RegistryHashMismatchError,
  RegistryUnavailableError,
  UnsafeArchiveError,
} from "./errors.ts";
import { type UnpackLimits, unpackZipSafely } from "./zip.ts";

/** Default bound on the archive's download size. */
export const DEFAULT_MAX_ARCHIVE_BYTES = 256 * 1024 * 1024;
/** Default time the whole download may take. */
export const DEFAULT_DOWNLOAD_TIMEOUT_MS = 5 * 60_000;

/** Options of {@link fetchRegistryNode}. */
export interface FetchRegistryNodeOptions extends UnpackLimits {
  /** The node's folder to create (e.g. `<comfyui>/custom_nodes/<id>`); must not exist. */
  dest: string;
  /** Registry base URL, default the public registry. */
  baseUrl?: string;
  /**
   * `sha256:<hex>` the archive must have, e.g. the one recorded in plugins.json when a
   * recorded node is installed again. Checked in addition to any hash the registry sends.
   */
  expectedHash?: string;
  /** Bound on the archive's size. */
  maxArchiveBytes?: number;
  /** Time bound of the download. */
  downloadTimeoutMs?: number;
  /**
   * Temporary folder to unpack into before renaming to `dest` (must not exist); see
   * `UnpackOptions.staging`. `gov node add` passes the path it journals.
   */
  staging?: string;
  /** Time bound of each API request. */
  apiTimeoutMs?: number;
  /** The fetch to use (tests). */
  fetch?: typeof fetch;
}

/** What was installed: the fields plugins.json records for a registry node. */
export interface FetchedRegistryNode {
  /** Registry id. */
  id: string;
  /** The version installed (the latest's number when none was asked for). */
  version: string;
  /** `sha256:<hex>` of the archive. */
  hash: string;
  /** The folder now holding the node. */
  path: string;
  /** Where the archive came from. */
  downloadUrl: string;
  /** The pip requirements the publisher declared for this version. */
  dependencies: string[];
  /** The version is marked deprecated by its publisher. */
  deprecated: boolean;
  /** Files written. */
  files: number;
}

/** `sha256:<hex>` of some bytes. */
export async function sha256Hash(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return "sha256:" + Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function download(
  url: string,
  baseUrl: string,
  maxBytes: number,
  timeoutMs: number,
  doFetch: typeof fetch,
): Promise<Uint8Array> {
  let res: Response;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    res = await doFetch(url, { signal });
  } catch (err) {
    throw new RegistryUnavailableError(baseUrl, `download of ${url}: ${(err as Error).message}`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new RegistryUnavailableError(baseUrl, `download of ${url} answered HTTP ${res.status}`);
  }
  const tooBig = () =>
    new UnsafeArchiveError(basename(new URL(url).pathname), `it is larger than ${maxBytes} bytes`);
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body.cancel();
    throw tooBig();
  }
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    for await (const chunk of res.body) {
      n += chunk.length;
      if (n > maxBytes) throw tooBig();
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof UnsafeArchiveError) throw err;
    const why = signal.aborted ? `not complete within ${timeoutMs} ms` : (err as Error).message;
    throw new RegistryUnavailableError(baseUrl, `download of ${url}: ${why}`);
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/**
 * Installs registry node `id` (at `version`, or the latest) into the new folder `opts.dest`.
 * Nothing is left on disk when any step fails: the archive is checked (hash, then every
 * entry) before a temporary folder is written and renamed to `dest`.
 *
 * @example
 * ```ts
 * import { fetchRegistryNode } from "@/registry/install.ts";
 *
 * const got = await fetchRegistryNode("comfyui-kjnodes", "1.1.0", {
 *   dest: "/srv/comfy/ComfyUI/custom_nodes/comfyui-kjnodes",
 * });
 * console.log(got.version, got.hash);
 * ```
 */
export async function fetchRegistryNode(
  id: string,
  version: string | undefined,
  opts: FetchRegistryNodeOptions,
): Promise<FetchedRegistryNode> {
  const client = new RegistryClient({
    baseUrl: opts.baseUrl,
    timeoutMs: opts.apiTimeoutMs,
    fetch: opts.fetch,
  });
  const info = await client.installInfo(id, version);
  if (version !== undefined && info.version !== version) {
    throw new RegistryUnavailableError(
      client.baseUrl,
      `asked for ${id} ${version}, the registry answered version ${info.version}`,
    );
  }
  let url: URL;
  try {
    url = new URL(info.downloadUrl, client.baseUrl + "/");
  } catch {
    throw new RegistryUnavailableError(client.baseUrl, `invalid downloadUrl '${info.downloadUrl}'`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new RegistryUnavailableError(client.baseUrl, `downloadUrl is not http(s): ${url.href}`);
  }
  const bytes = await download(
    url.href,
    client.baseUrl,
    opts.maxArchiveBytes ?? DEFAULT_MAX_ARCHIVE_BYTES,
    opts.downloadTimeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS,
    opts.fetch ?? fetch,
  );
  const hash = await sha256Hash(bytes);
  for (const want of [info.sha256 && `sha256:${info.sha256}`, opts.expectedHash]) {
    if (want && want.toLowerCase() !== hash) {
      throw new RegistryHashMismatchError(id, info.version, want.toLowerCase(), hash);
    }
  }
  const files = await unpackZipSafely(bytes, opts.dest, {
    archive: `${id}-${info.version}.zip`,
    maxEntries: opts.maxEntries,
    maxTotalBytes: opts.maxTotalBytes,
    staging: opts.staging,
  });
  return {
    id,
    version: info.version,
    hash,
    path: opts.dest,
    downloadUrl: url.href,
    dependencies: info.dependencies,
    deprecated: info.deprecated,
    files,
  };
}
