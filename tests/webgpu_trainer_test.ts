/**
 * The whole-step WebGPU trainer (pipeline/train/webgpu/trainer.ts) computes what the tfjs
 * model computes: both losses, every parameter's gradient and the parameters after AdamW
 * steps, against the wasm backend to 1e-4. Here the adapter is llvmpipe (a software GPU):
 * correctness only, tiny shapes chosen off every tile size (d = 24, 3 heads of 8, MLP 48).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { gpuAdapter, initBackend } from "../pipeline/kernels/backend.ts";
import type { Encoded } from "../pipeline/model/batch.ts";
import type { KlalQueries } from "../pipeline/model/losses.ts";
import { TinyVlm, type TinyVlmConfig, type WeightMap } from "../pipeline/model/tiny_vlm.ts";
import {
  splitK,
  webgpuDevice,
  WebGpuTrainer,
  type WebGpuTrainerOptions,
} from "../pipeline/train/webgpu/trainer.ts";
import { AdamW } from "../pipeline/train/adamw.ts";
import { batchTensors, disposeBatch } from "../pipeline/model/batch_tensors.ts";
import { lossParts } from "../pipeline/model/losses.ts";
import { train } from "../pipeline/train/loop.ts";
import { type TrainOptions, type TrainSnapshot } from "../pipeline/train/options.ts";
import { trainingReason, webgpuTrainerEnabled } from "../pipeline/train/webgpu/loop.ts";
import { releaseWebgpu, tinyGridData, tinyModelConfig, tinyTrainOptions } from "./fixtures.ts";

const gpu = await gpuAdapter();
const adapterName = gpu.available ? gpu.description : gpu.reason;

/** max |a - b| over max(1, max |b|): absolute for small values, relative for large. */
function error(actual: Float32Array | number[], expected: Float32Array | number[]): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

interface Case {
  name: string;
  lambda: number;
  layers: number[];
  queries: KlalQueries;
  config: Partial<TinyVlmConfig>;
  /** Trainer choices that tiny shapes would not make by themselves (a kernel variant). */
  trainer?: Partial<WebGpuTrainerOptions>;
}

const CASES: Case[] = [
  { name: "KLAL on layers 0 and 2", lambda: 0.7, layers: [0, 2], queries: "all", config: {} },
  { name: "first query only, one layer", lambda: 2, layers: [1], queries: "first", config: {} },
  { name: "NTP only (KLAL measured)", lambda: 0, layers: [0, 1, 2], queries: "all", config: {} },
  {
    name: "128 x 128 matmul tiles, one attention row a workgroup",
    lambda: 0.7,
    layers: [0, 2],
    queries: "all",
    config: {},
    trainer: { matmulTile: 128, attentionRows: 1 },
  },
  {
    name: "eight attention rows a workgroup",
    lambda: 2,
    layers: [1],
    queries: "first",
    config: {},
    trainer: { attentionRows: 8 },
  },
];

/** The tfjs reference: losses and gradients of one batch. */
async function reference(
  model: TinyVlm,
  data: Encoded,
  indices: number[],
  c: Case,
): Promise<{ ntp: number; klal: number; total: number; grads: Float32Array[] }> {
  const batch = batchTensors(data, indices);
  const vars = model.variables();
  let ntp: tf.Scalar | undefined;
  let klal: tf.Scalar | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const parts = lossParts(model, batch, data, c.lambda, c.layers, { queries: c.queries });
    ntp = tf.keep(parts.ntp);
    klal = tf.keep(parts.klal);
    return parts.total;
  }, vars);
  const out = {
    ntp: (await ntp!.data())[0],
    klal: (await klal!.data())[0],
    total: (await value.data())[0],
    grads: await Promise.all(vars.map(async (v) => await grads[v.name].data() as Float32Array)),
  };
  tf.dispose([value, ntp!, klal!, ...Object.values(grads)]);
  disposeBatch(batch);
  return out;
}

