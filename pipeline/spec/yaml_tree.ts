/**
 * A spec's YAML as a located tree: plain values, each with where it came from (file
 * line:column, or the override that set it), so that every problem found later can say
 * where it is. Also the bounded, text-only read of a YAML file.
 */

import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Document, Node as YamlNode } from "yaml";
import { formatBytes, LIMITS } from "./limits.ts";
import type { SpecProblem } from "./errors.ts";
import { clip } from "../lib/terminal.ts";

/** Where a value came from: file:line:column (1-based), or line 0 for an override. */
export interface Loc {
  file: string;
  line: number;
  column: number;
}

/** A node of the located tree: a mapping, a list or a scalar, each with its location. */
export type LNode =
  | { kind: "map"; loc: Loc; entries: Map<string, { keyLoc: Loc; node: LNode }> }
  | { kind: "seq"; loc: Loc; items: LNode[] }
  | { kind: "scalar"; loc: Loc; value: unknown };

/** A mapping node of the located tree. */
export type LMap = Extract<LNode, { kind: "map" }>;

/** The problems found so far; validation goes on after each, to report them all. */
export class Problems {
  list: SpecProblem[] = [];
  add(loc: Loc, path: string, expected: string, found: string, hint?: string): void {
    this.list.push({ ...loc, path, expected, found, ...(hint ? { hint } : {}) });
  }
}

/** YAML syntax errors reported one by one; the rest are counted. */
const MAX_YAML_ERRORS = 5;

/** How every YAML text of a spec is parsed (core schema, no custom tags). */
export function yamlOptions(lineCounter?: LineCounter) {
  return {
    schema: "core" as const,
    customTags: [],
    keepSourceTokens: true,
    // Duplicates are detected while building the located tree, with both positions.
    uniqueKeys: false,
    prettyErrors: false,
    ...(lineCounter ? { lineCounter } : {}),
  };
}

/** Parses YAML text into a located tree; syntax problems go to `problems`. */
export function parseYamlTree(
  text: string,
  file: string,
  problems: Problems,
  pathPrefix = "",
): LNode | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, yamlOptions(lineCounter));
  const locAt = (offset: number): Loc => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, column: col };
  };
  if (doc.errors.length > 0) {
    // A file that is not YAML at all has an error on most lines: the first few say so.
    const shown = doc.errors.slice(0, MAX_YAML_ERRORS);
    for (const error of shown) {
      const message = error.code === "MULTIPLE_DOCS"
        ? "a second document (a spec is one YAML document)"
        : `${clip(error.message.split("\n")[0], 120)} (${error.code})`;
      problems.add(locAt(error.pos[0]), "", "valid YAML", message);
    }
    const more = doc.errors.length - shown.length;
    if (more > 0) {
      const next = locAt(doc.errors[shown.length].pos[0]);
      problems.add(next, "", "valid YAML", `${more} more YAML error${more === 1 ? "" : "s"}`);
    }
    return undefined;
  }
  try {
    doc.toJS({ mapAsMap: true }); // enforces yaml's default maxAliasCount against alias bombs
  } catch (error) {
    problems.add(locAt(0), "", "valid YAML", (error as Error).message);
    return undefined;
  }
  if (doc.contents === null) {
    problems.add(locAt(0), pathPrefix, "a YAML mapping", "an empty document");
    return undefined;
  }
  return toTree(doc, doc.contents, locAt, pathPrefix, problems);
}

function toTree(
  doc: Document,
  node: unknown,
  locAt: (offset: number) => Loc,
  path: string,
  problems: Problems,
): LNode | undefined {
  if (node === null || node === undefined) return undefined;
  if (isAlias(node)) return toTree(doc, node.resolve(doc), locAt, path, problems);
  const loc = locAt((node as YamlNode).range?.[0] ?? 0);
  if (isScalar(node)) return { kind: "scalar", loc, value: node.value };
  if (isSeq(node)) {
    const items = node.items.map((item, i): LNode =>
      toTree(doc, item, locAt, `${path}[${i}]`, problems) ?? { kind: "scalar", loc, value: null }
    );
    return { kind: "seq", loc, items };
  }
  if (isMap(node)) {
    const entries = new Map<string, { keyLoc: Loc; node: LNode }>();
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const keyNode = isAlias(pair.key) ? pair.key.resolve(doc) : pair.key;
      const keyRange = (pair.key as YamlNode | null)?.range;
      const keyLoc = keyRange ? locAt(keyRange[0]) : loc;
      if (!isScalar(keyNode) || typeof keyNode.value === "object" && keyNode.value !== null) {
        problems.add(keyLoc, path || "(top level)", "a plain key", "a collection used as a key");
        continue;
      }
      const key = String(keyNode.value);
      const childPath = path ? `${path}.${key}` : key;
      const previous = entries.get(key);
      if (previous) {
        const first = `${previous.keyLoc.line}:${previous.keyLoc.column}`;
        problems.add(keyLoc, childPath, "each key once", `a duplicate of the key at ${first}`);
        continue;
      }
      const value = toTree(doc, pair.value, locAt, childPath, problems) ??
        { kind: "scalar", loc: keyLoc, value: null };
      entries.set(key, { keyLoc, node: value });
    }
    return { kind: "map", loc, entries };
  }
  problems.add(loc, path, "a YAML value", "an unsupported node");
  return undefined;
}

