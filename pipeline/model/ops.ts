/**
 * The model's building blocks, each with the fastest formulation for the active backend:
 * matmuls, linear layers (with GELU), attention, layer norm (with the residual sum before
 * it). Same function everywhere; only the kernels differ.
 *
 * Matmuls: tfjs's own matMul gradient calls matMul with transposeA/transposeB set, which the
 * stock wasm backend runs ~14x slower than a plain matMul after an explicit transpose
 * (measured at the model's shapes), so there a custom gradient transposes explicitly. With the
 * native OpenBLAS matmul (or on other backends) the flags are free and tfjs's own matMul
 * and gradient run (no transposes, no custom-gradient bookkeeping).
 *
 * With the fused kernels of ../kernels/native_fused.ts (wasm + OpenBLAS, unless `KLAL_FUSED=off`),
 * `linear`, `linearGelu`, `layerNorm`, `residualLayerNorm` and `attention` are one kernel
 * each, forward and backward.
 */
import * as tf from "@tensorflow/tfjs";
import { ATTENTION_MIX, ATTENTION_SCORES } from "../kernels/native_attention.ts";
import {
  ATTENTION,
  GELU_GRAD,
  LAYER_NORM,
  LINEAR,
  LINEAR_GELU,
  LINEAR_GRAD_INPUT,
  LINEAR_GRAD_WEIGHT,
  RESIDUAL_LAYER_NORM,
} from "../kernels/native_fused.ts";
import {
  fusedKernelsEnabled,
  nativeAttentionEnabled,
  nativeMatmulEnabled,
} from "../kernels/native_matmul.ts";

/** True when matMul's transpose flags cost nothing extra on the active backend. */
function transposeFlagsAreFree(): boolean {
  return tf.getBackend() !== "wasm" || nativeMatmulEnabled();
}

type GradArgs = (tf.Tensor | tf.GradSaveFunc)[];

// Stock wasm only: matMuls whose gradients transpose explicitly.
const matMul2d = tf.customGrad((...args: GradArgs) => {
  const [x, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy, saved) => {
      const [sx, sw] = saved as tf.Tensor2D[];
      return [
        tf.matMul(dy as tf.Tensor2D, tf.transpose(sw)),
        tf.matMul(tf.transpose(sx), dy as tf.Tensor2D),
      ];
    },
  };
});

