import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { backendLabel } from "../pipeline/kernels/backend.ts";
import {
  blasProvider,
  disableNativeMatmul,
  enableNativeMatmul,
  nativeAttentionEnabled,
  nativeMatmulEnabled,
} from "../pipeline/kernels/native_matmul.ts";
import { attention, attentionMask } from "../pipeline/model/ops.ts";
import {
  disableWasmCopyKernels,
  enableWasmCopyKernels,
  wasmCopyKernelsEnabled,
} from "../pipeline/kernels/wasm_kernels.ts";
import { batchTensors, disposeBatch } from "../pipeline/model/batch_tensors.ts";
import { lossParts } from "../pipeline/model/losses.ts";
import { tinyGridData, tinyModel } from "./fixtures.ts";
import { wasmWithNativeKernels } from "./native_setup.ts";

const ignore = !(await wasmWithNativeKernels("native matmul tests skipped"));

/** Run `fn` with the native matmul on, then off; leaves it on. */
function bothWays<T>(fn: () => T): { native: T; plain: T } {
  enableNativeMatmul();
  assert.ok(nativeMatmulEnabled() && nativeAttentionEnabled() && wasmCopyKernelsEnabled());
  const native = fn();
  disableNativeMatmul();
  assert.ok(!nativeMatmulEnabled() && !nativeAttentionEnabled() && !wasmCopyKernelsEnabled());
  const plain = fn();
  enableNativeMatmul();
  return { native, plain };
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

Deno.test({
  name: "native matmul: a hand-computed product, and the backend names its BLAS",
  ignore,
  fn() {
    // wasm+openblas where OpenBLAS loads, wasm+simd otherwise or with KLAL_BLAS=simd.
    assert.equal(backendLabel(), `wasm+${blasProvider()}`);
    assert.ok(["openblas", "simd"].includes(blasProvider()!));
    tf.tidy(() => {
      const a = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
      const b = tf.tensor2d([[7, 8], [9, 10], [11, 12]]);
      assert.deepEqual(tf.matMul(a, b).arraySync(), [[58, 64], [139, 154]]);
      // Transposed flags read the same storage: aᵀ·aᵀᵀ = aᵀ·a.
      assert.deepEqual(tf.matMul(a, a, true, false).arraySync(), [
        [17, 22, 27],
        [22, 29, 36],
        [27, 36, 45],
      ]);
      assert.deepEqual(tf.matMul(a, a, false, true).arraySync(), [[14, 32], [32, 77]]);
      // Batched, second operand broadcast from a batch of 1.
      const x = tf.tensor3d([[[1, 0], [0, 1]], [[2, 0], [0, 3]]]);
      const y = tf.tensor3d([[[1, 2], [3, 4]]]);
      assert.deepEqual(tf.matMul(x, y).arraySync(), [[[1, 2], [3, 4]], [[2, 4], [9, 12]]]);
    });
  },
});

Deno.test({
  name: "native matmul: 2-D, batched 3-D and transposed products and gradients equal wasm's",
  ignore,
  fn() {
    const cases: [number[], number[], boolean, boolean][] = [
      [[37, 19], [19, 23], false, false],
      [[19, 37], [19, 23], true, false],
      [[37, 19], [23, 19], false, true],
      [[19, 37], [23, 19], true, true],
      [[6, 11, 9], [6, 9, 13], false, false],
      [[6, 9, 11], [6, 13, 9], true, true],
      [[2, 3, 11, 9], [2, 3, 9, 5], false, false],
      [[6, 11, 9], [9, 13], false, false],
    ];
    for (const [sa, sb, ta, tb] of cases) {
      const a = tf.randomNormal(sa, 0, 1, "float32", 1);
      const b = tf.randomNormal(sb, 0, 1, "float32", 2);
      const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, ta, tb)));
      // tfjs's own matMul gradient cannot reduce a broadcast batch: check values only there.
      const broadcast = sa.length !== sb.length;
      const { native, plain } = bothWays(() => [
        tf.matMul(a, b, ta, tb),
        ...(broadcast ? [] : tf.grads(f)([a, b])),
      ]);
      native.forEach((t, i) =>
        assert.ok(maxDiff(t, plain[i]) < 1e-4, `${sa} x ${sb} (${ta}, ${tb}) output ${i}`)
      );
      tf.dispose([a, b, ...native, ...plain]);
    }
  },
});

Deno.test({
  // The copy kernels need no library: this runs without OpenBLAS too.
  name: "copy kernels: Identity, Cast, Slice, SplitV and Concat give wasm's exact values",
  fn() {
    const bothWays = <T>(fn: () => T) => {
      assert.ok(enableWasmCopyKernels() && wasmCopyKernelsEnabled());
      const native = fn();
      disableWasmCopyKernels();
      assert.ok(!wasmCopyKernelsEnabled());
      const plain = fn();
      enableWasmCopyKernels();
      return { native, plain };
    };
    const x = tf.randomNormal([3, 5, 7, 4], 0, 1, "float32", 3);
    const ints = tf.tensor2d([[1, -2, 3], [4, 5, -6]], [2, 3], "int32");
    const flags = tf.tensor2d([[1, 0, 1], [0, 0, 1]], [2, 3], "bool");
    const { native, plain } = bothWays(() =>
      tf.tidy(() => {
        const out: tf.Tensor[] = [
          tf.clone(x),
          tf.cast(x, "float32"),
          tf.cast(ints, "float32"),
          tf.cast(flags, "int32"),
          tf.slice(x, [1, 2, 0, 1], [2, 3, 7, 2]), // strided runs
          tf.slice(x, [1, 0, 0, 0], [1, -1, -1, -1]), // one contiguous block
          tf.slice(x, [0, 4, 6, 3], [3, 1, 1, 1]), // single elements
          tf.slice(ints, [1, 1], [1, 2]),
          tf.slice(flags, [0, 1], [2, 2]),
          ...tf.split(x, [2, 1, 4], 2),
          ...tf.split(tf.reshape(x, [-1]), [100, 320]),
          tf.concat([x, tf.mul(x, 2), tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, 1])], 3),
          tf.concat([x, x], 0),
          tf.concat([ints, ints], 1),
        ];
        // A clone shares storage: disposing the original leaves it intact.
        const y = tf.mul(x, 3);
        const kept = tf.clone(y);
        y.dispose();
        return [...out, kept];
      })
    );
    native.forEach((t, i) => {
      assert.equal(t.dtype, plain[i].dtype, `output ${i}`);
      assert.deepEqual(t.arraySync(), plain[i].arraySync(), `output ${i}`);
    });
    tf.dispose([x, ints, flags, ...native, ...plain]);
  },
});

