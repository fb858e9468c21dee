/**
 * The contract every task implements (docs/ARCHITECTURE.md, "Adding a task").
 *
 * A task turns a seed into samples: an RGB image, a prompt, the answer as text, and
 * the ground-truth attention distribution P over the visual-token (patch) grid.
 */

import type { Fields } from "../pipeline/lib/schema.ts";

/** An RGB image, row-major HWC, values in [0, 1]. */
export interface RgbImage {
  width: number;
  height: number;
  /** length = width * height * 3 */
  data: Float32Array;
}

/** Free-form per-sample facts; `difficulty` feeds the reports' breakdowns. */
export interface SampleMeta {
  difficulty: string | number;
  [key: string]: unknown;
}

/** One task sample. Prompt and answer are space-separated words of the task's vocabulary. */
export interface Sample {
  image: RgbImage;
  prompt: string;
  answer: string;
  /** P over the patch grid, row-major, length (image_size / patch_size)^2, sums to 1. */
  target: Float32Array;
  meta: SampleMeta;
}

/** What a generator needs to know about the experiment. */
export interface TaskConfig {
  /** Square image side in pixels. */
  imageSize: number;
  /** Patch side in pixels; imageSize is a multiple of it. */
  patchSize: number;
  /** Task-specific parameters from the spec's `task.params`. */
  params: Record<string, unknown>;
}

/** A task: generator (or loader), ground truth, scorer. */
export interface Task {
  /** Registry name used in specs, e.g. "grid-patch". */
  name: string;
  /** Bump when the generator or ground truth changes: it invalidates cached data. */
  version: string;
  /** Every word that can appear in this task's prompts and answers. */
  vocabulary: readonly string[];
  /** Known `task.params` keys with their defaults (unknown keys are spec errors). */
  defaultParams: Record<string, unknown>;
  /**
   * Each `task.params` key's type, range, default and doc (pipeline/lib/schema.ts), from which
   * `defaultParams`, the range checks of `checkParams` and docs/spec-keys.md are derived
   * (`defineParams`).
   */
  paramSchema?: Fields;
  /**
   * Checks `params` (already merged with defaults) against `config`; returns a list of
   * problems as `{ key, expected, found }` (empty when fine). With `defineParams`: each
   * field's own check, then the task's rules between parameters.
   */
  checkParams(config: TaskConfig): ParamProblem[];
  /**
   * Synthetic tasks: deterministic, the same (seed, n, config) gives the same samples.
   * Every task has `generate` or both `load` and `writeStandIn`.
   */
  generate?(seed: number, n: number, config: TaskConfig): Sample[];
  /**
   * Real-format tasks: read samples from files in the dataset's public on-disk format
   * (`source` comes from the spec's `task.source`, or from `writeStandIn`). Bad files give
   * errors that name the file and the row.
   */
  load?(source: DataSource, config: TaskConfig): Promise<Sample[]>;
  /**
   * Real-format tasks: write an offline stand-in dataset of `n` samples, deterministic in
   * `seed`, in the real on-disk format under `dir`; returns the source that loads it.
   */
  writeStandIn?(dir: string, seed: number, n: number, config: TaskConfig): Promise<DataSource>;
  /**
   * Real-format tasks: why the spec's `train` and `test` sources would give the same data
   * (the same file, read the same way), or null. Checked with the spec, before anything
   * runs; rows shared by two different files are found when either is loaded (`pair`).
   */
  checkSources?(train: DataSource, test: DataSource): SourceProblem | null;
  /** Extra per-sample metrics beyond accuracy (e.g. precision), averaged by the eval stage. */
  metrics?(prediction: string, sample: Sample): Record<string, number>;
  /** True when `prediction` (decoded model output, words joined by spaces) is correct. */
  score(prediction: string, sample: Sample): boolean;
  /**
   * Rules a reviewer would think of that answer without reading what the question asks about
   * in the image (Line Intersection: the curves' end points give the count's parity). The
   * eval stage scores each as a shortcut floor (../pipeline/eval/floors.ts), which a claim
   * must clear as it clears the fixed-answer floor.
   */
  shortcuts?: readonly ShortcutRule[];
  /**
   * The files besides `source.path` that `load` reads from a source (not its images), e.g.
   * RefCOCO's instances.json: their content enters the data stage's key, so editing one
   * recomputes the data and what follows it.
   */
  sourceFiles?(source: DataSource): string[];
  /**
   * Real-format tasks: the prompts `load` would read from `source`, without reading an image
   * (the run's vocabulary is built from them, ../pipeline/run/vocabulary.ts).
   */
  prompts?(source: DataSource, config: TaskConfig): Promise<string[]>;
  /**
   * Real-format tasks: the image files `load` reads from `source`, each once. Their content
   * enters the data stage's key (with a memo on path, size and modification time).
   */
  images?(source: DataSource, config: TaskConfig): Promise<string[]>;
  /**
   * An outside image's label as this task's sample (`deno task eval`): the meta its scorer
   * reads and its ground-truth map, from the answer and, where the label gives them, points or
   * a box in percent; or what is wrong with the label. Tasks whose scorer reads the answer
   * alone need none.
   */
  fromLabel?(
    label: OutsideLabel,
    config: TaskConfig,
  ): { meta: Record<string, unknown>; target: Float32Array } | string;
}

/** What a labels file says of one outside image (../pipeline/eval/labels.ts). */
export interface OutsideLabel {
  answer: string;
  points?: [number, number][];
  box?: [number, number, number, number];
}

/**
 * One shortcut: a feature of a sample that the rule answers from; it answers, for each value
 * of the feature, the most common answer among the samples with that value.
 */
export interface ShortcutRule {
  /** What the rule reads, in words: 'end points swap order (parity)'. */
  name: string;
  feature(sample: Sample): string | number;
}

/** Where a real-format dataset lives on disk. */
export interface DataSource {
  /** The annotation file (parquet, JSONL, pickle, JSON...). */
  path: string;
  /** Folder of the image files, when they are not inside the annotation file. */
  images?: string;
  /** Split to read when the file holds several (e.g. RefCOCO "val", "testA", "testB"). */
  split?: string;
  /** Extra files a format needs (e.g. RefCOCO's COCO instances.json). */
  extra?: Record<string, string>;
  /**
   * The spec's training and test sources, when it names both. Loading either source first
   * checks that no test row is a training row (the same image content and the same
   * question), and fails naming both files and the number of rows they share.
   */
  pair?: { train: DataSource; test: DataSource };
}

/** Why a spec's test source is not held out from its training source. */
export interface SourceProblem {
  expected: string;
  found: string;
}

/** One problem with a task parameter, reported by the spec validator. */
export interface ParamProblem {
  key: string;
  expected: string;
  found: unknown;
}

/** A task with a generator (all synthetic tasks). */
export type SyntheticTask = Task & { generate: NonNullable<Task["generate"]> };

/** A task read from files in a public format, with an offline stand-in writer. */
export type RealFormatTask = Task & {
  load: NonNullable<Task["load"]>;
  writeStandIn: NonNullable<Task["writeStandIn"]>;
};
