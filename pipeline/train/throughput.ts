/**
 * Training throughput of a model size, measured the same way wherever it is measured: the
 * bench (../commands/bench.ts) and the calibration that decides what `backend: auto` runs
 * (../run/backend_calibrate.ts). A model size is set up once (Grid Patch data, the tiny VLM,
 * AdamW), warmed up, then timed over whole training steps on the backend in use, or on the
 * whole-step WebGPU trainer. Model FLOPs are counted analytically (`trainingFlopsPerSample`).
 */
import * as tf from "@tensorflow/tfjs";
import { PRETRAIN_TASK, TASKS, vocabularyOf } from "../../tasks/registry.ts";
import { backendLabel } from "../kernels/backend.ts";
import { type Encoded, encodeSamples, layoutFor, sequenceLength } from "../model/batch.ts";
import { fusedKernelsEnabled } from "../kernels/native_matmul.ts";
import { matmul } from "../model/ops.ts";
import { TinyVlm } from "../model/tiny_vlm.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { AdamW } from "./adamw.ts";
import { BatchOrder } from "./schedule.ts";
import { batchTensors, disposeBatch } from "../model/batch_tensors.ts";
import { lossParts } from "../model/losses.ts";
import { webgpuDevice, WebGpuTrainer } from "./webgpu/trainer.ts";
import type { AttentionRows } from "./webgpu/attention.ts";
import type { MatmulTile } from "./webgpu/wgsl.ts";

/**
 * The model sizes the bench measures: the quickstart's, the 64 px record setting's (64
 * visual tokens, 8 px patches, d = 64, 2 layers) and the paper's.
 */
export const BENCH_MODELS = {
  quickstart: { imageSize: 32, grid: 4, blobs: 2, dModel: 64, layers: 2, heads: 4, batch: 32 },
  record64: { imageSize: 64, grid: 8, blobs: 4, dModel: 64, layers: 2, heads: 4, batch: 32 },
  paper: { imageSize: 64, grid: 8, blobs: 4, dModel: 128, layers: 4, heads: 4, batch: 64 },
} as const;

/** A model size the bench (and the backend calibration, ../run/backend_choice.ts) can time. */
export interface BenchModel {
  readonly imageSize: number;
  readonly grid: number;
  readonly blobs: number;
  readonly dModel: number;
  readonly layers: number;
  readonly heads: number;
  readonly batch: number;
}

/** Sizes that determine a step's FLOPs. */
export interface FlopShape {
  /** Visual tokens, text tokens. */
  tv: number;
  tt: number;
  patchDim: number;
  vocab: number;
  d: number;
  layers: number;
  mlpRatio: number;
}

/**
 * Matmul FLOPs of one training sample: 3x the forward pass (the backward pass computes two
 * matmuls per forward matmul). Forward, with T = Tv + Tt:
 *
 *   patch embedding 2 Tv P d  +  token embedding (one-hot matmul) 2 Tt V d
 *   + layers x [ qkv 2 T d 3d + scores 2 T T d + attention x values 2 T T d
 *                + projection 2 T d d + MLP 2 * 2 T d (r d) ]
 *   + output head 2 T d V
 */
export function trainingFlopsPerSample(s: FlopShape): number {
  const t = s.tv + s.tt;
  const perLayer = 2 * t * s.d * 3 * s.d + 4 * t * t * s.d + 2 * t * s.d * s.d +
    4 * t * s.d * s.mlpRatio * s.d;
  const forward = 2 * s.tv * s.patchDim * s.d + 2 * s.tt * s.vocab * s.d +
    s.layers * perLayer + 2 * t * s.d * s.vocab;
  return 3 * forward;
}

export interface Setup {
  model: TinyVlm;
  data: Encoded;
  shape: FlopShape;
  batch: number;
}

export function setup(m: BenchModel): Setup {
  const task = TASKS["grid-patch"];
  const tokenizer = new Tokenizer(vocabularyOf([...Object.values(TASKS), PRETRAIN_TASK]));
  const samples = task.generate!(1, Math.max(256, m.batch), {
    imageSize: m.imageSize,
    patchSize: 8,
    params: { ...task.defaultParams, grid: m.grid, blobs: m.blobs },
  });
  const layout = layoutFor(samples, tokenizer, 8);
  const data = encodeSamples(samples, tokenizer, layout, 8);
  const model = new TinyVlm({
    patchDim: layout.patchDim,
    vocab: tokenizer.size,
    dModel: m.dModel,
    layers: m.layers,
    heads: m.heads,
    mlpRatio: 4,
    gridSide: m.imageSize / 8,
    maxText: 32,
    positionStd: 0.3,
  }, 0);
  const shape: FlopShape = {
    tv: layout.visual,
    tt: sequenceLength(layout) - layout.visual,
    patchDim: layout.patchDim,
    vocab: tokenizer.size,
    d: m.dModel,
    layers: m.layers,
    mlpRatio: 4,
  };
  return { model, data, shape, batch: m.batch };
}