const matMul3d = tf.customGrad((...args: GradArgs) => {
  const [x, y, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
  save([x, y]);
  return {
    value: tf.matMul(x, y),
    gradFunc: (dy, saved) => {
      const [sx, sy] = saved as tf.Tensor3D[];
      return [
        tf.matMul(dy as tf.Tensor3D, tf.transpose(sy, [0, 2, 1])),
        tf.matMul(tf.transpose(sx, [0, 2, 1]), dy as tf.Tensor3D),
      ];
    },
  };
});

/** [M, K] x [K, N] -> [M, N]. */
export function matmul(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  // Where the flags are free, tfjs's own BatchMatMul gradient is the same products without
  // the custom gradient's bookkeeping (a wrapper kernel and saved-tensor clones).
  if (transposeFlagsAreFree()) return tf.matMul(a, b);
  return matMul2d(a, b) as tf.Tensor2D;
}

/**
 * Batched [B, M, K] x [B, K, N] -> [B, M, N]; with `transposeB`, b is [B, N, K] and
 * a x bᵀ is computed.
 */
export function batchMatmul(a: tf.Tensor3D, b: tf.Tensor3D, transposeB = false): tf.Tensor3D {
  if (transposeFlagsAreFree()) return tf.matMul(a, b, false, transposeB);
  return matMul3d(a, transposeB ? tf.transpose(b, [0, 2, 1]) : b) as tf.Tensor3D;
}

/** x [..., K] times w [K, N] (plus bias [N]) -> [..., N], via one 2-D matmul. */
export function linear(x: tf.Tensor, w: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  if (fusedKernelsEnabled()) {
    // tf.matMul casts to a common dtype (the token embedding's one-hot input is int32).
    const input = x.dtype === "float32" ? x : tf.cast(x, "float32");
    return tf.engine().runKernel(
      LINEAR,
      bias ? { x: input, w, b: bias } : { x: input, w },
    ) as tf.Tensor;
  }
  const k = x.shape[x.rank - 1];
  const outShape = [...x.shape.slice(0, -1), w.shape[1] as number];
  let y: tf.Tensor = matmul(tf.reshape(x, [-1, k]), w as tf.Tensor2D);
  if (bias) y = tf.add(y, bias);
  return tf.reshape(y, outShape);
}

/**
 * Which keys each query may attend to: key j <= query i (causal) whose `keyMask` [B, T] is
 * 1. `bias` [B, 1, T, T] is the same as an additive mask (0 where allowed, -1e9 elsewhere),
 * made only where the attention kernels need it (not with the fused kernel, which reads
 * `keyMask`).
 */
export interface AttentionMask {
  keyMask: tf.Tensor2D;
  bias: tf.Tensor4D | null;
}

/** The causal + key-padding mask of a batch (call inside tf.tidy). */
export function attentionMask(keyMask: tf.Tensor2D): AttentionMask {
  return { keyMask, bias: fusedKernelsEnabled() ? null : maskBias(keyMask) };
}

/** [B, 1, T, T] additive mask: 0 where query i may see key j (j <= i, not padding), -1e9 else. */
function maskBias(keyMask: tf.Tensor2D): tf.Tensor4D {
  const [b, t] = keyMask.shape;
  const values = new Float32Array(t * t);
  for (let i = 0; i < t; i++) values.fill(1, i * t, i * t + i + 1);
  const causal = tf.tensor2d(values, [t, t]);
  const allowed = tf.mul(causal, tf.reshape(keyMask, [b, 1, 1, t])); // [B, 1, T, T]
  return tf.mul(tf.sub(allowed, 1), 1e9) as tf.Tensor4D;
}

/**
 * Causal multi-head attention from fused projections: qkv [B, T, 3d] holds q, k, v (each H
 * heads of dh values) side by side; `mask` says which keys each query sees. Returns the
 * attention probabilities [B, H, T, T] and the mixed values [B, T, d] (heads side by side,
 * ready for the output projection). With wasm + OpenBLAS the products read and write qkv's
 * layout in place (../kernels/native_attention.ts), with the fused kernels mask and softmax included
 * (../kernels/native_fused.ts); elsewhere the tfjs ops below.
 */
export function attention(
  qkv: tf.Tensor3D,
  heads: number,
  mask: AttentionMask,
): { probs: tf.Tensor4D; mixed: tf.Tensor3D } {
  const [b, t, d3] = qkv.shape;
  const d = d3 / 3;
  const dh = d / heads;
  const scale = 1 / Math.sqrt(dh);
  const attrs = { heads, scale };
  if (fusedKernelsEnabled()) {
    const [mixed, probs] = tf.engine().runKernel(
      ATTENTION,
      { qkv, keyMask: mask.keyMask },
      attrs,
    ) as tf.Tensor[];
    return { probs: probs as tf.Tensor4D, mixed: mixed as tf.Tensor3D };
  }
  const bias = mask.bias ?? maskBias(mask.keyMask);
  if (nativeAttentionEnabled()) {
    const scores = tf.engine().runKernel(ATTENTION_SCORES, { qkv }, attrs) as tf.Tensor4D;
    const probs = tf.softmax(tf.add(scores, bias)) as tf.Tensor4D;
    const mixed = tf.engine().runKernel(ATTENTION_MIX, { probs, qkv }, attrs) as tf.Tensor3D;
    return { probs, mixed };
  }
  const [q, k, v] = tf.split(qkv, 3, 2).map((m) =>
    tf.reshape(tf.transpose(tf.reshape(m, [b, t, heads, dh]), [0, 2, 1, 3]), [b * heads, t, dh])
  ) as tf.Tensor3D[]; // [B*H, T, dh]
  const scores = tf.reshape(batchMatmul(q, k, true), [b, heads, t, t]); // [B, H, T, T] = q kᵀ
  const probs = tf.softmax(tf.add(tf.mul(scores, scale), bias)) as tf.Tensor4D;
  const mixed = batchMatmul(tf.reshape(probs, [b * heads, t, t]) as tf.Tensor3D, v); // [B*H, T, dh]
  const merged = tf.reshape(
    tf.transpose(tf.reshape(mixed, [b, heads, t, dh]), [0, 2, 1, 3]),
    [b, t, d],
  ) as tf.Tensor3D;
  return { probs, mixed: merged };
}

/**
 * Layer norm over the last axis with a hand-written gradient: autograd's runs ~25 kernels
 * per call, and its Mean gradients fill full-size tensors of ones in JavaScript.
 *   n = (x - mean) / sqrt(var + 1e-5),  y = n * gain + bias
 *   dx = (dn - mean(dn) - n * mean(dn * n)) / sqrt(var + 1e-5),  dn = dy * gain
 */
const layerNormOp = tf.customGrad((...args: GradArgs) => {
  const [x, gain, bias, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  const centred = tf.sub(x, tf.mean(x, -1, true));
  const inverse = tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), 1e-5)); // [..., 1]
  const normed = tf.mul(centred, inverse);
  save([normed, inverse, gain]);
  return {
    value: tf.add(tf.mul(normed, gain), bias),
    gradFunc: (dy, saved) => {
      const [n, inv, g] = saved;
      const grad = dy as tf.Tensor;
      const outer = Array.from({ length: n.rank - 1 }, (_, i) => i);
      const dn = tf.mul(grad, g);
      const centred = tf.sub(dn, tf.mean(dn, -1, true));
      const dx = tf.mul(tf.sub(centred, tf.mul(n, tf.mean(tf.mul(dn, n), -1, true))), inv);
      return [dx, tf.sum(tf.mul(grad, n), outer), tf.sum(grad, outer)];
    },
  };
});

