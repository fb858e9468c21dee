/**
 * The control arms and KLAL options, on hand-computed cases: which answer positions KLAL
 * supervises, the pointer head's loss, and the shuffled and uniform maps.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { klalLoss, pointerLoss, selectQueries } from "../pipeline/model/losses.ts";
import { batchTensors, disposeBatch } from "../pipeline/model/batch_tensors.ts";
import { controlTargets } from "../pipeline/train/controls.ts";
import { lossParts } from "../pipeline/model/losses.ts";
import { train } from "../pipeline/train/loop.ts";
import { tinyGridData, tinyModel, tinyTrainOptions } from "./fixtures.ts";

await tf.setBackend("cpu");

function close(actual: number, expected: number, tol = 1e-5) {
  assert.ok(Math.abs(actual - expected) < tol, `expected ${expected}, got ${actual}`);
}

Deno.test("selectQueries: 'first' keeps only the position that predicts the first answer token", () => {
  const mask = tf.tensor2d([[1, 1, 0], [1, 0, 0]]);
  assert.deepEqual(selectQueries(mask, "first").arraySync(), [[1, 0, 0], [1, 0, 0]]);
  assert.equal(selectQueries(mask, "all"), mask);
});

Deno.test("klalLoss with queries 'first': later positions no longer count", () => {
  // One head, two queries. Query 0 looks at [0.5, 0.5], query 1 at [1, 0]; P = [1, 0].
  // all: Q = [0.75, 0.25] -> KL = log(1/0.75); first: Q = [0.5, 0.5] -> KL = log 2.
  const att = tf.tensor4d([[[[0.5, 0.5], [1, 0]]]]);
  const p = tf.tensor2d([[1, 0]]);
  const mask = tf.tensor2d([[1, 1]]);
  close(klalLoss([att], p, { queryMask: mask }).dataSync()[0], Math.log(1 / 0.75));
  close(
    klalLoss([att], p, { queryMask: selectQueries(mask, "first") }).dataSync()[0],
    Math.log(2),
  );
});

Deno.test("pointerLoss: cross-entropy of softmax(logits) against P, mean over the batch", () => {
  // Row 0: softmax([0, ln 3]) = [1/4, 3/4], P = [0.5, 0.5] -> -(0.5 ln 0.25 + 0.5 ln 0.75).
  // Row 1: softmax([0, 0]) = [0.5, 0.5], P = [1, 0] -> ln 2.
  const logits = tf.tensor2d([[0, Math.log(3)], [0, 0]]);
  const p = tf.tensor2d([[0.5, 0.5], [1, 0]]);
  const row0 = -(0.5 * Math.log(0.25) + 0.5 * Math.log(0.75));
  close(pointerLoss(logits, p).dataSync()[0], (row0 + Math.log(2)) / 2);
});

Deno.test("controlTargets: uniform spreads P; shuffled moves every row to another sample", () => {
  const fixture = tinyGridData(11, 12);
  const { data } = fixture;
  const tv = data.layout.visual;
  const original = data.target.slice();
  const uniform = controlTargets(data, "uniform", 0);
  assert.ok(uniform.target.every((v) => Math.abs(v - 1 / tv) < 1e-7));
  const shuffled = controlTargets(data, "shuffled", 0);
  assert.deepEqual(data.target, original, "the input data is left unchanged");
  assert.equal(shuffled.patches, data.patches, "only the maps change");
  const rows = (t: Float32Array) =>
    Array.from({ length: data.n }, (_, i) => Array.from(t.subarray(i * tv, (i + 1) * tv)));
  const before = rows(data.target);
  const after = rows(shuffled.target);
  // The same maps, in another order (a permutation of the rows).
  assert.deepEqual(after.map((r) => r.join()).sort(), before.map((r) => r.join()).sort());
  // A cyclic derangement: with the seed's order, no sample keeps its own map's source row.
  const kept = after.filter((r, i) => r.join() === before[i].join()).length;
  const distinct = new Set(before.map((r) => r.join())).size;
  assert.ok(distinct > 1);
  assert.ok(kept < data.n, "every row kept its own map");
  assert.deepEqual(controlTargets(data, "shuffled", 0).target, shuffled.target); // seeded
  assert.notDeepEqual(controlTargets(data, "shuffled", 1).target, shuffled.target);
});

Deno.test("lossParts with a pointer head: total = NTP + lambda * pointer cross-entropy", () => {
  const fixture = tinyGridData(3, 8);
  const model = tinyModel(fixture, 2);
  const batch = batchTensors(fixture.data, [0, 1, 2, 3]);
  const d = model.config.dModel;
  const tv = fixture.data.layout.visual;
  const pointer = tf.variable(tf.randomNormal([d, tv], 0, 0.1, "float32", 9));
  tf.tidy(() => {
    const plain = lossParts(model, batch, fixture.data, 0, [0, 1]);
    const withPointer = lossParts(model, batch, fixture.data, 0.5, [0, 1], { pointer });
    const klalOnly = lossParts(model, batch, fixture.data, 0.5, [0, 1]);
    const ntp = plain.ntp.dataSync()[0];
    close(withPointer.ntp.dataSync()[0], ntp);
    // The pointer loss by hand from the hidden state at the first answer-query position.
    const out = model.forward(batch);
    const q0 = fixture.data.layout.visual + fixture.data.layout.prompt - 1;
    const hidden = out.hidden.arraySync();
    const w = pointer.arraySync() as number[][];
    const targets = batch.target.arraySync();
    let ce = 0;
    hidden.forEach((seq, b) => {
      const logits = Array.from(
        { length: tv },
        (_, j) => seq[q0].reduce((s, h, k) => s + h * w[k][j], 0),
      );
      const max = Math.max(...logits);
      const logZ = max + Math.log(logits.reduce((s, v) => s + Math.exp(v - max), 0));
      ce -= targets[b].reduce((s, p, j) => s + p * (logits[j] - logZ), 0);
    });
    ce /= hidden.length;
    close(withPointer.total.dataSync()[0], ntp + 0.5 * ce, 1e-4);
    // KLAL is still measured, but lambda weighs the pointer instead of it.
    close(withPointer.klal.dataSync()[0], klalOnly.klal.dataSync()[0]);
  });
  disposeBatch(batch);
  pointer.dispose();
  model.dispose();
});

Deno.test("training with the pointer control and first-position KLAL: tensor count flat", async () => {
  const fixture = tinyGridData(5, 16);
  const options = tinyTrainOptions({ steps: 3, batchSize: 4, lr: 3e-3, seed: 1, label: "test" });
  for (const extra of [{ supervision: "pointer" as const }, { queries: "first" as const }]) {
    const model = tinyModel(fixture, 4);
    await train(model, fixture.data, { ...options, ...extra, steps: 1 });
    const before = tf.memory().numTensors;
    const result = await train(model, fixture.data, { ...options, ...extra });
    assert.equal(tf.memory().numTensors, before, `${JSON.stringify(extra)}: tensors leaked`);
    assert.ok(result.log.every((p) => Number.isFinite(p.total)));
    model.dispose();
  }
});
