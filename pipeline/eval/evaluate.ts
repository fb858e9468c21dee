/**
 * Evaluation: greedy decoding for accuracy, and teacher-forced attention for grounding
 * metrics (how much of the answer tokens' visual attention lands on the target patches).
 */
import * as tf from "@tensorflow/tfjs";
import type { Sample, Task } from "../../tasks/task.ts";
import { type Encoded, queryCount, queryStart } from "../model/batch.ts";
import { ROW_FLOOR, selectQueries, visualAttention } from "../model/losses.ts";
import { targetSupport } from "./target_support.ts";
import type { TinyVlm } from "../model/tiny_vlm.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { answerToVisual } from "../model/losses.ts";
import { batchTensors, disposeBatch } from "../model/batch_tensors.ts";

/** One held-out sample's outcome. */
export interface Prediction {
  index: number;
  prompt: string;
  answer: string;
  prediction: string;
  correct: boolean;
  difficulty: string | number;
  /** Attention mass on the target patches, mean over layers and heads. */
  targetAttention: number;
  /** The image file the item asks about (real-format data, where items share images). */
  image?: string;
}

/** Grounding of one layer: mass on target patches and its ratio to a uniform share. */
export interface LayerGrounding {
  layer: number;
  /** Mean over samples of the attention mass on target patches (heads averaged). */
  mass: number;
  /** mass / (|target patches| / Tv): 1 = no better than uniform attention. */
  ratio: number;
  /**
   * The same ratio at the first answer position only: the one position that has not yet
   * seen any answer text, so it cannot meet a KLAL target by reading the answer.
   */
  ratioFirst: number;
  /** Raw share of the answer positions' attention that goes to visual tokens at all. */
  visualShare: number;
  /** The raw visual share at the first answer position. */
  visualShareFirst: number;
  /** Per head: mass on target patches. */
  headMass: number[];
}

/** Everything evaluation measures. */
export interface EvalResult {
  accuracy: number;
  /** Means of the task's own extra metrics (e.g. precision, IoU), if it has any. */
  extra: Record<string, number>;
  targetAttention: number;
  targetAttentionRatio: number;
  /** targetAttentionRatio at the first answer position (mean over layers). */
  targetAttentionRatioFirst: number;
  /** Raw share of attention on visual tokens, all answer positions (mean over layers). */
  visualShare: number;
  /** Raw share of attention on visual tokens at the first answer position. */
  visualShareFirst: number;
  layers: LayerGrounding[];
  predictions: Prediction[];
  /**
   * Visual attention maps of the first few samples, for figures: head-averaged
   * `layers[layer][Tv]` and per head `heads[layer][head][Tv]`.
   */
  maps: { index: number; layers: number[][]; heads: number[][][] }[];
}

/** Greedy answers for every sample of `data`, in order. */
export async function greedyDecode(
  model: TinyVlm,
  data: Encoded,
  tokenizer: Tokenizer,
  batchSize: number,
): Promise<string[]> {
  const { layout } = data;
  const tt = layout.prompt + layout.answer;
  const t = layout.visual + tt;
  const q0 = queryStart(layout);
  const out: string[] = [];
  for (let start = 0; start < data.n; start += batchSize) {
    const indices = range(start, Math.min(start + batchSize, data.n));
    const b = indices.length;
    const text = new Int32Array(b * tt);
    const keyMask = new Float32Array(b * t);
    indices.forEach((row, i) => {
      // Keep the prompt, blank the answer slots; the causal mask hides what is not yet written.
      text.set(data.text.subarray(row * tt, row * tt + layout.prompt), i * tt);
      keyMask.set(data.keyMask.subarray(row * t, row * t + t), i * t);
      keyMask.fill(1, i * t + layout.visual + layout.prompt, (i + 1) * t);
    });
    const batch = batchTensors(data, indices);
    const done = new Array(b).fill(false);
    for (let k = 0; k < layout.answer; k++) {
      const ids = tf.tidy(() => {
        const logits = model.forward({
          patches: batch.patches,
          text: tf.tensor2d(text, [b, tt], "int32"),
          keyMask: tf.tensor2d(keyMask, [b, t]),
        }).logits;
        const row = tf.slice(logits, [0, q0 + k, 0], [b, 1, -1]); // [B, 1, V]
        return tf.argMax(tf.reshape(row, [b, -1]), 1);
      });
      const next = await ids.data() as Int32Array;
      ids.dispose();
      next.forEach((id, i) => {
        if (done[i]) return;
        text[i * tt + layout.prompt + k] = id;
        if (id === tokenizer.eosId) done[i] = true;
      });
      if (done.every(Boolean)) break;
    }
    disposeBatch(batch);
    indices.forEach((_, i) => {
      out.push(tokenizer.decode(text.subarray(i * tt + layout.prompt, (i + 1) * tt)));
    });
  }
  return out;
}