/** One full training step (NTP + KLAL, AdamW). */
export async function trainStep(s: Setup, optimizer: AdamW, indices: number[]): Promise<void> {
  const variables = s.model.variables();
  const batch = batchTensors(s.data, indices);
  const layers = Array.from({ length: s.model.config.layers }, (_, i) => i);
  const { value, grads } = tf.variableGrads(
    () => lossParts(s.model, batch, s.data, 1, layers).total,
    variables,
  );
  await optimizer.apply(variables.map((v) => grads[v.name]), 1e-4, 1);
  await value.data();
  value.dispose();
  tf.dispose(Object.values(grads));
  disposeBatch(batch);
}

/** Training throughput of one model. */
export interface ThroughputResult {
  model: string;
  backend: string;
  /** Whether the fused kernels of pipeline/kernels/native_fused.ts ran. */
  fused: boolean;
  batch: number;
  tokens: number;
  samplesPerSecond: number;
  gflopsPerSecond: number;
  msPerStep: number;
  flopsPerSample: number;
}

export async function measureTraining(
  name: string,
  m: BenchModel,
  steps: number,
): Promise<ThroughputResult> {
  const s = setup(m);
  const optimizer = new AdamW(s.model.variables(), 0.01);
  const indices = Array.from({ length: s.batch }, (_, i) => i % s.data.n);
  await trainStep(s, optimizer, indices); // warm-up: kernels compile, state allocates
  await trainStep(s, optimizer, indices);
  const started = performance.now();
  for (let i = 0; i < steps; i++) await trainStep(s, optimizer, indices);
  const ms = (performance.now() - started) / steps;
  optimizer.dispose();
  s.model.dispose();
  return throughput(name, backendLabel(), fusedKernelsEnabled(), s, ms);
}

/** A training throughput from the time of one step. */
function throughput(
  model: string,
  backend: string,
  fused: boolean,
  s: Setup,
  msPerStep: number,
): ThroughputResult {
  const flops = trainingFlopsPerSample(s.shape);
  const samplesPerSecond = s.batch / (msPerStep / 1000);
  return {
    model,
    backend,
    fused,
    batch: s.batch,
    tokens: s.shape.tv + s.shape.tt,
    samplesPerSecond,
    gflopsPerSecond: samplesPerSecond * flops / 1e9,
    msPerStep,
    flopsPerSample: flops,
  };
}

/** What a whole-step trainer measurement varies: arms stacked, kernel variants (default: by shape). */
export interface TrainerBenchOptions {
  /** Arms stacked in one trainer (1: a lone arm); λ alternates 1 and 0 as a spec's arms do. */
  arms?: number;
  matmulTile?: MatmulTile;
  attentionRows?: AttentionRows;
}

/** A whole-step trainer measurement: samples/s and GFLOP/s count every arm's samples. */
export interface TrainerThroughput extends ThroughputResult {
  arms: number;
  /** The kernel variants the shapes gave or the options forced. */
  matmulTile: MatmulTile | "auto";
  attentionRows: number;
  dispatches: number;
  parameters: number;
}

/**
 * Training throughput of the whole-step WebGPU trainer (../train/webgpu/trainer.ts) on `m`:
 * a batch uploaded (each arm its own) and a step submitted per step, the stats read back a
 * few steps behind (as a training run does), 2 warm-up steps excluded, every step in flight
 * finished before the clock stops.
 */
export async function measureWebgpuTrainer(
  name: string,
  m: BenchModel,
  steps: number,
  device?: GPUDevice,
  options: TrainerBenchOptions = {},
): Promise<TrainerThroughput> {
  const s = setup(m);
  const arms = options.arms ?? 1;
  const gpuDevice = device ?? await webgpuDevice();
  const weights = await s.model.getWeights();
  const parameters = Object.entries(weights).map(([n, w]) => ({
    name: n,
    shape: w.shape,
    data: w.data,
  }));
  const layers = Array.from({ length: s.model.config.layers }, (_, i) => i);
  const trainerOptions = {
    config: s.model.config,
    layout: s.data.layout,
    batch: s.batch,
    lambda: 1,
    layers,
    queries: "all",
    weightDecay: 0.01,
    clipNorm: 1,
    matmulTile: options.matmulTile,
    attentionRows: options.attentionRows,
  } as const;
  const trainer = await WebGpuTrainer.createStacked(
    gpuDevice,
    trainerOptions,
    Array.from({ length: arms }, (_, a) => ({ lambda: a % 2 === 0 ? 1 : 0, parameters })),
  );
  s.model.dispose();
  const orders = Array.from({ length: arms }, (_, a) => new BatchOrder(s.data.n, a));
  const oneStep = async () => {
    orders.forEach((order, a) => trainer.setBatch(s.data, order.next(s.batch), a));
    await trainer.step(1e-4);
  };
  try {
    await oneStep();
    await oneStep();
    await trainer.drain(true);
    const started = performance.now();
    for (let i = 0; i < steps; i++) await oneStep();
    const stats = await trainer.drain(true);
    const ms = (performance.now() - started) / steps;
    const last = stats.at(-1)?.arms ?? [];
    if (last.length !== arms || last.some((a) => !Number.isFinite(a.total))) {
      throw new Error(`webgpu trainer: losses ${last.map((a) => a.total).join(", ")}`);
    }
    const one = throughput(name, "webgpu-trainer", true, s, ms);
    return {
      ...one,
      samplesPerSecond: one.samplesPerSecond * arms,
      gflopsPerSecond: one.gflopsPerSecond * arms,
      arms,
      matmulTile: options.matmulTile ?? "auto",
      attentionRows: trainer.attentionRows,
      dispatches: trainer.dispatchesPerStep,
      parameters: trainer.parameterCount,
    };
  } finally {
    trainer.dispose();
    if (!device) gpuDevice.destroy();
  }
}

