/**
 * The paper record, `reports/paper/results.json`: Table 1 (every task's Base, NTP and KLAL+NTP
 * arms), Table 2, the λ sweep, the per-layer ablation and the investigations, each with the
 * experiments it came from. Every number the record's table.md, README.md and figures show is
 * in here.
 */

import type { PosterTable2Row } from "../poster.ts";
import type { TaskFloor } from "../types.ts";

/** Accuracy (or another metric) of one arm over seeds: mean, 95% t-interval, the raw values. */
export interface SeedStats {
  mean: number;
  /** null when n < 2. */
  halfWidth: number | null;
  n: number;
  seeds: number[];
  values: number[];
}

/** One arm of one task: held-out accuracy % and the target attention ratio (1 = chance). */
export interface ArmRecord {
  arm: string;
  lambda: number;
  layers: number[];
  accuracy: SeedStats;
  ratio: SeedStats;
  /** The target attention ratio at the first answer position only. */
  ratioFirst?: SeedStats;
  /** Raw share (0-1) of the answer positions' attention on visual tokens. */
  visualShare?: SeedStats;
  /** Accuracy's bootstrap 95% interval over seeds, then test items (null: no item outcomes). */
  bootstrap?: { estimate: number; low: number; high: number } | null;
}

/** KLAL+NTP against another arm of the same task, paired over seeds. */
export interface ComparisonRecord {
  /** The other arm's key (its column: NTP, or a control). */
  against: string;
  meanDiff: number;
  /** Paired t-test over seeds (null with fewer than two). */
  p: number | null;
  /** Holm-adjusted over every comparison in the record's Table 1. */
  pHolm: number | null;
  /** Bootstrap 95% interval of the difference (seeds, then items; null: not available). */
  bootstrap: { low: number; high: number } | null;
  seeds: number[];
}

/** Validation learning curves of one task (accuracy % every eval_every steps, mean over seeds). */
export interface LearningRecord {
  experiment: string;
  steps: number;
  /** Per arm key: the mean curve. */
  curves: Record<string, { step: number; accuracy: number; ratio: number }[]>;
  /**
   * Steps to reach `threshold` (NTP's final validation accuracy, mean over seeds) per arm and
   * seed (null: not reached), and the steps at which KLAL+NTP's mean curve first reaches it
   * over the steps NTP's mean curve takes (null when KLAL+NTP's never does).
   */
  threshold: number | null;
  stepsToThreshold: Record<string, (number | null)[]>;
  klalOverNtpSteps: number | null;
}

/** One task's row of Table 1. */
export interface Table1Record {
  label: string;
  /** Share (%) of the most common answer in the test set: accuracy of always guessing it. */
  majority: number | null;
  /**
   * The fixed-answer floor on the test set: what one constant answer scores (the majority
   * answer; the best constant point or box where answers are scored by distance or overlap).
   */
  floor: TaskFloor | null;
  /**
   * What KLAL+NTP is measured against: the larger of the floor and NTP's mean, and KLAL+NTP's
   * distance above it (a paired t-test when it is NTP, a one-sample t-test against the constant
   * when it is the floor). null without a floor or without both fine-tuned arms.
   */
  reference: ReferenceRecord | null;
  base: ArmRecord | null;
  ntp: ArmRecord | null;
  klal: ArmRecord | null;
  /** The shuffled-map control: KLAL at the same λ toward another sample's map. */
  shuffled?: ArmRecord | null;
  /** The pointer-head control: the same map supervising a separate pointer head. */
  pointer?: ArmRecord | null;
  /** KLAL+NTP minus NTP, paired over seeds. */
  gain: { meanDiff: number; p: number | null; seeds: number[] } | null;
  /** KLAL+NTP against NTP and each control, with record-wide Holm p. */
  comparisons?: ComparisonRecord[];
  poster: { base: number; ntp: number; klal: number } | null;
}

/** The larger of the fixed-answer floor and NTP, and how far each arm is from it. */
export interface ReferenceRecord {
  against: "floor" | "NTP";
  /** max(floor, NTP mean), %. */
  accuracy: number;
  /** NTP mean minus the floor, points (≤ 0: NTP has not left the fixed-answer prior). */
  ntpOverFloor: number;
  /** KLAL+NTP mean minus the reference, points. */
  klalOverReference: number;
  /** p of KLAL+NTP against the reference, over the seeds (null with fewer than two). */
  p: number | null;
}

/**
 * The paper's regime, task by task: whether the Base is above the fixed-answer floor (the
 * lower end of its bootstrap interval over test items above it, or its mean when there is no
 * interval) and whether NTP's mean is at least `NTP_MARGIN` points above it.
 */
export interface RegimeRecord {
  /** Points NTP must clear the floor by. */
  ntpMargin: number;
  perTask: Record<string, {
    baseOverFloor: number | null;
    baseAbove: boolean;
    ntpOverFloor: number | null;
    ntpAbove: boolean;
  }>;
  /** Tasks (in Table 1's order) where the Base is above the floor. */
  baseAbove: string[];
  /** Tasks where NTP is at least `ntpMargin` points above the floor. */
  ntpAbove: string[];
  baseAboveCount: number;
  ntpAboveCount: number;
}

/** Where a part of the record came from. */
export interface SourceRecord {
  part: "table1" | "table1Long" | "lambda" | "lambdaLong" | "layers" | "investigation";
  experiment: string;
  createdAt: string;
  backend: string;
  stagesRan: number;
  stagesCached: number;
  /** Sum of the seconds of every stage this experiment shows (ran or first computed). */
  stageSeconds: number;
}