/** Accuracy by greedy decoding plus attention grounding per layer and head. */
export async function evaluate(
  model: TinyVlm,
  data: Encoded,
  samples: Sample[],
  task: Task,
  tokenizer: Tokenizer,
  batchSize: number,
  mapsToKeep = 8,
): Promise<EvalResult> {
  const answers = await greedyDecode(model, data, tokenizer, batchSize);
  const { layout } = data;
  const tv = layout.visual;
  const layers = model.config.layers;
  const heads = model.config.heads;
  const all = range(0, layers);
  const headMassSum = all.map(() => new Array(heads).fill(0));
  const massSum = new Array(layers).fill(0);
  const ratioSum = new Array(layers).fill(0);
  const ratioFirstSum = new Array(layers).fill(0);
  const shareSum = new Array(layers).fill(0);
  const shareFirstSum = new Array(layers).fill(0);
  const perSample = new Float64Array(data.n);
  const maps: EvalResult["maps"] = [];
  for (let start = 0; start < data.n; start += batchSize) {
    const indices = range(start, Math.min(start + batchSize, data.n));
    const b = indices.length;
    const batch = batchTensors(data, indices);
    // Teacher-forced on the true answer: [layer] -> head-averaged [B, Tv], per head [B, H, Tv].
    const [avgTensors, headTensors, firstTensors, shareTensors] = tf.tidy(() => {
      const slices = answerToVisual(model.forward(batch).attentions, all, data);
      const firstMask = selectQueries(batch.queryMask, "first");
      const avg = slices.map((a) => visualAttention(a, batch.queryMask));
      const first = slices.map((a) => visualAttention(a, firstMask));
      const byHead = slices.map((a) => {
        const rows = tf.div(a, tf.add(tf.sum(a, 3, true), ROW_FLOOR)); // [B, H, Tq, Tv]
        const mask = tf.reshape(batch.queryMask, [b, 1, queryCount(layout), 1]);
        const summed = tf.sum(tf.mul(rows, mask), 2); // [B, H, Tv]
        const count = tf.maximum(tf.reshape(tf.sum(batch.queryMask, 1), [b, 1, 1]), 1);
        return tf.div(summed, count);
      });
      // Raw visual mass per query row, head-averaged: [B, Tq]; then all positions and first.
      const shares = slices.map((a) => {
        const perQuery = tf.mean(tf.sum(a, 3), 1); // [B, Tq]
        const count = tf.maximum(tf.sum(batch.queryMask, 1), 1); // [B]
        const allPositions = tf.div(tf.sum(tf.mul(perQuery, batch.queryMask), 1), count);
        const firstPosition = tf.reshape(tf.slice(perQuery, [0, 0], [b, 1]), [b]);
        return tf.stack([allPositions, firstPosition], 1); // [B, 2]
      });
      return [avg, byHead, first, shares];
    });
    const averaged = await Promise.all(avgTensors.map((x) => x.array() as Promise<number[][]>));
    const perHead = await Promise.all(
      headTensors.map((x) => x.array() as Promise<number[][][]>),
    );
    const firstOnly = await Promise.all(
      firstTensors.map((x) => x.array() as Promise<number[][]>),
    );
    const shares = await Promise.all(shareTensors.map((x) => x.array() as Promise<number[][]>));
    tf.dispose([...firstTensors, ...shareTensors]);
    tf.dispose([...avgTensors, ...headTensors]);
    disposeBatch(batch);
    indices.forEach((row, i) => {
      const support = targetSupport(data.target.subarray(row * tv, (row + 1) * tv));
      const share = support.filter(Boolean).length / tv;
      const massOf = (q: number[]) => q.reduce((s, v, j) => s + (support[j] ? v : 0), 0);
      let sampleMass = 0;
      for (let l = 0; l < layers; l++) {
        const mass = massOf(averaged[l][i]);
        massSum[l] += mass;
        ratioSum[l] += mass / share;
        ratioFirstSum[l] += massOf(firstOnly[l][i]) / share;
        shareSum[l] += shares[l][i][0];
        shareFirstSum[l] += shares[l][i][1];
        sampleMass += mass / layers;
        for (let h = 0; h < heads; h++) headMassSum[l][h] += massOf(perHead[l][i][h]);
      }
      perSample[row] = sampleMass;
      if (maps.length < mapsToKeep) {
        const r5 = (v: number) => round(v, 5);
        maps.push({
          index: row,
          layers: averaged.map((m) => m[i].map(r5)),
          heads: perHead.map((m) => m[i].map((h) => h.map(r5))),
        });
      }
    });
  }
  const predictions: Prediction[] = samples.map((s, i) => ({
    index: i,
    prompt: s.prompt,
    answer: s.answer,
    prediction: answers[i],
    correct: task.score(answers[i], s),
    difficulty: s.meta.difficulty,
    targetAttention: round(perSample[i], 5),
    ...(typeof s.meta.file === "string" ? { image: s.meta.file } : {}),
  }));
  const n = data.n;
  const extra: Record<string, number> = {};
  if (task.metrics) {
    samples.forEach((s, i) => {
      for (const [k, v] of Object.entries(task.metrics!(answers[i], s))) {
        extra[k] = (extra[k] ?? 0) + v / n;
      }
    });
  }
  const layerStats: LayerGrounding[] = all.map((l) => ({
    layer: l,
    mass: massSum[l] / n,
    ratio: ratioSum[l] / n,
    ratioFirst: ratioFirstSum[l] / n,
    visualShare: shareSum[l] / n,
    visualShareFirst: shareFirstSum[l] / n,
    headMass: headMassSum[l].map((m) => m / n),
  }));
  return {
    accuracy: 100 * predictions.filter((p) => p.correct).length / n,
    extra,
    targetAttention: layerStats.reduce((s, x) => s + x.mass, 0) / layers,
    targetAttentionRatio: layerStats.reduce((s, x) => s + x.ratio, 0) / layers,
    targetAttentionRatioFirst: layerStats.reduce((s, x) => s + x.ratioFirst, 0) / layers,
    visualShare: layerStats.reduce((s, x) => s + x.visualShare, 0) / layers,
    visualShareFirst: layerStats.reduce((s, x) => s + x.visualShareFirst, 0) / layers,
    layers: layerStats,
    predictions,
    maps,
  };
}

function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i);
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
