/**
 * The contract between the plan (../run/plan.ts) and the stages: the kinds of stage, a stage
 * as the plan builds it and as the runner resolves it, and one params type per kind. The plan
 * builds each stage's params as its kind's type and the stage module reads them typed, so a
 * params field exists for the compiler from the spec to the code that uses it; the
 * `*_KEYS_NOT_IN_PARAMS` checks below make a new spec key a compile error until it is either
 * given to the stages that need it or listed as one that changes no stage's result.
 *
 * Type-only but for the one rule both sides share (which layers a fine-tune's KLAL covers), so
 * that a stage's import closure, and so its code version, gains nothing else by importing it.
 */
import type { VocabularyReport } from "../report/types.ts";
import type { DataSource } from "../../tasks/task.ts";
import type { ArmSpec, BaseSpec, ModelSpec, Spec, TrainSpec } from "../spec/types.ts";
import type { STAGE_KIND_NAMES } from "../spec/types.ts";

/**
 * The kinds of stage, in pipeline order. `lr-finetune` and `lr-eval` are the trials of
 * train.lr_grid: a fine-tune and its evaluation on the validation set, run by the same
 * modules as `finetune` and `eval` but kinds of their own, so that nothing that gathers an
 * arm's results (the report reads every finetune and eval stage) counts them.
 */
export type StageKind =
  | "data"
  | "pretrain"
  | "lr-finetune"
  | "lr-eval"
  | "choose-lr"
  | "finetune"
  | "eval"
  | "report";

/** A data stage: one task's samples for one split and seed. */
export interface DataParams {
  task: string;
  split: "train" | "val" | "test";
  seed: number;
  /** Samples; "all": every row of the source (real data). */
  n: number | "all";
  image_size: number;
  patch_size: number;
  task_params: Record<string, unknown>;
  /** Real data: the annotation file, and its SHA-256 (filled in when the key is resolved). */
  source?: DataSource;
  source_sha256?: string;
  /** The other files the task's loader reads from the source (Task.sourceFiles), by content. */
  files_sha256?: Record<string, string>;
  /** The images the source names (Task.images): how many, and one digest of paths and contents. */
  images?: { count: number; sha256: string };
  /**
   * Real data with a validation set: this many rows of the training file are held out (the
   * same rows for every seed); the val split is them, the train split draws from the rest.
   */
  holdout?: number;
}

/** The model as the Base is built: the spec's model and the vocabulary of every task. */
export interface ModelParams {
  name: ModelSpec["name"];
  patch_size: number;
  d_model: number;
  layers: number;
  heads: number;
  mlp_ratio: number;
  position_std: number;
  vocabulary: string[];
}

/** Pretraining the Base: the mix is in its data's key (an input), not here. */
export interface PretrainParams {
  model: ModelParams;
  base: {
    steps: number;
    batch_size: number;
    lr: number;
    train: number;
    /** This Base's own seed (base.seed: run gives one Base per seed). */
    seed: number;
    /** Only when set, so the keys of NTP-pretrained Bases stay what they were. */
    lambda?: number;
    mix?: undefined;
  };
  backend: Spec["backend"];
}

/** The training settings a fine-tune reads. */
export interface TrainParams {
  steps: number;
  batch_size: number;
  /** Absent when a choose-lr input sets it. */
  lr?: number;
  optimizer: TrainSpec["optimizer"];
  weight_decay: number;
  warmup: number;
  log_every: number;
  eval_every: number;
  eval_samples: number;
  lr_grid?: undefined;
  checkpoint_every?: undefined;
}

/** One arm and seed fine-tuned from the Base. */
export interface FinetuneParams {
  task: string;
  train: TrainParams;
  lambda: number;
  /** Supervised layers, sorted; empty when lambda is 0 (see `finetuneLayers`). */
  layers: number[];
  /** The arm's maps, supervision and positions: only when lambda > 0. */
  target?: ArmSpec["target"];
  supervision?: ArmSpec["supervision"];
  queries?: ArmSpec["queries"];
  seed: number;
  backend: Spec["backend"];
}

/** A checkpoint evaluated on a data entry. */
export interface EvalParams {
  task: string;
  batch_size: number;
  backend: Spec["backend"];
}

/** An arm's learning rate chosen from its trials' validation accuracy. */
export interface ChooseLrParams {
  grid: number[];
  seed: number;
  samples: number;
}

