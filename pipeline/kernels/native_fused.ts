/**
 * Fused kernels for the wasm backend with a BLAS (OpenBLAS, or the SIMD BLAS of
 * ./simd_blas.ts): each model block is one kernel forward and one to three backward, instead
 * of a dozen tfjs ops with their engine bookkeeping (a tape node, saved-tensor clones, scope
 * tracking, a gradient closure each). A paper-size step ran ~1,370 kernels; with these ~650.
 *
 * - `linear`: x·W + b, the bias written into the output by a rank-1 sgemm (ones·b) and the
 *   product accumulated onto it (beta = 1), so no separate Add; gradients as three direct
 *   products (dx = dy·Wᵀ, dW = xᵀ·dy, db = dyᵀ·ones), each only when asked for.
 * - `linearGelu`: the same, then GELU (x·sigmoid(1.702 x)): sgemm with alpha = 1.702, the
 *   backend's own Sigmoid on that and two products; its gradient one pass
 *   (dy·(s + 1.702·y·(1 - s))) before the three products.
 * - `layerNorm` and `residualLayerNorm` (s = x + r, y = LN(s)): backward one kernel gives dx
 *   (plus the gradient reaching s from elsewhere), dgain and dbias (by sgemv), the row
 *   statistics recomputed rather than stored.
 * - `attention`: per (sample, head), scores by sgemm straight from the fused qkv layout, the
 *   causal and key-padding mask written in place, the backend's Softmax over every row, then
 *   probs·v by sgemm into the heads-side-by-side output; backward, per block, dP by sgemm
 *   onto a copy of the incoming probability gradient, the softmax gradient in that scratch
 *   block while it is in cache, and q, k and v's gradients written into one tensor (no zero
 *   fill, no sum of partial gradients, no [B, H, T, T] intermediates).
 * - `adamw`: the optimizer's update in one pass over every parameter (moments, bias
 *   corrections, clipping factor, decoupled weight decay) and the global gradient norm by
 *   sdot, instead of ~150 elementwise kernels over a flat copy of the gradients.
 *
 * Where a JavaScript loop is the faster way (one pass that replaces several, or work on only
 * the causal half of a block) values are read through Float32Array views of the wasm heap
 * taken per call after the call's last allocation (./wasm_kernels.ts `heapViews`). Where the
 * wasm backend's own kernels are faster (elementwise arithmetic and broadcasts run on SIMD
 * there, 3-10x a JavaScript loop's speed; Sigmoid; Softmax), a fused kernel calls them
 * directly, with no engine bookkeeping (`Stock`, ./native_stock.ts). Where a pass over rows
 * is the work (layer norm both ways, GELU's gradient, the causal softmax and its gradient),
 * the SIMD kernels of ./simd_kernels.wat do it in place (`KLAL_SIMD=off`: the stock ops and
 * loops instead). Products go to the BLAS at addresses in the same heap. Next-token
 * cross-entropy is ./native_loss.ts, registered with these. Every kernel matches the stock
 * tfjs ops it replaces to 1e-4 (tests/native_fused_test.ts). `KLAL_FUSED=off` leaves them out
 * (the BLAS matmuls and the unfused native kernels stay), for a comparison.
 */
import * as tf from "@tensorflow/tfjs";
import { heapViews, registerGradientsOnce } from "./wasm_kernels.ts";
import type { KernelArgs, Sgemm, WasmHeapBackend, WasmKernel } from "./wasm_kernels.ts";
import {
  offsets,
  sameShapes,
  simdFor,
  sizeOf,
  Stock,
  type WasmBackendLike,
  withStocksFreedOnThrow,
} from "./native_stock.ts";
import { NEXT_TOKEN_LOSS, nextTokenLossKernel } from "./native_loss.ts";
import { KLAL_LOSS, KLAL_LOSS_GRAD, klalLossGradKernel, klalLossKernel } from "./native_klal.ts";

/** Kernel names (registered for the wasm backend by native_matmul.ts). */
export const LINEAR = "KlalLinear", LINEAR_GELU = "KlalLinearGelu", GELU_GRAD = "KlalGeluGrad";
export const LINEAR_GRAD_INPUT = "KlalLinearGradInput", LINEAR_GRAD_BIAS = "KlalLinearGradBias";
export const LINEAR_GRAD_WEIGHT = "KlalLinearGradWeight";
export const LAYER_NORM = "KlalLayerNorm", RESIDUAL_LAYER_NORM = "KlalResidualLayerNorm";
export const LAYER_NORM_GRAD = "KlalLayerNormGrad";
export const ATTENTION = "KlalAttention", ATTENTION_GRAD = "KlalAttentionGrad";
export const SUM_SQUARES = "KlalSumSquares", ADAMW = "KlalAdamW";
export { KLAL_LOSS, KLAL_LOSS_GRAD, NEXT_TOKEN_LOSS };

