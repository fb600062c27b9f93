/**
 * The backend registry: `<workspace>/backends.toml`, one `[[backend]]` table per ComfyUI
 * backend gov may route work to.
 *
 * ```toml
 * [[backend]]
 * id = "gpu1"               # safe name, unique
 * name = "A100 in rack 3"   # defaults to the id
 * host = "10.0.0.5"
 * port = 8188
 * weight = 2                # relative capacity for scheduling (default 1)
 * tags = ["sdxl", "a100"]
 * max_queue = 4             # most prompts waiting there at once (default 4)
 * token = "secret"          # sent as `Authorization: Bearer <token>` (optional)
 * tls = false               # https/wss instead of http/ws (optional)
 * ```
 *
 * The file is validated on every read (errors name the file and `backend[<i>].<key>`) and
 * rewritten atomically by `gov backend add|remove` under a lock, so two concurrent edits
 * never lose one another's change.
 *
 * @module
 */
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { ConfigError, LockedError, NotFoundError, UsageError } from "../errors.ts";
import { readTextIfExists, writeFileAtomic } from "../fs/atomic.ts";
import { isPidAlive } from "../process/run.ts";
import { isValidName, validateName } from "../workspace/names.ts";
import type { Workspace } from "../workspace/root.ts";
import type { BackendConfig } from "./types.ts";
import { rejectUnknownKeys } from "../workspace/config.ts";

/** Default `weight` of a backend. */
export const DEFAULT_WEIGHT = 1;
/** Default `max_queue` of a backend. */
export const DEFAULT_MAX_QUEUE = 4;

const KNOWN_KEYS = ["id", "name", "host", "port", "weight", "tags", "max_queue", "token", "tls"];

/** What `gov backend add` takes: the required fields, the rest defaulted. */
export interface NewBackend {
  id: string;
  host: string;
  port: number;
  name?: string;
  weight?: number;
  tags?: string[];
  max_queue?: number;
  token?: string;
  tls?: boolean;
}

/**
 * Path of the registry file of a workspace.
 *
 * @example
 * ```ts
 * import { backendsFile } from "@/backends/registry.ts";
 * import { workspaceAt } from "@/workspace/root.ts";
 *
 * backendsFile(workspaceAt("/srv/comfy")); // "/srv/comfy/backends.toml"
 * ```
 */
export function backendsFile(ws: Workspace): string {
  return join(ws.root, "backends.toml");
}

// A host is a DNS name, an IPv4 address, or an IPv6 address (bare or in brackets). No scheme,
// path, port or whitespace: those belong in other fields, and letting them in would build
// surprising URLs.
const HOST =
  /^(\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}))$/;

/** Why `host` is not acceptable, or undefined when it is. */
function hostProblem(host: string): string | undefined {
  if (host === "") return "a non-empty host name or address";
  if (host.includes("://") || host.includes("/")) {
    return "a bare host name or address (no scheme or path: use `port` and `tls`)";
  }
  if (!HOST.test(host)) return "a host name or IP address";
  return undefined;
}

function fieldError(file: string, i: number, key: string, expected: string): ConfigError {
  return new ConfigError(file, `backend[${i}].${key}`, expected);
}

/**
 * Validates one parsed `[[backend]]` table (index `i` in `file`) and fills defaults.
 *
 * @example
 * ```ts
 * import { validateBackend } from "@/backends/registry.ts";
 *
 * const b = validateBackend({ id: "gpu1", host: "10.0.0.5", port: 8188 }, "backends.toml", 0);
 * console.log(b.max_queue); // 4
 * ```
 */
