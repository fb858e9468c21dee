/**
 * When things happen in a training run, shared by the tfjs loop (./loop.ts) and the WebGPU
 * loop (./webgpu/loop.ts): the learning-rate schedule (linear warm-up, cosine decay), the
 * steps that log, evaluate or checkpoint, and the seeded order of the batches.
 */
import type { LossPoint, TrainOptions, TrainSnapshot } from "./options.ts";
import { Rng, seedFrom } from "../lib/rng.ts";

/** Whether step `step` (0-based) records a loss point. */
export function logDue(step: number, options: TrainOptions): boolean {
  return step % options.logEvery === 0 || step === options.steps - 1;
}

/** Whether `onEval` runs after step `step` (every evalEvery steps and after the last). */
export function evalDue(step: number, options: TrainOptions): boolean {
  const every = options.evalEvery ?? 0;
  return !!options.onEval && every > 0 && ((step + 1) % every === 0 || step === options.steps - 1);
}

/** Whether `onCheckpoint` runs after step `step` (every checkpointEvery steps, not the last). */
export function checkpointDue(step: number, options: TrainOptions): boolean {
  const ckpt = options.checkpointEvery ?? 0;
  return !!options.onCheckpoint && ckpt > 0 && (step + 1) % ckpt === 0 && step + 1 < options.steps;
}

/** Learning rate at `step` (0-based): linear warm-up, then cosine decay to 10%. */
export function learningRate(step: number, options: TrainOptions): number {
  const { lr, warmup, steps } = options;
  if (step < warmup) return lr * (step + 1) / warmup;
  const progress = (step - warmup) / Math.max(1, steps - warmup);
  return lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Batch index order: a fresh seeded permutation of the data every epoch. */
export class BatchOrder {
  private readonly rng: Rng;
  private order: number[] = [];
  private cursor = 0;

  constructor(private readonly n: number, seed: number) {
    this.rng = new Rng(seedFrom(seed, "batches"));
  }

  /** The order's state, copied out. */
  snapshot(): TrainSnapshot["order"] {
    return { rng: this.rng.getState(), order: [...this.order], cursor: this.cursor };
  }

  /** Continue from a snapshot. */
  restore(state: TrainSnapshot["order"]): void {
    this.rng.setState(state.rng);
    this.order = [...state.order];
    this.cursor = state.cursor;
  }

  /** The next `size` indices. */
  next(size: number): number[] {
    const out: number[] = [];
    while (out.length < size) {
      if (this.cursor >= this.order.length) {
        this.order = this.rng.shuffle(Array.from({ length: this.n }, (_, i) => i));
        this.cursor = 0;
      }
      out.push(this.order[this.cursor++]);
    }
    return out;
  }
}

/**
 * Hands each logged step to `options.onMetrics` with the samples per second since the last
 * logged step (or since the meter was made), so that a live view shows the current speed.
 */
export class StepMeter {
  private last = performance.now();
  private lastStep: number;

  constructor(private readonly options: TrainOptions) {
    this.lastStep = (options.resume?.step ?? 0) - 1;
  }

  logged(step: number, values: Omit<LossPoint, "step">, lr: number, gradNorm: number): void {
    const now = performance.now();
    const samples = (step - this.lastStep) * this.options.batchSize;
    const seconds = Math.max((now - this.last) / 1000, 1e-9);
    this.last = now;
    this.lastStep = step;
    this.options.onMetrics?.({
      step,
      ...values,
      lr,
      grad_norm: gradNorm,
      samples_per_second: samples / seconds,
    });
  }
}