function trainerOptions(config: TinyVlmConfig, data: Encoded, batch: number, c: Case) {
  return {
    config,
    layout: data.layout,
    batch,
    lambda: c.lambda,
    layers: c.layers,
    queries: c.queries,
    weightDecay: 0.01,
    clipNorm: 1,
    ...c.trainer,
  } satisfies WebGpuTrainerOptions;
}

async function flatParameters(model: TinyVlm) {
  const weights = await model.getWeights();
  return Object.entries(weights).map(([name, w]) => ({ name, shape: w.shape, data: w.data }));
}

Deno.test("webgpu trainer: split-K plan covers K in whole tiles", () => {
  for (const [m, n, k] of [[128, 128, 4736], [192, 128, 4096], [24, 48, 40], [64, 64, 127]]) {
    const { splits, chunk } = splitK(m, n, k);
    assert.equal(chunk % 16, 0, `${m}x${n}x${k}`);
    assert.ok(chunk * splits >= k && chunk * (splits - 1) < k, `${m}x${n}x${k}`);
  }
  assert.equal(splitK(4736, 384, 128).splits, 1); // a forward product: no split
  assert.ok(splitK(128, 384, 4736).splits > 1); // a weight gradient: split
});

Deno.test({
  name: `webgpu trainer: losses and every gradient match tfjs (${adapterName})`,
  ignore: !gpu.available,
  async fn() {
    await initBackend("wasm");
    const fixture = tinyGridData(5, 24);
    const { data } = fixture;
    const device = await webgpuDevice();
    const indices = [3, 0, 7, 12, 5, 9, 1, 20, 14, 2];
    for (const c of CASES) {
      const config = tinyModelConfig(fixture, {
        dModel: 24,
        heads: 3,
        layers: 3,
        mlpRatio: 2,
        positionStd: 0.3,
        ...c.config,
      });
      const model = new TinyVlm(config, 11);
      const expected = await reference(model, data, indices, c);
      const trainer = await WebGpuTrainer.create(
        device,
        trainerOptions(config, data, indices.length, c),
        await flatParameters(model),
      );
      try {
        trainer.setBatch(data, indices);
        const { stats, grads } = await trainer.gradients();
        assert.ok(
          Math.abs(stats.ntp - expected.ntp) < 1e-4,
          `${c.name}: ntp ${stats.ntp} vs ${expected.ntp}`,
        );
        assert.ok(
          Math.abs(stats.klal - expected.klal) < 1e-4,
          `${c.name}: klal ${stats.klal} vs ${expected.klal}`,
        );
        assert.ok(Math.abs(stats.total - expected.total) < 1e-4, `${c.name}: total`);
        assert.ok(expected.klal > 0.01, `${c.name}: KLAL is measured (${expected.klal})`);
        let at = 0;
        const names = [...model.params.keys()];
        let squares = 0;
        expected.grads.forEach((g, i) => {
          const got = grads.subarray(at, at + g.length);
          at += g.length;
          const e = error(got, g);
          assert.ok(e < 1e-4, `${c.name}: gradient of ${names[i]} off by ${e}`);
          for (const x of g) squares += x * x;
        });
        assert.equal(at, trainer.parameterCount);
        const norm = Math.sqrt(squares);
        assert.ok(Math.abs(stats.gradNorm - norm) < 1e-4 * norm, `${c.name}: norm`);
      } finally {
        trainer.dispose();
        model.dispose();
      }
    }
    device.destroy();
  },
});

