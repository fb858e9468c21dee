/** The validated, fully-defaulted experiment spec (see pipeline/spec.ts for the parser). */

export const BACKENDS = ["auto", "webgpu", "wasm", "cpu", "tensorflow", "tensorflow-gpu"] as const;
export type BackendName = typeof BACKENDS[number];

export interface TaskSpec {
  /** Registry name, e.g. "grid-patch". */
  name: string;
  image_size: number;
  /** Training samples per seed. */
  train: number;
  /** Held-out test samples (one set, generated from `test_seed`). */
  test: number;
  /** Seed of the held-out set; neither it nor it + 1 (validation) may be one of `seeds`. */
  test_seed: number;
  /** Task parameters, merged with the task's defaults. */
  params: Record<string, unknown>;
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
   * Init std of the (factorised row + column, and text) position embeddings. 0.1 learned
   * Grid Patch several times faster than 0.02 or 0.3 on a validation seed.
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
  seed: number;
}

export interface TrainSpec {
  steps: number;
  batch_size: number;
  lr: number;
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
}

export interface ArmSpec {
  /** false: evaluate the Base checkpoint as is. */
  finetune: boolean;
  /** KLAL weight; 0 = plain NTP. */
  lambda: number;
  /** Supervised layers: "all" or 0-based layer indices. */
  layers: "all" | number[];
}

export interface Spec {
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
}
