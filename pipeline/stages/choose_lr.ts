/**
 * The choose-lr stage (train.lr_grid): one arm's learning rate, picked from its trials. Each
 * input `trial<i>` is the validation evaluation (an lr-eval stage) of a fine-tune on the first
 * seed with the grid's i-th rate; the rate with the best validation accuracy wins, ties going
 * to the smaller rate. Writes `choice.json` (LrChoice), which each fine-tune of the arm reads
 * its rate from (./finetune.ts).
 */
import type { EntryWriter } from "../cache/store.ts";
import type { ResolvedStage } from "./types.ts";
import type { StageContext } from "./_common.ts";

/** One rate of the grid and the validation accuracy (%) its fine-tune reached. */
export interface LrTrial {
  lr: number;
  accuracy: number;
}

/** What a choose-lr entry holds (`choice.json`). */
export interface LrChoice {
  /** The rate the arm's fine-tunes use. */
  lr: number;
  /** Every rate of the grid, in the grid's order, with its validation accuracy. */
  trials: LrTrial[];
  /** What was compared: accuracy (%) on the validation set, never the test set. */
  metric: "validation accuracy";
  /** The seed the trials were fine-tuned with (the spec's first). */
  seed: number;
  /** Validation samples (train.eval_samples, generated from task.test_seed + 1). */
  samples: number;
}

/**
 * The rate with the best validation accuracy; among equal accuracies, the smaller rate. An
 * accuracy that is not a number counts as the worst.
 */
export function chooseLr(trials: readonly LrTrial[]): number {
  if (trials.length === 0) throw new Error("choose-lr: no trials to choose from");
  const score = (t: LrTrial) => Number.isFinite(t.accuracy) ? t.accuracy : -Infinity;
  let best = trials[0];
  for (const trial of trials.slice(1)) {
    const better = score(trial) > score(best) ||
      (score(trial) === score(best) && trial.lr < best.lr);
    if (better) best = trial;
  }
  return best.lr;
}

/** Read each trial's validation accuracy, choose, and write `choice.json`. */
export async function runChooseLr(
  stage: ResolvedStage<"choose-lr">,
  out: EntryWriter,
  ctx: StageContext,
) {
  const p = stage.params;
  const trials: LrTrial[] = [];
  for (const [i, lr] of p.grid.entries()) {
    const key = stage.inputKeys[`trial${i}`];
    if (!key) throw new Error(`${stage.id}: no trial for lr ${lr} (input trial${i})`);
    const metrics = await ctx.cache.readJson<{ accuracy: number }>(key, "metrics.json");
    trials.push({ lr, accuracy: metrics.accuracy });
  }
  const choice: LrChoice = {
    lr: chooseLr(trials),
    trials,
    metric: "validation accuracy",
    seed: p.seed,
    samples: p.samples,
  };
  await out.writeJson("choice.json", choice);
  const table = trials.map((t) => `${t.lr}: ${t.accuracy.toFixed(1)}%`).join(", ");
  console.error(`${ctx.experiment} ${stage.id}: lr ${choice.lr} (validation accuracy ${table})`);
  return { lr: choice.lr };
}
