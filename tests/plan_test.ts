import assert from "node:assert/strict";
import { paramsOf } from "./cli.ts";
import { Cache } from "../pipeline/cache/store.ts";
import { importClosure } from "../pipeline/cache/code_version.ts";
import {
  buildPlan,
  diffPaths,
  type ResolvedStage,
  resolvePlan,
  stageCode,
  stageStatus,
} from "../pipeline/run/plan.ts";
import { canonicalJson, parseSpec } from "../pipeline/spec/mod.ts";
import { PRETRAIN_TASK, TASKS, vocabularyOf } from "../tasks/registry.ts";

const SPEC = `
name: plan-test
seeds: [0, 1]
task: { name: grid-patch, image_size: 16, train: 10, test: 5, params: { grid: 2, blobs: 1 } }
model: { patch_size: 8, d_model: 8, layers: 2, heads: 2 }
arms:
  base: { finetune: false }
  ntp: { lambda: 0 }
  klal: { lambda: 1, layers: all }
`;

async function plan(overrides: string[] = []): Promise<Map<string, ResolvedStage>> {
  const spec = parseSpec(SPEC, "plan.yaml", overrides, { tasks: TASKS });
  return new Map((await resolvePlan(buildPlan(spec))).map((s) => [s.id, s]));
}

function changed(a: Map<string, ResolvedStage>, b: Map<string, ResolvedStage>): string[] {
  return [...a.keys()].filter((id) => a.get(id)!.key !== b.get(id)!.key).sort();
}

Deno.test("plan: the stage graph of a spec", async () => {
  const stages = await plan();
  assert.deepEqual([...stages.keys()], [
    "data:pretrain-mix:train:s0",
    "data:pretrain-mix:val:s0",
    "pretrain",
    "data:grid-patch:test:s1000",
    "eval:base",
    "data:grid-patch:train:s0",
    "finetune:ntp:s0",
    "eval:ntp:s0",
    "data:grid-patch:train:s1",
    "finetune:ntp:s1",
    "eval:ntp:s1",
    "finetune:klal:s0",
    "eval:klal:s0",
    "finetune:klal:s1",
    "eval:klal:s1",
    "report",
  ]);
  assert.deepEqual(stages.get("finetune:klal:s1")!.inputs, {
    base: "pretrain",
    data: "data:grid-patch:train:s1",
  });
  // The Base's held-out mix samples: the mix's params, a seed of their own, 100 per kind.
  const train = paramsOf(stages.get("data:pretrain-mix:train:s0")!);
  const heldout = paramsOf(stages.get("data:pretrain-mix:val:s0")!);
  assert.deepEqual(heldout.task_params, train.task_params);
  assert.notEqual(heldout.seed, train.seed);
  assert.equal(heldout.n, 100 * (train.task_params as { kinds: string[] }).kinds.length);
  assert.deepEqual(stages.get("eval:base")!.inputs, {
    model: "pretrain",
    data: "data:grid-patch:test:s1000",
  });
});

Deno.test("plan: keys are stable across resolutions", async () => {
  assert.deepEqual(changed(await plan(), await plan()), []);
});

Deno.test("plan: changing arms.klal.lambda changes only the KLAL finetunes, evals and report", async () => {
  assert.deepEqual(changed(await plan(), await plan(["arms.klal.lambda=2"])), [
    "eval:klal:s0",
    "eval:klal:s1",
    "finetune:klal:s0",
    "finetune:klal:s1",
    "report",
  ]);
});

Deno.test("plan: training params leave data and the Base checkpoint alone", async () => {
  const diff = changed(await plan(), await plan(["train.lr=0.002"]));
  assert.ok(diff.every((id) => /^(finetune|eval:(ntp|klal)|report)/.test(id)), diff.join(","));
  assert.ok(!diff.includes("eval:base"));
  assert.ok(!diff.includes("pretrain"));
});

Deno.test("plan: task params invalidate the task's data and what follows, not pretraining", async () => {
  const diff = changed(await plan(), await plan(["task.params.blobs=2"]));
  assert.ok(diff.includes("data:grid-patch:train:s0"));
  assert.ok(diff.includes("eval:base"));
  assert.ok(!diff.includes("pretrain"));
  assert.ok(!diff.includes("data:pretrain-mix:train:s0"));
});

