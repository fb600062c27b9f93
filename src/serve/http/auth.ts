/**
 * Who may call the gateway: the bearer token, the status page's session cookie, and the
 * query token that EventSource and links need because they cannot send headers.
 *
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { changesState, sameOrigin } from "./guard.ts";

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

/** How long a status page session lasts (seconds): a day's work, not forever. */
export const SESSION_MAX_AGE_S = 12 * 3600;

/**
 * Whether a request carries the gateway's token (always true without one):
 * - `Authorization: Bearer T`, on any request;
 * - `?token=T` on GET and HEAD (EventSource and links cannot send headers);
 * - the status page's session cookie, only from the gateway's own origin: on GET and HEAD
 *   when the browser does not say the request comes from another site or port
 *   (`Sec-Fetch-Site`), and on requests that change state only with an `Origin` of the
 *   gateway itself. A `SameSite=Strict` cookie alone is not enough: browsers send it from
 *   any port of the same host, such as ComfyUI's own page.
 *
 * @example
 * ```ts
 * const req = new Request("http://127.0.0.1:8190/v1/jobs");
 * authorized(req, new URL(req.url), "T"); // false: no token sent
 * ```
 */
export function authorized(req: Request, url: URL, token: string | undefined): boolean {
  if (!token) return true;
  const h = req.headers.get("authorization") ?? "";
  const m = /^Bearer\s+(.+)$/i.exec(h);
  if (m && sameSecret(m[1].trim(), token)) return true;
  const safe = !changesState(req.method);
  const session = cookie(req, SESSION_COOKIE);
  if (session && sameSecret(session, sessionValue(token))) {
    if (safe ? sameOrigin(req) : req.headers.has("origin") && sameOrigin(req)) return true;
  }
  const q = url.searchParams.get("token");
  return safe && req.method !== "OPTIONS" && q !== null && sameSecret(q, token);
}

/**
 * The `Set-Cookie` value of a status page session for `token`.
 *
 * @example
 * ```ts
 * const headers = { "set-cookie": sessionCookie("T") };
 * ```
 */
export function sessionCookie(token: string): string {
  return `${SESSION_COOKIE}=${
    sessionValue(token)
  }; Path=/; Max-Age=${SESSION_MAX_AGE_S}; HttpOnly; SameSite=Strict`;
}
