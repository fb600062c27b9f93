/**
 * Who may call the gateway: the bearer token, the status page's session cookie, and the
 * query token that EventSource and links need because they cannot send headers.
 *
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** Name of the status page's session cookie. */
export const SESSION_COOKIE = "gov_serve_session";

/**
 * The session cookie's value for a token: derived from it, so the cookie never carries the
 * token itself, and it changes when the token does.
 */
function sessionValue(token: string): string {
  return createHmac("sha256", token).update("gov serve status page session").digest("hex");
}

function cookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** Compares secrets in constant time (hashes first: timingSafeEqual needs equal lengths). */
function sameSecret(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

/**
 * Whether a request carries the gateway's token (always true without one).
 *
 * @example
 * ```ts
 * import { authorized } from "./auth.ts";
 * const req = new Request("http://127.0.0.1:8190/v1/jobs");
 * authorized(req, new URL(req.url), "T"); // false: no token sent
 * ```
 */
export function authorized(req: Request, url: URL, token: string | undefined): boolean {
  if (!token) return true;
  const h = req.headers.get("authorization") ?? "";
  const m = /^Bearer\s+(.+)$/i.exec(h);
  if (m && sameSecret(m[1].trim(), token)) return true;
  // The status page's session (set when it was opened with ?token=); SameSite=Strict
  // keeps other sites from riding on it.
  const session = cookie(req, SESSION_COOKIE);
  if (session && sameSecret(session, sessionValue(token))) return true;
  // EventSource and <img> cannot send headers: GETs may carry the token in the query.
  const q = url.searchParams.get("token");
  return req.method === "GET" && q !== null && sameSecret(q, token);
}

/**
 * The `Set-Cookie` value of a status page session for `token`.
 *
 * @example
 * ```ts
 * import { sessionCookie } from "./auth.ts";
 * const headers = { "set-cookie": sessionCookie("T") };
 * ```
 */
export function sessionCookie(token: string): string {
  return `${SESSION_COOKIE}=${sessionValue(token)}; Path=/; HttpOnly; SameSite=Strict`;
}
