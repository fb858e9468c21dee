import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { backendLabel, initBackend } from "../pipeline/backend.ts";
import {
  disableNativeMatmul,
  enableNativeMatmul,
  nativeMatmulEnabled,
} from "../pipeline/model/native_matmul.ts";
import { batchTensors, disposeBatch, lossParts } from "../pipeline/train.ts";
import { tinyGridData, tinyModel } from "./fixtures.ts";

await initBackend("wasm");
const status = enableNativeMatmul();
const ignore = !status.enabled;
if (ignore) console.warn(`native matmul tests skipped: ${status.reason}`);

/** Run `fn` with the native matmul on, then off; leaves it on. */
function bothWays<T>(fn: () => T): { native: T; plain: T } {
  enableNativeMatmul();
  assert.ok(nativeMatmulEnabled());
  const native = fn();
  disableNativeMatmul();
  assert.ok(!nativeMatmulEnabled());
  const plain = fn();
  enableNativeMatmul();
  return { native, plain };
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

Deno.test({
  name: "native matmul: a hand-computed product, and the backend says wasm+openblas",
  ignore,
  fn() {
    assert.equal(backendLabel(), "wasm+openblas");
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
  name: "native matmul: a small model's loss and every gradient equal wasm's (1e-4)",
  ignore,
  fn() {
    const fixture = tinyGridData(1, 8);
    const { data } = fixture;
    const model = tinyModel(fixture, 7);
    const batch = batchTensors(data, [0, 1, 2, 3, 4, 5]);
    const variables = model.variables();
    const { native, plain } = bothWays(() =>
      tf.variableGrads(() => lossParts(model, batch, data, 1, [0, 1]).total, variables)
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