/** Matmul speed at one shape. */
export interface MatmulResult {
  backend: string;
  shape: string;
  forwardGflops: number;
  backwardGflops: number;
}

export async function measureMatmul(
  m: number,
  k: number,
  n: number,
  repeats: number,
): Promise<MatmulResult> {
  const a = tf.randomNormal([m, k]) as tf.Tensor2D;
  const b = tf.randomNormal([k, n]) as tf.Tensor2D;
  // Reads are asynchronous: the WebGPU backend has no synchronous read in Deno.
  const time = async (fn: () => tf.Tensor | tf.Tensor[]) => {
    tf.dispose(fn()); // warm-up
    const started = performance.now();
    for (let i = 0; i < repeats; i++) {
      const out = fn();
      for (const t of Array.isArray(out) ? out : [out]) await t.data();
      tf.dispose(out);
    }
    return (performance.now() - started) / repeats / 1000;
  };
  const flops = 2 * m * k * n;
  const fwd = await time(() => matmul(a, b));
  const grad = tf.grads((x, y) => tf.sum(matmul(x as tf.Tensor2D, y as tf.Tensor2D)));
  const bwd = await time(() => grad([a, b]));
  tf.dispose([a, b]);
  // The backward pass is two matmuls of the same size (plus a cheap sum and its gradient).
  return {
    backend: backendLabel(),
    shape: `[${m},${k}]x[${k},${n}]`,
    forwardGflops: flops / fwd / 1e9,
    backwardGflops: 2 * flops / bwd / 1e9,
  };
}

/** The kernels of one training step, by total time (tf.profile); the `top` longest. */
export async function profileStep(m: BenchModel, top = 10) {
  const s = setup(m);
  const optimizer = new AdamW(s.model.variables(), 0.01);
  const indices = Array.from({ length: s.batch }, (_, i) => i % s.data.n);
  await trainStep(s, optimizer, indices);
  const info = await tf.profile(() => trainStep(s, optimizer, indices));
  optimizer.dispose();
  s.model.dispose();
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    entry.ms += Number(k.kernelTimeMs) || 0;
    entry.calls++;
    byKernel.set(k.name, entry);
  }
  const total = [...byKernel.values()].reduce((a, b) => a + b.ms, 0);
  const longest = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)
    .map(([kernel, v]) => ({ kernel, calls: v.calls, ms: v.ms, share: v.ms / total }));
  return { kernels: info.kernels.length, kernelMs: total, top: longest };
}

/**
 * Wall time of a training step's parts (ms, mean of `repeats` after one warm-up): the forward
 * pass to the loss, forward and backward to the gradients, and the whole step with AdamW —
 * each ends by reading a value back, so queued GPU work is counted.
 */
export async function phaseTimes(m: BenchModel, repeats: number) {
  const s = setup(m);
  const optimizer = new AdamW(s.model.variables(), 0.01);
  const indices = Array.from({ length: s.batch }, (_, i) => i % s.data.n);
  const variables = s.model.variables();
  const layers = Array.from({ length: s.model.config.layers }, (_, i) => i);
  const time = async (fn: () => Promise<void>) => {
    await fn();
    const started = performance.now();
    for (let i = 0; i < repeats; i++) await fn();
    return (performance.now() - started) / repeats;
  };
  const forwardMs = await time(async () => {
    const batch = batchTensors(s.data, indices);
    const loss = tf.tidy(() => lossParts(s.model, batch, s.data, 1, layers).total);
    await loss.data();
    loss.dispose();
    disposeBatch(batch);
  });
  const backwardMs = await time(async () => {
    const batch = batchTensors(s.data, indices);
    const { value, grads } = tf.variableGrads(
      () => lossParts(s.model, batch, s.data, 1, layers).total,
      variables,
    );
    await value.data();
    await grads[variables[0].name].data();
    tf.dispose([value, ...Object.values(grads)]);
    disposeBatch(batch);
  });
  const stepMs = await time(() => trainStep(s, optimizer, indices));
  optimizer.dispose();
  s.model.dispose();
  return { batch: s.batch, forwardMs, forwardBackwardMs: backwardMs, stepMs };
}
