/** Tiny Grid Patch data and a tiny model, shared by the tests that train or compare backends. */
import { type Encoded, encodeSamples, type Layout, layoutFor } from "../pipeline/model/batch.ts";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../pipeline/kernels/backend.ts";
import { TinyVlm, type TinyVlmConfig, type WeightMap } from "../pipeline/model/tiny_vlm.ts";
import { batchTensors, disposeBatch } from "../pipeline/model/batch_tensors.ts";
import { lossParts } from "../pipeline/model/losses.ts";
import { type TrainOptions } from "../pipeline/train/options.ts";
import { Tokenizer } from "../pipeline/model/tokenizer.ts";
import { gridPatch } from "../tasks/grid_patch.ts";
import type { Sample } from "../tasks/task.ts";

/** 16 px images, a 2x2 grid of 8 px patches (4 visual tokens). */
export const TINY_TASK_CONFIG = {
  imageSize: 16,
  patchSize: 8,
  params: { ...gridPatch.defaultParams, grid: 2 },
};

/** `n` Grid Patch samples from `seed`, encoded for the model. */
export interface TinyData {
  samples: Sample[];
  tokenizer: Tokenizer;
  layout: Layout;
  data: Encoded;
}

/** Tiny Grid Patch samples, their tokenizer, layout and encoding. */
export function tinyGridData(seed: number, n: number): TinyData {
  const tokenizer = new Tokenizer(gridPatch.vocabulary);
  const samples = gridPatch.generate(seed, n, TINY_TASK_CONFIG);
  const layout = layoutFor(samples, tokenizer, 8);
  return { samples, tokenizer, layout, data: encodeSamples(samples, tokenizer, layout, 8) };
}

/** The tiny model's configuration for `fixture` (d=16, 2 layers, 2 heads unless overridden). */
export function tinyModelConfig(
  fixture: TinyData,
  overrides: Partial<TinyVlmConfig> = {},
): TinyVlmConfig {
  return {
    patchDim: fixture.layout.patchDim,
    vocab: fixture.tokenizer.size,
    dModel: 16,
    layers: 2,
    heads: 2,
    mlpRatio: 2,
    gridSide: 2,
    maxText: 16,
    positionStd: 0.1,
    ...overrides,
  };
}

/** A tiny model for `fixture`, initialised from `seed`. */
export function tinyModel(
  fixture: TinyData,
  seed = 0,
  overrides: Partial<TinyVlmConfig> = {},
): TinyVlm {
  return new TinyVlm(tinyModelConfig(fixture, overrides), seed);
}

/**
 * Training options for the tiny model: AdamW (weight decay 0.01), one warm-up step, a loss
 * point every step and KLAL with λ = 1 on layers 0 and 1, with `run`'s size, rate and seed.
 */
export function tinyTrainOptions(
  run: Pick<TrainOptions, "steps" | "batchSize" | "lr" | "seed" | "label">,
): TrainOptions {
  return {
    optimizer: "adamw",
    weightDecay: 0.01,
    warmup: 1,
    logEvery: 1,
    lambda: 1,
    layers: [0, 1],
    ...run,
  };
}

/**
 * Loss (KLAL over layers 0 and 1, λ = 1) and every gradient of a fresh model (init seed
 * `modelSeed`, or `weights` when given) on the first 8 samples, read back asynchronously so
 * any backend works; with the weights, for a second backend to start from the same point.
 */
export async function lossAndGrads(
  data: Encoded,
  config: TinyVlmConfig,
  modelSeed: number,
  weights?: WeightMap,
): Promise<{ loss: number; grads: number[][]; weights: WeightMap }> {
  const model = new TinyVlm(config, modelSeed);
  if (weights) model.setWeights(weights);
  const batch = batchTensors(data, [0, 1, 2, 3, 4, 5, 6, 7]);
  const vars = model.variables();
  const { value, grads } = tf.variableGrads(
    () => lossParts(model, batch, data, 1, [0, 1]).total,
    vars,
  );
  const out = {
    loss: (await value.data())[0],
    grads: await Promise.all(vars.map(async (v) => Array.from(await grads[v.name].data()))),
    weights: await model.getWeights(),
  };
  tf.dispose([value, ...Object.values(grads)]);
  disposeBatch(batch);
  model.dispose();
  return out;
}

/**
 * Back to wasm and the WebGPU device released now rather than at process exit (an orderly
 * teardown): tfjs's dispose frees its buffers but leaves the device, so destroy it after the
 * queue drains. tfjs-webgpu cannot be set again in the same process afterwards.
 */
export async function releaseWebgpu(): Promise<void> {
  await initBackend("wasm");
  const device = (tf.findBackend("webgpu") as unknown as { device?: GPUDevice }).device;
  await device?.queue.onSubmittedWorkDone();
  tf.removeBackend("webgpu");
  device?.destroy();
}