/** cblas_sgemv with operands as byte addresses. */
export type Sgemv = (
  order: number,
  trans: number,
  m: number,
  n: number,
  alpha: number,
  a: bigint,
  lda: number,
  x: bigint,
  incX: number,
  beta: number,
  y: bigint,
  incY: number,
) => void;

/** cblas_sdot with operands as byte addresses. */
export type Sdot = (n: number, x: bigint, incX: number, y: bigint, incY: number) => number;

/**
 * The BLAS routines the native kernels call (OpenBLAS bound by native_matmul.ts, or the SIMD
 * BLAS of ./simd_blas.ts), with the addresses of their operands as they take them.
 */
export interface FusedBlas {
  /** With operands as byte addresses. */
  sgemm: Sgemm<bigint>;
  sgemv: Sgemv;
  sdot: Sdot;
  /**
   * The addresses of `tensors`' data for these routines, per kernel call after its last
   * allocation (absolute for OpenBLAS, ./wasm_kernels.ts `heapAddresses`; heap offsets for the
   * SIMD BLAS).
   */
  addresses(backend: WasmHeapBackend, tensors: tf.TensorInfo[]): bigint[];
  /** The address of at least `n` ones. */
  ones(n: number): bigint;
}

const ROW_MAJOR = 101;
const N = 111;
const T = 112;
/** GELU's sigmoid slope: gelu(x) = x * sigmoid(1.702 x). */
export const GELU_SLOPE = 1.702;
/** Layer norm's epsilon: (x - mean) / sqrt(var + 1e-5). */
export const LAYER_NORM_EPSILON = 1e-5;
/** The additive mask of a key a query may not see (as ../model/ops.ts builds it). */
const MASKED = -1e9;

