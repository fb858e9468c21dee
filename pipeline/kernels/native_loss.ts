/**
 * Next-token cross-entropy as one fused kernel for the wasm backend (registered with the
 * others of ./native_fused.ts): the loss and its gradient in one pass per row, by the SIMD
 * kernels where they load (./simd_kernels.wat, crossEntropyRows), else a JavaScript loop.
 * Replaces ~15 stock kernels forward and backward (log-softmax, one-hot, products, sums).
 */
import * as tf from "@tensorflow/tfjs";
import { heapViews } from "./wasm_kernels.ts";
import type { KernelArgs } from "./wasm_kernels.ts";
import { sameShapes, simdFor, sizeOf, Stock, type WasmBackendLike } from "./native_stock.ts";

/** The kernel's name. */
export const NEXT_TOKEN_LOSS = "KlalNextTokenLoss";

/**
 * {logits [..., V], targets [...] int32, mask [...]} -> [loss, dlogits]: the mean next-token
 * cross-entropy over the masked positions (as ../model/losses.ts ntpLoss) and its gradient
 * w·(softmax - onehot), w = mask / max(Σ mask, 1), in one pass per row (SIMD where it
 * loads, else a JavaScript loop). A target outside [0, V) has an all-zero one-hot row: it
 * adds nothing to the loss and gets no gradient.
 */
export function nextTokenLossKernel(args: KernelArgs): tf.TensorInfo[] {
  const { logits, targets, mask } = args.inputs as Record<string, tf.TensorInfo>;
  const backend = args.backend as WasmBackendLike;
  const v = logits.shape[logits.shape.length - 1];
  const rows = sizeOf(logits.shape) / v;
  if (logits.dtype !== "float32" || mask.dtype !== "float32" || targets.dtype !== "int32") {
    throw new Error(`${NEXT_TOKEN_LOSS}: float32 logits and mask, int32 targets`);
  }
  sameShapes(NEXT_TOKEN_LOSS, logits.shape.slice(0, -1), [targets, mask]);
  const stock = new Stock(backend);
  const weights = stock.make([rows]);
  const stats = stock.make([rows, 2]);
  const grad = stock.make([...logits.shape]);
  const loss = stock.make([]);
  const [maskView, w] = heapViews(backend, [mask, weights]);
  let count = 0;
  for (let i = 0; i < rows; i++) count += maskView[i];
  const denominator = Math.max(count, 1);
  for (let i = 0; i < rows; i++) w[i] = maskView[i] / denominator;
  const heap = backend.wasm.HEAPU8;
  const [xOff, tOff, wOff, gOff, sOff] = [logits, targets, weights, grad, stats].map((t) =>
    backend.dataIdMap.get(t.dataId)!.memoryOffset!
  );
  const ids = new Int32Array(heap.buffer, heap.byteOffset + tOff, rows);
  const simd = simdFor(backend, 4);
  const [x, st, g] = heapViews(backend, [logits, stats, grad]);
  if (simd) {
    simd.crossEntropyRows(xOff, tOff, wOff, gOff, sOff, rows, v);
  } else {
    for (let r = 0; r < rows; r++) {
      const o = r * v;
      let m = -Infinity;
      for (let j = 0; j < v; j++) m = Math.max(m, x[o + j]);
      let sum = 0;
      for (let j = 0; j < v; j++) sum += g[o + j] = Math.exp(x[o + j] - m);
      st[2 * r] = m;
      st[2 * r + 1] = sum;
      const t = ids[r];
      const valid = t >= 0 && t < v;
      for (let j = 0; j < v; j++) g[o + j] = valid ? w[r] * g[o + j] / sum : 0;
      if (valid) g[o + t] -= w[r];
    }
  }
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const t = ids[r];
    if (w[r] !== 0 && t >= 0 && t < v) {
      total += w[r] * (st[2 * r] + Math.log(st[2 * r + 1]) - x[r * v + t]);
    }
  }
  heapViews(backend, [loss])[0][0] = total;
  stock.done(loss, grad);
  return [loss, grad];
}

/**
 * Mean next-token cross-entropy at the masked positions (../model/losses.ts ntpLoss) through the
 * fused kernel, its gradient the one the kernel saves (wasm + OpenBLAS only).
 */
export function nextTokenLoss(logits: tf.Tensor, targets: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  const ids = targets.dtype === "int32" ? targets : tf.cast(targets, "int32");
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const [loss, grad] = tf.engine().runKernel(NEXT_TOKEN_LOSS, {
      logits: x,
      targets: ids,
      mask,
    }) as tf.Tensor[];
    save([grad]);
    return { value: loss, gradFunc: (dy, saved) => tf.mul(dy as tf.Tensor, saved[0]) };
  });
  const out = f(logits) as tf.Scalar;
  if (ids !== targets) ids.dispose();
  return out;
}
