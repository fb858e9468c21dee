import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../pipeline/kernels/backend.ts";
import { queryStart } from "../pipeline/model/batch.ts";
import { disableNativeMatmul, enableNativeMatmul } from "../pipeline/kernels/native_matmul.ts";
import { batchMatmul, gelu, layerNorm, matmul } from "../pipeline/model/ops.ts";
import type { TinyVlm } from "../pipeline/model/tiny_vlm.ts";
import { AdamW } from "../pipeline/train/adamw.ts";
import { batchTensors, disposeBatch } from "../pipeline/model/batch_tensors.ts";
import { train } from "../pipeline/train/loop.ts";
import { tinyGridData, tinyModel as makeTinyModel, tinyTrainOptions } from "./fixtures.ts";

await initBackend("wasm");

const fixture = tinyGridData(1, 24);
const { samples, tokenizer, layout, data } = fixture;

function tinyModel(seed = 0): TinyVlm {
  return makeTinyModel(fixture, seed);
}

Deno.test("forward: shapes, attention rows sum to 1, causal and padding masks hold", () => {
  const model = tinyModel();
  const batch = batchTensors(data, [0, 1, 2]);
  tf.tidy(() => {
    const { logits, attentions } = model.forward(batch);
    const t = layout.visual + layout.prompt + layout.answer;
    assert.deepEqual(logits.shape, [3, t, tokenizer.size]);
    assert.equal(attentions.length, 2);
    assert.deepEqual(attentions[0].shape, [3, 2, t, t]);
    const a = attentions[1].arraySync();
    const keys = batch.keyMask.arraySync();
    for (let b = 0; b < 3; b++) {
      for (let i = 0; i < t; i++) {
        const row = a[b][0][i];
        const sum = row.reduce((s, v) => s + v, 0);
        assert.ok(Math.abs(sum - 1) < 1e-5, `row ${i} sums to ${sum}`);
        for (let j = 0; j < t; j++) {
          if (j > i) assert.equal(row[j], 0, `query ${i} sees future key ${j}`);
          if (keys[b][j] === 0) assert.equal(row[j], 0, `query ${i} sees padding key ${j}`);
        }
      }
    }
  });
  disposeBatch(batch);
  model.dispose();
});

/** Run `check` on the native wasm kernels (when OpenBLAS is present), then on stock wasm. */
function onBothWasmPaths(check: () => void): void {
  try {
    enableNativeMatmul();
    check();
    disableNativeMatmul();
    check();
  } finally {
    enableNativeMatmul();
  }
}

Deno.test("fast matmuls: same values and gradients as tf.matMul (1e-4)", () => {
  onBothWasmPaths(() =>
    tf.tidy(() => {
      const a = tf.randomNormal([5, 7], 0, 1, "float32", 1) as tf.Tensor2D;
      const b = tf.randomNormal([7, 3], 0, 1, "float32", 2) as tf.Tensor2D;
      const f = (x: tf.Tensor2D, y: tf.Tensor2D) => tf.sum(tf.square(matmul(x, y)));
      const g = (x: tf.Tensor2D, y: tf.Tensor2D) => tf.sum(tf.square(tf.matMul(x, y)));
      const [fa, fb] = tf.grads((x, y) => f(x as tf.Tensor2D, y as tf.Tensor2D))([a, b]);
      const [ga, gb] = tf.grads((x, y) => g(x as tf.Tensor2D, y as tf.Tensor2D))([a, b]);
      assert.ok(tf.max(tf.abs(tf.sub(fa, ga))).dataSync()[0] < 1e-4);
      assert.ok(tf.max(tf.abs(tf.sub(fb, gb))).dataSync()[0] < 1e-4);
      const x3 = tf.randomNormal([2, 4, 5], 0, 1, "float32", 3) as tf.Tensor3D;
      const y3 = tf.randomNormal([2, 5, 6], 0, 1, "float32", 4) as tf.Tensor3D;
      const z3 = tf.randomNormal([2, 6, 5], 0, 1, "float32", 5) as tf.Tensor3D;
      const h = (x: tf.Tensor, y: tf.Tensor) =>
        tf.sum(tf.square(batchMatmul(x as tf.Tensor3D, y as tf.Tensor3D)));
      const k = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y)));
      const [hx, hy] = tf.grads(h)([x3, y3]);
      const [kx, ky] = tf.grads(k)([x3, y3]);
      assert.ok(tf.max(tf.abs(tf.sub(hx, kx))).dataSync()[0] < 1e-4);
      assert.ok(tf.max(tf.abs(tf.sub(hy, ky))).dataSync()[0] < 1e-4);
      // transposeB: x3 z3ᵀ
      const ht = (x: tf.Tensor, z: tf.Tensor) =>
        tf.sum(tf.square(batchMatmul(x as tf.Tensor3D, z as tf.Tensor3D, true)));
      const kt = (x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, z, false, true)));
      const [htx, htz] = tf.grads(ht)([x3, z3]);
      const [ktx, ktz] = tf.grads(kt)([x3, z3]);
      assert.ok(tf.max(tf.abs(tf.sub(htx, ktx))).dataSync()[0] < 1e-4);
      assert.ok(tf.max(tf.abs(tf.sub(htz, ktz))).dataSync()[0] < 1e-4);
    })
  );
});