/** Converts a plain JS value (from an override's YAML) to a tree located at `loc`. */
export function fromPlain(value: unknown, loc: Loc): LNode {
  if (Array.isArray(value)) return { kind: "seq", loc, items: value.map((v) => fromPlain(v, loc)) };
  if (value !== null && typeof value === "object") {
    const entries = new Map<string, { keyLoc: Loc; node: LNode }>();
    for (const [key, v] of Object.entries(value)) {
      entries.set(key, { keyLoc: loc, node: fromPlain(v, loc) });
    }
    return { kind: "map", loc, entries };
  }
  return { kind: "scalar", loc, value };
}

/** The plain JS value of a node, without locations. */
export function toPlain(node: LNode): unknown {
  if (node.kind === "scalar") return node.value;
  if (node.kind === "seq") return node.items.map(toPlain);
  return Object.fromEntries([...node.entries].map(([key, entry]) => [key, toPlain(entry.node)]));
}

/** Renders a found value as YAML/JSON (strings quoted). */
export function show(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "number" && !Number.isFinite(value)) {
    return Number.isNaN(value) ? ".nan" : value > 0 ? ".inf" : "-.inf";
  }
  if (typeof value === "number") return String(value);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Renders a found node as `show` does its value; "nothing" when absent. */
export function showNode(node: LNode | undefined): string {
  return node === undefined ? "nothing" : show(toPlain(node));
}

/**
 * What a node is, without its content: for a whole file that is not a spec (a password
 * file, a program), whose text must not be echoed.
 */
export function describeNode(node: LNode): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (node.kind === "seq") return `a list of ${plural(node.items.length, "item")}`;
  if (node.kind === "map") return `a mapping of ${plural(node.entries.size, "key")}`;
  const value = node.value;
  if (typeof value === "string") return `text of ${plural(value.length, "character")}`;
  if (value === null) return "null";
  return `a ${typeof value}`;
}

/** A key of a mapping: where the key is written and its value. */
export type Entry = { keyLoc: Loc; node: LNode };

/** A YAML file's text, or what is wrong with the file (its content never shown). */
export type YamlFileRead = { text: string } | { expected: string; found: string; error?: Error };

/** The first `limit` bytes of a file (fewer at its end); reads no further. */
function readAtMost(path: string, limit: number): Uint8Array {
  const file = Deno.openSync(path);
  try {
    const buffer = new Uint8Array(limit);
    let length = 0;
    while (length < limit) {
      const n = file.readSync(buffer.subarray(length));
      if (n === null) break;
      length += n;
    }
    return buffer.subarray(0, length);
  } finally {
    file.close();
  }
}

/**
 * Reads a spec (or a `base:` file) after checking it is at most LIMITS.specBytes (by its
 * size, then by reading no more than that), and that it is UTF-8 text, not binary data.
 */
export function readYamlFile(path: string): YamlFileRead {
  const { max, reason } = LIMITS.specBytes;
  const tooLarge = (found: string) => ({
    expected: `a YAML file of at most ${formatBytes(max)} (${reason})`,
    found,
  });
  let bytes: Uint8Array;
  try {
    const info = Deno.statSync(path);
    if (info.isDirectory) return { expected: "a YAML spec file", found: "a directory" };
    if (info.isFile && info.size > max) return tooLarge(`a file of ${info.size} bytes`);
    bytes = readAtMost(path, max + 1); // a pipe or a device has no size: read one byte past
  } catch (error) {
    const e = error as Error;
    return { expected: "a readable YAML spec file", found: `${e.name}: ${e.message}`, error: e };
  }
  if (bytes.length > max) return tooLarge(`more than ${formatBytes(max)}`);
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    return { expected: "a YAML text file", found: `binary data (a NUL byte at byte ${nul})` };
  }
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    return { expected: "a YAML text file in UTF-8", found: "bytes that are not UTF-8 text" };
  }
}

/**
 * Where the key at `keys` (from the top, e.g. ["sweep", "train.lr"]) is in a spec's text,
 * for problems found after validation; the file alone (line 0) when it is not there.
 */
export function locateKey(text: string, file: string, keys: string[]): Loc {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, yamlOptions(lineCounter));
  let node: unknown = doc.contents;
  let loc: Loc = { file, line: 0, column: 0 };
  for (const key of keys) {
    const pair = isMap(node)
      ? node.items.find((p) => isScalar(p.key) && String(p.key.value) === key)
      : undefined;
    const start = (pair?.key as YamlNode | undefined)?.range?.[0];
    if (!pair || start === undefined) return { file, line: 0, column: 0 };
    const { line, col } = lineCounter.linePos(start);
    loc = { file, line, column: col };
    node = pair.value;
  }
  return loc;
}
