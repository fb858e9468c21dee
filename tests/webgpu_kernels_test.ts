/**
 * The split-K matmul of pipeline/kernels/webgpu_kernels.ts computes what tfjs's matmul
 * computes, and a training step with it wired in matches the plain WebGPU path. Here the
 * adapter is llvmpipe (a software GPU): correctness only, small shapes.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { gpuAdapter, initBackend } from "../pipeline/kernels/backend.ts";
import {
  disableSplitKMatmul,
  enableSplitKMatmul,
  splitKMatmul,
  splitKMatmulCount,
  splitPlan,
  useSplitK,
} from "../pipeline/kernels/webgpu_kernels.ts";
import type { WeightMap } from "../pipeline/model/tiny_vlm.ts";
import { lossAndGrads as fixtureLossAndGrads, tinyGridData, tinyModelConfig } from "./fixtures.ts";

const gpu = await gpuAdapter();
const adapterName = gpu.available ? gpu.description : gpu.reason;

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** max |actual - expected| / max |expected|. */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

/**
 * [transposeA, transposeB, M, N, K]: K off the 16-wide K-tile and the chunk, M and N off the
 * 16x16 output tile, every transpose combination.
 */
const CASES: [boolean, boolean, number, number, number][] = [
  [true, false, 40, 24, 1000],
  [true, false, 16, 16, 129],
  [false, false, 17, 33, 300],
  [true, true, 50, 9, 257],
  [false, true, 5, 70, 611],
  [true, false, 64, 48, 2085],
];

Deno.test("split-K plan: whole K-tiles, enough chunks, the default rule", () => {
  assert.deepEqual(splitPlan(64, 4736), { chunk: 304, splits: 16 }); // [128, 128] outputs
  assert.deepEqual(splitPlan(1, 100), { chunk: 112, splits: 1 });
  for (const [tiles, k] of [[1, 1000], [4, 2085], [64, 5000], [2, 33]]) {
    const { chunk, splits } = splitPlan(tiles, k);
    assert.equal(chunk % 16, 0);
    assert.ok(chunk * splits >= k && chunk * (splits - 1) < k, `${tiles} ${k}`);
  }
  assert.ok(useSplitK(128, 128, 4736));
  assert.ok(!useSplitK(128, 128, 512));
  assert.ok(!useSplitK(4736, 128, 128));
});

Deno.test({
  name: `webgpu split-K matmul matches tf.matMul on webgpu and cpu (${adapterName})`,
  ignore: !gpu.available,
  async fn() {
    const inputs = CASES.map(([tA, tB, m, n, k], i) => ({
      tA,
      tB,
      a: { data: values(m * k, 2 * i + 1), shape: tA ? [k, m] : [m, k] },
      b: { data: values(k * n, 2 * i + 2), shape: tB ? [n, k] : [k, n] },
    }));
    // A float32 tensor cast from int32 keeps its int32 buffer on webgpu (a one-hot, say):
    // the last case reads A that way.
    const intCase = inputs.length;
    inputs.push({
      tA: true,
      tB: false,
      a: { data: values(300 * 20, 99).map((v) => Math.round(3 * v)), shape: [300, 20] },
      b: { data: values(300 * 7, 98), shape: [300, 7] },
    });
    const product = (c: (typeof inputs)[number], split: boolean) => {
      const a = c === inputs[intCase]
        ? tf.tidy(() =>
          tf.cast(tf.tensor2d(c.a.data, c.a.shape as [number, number], "int32"), "float32")
        )
        : tf.tensor2d(c.a.data, c.a.shape as [number, number]);
      const b = tf.tensor2d(c.b.data, c.b.shape as [number, number]);
      const out = split ? splitKMatmul(a, b, c.tA, c.tB) : tf.matMul(a, b, c.tA, c.tB);
      tf.dispose([a, b]);
      return out;
    };
    await initBackend("cpu");
    const reference = await Promise.all(inputs.map(async (c) => {
      const out = product(c, false);
      const data = await out.data() as Float32Array;
      out.dispose();
      return data;
    }));
    await initBackend("webgpu");
    disableSplitKMatmul(); // tf.matMul below is tfjs-webgpu's own kernel
    try {
      for (const [i, c] of inputs.entries()) {
        const label = `case ${i === intCase ? "int32-backed A" : CASES[i].join(",")}`;
        const before = tf.memory().numTensors;
        const split = product(c, true);
        const plain = product(c, false);
        assert.deepEqual(split.shape, plain.shape, label);
        const splitData = await split.data() as Float32Array;
        const plainData = await plain.data() as Float32Array;
        tf.dispose([split, plain]);
        assert.equal(tf.memory().numTensors, before, `${label}: tensors leaked`);
        const vsCpu = relativeError(splitData, reference[i]);
        const vsPlain = relativeError(splitData, plainData);
        assert.ok(vsCpu < 1e-4, `${label}: vs cpu ${vsCpu}`);
        assert.ok(vsPlain < 1e-4, `${label}: vs webgpu tf.matMul ${vsPlain}`);
      }
    } finally {
      enableSplitKMatmul();
      await initBackend("wasm");
    }
  },
});

Deno.test({
  name: `webgpu: a training step with split-K wired in matches the plain path (${adapterName})`,
  ignore: !gpu.available,
  async fn() {
    const fixture = tinyGridData(3, 16);
    const { data } = fixture;
    const modelConfig = tinyModelConfig(fixture, { positionStd: 0.3 });
    const lossAndGrads = (weights?: WeightMap) =>
      fixtureLossAndGrads(data, modelConfig, 5, weights);
    await initBackend("webgpu");
    try {
      disableSplitKMatmul();
      const plain = await lossAndGrads();
      // The tiny model's weight gradients reduce over B·T = 8·T >= 64 positions; its
      // forward products reduce over d <= 48: only the weight gradients take split-K.
      enableSplitKMatmul({ maxOutput: 128 * 512, minK: 64 });
      const countBefore = splitKMatmulCount();
      const split = await lossAndGrads(plain.weights);
      assert.ok(splitKMatmulCount() > countBefore, "the split-K kernel never ran");
      assert.ok(Math.abs(split.loss - plain.loss) < 1e-4, `${split.loss} vs ${plain.loss}`);
      plain.grads.forEach((g, i) =>
        g.forEach((x, j) => {
          const y = split.grads[i][j];
          assert.ok(Math.abs(x - y) < 1e-4 * (1 + Math.abs(x)), `grad ${i}[${j}]: ${y} vs ${x}`);
        })
      );
    } finally {
      enableSplitKMatmul();
      await initBackend("wasm");
    }
  },
});