Deno.test("layer norm and GELU: values and hand-written gradients equal autograd's (1e-4)", () => {
  const layerNormReference = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b);
  };
  const geluReference = (x: tf.Tensor) => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
  onBothWasmPaths(() =>
    tf.tidy(() => {
      const x = tf.randomNormal([3, 5, 8], 0, 2, "float32", 1);
      const g = tf.randomNormal([8], 1, 0.5, "float32", 2);
      const b = tf.randomNormal([8], 0, 0.5, "float32", 3);
      const w = tf.randomNormal([3, 5, 8], 0, 1, "float32", 4);
      const close = (p: tf.Tensor, q: tf.Tensor, what: string) =>
        assert.ok(tf.max(tf.abs(tf.sub(p, q))).dataSync()[0] < 1e-4, what);
      close(layerNorm(x, g, b), layerNormReference(x, g, b), "layer norm value");
      const ours = tf.grads((p, q, r) => tf.sum(tf.mul(layerNorm(p, q, r), w)))([x, g, b]);
      const ref = tf.grads((p, q, r) => tf.sum(tf.mul(layerNormReference(p, q, r), w)))([x, g, b]);
      ours.forEach((t, i) => close(t, ref[i], `layer norm gradient ${i}`));
      close(gelu(x), geluReference(x), "gelu value");
      const geluGrad = tf.grad((p) => tf.sum(tf.mul(gelu(p), w)))(x);
      close(geluGrad, tf.grad((p) => tf.sum(tf.mul(geluReference(p), w)))(x), "gelu gradient");
    })
  );
});

Deno.test("training: tensor count is flat across steps, loss falls, same seed same result", async () => {
  const options = tinyTrainOptions({ steps: 6, batchSize: 8, lr: 3e-3, seed: 3, label: "test" });
  const model = tinyModel(5);
  await train(model, data, { ...options, steps: 1 }); // first step allocates lazily-created state
  const before = tf.memory().numTensors;
  const first = await train(model, data, options);
  assert.equal(tf.memory().numTensors, before, "tensor count changed across training steps");
  const last = first.log.at(-1)!;
  assert.ok(
    last.total < first.log[0].total,
    `loss did not fall: ${first.log[0].total} -> ${last.total}`,
  );
  model.dispose();

  const again: number[][] = [];
  for (const m of [tinyModel(5), tinyModel(5)]) {
    await train(m, data, { ...options, steps: 1 });
    const r = await train(m, data, options);
    m.dispose();
    again.push(r.log.map((p) => p.total));
  }
  assert.deepEqual(again[0], again[1]);
});

Deno.test("query positions: the position before each answer token predicts it", () => {
  const t = layout.visual + layout.prompt + layout.answer;
  const q0 = queryStart(layout);
  const answer = [...tokenizer.encode(samples[0].answer), tokenizer.eosId];
  for (let j = 0; j < answer.length; j++) {
    assert.equal(data.nextToken[q0 + j], answer[j]);
    assert.equal(data.lossMask[q0 + j], 1);
    // the token at q0 + j + 1 (the input) is the answer token itself
    assert.equal(data.text[q0 + j + 1 - layout.visual], answer[j]);
  }
  assert.equal(data.lossMask.slice(0, t).reduce((s, v) => s + v, 0), answer.length);
});

Deno.test("AdamW: matches a plain per-parameter reference (clipping and decay included)", async () => {
  const w0 = [[0.5, -1.0], [2.0, 0.25]];
  const b0 = [0.3, -0.2];
  const w = tf.variable(tf.tensor2d(w0), true, "adam-test-w");
  const b = tf.variable(tf.tensor1d(b0), true, "adam-test-b");
  const opt = new AdamW([w, b], 0.1);
  // Reference state, in float64.
  const ref = { w: w0.flat(), b: [...b0] };
  const m = { w: [0, 0, 0, 0], b: [0, 0] };
  const v = { w: [0, 0, 0, 0], b: [0, 0] };
  const lr = 0.05;
  const clip = 1.5;
  for (let t = 1; t <= 4; t++) {
    // gradients of sum((2*w)^2) + sum(b^3): 8w and 3b^2
    const gw = ref.w.map((x) => 8 * x);
    const gb = ref.b.map((x) => 3 * x * x);
    const norm = Math.sqrt([...gw, ...gb].reduce((s, g) => s + g * g, 0));
    const scale = Math.min(1, clip / norm);
    const step = (key: "w" | "b", grads: number[], decay: boolean) => {
      grads.forEach((g0, i) => {
        const g = g0 * scale;
        m[key][i] = 0.9 * m[key][i] + 0.1 * g;
        v[key][i] = 0.999 * v[key][i] + 0.001 * g * g;
        const mh = m[key][i] / (1 - 0.9 ** t);
        const vh = v[key][i] / (1 - 0.999 ** t);
        const x = ref[key][i];
        ref[key][i] = x - lr * (mh / (Math.sqrt(vh) + 1e-8) + (decay ? 0.1 * x : 0));
      });
    };
    const grads = tf.tidy(() =>
      tf.grads((a, c) => tf.add(tf.sum(tf.square(tf.mul(a, 2))), tf.sum(tf.pow(c, 3))))([w, b])
    );
    await opt.apply(grads, lr, clip);
    tf.dispose(grads);
    step("w", gw, true);
    step("b", gb, false);
  }
  const got = [...w.dataSync(), ...b.dataSync()];
  const want = [...ref.w, ...ref.b];
  got.forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-5, `param ${i}: ${x} vs ${want[i]}`));
  opt.dispose();
  w.dispose();
  b.dispose();
});
