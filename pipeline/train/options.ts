/**
 * What a training run takes and gives back: its options (hyper-parameters, callbacks), the
 * snapshot a resumed run continues from, and the loss points it logs. Types only, shared by
 * the tfjs loop (./loop.ts), the WebGPU loop (./webgpu/loop.ts) and the stages.
 */
import type { KlalQueries } from "../model/losses.ts";

/** Hyper-parameters of one training run. */
export interface TrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  optimizer: "adamw" | "adam";
  weightDecay: number;
  warmup: number;
  logEvery: number;
  /** KLAL weight; 0 trains with NTP only (KLAL is still measured for the curves). */
  lambda: number;
  /** Supervised layer indices. */
  layers: number[];
  /** Which answer positions KLAL supervises (default `all`). */
  queries?: KlalQueries;
  /**
   * What lambda weighs: `attention` (KLAL on the listed layers) or `pointer` (a linear head
   * on the first answer position's hidden state, cross-entropy against the same P; the
   * attention is left alone). Default `attention`.
   */
  supervision?: "attention" | "pointer";
  seed: number;
  /** Stage label for the progress line. */
  label: string;
  /** Clip the global gradient norm to this (0 = off). */
  clipNorm?: number;
  /** Call `onEval` after every this many steps and after the last (0 = never). */
  evalEvery?: number;
  /** Measures the model mid-training (learning curves); must not change it. */
  onEval?: (step: number) => void | Promise<void>;
  /** Call `onCheckpoint` with the full training state every this many steps (0 = never). */
  checkpointEvery?: number;
  /** Persists a snapshot (atomically); training resumes from it exactly. */
  onCheckpoint?: (snapshot: TrainSnapshot) => void | Promise<void>;
  /** Continue from this snapshot instead of step 0 (model weights already restored). */
  resume?: TrainSnapshot;
  /** Called at every logged step with the loss parts, learning rate and gradient norm. */
  onMetrics?: (point: MetricPoint) => void;
}

/** One logged step as the live metrics hold it (./live_metrics.ts). */
export interface MetricPoint extends LossPoint {
  /** The learning rate the step used. */
  lr: number;
  /** The global gradient norm before clipping. */
  grad_norm: number;
  /** Training samples per second since the previous logged step (or the start). */
  samples_per_second: number;
}

/** Everything besides the model weights that a resumed run needs to continue exactly. */
export interface TrainSnapshot {
  /** Steps completed. */
  step: number;
  optimizer: { t: number; m: Float32Array; v: Float32Array };
  order: { rng: number; order: number[]; cursor: number };
  log: LossPoint[];
  /** Seconds spent before the snapshot (for samples/s). */
  seconds: number;
  /** The pointer head's weights, in a pointer-supervised run. */
  pointer?: Float32Array;
}

/** One logged point of the loss curve. */
export interface LossPoint {
  step: number;
  ntp: number;
  klal: number;
  total: number;
}

/** What a training run reports. */
export interface TrainResult {
  log: LossPoint[];
  seconds: number;
  samplesPerSecond: number;
}
