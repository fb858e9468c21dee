/**
 * train.lr_grid: the choice of a learning rate on validation data (chooseLr), and end to end
 * the trials, the choice and the fine-tunes that take it, in a temporary cache.
 */
import assert from "node:assert/strict";
import { Cache } from "../pipeline/cache/store.ts";
import { buildPlan } from "../pipeline/run/plan.ts";
import { parseSpec } from "../pipeline/spec/mod.ts";
import { chooseLr, type LrChoice } from "../pipeline/stages/choose_lr.ts";
import { TASKS } from "../tasks/registry.ts";
import { runScript, tempRun, tinySpec } from "./cli.ts";

Deno.test("chooseLr: the best validation accuracy; ties go to the smaller rate", () => {
  assert.equal(chooseLr([{ lr: 1e-3, accuracy: 40 }, { lr: 3e-3, accuracy: 55 }]), 3e-3);
  assert.equal(chooseLr([{ lr: 3e-3, accuracy: 55 }, { lr: 1e-3, accuracy: 40 }]), 3e-3);
  // A tie, in either order of the grid: the smaller rate.
  const tie = [{ lr: 1e-2, accuracy: 50 }, { lr: 1e-4, accuracy: 50 }, { lr: 1e-3, accuracy: 25 }];
  assert.equal(chooseLr(tie), 1e-4);
  assert.equal(chooseLr([...tie].reverse()), 1e-4);
  // An accuracy that is not a number never wins.
  assert.equal(chooseLr([{ lr: 1e-4, accuracy: NaN }, { lr: 1e-3, accuracy: 0 }]), 1e-3);
  assert.equal(chooseLr([{ lr: 5e-4, accuracy: 0 }]), 5e-4);
  assert.throws(() => chooseLr([]), /no trials/);
});

/** The tiny spec of ./cli.ts with a grid of two rates, on one layer and half the data. */
const SPEC = tinySpec("lr-grid-tiny", { klal: "{ lambda: 1.0 }" }, {
  seeds: "[0, 1]",
  task: "{ name: grid-patch, image_size: 16, train: 32, test: 8, params: { grid: 2, blobs: 1 } }",
  model: "{ patch_size: 8, d_model: 16, layers: 1, heads: 2 }",
  base: "{ steps: 2, batch_size: 8, train: 16 }",
  train: "{ steps: 2, batch_size: 8, warmup: 1, log_every: 1, eval_samples: 8, " +
    "lr_grid: [0.001, 0.01] }",
});

Deno.test("lr_grid end to end: trials on validation data, a choice, fine-tunes that use it", async () => {
  const { dir, spec: path, env } = await tempRun("lr-grid", SPEC, "tiny.yaml");
  try {
    const run = await runScript("pipeline/commands/experiment.ts", [path, "--jobs", "1"], env);
    assert.equal(run.code, 0, run.stderr);

    // Each stage's entry, by the key this run recorded for it (refs/).
    const cache = new Cache(`${dir}/cache`);
    const spec = parseSpec(SPEC, path, [], { tasks: TASKS });
    const ids = buildPlan(spec).map((s) => s.id);
    const stages = new Map<string, { key: string }>();
    for (const id of ids) stages.set(id, (await cache.readRef(spec.name, id))!);
    assert.ok(ids.includes("lr-eval:klal:lr0.01:s0"), ids.join(", "));
    const choice = await cache.readJson<LrChoice>(stages.get("choose-lr:klal")!.key, "choice.json");
    assert.deepEqual(choice.trials.map((t) => t.lr), [0.001, 0.01]);
    for (const trial of choice.trials) {
      // 8 validation samples: an accuracy is a multiple of 12.5%.
      assert.ok(Number.isInteger(trial.accuracy / 12.5), String(trial.accuracy));
      const metrics = await cache.readJson<{ accuracy: number }>(
        stages.get(`lr-eval:klal:lr${trial.lr}:s0`)!.key,
        "metrics.json",
      );
      assert.equal(metrics.accuracy, trial.accuracy);
    }
    assert.equal(choice.lr, chooseLr(choice.trials));
    assert.deepEqual([choice.seed, choice.samples, choice.metric], [0, 8, "validation accuracy"]);
    for (const seed of [0, 1]) {
      const finetune = stages.get(`finetune:klal:s${seed}`)!;
      const log = await cache.readJson<{ lr: number; lrChosenBy?: string }>(
        finetune.key,
        "log.json",
      );
      assert.equal(log.lr, choice.lr);
      assert.equal(log.lrChosenBy, "choose-lr:klal");
      assert.equal((await cache.manifest(finetune.key)).info.lr, choice.lr);
    }
    // The trials ran with their own rates.
    const trialLog = await cache.readJson<{ lr: number }>(
      stages.get("lr-finetune:klal:lr0.01:s0")!.key,
      "log.json",
    );
    assert.equal(trialLog.lr, 0.01);
    // The report counts the arm's two fine-tunes and evaluations, not the trials.
    const results = JSON.parse(
      await Deno.readTextFile(`${dir}/reports/lr-grid-tiny/results.json`),
    );
    const accuracy = results.rows.filter((r: { metric: string }) => r.metric === "accuracy");
    assert.deepEqual(
      accuracy.map((r: { arm: string; seed: number }) => `${r.arm}:${r.seed}`).sort(),
      ["klal:0", "klal:1"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