Deno.test("plan: each stage's code is the import closure of the module that runs it", async () => {
  const stages = await plan();
  const files = async (id: string) => {
    const code = await stageCode(stages.get(id)!);
    return (await importClosure(code.modules)).files;
  };
  const data = await files("data:grid-patch:train:s0");
  for (const f of ["tasks/grid_patch.ts", "tasks/common.ts", "pipeline/stages/data.ts"]) {
    assert.ok(data.includes(f), f);
  }
  for (const f of ["pipeline/train/loop.ts", "tasks/refcoco.ts", "tasks/registry.ts"]) {
    assert.ok(!data.includes(f), f);
  }
  for (const id of ["pretrain", "finetune:klal:s0", "eval:klal:s0"]) {
    const code = await files(id);
    for (const f of ["pipeline/kernels/native_matmul.ts", "pipeline/kernels/native_attention.ts"]) {
      assert.ok(code.includes(f), `${id}: ${f}`);
    }
    assert.ok(!code.some((f) => /report|stages\.ts$/.test(f)), id);
  }
  assert.ok(!(await files("pretrain")).includes("tasks/grid_patch.ts"));
  assert.ok((await files("report")).includes("pipeline/stages/report.ts"));
  const version = (await stageCode(stages.get("data:grid-patch:train:s0")!)).extra;
  assert.deepEqual(version, [`task grid-patch version ${TASKS["grid-patch"].version}`]);
});

Deno.test("plan: the model's vocabulary is every task's words and the mix's kinds in use", async () => {
  const wordsOf = async (overrides: string[] = []) =>
    ((paramsOf((await plan(overrides)).get("pretrain")!).model) as { vocabulary: string[] })
      .vocabulary;
  const words = await wordsOf();
  const tasks = vocabularyOf(Object.values(TASKS));
  assert.ok(tasks.every((w) => words.includes(w)));
  assert.ok(words.includes("patch"));
  // The original four kinds leave out the skill kinds' words, so a Base on them keeps the
  // vocabulary (and the initialisation) it had before those kinds existed.
  assert.ok(!words.includes("locate") && !words.includes("touch"));
  const withSkills = await wordsOf(["base.mix.kinds=[color,point]"]);
  assert.ok(withSkills.includes("locate") && withSkills.includes("touch"));
  // Every task's words and the skill kinds' shared words; the box kind's own only with it.
  assert.deepEqual(
    [...withSkills].sort(),
    vocabularyOf([...Object.values(TASKS), PRETRAIN_TASK]).filter((w) => w !== "find"),
  );
  assert.ok((await wordsOf(["base.mix.kinds=[color,box]"])).includes("find"));
});

Deno.test("stageStatus: says why a stage runs", async () => {
  const cache = new Cache(await Deno.makeTempDir({ prefix: "klal-plan-test-" }));
  const before = (await plan()).get("finetune:klal:s0")!;
  assert.equal((await stageStatus(cache, "plan-test", before)).reason, "run (new stage)");
  await cache.writeRef("plan-test", before.id, {
    key: before.key,
    params: before.params,
    inputs: before.inputKeys,
    codeVersion: before.codeVersion,
  });
  assert.equal((await stageStatus(cache, "plan-test", before)).reason, "run (missing from cache)");
  const after = (await plan(["train.lr=0.002"])).get("finetune:klal:s0")!;
  assert.equal(
    (await stageStatus(cache, "plan-test", after)).reason,
    "run (params changed: train.lr)",
  );
  await cache.write(before.key, {
    stage: before.id,
    kind: before.kind,
    params: before.params,
    inputs: before.inputKeys,
    codeVersion: before.codeVersion,
  }, async () => {});
  assert.deepEqual(await stageStatus(cache, "plan-test", before), {
    cached: true,
    reason: "cached",
  });
});

Deno.test("diffPaths lists dotted paths that differ", () => {
  assert.deepEqual(diffPaths({ a: { b: 1, c: 2 }, d: [1] }, { a: { b: 1, c: 3 }, d: [2] }), [
    "a.c",
    "d",
  ]);
});

Deno.test("plan: 1000 seeds give one training set per seed and every arm's stages", async () => {
  const seeds = Array.from({ length: 1000 }, (_, i) => i);
  const spec = parseSpec(SPEC, "plan.yaml", [`seeds=[${seeds.join(",")}]`], { tasks: TASKS });
  const stages = await resolvePlan(buildPlan(spec));
  // pretraining data and its held-out samples, Base, test data, eval:base, then per seed one
  // training set and a fine-tune and an evaluation for each of ntp and klal, then the report.
  assert.equal(stages.length, 5 + 1000 * 5 + 1);
  const ids = stages.map((s) => s.id);
  assert.equal(new Set(ids).size, ids.length);
  const count = (kind: string) => stages.filter((s) => s.kind === kind).length;
  assert.deepEqual(
    ["data", "pretrain", "finetune", "eval", "report"].map(count),
    [2 + 1 + 1000, 1, 2000, 1 + 2000, 1],
  );
  const byId = new Map(stages.map((s) => [s.id, s]));
  for (const seed of [0, 499, 999]) {
    for (const arm of ["ntp", "klal"]) {
      const finetune = byId.get(`finetune:${arm}:s${seed}`)!;
      assert.deepEqual(finetune.inputs, {
        base: "pretrain",
        data: `data:grid-patch:train:s${seed}`,
      });
      assert.equal(paramsOf(finetune).seed, seed);
      assert.equal(byId.get(`eval:${arm}:s${seed}`)!.inputs.model, finetune.id);
    }
    assert.equal(paramsOf(byId.get(`data:grid-patch:train:s${seed}`)!).seed, seed);
  }
  // Each training set is planned before its first fine-tune; the report reads every
  // evaluation (eval:base too) and every fine-tune.
  const at = new Map(ids.map((id, i) => [id, i]));
  assert.ok(at.get("data:grid-patch:train:s999")! < at.get("finetune:ntp:s999")!);
  assert.equal(Object.keys(byId.get("report")!.inputs).length, 1 + 2000 + 2000);
  assert.equal(new Set(stages.map((s) => s.key)).size, stages.length);
});