Deno.test({
  name: "native Sum and Mean: leading, middle, all and inner axes equal wasm's (1e-4)",
  ignore,
  fn() {
    const x = tf.randomNormal([6, 11, 9, 5], 0, 1, "float32", 4);
    const axes: (number | number[] | undefined)[] = [0, [0, 1], [1, 2], 1, [0, 1, 2], 3, [2, 3], [
      0,
      2,
    ], undefined];
    for (const keepDims of [false, true]) {
      const { native, plain } = bothWays(() => [
        ...axes.map((a) => tf.sum(x, a, keepDims)),
        ...axes.map((a) => tf.mean(x, a, keepDims)),
      ]);
      native.forEach((t, i) =>
        assert.ok(maxDiff(t, plain[i]) < 1e-4, `axes ${axes[i % axes.length]} keepDims ${keepDims}`)
      );
      tf.dispose([...native, ...plain]);
    }
    x.dispose();
  },
});

Deno.test({
  name: "native attention: probabilities, mixed values and the qkv gradient equal tfjs's (1e-4)",
  ignore,
  fn() {
    const [b, t, heads, dh] = [3, 7, 4, 5];
    const d = heads * dh;
    const qkv = tf.randomNormal([b, t, 3 * d], 0, 1, "float32", 5) as tf.Tensor3D;
    const keys = tf.tensor2d([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0], [
      1,
      1,
      0,
      1,
      1,
      1,
      1,
    ]]);
    const wProbs = tf.randomNormal([b, heads, t, t], 0, 1, "float32", 6);
    const wMixed = tf.randomNormal([b, t, d], 0, 1, "float32", 7);
    const loss = (x: tf.Tensor) => {
      const { probs, mixed } = attention(x as tf.Tensor3D, heads, attentionMask(keys));
      return tf.add(tf.sum(tf.mul(probs, wProbs)), tf.sum(tf.mul(mixed, wMixed)));
    };
    const { native, plain } = bothWays(() => {
      const { probs, mixed } = tf.tidy(() => attention(qkv, heads, attentionMask(keys)));
      return [probs, mixed, tf.grad(loss)(qkv)];
    });
    assert.deepEqual(native[0].shape, [b, heads, t, t]);
    assert.deepEqual(native[1].shape, [b, t, d]);
    native.forEach((x, i) => assert.ok(maxDiff(x, plain[i]) < 1e-4, `output ${i}`));
    tf.dispose([qkv, keys, wProbs, wMixed, ...native, ...plain]);
  },
});

for (const overrides of [{}, { dModel: 32, heads: 4, layers: 3 }]) {
  Deno.test({
    name: `native matmul: a small model's loss and every gradient equal wasm's (1e-4) ${
      JSON.stringify(overrides)
    }`,
    ignore,
    fn() {
      const fixture = tinyGridData(1, 8);
      const { data } = fixture;
      const model = tinyModel(fixture, 7, overrides);
      const batch = batchTensors(data, [0, 1, 2, 3, 4, 5]);
      const variables = model.variables();
      const layers = Array.from({ length: model.config.layers }, (_, i) => i);
      const { native, plain } = bothWays(() =>
        tf.variableGrads(() => lossParts(model, batch, data, 1, layers).total, variables)
      );
      assert.ok(Math.abs(native.value.dataSync()[0] - plain.value.dataSync()[0]) < 1e-4);
      assert.ok(variables.length > 0);
      for (const v of variables) {
        assert.ok(maxDiff(native.grads[v.name], plain.grads[v.name]) < 1e-4, v.name);
      }
      tf.dispose([native.value, plain.value, ...Object.values(native.grads)]);
      tf.dispose(Object.values(plain.grads));
      disposeBatch(batch);
      model.dispose();
    },
  });
}

Deno.test({
  name: "native kernels: the tensor count is flat across training steps",
  ignore,
  fn() {
    const fixture = tinyGridData(2, 8);
    const model = tinyModel(fixture, 3, { dModel: 32, heads: 4 });
    const variables = model.variables();
    const step = () => {
      const batch = batchTensors(fixture.data, [0, 1, 2, 3]);
      const { value, grads } = tf.variableGrads(
        () => lossParts(model, batch, fixture.data, 1, [0, 1]).total,
        variables,
      );
      tf.dispose([value, ...Object.values(grads)]);
      disposeBatch(batch);
    };
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    assert.equal(tf.memory().numTensors, before);
    model.dispose();
  },
});
