/**
 * Every key of a spec, declared once: its type, range (bounds from ./limits.ts), default and
 * a one-line doc. pipeline/spec/mod.ts validates against it (unknown keys, types, ranges,
 * defaults); docs/spec-keys.md is generated from it (`deno task spec-keys`). A new key is one
 * entry here (and its field in ./types.ts, which the `satisfies` below keeps in step).
 *
 * Rules between keys (heads divide d_model, warmup <= steps, held-out seeds...) and lookups
 * (registered task names, files on disk, the name rule of ./names.ts) stay in spec.ts and
 * its ./_spec_*.ts parts; a task's `params` are declared by the task (tasks/*.ts,
 * `defineParams`).
 */
import { type Limit, LIMITS } from "./limits.ts";
import { NAME_PATTERN } from "./names.ts";
import type { Field, Fields, ListField, SectionField, ValueField } from "../lib/schema.ts";
import type {
  ArmSpec,
  BaseSpec,
  ExecutorSpec,
  ModelSpec,
  Spec,
  TaskSpec,
  TrainSpec,
} from "./types.ts";
import { BACKENDS, EXECUTORS } from "./types.ts";
import type { DataSource } from "../../tasks/task.ts";

/** One field per key of T: no key of the interface missing, none extra. */
type FieldsOf<T> = { readonly [K in keyof Required<T>]: Field };

/**
 * An integer field from `min` (1 unless given) up to its bound in ./limits.ts, with a
 * default and a one-line doc.
 */
function bounded<const L extends Limit, const D extends number>(
  limit: L,
  defaultValue: D,
  doc: string,
  min = 1,
) {
  return { type: "int", min, limit, default: defaultValue, doc } as const;
}

/** A number field above 0 (a learning rate, a standard deviation), with a default and doc. */
function positive<const D extends number>(defaultValue: D, doc: string) {
  return { type: "number", min: 0, exclusiveMin: true, default: defaultValue, doc } as const;
}

/** A block of keys, each declared in `fields`. */
function section<const F extends Fields>(doc: string, fields: F) {
  return { type: "section", doc, fields } as const;
}

/**
 * Slurm's time formats: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
 * days-hours:minutes, days-hours:minutes:seconds, or no limit.
 */
export const SLURM_TIME_PATTERN = /^(\d+(:\d+){0,2}|\d+-\d+(:\d+){0,2}|UNLIMITED|INFINITE)$/;

/** Names that become arm keys (part of their stages' file names in the cache). */
export const ARM_NAME_PATTERN = /^[a-z][a-z0-9_-]*$/;

/** One split's dataset files (task.source.train, task.source.test). */
export const SOURCE_FIELDS = {
  path: {
    type: "string",
    required: true,
    doc: "the annotation file (parquet, JSONL or pickle), relative to the spec; must exist",
  },
  images: {
    type: "string",
    doc: "folder of the image files, relative to the spec, when they are not in the file",
  },
  split: { type: "string", doc: "split to read when the file holds several (RefCOCO: val...)" },
  extra: {
    type: "map",
    key: "<name>",
    values: { type: "string", doc: "an existing file, relative to the spec" },
    doc: "further files a format needs (RefCOCO: instances, COCO's instances.json)",
  },
} as const satisfies FieldsOf<Omit<DataSource, "pair">>;

