/**
 * Training loop: L_total = L_NTP + lambda * L_KLAL, AdamW, warm-up then cosine decay.
 * Every step runs inside tf.tidy (or disposes explicitly): the tensor count stays flat.
 */
import * as tf from "@tensorflow/tfjs";
import { type Encoded, queryCount, queryStart } from "../model/batch.ts";
import {
  klalLossOverRows,
  type KlalQueries,
  ntpLoss,
  pointerLoss,
  selectQueries,
} from "../model/losses.ts";
import type { TinyVlm } from "../model/tiny_vlm.ts";
import { fusedKernelsEnabled } from "../kernels/native_matmul.ts";
import { adamwUpdate, sumOfSquares } from "../kernels/native_fused.ts";
import { Progress } from "./progress.ts";
import { Rng, seedFrom } from "../lib/rng.ts";
import { trainOnWebgpu, webgpuTrainerEnabled } from "./webgpu/loop.ts";

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

/** One batch as tensors (caller disposes). */
export interface BatchTensors {
  patches: tf.Tensor3D;
  text: tf.Tensor2D;
  keyMask: tf.Tensor2D;
  nextToken: tf.Tensor2D;
  lossMask: tf.Tensor2D;
  queryMask: tf.Tensor2D;
  target: tf.Tensor2D;
}

/** Copy the rows `indices` of `data` into tensors. */
export function batchTensors(data: Encoded, indices: number[]): BatchTensors {
  const { layout } = data;
  const b = indices.length;
  const tv = layout.visual;
  const tt = layout.prompt + layout.answer;
  const t = tv + tt;
  const tq = queryCount(layout);
  const rows = <T extends Float32Array | Int32Array>(src: T, width: number, out: T): T => {
    indices.forEach((row, i) => out.set(src.subarray(row * width, (row + 1) * width), i * width));
    return out;
  };
  const pd = tv * layout.patchDim;
  return {
    patches: tf.tensor3d(rows(data.patches, pd, new Float32Array(b * pd)), [
      b,
      tv,
      layout.patchDim,
    ]),
    text: tf.tensor2d(rows(data.text, tt, new Int32Array(b * tt)), [b, tt], "int32"),
    keyMask: tf.tensor2d(rows(data.keyMask, t, new Float32Array(b * t)), [b, t]),
    nextToken: tf.tensor2d(rows(data.nextToken, t, new Int32Array(b * t)), [b, t], "int32"),
    lossMask: tf.tensor2d(rows(data.lossMask, t, new Float32Array(b * t)), [b, t]),
    queryMask: tf.tensor2d(rows(data.queryMask, tq, new Float32Array(b * tq)), [b, tq]),
    target: tf.tensor2d(rows(data.target, tv, new Float32Array(b * tv)), [b, tv]),
  };
}

/** Dispose every tensor of a batch. */
export function disposeBatch(batch: BatchTensors): void {
  for (const t of Object.values(batch)) (t as tf.Tensor).dispose();
}

/**
 * The attention slices KLAL supervises: for each layer in `layers`, the rows of the
 * answer-query positions and the columns of the visual tokens, [B, H, Tq, Tv].
 */
export function answerToVisual(
  attentions: tf.Tensor4D[],
  layers: number[],
  data: Pick<Encoded, "layout">,
): tf.Tensor4D[] {
  const q0 = queryStart(data.layout);
  const tq = queryCount(data.layout);
  const tv = data.layout.visual;
  return layers.map((l) => tf.slice(attentions[l], [0, 0, q0, 0], [-1, -1, tq, tv]));
}

/** Supervision options of {@link lossParts} beyond lambda and the layers. */
export interface LossOptions {
  queries?: KlalQueries;
  /** The pointer head [d, Tv] of a pointer-supervised run; lambda then weighs its loss. */
  pointer?: tf.Variable;
}

