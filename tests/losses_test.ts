import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { klalLoss, ntpLoss, visualAttention } from "../pipeline/model/losses.ts";

await tf.setBackend("cpu");

function close(actual: number, expected: number, tol = 1e-5) {
  assert.ok(Math.abs(actual - expected) < tol, `expected ${expected}, got ${actual}`);
}

Deno.test("klalLoss: one layer, one head, one query, by hand", () => {
  // Q = [0.5, 0.25, 0.25], P = [1, 0, 0] -> KL = log(1 / 0.5) = log 2.
  const att = tf.tensor4d([0.5, 0.25, 0.25], [1, 1, 1, 3]);
  const p = tf.tensor2d([1, 0, 0], [1, 3]);
  close(klalLoss([att], p).dataSync()[0], Math.log(2));
});

Deno.test("klalLoss: renormalises rows, averages heads and queries, zeros in P", () => {
  // Two heads, two queries, rows that do not sum to 1 (attention also went to text tokens).
  // head0/query0 [0.2, 0.2, 0.0, 0.0] -> [0.5, 0.5, 0, 0]
  // head0/query1 [0.1, 0.3, 0.0, 0.0] -> [0.25, 0.75, 0, 0]
  // head1/query0 [0.0, 0.0, 0.4, 0.4] -> [0, 0, 0.5, 0.5]
  // head1/query1 [0.3, 0.1, 0.0, 0.0] -> [0.75, 0.25, 0, 0]
  // mean -> Q = [0.375, 0.375, 0.125, 0.125]; P = [0.5, 0.5, 0, 0]
  const att = tf.tensor4d([
    [[[0.2, 0.2, 0, 0], [0.1, 0.3, 0, 0]], [[0, 0, 0.4, 0.4], [0.3, 0.1, 0, 0]]],
  ]);
  const p = tf.tensor2d([[0.5, 0.5, 0, 0]]);
  const q = visualAttention(att).arraySync()[0];
  [0.375, 0.375, 0.125, 0.125].forEach((v, i) => close(q[i], v));
  const expected = 0.5 * Math.log(0.5 / 0.375) * 2;
  close(klalLoss([att], p).dataSync()[0], expected);
});

Deno.test("klalLoss: mean over layers and batch; epsilon clamps Q before the log", () => {
  // Sample 0: Q = [1, 0] (P = [0.5, 0.5]): the zero is clamped to epsilon = 1e-4.
  // Sample 1: Q = [0.5, 0.5] (P = [1, 0]): KL = log 2.
  const layerA = tf.tensor4d([[[[1, 0]]], [[[0.5, 0.5]]]]);
  const layerB = tf.tensor4d([[[[0.5, 0.5]]], [[[0.5, 0.5]]]]);
  const p = tf.tensor2d([[0.5, 0.5], [1, 0]]);
  const eps = 1e-4;
  const klA0 = 0.5 * Math.log(0.5 / 1) + 0.5 * Math.log(0.5 / eps);
  const klA1 = Math.log(2);
  const klB0 = 0;
  const klB1 = Math.log(2);
  const expected = ((klA0 + klA1) / 2 + (klB0 + klB1) / 2) / 2;
  close(klalLoss([layerA, layerB], p, { epsilon: eps }).dataSync()[0], expected, 1e-4);
});

Deno.test("klalLoss: queryMask leaves padded query positions out of the mean", () => {
  const att = tf.tensor4d([[[[1, 0], [0, 1]]]]); // query 1 is padding
  const p = tf.tensor2d([[1, 0]]);
  const masked = klalLoss([att], p, { queryMask: tf.tensor2d([[1, 0]]) }).dataSync()[0];
  close(masked, 0);
  const unmasked = klalLoss([att], p).dataSync()[0];
  close(unmasked, Math.log(2));
});

Deno.test("klalLoss: needs at least one layer", () => {
  assert.throws(() => klalLoss([], tf.tensor2d([[1]])), /at least one layer/);
});

Deno.test("ntpLoss: cross-entropy at masked positions only, by hand", () => {
  // Position 0: logits [0, 0] target 1 -> log 2. Position 1: masked out.
  // Position 2: logits [log 3, 0] target 0 -> -log(3/4).
  const logits = tf.tensor3d([[[0, 0], [5, -5], [Math.log(3), 0]]]);
  const targets = tf.tensor2d([[1, 1, 0]], [1, 3], "int32");
  const mask = tf.tensor2d([[1, 0, 1]]);
  const expected = (Math.log(2) - Math.log(3 / 4)) / 2;
  close(ntpLoss(logits, targets, mask).dataSync()[0], expected);
});

Deno.test("klalLoss: a row with almost no visual mass keeps the gradient finite", () => {
  // All attention went to text tokens: the visual part of the row is ~1e-25.
  const att = tf.tensor4d([[[[1e-25, 3e-25, 0]]]]);
  const p = tf.tensor2d([[1, 0, 0]]);
  const grad = tf.grad((a) => klalLoss([a as tf.Tensor4D], p))(att);
  assert.ok(Array.from(grad.dataSync()).every(Number.isFinite), String(grad.dataSync()));
  assert.ok(Number.isFinite(klalLoss([att], p).dataSync()[0]));
});
