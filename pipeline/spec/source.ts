/**
 * Validation of `task.source`: the real data files of a real-format task, per split, each
 * an existing file or folder relative to the spec, and a test set held out of training.
 */

import type { Task } from "../../tasks/task.ts";
import { showNode } from "./yaml_tree.ts";
import { isString, type Section } from "./section.ts";
import { keysOf, SOURCE_FIELDS, TASK_FIELDS } from "./schema.ts";
import type { TaskSpec } from "./types.ts";

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
    // The test stage checks its rows against the training file when it loads them; the
    // training data does not name the test file, so its key (and every training after it)
    // stays the same whichever test set a spec evaluates on.
    out.test.pair = { train: { ...out.train }, test: { ...out.test } };
  }
  return ok ? out : null;
}