/** Loss parts of one batch; `total` is what the gradient follows. */
export function lossParts(
  model: TinyVlm,
  batch: BatchTensors,
  data: Pick<Encoded, "layout">,
  lambda: number,
  layers: number[],
  options: LossOptions = {},
): { ntp: tf.Scalar; klal: tf.Scalar; total: tf.Scalar } {
  const { pointer } = options;
  const out = model.forward(batch);
  const ntp = ntpLoss(out.logits, batch.nextToken, batch.lossMask);
  const klal = klalLossOverRows(
    layers.map((l) => out.attentions[l]),
    batch.target,
    selectQueries(batch.queryMask, options.queries ?? "all"),
    queryStart(data.layout),
  );
  if (!(lambda > 0)) return { ntp, klal, total: ntp };
  if (!pointer) return { ntp, klal, total: tf.add(ntp, tf.mul(klal, lambda)) as tf.Scalar };
  // The pointer reads the position that predicts the first answer token.
  const [b, , d] = out.hidden.shape;
  const q0 = queryStart(data.layout);
  const state = tf.reshape(tf.slice(out.hidden, [0, q0, 0], [b, 1, d]), [b, d]); // [B, d]
  const guess = pointerLoss(tf.matMul(state, pointer) as tf.Tensor2D, batch.target);
  return { ntp, klal, total: tf.add(ntp, tf.mul(guess, lambda)) as tf.Scalar };
}

/**
 * Ground-truth maps for a control arm, as a copy of `data`: `shuffled` gives each sample
 * another sample's map (a random cyclic derangement of the rows, seeded), so the maps keep
 * their shape statistics but no longer point at this image's answer; `uniform` spreads P
 * evenly over the visual tokens.
 */
export function controlTargets(data: Encoded, kind: "shuffled" | "uniform", seed: number): Encoded {
  const tv = data.layout.visual;
  const target = new Float32Array(data.target.length);
  if (kind === "uniform") {
    target.fill(1 / tv);
  } else {
    const order = new Rng(seedFrom(seed, "shuffled-targets")).shuffle(
      Array.from({ length: data.n }, (_, i) => i),
    );
    // Row order[i] takes the map of order[i + 1]: no row keeps its own when n >= 2.
    order.forEach((row, i) => {
      const from = order[(i + 1) % data.n];
      target.set(data.target.subarray(from * tv, (from + 1) * tv), row * tv);
    });
  }
  return { ...data, target };
}

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

/**
 * AdamW (decoupled weight decay on matrices only) over a model's variables.
 *
 * The moments live in two flat buffers and the update runs once over all parameters:
 * ~150 kernels a step instead of ~560 for a per-variable loop (kernel launches, not
 * FLOPs, dominate a small model's step on wasm). With the fused kernels of
 * model/native_fused.ts (wasm + OpenBLAS) it is two: the gradient norm, then one pass.
 */
export class AdamW {
  private readonly m: tf.Variable;
  private readonly v: tf.Variable;
  private readonly sizes: number[];
  private t = 0;

  constructor(
    private readonly variables: tf.Variable[],
    private readonly weightDecay: number,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly epsilon = 1e-8,
  ) {
    this.sizes = variables.map((x) => x.size);
    const total = this.sizes.reduce((a, b) => a + b, 0);
    this.m = tf.tidy(() => tf.variable(tf.zeros([total]), false));
    this.v = tf.tidy(() => tf.variable(tf.zeros([total]), false));
  }