Deno.test("plan: base.seed run pretrains one Base per seed, which that seed's stages start from", async () => {
  const stages = await plan(["base.seed=run"]);
  const ids = [...stages.keys()];
  assert.deepEqual(ids.filter((id) => /^(pretrain|data:pretrain-mix)/.test(id)), [
    "data:pretrain-mix:train:s0",
    "data:pretrain-mix:val:s0",
    "pretrain:s0",
    "data:pretrain-mix:train:s1",
    "data:pretrain-mix:val:s1",
    "pretrain:s1",
  ]);
  for (const seed of [0, 1]) {
    const pretrain = stages.get(`pretrain:s${seed}`)!;
    assert.deepEqual(pretrain.inputs, {
      data: `data:pretrain-mix:train:s${seed}`,
      heldout: `data:pretrain-mix:val:s${seed}`,
    });
    assert.equal((paramsOf(pretrain).base as { seed: number }).seed, seed);
    assert.equal(paramsOf(stages.get(`data:pretrain-mix:train:s${seed}`)!).seed, seed);
    for (const arm of ["ntp", "klal"]) {
      assert.equal(stages.get(`finetune:${arm}:s${seed}`)!.inputs.base, `pretrain:s${seed}`);
    }
    // The Base arm is evaluated per seed, each on its own Base: n = seeds.
    const e = stages.get(`eval:base:s${seed}`)!;
    assert.deepEqual(e.inputs, { model: `pretrain:s${seed}`, data: "data:grid-patch:test:s1000" });
    assert.equal(e.seed, seed);
  }
  assert.ok(!stages.has("pretrain") && !stages.has("eval:base"));
  assert.notEqual(stages.get("pretrain:s0")!.key, stages.get("pretrain:s1")!.key);
  // Seed 0's Base is the Base of base.seed: 0, the default: one cache entry for both.
  const shared = await plan();
  assert.equal(stages.get("pretrain:s0")!.key, shared.get("pretrain")!.key);
  assert.equal(stages.get("finetune:klal:s0")!.key, shared.get("finetune:klal:s0")!.key);
  assert.notEqual(stages.get("finetune:klal:s1")!.key, shared.get("finetune:klal:s1")!.key);
});

Deno.test("plan: a list of Base seeds pretrains each, its block of seeds starts from it", async () => {
  const stages = await plan(["seeds=[0, 1, 2, 3]", "base.seed=[7, 8]"]);
  const ids = [...stages.keys()];
  assert.deepEqual(ids.filter((id) => id.startsWith("pretrain")), ["pretrain:s7", "pretrain:s8"]);
  assert.equal((paramsOf(stages.get("pretrain:s8")!).base as { seed: number }).seed, 8);
  // Seeds 0, 1 from Base 7; 2, 3 from Base 8: every fine-tune seed distinct, nested in a Base.
  const baseOf = (seed: number) => stages.get(`finetune:ntp:s${seed}`)!.inputs.base;
  assert.deepEqual([0, 1, 2, 3].map(baseOf), [
    "pretrain:s7",
    "pretrain:s7",
    "pretrain:s8",
    "pretrain:s8",
  ]);
  // The Base arm: one evaluation per Base, under the Base's seed.
  const evals = ids.filter((id) => id.startsWith("eval:base"));
  assert.deepEqual(evals, ["eval:base:b7", "eval:base:b8"]);
  assert.equal(stages.get("eval:base:b8")!.inputs.model, "pretrain:s8");
  assert.equal(stages.get("eval:base:b8")!.seed, 8);
  // Base 7's Base is base.seed: 7's, one cache entry for both.
  const single = await plan(["base.seed=7"]);
  assert.equal(stages.get("pretrain:s7")!.key, single.get("pretrain")!.key);
});