export const TASK_FIELDS = {
  name: {
    type: "string",
    required: true,
    doc: "a registered task (tasks/registry.ts); its params are listed below",
  },
  image_size: bounded(LIMITS.imageSize, 32, "square image side in pixels", 8),
  train: {
    type: "union",
    options: [{ type: "int", min: 1, limit: LIMITS.samples }, { type: "enum", values: ["all"] }],
    default: 4000,
    doc: "training samples per seed; all: every row of task.source.train (the default with it)",
  },
  test: {
    type: "union",
    options: [{ type: "int", min: 1, limit: LIMITS.samples }, { type: "enum", values: ["all"] }],
    default: 500,
    doc: "held-out test samples (one set, generated from test_seed); all: every row of " +
      "task.source.test (the default with it)",
  },
  subset_seed: {
    type: "int",
    min: 0,
    default: 0,
    doc: "real data: the seed that draws a subset of train or test rows (never a fine-tune's)",
  },
  test_seed: {
    type: "int",
    min: 0,
    default: 1000,
    doc: "seed of the held-out set; neither it nor it + 1 (validation) may be one of seeds",
  },
  params: {
    type: "map",
    key: "<param>",
    values: { type: "string", doc: "see the task's own table" },
    doc: "the task's parameters, merged with its defaults (per task, below)",
  },
  source: {
    type: "section",
    doc: "real-format tasks only: dataset files per split (none: the offline stand-in)",
    fields: {
      train: section("training data (task.source.train.*)", SOURCE_FIELDS),
      val: section(
        "validation data (task.source.val.*); none: rows held out of task.source.train",
        SOURCE_FIELDS,
      ),
      test: section("test data (task.source.test.*)", SOURCE_FIELDS),
      tests: {
        type: "map",
        key: "<name>",
        values: section("one more test set (task.source.tests.<name>.*)", SOURCE_FIELDS),
        doc: "more test sets by name (matching `" + "^[a-z][a-z0-9_-]*$" +
          "`), each evaluating the same trainings as task.source.test, reported beside it",
      },
    },
  },
} as const satisfies FieldsOf<TaskSpec>;

export const MODEL_FIELDS = {
  name: { type: "enum", values: ["tiny-vlm"], default: "tiny-vlm", doc: "the model" },
  patch_size: bounded(
    LIMITS.patchSize,
    8,
    "patch side in pixels; divides task.image_size, at most 4096 visual tokens",
  ),
  d_model: bounded(LIMITS.dModel, 64, "model width; model.heads divides it", 8),
  layers: bounded(LIMITS.layers, 2, "transformer layers"),
  heads: bounded(LIMITS.heads, 4, "attention heads"),
  mlp_ratio: bounded(LIMITS.mlpRatio, 4, "MLP hidden size = mlp_ratio * d_model"),
  position_std: positive(
    0.3,
    "init std of the position embeddings (0.3 measured best on a validation seed)",
  ),
} as const satisfies FieldsOf<ModelSpec>;

export const BASE_FIELDS = {
  steps: bounded(LIMITS.steps, 300, "pretraining steps (0: the Base is the initialised model)", 0),
  batch_size: bounded(LIMITS.batchSize, 32, "pretraining batch size"),
  lr: positive(1e-3, "pretraining learning rate"),
  train: bounded(
    LIMITS.samples,
    4000,
    "generic pretraining samples (tasks/pretrain_mix.ts, never task data)",
  ),
  seed: {
    type: "union",
    options: [
      { type: "int", min: 0 },
      { type: "enum", values: ["run"] },
      {
        type: "list",
        items: { type: "int", min: 0, doc: "a Base seed" },
        minItems: 2,
        distinct: true,
        limit: LIMITS.seeds,
        noun: "Base seed",
      },
    ],
    default: 0,
    doc: 'seed of the pretraining data and init; "run": one Base per seed of seeds; a list: ' +
      "one Base per seed listed, the seeds split among them in order, in equal blocks (Bases " +
      "a level of the analysis)",
  },
  lambda: {
    type: "number",
    min: 0,
    default: 0,
    doc: "KLAL weight of pretraining on the mix's own maps, on every layer; 0 = plain NTP",
  },
  mix: {
    type: "map",
    key: "<param>",
    values: { type: "string", doc: "see the pretraining mix's table" },
    doc: "the pretraining mix's parameters, merged with its defaults (its table, below)",
  },
} as const satisfies FieldsOf<BaseSpec>;