  /**
   * One update with gradients in the same order as the variables. With `clipNorm` > 0 the
   * gradients are first scaled so their global L2 norm is at most `clipNorm`.
   */
  async apply(grads: tf.Tensor[], lr: number, clipNorm = 0): Promise<number> {
    if (fusedKernelsEnabled()) return await this.applyFused(grads, lr, clipNorm);
    // Reads are asynchronous so the loop also runs on backends without synchronous reads.
    const [g, norm] = tf.tidy(() => {
      const flat = tf.concat(grads.map((x) => tf.reshape(x, [-1]))); // [P]
      return [flat, tf.sqrt(tf.sum(tf.square(flat)))];
    });
    const gradNorm = (await norm.data())[0];
    if (!Number.isFinite(gradNorm)) {
      tf.dispose([g, norm]);
      return gradNorm; // the caller stops; nothing is updated
    }
    this.t++;
    const { beta1, beta2, epsilon } = this;
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    tf.tidy(() => {
      const clipped = clipNorm > 0
        ? tf.mul(g, tf.minimum(tf.div(clipNorm, tf.maximum(norm, 1e-12)), 1))
        : g;
      const m = tf.add(tf.mul(this.m, beta1), tf.mul(clipped, 1 - beta1));
      const v = tf.add(tf.mul(this.v, beta2), tf.mul(tf.square(clipped), 1 - beta2));
      this.m.assign(m);
      this.v.assign(v);
      // lr * m_hat / (sqrt(v_hat) + eps), with the bias corrections folded into scalars.
      const step = tf.div(
        tf.mul(m, lr / c1),
        tf.add(tf.sqrt(v), epsilon * Math.sqrt(c2)),
      );
      const scaled = tf.mul(step, Math.sqrt(c2));
      const parts = tf.split(scaled, this.sizes);
      this.variables.forEach((x, i) => {
        const decayed = this.weightDecay > 0 && x.rank >= 2
          ? tf.mul(x, 1 - lr * this.weightDecay)
          : x;
        x.assign(tf.sub(decayed, tf.reshape(parts[i], x.shape)));
      });
    });
    tf.dispose([g, norm]);
    return gradNorm;
  }

  /**
   * The same update through the fused kernels (wasm + OpenBLAS): the norm by sdot per
   * gradient, then one pass over every parameter, with no flat copy of the gradients.
   */
  private async applyFused(grads: tf.Tensor[], lr: number, clipNorm: number): Promise<number> {
    const squares = sumOfSquares(grads);
    const gradNorm = Math.sqrt((await squares.data())[0]);
    squares.dispose();
    if (!Number.isFinite(gradNorm)) return gradNorm; // the caller stops; nothing is updated
    this.t++;
    const { beta1, beta2, epsilon } = this;
    tf.tidy(() => {
      const [m, v, ...values] = adamwUpdate(this.m, this.v, grads, this.variables, {
        lr,
        beta1,
        beta2,
        epsilon,
        c1: 1 - beta1 ** this.t,
        c2: 1 - beta2 ** this.t,
        scale: clipNorm > 0 ? Math.min(clipNorm / Math.max(gradNorm, 1e-12), 1) : 1,
        weightDecay: this.weightDecay,
      });
      this.m.assign(m);
      this.v.assign(v);
      this.variables.forEach((x, i) => x.assign(values[i]));
    });
    return gradNorm;
  }

  /** The optimizer state, copied out. */
  async snapshot(): Promise<TrainSnapshot["optimizer"]> {
    return {
      t: this.t,
      m: await this.m.data() as Float32Array,
      v: await this.v.data() as Float32Array,
    };
  }

  /** Restore a snapshot taken from an optimizer over the same variables. */
  restore(state: TrainSnapshot["optimizer"]): void {
    if (state.m.length !== this.m.size) {
      throw new Error(`optimizer snapshot has ${state.m.length} values, expected ${this.m.size}`);
    }
    this.t = state.t;
    tf.tidy(() => {
      this.m.assign(tf.tensor1d(state.m));
      this.v.assign(tf.tensor1d(state.v));
    });
  }