Deno.test({
  name: `webgpu trainer: three AdamW steps match the tfjs optimizer (${adapterName})`,
  ignore: !gpu.available,
  async fn() {
    await initBackend("wasm");
    const fixture = tinyGridData(6, 16);
    const { data } = fixture;
    const config = tinyModelConfig(fixture, { dModel: 24, heads: 3, layers: 2, mlpRatio: 2 });
    const c = CASES[0];
    const caseHere = { ...c, layers: [0, 1] };
    const model = new TinyVlm(config, 4);
    const device = await webgpuDevice();
    // Adam turns any gradient, even float noise, into a step of about lr: the key bias's
    // gradient is 0 in exact arithmetic (a softmax ignores a constant per row) and ~1e-9 in
    // float32, of either sign on either side. epsilon = 1e-4 keeps such noise from moving a
    // parameter while real gradients (~1e-2 here) still do.
    const epsilon = 1e-4;
    const trainer = await WebGpuTrainer.create(
      device,
      { ...trainerOptions(config, data, 8, caseHere), epsilon },
      await flatParameters(model),
    );
    const optimizer = new AdamW(model.variables(), 0.01, 0.9, 0.999, epsilon);
    const batches = [[0, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 14, 15], [
      3,
      5,
      7,
      9,
      11,
      13,
      15,
      1,
    ]];
    const lrs = [0.05, 0.02, 0.01];
    try {
      const tfLosses: number[] = [];
      for (const [s, rows] of batches.entries()) {
        const batch = batchTensors(data, rows);
        const vars = model.variables();
        const { value, grads } = tf.variableGrads(
          () => lossParts(model, batch, data, caseHere.lambda, caseHere.layers).total,
          vars,
        );
        tfLosses.push((await value.data())[0]);
        await optimizer.apply(vars.map((v) => grads[v.name]), lrs[s], 1);
        tf.dispose([value, ...Object.values(grads)]);
        disposeBatch(batch);
        trainer.setBatch(data, rows);
        await trainer.step(lrs[s]);
      }
      const stats = await trainer.drain(true);
      assert.deepEqual(stats.map((s) => s.step), [1, 2, 3]);
      stats.forEach((s, i) => {
        assert.ok(Math.abs(s.stats.total - tfLosses[i]) < 1e-4, `step ${i + 1}: loss`);
      });
      assert.ok(tfLosses[2] < tfLosses[0], "the loss falls");
      const got = await trainer.parameters();
      const weights = await model.getWeights();
      for (const [name, w] of Object.entries(weights)) {
        const e = error(got.get(name)!, w.data);
        assert.ok(e < 1e-4, `${name} after three steps off by ${e}`);
      }
      const state = await trainer.optimizerState();
      const expected = await optimizer.snapshot();
      assert.equal(state.t, expected.t);
      assert.ok(error(state.m, expected.m) < 1e-4, "first moments");
      assert.ok(error(state.v, expected.v) < 1e-4, "second moments");
    } finally {
      trainer.dispose();
      optimizer.dispose();
      model.dispose();
      device.destroy();
    }
  },
});

/**
 * Every parameter but the key part of each qkv bias: its gradient is 0 in exact arithmetic (a
 * softmax ignores a constant added to a row) and float noise in practice, which Adam turns
 * into steps of about lr in whatever direction the noise points, differently per backend.
 */
function comparable(name: string, data: Float32Array, d: number): Float32Array {
  if (!/\.qkv\.b$/.test(name)) return data;
  return new Float32Array([...data.subarray(0, d), ...data.subarray(2 * d)]);
}

