/**
 * Validation of the spec's sections one by one: seeds, task (its registered name, held-out
 * test seed and the task's own params), model, base, train and executor. What each key may
 * hold comes from ./schema.ts; the rules between keys are here.
 */

import type { ParamProblem, Task } from "../../tasks/task.ts";
import { pretrainMix } from "../../tasks/pretrain_mix.ts";
import { type Loc, show, showNode, toPlain } from "./yaml_tree.ts";
import { isString, type Section } from "./section.ts";
import { LIMITS } from "./limits.ts";
import { problemOf } from "../lib/schema.ts";
import { keysHint, nearest } from "./errors.ts";
import {
  BASE_FIELDS,
  EXECUTOR_FIELDS,
  keysOf,
  MODEL_FIELDS,
  SEEDS_FIELD,
  TASK_FIELDS,
  TRAIN_FIELDS,
} from "./schema.ts";
import {
  type BaseSpec,
  type ExecutorSpec,
  type ModelSpec,
  STAGE_KIND_NAMES,
  type StageResources,
  type TaskSpec,
  type TrainSpec,
} from "./types.ts";

/** Validates `seeds` (ROOT_FIELDS.seeds), keeping where each seed is written. */
export function validateSeeds(root: Section): { seeds?: number[]; locs: Loc[] } {
  if (!root.entry("seeds")) return { seeds: [...SEEDS_FIELD.default], locs: [root.loc] };
  const list = root.list("seeds", SEEDS_FIELD);
  return list ? { seeds: list.values as number[], locs: list.locs } : { locs: [] };
}

/** Validates `task`: a registered name, its values, and a test seed held out of `seeds`. */
export function validateTask(
  root: Section,
  tasks: Record<string, Task>,
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
  const names = Object.keys(tasks);
  let task: Task | undefined;
  const nameEntry = section.entry("name");
  if (!nameEntry) {
    section.missing("name", `a registered task name (one of: ${names.join(", ")})`);
  } else {
    const value = nameEntry.node.kind === "scalar" ? nameEntry.node.value : undefined;
    if (isString(value) && Object.hasOwn(tasks, value)) {
      task = tasks[value];
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

/** Validates `task.params` against the task's declared params and its own checks. */
export function validateParams(
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

/** Validates `model`: heads divide d_model, patches tile the image within the token bound. */
export function validateModel(root: Section, imageSize: number | undefined): ModelSpec | undefined {
  const section = root.section("model");
  if (!section) return undefined;
  section.checkKeys(keysOf(MODEL_FIELDS));
  const { values, ok: valuesOk } = section.readAll(MODEL_FIELDS);
  const m = values as Partial<ModelSpec>;
  const { d_model: dModel, heads, patch_size: patchSize } = m;
  let ok = valuesOk;
  // Reported where the first of `keys` is written (the divisor, else what it divides).
  const notADivisor = (keys: string[], of: string, found: number) => {
    const loc = keys.map((key) => section.entry(key)?.node.loc).find((l) => l) ?? section.loc;
    section.problems.add(loc, `model.${keys[0]}`, `a divisor of ${of}`, String(found));
    ok = false;
  };
  if (dModel !== undefined && heads !== undefined && dModel % heads !== 0) {
    notADivisor(["heads", "d_model"], `model.d_model (${dModel})`, heads);
  }
  if (imageSize !== undefined && patchSize !== undefined && imageSize % patchSize !== 0) {
    notADivisor(["patch_size"], `task.image_size (${imageSize})`, patchSize);
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

/**
 * Validates `base`, the pretraining of the shared Base checkpoint, and its `mix`: the
 * pretraining mix's params (tasks/pretrain_mix.ts), checked like a task's.
 */
export function validateBase(
  root: Section,
  imageSize: number | undefined,
  patchSize: number | undefined,
  seeds: readonly number[] | undefined,
): BaseSpec | undefined {
  const section = root.section("base");
  if (!section) return undefined;
  section.checkKeys(keysOf(BASE_FIELDS));
  const { values, ok } = section.readAll(BASE_FIELDS);
  // A list of Bases splits the fine-tune seeds among them in equal blocks (./bases.ts).
  const bases = values.seed;
  if (ok && Array.isArray(bases) && seeds && seeds.length % bases.length !== 0) {
    section.problems.add(
      section.entry("seed")?.node.loc ?? section.loc,
      "base.seed",
      `as many Bases as divide the ${seeds.length} ${
        seeds.length === 1 ? "seed" : "seeds"
      } evenly (each Base takes an equal block of seeds, in order)`,
      `${bases.length} Bases`,
    );
    return undefined;
  }
  const mixSection = section.section("mix");
  const mix = mixSection && validateParams(mixSection, pretrainMix, imageSize, patchSize);
  return ok && mix ? { ...values, mix } as unknown as BaseSpec : undefined;
}

/** Validates `train`; a warm-up given must fit in the steps, a default one shrinks to fit. */
export function validateTrain(root: Section): TrainSpec | undefined {
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

/** `executor:` where stages run (never part of a cache key). Absent: undefined; bad: null. */
export function validateExecutor(root: Section): ExecutorSpec | undefined | null {
  if (!root.entry("executor")) return undefined;
  const section = root.section("executor");
  if (!section) return null;
  section.checkKeys(keysOf(EXECUTOR_FIELDS));
  const { values, ok } = section.readAll(EXECUTOR_FIELDS);
  const stages = validateStageResources(section);
  if (!ok || stages === null) return null;
  // A time in minutes may be written as a number; sbatch takes it as text.
  if (values.time !== undefined) values.time = String(values.time);
  return { ...values, stages: stages ?? {} } as unknown as ExecutorSpec;
}

/** `executor.stages`: per stage kind (a known one), its resources; absent: undefined; bad: null. */
function validateStageResources(
  executor: Section,
): Record<string, StageResources> | undefined | null {
  const entry = executor.entry("stages");
  if (!entry) return undefined;
  const stages = executor.section("stages");
  if (!stages?.map) return stages ? {} : null;
  const fields = EXECUTOR_FIELDS.stages.values.fields;
  const out: Record<string, StageResources> = {};
  let ok = true;
  for (const [kind, kindEntry] of stages.map.entries) {
    if (!(STAGE_KIND_NAMES as readonly string[]).includes(kind)) {
      const guess = nearest(kind, STAGE_KIND_NAMES);
      stages.problems.add(
        kindEntry.keyLoc,
        stages.child(kind),
        `a stage kind: ${STAGE_KIND_NAMES.join(", ")}`,
        `${JSON.stringify(kind)}${guess ? `; did you mean ${JSON.stringify(guess)}?` : ""}`,
      );
      ok = false;
      continue;
    }
    const one = stages.section(kind);
    if (!one) {
      ok = false;
      continue;
    }
    one.checkKeys(keysOf(fields));
    const read = one.readAll(fields);
    if (!read.ok) ok = false;
    const v = read.values as StageResources & { time?: string | number };
    out[kind] = { ...v, ...(v.time !== undefined ? { time: String(v.time) } : {}) };
  }
  return ok ? out : null;
}

/** `task.source`: real data files per split, paths relative to the spec file's folder. */
/** task.image_size when it is valid (used for cross checks even if the task name is not). */
export function imageSizeIfValid(root: Section): number | undefined {
  const field = TASK_FIELDS.image_size;
  const entry = root.entry("task")?.node;
  if (entry?.kind !== "map") return field.default;
  const node = entry.entries.get("image_size")?.node;
  if (!node) return field.default;
  const value = node.kind === "scalar" ? node.value : undefined;
  return problemOf(field, value) === undefined ? value as number : undefined;
}
