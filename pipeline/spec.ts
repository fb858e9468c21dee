/**
 * Experiment spec: YAML text + dotted overrides -> a validated, fully-defaulted `Spec`.
 *
 * Every problem is collected (never stop at the first) and reported with where it is
 * (file:line:column, or the override that set it), the key path, what was expected and
 * what was found, e.g.
 * `experiments/x.yaml:7:11 arms.klal.lambda: expected a number >= 0, found "high"`.
 *
 * What each key may hold (type, range, default) and the lists of valid keys come from the
 * schema, ./spec_schema.ts: a key declared there is read, checked and defaulted here with no
 * other change. This module adds the rules between keys, the task registry and its params
 * (each task's declared fields and cross-field rules), files on disk and the name rule.
 */

import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Document, Node as YamlNode } from "yaml";
import { dirname, isAbsolute, join } from "node:path";
import type { ParamProblem, Task } from "../tasks/task.ts";
import type {
  ArmSpec,
  BaseSpec,
  ExecutorSpec,
  ModelSpec,
  Spec,
  TaskSpec,
  TrainSpec,
} from "./spec_types.ts";
import { formatBytes, LIMITS } from "./limits.ts";
import { experimentNameProblem, NAME_MAX_LENGTH, NAME_PATTERN } from "./names.ts";
import {
  distinctExpected,
  expectedOf,
  type Field,
  type Fields,
  type ListField,
  listLimitProblem,
  problemOf,
  type ValueField,
} from "./schema.ts";
import {
  ARM_FIELDS,
  ARM_NAME_PATTERN,
  BASE_FIELDS,
  EVAL_FIELDS,
  EXECUTOR_FIELDS,
  isValueField,
  keysOf,
  MODEL_FIELDS,
  ROOT_FIELDS,
  SEEDS_FIELD,
  SOURCE_FIELDS,
  SPEC_SCHEMA,
  TASK_FIELDS,
  TRAIN_FIELDS,
} from "./spec_schema.ts";
import { clip, escapeForTerminal } from "./terminal.ts";

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

/** What validation needs from the rest of the program (injected so tests can fake it). */
export interface SpecContext {
  tasks: Record<string, Task>;
}

// ---------------------------------------------------------------------------------------
// Small helpers other modules use too

/** Canonical JSON: object keys sorted at every level, no whitespace (for cache keys). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map((item) => item === undefined ? "null" : canonicalJson(item)).join(",")}]`;
  }
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).filter((key) => record[key] !== undefined).sort();
    return `{${
      keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(",")
    }}`;
  }
  return JSON.stringify(value) ?? "null";
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

// ---------------------------------------------------------------------------------------
// A located tree: plain values, each with where it came from (file position or override)

/** Where a value came from: file:line:column (1-based), or line 0 for an override. */
export interface Loc {
  file: string;
  line: number;
  column: number;
}

type LNode =
  | { kind: "map"; loc: Loc; entries: Map<string, { keyLoc: Loc; node: LNode }> }
  | { kind: "seq"; loc: Loc; items: LNode[] }
  | { kind: "scalar"; loc: Loc; value: unknown };

type LMap = Extract<LNode, { kind: "map" }>;

class Problems {
  list: SpecProblem[] = [];
  add(loc: Loc, path: string, expected: string, found: string, hint?: string): void {
    this.list.push({ ...loc, path, expected, found, ...(hint ? { hint } : {}) });
  }
}

/** YAML syntax errors reported one by one; the rest are counted. */
const MAX_YAML_ERRORS = 5;

