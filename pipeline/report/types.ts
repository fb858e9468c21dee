/**
 * What a report is made of: the measured rows, training curves, stage timings and the optional
 * parts (learning curves, attention figures, per-head grounding, difficulty breakdowns) that
 * the stages gather from the cache and every other module of the report reads.
 */

import type { Floor, ShortcutFloor } from "../eval/floors.ts";
import type { QuestionBlind } from "../eval/question_blind.ts";
import type { PromptOverlap } from "../eval/prompt_overlap.ts";
import type { Spec, TaskSpec } from "../spec/types.ts";

/** One measured number: a metric of one arm and seed on one task. */
export interface ResultRow {
  task: string;
  arm: string;
  seed: number;
  metric: string;
  value: number;
}

/** One logged training step of one arm and seed, with the loss split into its parts. */
export interface CurvePoint {
  arm: string;
  seed: number;
  step: number;
  ntp: number;
  klal: number;
  total: number;
}

/** What a stage of the plan did: served from the cache or ran, and how long it took. */
export interface StageInfo {
  stage: string;
  key: string;
  status: "cached" | "ran";
  seconds: number;
  samplesPerSecond?: number;
}

/** Everything a report shows. */
export interface ReportInput {
  /** Resolved spec (shown in the report as JSON). */
  spec: Spec;
  /**
   * Metrics: "accuracy" (percent 0-100), "target_attention" (mass on GT patches, 0..1),
   * "target_attention_ratio" (mass / uniform share), "target_attention_ratio_first" (the same
   * at the first answer position), "visual_share" and "visual_share_first" (raw share of the
   * answer positions' attention on visual tokens), per layer "target_attention_ratio@L<i>".
   */
  rows: ResultRow[];
  /** Training loss parts per arm and seed. */
  curves: CurvePoint[];
  stages: StageInfo[];
  /** Which tfjs backend ran, e.g. "wasm". */
  backend: string;
  /**
   * Why that backend: "set in the spec", "auto: no GPU adapter", or a calibration's numbers
   * (pipeline/run/backend_choice.ts). Absent for entries written before it was recorded.
   */
  backendReason?: string;
  /** ISO date. */
  createdAt: string;
  /** Validation accuracy and grounding measured during fine-tuning, per arm and seed. */
  learning?: LearningRow[];
  /** The first held-out samples with each arm's attention maps (attention figures). */
  figures?: FigureSet[];
  /** Attention mass on target patches per layer and head, per arm and seed. */
  heads?: HeadRow[];
  /** Held-out accuracy by the task's difficulty bucket, per arm and seed. */
  breakdown?: BreakdownRow[];
  /** Per task, the fixed-answer floor on its test set (what one constant answer scores). */
  floors?: Record<string, TaskFloor>;
  /** Per task, arm and seed, every test item's outcome (for bootstraps, McNemar, confusion). */
  items?: ItemSet[];
  /** Per task, how much of its test prompts the Base's pretraining prompts hold. */
  promptOverlap?: Record<string, PromptOverlap>;
  /** Real data: the words its prompts added to the model's vocabulary, per split. */
  vocabulary?: VocabularyReport;
  /** Per Base (its pretrain stage), what it answers of each mix kind on held-out samples. */
  baseSkills?: BaseSkills[];
  /**
   * Per task, its task spec, where it differs from `spec.task` (a task sweep's combined
   * report): what the task's label is read from (a real-format task on its stand-in).
   */
  taskSpecs?: Record<string, TaskSpec>;
  /**
   * The further test sets of a real-data spec (task.source.tests), each evaluating the same
   * trainings: their own rows, items and floor, summarised as the main test set is.
   */
  testSets?: TestSetInput[];
}

/** One further test set's measurements (the rows and items of its eval stages). */
export interface TestSetInput {
  name: string;
  rows: ResultRow[];
  items: ItemSet[];
  floor?: TaskFloor;
}

/** One Base's held-out accuracy per mix kind, beside each kind's fixed-answer floor (%). */
export interface BaseSkills {
  stage: string;
  skills: { kind: string; n: number; accuracy: number; floor: number; floorAnswer: string }[];
}

/**
 * A task's floors on its test set: the best constant answer and its accuracy (percent); the
 * best of the task's shortcut rules, when it has any; the question-blind attention ratio.
 */
export type TaskFloor = Pick<Floor, "answer" | "accuracy" | "kind"> & {
  shortcut?: ShortcutFloor;
  questionBlind?: QuestionBlind;
};

/** One test item's outcome for one arm and seed. */
export interface ItemOutcome {
  /** Position in the test set: the same item for every arm and seed. */
  index: number;
  answer: string;
  prediction: string;
  correct: boolean;
  /** The image the item asks about, where several items share one (cluster bootstrap). */
  image?: string;
}

/** Every test item's outcome of one evaluated arm and seed, in test-set order. */
export interface ItemSet {
  task: string;
  arm: string;
  seed: number;
  items: ItemOutcome[];
}

/** One point of a learning curve (validation set, during fine-tuning). */
export interface LearningRow {
  arm: string;
  seed: number;
  step: number;
  /** Percent. */
  accuracy: number;
  targetAttention: number;
  targetAttentionRatio: number;
}

/** Attention figures of one evaluated arm and seed. */
export interface FigureSet {
  arm: string;
  seed: number;
  /** Patches per image side (the maps are side x side, row-major). */
  gridSide: number;
  samples: FigureSample[];
}

/** One held-out sample with one model's answer and attention maps. */
export interface FigureSample {
  index: number;
  prompt: string;
  answer: string;
  prediction: string;
  correct: boolean;
  /** data:image/png;base64,... of the input image */
  image: string;
  /** Ground-truth P over the patch grid (row-major). */
  target: number[];
  /** Head-averaged visual attention of the answer positions, [layer][patch]. */
  layers: number[][];
  /** Per head, [layer][head][patch]. */
  heads: number[][][];
}

/** Attention mass on target patches of one layer and head. */
export interface HeadRow {
  arm: string;
  seed: number;
  layer: number;
  head: number;
  mass: number;
}

/** Accuracy of one arm and seed on one difficulty bucket. */
export interface BreakdownRow {
  arm: string;
  seed: number;
  difficulty: string;
  correct: number;
  n: number;
}

/** What one split's prompts hold. */
export interface SplitWords {
  /** Prompts read (every row of the split's file). */
  prompts: number;
  /** Word tokens in them, and distinct words. */
  tokens: number;
  distinct: number;
  /** Distinct words the Base's vocabulary did not have (added from the data). */
  added: number;
  /** Word tokens of this split whose word no training prompt holds (0 for train). */
  unseenTokens: number;
  /** A few of those words, most frequent first. */
  unseenExamples: string[];
}

/** The data's contribution to the vocabulary, per split. */
export interface VocabularyReport {
  /** Words the data added to the Base's. */
  added: number;
  splits: Record<string, SplitWords>;
}
