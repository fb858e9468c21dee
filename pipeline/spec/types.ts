/**
 * The validated, fully-defaulted experiment spec (see pipeline/spec/mod.ts for the parser). Each
 * key's type, range, default and doc are declared in pipeline/spec/schema.ts (which checks
 * that its keys are these interfaces' keys); docs/spec-keys.md lists them all. Upper bounds
 * on sizes, steps, seeds and sweeps are in pipeline/spec/limits.ts; the rule for names that
 * become paths (`name`, arm names) in pipeline/spec/names.ts.
 */
import type { DataSource } from "../../tasks/task.ts";

export const BACKENDS = ["auto", "webgpu", "wasm", "cpu"] as const;
export type BackendName = typeof BACKENDS[number];

export interface TaskSpec {
  /** Registry name, e.g. "grid-patch". */
  name: string;
  image_size: number;
  /** Training samples per seed; "all": every row of `source.train` (real data only). */
  train: number | "all";
  /** Held-out test samples (one set, generated from `test_seed`); "all": every test row. */
  test: number | "all";
  /** Real data: the seed that draws a subset of rows (the same for every fine-tune seed). */
  subset_seed: number;
  /** Seed of the held-out set; neither it nor it + 1 (validation) may be one of `seeds`. */
  test_seed: number;
  /** Task parameters, merged with the task's defaults. */
  params: Record<string, unknown>;
  /**
   * Real-format tasks only: dataset files per split (absolute paths after validation).
   * A split without a source uses the task's offline stand-in generator.
   */
  source?: {
    train?: DataSource;
    val?: DataSource;
    test?: DataSource;
    /**
     * More test sets by name, each evaluating the same trainings (RefCOCO's testA, testB):
     * their own data and eval stages, reported beside the main test set.
     */
    tests?: Record<string, DataSource>;
  };
}

export interface ModelSpec {
  name: "tiny-vlm";
  patch_size: number;
  d_model: number;
  layers: number;
  heads: number;
  /** MLP hidden size = mlp_ratio * d_model. */
  mlp_ratio: number;
  /**
   * Init std of the (factorised row + column, and text) position embeddings. Default 0.3:
   * after Base pretraining, Grid Patch fine-tuning learned the position read-out reliably
   * with 0.3 (43-46% at 500 steps, 2 seeds) but not with 0.02-0.1 (12-20%) or 0.5 (5%);
   * measured on a validation seed, not the test seed.
   */
  position_std: number;
}

/** The shared pretrained Base checkpoint: generic image-text mix, never task data. */
export interface BaseSpec {
  steps: number;
  batch_size: number;
  lr: number;
  /** Number of generic pretraining samples. */
  train: number;
  /**
   * Seed of the pretraining data and the model's init, or "run": one Base per seed of
   * `seeds`, pretrained from that seed, which that seed's fine-tunes (and the Base arm's
   * evaluation of that seed) start from; or a list: one Base per seed listed, `seeds` split
   * among them in order in equal blocks (./bases.ts).
   */
  seed: number | "run" | number[];
  /**
   * KLAL weight of pretraining, toward the mix's own maps on every layer (0: NTP only). Still
   * generic data: the maps are the mix's shapes, never a task's.
   */
  lambda: number;
  /**
   * The pretraining mix's parameters (tasks/pretrain_mix.ts: `kinds`, `max_shapes`,
   * `colors`), merged with its defaults; the default mix is the original four kinds.
   */
  mix: Record<string, unknown>;
}