Deno.test("plan: an arm's own seeds: its fine-tunes only on those", async () => {
  const stages = await plan(["seeds=[0, 1, 2, 3]", "base.seed=[7, 8]", "arms.klal.seeds=[0, 1]"]);
  const ids = [...stages.keys()];
  assert.deepEqual(ids.filter((id) => id.startsWith("finetune:klal")), [
    "finetune:klal:s0",
    "finetune:klal:s1",
  ]);
  assert.equal(ids.filter((id) => id.startsWith("finetune:ntp")).length, 4);
  // The same fine-tune as in a spec of Base 7 alone with seeds 0 and 1: one cache entry.
  const alone = await plan(["seeds=[0, 1]", "base.seed=7"]);
  assert.equal(stages.get("finetune:klal:s1")!.key, alone.get("finetune:klal:s1")!.key);
});

Deno.test("plan: train.lr_grid plans trials on the first seed, validation evals and choose-lr", async () => {
  const stages = await plan(["train.lr_grid=[0.001, 0.003]", "seeds=[5, 6]"]);
  const ids = [...stages.keys()];
  const val = "data:grid-patch:val:s1001";
  assert.ok(stages.has(val), "the validation set is planned although eval_every is 0");
  assert.equal(paramsOf(stages.get(val)!).n, 200); // train.eval_samples
  for (const arm of ["ntp", "klal"]) {
    const trials = ids.filter((id) => id.startsWith(`lr-finetune:${arm}:`));
    assert.deepEqual(trials, [`lr-finetune:${arm}:lr0.001:s5`, `lr-finetune:${arm}:lr0.003:s5`]);
    for (const [i, lr] of [0.001, 0.003].entries()) {
      const trial = stages.get(`lr-finetune:${arm}:lr${lr}:s5`)!;
      assert.equal(trial.kind, "lr-finetune");
      assert.equal((trial.params.train as { lr: number }).lr, lr);
      assert.equal(trial.params.seed, 5); // the first seed only
      assert.deepEqual(trial.inputs, { base: "pretrain", data: "data:grid-patch:train:s5" });
      const validation = stages.get(`lr-eval:${arm}:lr${lr}:s5`)!;
      assert.equal(validation.kind, "lr-eval");
      // Evaluated on the validation set (test_seed + 1), never the test set.
      assert.deepEqual(validation.inputs, { model: trial.id, data: val });
      assert.equal(stages.get(`choose-lr:${arm}`)!.inputs[`trial${i}`], validation.id);
    }
    const choose = stages.get(`choose-lr:${arm}`)!;
    assert.equal(choose.kind, "choose-lr");
    assert.deepEqual(choose.params, { grid: [0.001, 0.003], seed: 5, samples: 200 });
    for (const seed of [5, 6]) {
      const finetune = stages.get(`finetune:${arm}:s${seed}`)!;
      // The choice is an input: its key is in the fine-tune's key; the rate is not a param.
      assert.deepEqual(finetune.inputs, {
        base: "pretrain",
        data: `data:grid-patch:train:s${seed}`,
        lr: `choose-lr:${arm}`,
      });
      assert.equal(finetune.inputKeys.lr, choose.key);
      assert.equal((paramsOf(finetune).train as { lr?: number }).lr, undefined);
      assert.ok(ids.indexOf(choose.id) < ids.indexOf(finetune.id));
    }
  }
  // The Base arm is not fine-tuned: no trials, no choice.
  assert.ok(!ids.some((id) => /^(lr-finetune|lr-eval|choose-lr):base\b/.test(id)));
  assert.equal(stages.get("report")!.inputs["choose-lr:klal"], "choose-lr:klal");
  // Another grid changes the trials, the choice and what follows; data and Base stay.
  const other = await plan(["train.lr_grid=[0.001, 0.01]", "seeds=[5, 6]"]);
  assert.equal(
    other.get("lr-finetune:klal:lr0.001:s5")!.key,
    stages.get(
      "lr-finetune:klal:lr0.001:s5",
    )!.key,
  );
  assert.notEqual(other.get("choose-lr:klal")!.key, stages.get("choose-lr:klal")!.key);
  assert.notEqual(other.get("finetune:klal:s6")!.key, stages.get("finetune:klal:s6")!.key);
  assert.equal(other.get("pretrain")!.key, stages.get("pretrain")!.key);
});

Deno.test("plan: without a grid, fine-tune params hold no lr_grid (their keys are as before)", async () => {
  const stages = await plan();
  const train = paramsOf(stages.get("finetune:klal:s0")!).train as Record<string, unknown>;
  assert.equal(train.lr, 1e-3);
  assert.ok(canonicalJson(train).indexOf("lr_grid") < 0);
  assert.ok(![...stages.keys()].some((id) => /^(lr-|choose-lr)/.test(id)));
  assert.ok(!stages.has("data:grid-patch:val:s1001"));
});