export function validateBackend(raw: unknown, file: string, i: number): BackendConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(file, `backend[${i}]`, "a table");
  }
  const t = raw as Record<string, unknown>;
  rejectUnknownKeys(file, `backend[${i}]`, t, KNOWN_KEYS);
  const id = t.id;
  if (typeof id !== "string" || !isValidName(id)) {
    throw fieldError(
      file,
      i,
      "id",
      "a name of letters, digits, '.', '_' and '-' starting with a letter or digit",
    );
  }
  const name = t.name ?? id;
  if (typeof name !== "string" || name.trim() === "") {
    throw fieldError(file, i, "name", "a non-empty string");
  }
  if (typeof t.host !== "string") throw fieldError(file, i, "host", "a host name or IP address");
  const hp = hostProblem(t.host);
  if (hp) throw fieldError(file, i, "host", hp);
  const port = t.port;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw fieldError(file, i, "port", "an integer from 1 to 65535");
  }
  const weight = t.weight ?? DEFAULT_WEIGHT;
  if (typeof weight !== "number" || !Number.isFinite(weight) || weight <= 0) {
    throw fieldError(file, i, "weight", "a number greater than 0");
  }
  const tags = t.tags ?? [];
  if (!Array.isArray(tags) || tags.some((x) => typeof x !== "string" || x.trim() === "")) {
    throw fieldError(file, i, "tags", "a list of non-empty strings");
  }
  const maxQueue = t.max_queue ?? DEFAULT_MAX_QUEUE;
  if (typeof maxQueue !== "number" || !Number.isInteger(maxQueue) || maxQueue < 1) {
    throw fieldError(file, i, "max_queue", "an integer of at least 1");
  }
  const token = t.token;
  if (token !== undefined && (typeof token !== "string" || token === "" || /\s/.test(token))) {
    throw fieldError(file, i, "token", "a non-empty string without whitespace");
  }
  const tls = t.tls;
  if (tls !== undefined && typeof tls !== "boolean") {
    throw fieldError(file, i, "tls", "true or false");
  }
  const b: BackendConfig = {
    id,
    name,
    host: t.host,
    port,
    weight,
    tags: [...new Set(tags as string[])],
    max_queue: maxQueue,
  };
  if (token !== undefined) b.token = token as string;
  if (tls !== undefined) b.tls = tls;
  return b;
}

interface RegistryDoc {
  backends: BackendConfig[];
}

function parseRegistry(text: string, file: string): RegistryDoc {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    const first = (err as Error).message.split("\n")[0];
    throw new ConfigError(file, "", `is not valid TOML (${first})`);
  }
  // `[[backends]]` for `[[backend]]` would otherwise silently mean "no backends at all".
  rejectUnknownKeys(file, "", doc, ["backend"]);
  const backend = doc.backend;
  if (backend === undefined) return { backends: [] };
  if (!Array.isArray(backend)) {
    throw new ConfigError(file, "backend", "an array of tables, written [[backend]]");
  }
  const backends = backend.map((raw, i) => validateBackend(raw, file, i));
  const seen = new Map<string, number>();
  backends.forEach((b, i) => {
    const first = seen.get(b.id);
    if (first !== undefined) {
      throw fieldError(file, i, "id", `unique ('${b.id}' is already backend[${first}].id)`);
    }
    seen.set(b.id, i);
  });
  return { backends };
}

async function readRegistry(ws: Workspace): Promise<RegistryDoc> {
  const file = backendsFile(ws);
  const text = await readTextIfExists(file);
  if (text === undefined) return { backends: [] };
  return parseRegistry(text, file);
}

/**
 * Reads and validates `<ws>/backends.toml`. A missing file means no backends.
 *
 * @example
 * ```ts
 * import { readBackends } from "@/backends/registry.ts";
 * import { workspaceAt } from "@/workspace/root.ts";
 *
 * const backends = await readBackends(workspaceAt("/srv/comfy"));
 * for (const b of backends) console.log(b.id, `${b.host}:${b.port}`);
 * ```
 */
export async function readBackends(ws: Workspace): Promise<BackendConfig[]> {
  return (await readRegistry(ws)).backends;
}

