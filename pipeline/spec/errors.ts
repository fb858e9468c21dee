/**
 * Spec problems and how they are shown: one problem per line, with where it is, the key
 * path, what was expected and what was found, safe to print on a terminal; and the typo
 * hints ("did you mean ...?") that unknown keys and names get.
 */

import { clip, escapeForTerminal } from "../lib/terminal.ts";

/** One thing wrong with a spec; `line`/`column` are 1-based, 0 when not in a file. */
export interface SpecProblem {
  file: string;
  line: number;
  column: number;
  path: string;
  expected: string;
  found: string;
  hint?: string;
}

/** Every problem found in a spec; the message has one problem per line. */
export class SpecError extends Error {
  problems: SpecProblem[];
  constructor(problems: SpecProblem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "SpecError";
    this.problems = problems;
  }
}

/** Edit distance (insertions, deletions, substitutions) between two strings. */
export function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
    }
    previous = current;
  }
  return previous[b.length];
}

/** Edit distance that also counts a swap of two adjacent letters as one edit (typos). */
function typoDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** The candidate closest to `word` by edit distance, when it is close enough to be a typo. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = typoDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  if (best === undefined) return undefined;
  const allowed = Math.max(1, Math.floor(Math.max(word.length, best.length) / 3));
  return bestDistance <= allowed && bestDistance < best.length ? best : undefined;
}

/** "valid keys: a, b, c", with the nearest one when `word` looks like a typo of it. */
export function keysHint(valid: readonly string[], word: string, label = "valid keys"): string {
  const guess = nearest(word, valid);
  return `${label}: ${valid.join(", ")}${guess ? `; did you mean ${JSON.stringify(guess)}?` : ""}`;
}

/** Longest key path or found value a message shows (a spec's keys and values are echoed). */
const SHOWN_MAX = 160;

/**
 * Formats one problem as a single line, safe for a terminal: control characters in keys,
 * values and file names are shown as escapes, long keys and values are cut.
 */
export function formatProblem(p: SpecProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file;
  const head = p.path ? `${where} ${clip(p.path, SHOWN_MAX)}` : where;
  const text = `${head}: expected ${p.expected}, found ${clip(p.found, SHOWN_MAX)}${
    p.hint ? `; ${p.hint}` : ""
  }`;
  return escapeForTerminal(text);
}

/** Format a SpecError for the terminal (the CLI prints this, then exits 2). */
export function formatSpecError(e: SpecError): string {
  const count = e.problems.length;
  const title = `error: invalid spec (${count} problem${count === 1 ? "" : "s"}):`;
  return [title, ...e.problems.map((p) => `  ${formatProblem(p)}`)].join("\n");
}
