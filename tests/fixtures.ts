/** Tiny Grid Patch data and a tiny model, shared by the tests that train or compare backends. */
import { type Encoded, encodeSamples, type Layout, layoutFor } from "../pipeline/batch.ts";
import { TinyVlm, type TinyVlmConfig } from "../pipeline/model/tiny_vlm.ts";
import { Tokenizer } from "../pipeline/tokenizer.ts";
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
