/**
 * Training losses: next-token prediction and the KL attention loss (KLAL).
 *
 *   L_KLAL  = (1/|Ls|) sum_l KL(P || Q_l),   L_total = L_NTP + lambda * L_KLAL
 *
 * Pure tensor functions of their inputs, so tests can check them by hand.
 */
import * as tf from "@tensorflow/tfjs";
import { klalLossFromProbs } from "../kernels/native_klal.ts";
import { nextTokenLoss } from "../kernels/native_loss.ts";
import { fusedKernelsEnabled } from "../kernels/native_matmul.ts";
import { KLAL_EPSILON, ROW_FLOOR } from "./klal_constants.ts";
import { type Encoded, queryCount, queryStart } from "./batch.ts";
import type { BatchTensors } from "./batch_tensors.ts";
import type { TinyVlm } from "./tiny_vlm.ts";

/**
 * Which answer positions KLAL supervises: `all` (every position that predicts an answer
 * token, the paper's formula) or `first` (only the position that predicts the first answer
 * token, which has not yet seen any answer text and so must find the answer in the image).
 */
export type KlalQueries = "all" | "first";

/** The query mask `queries` selects from a batch's [B, Tq] mask of real answer positions. */
export function selectQueries(queryMask: tf.Tensor2D, queries: KlalQueries): tf.Tensor2D {
  if (queries === "all") return queryMask;
  return tf.tidy(() => {
    const [b, tq] = queryMask.shape;
    const first = tf.slice(queryMask, [0, 0], [b, 1]); // [B, 1]
    return tf.pad(first, [[0, 0], [0, tq - 1]]) as tf.Tensor2D; // [B, Tq]
  });
}

/**
 * Cross-entropy of a pointer head's distribution over the visual tokens against P: the
 * control that gives a model the same localisation signal as KLAL but leaves its attention
 * alone. Mean over the batch of -sum_i P_i log softmax(logits)_i.
 *
 * @param logits [B, Tv] pointer logits
 * @param target [B, Tv] ground-truth distribution P
 */
export function pointerLoss(logits: tf.Tensor2D, target: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const logProbs = tf.logSoftmax(logits); // [B, Tv]
    return tf.mean(tf.neg(tf.sum(tf.mul(target, logProbs), 1))) as tf.Scalar;
  });
}

export { KLAL_EPSILON, ROW_FLOOR };

/** Options of {@link klalLoss}. */
export interface KlalOptions {
  /** Lower clamp of Q before the log (default KLAL_EPSILON). */
  epsilon?: number;
  /**
   * [B, Tq] weights of the query positions (1 = an answer-predicting position, 0 = padding).
   * Default: every query position counts.
   */
  queryMask?: tf.Tensor2D;
}

/**
 * Q_l: per-(head, query) rows renormalised over the visual tokens, then averaged over heads
 * and query positions. Returns [B, Tv].
 */
export function visualAttention(attention: tf.Tensor4D, queryMask?: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const rowSums = tf.sum(attention, 3, true); // [B, H, Tq, 1]
    // + ROW_FLOOR: when a row's visual mass underflows (all attention on text), a/sum's
    // gradient -a/sum^2 overflows float32 and turns the step into NaN; the floor bounds it and
    // changes a normal row (sum >= 1e-3) by under 0.1%.
    const rows = tf.div(attention, tf.add(rowSums, ROW_FLOOR)); // [B, H, Tq, Tv]
    const perQuery = tf.mean(rows, 1); // [B, Tq, Tv]
    if (!queryMask) return tf.mean(perQuery, 1) as tf.Tensor2D; // [B, Tv]
    const weights = tf.expandDims(queryMask, 2); // [B, Tq, 1]
    const summed = tf.sum(tf.mul(perQuery, weights), 1); // [B, Tv]
    const count = tf.maximum(tf.sum(queryMask, 1, true), 1); // [B, 1]
    return tf.div(summed, count) as tf.Tensor2D;
  });
}

/**
 * KL(P || Q) averaged over the supervised layers and the batch.
 *
 * @param attentions one tensor per supervised layer, [B, H, Tq, Tv] attention probabilities
 *   from the answer-query positions to the visual tokens
 * @param target [B, Tv] ground-truth distribution P (rows sum to 1; zeros allowed)
 * @returns scalar loss
 */
export function klalLoss(
  attentions: tf.Tensor4D[],
  target: tf.Tensor2D,
  options: KlalOptions = {},
): tf.Scalar {
  if (attentions.length === 0) throw new Error("klalLoss needs at least one layer");
  const epsilon = options.epsilon ?? KLAL_EPSILON;
  return tf.tidy(() => {
    // sum_i P_i log P_i, with 0 log 0 = 0.
    const positive = tf.greater(target, 0);
    const safeP = tf.where(positive, target, tf.onesLike(target));
    const pLogP = tf.sum(tf.mul(target, tf.log(safeP)), 1); // [B]
    let total = tf.scalar(0);
    for (const attention of attentions) {
      const q = tf.maximum(visualAttention(attention, options.queryMask), epsilon); // [B, Tv]
      const crossEntropy = tf.sum(tf.mul(target, tf.log(q)), 1); // [B]
      total = tf.add(total, tf.mean(tf.sub(pLogP, crossEntropy)));
    }
    return tf.div(total, attentions.length) as tf.Scalar;
  });
}