function yamlOptions(lineCounter?: LineCounter) {
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
function parseYamlTree(
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
function fromPlain(value: unknown, loc: Loc): LNode {
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

function toPlain(node: LNode): unknown {
  if (node.kind === "scalar") return node.value;
  if (node.kind === "seq") return node.items.map(toPlain);
  return Object.fromEntries([...node.entries].map(([key, entry]) => [key, toPlain(entry.node)]));
}

/** Renders a found value as YAML/JSON (strings quoted). */
function show(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "number" && !Number.isFinite(value)) {
    return Number.isNaN(value) ? ".nan" : value > 0 ? ".inf" : "-.inf";
  }
  if (typeof value === "number") return String(value);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function showNode(node: LNode | undefined): string {
  return node === undefined ? "nothing" : show(toPlain(node));
}

/**
 * What a node is, without its content: for a whole file that is not a spec (a password
 * file, a program), whose text must not be echoed.
 */
function describeNode(node: LNode): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (node.kind === "seq") return `a list of ${plural(node.items.length, "item")}`;
  if (node.kind === "map") return `a mapping of ${plural(node.entries.size, "key")}`;
  const value = node.value;
  if (typeof value === "string") return `text of ${plural(value.length, "character")}`;
  if (value === null) return "null";
  return `a ${typeof value}`;
}

// ---------------------------------------------------------------------------------------
// Keys (from ./spec_schema.ts)

const ROOT_KEYS = keysOf(ROOT_FIELDS);
const SOURCE_SPLITS = keysOf(TASK_FIELDS.source.fields) as (keyof NonNullable<
  TaskSpec["source"]
>)[];

function isRootKey(key: string): boolean {
  return ROOT_KEYS.includes(key);
}

function keysHint(valid: readonly string[], word: string, label = "valid keys"): string {
  const guess = nearest(word, valid);
  return `${label}: ${valid.join(", ")}${guess ? `; did you mean ${JSON.stringify(guess)}?` : ""}`;
}

// ---------------------------------------------------------------------------------------
// Overrides

/** Where an override is reported: `<override N: text>` (N from 1, long text cut). */
export function overrideLoc(index: number, raw: string): Loc {
  return { file: `<override ${index + 1}: ${clip(raw, 80)}>`, line: 0, column: 0 };
}

/** Checks an override path against the schema; returns false (after reporting) when bad. */
function checkOverridePath(segments: string[], loc: Loc, problems: Problems): boolean {
  const report = (depth: number, valid: readonly string[]) => {
    const path = segments.slice(0, depth + 1).join(".");
    const word = segments[depth];
    problems.add(loc, path, "a known key", JSON.stringify(word), keysHint(valid, word));
    return false;
  };
  const tooDeep = (depth: number) => {
    const parent = segments.slice(0, depth).join(".");
    problems.add(
      loc,
      segments.join("."),
      `no key below ${parent} (it holds a value)`,
      JSON.stringify(segments[depth]),
    );
    return false;
  };
  let field: Field = SPEC_SCHEMA;
  for (let depth = 0; depth < segments.length; depth++) {
    const segment = segments[depth];
    if (field.type === "section") {
      if (!Object.hasOwn(field.fields, segment)) return report(depth, keysOf(field.fields));
      field = field.fields[segment];
    } else if (field.type === "map" && field !== ROOT_FIELDS.sweep) {
      // An arm's name, a task parameter (checked against the task later), an extra file.
      field = field.values;
    } else {
      // A value, or the sweep block, whose keys are dotted paths an override cannot name.
      return tooDeep(depth);
    }
  }
  return true;
}

function applyOverrides(root: LNode | undefined, overrides: string[], problems: Problems): void {
  overrides.forEach((raw, index) => {
    const loc = overrideLoc(index, raw);
    const eq = raw.indexOf("=");
    const pathText = eq < 0 ? "" : raw.slice(0, eq).trim();
    const segments = pathText.split(".");
    if (eq < 0 || segments.some((segment) => segment === "")) {
      problems.add(loc, "", "an override of the form a.b.c=value", JSON.stringify(raw));
      return;
    }
    const valueDoc = parseDocument(raw.slice(eq + 1), yamlOptions());
    if (valueDoc.errors.length > 0) {
      const message = valueDoc.errors[0].message.split("\n")[0];
      problems.add(
        loc,
        pathText,
        "a YAML value",
        `${JSON.stringify(raw.slice(eq + 1))} (${message})`,
      );
      return;
    }
    let value: unknown;
    try {
      value = valueDoc.toJS();
    } catch (error) {
      problems.add(loc, pathText, "a YAML value", (error as Error).message);
      return;
    }
    if (!checkOverridePath(segments, loc, problems)) return;
    if (root?.kind !== "map") return; // the top-level problem is reported by validation
    let map: LMap = root;
    for (const segment of segments.slice(0, -1)) {
      const entry = map.entries.get(segment);
      if (entry?.node.kind === "map") {
        map = entry.node;
      } else {
        const created: LMap = { kind: "map", loc, entries: new Map() };
        map.entries.set(segment, { keyLoc: loc, node: created });
        map = created;
      }
    }
    map.entries.set(segments[segments.length - 1], { keyLoc: loc, node: fromPlain(value, loc) });
  });
}

// ---------------------------------------------------------------------------------------
// `base:` given as a path to another YAML file

/** Replaces a string `base` with the located tree of the file it names. */
function resolveBaseFile(
  root: LNode | undefined,
  specFile: string,
  problems: Problems,
): void {
  if (root?.kind !== "map") return;
  const entry = root.entries.get("base");
  if (entry?.node.kind !== "scalar" || typeof entry.node.value !== "string") return;
  const baseRef = entry.node.value;
  const basePath = isAbsolute(baseRef) ? baseRef : join(dirname(specFile), baseRef);
  const empty: LNode = { kind: "map", loc: entry.node.loc, entries: new Map() };
  const read = readYamlFile(basePath);
  if ("expected" in read) {
    problems.add(
      entry.node.loc,
      "base",
      read.error
        ? "a mapping or the path of a readable YAML file (relative to the spec)"
        : `the path of ${read.expected} (relative to the spec)`,
      `${JSON.stringify(baseRef)} (${basePath}: ${read.error?.name ?? read.found})`,
    );
    entry.node = empty;
    return;
  }
  const tree = parseYamlTree(read.text, basePath, problems, "base");
  if (tree && tree.kind !== "map") {
    // The file named is not a base block: say what it holds, not its text.
    problems.add(tree.loc, "base", "a mapping of base settings", describeNode(tree));
    entry.node = empty;
    return;
  }
  entry.node = tree ?? empty;
}

// ---------------------------------------------------------------------------------------
// Validation

type Entry = { keyLoc: Loc; node: LNode };

/** What `Section.read` returns for a value that failed its check (the problem is reported). */
const INVALID: unique symbol = Symbol("invalid");

/** Reads the keys of one mapping, reporting unknown ones and remembering what was used. */
class Section {
  constructor(
    readonly path: string,
    readonly map: LMap | undefined,
    readonly fallbackLoc: Loc,
    readonly problems: Problems,
  ) {}

  get loc(): Loc {
    return this.map?.loc ?? this.fallbackLoc;
  }

  child(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  entry(key: string): Entry | undefined {
    return this.map?.entries.get(key);
  }

  checkKeys(valid: readonly string[]): void {
    for (const [key, entry] of this.map?.entries ?? []) {
      if (!valid.includes(key)) {
        this.problems.add(
          entry.keyLoc,
          this.child(key),
          "a known key",
          JSON.stringify(key),
          keysHint(valid, key),
        );
      }
    }
  }

  missing(key: string, expected: string): void {
    this.problems.add(this.loc, this.child(key), expected, "nothing (the key is missing)");
  }

  /** A value checked by `accept`; the default when absent, undefined when invalid. */
  value<T>(
    key: string,
    expected: string,
    accept: (value: unknown) => value is T,
    fallback: T,
  ): T | undefined {
    const entry = this.entry(key);
    if (!entry) return fallback;
    const value = entry.node.kind === "scalar" ? entry.node.value : toPlain(entry.node);
    if (accept(value)) return value;
    this.problems.add(entry.node.loc, this.child(key), expected, showNode(entry.node));
    return undefined;
  }

  /**
   * The value of `key` checked against its field (./spec_schema.ts): a copy of its default
   * when absent (undefined when it has none); INVALID after reporting a bad value.
   */
  read(key: string, field: ValueField): unknown {
    const entry = this.entry(key);
    if (!entry) {
      if (field.required) {
        this.missing(key, expectedOf(field));
        return INVALID;
      }
      return field.default === undefined ? undefined : structuredClone(field.default);
    }
    if (field.type === "list") return this.list(key, field)?.values ?? INVALID;
    const node = entry.node;
    const value = node.kind === "scalar" ? node.value : toPlain(node);
    const problem = problemOf(field, value);
    if (!problem) return value;
    this.problems.add(node.loc, this.child(key), problem.expected, problem.found ?? showNode(node));
    return INVALID;
  }

  /**
   * A list (present under `key`), each item checked where it is written; its values and
   * their locations, or undefined after reporting what is wrong.
   */
  list(key: string, field: ListField): { values: unknown[]; locs: Loc[] } | undefined {
    const node = this.entry(key)!.node;
    const path = this.child(key);
    const length = node.kind === "seq" ? node.items.length : 0;
    const counted = length >= (field.minItems ?? 0) && length <= (field.maxItems ?? Infinity);
    if (node.kind !== "seq" || !counted) {
      this.problems.add(node.loc, path, expectedOf(field), showNode(node));
      return undefined;
    }
    const limit = listLimitProblem(field, length);
    if (limit) {
      this.problems.add(node.loc, path, limit.expected, limit.found ?? showNode(node));
      return undefined;
    }
    const values: unknown[] = [];
    const locs: Loc[] = [];
    const firstIndex = new Map<string, number>(); // an item's JSON -> its first index
    let ok = true;
    node.items.forEach((item, i) => {
      const value = item.kind === "scalar" ? item.value : toPlain(item);
      const id = JSON.stringify(value);
      const problem = problemOf(field.items, value);
      if (problem) {
        this.problems.add(item.loc, `${path}[${i}]`, problem.expected, showNode(item));
        ok = false;
      } else if (field.distinct && firstIndex.has(id)) {
        const again = `${show(value)} again (${path}[${firstIndex.get(id)}])`;
        this.problems.add(item.loc, `${path}[${i}]`, distinctExpected(field), again);
        ok = false;
      } else {
        firstIndex.set(id, i);
        values.push(value);
        locs.push(item.loc);
      }
    });
    return ok ? { values, locs } : undefined;
  }

  /**
   * Every value field of `fields` (not the mappings) but those in `skip`, read with `read`:
   * the values by key (a key absent without a default left out), and false in `ok` when any
   * was bad. A key added to the schema is read here with no other change.
   */
  readAll(
    fields: Fields,
    skip: readonly string[] = [],
  ): { values: Record<string, unknown>; ok: boolean } {
    const values: Record<string, unknown> = {};
    let ok = true;
    for (const [key, field] of Object.entries(fields)) {
      if (skip.includes(key) || !isValueField(field)) continue;
      const value = this.read(key, field);
      if (value === INVALID) ok = false;
      else if (value !== undefined) values[key] = value;
    }
    return { values, ok };
  }

  /** A nested mapping (absent -> empty). Undefined map when the value is not a mapping. */
  section(key: string, allowNull = false): Section | undefined {
    const entry = this.entry(key);
    const path = this.child(key);
    if (!entry) return new Section(path, undefined, this.loc, this.problems);
    if (entry.node.kind === "map") {
      return new Section(path, entry.node, entry.node.loc, this.problems);
    }
    if (allowNull && entry.node.kind === "scalar" && entry.node.value === null) {
      return new Section(path, undefined, entry.node.loc, this.problems);
    }
    this.problems.add(entry.node.loc, path, "a mapping", showNode(entry.node));
    return undefined;
  }
}

function isInt(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value);
}

function isString(value: unknown): value is string {
  return typeof value === "string";
}

/** Validates `seeds` (ROOT_FIELDS.seeds), keeping where each seed is written. */
function validateSeeds(root: Section): { seeds?: number[]; locs: Loc[] } {
  if (!root.entry("seeds")) return { seeds: [...SEEDS_FIELD.default], locs: [root.loc] };
  const list = root.list("seeds", SEEDS_FIELD);
  return list ? { seeds: list.values as number[], locs: list.locs } : { locs: [] };
}

function validateTask(
  root: Section,
  ctx: SpecContext,
  seeds: { seeds?: number[]; locs: Loc[] },
): { spec?: Omit<TaskSpec, "params">; task?: Task; paramsSection?: Section } {
  const entry = root.entry("task");
  if (!entry) {
    root.missing("task", "a mapping with at least `name`");
    return {};
  }
  const section = root.section("task");
  if (!section) return {};
  section.checkKeys(keysOf(TASK_FIELDS));
  const names = Object.keys(ctx.tasks);
  let task: Task | undefined;
  const nameEntry = section.entry("name");
  if (!nameEntry) {
    section.missing("name", `a registered task name (one of: ${names.join(", ")})`);
  } else {
    const value = nameEntry.node.kind === "scalar" ? nameEntry.node.value : undefined;
    if (isString(value) && Object.hasOwn(ctx.tasks, value)) {
      task = ctx.tasks[value];
    } else {
      const guess = isString(value) ? nearest(value, names) : undefined;
      section.problems.add(
        nameEntry.node.loc,
        "task.name",
        "a registered task name",
        showNode(nameEntry.node),
        `valid tasks: ${names.join(", ")}${
          guess ? `; did you mean ${JSON.stringify(guess)}?` : ""
        }`,
      );
    }
  }
  const { values, ok } = section.readAll(TASK_FIELDS, ["name"]);
  const testSeed = values.test_seed as number | undefined;
  // test_seed + 1 generates the validation set of the learning curves: keep both held out.
  const heldOut = (x: number) => x === testSeed || x === testSeed! + 1;
  if (testSeed !== undefined && seeds.seeds?.some(heldOut)) {
    const given = section.entry("test_seed");
    const loc = given?.node.loc ?? seeds.locs[seeds.seeds.findIndex(heldOut)] ?? section.loc;
    section.problems.add(
      loc,
      "task.test_seed",
      `a seed that, like seed + 1 (validation), is not in seeds (${
        show(seeds.seeds)
      }), so the test set stays held out`,
      String(testSeed),
    );
  }
  const paramsSection = section.section("params");
  if (!ok || task === undefined || paramsSection === undefined) return { task, paramsSection };
  const spec = { name: task.name, ...values } as Omit<TaskSpec, "params">;
  return { spec, task, paramsSection };
}

function validateParams(
  params: Section,
  task: Task,
  imageSize: number | undefined,
  patchSize: number | undefined,
): Record<string, unknown> | undefined {
  const valid = Object.keys(task.defaultParams);
  const merged: Record<string, unknown> = { ...task.defaultParams };
  let ok = true;
  for (const [key, entry] of params.map?.entries ?? []) {
    if (!Object.hasOwn(task.defaultParams, key)) {
      params.problems.add(
        entry.keyLoc,
        params.child(key),
        `a parameter of task ${JSON.stringify(task.name)}`,
        JSON.stringify(key),
        keysHint(valid.length ? valid : ["(none)"], key, "valid params"),
      );
      ok = false;
    } else {
      merged[key] = toPlain(entry.node);
    }
  }
  if (imageSize === undefined || patchSize === undefined) return undefined;
  let found: ParamProblem[];
  try {
    found = task.checkParams({ imageSize, patchSize, params: merged });
  } catch (error) {
    params.problems.add(
      params.loc,
      params.path,
      "parameters the task accepts",
      (error as Error).message,
    );
    return undefined;
  }
  for (const problem of found) {
    const entry = params.entry(problem.key);
    params.problems.add(
      entry?.node.loc ?? params.loc,
      params.child(problem.key),
      problem.expected,
      show(problem.found),
    );
  }
  return ok && found.length === 0 ? merged : undefined;
}

function validateModel(root: Section, imageSize: number | undefined): ModelSpec | undefined {
  const section = root.section("model");
  if (!section) return undefined;
  section.checkKeys(keysOf(MODEL_FIELDS));
  const { values, ok: valuesOk } = section.readAll(MODEL_FIELDS);
  const m = values as Partial<ModelSpec>;
  const { d_model: dModel, heads, patch_size: patchSize } = m;
  let ok = valuesOk;
  if (dModel !== undefined && heads !== undefined && dModel % heads !== 0) {
    const loc = section.entry("heads")?.node.loc ?? section.entry("d_model")?.node.loc ??
      section.loc;
    section.problems.add(
      loc,
      "model.heads",
      `a divisor of model.d_model (${dModel})`,
      String(heads),
    );
    ok = false;
  }
  if (imageSize !== undefined && patchSize !== undefined && imageSize % patchSize !== 0) {
    const loc = section.entry("patch_size")?.node.loc ?? section.loc;
    section.problems.add(
      loc,
      "model.patch_size",
      `a divisor of task.image_size (${imageSize})`,
      String(patchSize),
    );
    ok = false;
  } else if (imageSize !== undefined && patchSize !== undefined) {
    const tokens = (imageSize / patchSize) ** 2;
    const { max, reason } = LIMITS.visualTokens;
    if (tokens > max) {
      section.problems.add(
        section.entry("patch_size")?.node.loc ?? section.loc,
        "model.patch_size",
        `a patch size with (task.image_size / patch_size)^2 <= ${max} visual tokens (${reason})`,
        `${patchSize} ((${imageSize} / ${patchSize})^2 = ${tokens} tokens)`,
      );
      ok = false;
    }
  }
  return ok ? m as ModelSpec : undefined;
}

function validateBase(root: Section): BaseSpec | undefined {
  const section = root.section("base");
  if (!section) return undefined;
  section.checkKeys(keysOf(BASE_FIELDS));
  const { values, ok } = section.readAll(BASE_FIELDS);
  return ok ? values as unknown as BaseSpec : undefined;
}

function validateTrain(root: Section): TrainSpec | undefined {
  const section = root.section("train");
  if (!section) return undefined;
  section.checkKeys(keysOf(TRAIN_FIELDS));
  const { values, ok } = section.readAll(TRAIN_FIELDS);
  const t = values as Partial<TrainSpec>;
  const warmupEntry = section.entry("warmup");
  if (!warmupEntry) {
    // The default warm-up shrinks to fit a short run; an explicit one must fit.
    t.warmup = Math.min(TRAIN_FIELDS.warmup.default, t.steps ?? Infinity);
  } else if (t.warmup !== undefined && t.steps !== undefined && t.warmup > t.steps) {
    section.problems.add(
      warmupEntry.node.loc,
      "train.warmup",
      `an integer <= train.steps (${t.steps})`,
      String(t.warmup),
    );
    return undefined;
  }
  return ok ? t as TrainSpec : undefined;
}

function validateArm(arm: Section, depth: number | undefined): ArmSpec | undefined {
  arm.checkKeys(keysOf(ARM_FIELDS));
  const { values, ok: valuesOk } = arm.readAll(ARM_FIELDS, ["layers"]);
  let ok = valuesOk;
  let layers: ArmSpec["layers"] | undefined = ARM_FIELDS.layers.default;
  const layersEntry = arm.entry("layers");
  const layersPath = arm.child("layers");
  const listExpected = depth === undefined
    ? `"all" or a non-empty list of distinct layer indices`
    : `"all" or a non-empty list of distinct layer indices in [0, ${depth})`;
  if (layersEntry) {
    const node = layersEntry.node;
    if (node.kind === "scalar" && node.value === "all") {
      layers = "all";
    } else if (node.kind !== "seq" || node.items.length === 0) {
      arm.problems.add(node.loc, layersPath, listExpected, showNode(node));
      layers = undefined;
    } else {
      const indices: number[] = [];
      node.items.forEach((item, i) => {
        const value = item.kind === "scalar" ? item.value : undefined;
        const path = `${layersPath}[${i}]`;
        if (!isInt(value) || value < 0) {
          arm.problems.add(item.loc, path, "a layer index (an integer >= 0)", showNode(item));
        } else if (depth !== undefined && value >= depth) {
          arm.problems.add(
            item.loc,
            path,
            `a layer index in [0, ${depth}) (model.layers is ${depth})`,
            String(value),
          );
        } else if (indices.includes(value)) {
          arm.problems.add(item.loc, path, "distinct layer indices", `${value} again`);
        } else {
          indices.push(value);
          return;
        }
        layers = undefined;
      });
      if (layers !== undefined) layers = indices;
    }
  }
  if (values.finetune === false) {
    // Every other key of an arm says how it fine-tunes.
    for (const key of keysOf(ARM_FIELDS).filter((k) => k !== "finetune")) {
      const entry = arm.entry(key);
      if (entry) {
        arm.problems.add(
          entry.keyLoc,
          arm.child(key),
          `no ${key} when finetune is false (it would be ignored)`,
          showNode(entry.node),
        );
        ok = false;
      }
    }
  }
  if (!ok || layers === undefined) return undefined;
  return { ...values, layers } as ArmSpec;
}

function validateArms(
  root: Section,
  depth: number | undefined,
): Record<string, ArmSpec> | undefined {
  const expected = "a non-empty mapping of arm names to arm settings";
  if (!root.entry("arms")) {
    root.missing("arms", expected);
    return undefined;
  }
  const node = root.entry("arms")!.node;
  if (node.kind !== "map" || node.entries.size === 0) {
    root.problems.add(node.loc, "arms", expected, showNode(node));
    return undefined;
  }
  const section = new Section("arms", node, node.loc, root.problems);
  const arms: Record<string, ArmSpec> = {};
  let ok = true;
  for (const [name, entry] of node.entries) {
    if (name.length > NAME_MAX_LENGTH) {
      section.problems.add(
        entry.keyLoc,
        section.child(name),
        `an arm name of at most ${NAME_MAX_LENGTH} characters (it names its stages' files)`,
        `a name of ${name.length} characters`,
      );
      ok = false;
    } else if (!ARM_NAME_PATTERN.test(name)) {
      section.problems.add(
        entry.keyLoc,
        section.child(name),
        `an arm name matching ${ARM_NAME_PATTERN}`,
        JSON.stringify(name),
      );
      ok = false;
    }
    const arm = section.section(name, true);
    const spec = arm ? validateArm(arm, depth) : undefined;
    if (spec) arms[name] = spec;
    else ok = false;
  }
  return ok ? arms : undefined;
}

/** Validates a located tree into a Spec, or reports every problem. */
/**
 * `sweep:` maps dotted spec paths to lists of values (Hydra-style); each value is checked
 * when its point of the sweep is validated (pipeline/sweep.ts).
 */
function validateSweep(root: Section): Record<string, unknown[]> | undefined | null {
  if (!root.entry("sweep")) return undefined;
  const section = root.section("sweep");
  if (!section?.map) return section ? {} : null;
  const out: Record<string, unknown[]> = {};
  let ok = true;
  for (const [key, entry] of section.map.entries) {
    const value = toPlain(entry.node);
    if (!Array.isArray(value) || value.length === 0) {
      section.problems.add(
        entry.node.loc,
        `sweep.${key}`,
        "a non-empty list of values",
        showNode(entry.node),
      );
      ok = false;
      continue;
    }
    const dotted = /^[a-z_][a-z0-9_-]*(\.[a-z0-9_-]+)+$/.test(key) && !key.startsWith("sweep.");
    if (!dotted && key !== "task") {
      section.problems.add(
        entry.keyLoc,
        `sweep.${key}`,
        "a dotted spec path such as arms.klal.lambda, or task (whole task blocks)",
        JSON.stringify(key),
      );
      ok = false;
      continue;
    }
    out[key] = value;
  }
  // Every point is a validated spec: refuse a sweep too large to expand before expanding it.
  const points = sweepPoints(Object.values(out).map((values) => values.length));
  if (points > LIMITS.sweepPoints.max) {
    const sizes = Object.values(out).map((values) => values.length).join(" x ");
    section.problems.add(
      root.entry("sweep")!.keyLoc,
      "sweep",
      sweepLimitExpected(),
      `${points} points (${sizes})`,
    );
    ok = false;
  }
  return ok ? out : null;
}

/** Points of a sweep whose axes have `sizes` values each: their product. */
export function sweepPoints(sizes: number[]): number {
  return sizes.reduce((product, size) => product * size, 1);
}

/** What a sweep is expected to be, with its bound (also used for command-line axes). */
export function sweepLimitExpected(): string {
  const { max, reason } = LIMITS.sweepPoints;
  return `a sweep of at most ${max} points, the product of its axes' lengths (${reason})`;
}

/** `executor:` where stages run (never part of a cache key). Absent: undefined; bad: null. */
function validateExecutor(root: Section): ExecutorSpec | undefined | null {
  if (!root.entry("executor")) return undefined;
  const section = root.section("executor");
  if (!section) return null;
  section.checkKeys(keysOf(EXECUTOR_FIELDS));
  const { values, ok } = section.readAll(EXECUTOR_FIELDS);
  if (!ok) return null;
  // A time in minutes may be written as a number; sbatch takes it as text.
  if (values.time !== undefined) values.time = String(values.time);
  return values as unknown as ExecutorSpec;
}

/** `task.source`: real data files per split, paths relative to the spec file's folder. */
function validateSource(
  root: Section,
  task: Task | undefined,
  specDir: string,
): TaskSpec["source"] | undefined | null {
  const taskSection = root.section("task");
  const entry = taskSection?.entry("source");
  if (!taskSection || !entry) return undefined;
  const section = taskSection.section("source");
  if (!section) return null;
  section.checkKeys(SOURCE_SPLITS);
  if (task && !task.load) {
    section.problems.add(
      entry.keyLoc,
      "task.source",
      "no source: this task generates its data (real-format tasks: pixmo-points, refcoco)",
      `a source for ${JSON.stringify(task.name)}`,
    );
    return null;
  }
  const resolve = (p: string) => (p.startsWith("/") ? p : `${specDir}/${p}`);
  const exists = (p: string, dir: boolean) => {
    try {
      const info = Deno.statSync(resolve(p));
      return dir ? info.isDirectory : info.isFile;
    } catch {
      return false;
    }
  };
  const out: NonNullable<TaskSpec["source"]> = {};
  let ok = true;
  for (const split of SOURCE_SPLITS) {
    if (!section.entry(split)) continue;
    const s = section.section(split);
    if (!s) {
      ok = false;
      continue;
    }
    s.checkKeys(keysOf(SOURCE_FIELDS));
    const pathEntry = s.entry("path");
    if (!pathEntry) {
      s.missing("path", "the annotation file (parquet, JSONL or pickle)");
      ok = false;
      continue;
    }
    const isFile = (v: unknown): v is string => isString(v) && exists(v, false);
    const isDir = (v: unknown): v is string => isString(v) && exists(v, true);
    const path = s.value("path", `an existing file (relative to ${specDir})`, isFile, "");
    const images = s.value("images", `an existing folder (relative to ${specDir})`, isDir, "");
    const splitName = s.value("split", "a string", isString, "");
    const extraSection = s.section("extra");
    const extra: Record<string, string> = {};
    for (const [key, e] of extraSection?.map?.entries ?? []) {
      const v = e.node.kind === "scalar" ? e.node.value : undefined;
      if (isFile(v)) extra[key] = resolve(v);
      else {
        s.problems.add(
          e.node.loc,
          `${s.child("extra")}.${key}`,
          "an existing file",
          showNode(e.node),
        );
        ok = false;
      }
    }
    if (path === undefined || images === undefined || splitName === undefined || !extraSection) {
      ok = false;
      continue;
    }
    out[split] = {
      path: resolve(path),
      ...(images ? { images: resolve(images) } : {}),
      ...(splitName ? { split: splitName } : {}),
      ...(Object.keys(extra).length > 0 ? { extra } : {}),
    };
  }
  if (ok && out.train && out.test) {
    // The test set is held out: not the training file (here), no shared rows (when loaded).
    const problem = task?.checkSources?.(out.train, out.test);
    const testPath = section.section("test")?.entry("path");
    if (problem && testPath) {
      const { expected, found } = problem;
      section.problems.add(testPath.node.loc, "task.source.test.path", expected, found);
      return null;
    }
    const pair = { train: { ...out.train }, test: { ...out.test } };
    out.train.pair = out.test.pair = pair;
  }
  return ok ? out : null;
}

function validate(
  tree: LNode,
  ctx: SpecContext,
  problems: Problems,
  specDir = ".",
): Spec | undefined {
  if (tree.kind !== "map") {
    // Often a file given as the spec by mistake: say what it holds, never its text.
    problems.add(tree.loc, "(top level)", "a mapping of spec keys", describeNode(tree));
    return undefined;
  }
  const root = new Section("", tree, tree.loc, problems);
  root.checkKeys(ROOT_KEYS);
  let name: string | undefined;
  const nameEntry = root.entry("name");
  const role = "it names the report folder";
  if (!nameEntry) {
    root.missing("name", `a string matching ${NAME_PATTERN} (${role})`);
  } else {
    const node = nameEntry.node;
    const value = node.kind === "scalar" ? node.value : undefined;
    const problem = isString(value)
      ? experimentNameProblem(value, role)
      : { expected: `a string matching ${NAME_PATTERN} (${role})`, found: showNode(node) };
    if (problem) problems.add(node.loc, "name", problem.expected, problem.found);
    else name = value as string;
  }
  const top = root.readAll(ROOT_FIELDS, ["name", "seeds"]);
  const seeds = validateSeeds(root);
  const task = validateTask(root, ctx, seeds);
  const source = validateSource(root, task.task, specDir);
  const imageSize = imageSizeIfValid(root);
  const model = validateModel(root, imageSize);
  const params = task.task && task.paramsSection
    ? validateParams(task.paramsSection, task.task, imageSize, model?.patch_size)
    : undefined;
  const base = validateBase(root);
  const train = validateTrain(root);
  const evalSection = root.section("eval");
  evalSection?.checkKeys(keysOf(EVAL_FIELDS));
  const evalValues = evalSection?.readAll(EVAL_FIELDS);
  const arms = validateArms(root, model?.layers);
  const sweep = validateSweep(root);
  const executor = validateExecutor(root);
  if (
    problems.list.length > 0 || name === undefined || !top.ok || seeds.seeds === undefined ||
    task.spec === undefined || params === undefined || model === undefined ||
    base === undefined || train === undefined || !evalValues?.ok || arms === undefined ||
    source === null || sweep === null || executor === null
  ) return undefined;
  return {
    name,
    ...top.values as Pick<Spec, "description" | "backend">,
    seeds: seeds.seeds,
    task: { ...task.spec, params, ...(source ? { source } : {}) },
    model,
    base,
    train,
    eval: evalValues.values as Spec["eval"],
    arms,
    ...(sweep ? { sweep } : {}),
    ...(executor ? { executor } : {}),
  };
}

/** task.image_size when it is valid (used for cross checks even if the task name is not). */
function imageSizeIfValid(root: Section): number | undefined {
  const field = TASK_FIELDS.image_size;
  const entry = root.entry("task")?.node;
  if (entry?.kind !== "map") return field.default;
  const node = entry.entries.get("image_size")?.node;
  if (!node) return field.default;
  const value = node.kind === "scalar" ? node.value : undefined;
  return problemOf(field, value) === undefined ? value as number : undefined;
}

function sortProblems(list: SpecProblem[], file: string): SpecProblem[] {
  const rank = (p: SpecProblem) => {
    if (p.file === file) return 0;
    const match = /^<override (\d+):/.exec(p.file);
    return match ? 1 + Number(match[1]) : 1;
  };
  return list
    .map((p, i) => ({ p, i }))
    .sort((a, b) =>
      rank(a.p) - rank(b.p) || a.p.file.localeCompare(b.p.file) || a.p.line - b.p.line ||
      a.p.column - b.p.column || a.i - b.i
    )
    .map(({ p }) => p);
}

// ---------------------------------------------------------------------------------------
// Entry points

/**
 * Parse YAML text + dotted overrides into a validated, fully-defaulted Spec. Throws
 * SpecError listing every problem. A string `base:` is read (synchronously) from a file
 * relative to `file`.
 */
export function parseSpec(text: string, file: string, overrides: string[], ctx: SpecContext): Spec {
  const problems = new Problems();
  const tree = parseYamlTree(text, file, problems);
  if (tree?.kind === "map" && tree.entries.size > 0 && ![...tree.entries.keys()].some(isRootKey)) {
    // Some other YAML (or text that parses as YAML) given as the spec: list none of its keys.
    problems.add(
      tree.loc,
      "(top level)",
      `a spec: a mapping with keys such as name, task and arms`,
      `${describeNode(tree)}, none of them a spec key`,
    );
    throw new SpecError(problems.list);
  }
  if (tree) {
    resolveBaseFile(tree, file, problems);
    applyOverrides(tree, overrides, problems);
    resolveBaseFile(tree, file, problems); // an override may name the base file
  } else {
    applyOverrides(undefined, overrides, problems); // still report malformed overrides
  }
  const specDir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) || "/" : ".";
  const spec = tree ? validate(tree, ctx, problems, specDir) : undefined;
  if (problems.list.length > 0 || spec === undefined) {
    if (problems.list.length === 0) {
      problems.add({ file, line: 0, column: 0 }, "", "a valid spec", "an unreported problem");
    }
    throw new SpecError(sortProblems(problems.list, file));
  }
  return spec;
}

/** A YAML file's text, or what is wrong with the file (its content never shown). */
type YamlFileRead = { text: string } | { expected: string; found: string; error?: Error };

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
function readYamlFile(path: string): YamlFileRead {
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

/**
 * The text of a spec file; a file that cannot be a spec (unreadable, a directory, larger
 * than LIMITS.specBytes, binary) is a SpecError naming it, read no further than the limit.
 */
export function readSpecFile(path: string): Promise<string> {
  const read = readYamlFile(path);
  if ("text" in read) return Promise.resolve(read.text);
  const { expected, found } = read;
  return Promise.reject(
    new SpecError([{ file: path, line: 0, column: 0, path: "", expected, found }]),
  );
}

/** Read the spec file (an unreadable file is a SpecError naming it), then parseSpec. */
export async function loadSpec(path: string, overrides: string[], ctx: SpecContext): Promise<Spec> {
  return parseSpec(await readSpecFile(path), path, overrides, ctx);
}