export interface TrainSpec {
  steps: number;
  batch_size: number;
  lr: number;
  /**
   * Learning rates to choose from (empty: use `lr`). Each fine-tuned arm is fine-tuned on the
   * first seed with each of them and evaluated on the validation set; its fine-tunes then
   * use the rate with the best validation accuracy (ties: the smaller rate).
   */
  lr_grid: number[];
  optimizer: "adamw" | "adam";
  weight_decay: number;
  /** Linear warm-up steps, then cosine decay to 10% of lr. */
  warmup: number;
  /** Record the loss every this many steps. */
  log_every: number;
  /**
   * Evaluate held-out accuracy and target attention every this many steps (0 = never), on
   * `eval_samples` validation samples generated from seed `task.test_seed + 1`.
   */
  eval_every: number;
  eval_samples: number;
  /** Save a resumable checkpoint every this many steps (0 = never); not part of any key. */
  checkpoint_every: number;
}

export interface ArmSpec {
  /** false: evaluate the Base checkpoint as is. */
  finetune: boolean;
  /** KLAL weight; 0 = plain NTP. */
  lambda: number;
  /** Supervised layers: "all" or 0-based layer indices. */
  layers: "all" | number[];
  /**
   * Which ground-truth maps lambda's loss pulls toward: the task's own (`task`), another
   * sample's (`shuffled`: a control with the same map statistics but the wrong place), or
   * uniform over the visual tokens (`uniform`).
   */
  target: "task" | "shuffled" | "uniform";
  /**
   * What lambda weighs: KLAL on the attention (`attention`), or a pointer head on the first
   * answer position trained with cross-entropy against the same P (`pointer`: the control
   * with the same localisation signal that leaves attention alone).
   */
  supervision: "attention" | "pointer";
  /** Answer positions KLAL supervises: every one (`all`, the paper's) or the first only. */
  queries: "all" | "first";
  /** The seeds the arm is fine-tuned on: every seed of the spec, or some of them. */
  seeds: "all" | number[];
}

export const EXECUTORS = ["local", "slurm"] as const;
export type ExecutorName = typeof EXECUTORS[number];

/**
 * Where stages run. Not part of any cache key: a stage computes the same thing on a
 * laptop and on a cluster node. `--executor` on the command line overrides `name`.
 */
export interface ExecutorSpec {
  name: ExecutorName;
  /** Slurm partition (`--partition`). */
  partition?: string;
  /** Slurm time limit per stage, e.g. "30" (minutes), "2:00:00", "1-00:00:00". */
  time?: string;
  /** CPUs per stage (`--cpus-per-task`). */
  cpus?: number;
  /** Generic resources per stage, e.g. "gpu:1" (`--gres`). */
  gres?: string;
  /** Extra sbatch options, e.g. ["--qos=long", "--account=lab"]. */
  sbatch: string[];
  /**
   * Per stage kind, resources over the ones above (data, choose-lr and report stages ask for
   * no gres unless given here).
   */
  stages: Record<string, StageResources>;
}

/** The kinds of stage, as `executor.stages` names them (../stages/types.ts checks the list). */
export const STAGE_KIND_NAMES = [
  "data",
  "pretrain",
  "lr-finetune",
  "lr-eval",
  "choose-lr",
  "finetune",
  "eval",
  "report",
] as const;

/** Stage kinds that run on CPU unless executor.stages gives them gres. */
export const CPU_STAGE_KINDS: readonly string[] = ["data", "choose-lr", "report"];

/** One stage kind's Slurm resources (executor.stages.<kind>). */
export interface StageResources {
  partition?: string;
  time?: string;
  cpus?: number;
  /** Generic resources; "" asks for none. */
  gres?: string;
  sbatch?: string[];
}

export interface Spec {
  /** The report folder, reports/<name>/ (pipeline/spec/names.ts); a sweep's points add --LABEL. */
  name: string;
  description: string;
  seeds: number[];
  backend: BackendName;
  task: TaskSpec;
  model: ModelSpec;
  base: BaseSpec;
  train: TrainSpec;
  eval: { batch_size: number };
  arms: Record<string, ArmSpec>;
  /** Dotted path -> values: the runs of a sweep (expanded by pipeline/spec/sweep.ts). */
  sweep?: Record<string, unknown[]>;
  /** Where stages run; present only when the spec has an `executor:` block. */
  executor?: ExecutorSpec;
}