export const TRAIN_FIELDS = {
  steps: bounded(LIMITS.steps, 500, "fine-tuning steps"),
  batch_size: bounded(LIMITS.batchSize, 32, "fine-tuning batch size"),
  lr: positive(1e-3, "learning rate (unused when lr_grid is set)"),
  lr_grid: {
    type: "list",
    items: { type: "number", min: 0, exclusiveMin: true, doc: "a learning rate" },
    distinct: true,
    limit: LIMITS.lrGrid,
    noun: "learning rate",
    default: [],
    doc: "learning rates to choose from per arm, by validation accuracy on the first seed " +
      "([]: use lr)",
  },
  optimizer: {
    type: "enum",
    values: ["adamw", "adam"],
    default: "adamw",
    doc: "optimizer",
  },
  weight_decay: { type: "number", min: 0, default: 0.01, doc: "AdamW weight decay" },
  warmup: {
    type: "int",
    min: 0,
    default: 50,
    doc: "linear warm-up steps, then cosine decay to 10% of lr; at most steps (the default " +
      "shrinks to fit)",
  },
  log_every: { type: "int", min: 1, default: 10, doc: "record the loss every this many steps" },
  eval_every: {
    type: "int",
    min: 0,
    default: 0,
    doc: "validation accuracy and attention every this many steps (0: never)",
  },
  eval_samples: bounded(
    LIMITS.samples,
    200,
    "validation samples, generated from seed task.test_seed + 1",
  ),
  checkpoint_every: {
    type: "int",
    min: 0,
    default: 100,
    doc: "save a resumable checkpoint every this many steps (0: never); in no key",
  },
} as const satisfies FieldsOf<TrainSpec>;

export const EVAL_FIELDS = {
  batch_size: bounded(LIMITS.batchSize, 128, "evaluation batch size"),
} as const satisfies FieldsOf<Spec["eval"]>;

export const ARM_FIELDS = {
  finetune: {
    type: "bool",
    default: true,
    doc: "false: evaluate the Base checkpoint as is (no other key of the arm then)",
  },
  lambda: { type: "number", min: 0, default: 0, doc: "KLAL weight; 0 = plain NTP" },
  layers: {
    type: "union",
    options: [
      { type: "enum", values: ["all"] },
      {
        type: "list",
        items: { type: "int", min: 0, doc: "a layer index" },
        minItems: 1,
        distinct: true,
      },
    ],
    default: "all",
    doc: "supervised layers: all, or 0-based indices below model.layers",
  },
  target: {
    type: "enum",
    values: ["task", "shuffled", "uniform"],
    expected: '"task" or "shuffled" or "uniform"',
    default: "task",
    doc: "the maps lambda pulls toward: the task's, another sample's, or uniform (controls)",
  },
  supervision: {
    type: "enum",
    values: ["attention", "pointer"],
    expected: '"attention" or "pointer"',
    default: "attention",
    doc: "KLAL on the attention, or a pointer head against the same maps (a control)",
  },
  queries: {
    type: "enum",
    values: ["all", "first"],
    expected: '"all" or "first"',
    default: "all",
    doc: "answer positions supervised: all (the paper's) or the first only",
  },
  seeds: {
    type: "union",
    options: [
      { type: "enum", values: ["all"] },
      {
        type: "list",
        items: { type: "int", min: 0, doc: "one of the spec's seeds" },
        minItems: 1,
        distinct: true,
        limit: LIMITS.seeds,
        noun: "seed",
      },
    ],
    default: "all",
    doc: "the seeds this arm is fine-tuned on: all (the spec's seeds), or some of them (a " +
      "control on the first Base's seeds)",
  },
} as const satisfies FieldsOf<ArmSpec>;

const NO_SPACES = /^\S+$/;

/** A stage's Slurm resources: for every stage (executor.*) or one kind (executor.stages.*). */
const SLURM_RESOURCE_FIELDS = {
  partition: {
    type: "string",
    pattern: NO_SPACES,
    expected: "a partition name (no spaces)",
    doc: "Slurm partition (--partition)",
  },
  time: {
    type: "union",
    options: [
      { type: "int", min: 1 },
      { type: "string", pattern: SLURM_TIME_PATTERN },
    ],
    expected: `a Slurm time limit: minutes, "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", ` +
      `"D-HH:MM:SS" or "UNLIMITED"`,
    doc: 'Slurm time limit per stage: minutes, "HH:MM:SS", "D-HH:MM:SS"...',
  },
  cpus: { type: "int", min: 1, doc: "CPUs per stage (--cpus-per-task)" },
  gres: {
    type: "string",
    pattern: NO_SPACES,
    expected: `generic resources such as "gpu:1" (no spaces)`,
    doc: 'generic resources per stage, e.g. "gpu:1" (--gres)',
  },
  sbatch: {
    type: "list",
    items: { type: "string", pattern: /^-/, doc: "an sbatch option" },
    expected: `a list of sbatch options, each starting with "-" (e.g. ["--qos=long"])`,
    doc: 'extra sbatch options, e.g. ["--qos=long", "--account=lab"]',
  },
} as const;

