/**
 * Reading one mapping of a spec against its schema fields: unknown keys (with a typo
 * hint), missing keys, values checked where they are written and defaults filled in. Every
 * section of the spec is validated through this class.
 */

import {
  type Entry,
  type LMap,
  type Loc,
  type Problems,
  show,
  showNode,
  toPlain,
} from "./yaml_tree.ts";
import {
  distinctExpected,
  expectedOf,
  type Fields,
  type ListField,
  listLimitProblem,
  problemOf,
  type ValueField,
} from "../lib/schema.ts";
import { keysHint } from "./errors.ts";
import { isValueField } from "./schema.ts";

/** What `Section.read` returns for a value that failed its check (the problem is reported). */
export const INVALID: unique symbol = Symbol("invalid");

/** Reads the keys of one mapping, reporting unknown ones and remembering what was used. */
export class Section {
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
   * The value of `key` checked against its field (./schema.ts): a copy of its default
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

/** A safe integer. */
export function isInt(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value);
}

/** A string. */
export function isString(value: unknown): value is string {
  return typeof value === "string";
}
