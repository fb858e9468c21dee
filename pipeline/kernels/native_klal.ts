/**
 * KLAL as two fused kernels for the wasm backend (registered with the others of
 * ./native_fused.ts), reading the answer-to-visual block straight from each supervised
 * layer's full attention probabilities: no slices, and no padded gradients built from them.
 * Replaces ~20 stock kernels forward and ~25 backward (../model/losses.ts klalLossOverRows without
 * the fused kernels, klalLoss on slices, computes the same).
 *
 * For layer l, sample b, head h and query row i (row q0 + i of the attention), over the
 * visual keys j < Tv: S = sum_j A_bhij + ROW_FLOOR, c_bi = w_bi / (H max(sum_i w_bi, 1)) with w
 * the query mask, Q_bj = sum_h,i c_bi A_bhij / S, and
 *   loss = (1 / L) sum_l (1 / B) sum_b sum_j P_bj (log P_bj - log max(Q_bj, eps)).
 * Its gradient: G_bj = -P_bj / (L B Q_bj) where Q_bj >= eps (else 0), and per row
 *   dA_bhij = c_bi (G_bj - sum_k G_bk A_bhik / S) / S,
 * every other entry of dA 0.
 */
import * as tf from "@tensorflow/tfjs";
import { heapViews } from "./wasm_kernels.ts";
import type { KernelArgs } from "./wasm_kernels.ts";
import { sameShapes, Stock, type WasmBackendLike } from "./native_stock.ts";

/** The kernels' names. */
export const KLAL_LOSS = "KlalKlLoss", KLAL_LOSS_GRAD = "KlalKlLossGrad";

/** Sizes of a call: L layers of [B, H, T, T] probabilities, target [B, Tv], mask [B, Tq]. */
function dims(args: KernelArgs) {
  const inputs = args.inputs as Record<string, tf.TensorInfo>;
  const { count, q0, epsilon, floor } = args.attrs as Record<string, number>;
  const probs = Array.from({ length: count }, (_, l) => inputs[`p${l}`]);
  const [b, tv] = inputs.target.shape;
  const tq = inputs.mask.shape[1];
  const [, h, t] = probs[0].shape;
  for (const p of probs) {
    if (p.dtype !== "float32" || p.shape.join() !== [b, h, t, t].join()) {
      throw new Error(`${KLAL_LOSS}: every layer's probabilities [${[b, h, t, t]}] float32`);
    }
  }
  if (inputs.mask.shape[0] !== b || q0 + tq > t || tv > t) {
    throw new Error(
      `${KLAL_LOSS}: mask [${inputs.mask.shape}] and target [${inputs.target.shape}] do not fit ` +
        `rows ${q0}..${q0 + tq - 1} of [${b}, ${h}, ${t}, ${t}] attention`,
    );
  }
  return { probs, b, h, t, tv, tq, q0, count, epsilon, floor };
}

/** c_bi = w_bi / (H max(sum_i w_bi, 1)): the weight of query row i of sample b in Q_b. */
function rowWeights(w: Float32Array, b: number, tq: number, h: number): Float64Array {
  const c = new Float64Array(b * tq);
  for (let s = 0; s < b; s++) {
    let count = 0;
    for (let i = 0; i < tq; i++) count += w[s * tq + i];
    const scale = 1 / (h * Math.max(count, 1));
    for (let i = 0; i < tq; i++) c[s * tq + i] = w[s * tq + i] * scale;
  }
  return c;
}

/**
 * {target, mask, p0..p(L-1)}, attrs {count, q0, epsilon, floor} -> [loss [], inverse row sums
 * 1/S [L, B, H, Tq], Q [L, B, Tv]] (the last two for the gradient).
 */