/** `reports/paper/results.json`. */
export interface PaperRecord {
  record: "paper";
  createdAt: string;
  hardware: { cpu: string; cores: number; gpu: string | null };
  backend: string;
  sources: SourceRecord[];
  /** Stage seconds summed once per distinct cache key over all sources. */
  computeSeconds: number;
  setup: {
    imageSize: number;
    patchSize: number;
    visualTokens: number;
    dModel: number;
    layers: number;
    heads: number;
    baseSteps: number;
    /** KLAL weight of the Base's pretraining toward the mix's own maps (0: NTP only). */
    baseLambda?: number;
    /** The pretraining mix's question kinds, comma-separated. */
    baseKinds?: string | null;
    /** Generic pretraining samples. */
    baseSamples?: number;
    trainSteps: number;
    batchSize: number;
    lr: number;
    trainSamples: number | "all";
    testSamples: number | "all";
    testSeed: number;
    seeds: number[];
    /** Samples seen in fine-tuning: steps x batch. */
    samplesSeen: number;
    /** How `table1[task].floor` was computed (which test sets, which generators). */
    floorNote?: string;
    /**
     * The task generators that produced the record, when they differ from the current ones:
     * their commit, Line Tracing's node count, the share (%) of test samples a position
     * shortcut answered, and the image size of the record that will replace it. Set by hand
     * in the committed record (collecting cannot know it).
     */
    generators?: {
      commit: string;
      lineTracingNodes: number;
      lineTracingShortcutShare: number;
      nextRecordImageSize: number;
    };
  };
  /** Task names in Table 1's order. */
  tasks: string[];
  table1: Record<string, Table1Record>;
  /** Which tasks show the paper's regime (a Base above the floor, an NTP that learns). */
  regime?: RegimeRecord;
  /** Learning curves on validation data, per task that logged them. */
  learning?: Record<string, LearningRecord>;
  /** Table 1 again with longer fine-tuning (same setting otherwise), when it was run. */
  table1Long: {
    experiment: string;
    steps: number;
    samplesSeen: number;
    tasks: string[];
    table1: Record<string, Table1Record>;
  } | null;
  table2: {
    lineIntersection: SeedStats | null;
    lineTracing: SeedStats | null;
    /** The same from the longer Table 1, when it was run. */
    long:
      | { steps: number; lineIntersection: SeedStats | null; lineTracing: SeedStats | null }
      | null;
    quoted: readonly PosterTable2Row[];
  };
  /** Per task: one point per λ (λ = 0 is NTP), keyed by String(λ). */
  lambda: Record<string, { values: number[]; points: Record<string, ArmRecord> }>;
  /** The λ sweep again with longer fine-tuning, when it was run. */
  lambdaLong: {
    experiment: string;
    steps: number;
    tasks: Record<string, { values: number[]; points: Record<string, ArmRecord> }>;
  } | null;
  /** Where KLAL did not win: what was tried, on validation data. */
  investigation: Investigation;
  /** The per-layer ablation on one task: NTP, then KLAL on each layer set. */
  layers: {
    task: string;
    ntp: ArmRecord | null;
    points: Record<string, ArmRecord>;
    order: string[];
  } | null;
}

/** The experiments a record is collected from (their report names under reports/). */
export interface PaperSources {
  /** One experiment, or several (e.g. one per task), whose tasks are merged. */
  table1: string | string[];
  /** Table 1 with longer fine-tuning. */
  table1Long?: string;
  lambda?: string;
  /** The λ sweep with longer fine-tuning. */
  lambdaLong?: string;
  layers?: string;
  /** Investigation: longer training (a task sweep; its per-task reports are read). */
  long?: string;
  /** Investigation: ground-truth sharpness (a sweep over task.params.sigma). */
  sigma?: string;
  /** Investigation: what it takes to learn Line Tracing (NTP and KLAL+NTP, longer). */
  tracing?: string;
  /** Confirmation on the test seed of a validation finding (NTP and KLAL+NTP arms). */
  confirm?: string;
}

/** One arm's run in an investigation: final validation accuracy, ratio and the curve. */
export interface ProbeArm {
  arm: string;
  accuracy: SeedStats;
  ratio: SeedStats;
  /** Validation accuracy % and target attention ratio during fine-tuning (mean over seeds). */
  curve: { step: number; accuracy: number; ratio: number }[];
}

/** Investigations run on validation data (never the test seed). */
export interface Investigation {
  long: {
    experiment: string;
    steps: number;
    testSeed: number;
    tasks: Record<string, { ntp: ProbeArm | null; klal: ProbeArm | null }>;
  } | null;
  sigma: {
    experiment: string;
    steps: number;
    testSeed: number;
    tasks: Record<string, { values: number[]; points: Record<string, ProbeArm> }>;
  } | null;
  /** Line Tracing trained longer (absent in records collected before it existed). */
  tracing?: {
    experiment: string;
    steps: number;
    testSeed: number;
    tasks: Record<string, { ntp: ProbeArm | null; klal: ProbeArm | null }>;
  } | null;
  /** The confirmation run on the test seed: Table 1's columns for its task(s). */
  confirm: {
    experiment: string;
    steps: number;
    /** The task parameters it changed, as run (e.g. sigma). */
    params: Record<string, unknown>;
    tasks: string[];
    table1: Record<string, Table1Record>;
  } | null;
}
