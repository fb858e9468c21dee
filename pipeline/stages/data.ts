/**
 * The data stage: a task's samples for one split and seed, stored as image bytes, targets and
 * text. The task is loaded from its own module by name, so this module's import closure holds
 * no task code; the stage's code version adds the task's module (../run/plan.ts, `stageCode`).
 */
import type { Sample, Task, TaskConfig } from "../../tasks/task.ts";
import type { EntryWriter } from "../cache/store.ts";
import type { DataParams, ResolvedStage } from "./types.ts";
import { Rng, seedFrom } from "../lib/rng.ts";
import { loadTask } from "./_common.ts";
import { writeSamples } from "./_data_entry.ts";

/**
 * Samples of a data stage: generated (synthetic tasks); loaded from the spec's source (real
 * data; a seeded subset of `n` when the file holds more, the validation rows held out of the
 * training file and kept out of training, see DataParams.holdout); or, for real-format tasks without
 * a source, an offline stand-in written in the real format and read back by the same loader.
 */
async function produceSamples(task: Task, p: DataParams, config: TaskConfig): Promise<Sample[]> {
  const n = p.n;
  if (task.generate) {
    if (n === "all") throw new Error(`task ${p.task} generates its data: n must be a number`);
    return task.generate(p.seed, n, config);
  }
  if (!task.load || !task.writeStandIn) throw new Error(`task ${p.task} has no data`);
  if (p.source) {
    const all = await task.load(p.source, config);
    let rows = all.map((_, i) => i);
    if (p.holdout !== undefined) {
      // The held-out rows depend on the file alone, never on the seed: validation stays out
      // of every fine-tune's training data.
      const fixed = new Rng(seedFrom(p.task, "holdout")).shuffle(rows);
      const held = Math.min(p.holdout, Math.floor(all.length / 2));
      rows = p.split === "val" ? fixed.slice(0, held) : fixed.slice(held);
    }
    const order = new Rng(seedFrom(p.task, p.split, p.seed)).shuffle(rows);
    return (n === "all" ? order : order.slice(0, n)).sort((a, b) => a - b).map((i) => all[i]);
  }
  if (n === "all") throw new Error(`task ${p.task}: a stand-in needs a number of samples`);
  const dir = await Deno.makeTempDir({ prefix: `klal-${p.task}-` });
  try {
    const source = await task.writeStandIn(dir, p.seed, n, config);
    return (await task.load(source, config)).slice(0, n);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Data files: images as bytes (quantised like any stored image), targets, text and meta. */
export async function runData(stage: ResolvedStage<"data">, out: EntryWriter) {
  const p = { ...stage.params };
  const task = await loadTask(p.task);
  const config = { imageSize: p.image_size, patchSize: p.patch_size, params: p.task_params };
  const samples = await produceSamples(task, p, config);
  p.n = samples.length;
  await writeSamples(out, samples, p.image_size, p.patch_size);
  return { samples: p.n };
}