/** The fused kernels over `blas`, keyed by kernel name. */
export function fusedKernels(blas: FusedBlas): Record<string, WasmKernel> {
  const { sgemm, sgemv, sdot } = blas;
  const onesAt = (n: number) => blas.ones(n);

  /**
   * out [M, N] = alpha·(x [M, K]·w [K, N] + b), b broadcast over rows: b first, then the
   * product added onto it. With alpha 1, b is copied into the rows (row 0, then the rows
   * made so far, doubling: a dozen memory copies); otherwise a rank-1 product ones·b.
   */
  function linearInto(
    backend: WasmBackendLike,
    x: tf.TensorInfo,
    w: tf.TensorInfo,
    b: tf.TensorInfo | undefined,
    out: tf.TensorInfo,
    alpha: number,
  ): void {
    const [k, n] = w.shape;
    const m = sizeOf(x.shape) / k;
    if ([x, w, ...(b ? [b] : [])].some((t) => t.dtype !== "float32")) {
      throw new Error(`${LINEAR}: float32 inputs only (got ${x.dtype}, ${w.dtype})`);
    }
    const [xAt, wAt, outAt, bAt] = blas.addresses(backend, b ? [x, w, out, b] : [x, w, out]);
    let beta = 0;
    if (b && alpha === 1) {
      const [rows, bias] = heapViews(backend, [out, b]);
      rows.set(bias.subarray(0, n));
      for (let made = 1; made < m; made *= 2) {
        rows.copyWithin(made * n, 0, Math.min(made, m - made) * n);
      }
      beta = 1;
    } else if (b) {
      sgemm(ROW_MAJOR, N, N, m, n, 1, alpha, onesAt(m), 1, bAt, n, 0, outAt, n);
      beta = 1;
    }
    sgemm(ROW_MAJOR, N, N, m, n, k, alpha, xAt, k, wAt, n, beta, outAt, n);
  }

  /** x [..., K], w [K, N], b [N] (optional) -> x·w + b, [..., N]. */
  function linear(args: KernelArgs): tf.TensorInfo {
    const { x, w, b } = args.inputs as { x: tf.TensorInfo; w: tf.TensorInfo; b?: tf.TensorInfo };
    const backend = args.backend as WasmBackendLike;
    const out = backend.makeOutput([...x.shape.slice(0, -1), w.shape[1]], "float32");
    linearInto(backend, x, w, b, out, 1);
    return out;
  }

  /** dy [..., N], w [K, N] -> dy·wᵀ, [..., K]. */
  function linearGradInput(args: KernelArgs): tf.TensorInfo {
    const { dy, w } = args.inputs as { dy: tf.TensorInfo; w: tf.TensorInfo };
    const backend = args.backend as WasmBackendLike;
    const [k, n] = w.shape;
    const m = sizeOf(dy.shape) / n;
    const out = backend.makeOutput([...dy.shape.slice(0, -1), k], "float32");
    const [dyAt, wAt, outAt] = blas.addresses(backend, [dy, w, out]);
    sgemm(ROW_MAJOR, N, T, m, k, n, 1, dyAt, n, wAt, n, 0, outAt, k);
    return out;
  }

  /** x [..., K], dy [..., N] -> xᵀ·dy, [K, N]. */
  function linearGradWeight(args: KernelArgs): tf.TensorInfo {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const backend = args.backend as WasmBackendLike;
    const k = x.shape[x.shape.length - 1];
    const n = dy.shape[dy.shape.length - 1];
    const m = sizeOf(x.shape) / k;
    const out = backend.makeOutput([k, n], "float32");
    const [xAt, dyAt, outAt] = blas.addresses(backend, [x, dy, out]);
    sgemm(ROW_MAJOR, T, N, k, n, m, 1, xAt, k, dyAt, n, 0, outAt, n);
    return out;
  }

  /** dy [..., N] -> its sum over all but the last axis, [N]. */
  function linearGradBias(args: KernelArgs): tf.TensorInfo {
    const { dy } = args.inputs as { dy: tf.TensorInfo };
    const backend = args.backend as WasmBackendLike;
    const n = dy.shape[dy.shape.length - 1];
    const m = sizeOf(dy.shape) / n;
    const out = backend.makeOutput([n], "float32");
    const [dyAt, outAt] = blas.addresses(backend, [dy, out]);
    sgemv(ROW_MAJOR, T, m, n, 1, dyAt, n, onesAt(m), 1, 0, outAt, 1);
    return out;
  }

  /**
   * x, w, b -> [y = gelu(u), d = gelu'(u)] with u = x·w + b and gelu(u) = u·s, s =
   * sigmoid(1.702 u): d = s + 1.702·y·(1 - s) is all the gradient needs. With the SIMD
   * kernels and a bias: the product, then one pass per row for the bias, the sigmoid, y and
   * d. Otherwise the product scaled by 1.702 (the bias included), the backend's own Sigmoid
   * and elementwise ops.
   */
  function linearGelu(args: KernelArgs): tf.TensorInfo[] {
    const { x, w, b } = args.inputs as { x: tf.TensorInfo; w: tf.TensorInfo; b?: tf.TensorInfo };
    const backend = args.backend as WasmBackendLike;
    const stock = new Stock(backend);
    const n = w.shape[1];
    const shape = [...x.shape.slice(0, -1), n];
    const simd = simdFor(backend, n);
    if (simd && b) {
      const y = stock.make(shape);
      linearInto(backend, x, w, undefined, y, 1);
      const slope = stock.make(shape);
      const [yAt, bAt, slopeAt] = offsets(backend, [y, b, slope]);
      simd.biasGelu(yAt, bAt, yAt, slopeAt, sizeOf(shape) / n, n, GELU_SLOPE);
      stock.done(y, slope);
      return [y, slope];
    }
    const u = stock.make(shape);
    linearInto(backend, x, w, b, u, GELU_SLOPE);
    const s = stock.call("Sigmoid", { x: u });
    const y = stock.mul(stock.mul(u, s), stock.scalar(1 / GELU_SLOPE));
    const slope = stock.add(
      s,
      stock.mul(stock.mul(y, stock.sub(stock.scalar(1), s)), stock.scalar(GELU_SLOPE)),
    );
    stock.done(y, slope);
    return [y, slope];
  }

  /** dy, d (gelu' kept by LINEAR_GELU) -> [dz = dy·d, its sum over all but the last axis]. */
  function geluGrad(args: KernelArgs): tf.TensorInfo[] {
    const { dy, slope } = args.inputs as { dy: tf.TensorInfo; slope: tf.TensorInfo };
    const backend = args.backend as WasmBackendLike;
    sameShapes(GELU_GRAD, dy.shape, [slope]);
    const n = dy.shape[dy.shape.length - 1];
    const simd = simdFor(backend, n);
    if (simd) {
      const out = backend.makeOutput([...dy.shape], "float32");
      const bias = backend.makeOutput([n], "float32");
      const [gAt, dAt, oAt, bAt] = offsets(backend, [dy, slope, out, bias]);
      simd.geluGradBias(gAt, dAt, oAt, bAt, sizeOf(dy.shape) / n, n);
      return [out, bias];
    }
    const stock = new Stock(backend);
    const out = stock.mul(dy, slope);
    const bias = linearGradBias({ ...args, inputs: { dy: out } });
    stock.done(out);
    return [out, bias];
  }

  /**
   * Per-row statistics of a [..., d] tensor for layer norm: the centred values c = a - mean
   * and 1 / sqrt(mean(c²) + eps) as a [..., 1] tensor (two-pass, as the stock ops).
   */
  function centre(stock: Stock, a: tf.TensorInfo): { c: tf.TensorInfo; inverse: tf.TensorInfo } {
    const c = stock.sub(a, stock.rowMean(a));
    const variance = stock.rowMean(stock.call("Square", { x: c }));
    const inverse = stock.make(variance.shape);
    const [v, inv] = heapViews(stock.backend, [variance, inverse]);
    for (let i = 0; i < v.length; i++) inv[i] = 1 / Math.sqrt(v[i] + LAYER_NORM_EPSILON);
    return { c, inverse };
  }

  /** x [..., d], gain [d], bias [d] -> layer norm of x. */
  function layerNorm(args: KernelArgs): tf.TensorInfo {
    const { x, gain, bias } = args.inputs as Record<string, tf.TensorInfo>;
    const backend = args.backend as WasmBackendLike;
    const d = x.shape[x.shape.length - 1];
    const simd = simdFor(backend, d);
    if (simd) {
      sameShapes(LAYER_NORM, [d], [gain, bias]);
      const y = backend.makeOutput([...x.shape], "float32");
      const [xAt, yAt, gAt, bAt] = offsets(backend, [x, y, gain, bias]);
      simd.layerNorm(xAt, 0, 0, yAt, gAt, bAt, sizeOf(x.shape) / d, d, 0, LAYER_NORM_EPSILON);
      return y;
    }
    const stock = new Stock(backend);
    const { c, inverse } = centre(stock, x);
    const y = stock.add(stock.mul(stock.mul(c, inverse), gain), bias);
    stock.done(y);
    return y;
  }

  /** x, r [..., d], gain, bias -> [s = x + r, layer norm of s] (without `withSum`: [norm]). */
  function residualLayerNorm(args: KernelArgs): tf.TensorInfo[] {
    const { x, r, gain, bias } = args.inputs as Record<string, tf.TensorInfo>;
    const withSum = args.attrs?.withSum !== false;
    const backend = args.backend as WasmBackendLike;
    const d = x.shape[x.shape.length - 1];
    const simd = simdFor(backend, d);
    if (simd) {
      sameShapes(RESIDUAL_LAYER_NORM, [d], [gain, bias]);
      sameShapes(RESIDUAL_LAYER_NORM, x.shape, [r]);
      const y = backend.makeOutput([...x.shape], "float32");
      const sum = withSum ? backend.makeOutput([...x.shape], "float32") : y;
      const [xAt, rAt, sAt, yAt, gAt, bAt] = offsets(backend, [x, r, sum, y, gain, bias]);
      const flags = withSum ? 3 : 1;
      simd.layerNorm(
        xAt,
        rAt,
        sAt,
        yAt,
        gAt,
        bAt,
        sizeOf(x.shape) / d,
        d,
        flags,
        LAYER_NORM_EPSILON,
      );
      return withSum ? [sum, y] : [y];
    }
    const stock = new Stock(backend);
    const s = stock.add(x, r);
    const { c, inverse } = centre(stock, s);
    const y = stock.add(stock.mul(stock.mul(c, inverse), gain), bias);
    if (!withSum) {
      stock.done(y);
      return [y];
    }
    stock.done(s, y);
    return [s, y];
  }

  /**
   * {dy, x, r?, ds?, gain} -> [dx, dgain, dbias] of y = LN(a), a = x (+ r). With c = a - mean,
   * inv = 1/sqrt(var + eps), dn = dy·gain, ma = mean(dn), mc = mean(dn·c) per row:
   *   dx = inv·dn - inv·ma - inv³·mc·c (+ ds, the gradient reaching a from elsewhere),
   *   dgain = Σ_rows inv·(dy·c),  dbias = Σ_rows dy  (both by sgemv).
   * The row statistics are recomputed from the inputs rather than stored.
   */
  function layerNormGrad(args: KernelArgs): tf.TensorInfo[] {
    const { dy, x, r, ds, gain } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const backend = args.backend as WasmBackendLike;
    const d = x!.shape[x!.shape.length - 1];
    const rows = sizeOf(x!.shape) / d;
    const simd = simdFor(backend, d);
    if (simd) {
      sameShapes(LAYER_NORM_GRAD, [d], [gain]);
      sameShapes(LAYER_NORM_GRAD, x!.shape, [dy, r, ds]);
      const dx = backend.makeOutput([...x!.shape], "float32");
      const dGain = backend.makeOutput([d], "float32");
      const dBias = backend.makeOutput([d], "float32");
      const [dyAt, xAt, gAt, dxAt, dgAt, dbAt] = offsets(backend, [
        dy!,
        x!,
        gain!,
        dx,
        dGain,
        dBias,
      ]);
      const [rAt] = r ? offsets(backend, [r]) : [0];
      const [dsAt] = ds ? offsets(backend, [ds]) : [0];
      const flags = (r ? 1 : 0) | (ds ? 2 : 0);
      simd.layerNormGrad(
        dyAt,
        xAt,
        rAt,
        dsAt,
        gAt,
        dxAt,
        dgAt,
        dbAt,
        rows,
        d,
        flags,
        LAYER_NORM_EPSILON,
      );
      return [dx, dGain, dBias];
    }
    const stock = new Stock(backend);
    const { c, inverse } = centre(stock, r ? stock.add(x!, r) : x!);
    const dn = stock.mul(dy!, gain!);
    const ma = stock.rowMean(dn);
    const mc = stock.rowMean(stock.mul(dn, c));
    const dyc = stock.mul(dy!, c);
    const shift = stock.make(inverse.shape); // inv·ma
    const slope = stock.make(inverse.shape); // inv³·mc
    const dGain = stock.make([d]);
    const dBias = stock.make([d]);
    const [inv, a, m, sh, sl] = heapViews(backend, [inverse, ma, mc, shift, slope]);
    for (let i = 0; i < rows; i++) {
      sh[i] = inv[i] * a[i];
      sl[i] = inv[i] * inv[i] * inv[i] * m[i];
    }
    const [dycAt, dyAt, invAt, dGainAt, dBiasAt] = blas.addresses(backend, [
      dyc,
      dy!,
      inverse,
      dGain,
      dBias,
    ]);
    sgemv(ROW_MAJOR, T, rows, d, 1, dycAt, d, invAt, 1, 0, dGainAt, 1);
    sgemv(ROW_MAJOR, T, rows, d, 1, dyAt, d, onesAt(rows), 1, 0, dBiasAt, 1);
    let dx = stock.sub(stock.sub(stock.mul(dn, inverse), stock.mul(c, slope)), shift);
    if (ds) dx = stock.add(dx, ds);
    stock.done(dx, dGain, dBias);
    return [dx, dGain, dBias];
  }

  /** Sizes of an attention call from qkv [B, T, 3d] and the head count. */
  function dims(qkv: tf.TensorInfo, attrs: tf.NamedAttrMap | undefined) {
    const [b, t, d3] = qkv.shape;
    const heads = attrs!.heads as number;
    const d = d3 / 3;
    return { batch: b, t, d, d3, heads, dh: d / heads, scale: attrs!.scale as number };
  }

  /**
   * {qkv [B, T, 3d], keyMask [B, T]} -> [mixed [B, T, d], probs [B, H, T, T]]: per sample
   * and head, scores = scale·q kᵀ by sgemm straight from qkv's layout, masked in place, the
   * backend's own Softmax over all rows at once, then mixed = probs·v by sgemm into the
   * head's columns.
   */
  function attention(args: KernelArgs): tf.TensorInfo[] {
    const { qkv, keyMask } = args.inputs as { qkv: tf.TensorInfo; keyMask: tf.TensorInfo };
    const { batch, t, d, d3, heads, dh } = dims(qkv, args.attrs);
    const backend = args.backend as WasmBackendLike;
    const stock = new Stock(backend);
    const scores = stock.make([batch, heads, t, t]);
    const simd = simdFor(backend, 4);
    // The SIMD softmax needs every row to see a key: key 0 of each sample unmasked.
    const [keys] = heapViews(backend, [keyMask]);
    let everyRowSees = true;
    for (let b = 0; b < batch; b++) if (keys[b * t] === 0) everyRowSees = false;
    // mixed[b, :, h] = probs[b, h] v_bh (addresses taken after the last allocation).
    function mixBlock(src: bigint, at: bigint, mixAt: bigint, b: number, h: number): void {
      const v = src + BigInt(4 * (b * t * d3 + 2 * d + h * dh));
      const o = at + BigInt(4 * (b * heads + h) * t * t);
      const c = mixAt + BigInt(4 * (b * t * d + h * dh));
      sgemm(ROW_MAJOR, N, N, t, dh, t, 1, o, t, v, d3, 0, c, d);
    }
    let probs = scores;
    if (simd && everyRowSees) {
      const mixed = stock.make([batch, t, d]);
      // Block by block, so the softmax and the mixing read a block still in cache.
      const [scoresAt, maskAt] = offsets(backend, [scores, keyMask]);
      const [src, at, mixAt] = blas.addresses(backend, [qkv, scores, mixed]);
      scoreBlocks(backend, qkv, scores, args.attrs, (b, h, o) => {
        simd.softmaxCausal(scoresAt + 4 * o, maskAt + 4 * b * t, 1, 1, t);
        mixBlock(src, at, mixAt, b, h);
      });
      stock.done(mixed, probs);
      return [mixed, probs];
    } else {
      const padded = Array.from({ length: batch }, (_, b) => {
        for (let j = 0; j < t; j++) if (keys[b * t + j] === 0) return true;
        return false;
      });
      // Scoring allocates nothing: views taken before it stay valid.
      const [mask, p] = heapViews(backend, [keyMask, scores]);
      scoreBlocks(
        backend,
        qkv,
        scores,
        args.attrs,
        (b, _h, o) => maskBlock(p, o, t, mask, b * t, padded[b]),
      );
      probs = stock.call("Softmax", { logits: scores }, { dim: 3 });
    }
    const mixed = stock.make([batch, t, d]);
    const [src, at, mixAt] = blas.addresses(backend, [qkv, probs, mixed]);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) mixBlock(src, at, mixAt, b, h);
    }
    stock.done(mixed, probs);
    return [mixed, probs];
  }

  /**
   * scale·q kᵀ per sample and head, by sgemm straight from qkv's layout, into the [T, T]
   * blocks of `scores`; `after(b, h, o)` runs after each block (o its first value's index).
   */
  function scoreBlocks(
    backend: WasmBackendLike,
    qkv: tf.TensorInfo,
    scores: tf.TensorInfo,
    attrs: tf.NamedAttrMap | undefined,
    after?: (b: number, h: number, o: number) => void,
  ): void {
    const { batch, t, d, d3, heads, dh, scale } = dims(qkv, attrs);
    const [src, at] = blas.addresses(backend, [qkv, scores]);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        const q = src + BigInt(4 * (b * t * d3 + h * dh));
        const o = (b * heads + h) * t * t;
        sgemm(
          ROW_MAJOR,
          N,
          T,
          t,
          t,
          dh,
          scale,
          q,
          d3,
          q + BigInt(4 * d),
          d3,
          0,
          at + BigInt(4 * o),
          t,
        );
        after?.(b, h, o);
      }
    }
  }

  /**
   * {dMixed [B, T, d], dProbs [B, H, T, T], qkv, probs} -> d qkv [B, T, 3d]. Per sample and
   * head: dP = dMixed·vᵀ + dProbs (sgemm onto a copy of the dProbs block), dv = probsᵀ·dMixed,
   * the softmax gradient dS = P·(dP - Σ P·dP) over the keys a row sees, dq = scale·dS·k and
   * dk = scale·dSᵀ·q, written into one tensor (no zero fill, no sum of partial gradients).
   */
  function attentionGrad(args: KernelArgs): tf.TensorInfo {
    const { dMixed, dProbs, qkv, probs } = args.inputs as Record<string, tf.TensorInfo>;
    const { batch, t, d, d3, heads, dh, scale } = dims(qkv, args.attrs);
    const backend = args.backend as WasmBackendLike;
    const out = backend.makeOutput([...qkv.shape], "float32");
    // The dP block lives in the heap, where the SIMD softmax gradient reaches it.
    const simd = simdFor(backend, 4);
    const stock = new Stock(backend);
    const work = stock.make([t, t]);
    const [gAt, src, pAt, dst, wAt] = blas.addresses(backend, [dMixed, qkv, probs, out, work]);
    const [p, dpIn, w] = heapViews(backend, [probs, dProbs, work]);
    const [pOff, wOff] = offsets(backend, [probs, work]);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        const q = BigInt(4 * (b * t * d3 + h * dh));
        const k = q + BigInt(4 * d);
        const v = q + BigInt(8 * d);
        const o = (b * heads + h) * t * t;
        const g = gAt + BigInt(4 * (b * t * d + h * dh));
        w.set(dpIn.subarray(o, o + t * t));
        sgemm(ROW_MAJOR, N, T, t, t, dh, 1, g, d, src + v, d3, 1, wAt, t);
        sgemm(ROW_MAJOR, T, N, t, dh, t, 1, pAt + BigInt(4 * o), t, g, d, 0, dst + v, d3);
        if (simd) simd.softmaxGrad(pOff + 4 * o, wOff, t);
        else softmaxGradBlock(p, o, w, t);
        sgemm(ROW_MAJOR, N, N, t, dh, t, scale, wAt, t, src + k, d3, 0, dst + q, d3);
        sgemm(ROW_MAJOR, T, N, t, dh, t, scale, wAt, t, src + q, d3, 0, dst + k, d3);
      }
    }
    stock.done();
    return out;
  }

  /** {0: t0, 1: t1, ...} float32 tensors -> Σ t², a scalar (sdot per tensor). */
  function sumSquares(args: KernelArgs): tf.TensorInfo {
    const tensors = Object.values(args.inputs) as tf.TensorInfo[];
    const backend = args.backend as WasmBackendLike;
    const out = backend.makeOutput([], "float32");
    const addresses = blas.addresses(backend, tensors);
    let total = 0;
    tensors.forEach((x, i) => {
      const n = sizeOf(x.shape);
      if (n > 0) total += sdot(n, addresses[i], 1, addresses[i], 1);
    });
    heapViews(backend, [out])[0][0] = total;
    return out;
  }

  /**
   * AdamW over parameters p0..pN-1 with gradients g0..gN-1 and flat moments m, v:
   * inputs {m, v, g0.., p0..}, attrs {count, lr, beta1, beta2, epsilon, c1, c2, scale,
   * weightDecay} -> [m', v', p0'..]. Per value, with g = scale·g (the clipping factor):
   *   m' = β1 m + (1-β1) g,  v' = β2 v + (1-β2) g²,
   *   p' = p·(1 - lr·wd, rank >= 2 only) - (m' lr/c1) / (sqrt(v') + eps·sqrt(c2))·sqrt(c2).
   */
  function adamw(args: KernelArgs): tf.TensorInfo[] {
    const inputs = args.inputs as Record<string, tf.TensorInfo>;
    const a = args.attrs as Record<string, number>;
    const backend = args.backend as WasmBackendLike;
    const count = a.count;
    const params = Array.from({ length: count }, (_, i) => inputs[`p${i}`]);
    const grads = Array.from({ length: count }, (_, i) => inputs[`g${i}`]);
    const mOut = backend.makeOutput([...inputs.m.shape], "float32");
    const vOut = backend.makeOutput([...inputs.v.shape], "float32");
    const pOut = params.map((p) => backend.makeOutput([...p.shape], "float32"));
    const { beta1, beta2, scale } = a;
    const root = Math.sqrt(a.c2);
    const stepScale = a.lr / a.c1 * root;
    const epsilon = a.epsilon * root;
    const simd = simdFor(backend, 4);
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const decay = a.weightDecay > 0 && params[i].shape.length >= 2 ? 1 - a.lr * a.weightDecay : 1;
      const n = sizeOf(params[i].shape);
      const hyper = [decay, beta1, beta2, scale, stepScale, epsilon] as const;
      const tensors = [params[i], grads[i], pOut[i], inputs.m, inputs.v, mOut, vOut];
      if (simd) {
        // Byte offsets; the moments at this parameter's place in the flat ones.
        const [pAt, gAt, outAt, mAt, vAt, m2At, v2At] = offsets(backend, tensors);
        const o = 4 * offset;
        simd.adamw(pAt, gAt, outAt, mAt + o, vAt + o, m2At + o, v2At + o, n, ...hyper);
      } else {
        adamwSegment(heapViews(backend, tensors), offset, ...hyper);
      }
      offset += n;
    }
    return [mOut, vOut, ...pOut];
  }

  /** A kernel that, when it throws, first frees what its `Stock` helpers made. */
  const kernels: Record<string, WasmKernel> = {
    [LINEAR]: linear,
    [LINEAR_GRAD_INPUT]: linearGradInput,
    [LINEAR_GRAD_WEIGHT]: linearGradWeight,
    [LINEAR_GRAD_BIAS]: linearGradBias,
    [LINEAR_GELU]: linearGelu,
    [GELU_GRAD]: geluGrad,
    [LAYER_NORM]: layerNorm,
    [RESIDUAL_LAYER_NORM]: residualLayerNorm,
    [LAYER_NORM_GRAD]: layerNormGrad,
    [ATTENTION]: attention,
    [ATTENTION_GRAD]: attentionGrad,
    [SUM_SQUARES]: sumSquares,
    [ADAMW]: adamw,
    [NEXT_TOKEN_LOSS]: nextTokenLossKernel,
    [KLAL_LOSS]: klalLossKernel,
    [KLAL_LOSS_GRAD]: klalLossGradKernel,
  };
  return Object.fromEntries(
    Object.entries(kernels).map(([name, k]) => [name, withStocksFreedOnThrow(k)]),
  );
}