/** The report of a whole plan: the resolved spec, without where its stages ran. */
export interface ReportParams {
  spec: Spec & { executor?: undefined };
  /** Real data: the words its prompts added to the vocabulary, per split. */
  vocabulary?: VocabularyReport;
}

/** Each kind's params. */
export interface StageParams {
  data: DataParams;
  pretrain: PretrainParams;
  "lr-finetune": FinetuneParams;
  "lr-eval": EvalParams;
  "choose-lr": ChooseLrParams;
  finetune: FinetuneParams;
  eval: EvalParams;
  report: ReportParams;
}

/** What every node of the stage graph has, whatever its kind. */
interface StageFields {
  /** Readable id, unique in a plan, e.g. "finetune:klal:s0". */
  id: string;
  /** Input name -> id of the stage that produces it. */
  inputs: Record<string, string>;
  /** Settings that change how a stage runs but not what it produces: not in the key. */
  runtime?: { checkpoint_every?: number };
  /** Arm and seed, for finetune/eval stages (and the trials and choice of train.lr_grid). */
  arm?: string;
  seed?: number;
  /** Eval stages of a further test set (task.source.tests): its name. */
  testSet?: string;
}

/** One node of the stage graph, of kind K (any kind by default: a union narrowed by `kind`). */
export type Stage<K extends StageKind = StageKind> = {
  [k in K]: StageFields & { kind: k; params: StageParams[k] };
}[K];

/** What resolving a stage adds: its key, its inputs' keys and its code version. */
export interface Resolution {
  key: string;
  inputKeys: Record<string, string>;
  codeVersion: string;
}

/** A stage with its key resolved. */
export type ResolvedStage<K extends StageKind = StageKind> = Stage<K> & Resolution;

/**
 * The layers a fine-tune's params name: the arm's supervised layers, sorted, or none when
 * lambda is 0 (they change nothing then, and stay out of the NTP arm's key).
 */
export function finetuneLayers(arm: Pick<ArmSpec, "lambda" | "layers">, modelLayers: number) {
  if (arm.lambda <= 0) return [];
  return arm.layers === "all"
    ? Array.from({ length: modelLayers }, (_, i) => i)
    : [...arm.layers].sort((a, b) => a - b);
}

/**
 * The layers KLAL is computed on in training: the supervised ones; with lambda 0 (no layers in
 * the params) every layer, where KLAL is only measured, for the curves.
 */
export function klalLayers(params: Pick<FinetuneParams, "layers">, modelLayers: number) {
  return params.layers.length > 0
    ? params.layers
    : Array.from({ length: modelLayers }, (_, i) => i);
}

/**
 * The spec keys of a section that no params type carries, with why: a compile error names any
 * other key a params type lacks, so a new spec key is placed before it can be forgotten.
 */
type Unplaced<Section, Params, NotInParams extends keyof Section> = Exclude<
  keyof Section,
  keyof Params | NotInParams
>;
/** True when every key of a section is placed: in its params type or in the excluded list. */
type AllPlaced<T> = [T] extends [never] ? true : { unplaced: T };

/** train: checkpoint_every changes how a run goes, not its result; lr_grid becomes stages. */
const _TRAIN_KEYS_PLACED: AllPlaced<
  Unplaced<TrainSpec, TrainParams, "checkpoint_every" | "lr_grid">
> = true;
/** base: the mix is the pretraining data's (task_params). */
const _BASE_KEYS_PLACED: AllPlaced<Unplaced<BaseSpec, PretrainParams["base"], "mix">> = true;
/**
 * arms: finetune picks the stage kind (eval of the Base, or a fine-tune and its eval); seeds
 * which fine-tunes there are (each has its own seed).
 */
const _ARM_KEYS_PLACED: AllPlaced<Unplaced<ArmSpec, FinetuneParams, "finetune" | "seeds">> = true;
/** executor.stages names every stage kind, and nothing else. */
const _STAGE_KINDS_NAMED: [StageKind] extends [typeof STAGE_KIND_NAMES[number]]
  ? [typeof STAGE_KIND_NAMES[number]] extends [StageKind] ? true : false
  : false = true;
/** model: every key is the Base's. */
const _MODEL_KEYS_PLACED: AllPlaced<Unplaced<ModelSpec, ModelParams, never>> = true;