Deno.test({
  name:
    `webgpu trainer: train() on WebGPU matches train() on wasm, callbacks and resume (${adapterName})`,
  ignore: !gpu.available,
  async fn() {
    const fixture = tinyGridData(8, 24);
    const { data } = fixture;
    const config = tinyModelConfig(fixture, { dModel: 24, heads: 3, layers: 2, mlpRatio: 2 });
    const options = tinyTrainOptions({ steps: 6, batchSize: 8, lr: 1e-2, seed: 3, label: "t" });
    const run = async (backend: "wasm" | "webgpu", extra: Partial<TrainOptions> = {}) => {
      await initBackend(backend);
      const model = new TinyVlm(config, 9);
      const evals: number[] = [];
      const snapshots: { snapshot: TrainSnapshot; weights: WeightMap }[] = [];
      const result = await train(model, data, {
        ...options,
        evalEvery: 2,
        onEval: async (step) => {
          // The model's variables hold the weights trained so far.
          evals.push(step, (await model.getWeights())["head.w"].data[0]);
        },
        checkpointEvery: 4,
        onCheckpoint: async (snapshot) => {
          // As the runner's checkpoints do: the model's weights beside the training state.
          snapshots.push({ snapshot, weights: await model.getWeights() });
        },
        ...extra,
      });
      const weights = await model.getWeights();
      model.dispose();
      return { result, evals, snapshots, weights };
    };
    const cpu = await run("wasm");
    const before = tf.memory().numTensors;
    const gpuRun = await run("webgpu");
    assert.equal(tf.memory().numTensors, before, "the trainer path leaves no tensors");
    assert.deepEqual(gpuRun.result.log.map((p) => p.step), cpu.result.log.map((p) => p.step));
    gpuRun.result.log.forEach((p, i) => {
      const q = cpu.result.log[i];
      assert.ok(Math.abs(p.total - q.total) < 1e-4, `step ${p.step}: ${p.total} vs ${q.total}`);
      assert.ok(Math.abs(p.klal - q.klal) < 1e-4, `step ${p.step}: klal`);
    });
    assert.equal(gpuRun.evals.length, 6); // after steps 2, 4, 6
    gpuRun.evals.forEach((v, i) => assert.ok(Math.abs(v - cpu.evals[i]) < 1e-4, `eval ${i}`));
    for (const [name, w] of Object.entries(cpu.weights)) {
      const e = error(
        comparable(name, gpuRun.weights[name].data, 24),
        comparable(name, w.data, 24),
      );
      assert.ok(e < 1e-4, `${name} after training off by ${e}`);
    }
    // Resuming from the step-4 checkpoint gives the uninterrupted run's weights.
    assert.equal(gpuRun.snapshots.length, 1);
    const { snapshot, weights } = gpuRun.snapshots[0];
    assert.equal(snapshot.step, 4);
    assert.equal(snapshot.optimizer.t, 4);
    await initBackend("webgpu");
    const half = new TinyVlm(config, 1);
    half.setWeights(weights);
    const resumed = await train(half, data, { ...options, resume: snapshot });
    assert.deepEqual(resumed.log.map((p) => p.step), [0, 1, 2, 3, 4, 5]);
    const after = await half.getWeights();
    half.dispose();
    for (const [name, w] of Object.entries(gpuRun.weights)) {
      assert.ok(error(after[name].data, w.data) < 1e-6, `${name} after resuming`);
    }
    // A non-finite loss stops the run, naming the step and the loss part.
    const broken = new TinyVlm(config, 2);
    const bad = await broken.getWeights();
    bad["head.w"].data[0] = NaN; // every logit reading it is NaN from step 0
    broken.setWeights(bad);
    await assert.rejects(
      train(broken, data, { ...options, label: "nan" }),
      /^Error: nan: ntp loss is NaN at step 0$/,
    );
    broken.dispose();
    await releaseWebgpu();
  },
});

Deno.test("webgpu trainer: when train() uses it, and what the report's backend reason says", () => {
  const spec = "set in the spec";
  assert.equal(
    trainingReason(spec, "webgpu"),
    "set in the spec; training steps on the whole-step WebGPU trainer",
  );
  assert.equal(trainingReason(spec, "webgpu", "pointer"), spec); // the pointer control: tfjs
  assert.equal(trainingReason(spec, "wasm+openblas"), spec);
  Deno.env.set("KLAL_WEBGPU_TRAINER", "off");
  try {
    assert.equal(webgpuTrainerEnabled("webgpu"), false);
    assert.equal(trainingReason(spec, "webgpu"), spec);
  } finally {
    Deno.env.delete("KLAL_WEBGPU_TRAINER");
  }
  assert.equal(webgpuTrainerEnabled("webgpu"), true);
});