/** Layer norm over the last axis: (x - mean) / sqrt(var + 1e-5) * gain + bias. */
export function layerNorm(x: tf.Tensor, gain: tf.Tensor, bias: tf.Tensor): tf.Tensor3D {
  if (fusedKernelsEnabled()) {
    return tf.engine().runKernel(LAYER_NORM, { x, gain, bias }) as tf.Tensor3D;
  }
  return layerNormOp(x, gain, bias) as tf.Tensor3D;
}

/**
 * A residual connection and the layer norm after it: `sum` = x + r and `normed` =
 * layerNorm(sum). Without `withSum` only the norm is made (`sum` is null).
 */
export function residualLayerNorm(
  x: tf.Tensor,
  r: tf.Tensor,
  gain: tf.Tensor,
  bias: tf.Tensor,
  withSum = true,
): { sum: tf.Tensor3D | null; normed: tf.Tensor3D } {
  if (fusedKernelsEnabled()) {
    const out = tf.engine().runKernel(RESIDUAL_LAYER_NORM, { x, r, gain, bias }, {
      withSum,
    }) as tf.Tensor[];
    return withSum
      ? { sum: out[0] as tf.Tensor3D, normed: out[1] as tf.Tensor3D }
      : { sum: null, normed: out[0] as tf.Tensor3D };
  }
  const sum = tf.add(x, r) as tf.Tensor3D;
  return { sum: withSum ? sum : null, normed: layerNorm(sum, gain, bias) };
}

/** x * sigmoid(1.702 x), its derivative sigmoid + 1.702 x sigmoid (1 - sigmoid) in 5 kernels. */
const geluOp = tf.customGrad((...args: GradArgs) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  const s = tf.sigmoid(tf.mul(x, 1.702));
  const y = tf.mul(x, s);
  save([s, y]);
  return {
    value: y,
    gradFunc: (dy, saved) => {
      const [sig, out] = saved;
      // sigmoid + 1.702 y (1 - sigmoid), with y = x sigmoid
      const slope = tf.add(sig, tf.mul(tf.mul(out, tf.sub(1, sig)), 1.702));
      return [tf.mul(dy as tf.Tensor, slope)];
    },
  };
});

/**
 * GELU, sigmoid approximation x * sigmoid(1.702 x) (as in CLIP). The tanh form costs ~6x more
 * here: wasm's Tanh kernel is scalar (60 ms vs 10 ms for Sigmoid on 2.4M values).
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  return geluOp(x);
}

/** gelu(x·w + b) through the fused kernel: its slope gelu' saved for the gradient. */
const linearGeluOp = tf.customGrad((...args: GradArgs) => {
  const [x, w, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  const [y, slope] = tf.engine().runKernel(LINEAR_GELU, { x, w, b }) as tf.Tensor[];
  save([x, w, slope]);
  return {
    value: y,
    gradFunc: (dy, saved) => {
      const [sx, sw, sslope] = saved;
      const [dz, db] = tf.engine().runKernel(GELU_GRAD, {
        dy: dy as tf.Tensor,
        slope: sslope,
      }) as tf.Tensor[];
      return [
        tf.engine().runKernel(LINEAR_GRAD_INPUT, { dy: dz, w: sw }) as tf.Tensor,
        tf.engine().runKernel(LINEAR_GRAD_WEIGHT, { x: sx, dy: dz }) as tf.Tensor,
        db,
      ];
    },
  };
});

/** gelu(x·w + b): one kernel forward and three backward with the fused kernels. */
export function linearGelu(x: tf.Tensor, w: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  if (fusedKernelsEnabled()) return linearGeluOp(x, w, bias);
  return gelu(linear(x, w, bias));
}