export function klalLossKernel(args: KernelArgs): tf.TensorInfo[] {
  const d = dims(args);
  const { b, h, t, tv, tq, q0, count, epsilon, floor } = d;
  const inputs = args.inputs as Record<string, tf.TensorInfo>;
  const backend = args.backend as WasmBackendLike;
  sameShapes(KLAL_LOSS, [b, tv], [inputs.target]);
  const stock = new Stock(backend);
  const loss = stock.make([]);
  const inverse = stock.make([count, b, h, tq]);
  const qOut = stock.make([count, b, tv]);
  const [target, mask, inv, q, out] = heapViews(backend, [
    inputs.target,
    inputs.mask,
    inverse,
    qOut,
    loss,
  ]);
  const c = rowWeights(mask, b, tq, h);
  // sum_j P log P over the batch (0 log 0 = 0): the same for every layer.
  let entropy = 0;
  for (let j = 0; j < b * tv; j++) if (target[j] > 0) entropy += target[j] * Math.log(target[j]);
  let total = 0;
  d.probs.forEach((probs, l) => {
    const [a] = heapViews(backend, [probs]);
    q.fill(0, l * b * tv, (l + 1) * b * tv);
    for (let s = 0; s < b; s++) {
      const qs = (l * b + s) * tv;
      for (let head = 0; head < h; head++) {
        for (let i = 0; i < tq; i++) {
          const row = ((s * h + head) * t + q0 + i) * t;
          let sum = floor;
          for (let j = 0; j < tv; j++) sum += a[row + j];
          const r = 1 / sum;
          inv[((l * b + s) * h + head) * tq + i] = r;
          const weight = c[s * tq + i] * r;
          if (weight !== 0) { for (let j = 0; j < tv; j++) q[qs + j] += weight * a[row + j]; }
        }
      }
      for (let j = 0; j < tv; j++) {
        const p = target[s * tv + j];
        if (p !== 0) total -= p * Math.log(Math.max(q[qs + j], epsilon));
      }
    }
  });
  out[0] = (entropy * count + total) / (count * b);
  stock.done(loss, inverse, qOut);
  return [loss, inverse, qOut];
}

/**
 * {dy [], target, mask, inverse, q, p0..p(L-1)}, attrs as the forward -> [dp0..dp(L-1)],
 * each [B, H, T, T]: zero but for the query rows' visual keys.
 */
export function klalLossGradKernel(args: KernelArgs): tf.TensorInfo[] {
  const d = dims(args);
  const { b, h, t, tv, tq, q0, count, epsilon } = d;
  const inputs = args.inputs as Record<string, tf.TensorInfo>;
  const backend = args.backend as WasmBackendLike;
  const outs = d.probs.map((p) => backend.makeOutput([...p.shape], "float32"));
  const [dy, target, mask, inv, q] = heapViews(backend, [
    inputs.dy,
    inputs.target,
    inputs.mask,
    inputs.inverse,
    inputs.q,
  ]);
  const c = rowWeights(mask, b, tq, h);
  const g = new Float64Array(tv);
  const scale = dy[0] / (count * b);
  d.probs.forEach((probs, l) => {
    const [a, da] = heapViews(backend, [probs, outs[l]]);
    da.fill(0);
    for (let s = 0; s < b; s++) {
      const qs = (l * b + s) * tv;
      for (let j = 0; j < tv; j++) {
        const qj = q[qs + j];
        g[j] = qj >= epsilon ? -scale * target[s * tv + j] / qj : 0;
      }
      for (let head = 0; head < h; head++) {
        for (let i = 0; i < tq; i++) {
          const weight = c[s * tq + i];
          if (weight === 0) continue;
          const row = ((s * h + head) * t + q0 + i) * t;
          const r = inv[((l * b + s) * h + head) * tq + i];
          let dot = 0;
          for (let j = 0; j < tv; j++) dot += g[j] * a[row + j];
          const shift = dot * r;
          for (let j = 0; j < tv; j++) da[row + j] = weight * r * (g[j] - shift);
        }
      }
    }
  });
  return outs;
}

/**
 * KLAL (../model/losses.ts klalLoss) over full attention probabilities [B, H, T, T], one per
 * supervised layer, reading query rows q0..q0+Tq-1 and the first Tv keys, through the fused
 * kernels (wasm + OpenBLAS only). `mask` [B, Tq] weighs the query rows.
 */
export function klalLossFromProbs(
  probs: tf.Tensor4D[],
  target: tf.Tensor2D,
  mask: tf.Tensor2D,
  q0: number,
  options: { epsilon: number; floor: number },
): tf.Scalar {
  if (probs.length === 0) throw new Error("klalLoss needs at least one layer");
  const attrs = { count: probs.length, q0, epsilon: options.epsilon, floor: options.floor };
  const named = (ps: tf.Tensor[]) => Object.fromEntries(ps.map((p, l) => [`p${l}`, p]));
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const ps = args.slice(0, -1) as tf.Tensor[];
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [loss, inverse, q] = tf.engine().runKernel(
      KLAL_LOSS,
      { target, mask, ...named(ps) },
      attrs,
    ) as tf.Tensor[];
    // The target and the mask too: a mask made for this loss (selectQueries) is gone by the
    // time the gradient runs unless it is saved.
    save([inverse, q, target, mask, ...ps]);
    return {
      value: loss,
      gradFunc: (dy, saved) => {
        const [inv, qs, t, m, ...ss] = saved;
        return tf.engine().runKernel(
          KLAL_LOSS_GRAD,
          { dy: dy as tf.Tensor, target: t, mask: m, inverse: inv, q: qs, ...named(ss) },
          attrs,
        ) as tf.Tensor[];
      },
    };
  });
  return f(...probs) as tf.Scalar;
}
