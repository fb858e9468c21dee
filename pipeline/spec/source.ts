/**
 * Validation of `task.source`: the real data files of a real-format task, per split, each
 * an existing file or folder relative to the spec, and a test set held out of training.
 */

import type { Task } from "../../tasks/task.ts";
import { showNode } from "./yaml_tree.ts";
import { isString, type Section } from "./section.ts";
import { keysOf, SOURCE_FIELDS, TASK_FIELDS } from "./schema.ts";
import type { TaskSpec } from "./types.ts";
import type { DataSource } from "../../tasks/task.ts";

/** Names of the further test sets (part of their stages' ids). */
export const TEST_NAME_PATTERN = /^[a-z][a-z0-9_-]*$/;

/** The splits a source may name (train, test). */
const SOURCE_SPLITS = keysOf(TASK_FIELDS.source.fields) as (keyof NonNullable<
  TaskSpec["source"]
>)[];

/** `task.source`: real data files per split, paths relative to the spec file's folder. */
export function validateSource(
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
  // One split's files: an existing annotation file, an images folder, a split, extra files.
  const readSplit = (s: Section | undefined): DataSource | undefined => {
    if (!s) return undefined;
    s.checkKeys(keysOf(SOURCE_FIELDS));
    const pathEntry = s.entry("path");
    if (!pathEntry) {
      s.missing("path", "the annotation file (parquet, JSONL or pickle)");
      return undefined;
    }
    const isFile = (v: unknown): v is string => isString(v) && exists(v, false);
    const isDir = (v: unknown): v is string => isString(v) && exists(v, true);
    const path = s.value("path", `an existing file (relative to ${specDir})`, isFile, "");
    const images = s.value("images", `an existing folder (relative to ${specDir})`, isDir, "");
    const splitName = s.value("split", "a string", isString, "");
    const extraSection = s.section("extra");
    const extra: Record<string, string> = {};
    let extraOk = true;
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
        extraOk = false;
      }
    }
    if (
      path === undefined || images === undefined || splitName === undefined || !extraSection ||
      !extraOk
    ) return undefined;
    return {
      path: resolve(path),
      ...(images ? { images: resolve(images) } : {}),
      ...(splitName ? { split: splitName } : {}),
      ...(Object.keys(extra).length > 0 ? { extra } : {}),
    };
  };
  for (const split of SOURCE_SPLITS) {
    if (split === "tests" || !section.entry(split)) continue;
    const read = readSplit(section.section(split));
    if (read) out[split] = read;
    else ok = false;
  }
  const testsEntry = section.entry("tests");
  if (testsEntry) {
    const tests = section.section("tests");
    const named: Record<string, DataSource> = {};
    for (const [name, e] of tests?.map?.entries ?? []) {
      if (!TEST_NAME_PATTERN.test(name) || name.length > 40) {
        tests!.problems.add(
          e.keyLoc,
          tests!.child(name),
          `a test set name matching ${TEST_NAME_PATTERN.source} (at most 40 characters)`,
          JSON.stringify(name),
        );
        ok = false;
        continue;
      }
      const read = readSplit(tests!.section(name));
      if (read) named[name] = read;
      else ok = false;
    }
    if (!tests?.map) ok = false;
    else if (tests.map.entries.size === 0) {
      section.problems.add(
        testsEntry.node.loc,
        "task.source.tests",
        "one or more named test sets",
        "an empty mapping",
      );
      ok = false;
    } else if (!section.entry("test")) {
      section.problems.add(
        testsEntry.keyLoc,
        "task.source.tests",
        "task.source.test beside it (the main test set; tests are more of them)",
        "tests without test",
      );
      ok = false;
    }
    if (Object.keys(named).length > 0) out.tests = named;
  }
  if (ok && out.train) {
    // Each test set is held out: not the training file (here), no shared rows (when loaded).
    const tests: [string, DataSource][] = [
      ...(out.test ? [["task.source.test", out.test] as [string, DataSource]] : []),
      ...Object.entries(out.tests ?? {}).map(([name, t]) =>
        [`task.source.tests.${name}`, t] as [string, DataSource]
      ),
    ];
    for (const [where, test] of tests) {
      const problem = task?.checkSources?.(out.train, test);
      const entry = where === "task.source.test"
        ? section.section("test")?.entry("path")
        : section.section("tests")?.section(where.split(".").pop()!)?.entry("path");
      if (problem && entry) {
        const { expected, found } = problem;
        section.problems.add(entry.node.loc, `${where}.path`, expected, found);
        ok = false;
        continue;
      }
      // The test stage checks its rows against the training file when it loads them; the
      // training data does not name the test file, so its key (and every training after it)
      // stays the same whichever test sets a spec evaluates on.
      test.pair = { train: { ...out.train }, test: { ...test } };
    }
    if (!ok) return null;
  }
  return ok ? out : null;
}
