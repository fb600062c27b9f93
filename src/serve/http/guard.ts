/**
 * What keeps other web pages from using the gateway through the operator's browser: the
 * `Host` check (DNS rebinding), the same-origin rule for requests that change state
 * (`Origin`, `Sec-Fetch-Site`), and JSON-only POST bodies (a `text/plain` form post needs
 * no CORS preflight; `application/json` does).
 *
 * @module
 */
import { HttpError } from "./respond.ts";

/** Methods that never change state. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Whether a method may change state (and so needs a same-origin caller).
 *
 * @example
 * ```ts
 * changesState("DELETE"); // true
 * ```
 */
export function changesState(method: string): boolean {
  return !SAFE_METHODS.has(method);
}

/** Strips IPv6 brackets and lower-cases. */
function bare(host: string): string {
  return host.replace(/^\[|\]$/g, "").toLowerCase();
}

/** Whether a host is an IP literal: no DNS name, so nothing to rebind. */
function isIpLiteral(host: string): boolean {
  const h = bare(host);
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(h) || (h.includes(":") && /^[0-9a-f:.]+$/.test(h));
}

/**
 * Which `Host` names a gateway answers: its listen address, loopback names when it
 * listens on loopback or on every address, any IP literal when it listens on every
 * address, and the names given with `--allow-host`.
 *
 * @example
 * ```ts
 * const hosts = new HostPolicy("127.0.0.1", ["gpu.example.org"]);
 * hosts.allows("localhost"); // true
 * hosts.allows("evil.example"); // false
 * ```
 */
export class HostPolicy {
  #names = new Set<string>();
  #anyIp: boolean;

  constructor(listenHost: string, allowHosts: readonly string[] = []) {
    const listen = bare(listenHost);
    const wildcard = listen === "0.0.0.0" || listen === "::";
    this.#anyIp = wildcard;
    this.#names.add(listen);
    const loopback = listen === "localhost" || listen === "::1" || /^127\./.test(listen);
    if (loopback || wildcard) {
      for (const n of ["localhost", "127.0.0.1", "::1"]) this.#names.add(n);
    }
    for (const n of allowHosts) this.#names.add(bare(n));
  }

  /** Whether a request's host name (without the port) is one this gateway answers. */
  allows(hostname: string): boolean {
    const h = bare(hostname);
    if (h.endsWith(".localhost") || this.#names.has(h)) return true;
    return this.#anyIp && isIpLiteral(h);
  }
}

/** The `Host` header's host name, without the port. */
function hostName(hostHeader: string): string {
  const v6 = /^\[([^\]]*)\]/.exec(hostHeader);
  if (v6) return v6[1];
  const i = hostHeader.lastIndexOf(":");
  return i >= 0 ? hostHeader.slice(0, i) : hostHeader;
}

/**
 * Whether the request comes from a page of the gateway's own origin, as far as the
 * browser says: `Origin` (when sent) is `http://<Host>`, and `Sec-Fetch-Site` (when sent)
 * is `same-origin` or `none` (typed by the user). `same-site` is refused too: it is what
 * a page on another port of the same host (ComfyUI's own on :8188) sends. Clients that
 * are not browsers send neither header and pass.
 *
 * @example
 * ```ts
 * const req = new Request("http://127.0.0.1:8190/v1/jobs", {
 *   method: "POST",
 *   headers: { origin: "http://127.0.0.1:8188" },
 * });
 * sameOrigin(req); // false
 * ```
 */
export function sameOrigin(req: Request): boolean {
  const site = req.headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin" && site !== "none") return false;
  const origin = req.headers.get("origin");
  if (origin === null) return true;
  const host = req.headers.get("host") ?? new URL(req.url).host;
  return origin.toLowerCase() === `http://${host.toLowerCase()}` ||
    origin.toLowerCase() === `https://${host.toLowerCase()}`;
}

/**
 * Refuses what no page of another site may do, before authentication: a foreign `Host`
 * (421), a cross-origin request that changes state (403), and a POST whose body is not
 * declared `application/json` (415).
 *
 * @example
 * ```ts
 * const req = new Request("http://127.0.0.1:8190/v1/jobs");
 * guardRequest(req, new HostPolicy("127.0.0.1")); // passes
 * ```
 */
export function guardRequest(req: Request, hosts: HostPolicy): void {
  const host = req.headers.get("host");
  if (host !== null && !hosts.allows(hostName(host))) {
    throw new HttpError(
      421,
      `this gateway does not answer to host '${hostName(host)}' ` +
        "(start gov serve with --allow-host NAME to allow a name)",
    );
  }
  if (changesState(req.method) && !sameOrigin(req)) {
    throw new HttpError(
      403,
      `cross-origin ${req.method} refused (Origin ${req.headers.get("origin") ?? "none"}, ` +
        `Sec-Fetch-Site ${req.headers.get("sec-fetch-site") ?? "none"})`,
    );
  }
  if (req.method === "POST") {
    const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type !== "application/json") {
      throw new HttpError(
        415,
        `POST bodies must be sent as Content-Type: application/json, got '${type || "none"}'`,
      );
    }
  }
}