/**
 * Mask the [T, T] score block at `o` of a sample whose keyMask row starts at `m` in
 * place, as adding the model's mask bias does (-1e9 where query i may not see key j:
 * j > i, or keyMask 0): a masked score becomes -1e9 (what s + -1e9 rounds to in float32
 * for |s| < 32), except in a row where every key is masked, where s + -1e9 is kept
 * exactly (float32) so that the softmax sees the same values.
 */
function maskBlock(
  p: Float32Array,
  o: number,
  t: number,
  keyMask: Float32Array,
  m: number,
  padded: boolean,
): void {
  for (let i = 0; i < t; i++) {
    const row = o + i * t;
    if (!padded) {
      if (i + 1 < t) p.fill(MASKED, row + i + 1, row + t);
      continue;
    }
    let seen = false;
    for (let j = 0; j <= i && !seen; j++) seen = keyMask[m + j] !== 0;
    if (!seen) {
      for (let j = 0; j < t; j++) p[row + j] = Math.fround(p[row + j] + MASKED);
      continue;
    }
    for (let j = 0; j <= i; j++) if (keyMask[m + j] === 0) p[row + j] = MASKED;
    if (i + 1 < t) p.fill(MASKED, row + i + 1, row + t);
  }
}

/**
 * The softmax gradient of one [T, T] attention block in place: with P the probabilities at
 * `o` of `p` and dP in `scratch`, dS = P·(dP - Σ_j P·dP) per row. Probabilities are 0 past
 * the diagonal, except in a row with every key masked (uniform over all T keys): the rest of
 * such a row is 0 in dS and skipped.
 */