/**
 * {@link klalLoss} over the answer-to-visual block of full attention probabilities: query
 * rows q0..q0+Tq-1 (Tq from `queryMask` [B, Tq]) and the first Tv keys (Tv from `target`) of
 * each [B, H, T, T] tensor. With the fused kernels (wasm + OpenBLAS), two kernels that read the
 * block in place; otherwise klalLoss on slices.
 */
export function klalLossOverRows(
  probs: tf.Tensor4D[],
  target: tf.Tensor2D,
  queryMask: tf.Tensor2D,
  q0: number,
): tf.Scalar {
  if (fusedKernelsEnabled()) {
    return klalLossFromProbs(probs, target, queryMask, q0, {
      epsilon: KLAL_EPSILON,
      floor: ROW_FLOOR,
    });
  }
  const [tq, tv] = [queryMask.shape[1], target.shape[1]];
  return tf.tidy(() =>
    klalLoss(
      probs.map((p) => tf.slice(p, [0, 0, q0, 0], [-1, -1, tq, tv]) as tf.Tensor4D),
      target,
      { queryMask },
    )
  );
}

/**
 * Mean cross-entropy of the next-token predictions at the masked positions.
 *
 * @param logits [B, T, V] outputs at every position
 * @param targets [B, T] int32 id of the token each position should predict
 * @param mask [B, T] 1 where the prediction counts (answer tokens), else 0
 */
export function ntpLoss(logits: tf.Tensor3D, targets: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  // With the fused kernels (wasm + OpenBLAS): one kernel, one pass per row, both directions.
  if (fusedKernelsEnabled()) return nextTokenLoss(logits, targets, mask);
  return tf.tidy(() => {
    const vocab = logits.shape[2];
    const logProbs = tf.logSoftmax(logits); // [B, T, V]
    const oneHot = tf.oneHot(tf.cast(targets, "int32"), vocab); // [B, T, V]
    const tokenLoss = tf.neg(tf.sum(tf.mul(logProbs, oneHot), 2)); // [B, T]
    const masked = tf.sum(tf.mul(tokenLoss, mask));
    return tf.div(masked, tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
  });
}

/**
 * The attention slices KLAL supervises: for each layer in `layers`, the rows of the
 * answer-query positions and the columns of the visual tokens, [B, H, Tq, Tv].
 */
export function answerToVisual(
  attentions: tf.Tensor4D[],
  layers: number[],
  data: Pick<Encoded, "layout">,
): tf.Tensor4D[] {
  const q0 = queryStart(data.layout);
  const tq = queryCount(data.layout);
  const tv = data.layout.visual;
  return layers.map((l) => tf.slice(attentions[l], [0, 0, q0, 0], [-1, -1, tq, tv]));
}

/** Supervision options of {@link lossParts} beyond lambda and the layers. */
export interface LossOptions {
  queries?: KlalQueries;
  /** The pointer head [d, Tv] of a pointer-supervised run; lambda then weighs its loss. */
  pointer?: tf.Variable;
}

/** Loss parts of one batch; `total` is what the gradient follows. */
export function lossParts(
  model: TinyVlm,
  batch: BatchTensors,
  data: Pick<Encoded, "layout">,
  lambda: number,
  layers: number[],
  options: LossOptions = {},
): { ntp: tf.Scalar; klal: tf.Scalar; total: tf.Scalar } {
  const { pointer } = options;
  const out = model.forward(batch);
  const ntp = ntpLoss(out.logits, batch.nextToken, batch.lossMask);
  const klal = klalLossOverRows(
    layers.map((l) => out.attentions[l]),
    batch.target,
    selectQueries(batch.queryMask, options.queries ?? "all"),
    queryStart(data.layout),
  );
  if (!(lambda > 0)) return { ntp, klal, total: ntp };
  if (!pointer) return { ntp, klal, total: tf.add(ntp, tf.mul(klal, lambda)) as tf.Scalar };
  // The pointer reads the position that predicts the first answer token.
  const [b, , d] = out.hidden.shape;
  const q0 = queryStart(data.layout);
  const state = tf.reshape(tf.slice(out.hidden, [0, q0, 0], [b, 1, d]), [b, d]); // [B, d]
  const guess = pointerLoss(tf.matMul(state, pointer) as tf.Tensor2D, batch.target);
  return { ntp, klal, total: tf.add(ntp, tf.mul(guess, lambda)) as tf.Scalar };
}
