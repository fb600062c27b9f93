/**
 * Compares the prompt the real frontend queues with the one gov converts: node ids,
 * `class_type`, every input (links and values, deep) and `_meta.title`.
 *
 * @module
 */

type Prompt = Record<
  string,
  { class_type?: unknown; inputs?: Record<string, unknown>; _meta?: { title?: unknown } }
>;

function canonical(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonical).join(",")}]`;
  if (x && typeof x === "object") {
    const obj = x as Record<string, unknown>;
    return `{${
      Object.keys(obj).sort().map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`).join(",")
    }}`;
  }
  return JSON.stringify(x) ?? "undefined";
}

function show(x: unknown): string {
  const s = x === undefined ? "(absent)" : JSON.stringify(x);
  return s.length > 120 ? s.slice(0, 117) + "..." : s;
}

/** One line per difference, empty when the two prompts agree. */
export function comparePrompts(frontend: Prompt, gov: Prompt): string[] {
  const out: string[] = [];
  const ids = [...new Set([...Object.keys(frontend), ...Object.keys(gov)])]
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  for (const id of ids) {
    const f = frontend[id];
    const g = gov[id];
    if (!f) {
      out.push(`node ${id} (${g.class_type}): only gov emits it`);
      continue;
    }
    if (!g) {
      out.push(`node ${id} (${f.class_type}): only the frontend emits it`);
      continue;
    }
    if (f.class_type !== g.class_type) {
      out.push(`node ${id}: class_type frontend ${show(f.class_type)}, gov ${show(g.class_type)}`);
    }
    if (f._meta?.title !== g._meta?.title) {
      out.push(
        `node ${id}: _meta.title frontend ${show(f._meta?.title)}, gov ${show(g._meta?.title)}`,
      );
    }
    const fi = f.inputs ?? {};
    const gi = g.inputs ?? {};
    for (const name of [...new Set([...Object.keys(fi), ...Object.keys(gi)])].sort()) {
      if (canonical(fi[name]) !== canonical(gi[name])) {
        out.push(
          `node ${id} (${f.class_type}) input ${name}: frontend ${show(fi[name])}, gov ${
            show(gi[name])
          }`,
        );
      }
    }
  }
  return out;
}
