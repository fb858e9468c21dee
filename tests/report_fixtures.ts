/** Inputs of the report tests: a small Grid Patch spec, and attention maps over its patches. */
import type { BaseSpec, ModelSpec, Spec, TaskSpec, TrainSpec } from "../pipeline/spec/types.ts";
import { DEFAULT_MIX } from "./spec_fixtures.ts";

/** What a report test's spec changes: its name, description and arms, and any section's keys. */
export interface ReportSpecChanges {
  name: string;
  description: string;
  arms: Spec["arms"];
  task?: Partial<TaskSpec>;
  model?: Partial<ModelSpec>;
  base?: Partial<BaseSpec>;
  train?: Partial<TrainSpec>;
  eval?: Partial<Spec["eval"]>;
}

/**
 * A validated-looking spec for reports: Grid Patch at 32 px with 8 px patches (a 4x4 grid),
 * a two-layer model, seeds 0 and 1, no learning-rate grid; `changes` over it.
 */
export function reportSpec(changes: ReportSpecChanges): Spec {
  return {
    name: changes.name,
    description: changes.description,
    seeds: [0, 1],
    backend: "wasm",
    task: {
      name: "grid-patch",
      image_size: 32,
      train: 200,
      test: 40,
      test_seed: 999,
      subset_seed: 0,
      params: {},
      ...changes.task,
    },
    model: {
      name: "tiny-vlm",
      patch_size: 8,
      d_model: 32,
      layers: 2,
      heads: 2,
      mlp_ratio: 4,
      position_std: 0.3,
      ...changes.model,
    },
    base: {
      steps: 10,
      batch_size: 8,
      lr: 1e-3,
      train: 100,
      seed: 0,
      lambda: 0,
      mix: DEFAULT_MIX,
      ...changes.base,
    },
    train: {
      steps: 40,
      batch_size: 8,
      lr: 1e-3,
      optimizer: "adamw",
      weight_decay: 0.01,
      warmup: 4,
      log_every: 10,
      eval_every: 10,
      eval_samples: 40,
      checkpoint_every: 0,
      lr_grid: [],
      ...changes.train,
    },
    eval: { batch_size: 16, ...changes.eval },
    arms: changes.arms,
  };
}

/** A map over the 16 patches with `focus` of its mass on `cell`, the rest spread evenly. */
export function focusedMap(cell: number, focus: number): number[] {
  return Array.from({ length: 16 }, (_, i) => (i === cell ? focus : (1 - focus) / 15));
}
