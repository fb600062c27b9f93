/**
 * The gateway's route table: every path, its methods and its handler in one list, so the
 * API can be read (and checked against the README) in one place. Unknown paths are 404;
 * a known path with another method is 405 with `Allow`.
 *
 * @module
 */
import { HttpError } from "./respond.ts";

/** What a handler gets: the request, its URL and the path parameters. */
export interface RouteRequest {
  /** The request. */
  req: Request;
  /** Its parsed URL. */
  url: URL;
  /** Path parameters, percent-decoded. */
  params: string[];
}

/** A route: a path pattern and a handler per method (HEAD is served by GET). */
export interface Route {
  /** Anchored pattern of the path (trailing slashes removed); groups are parameters. */
  path: RegExp;
  /** Served without the token (the liveness probe). */
  public?: boolean;
  /** Handlers by method. */
  methods: Partial<Record<string, (r: RouteRequest) => Response | Promise<Response>>>;
}

/**
 * Whether a path belongs to a route served without the token.
 *
 * @example
 * ```ts
 * isPublic([{ path: /^\/healthz$/, public: true, methods: {} }], "/healthz"); // true
 * ```
 */
export function isPublic(routes: readonly Route[], pathname: string): boolean {
  const path = pathname.replace(/\/+$/, "") || "/";
  return routes.some((r) => r.public && r.path.test(path));
}

/**
 * Finds the route of a request and runs it.
 *
 * @example
 * ```ts
 * const routes = [{ path: /^\/ping$/, methods: { GET: () => new Response("pong") } }];
 * const res = await dispatchRoute(routes, new Request("http://x/ping"), new URL("http://x/ping"));
 * ```
 */
export async function dispatchRoute(
  routes: readonly Route[],
  req: Request,
  url: URL,
): Promise<Response> {
  const path = url.pathname.replace(/\/+$/, "") || "/";
  const method = req.method;
  for (const route of routes) {
    const m = route.path.exec(path);
    if (!m) continue;
    const handler = route.methods[method] ?? (method === "HEAD" ? route.methods.GET : undefined);
    if (!handler) {
      throw new HttpError(405, `${method} is not allowed on ${path}`, {
        allow: [...Object.keys(route.methods), ...(route.methods.GET ? ["HEAD"] : [])].join(", "),
      });
    }
    const params = m.slice(1).map((p) => {
      try {
        return p === undefined ? p : decodeURIComponent(p);
      } catch {
        throw new HttpError(400, `malformed percent-encoding in path segment '${p}'`);
      }
    });
    return await handler({ req, url, params });
  }
  throw new HttpError(404, `no route ${method} ${path}`);
}
