/**
 * Upper bounds on spec values, checked when a spec (or a command-line override) is
 * validated, so an absurd value is a located error before anything runs instead of a
 * RangeError, an out-of-memory crash or a run of centuries after hours of work.
 *
 * Each bound is generous for research on the machines in README.md (a GPU with 80-141 GiB,
 * or a CPU node) and far below where the pipeline breaks; each carries its reason, which the
 * error message quotes.
 */

import type { Limit } from "../lib/schema.ts";

export type { Limit };

export const LIMITS = {
  /** Read from the file's size before it is parsed. */
  specBytes: {
    max: 1024 * 1024,
    reason: "a spec is a page of YAML; a larger file is not a spec",
  },
  imageSize: {
    max: 1024,
    reason: "images are generated and held in memory as float32 pixels; 1024 px is 12 MiB each",
  },
  patchSize: {
    max: 128,
    reason: "the patch embedding has 3 * patch_size^2 inputs per model dimension",
  },
  /** (image_size / patch_size)^2. */
  visualTokens: {
    max: 4096,
    reason: "attention memory grows with the square of the tokens; 4096 is a 64 x 64 patch grid",
  },
  dModel: {
    max: 4096,
    reason: "a 4096-wide model already holds ~200M weights per layer with the MLP",
  },
  layers: { max: 64, reason: "deeper than the largest models this pipeline is meant for" },
  heads: { max: 64, reason: "at the widest model (4096) that is 64-wide heads, the usual minimum" },
  mlpRatio: { max: 16, reason: "the MLP has mlp_ratio * d_model hidden units per layer" },
  batchSize: {
    max: 65536,
    reason: "a batch is encoded in memory at once; beyond this it no longer fits one GPU",
  },
  steps: {
    max: 10_000_000,
    reason: "ten million steps is about two weeks of training even at 10 steps per second",
  },
  samples: {
    max: 10_000_000,
    reason: "a dataset is one stage's output; ten million samples is 4x PixMo-Points (2.3M)",
  },
  seeds: {
    max: 1000,
    reason: "each seed fine-tunes and evaluates every arm: 1000 seeds are 2000 stages per arm",
  },
  lrGrid: {
    max: 100,
    reason: "each learning rate of train.lr_grid fine-tunes every fine-tuned arm once more",
  },
  sweepPoints: {
    max: 10_000,
    reason: "each point is a validated spec and an experiment or arm of its own",
  },
} as const satisfies Record<string, Limit>;

/** Bytes as "1 MiB" (whole units) or "N bytes". */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} bytes`;
}
