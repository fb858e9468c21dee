/**
 * The write-up's template, `README.src.md`: prose plus `{{path:format}}` placeholders, where
 * `path` walks results.json with `/` (e.g. `table1/grid-patch/klal/mean`) and `format` is the
 * number of decimals, `p` (a p-value), `ci` (mean ± half-width (n=...)), `signed` (+1.2),
 * `list` (an array, comma-separated, null as –), `s` (as is) or `S` (as is, first letter
 * capitalised). The source may hold no number of its own
 * outside placeholders (checked), so the README cannot drift from the record.
 */

import { formatP } from "../summary.ts";
import type { SeedStats } from "./types.ts";

/** A value formatted as the README and tables show it. */
export function formatValue(value: unknown, format: string): string {
  if (format === "s") return String(value);
  if (format === "S") {
    const text = String(value);
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
  if (format === "list") {
    return Array.isArray(value)
      ? value.map((v) => (v === null ? "–" : String(v))).join(", ")
      : String(value);
  }
  if (format === "p") return typeof value === "number" ? formatP(value) : "p undefined";
  if (format === "ci") {
    const s = value as SeedStats | null;
    if (!s) return "not run";
    const hw = s.halfWidth === null ? "" : ` ± ${s.halfWidth.toFixed(1)}`;
    return `${s.mean.toFixed(1)}${hw} (n=${s.n})`;
  }
  if (format === "signed") {
    const v = value as number;
    const text = Math.abs(v).toFixed(1);
    return text === "0.0" ? "0.0" : `${v > 0 ? "+" : "−"}${text}`;
  }
  if (/^\d$/.test(format)) {
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new Error(`expected a finite number for format ${format}, found ${String(value)}`);
    }
    return value.toFixed(Number(format));
  }
  throw new Error(`unknown format "${format}" (expected 0-9, p, ci, signed, list, s or S)`);
}

/** Walk `record` along a `/`-separated path; throws naming the first missing segment. */
export function lookup(record: unknown, path: string): unknown {
  let node = record;
  const done: string[] = [];
  for (const key of path.split("/")) {
    if (node === null || typeof node !== "object" || !(key in node)) {
      throw new Error(`the record has no "${[...done, key].join("/")}"`);
    }
    node = (node as Record<string, unknown>)[key];
    done.push(key);
  }
  return node;
}

const PLACEHOLDER = /\{\{\s*([^}:]+?)\s*(?::\s*([A-Za-z0-9]+)\s*)?\}\}/g;

/** Fill every `{{path:format}}` of `template` from the record. */
export function fillTemplate(template: string, record: unknown): string {
  const errors: string[] = [];
  const out = template.replace(PLACEHOLDER, (whole, path: string, format = "s") => {
    try {
      return formatValue(lookup(record, path), format);
    } catch (e) {
      errors.push(`${whole}: ${(e as Error).message}`);
      return whole;
    }
  });
  if (errors.length > 0) throw new Error(`README.src.md: ${errors.join("; ")}`);
  return out;
}

/**
 * Numerals in the template's own prose (outside placeholders), other than names that carry
 * digits ("Table 1", "Qwen 2.5-VL", "WACV 2026", ...). Empty when the source is clean.
 */
export function strayNumbers(template: string): string[] {
  const allowed = [
    /Table [12]\b/g,
    /Qwen 2\.5-VL/g,
    /WACV 2026/g,
    /Molmo-7B-D|GLaMM-FS-7B|GPT-4o|Gemini-2\.0/g,
    /\bH100\b/g,
    /\bfp32\b|\bTF32\b/g,
    /#\d+/g, // "#N" references
    /\b95% /g, // the confidence level
    /\b1 = chance\b/g, // the ratio's definition
    /\b[a-z0-9_-]+\.(?:yaml|json|md|svg|ts)\b/g, // file names
    /^#+ /gm,
  ];
  let text = template.replace(PLACEHOLDER, " ");
  text = text.replace(/`[^`]*`/g, " "); // commands and code
  for (const pattern of allowed) text = text.replace(pattern, " ");
  return [...text.matchAll(/\d+(?:\.\d+)?/g)].map((m) => m[0]);
}

/** Number words up to twenty, as the record's computed phrases spell counts. */
export const NUMBER_WORDS = [
  "zero",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
  "ten",
  "eleven",
  "twelve",
  "thirteen",
  "fourteen",
  "fifteen",
  "sixteen",
  "seventeen",
  "eighteen",
  "nineteen",
  "twenty",
] as const;

/** The words `strayCountWords` refuses in the prose: numbers, multiples and quantifiers. */
export const COUNT_WORDS: readonly string[] = [
  ...NUMBER_WORDS,
  "thirty",
  "forty",
  "fifty",
  "hundred",
  "thousand",
  "million",
  "dozen",
  "once",
  "twice",
  "thrice",
  "half",
  "both",
  "neither",
  "none",
  "every",
  "all",
  "each",
  "always",
  "never",
  "most",
  "majority",
  "several",
  "many",
  "few",
  "single",
];

/**
 * Counts and quantifiers about the data that the prose spells out ("three", "every", "both",
 * "half", "twice", ...) outside placeholders and code spans: each must come from the record as
 * a computed phrase. Empty when the source is clean.
 */
export function strayCountWords(template: string): string[] {
  let text = template.replace(PLACEHOLDER, " ");
  text = text.replace(/`[^`]*`/g, " ").replace(/<!--[\s\S]*?-->/g, " ");
  // A word of its own: "half-width" and "zero-shot" are terms, not counts.
  const pattern = new RegExp(`(?<![\\w-])(?:${COUNT_WORDS.join("|")})(?![\\w-])`, "gi");
  return [...text.matchAll(pattern)].map((m) => m[0]);
}