Deno.test({
  name:
    `webgpu trainer: stacked arms each train as they would alone (own λ, lr, batch, map, start, steps) (${adapterName})`,
  ignore: !gpu.available,
  async fn() {
    await initBackend("wasm");
    const fixture = tinyGridData(6, 24);
    const { data } = fixture;
    const config = tinyModelConfig(fixture, { dModel: 24, heads: 3, layers: 2, mlpRatio: 2 });
    // A second copy of the data with the map targets reversed: an arm with other maps (as a
    // control arm's), the same shapes.
    const flipped: Encoded = { ...data, target: data.target.slice().reverse() };
    const arms = [
      { lambda: 0.7, seed: 1, data, lr: [0.05, 0.02, 0.01, 0.01], rows: 0 },
      { lambda: 0, seed: 2, data, lr: [0.03, 0.03, 0.01, 0.005], rows: 5 },
      { lambda: 2, seed: 3, data: flipped, lr: [0.02, 0.04, 0.02, 0.01], rows: 9 },
    ];
    // Arm 2 sits out step 1 (0-based): it trains three steps while the others train four.
    const active = (arm: number, step: number) => !(arm === 2 && step === 1);
    const batchOf = (arm: number, step: number) =>
      Array.from({ length: 8 }, (_, i) => (arms[arm].rows + 3 * step + 5 * i) % data.n);
    const base = { ...trainerOptions(config, data, 8, CASES[0]), layers: [0, 1], epsilon: 1e-4 };
    const device = await webgpuDevice();
    const models = arms.map((a) => new TinyVlm(config, a.seed));
    const initial = await Promise.all(models.map(flatParameters));
    models.forEach((m) => m.dispose());
    const stacked = await WebGpuTrainer.createStacked(
      device,
      base,
      arms.map((a, i) => ({ lambda: a.lambda, parameters: initial[i] })),
    );
    try {
      assert.equal(stacked.arms, 3);
      const alone = await WebGpuTrainer.create(device, base, initial[0]);
      assert.equal(stacked.dispatchesPerStep, alone.dispatchesPerStep, "one step, any arms");
      alone.dispose();
      for (let step = 0; step < 4; step++) {
        arms.forEach((a, i) => stacked.setBatch(a.data, batchOf(i, step), i));
        await stacked.step(arms.map((a) => a.lr[step]), arms.map((_, i) => active(i, step)));
      }
      const results = await stacked.drain(true);
      assert.deepEqual(results.map((r) => r.step), [1, 2, 3, 4]);
      for (const [i, a] of arms.entries()) {
        const solo = await WebGpuTrainer.create(device, { ...base, lambda: a.lambda }, initial[i]);
        try {
          const losses: number[] = [];
          for (let step = 0; step < 4; step++) {
            if (!active(i, step)) continue;
            solo.setBatch(a.data, batchOf(i, step));
            await solo.step(a.lr[step]);
            losses.push(step);
          }
          const soloStats = await solo.drain(true);
          const mine = results.filter((_, step) => active(i, step)).map((r) => r.arms[i]);
          assert.equal(mine.length, soloStats.length);
          mine.forEach((s, k) => {
            const e = soloStats[k].stats;
            for (const part of ["ntp", "klal", "total", "gradNorm"] as const) {
              assert.ok(
                Math.abs(s[part] - e[part]) < 1e-4,
                `arm ${i} step ${losses[k]}: ${part} ${s[part]} vs ${e[part]}`,
              );
            }
          });
          const got = await stacked.parameters(i);
          for (const [name, w] of await solo.parameters()) {
            const e = error(got.get(name)!, w);
            assert.ok(e < 1e-4, `arm ${i}: ${name} off by ${e}`);
          }
          const state = await stacked.optimizerState(i);
          const expected = await solo.optimizerState();
          assert.equal(state.t, expected.t, `arm ${i}: optimizer steps`);
          assert.ok(error(state.m, expected.m) < 1e-4, `arm ${i}: first moments`);
          assert.ok(error(state.v, expected.v) < 1e-4, `arm ${i}: second moments`);
        } finally {
          solo.dispose();
        }
      }
      // The arms trained apart: arm 1 (NTP) and arm 0 started elsewhere and still differ.
      const p0 = (await stacked.parameters(0)).get("head.w")!;
      const p1 = (await stacked.parameters(1)).get("head.w")!;
      assert.ok(error(p0, p1) > 1e-3, "arms are not one model");
      assert.equal((await stacked.optimizerState(2)).t, 3, "the arm that sat a step out");
      assert.throws(() => stacked.setBatch(data, batchOf(0, 0), 3), /no arm 3 \(it has 3\)/);
      await assert.rejects(stacked.step([0.1]), /a value for each of 3 arms/);
    } finally {
      stacked.dispose();
      device.destroy();
    }
  },
});
