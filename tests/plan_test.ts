import assert from "node:assert/strict";
import { Cache } from "../pipeline/cache.ts";
import { importClosure } from "../pipeline/code_version.ts";
import {
  buildPlan,
  diffPaths,
  type ResolvedStage,
  resolvePlan,
  stageCode,
  stageStatus,
} from "../pipeline/plan.ts";
import { parseSpec } from "../pipeline/spec.ts";
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
  for (const f of ["pipeline/train.ts", "tasks/refcoco.ts", "tasks/registry.ts"]) {
    assert.ok(!data.includes(f), f);
  }
  for (const id of ["pretrain", "finetune:klal:s0", "eval:klal:s0"]) {
    const code = await files(id);
    for (const f of ["pipeline/model/native_matmul.ts", "pipeline/model/native_attention.ts"]) {
      assert.ok(code.includes(f), `${id}: ${f}`);
    }
    assert.ok(!code.some((f) => /report|stages\.ts$/.test(f)), id);
  }
  assert.ok(!(await files("pretrain")).includes("tasks/grid_patch.ts"));
  assert.ok((await files("report")).includes("pipeline/stages/report.ts"));
  const version = (await stageCode(stages.get("data:grid-patch:train:s0")!)).extra;
  assert.deepEqual(version, [`task grid-patch version ${TASKS["grid-patch"].version}`]);
});

Deno.test("plan: the model's vocabulary is every task's words, in the Base key", async () => {
  const words = (((await plan()).get("pretrain")!.params.model) as { vocabulary: string[] })
    .vocabulary;
  assert.deepEqual(words, vocabularyOf([...Object.values(TASKS), PRETRAIN_TASK]));
  assert.ok(words.includes("patch"));
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
  // pretraining data, Base, test data, eval:base, then per seed one training set and a
  // fine-tune and an evaluation for each of ntp and klal, then the report.
  assert.equal(stages.length, 4 + 1000 * 5 + 1);
  const ids = stages.map((s) => s.id);
  assert.equal(new Set(ids).size, ids.length);
  const count = (kind: string) => stages.filter((s) => s.kind === kind).length;
  assert.deepEqual(
    ["data", "pretrain", "finetune", "eval", "report"].map(count),
    [1 + 1 + 1000, 1, 2000, 1 + 2000, 1],
  );
  const byId = new Map(stages.map((s) => [s.id, s]));
  for (const seed of [0, 499, 999]) {
    for (const arm of ["ntp", "klal"]) {
      const finetune = byId.get(`finetune:${arm}:s${seed}`)!;
      assert.deepEqual(finetune.inputs, {
        base: "pretrain",
        data: `data:grid-patch:train:s${seed}`,
      });
      assert.equal(finetune.params.seed, seed);
      assert.equal(byId.get(`eval:${arm}:s${seed}`)!.inputs.model, finetune.id);
    }
    assert.equal(byId.get(`data:grid-patch:train:s${seed}`)!.params.seed, seed);
  }
  // Each training set is planned before its first fine-tune; the report reads every
  // evaluation (eval:base too) and every fine-tune.
  const at = new Map(ids.map((id, i) => [id, i]));
  assert.ok(at.get("data:grid-patch:train:s999")! < at.get("finetune:ntp:s999")!);
  assert.equal(Object.keys(byId.get("report")!.inputs).length, 1 + 2000 + 2000);
  assert.equal(new Set(stages.map((s) => s.key)).size, stages.length);
});