function tomlValue(v: unknown): string {
  // JSON string escapes are a subset of TOML basic-string escapes.
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(", ")}]`;
  return String(v);
}

/**
 * Serialises backends (and any other top-level keys) as the `backends.toml` text gov
 * writes: a short header, then one `[[backend]]` table per entry in key order.
 *
 * @example
 * ```ts
 * import { renderBackends } from "@/backends/registry.ts";
 *
 * const text = renderBackends([{ id: "gpu1", name: "gpu1", host: "h", port: 8188,
 *   weight: 1, tags: [], max_queue: 4 }]);
 * ```
 */
export function renderBackends(backends: BackendConfig[]): string {
  const lines = [
    "# ComfyUI backends gov routes work to. Edited by `gov backend add|remove`; hand edits",
    "# are fine (gov validates this file on every read) but comments are not kept.",
    "",
  ];
  for (const b of backends) {
    lines.push("[[backend]]");
    for (const key of KNOWN_KEYS) {
      const v = (b as unknown as Record<string, unknown>)[key];
      if (v !== undefined) lines.push(`${key} = ${tomlValue(v)}`);
    }
    lines.push("");
  }
  return lines.join("\n");
}

/** Holds `<ws>/.metadata/.backends.lock` while `fn` runs; a dead holder's lock is taken. */
async function withRegistryLock<T>(ws: Workspace, fn: () => Promise<T>): Promise<T> {
  const lockPath = join(ws.metadataDir, ".backends.lock");
  await Deno.mkdir(ws.metadataDir, { recursive: true });
  const deadline = Date.now() + 10_000;
  let holder: number | undefined;
  while (true) {
    try {
      const f = await Deno.open(lockPath, { write: true, createNew: true });
      try {
        await f.write(new TextEncoder().encode(`${Deno.pid}\n`));
      } finally {
        f.close();
      }
      break;
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      const text = await readTextIfExists(lockPath);
      holder = Number.parseInt(text ?? "", 10);
      if (text !== undefined && text.endsWith("\n") && !(holder > 0 && isPidAlive(holder))) {
        // A crashed gov left its lock behind; nobody can be inside.
        await Deno.remove(lockPath).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) throw new LockedError(lockPath, holder || undefined);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    await Deno.remove(lockPath).catch(() => {});
  }
}

/**
 * Adds a backend to `<ws>/backends.toml` (created when missing) and returns it with
 * defaults filled. Refuses an invalid field, a duplicate id, or a second entry for the same
 * host and port, with a {@linkcode UsageError}; the file is unchanged then.
 *
 * @example
 * ```ts
 * import { addBackend } from "@/backends/registry.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const ws: Workspace;
 *
 * const b = await addBackend(ws, { id: "gpu1", host: "10.0.0.5", port: 8188, tags: ["sdxl"] });
 * ```
 */
export async function addBackend(ws: Workspace, partial: NewBackend): Promise<BackendConfig> {
  validateName("backend id", partial.id);
  const file = backendsFile(ws);
  let b: BackendConfig;
  try {
    b = validateBackend(partial, file, 0);
  } catch (err) {
    if (err instanceof ConfigError) {
      const detail = err.message.slice(`${file}: backend[0].`.length);
      throw new UsageError(`backend '${partial.id}': ${detail}`, {
        hint: "see `gov backend add --help`",
      });
    }
    throw err;
  }
  return await withRegistryLock(ws, async () => {
    const doc = await readRegistry(ws);
    if (doc.backends.some((x) => x.id === b.id)) {
      throw new UsageError(`backend '${b.id}' already exists in ${file}`, {
        hint: `remove it first with \`gov backend remove ${b.id}\`, or pick another id`,
      });
    }
    const same = doc.backends.find((x) =>
      x.host.toLowerCase() === b.host.toLowerCase() && x.port === b.port
    );
    if (same) {
      throw new UsageError(`backend '${same.id}' already points at ${b.host}:${b.port}`, {
        hint: "two entries for one ComfyUI would count its queue twice; edit the existing one",
      });
    }
    await writeFileAtomic(file, renderBackends([...doc.backends, b]));
    return b;
  });
}

/**
 * Removes the backend `id` from `<ws>/backends.toml`. Throws {@linkcode NotFoundError} when
 * there is none.
 *
 * @example
 * ```ts
 * import { removeBackend } from "@/backends/registry.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const ws: Workspace;
 *
 * await removeBackend(ws, "gpu1");
 * ```
 */
export async function removeBackend(ws: Workspace, id: string): Promise<void> {
  validateName("backend id", id);
  await withRegistryLock(ws, async () => {
    const doc = await readRegistry(ws);
    const left = doc.backends.filter((b) => b.id !== id);
    if (left.length === doc.backends.length) {
      throw new NotFoundError("backend", id, "list them with `gov backend list`");
    }
    await writeFileAtomic(backendsFile(ws), renderBackends(left));
  });
}

/**
 * Finds one backend by id, or throws {@linkcode NotFoundError} listing the known ids.
 *
 * @example
 * ```ts
 * import { getBackend } from "@/backends/registry.ts";
 * import { type Workspace } from "@/workspace/root.ts";
 * declare const ws: Workspace;
 *
 * const b = await getBackend(ws, "gpu1");
 * ```
 */
export async function getBackend(ws: Workspace, id: string): Promise<BackendConfig> {
  const all = await readBackends(ws);
  const b = all.find((x) => x.id === id);
  if (!b) {
    throw new NotFoundError(
      "backend",
      id,
      all.length
        ? `known backends: ${all.map((x) => x.id).join(", ")}`
        : "add one with `gov backend add <id> --host H --port N`",
    );
  }
  return b;
}