function softmaxGradBlock(p: Float32Array, o: number, scratch: Float32Array, t: number): void {
  for (let i = 0; i < t; i++) {
    const row = o + i * t;
    const r = i * t;
    const end = i + 1 < t && p[row + t - 1] !== 0 ? t : i + 1;
    let dot = 0;
    for (let j = 0; j < end; j++) dot += p[row + j] * scratch[r + j];
    for (let j = 0; j < end; j++) scratch[r + j] = p[row + j] * (scratch[r + j] - dot);
    if (end < t) scratch.fill(0, r + end, r + t);
  }
}

/**
 * The AdamW update of one parameter's values: views [p, g, out, m, v, m2, v2], its moments at
 * `offset` of the flat ones.
 */
function adamwSegment(
  [p, g, out, m, v, m2, v2]: Float32Array[],
  offset: number,
  decay: number,
  beta1: number,
  beta2: number,
  scale: number,
  stepScale: number,
  epsilon: number,
): void {
  const c1 = 1 - beta1;
  const c2 = 1 - beta2;
  for (let j = 0; j < p.length; j++) {
    const k = offset + j;
    const gj = g[j] * scale;
    const mj = beta1 * m[k] + c1 * gj;
    const vj = beta2 * v[k] + c2 * gj * gj;
    m2[k] = mj;
    v2[k] = vj;
    out[j] = p[j] * decay - mj * stepScale / (Math.sqrt(vj) + epsilon);
  }
}

