/**
 * Text rules the frontend applies to widget values when it queues: dynamic prompts
 * (`{a|b}` choices, comments) and the `%date:...%` / `%Node.widget%` replacements in save
 * nodes' filename prefixes.
 *
 * @module
 */

/** Save nodes whose `filename_prefix` the frontend runs search-and-replace on. */
export const SAVE_NODE_TYPES = new Set([
  "SaveImage",
  "SaveImageAdvanced",
  "SaveSVGNode",
  "SaveVideo",
  "SaveAnimatedWEBP",
  "SaveWEBM",
  "SaveAudio",
  "SaveAudioMP3",
  "SaveAudioOpus",
  "SaveAudioAdvanced",
  "SaveGLB",
  "SaveAnimatedPNG",
  "CLIPSave",
  "VAESave",
  "ModelSave",
  "LoraSave",
  "SaveLatent",
]);

/**
 * The frontend's processDynamicPrompt: strips C-style comments, then replaces every
 * `{a|b|c}` (nested allowed, `\{` escapes) with one option chosen by `random`.
 *
 * @example
 * ```ts
 * processDynamicPrompt("a {red|blue} car", () => 0.9); // "a blue car"
 * ```
 */
export function processDynamicPrompt(source: string, random: () => number = Math.random): string {
  const text = source.replace(/\/\*[\s\S]*?\*\/|\/\/.*/g, "");
  let i = 0;
  let result = "";
  const escape = () => "\\" + (text[i++] ?? "");
  const choice = (): string => {
    const options: string[] = [];
    let current = "";
    let depth = 0;
    while (i < text.length) {
      const c = text[i++];
      if (c === "\\") {
        current += escape();
        continue;
      }
      if (c === "{") depth++;
      else if (c === "}") {
        if (!depth) break;
        depth--;
      } else if (c === "|" && !depth) {
        options.push(current);
        current = "";
        continue;
      }
      current += c;
    }
    options.push(current);
    const picked = options[Math.floor(random() * options.length)] ?? "";
    return processDynamicPrompt(picked, random);
  };
  while (i < text.length) {
    const c = text[i++];
    if (c === "\\") result += escape();
    else if (c === "{") result += choice();
    else result += c;
  }
  return result.replace(/\\([{}|])/g, "$1");
}

/** The frontend's formatDate for `%date:...%`: d, dd, M, MM, h, hh, m, mm, s, ss, yy, yyyy. */
function formatDate(format: string, date: Date): string {
  const parts: Record<string, (d: Date) => number> = {
    d: (d) => d.getDate(),
    M: (d) => d.getMonth() + 1,
    h: (d) => d.getHours(),
    m: (d) => d.getMinutes(),
    s: (d) => d.getSeconds(),
  };
  return format.replace(/dd?|MM?|hh?|mm?|ss?|yyy?y?/g, (token) => {
    if (token === "yy") return String(date.getFullYear()).substring(2);
    if (token === "yyyy") return String(date.getFullYear());
    const part = parts[token[0]];
    if (part) return String(part(date)).padStart(token.length, "0");
    return token;
  });
}

/**
 * The frontend's applyTextReplacements: `%date:fmt%` becomes the formatted `now()`, and
 * `%Node.widget%` the value `lookup` finds for that node's widget, with characters that are
 * unsafe in file names replaced by `_`; anything unmatched stays as written.
 *
 * @example
 * ```ts
 * applyTextReplacements("img_%date:yyyy%", () => new Date(2024, 0, 1), () => undefined); // "img_2024"
 * ```
 */
export function applyTextReplacements(
  value: string,
  now: () => Date,
  lookup: (node: string, widget: string) => { value: unknown } | undefined,
): string {
  return value.replace(/%([^%]+)%/g, (match, text: string) => {
    const split = text.split(".");
    if (split.length !== 2) {
      if (split[0].startsWith("date:")) return formatDate(split[0].substring(5), now());
      return match;
    }
    const found = lookup(split[0], split[1]);
    if (!found) return match;
    // deno-lint-ignore no-control-regex
    return String(found.value ?? "").replaceAll(/[/?<>\\:*|"\x00-\x1F\x7F]/g, "_");
  });
}