export const EXECUTOR_FIELDS = {
  name: {
    type: "enum",
    values: EXECUTORS,
    default: "local",
    doc: "where stages run (--executor overrides it)",
  },
  ...SLURM_RESOURCE_FIELDS,
  sbatch: { ...SLURM_RESOURCE_FIELDS.sbatch, default: [] },
  stages: {
    type: "map",
    key: "<stage kind>",
    values: {
      type: "section",
      doc: "this kind's resources, over the ones above (its sbatch options after theirs)",
      fields: {
        ...SLURM_RESOURCE_FIELDS,
        gres: {
          ...SLURM_RESOURCE_FIELDS.gres,
          pattern: /^\S*$/,
          expected: `generic resources such as "gpu:1", or "" for none (no spaces)`,
          doc: 'generic resources of this kind, e.g. "gpu:2"; "" asks for none',
        },
      },
    },
    doc: "per stage kind (data, pretrain, lr-finetune, lr-eval, choose-lr, finetune, eval, " +
      "report), resources over the common ones; data, choose-lr and report ask for no gres " +
      "unless given here",
  },
} as const satisfies FieldsOf<ExecutorSpec>;

/** The seeds list (its item locations are kept for the test_seed check). */
export const SEEDS_FIELD = {
  type: "list",
  items: { type: "int", min: 0, doc: "a seed" },
  minItems: 1,
  distinct: true,
  limit: LIMITS.seeds,
  noun: "seed",
  default: [0],
  doc: "one fine-tune per arm and seed",
} as const satisfies ListField;

export const ROOT_FIELDS = {
  name: {
    type: "string",
    pattern: NAME_PATTERN,
    required: true,
    doc: "the report folder, `reports/<name>/` (the rule of pipeline/spec/names.ts, and no `--`)",
  },
  description: { type: "string", default: "", doc: "free text shown in the report" },
  seeds: SEEDS_FIELD,
  backend: {
    type: "enum",
    values: BACKENDS,
    default: "auto",
    doc:
      "auto: on a real GPU the faster of WebGPU and the CPU path (timed once per machine), else wasm",
  },
  task: { type: "section", required: true, doc: "the task and its data", fields: TASK_FIELDS },
  model: section("the model", MODEL_FIELDS),
  base: section(
    "the shared Base checkpoint (or the path of a YAML file holding this block)",
    BASE_FIELDS,
  ),
  train: section("fine-tuning of every fine-tuned arm", TRAIN_FIELDS),
  eval: section("evaluation on the test set", EVAL_FIELDS),
  arms: {
    type: "map",
    key: "<arm>",
    required: true,
    values: section("one arm: the Base as is, or a fine-tune", ARM_FIELDS),
    doc: `arms by name (matching \`${ARM_NAME_PATTERN.source}\`, at most 100 characters)`,
  },
  sweep: {
    type: "map",
    key: "<dotted path>",
    values: { type: "list", items: { type: "string" }, minItems: 1 },
    doc: "dotted spec paths (or task) to lists of values: the runs of a sweep",
  },
  executor: section("where stages run; in no key", EXECUTOR_FIELDS),
} as const satisfies FieldsOf<Spec>;

/** The whole spec. */
export const SPEC_SCHEMA: SectionField = {
  type: "section",
  doc: "an experiment",
  fields: ROOT_FIELDS,
};

/** The keys of a mapping of fields, in their declared order (for messages). */
export function keysOf(fields: Fields): readonly string[] {
  return Object.keys(fields);
}

/** The field a dotted path names (`arms.klal.lambda`, `task.source.train.path`), if any. */
export function fieldAt(path: string): Field | undefined {
  let field: Field = SPEC_SCHEMA;
  for (const segment of path.split(".")) {
    if (field.type === "section") {
      if (!Object.hasOwn(field.fields, segment)) return undefined;
      field = field.fields[segment];
    } else if (field.type === "map") {
      field = field.values;
    } else return undefined;
  }
  return field;
}

/** Value fields only (not sections or maps). */
export function isValueField(f: Field): f is ValueField {
  return f.type !== "section" && f.type !== "map";
}
