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

const CONTENT_TYPES: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".webp": "image/webp",
  ".gif": "image/gif",
  ".mp4": "video/mp4",
  ".webm": "video/webm",
  ".wav": "audio/wav",
  ".mp3": "audio/mpeg",
  ".flac": "audio/flac",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

/**
 * The response of output `nRaw` of job `id`.
 *
 * @example
 * ```ts
 * import { outputResponse } from "./outputs.ts";
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
  const type = res.headers.get("content-type") ??
    CONTENT_TYPES[extname(out.filename).toLowerCase()] ?? "application/octet-stream";
  const headers: Record<string, string> = {
    "content-type": type,
    "content-disposition": `inline; filename="${out.filename.replace(/["\\\r\n]/g, "_")}"`,
    "cache-control": "private, max-age=86400",
  };
  const len = res.headers.get("content-length");
  if (len) headers["content-length"] = len;
  return new Response(res.body, { headers });
}
