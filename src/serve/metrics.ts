/**
 * Prometheus text exposition (format 0.0.4) for `GET /metrics`: a histogram type and a
 * writer that gets the escaping and the HELP/TYPE lines right.
 *
 * @module
 */

/**
 * A cumulative histogram with fixed bucket bounds (seconds), like a Prometheus client's.
 *
 * @example
 * ```ts
 * import { Histogram } from "@/serve/metrics.ts";
 *
 * const h = new Histogram([0.01, 0.1, 1]);
 * h.observe(0.05);
 * ```
 */
export class Histogram {
  /** Upper bounds, ascending (the +Inf bucket is implicit). */
  readonly bounds: number[];
  /** Observations per bucket (not cumulative), one more than bounds for +Inf. */
  readonly counts: number[];
  /** Sum of observed values. */
  sum = 0;
  /** Number of observations. */
  count = 0;

  constructor(bounds: number[]) {
    this.bounds = [...bounds].sort((a, b) => a - b);
    this.counts = new Array(this.bounds.length + 1).fill(0);
  }

  /** Records one value. */
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    let i = this.bounds.findIndex((b) => value <= b);
    if (i === -1) i = this.bounds.length;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

/** Default bounds for dispatch latency: 1 ms to 60 s. */
export const DISPATCH_BUCKETS = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
];

/** Default bounds for job run time: 100 ms to 1 h. */
export const RUN_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labels(l: Record<string, string> | undefined): string {
  if (!l) return "";
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function num(n: number): string {
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  if (Number.isNaN(n)) return "NaN";
  return String(n);
}

/**
 * Builds a Prometheus text document, one metric family at a time.
 *
 * @example
 * ```ts
 * import { MetricsWriter } from "@/serve/metrics.ts";
 *
 * const m = new MetricsWriter();
 * m.family("gov_jobs_in_queue", "gauge", "Jobs waiting for a backend.");
 * m.sample("gov_jobs_in_queue", 3);
 * const text = m.toString();
 * ```
 */
export class MetricsWriter {
  #lines: string[] = [];

  /** Starts a family: its HELP and TYPE lines. */
  family(name: string, type: "counter" | "gauge" | "histogram", help: string): this {
    this.#lines.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    this.#lines.push(`# TYPE ${name} ${type}`);
    return this;
  }

  /** One sample line. */
  sample(name: string, value: number, l?: Record<string, string>): this {
    this.#lines.push(`${name}${labels(l)} ${num(value)}`);
    return this;
  }

  /** A whole histogram family (after {@linkcode family}). */
  histogram(name: string, h: Histogram, l?: Record<string, string>): this {
    let cumulative = 0;
    h.bounds.forEach((b, i) => {
      cumulative += h.counts[i];
      this.sample(`${name}_bucket`, cumulative, { ...l, le: num(b) });
    });
    cumulative += h.counts[h.bounds.length];
    this.sample(`${name}_bucket`, cumulative, { ...l, le: "+Inf" });
    this.sample(`${name}_sum`, h.sum, l);
    this.sample(`${name}_count`, h.count, l);
    return this;
  }

  /** The document, newline-terminated. */
  toString(): string {
    return this.#lines.join("\n") + "\n";
  }
}
