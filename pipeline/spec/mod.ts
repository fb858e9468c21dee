/**
 * Experiment spec: YAML text + dotted overrides -> a validated, fully-defaulted `Spec`.
 *
 * Every problem is collected (never stop at the first) and reported with where it is
 * (file:line:column, or the override that set it), the key path, what was expected and
 * what was found, e.g.
 * `experiments/x.yaml:7:11 arms.klal.lambda: expected a number >= 0, found "high"`.
 *
 * What each key may hold (type, range, default) and the lists of valid keys come from the
 * schema, ./schema.ts: a key declared there is read, checked and defaulted here with no
 * other change. This module adds the rules between keys, the task registry and its params
 * (each task's declared fields and cross-field rules), files on disk and the name rule.
 *
 * The parts live by concern: ./errors.ts (problems and their messages),
 * ./yaml_tree.ts (the located YAML tree), ./overrides.ts (overrides and a `base:`
 * file), ./section.ts (reading one mapping against its fields), ./sections.ts,
 * ./arms.ts, ./source.ts and ./sweep_block.ts (each section's rules). This
 * module joins them, and what other modules import about specs is exported from here.
 */

import type { Task } from "../../tasks/task.ts";
import {
  describeNode,
  type LNode,
  parseYamlTree,
  Problems,
  readYamlFile,
  showNode,
} from "./yaml_tree.ts";
import { applyOverrides, resolveBaseFile } from "./overrides.ts";
import { isString, Section } from "./section.ts";
import {
  imageSizeIfValid,
  validateBase,
  validateExecutor,
  validateModel,
  validateParams,
  validateSeeds,
  validateTask,
  validateTrain,
} from "./sections.ts";
import { validateArms } from "./arms.ts";
import { validateSource } from "./source.ts";
import { validateSweep } from "./sweep_block.ts";
import { experimentNameProblem, NAME_PATTERN } from "./names.ts";
import { SpecError, type SpecProblem } from "./errors.ts";
import { EVAL_FIELDS, keysOf, ROOT_FIELDS } from "./schema.ts";
import type { Spec, TaskSpec } from "./types.ts";

export {
  formatProblem,
  formatSpecError,
  levenshtein,
  nearest,
  SpecError,
  type SpecProblem,
} from "./errors.ts";
export { type Loc, locateKey } from "./yaml_tree.ts";
export { overrideLoc } from "./overrides.ts";
export { sweepLimitExpected, sweepPoints } from "./sweep_block.ts";

/** What validation needs from the rest of the program (injected so tests can fake it). */
export interface SpecContext {
  tasks: Record<string, Task>;
}

export { canonicalJson } from "../lib/canonical_json.ts";

/** The top-level keys of a spec. */
const ROOT_KEYS = keysOf(ROOT_FIELDS);

function isRootKey(key: string): boolean {
  return ROOT_KEYS.includes(key);
}

/** Validates a located tree into a Spec, or reports every problem. */
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
  const task = validateTask(root, ctx.tasks, seeds);
  const source = validateSource(root, task.task, specDir);
  const sizes = source !== null && task.spec ? realDataSizes(root, task.spec, source) : undefined;
  const imageSize = imageSizeIfValid(root);
  const model = validateModel(root, imageSize);
  const params = task.task && task.paramsSection
    ? validateParams(task.paramsSection, task.task, imageSize, model?.patch_size)
    : undefined;
  const base = validateBase(root, imageSize, model?.patch_size, seeds.seeds);
  const train = validateTrain(root);
  const evalSection = root.section("eval");
  evalSection?.checkKeys(keysOf(EVAL_FIELDS));
  const evalValues = evalSection?.readAll(EVAL_FIELDS);
  const arms = validateArms(root, model?.layers, seeds.seeds);
  const sweep = validateSweep(root);
  const executor = validateExecutor(root);
  if (
    problems.list.length > 0 || name === undefined || !top.ok || seeds.seeds === undefined ||
    task.spec === undefined || params === undefined || model === undefined ||
    base === undefined || train === undefined || !evalValues?.ok || arms === undefined ||
    source === null || sweep === null || executor === null || sizes === null
  ) return undefined;
  return {
    name,
    ...top.values as Pick<Spec, "description" | "backend">,
    seeds: seeds.seeds,
    task: { ...task.spec, ...sizes, params, ...(source ? { source } : {}) },
    model,
    base,
    train,
    eval: evalValues.values as Spec["eval"],
    arms,
    ...(sweep ? { sweep } : {}),
    ...(executor ? { executor } : {}),
  };
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

/**
 * `task.train` and `task.test` with real data: every row (`all`) unless a number is written;
 * `all` without that split's source is an error (a generator or stand-in needs a number).
 */
function realDataSizes(
  root: Section,
  task: Omit<TaskSpec, "params">,
  source: TaskSpec["source"] | undefined,
): Pick<TaskSpec, "train" | "test"> | null {
  const section = root.section("task");
  let ok = true;
  const size = (split: "train" | "test") => {
    const written = section?.entry(split);
    if (!written) return source?.[split] ? "all" : task[split];
    if (task[split] === "all" && !source?.[split]) {
      section!.problems.add(
        written.node.loc,
        `task.${split}`,
        `a number of samples (all: every row of task.source.${split}, real data only)`,
        "all",
      );
      ok = false;
    }
    return task[split];
  };
  const out = { train: size("train"), test: size("test") };
  return ok ? out : null;
}