const run = (name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}) =>
  tf.engine().runKernel(name, inputs, attrs);

/** Register the gradients of the fused forward kernels (once; backend-neutral). */
export const registerFusedGradients = registerGradientsOnce([
  {
    kernelName: LINEAR,
    inputsToSave: ["x", "w"],
    gradFunc: (dy, saved) => {
      const [x, w] = saved;
      const g = dy as tf.Tensor;
      return {
        x: () => run(LINEAR_GRAD_INPUT, { dy: g, w }) as tf.Tensor,
        w: () => run(LINEAR_GRAD_WEIGHT, { x, dy: g }) as tf.Tensor,
        b: () => run(LINEAR_GRAD_BIAS, { dy: g }) as tf.Tensor,
      };
    },
  },
  {
    kernelName: LAYER_NORM,
    inputsToSave: ["x", "gain"],
    gradFunc: (dy, saved) => {
      const [x, gain] = saved;
      const [dx, dGain, dBias] = run(LAYER_NORM_GRAD, {
        dy: dy as tf.Tensor,
        x,
        gain,
      }) as tf.Tensor[];
      return { x: () => dx, gain: () => dGain, bias: () => dBias };
    },
  },
  {
    kernelName: RESIDUAL_LAYER_NORM,
    inputsToSave: ["x", "r", "gain"],
    gradFunc: (dys, saved, attrs) => {
      const [x, r, gain] = saved;
      const withSum = (attrs as unknown as { withSum?: boolean }).withSum !== false;
      const [ds, dy] = withSum ? dys as tf.Tensor[] : [undefined, dys as tf.Tensor];
      const inputs: tf.NamedTensorMap = { dy, x, r, gain };
      if (ds) inputs.ds = ds;
      const [dx, dGain, dBias] = run(LAYER_NORM_GRAD, inputs) as tf.Tensor[];
      // x and r get the same gradient: a second tensor over the same storage for r.
      return { x: () => dx, r: () => tf.clone(dx), gain: () => dGain, bias: () => dBias };
    },
  },
  {
    kernelName: ATTENTION,
    inputsToSave: ["qkv", "keyMask"],
    outputsToSave: [false, true],
    gradFunc: (dys, saved, attrs) => {
      const [dMixed, dProbs] = dys as tf.Tensor[];
      const [qkv, keyMask, probs] = saved;
      return {
        qkv: () =>
          run(
            ATTENTION_GRAD,
            { dMixed, dProbs, qkv, probs },
            attrs as tf.NamedAttrMap,
          ) as tf.Tensor,
        keyMask: () => tf.zerosLike(keyMask),
      };
    },
  },
]);

