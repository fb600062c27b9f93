/**
 * `GET /v1/jobs/{id}/outputs/{n}`: an output file of a job, streamed from the backend that
 * made it.
 *
 * @module
 */
import { extname } from "node:path";
import { NotFoundError } from "../../errors.ts";
import type { BackendConfig } from "../../backends/types.ts";
import { viewResponse } from "../backend_api.ts";
import type { JobStore } from "../store.ts";
import { HttpError } from "./respond.ts";

/**
 * Types served inline: images, video and audio a browser shows without running anything.
 * Everything else (SVG, HTML, JSON, text...) could run script or be sniffed into it on the
 * gateway's origin, where the token lives: it is sent as a download.
 */
const INLINE_TYPES: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".webp": "image/webp",
  ".gif": "image/gif",
  ".avif": "image/avif",
  ".mp4": "video/mp4",
  ".webm": "video/webm",
  ".wav": "audio/wav",
  ".mp3": "audio/mpeg",
  ".flac": "audio/flac",
  ".ogg": "audio/ogg",
};
const INLINE = new Set(Object.values(INLINE_TYPES));

/**
 * `Content-Disposition` for a file name: an ASCII fallback and the exact name in RFC 5987
 * form (a header value cannot hold other characters, and quotes or newlines would break
 * it).
 */
function disposition(kind: "inline" | "attachment", filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

/**
 * Headers of an output: inline with its type only for an image, video or audio type the
 * backend and the file name agree on; otherwise a download of opaque bytes. Always
 * `nosniff` and a sandbox, so nothing served here runs as the gateway's page.
 *
 * @example
 * ```ts
 * outputHeaders("x.svg", "image/svg+xml")["content-type"]; // "application/octet-stream"
 * ```
 */
export function outputHeaders(
  filename: string,
  backendType: string | null,
): Record<string, string> {
  const byName = INLINE_TYPES[extname(filename).toLowerCase()];
  const declared = (backendType ?? "").split(";")[0].trim().toLowerCase();
  const inline = byName !== undefined && (declared === "" || declared === byName ||
    INLINE.has(declared) && declared.split("/")[0] === byName.split("/")[0]);
  return {
    "content-type": inline ? byName : "application/octet-stream",
    "content-disposition": disposition(inline ? "inline" : "attachment", filename),
    "x-content-type-options": "nosniff",
    "content-security-policy": "sandbox",
    "cache-control": "private, max-age=86400",
  };
}

/**
 * The response of output `nRaw` of job `id`.
 *
 * @example
 * ```ts
 * import type { JobStore } from "../store.ts";
 * declare const store: JobStore;
 * const res = await outputResponse(store, () => [], "some-job-id", "0");
 * ```
 */
export async function outputResponse(
  store: JobStore,
  backends: () => BackendConfig[],
  id: string,
  nRaw: string,
): Promise<Response> {
  const job = store.get(id);
  if (!job) throw new NotFoundError("job", id);
  const n = Number(nRaw);
  if (!Number.isInteger(n) || n < 0 || n >= job.outputs.length) {
    throw new HttpError(404, `job '${id}' has no output ${nRaw} (it has ${job.outputs.length})`);
  }
  const out = job.outputs[n];
  const backend = backends().find((b) => b.id === job.backend);
  if (!backend) {
    throw new HttpError(502, `backend '${job.backend}' of job '${id}' is no longer configured`);
  }
  let res: Response;
  try {
    res = await viewResponse(backend, out);
  } catch (err) {
    throw new HttpError(502, (err as Error).message);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new HttpError(502, `backend '${backend.id}' answered ${res.status} for ${out.filename}`);
  }
  const headers = outputHeaders(out.filename, res.headers.get("content-type"));
  const len = res.headers.get("content-length");
  if (len) headers["content-length"] = len;
  return new Response(res.body, { headers });
}