  /** Free the moment estimates. */
  dispose(): void {
    this.m.dispose();
    this.v.dispose();
  }
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

let pointerInstances = 0;

/** Train `model` in place on `data`. Throws, naming the step and loss part, on NaN/Inf. */
export async function train(
  model: TinyVlm,
  data: Encoded,
  options: TrainOptions,
): Promise<TrainResult> {
  // On WebGPU, attention-supervised runs train through the whole-step trainer.
  if (webgpuTrainerEnabled(tf.getBackend(), options.supervision)) {
    return await trainOnWebgpu(model, data, options);
  }
  const variables: tf.Variable[] = model.variables();
  const supervision = options.supervision ?? "attention";
  // The pointer head belongs to the run, not to the model: it is trained beside it and
  // dropped afterwards (evaluation reads the language head only).
  const pointer = supervision === "pointer"
    ? tf.tidy(() =>
      tf.variable(
        tf.randomNormal(
          [model.config.dModel, data.layout.visual],
          0,
          0.02,
          "float32",
          seedFrom(options.seed, "pointer"),
        ),
        true,
        `pointer-${pointerInstances++}`,
      )
    )
    : undefined;
  if (pointer) variables.push(pointer);
  const optimizer = new AdamW(
    variables,
    options.optimizer === "adamw" ? options.weightDecay : 0,
  );
  const order = new BatchOrder(data.n, options.seed);
  const progress = new Progress(options.label, options.steps, options.resume?.step ?? 0);
  const log: LossPoint[] = [];
  const clipNorm = options.clipNorm ?? 1;
  const started = performance.now();
  let first = 0;
  let earlier = 0;
  if (options.resume) {
    optimizer.restore(options.resume.optimizer);
    const saved = options.resume.pointer;
    if (pointer && saved) tf.tidy(() => pointer.assign(tf.tensor(saved, pointer.shape)));
    order.restore(options.resume.order);
    log.push(...options.resume.log);
    first = options.resume.step;
    earlier = options.resume.seconds;
  }
  try {
    for (let step = first; step < options.steps; step++) {
      const batch = batchTensors(data, order.next(options.batchSize));
      let ntp: tf.Scalar | undefined;
      let klal: tf.Scalar | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const parts = lossParts(model, batch, data, options.lambda, options.layers, {
          queries: options.queries,
          pointer,
        });
        ntp = tf.keep(parts.ntp);
        klal = tf.keep(parts.klal);
        return parts.total;
      }, variables);
      disposeBatch(batch);
      const gradList = variables.map((x) => grads[x.name]);
      const values = {
        ntp: (await ntp!.data())[0],
        klal: (await klal!.data())[0],
        total: (await value.data())[0],
      };
      ntp!.dispose();
      klal!.dispose();
      value.dispose();
      for (const [part, v] of Object.entries(values)) {
        if (!Number.isFinite(v)) {
          tf.dispose(gradList);
          throw new Error(`${options.label}: ${part} loss is ${v} at step ${step}`);
        }
      }
      const gradNorm = await optimizer.apply(gradList, learningRate(step, options), clipNorm);
      tf.dispose(gradList);
      if (!Number.isFinite(gradNorm)) {
        throw new Error(`${options.label}: gradient norm is ${gradNorm} at step ${step}`);
      }
      if (logDue(step, options)) log.push({ step, ...values });
      if (evalDue(step, options)) await options.onEval!(step + 1);
      progress.update(step + 1, values, options.batchSize);
      if (checkpointDue(step, options)) {
        await options.onCheckpoint!({
          step: step + 1,
          optimizer: await optimizer.snapshot(),
          order: order.snapshot(),
          log: [...log],
          seconds: earlier + (performance.now() - started) / 1000,
          ...(pointer ? { pointer: await pointer.data() as Float32Array } : {}),
        });
      }
    }
  } finally {
    optimizer.dispose();
    pointer?.dispose();
    progress.done();
  }
  const seconds = (performance.now() - started) / 1000;
  const steps = options.steps - first;
  return { log, seconds: earlier + seconds, samplesPerSecond: steps * options.batchSize / seconds };
}