/** Σ t² over every value of `tensors`, a scalar (the fused kernel; wasm with a BLAS only). */
export function sumOfSquares(tensors: tf.Tensor[]): tf.Scalar {
  const inputs: tf.NamedTensorMap = {};
  tensors.forEach((t, i) => (inputs[i] = t));
  return run(SUM_SQUARES, inputs) as tf.Scalar;
}

/** Hyper-parameters of one fused AdamW update (see the ADAMW kernel). */
export interface AdamWUpdate {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Bias corrections 1 - beta1^t, 1 - beta2^t. */
  c1: number;
  c2: number;
  /** Factor on every gradient (global-norm clipping; 1 without). */
  scale: number;
  /** Decoupled weight decay, on parameters of rank >= 2. */
  weightDecay: number;
}

/**
 * One AdamW update in one kernel: the new flat moments and the new value of each parameter,
 * [m', v', p0', p1', ...] (wasm with a BLAS only; call inside tf.tidy and assign).
 */
export function adamwUpdate(
  m: tf.Tensor,
  v: tf.Tensor,
  grads: tf.Tensor[],
  params: tf.Tensor[],
  update: AdamWUpdate,
): tf.Tensor[] {
  const inputs: tf.NamedTensorMap = { m, v };
  params.forEach((p, i) => {
    inputs[`p${i}`] = p;
    inputs[`g${i}`] = grads[i];
  });
  return run(ADAMW, inputs, { ...update, count: params.length }) as tf.Tensor[];
}
