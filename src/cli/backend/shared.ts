/**
 * Shapes and formatting shared by the backend commands.
 *
 * @module
 */
import { ComfyUIClient } from "../../backends/comfyui/mod.ts";
import type { BackendConfig, BackendStatus } from "../../backends/types.ts";

/**
 * A backend's configuration as gov prints it: the token is never shown, only whether one
 * is set.
 *
 * @example
 * ```ts
 * import { publicConfig } from "@/cli/backend/shared.ts";
 * import { type BackendConfig } from "@/backends/types.ts";
 * declare const b: BackendConfig;
 *
 * publicConfig(b); // { id, name, host, port, url, weight, tags, max_queue, tls, token: true }
 * ```
 */
export function publicConfig(b: BackendConfig): Record<string, unknown> {
  return {
    id: b.id,
    name: b.name,
    host: b.host,
    port: b.port,
    url: new ComfyUIClient(b).baseUrl,
    weight: b.weight,
    tags: b.tags,
    max_queue: b.max_queue,
    tls: b.tls ?? false,
    token: b.token !== undefined,
  };
}

/**
 * One backend with its live health, in the snake_case keys `GET /v1/backends` of
 * `gov serve` uses (`node_classes` and `models` are counts there and here), plus the
 * model names by loader input in `model_files`.
 *
 * @example
 * ```ts
 * import { backendJson } from "@/cli/backend/shared.ts";
 * import { type HealthMonitor } from "@/backends/health.ts";
 * import { type BackendConfig } from "@/backends/types.ts";
 * declare const b: BackendConfig;
 * declare const monitor: HealthMonitor;
 *
 * backendJson(b, monitor.status(b.id));
 * ```
 */
export function backendJson(
  b: BackendConfig,
  s: BackendStatus | undefined,
): Record<string, unknown> {
  const models = s?.models ?? {};
  return {
    ...publicConfig(b),
    state: s?.state ?? "unknown",
    last_error: s?.lastError ?? null,
    last_probe_at: s?.lastProbeAt ? new Date(s.lastProbeAt).toISOString() : null,
    queue_remaining: s && s.state === "up" ? s.queueRemaining : null,
    vram: s?.vram ?? null,
    comfyui_version: s?.comfyuiVersion ?? null,
    node_classes: s?.capabilitiesAt ? s.nodeClasses.length : null,
    models: s?.capabilitiesAt ? Object.values(models).reduce((n, l) => n + l.length, 0) : null,
    model_files: s?.capabilitiesAt ? models : null,
  };
}

/**
 * Bytes as GiB with one decimal.
 *
 * @example
 * ```ts
 * import { gib } from "@/cli/backend/shared.ts";
 *
 * gib(8 * 1024 ** 3); // "8.0"
 * ```
 */
export function gib(bytes: number): string {
  return (bytes / 1024 ** 3).toFixed(1);
}

/**
 * Lays out rows as left-aligned columns separated by two spaces.
 *
 * @example
 * ```ts
 * import { table } from "@/cli/backend/shared.ts";
 *
 * table([["ID", "STATE"], ["gpu1", "up"]]);
 * ```
 */
export function table(rows: string[][], visibleLength = (s: string) => s.length): string {
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => widths[i] = Math.max(widths[i] ?? 0, visibleLength(c)));
  }
  return rows.map((r) =>
    r.map((c, i) => i === r.length - 1 ? c : c + " ".repeat(widths[i] - visibleLength(c)))
      .join("  ").trimEnd()
  ).join("\n") + "\n";
}
