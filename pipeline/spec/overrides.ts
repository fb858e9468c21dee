/**
 * What changes a spec's located tree before it is validated: dotted command-line overrides
 * (`arms.klal.lambda=2`), each checked against the schema and located as `<override N>`,
 * and a `base:` given as the path of another YAML file, read in its place.
 */

import { parseDocument } from "yaml";
import { dirname, isAbsolute, join } from "node:path";
import {
  describeNode,
  fromPlain,
  type LMap,
  type LNode,
  type Loc,
  parseYamlTree,
  type Problems,
  readYamlFile,
  yamlOptions,
} from "./yaml_tree.ts";
import type { Field } from "../lib/schema.ts";
import { keysHint } from "./errors.ts";
import { keysOf, ROOT_FIELDS, SPEC_SCHEMA } from "./schema.ts";
import { clip } from "../lib/terminal.ts";

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

/** Sets each `a.b.c=value` override in the tree; a malformed or unknown one is reported. */
export function applyOverrides(
  root: LNode | undefined,
  overrides: string[],
  problems: Problems,
): void {
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
export function resolveBaseFile(
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
