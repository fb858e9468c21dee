/**
 * Multi-head attention products read straight from the fused QKV activations (wasm with a
 * BLAS, OpenBLAS or ./simd_blas.ts, only; pipeline/model/ops.ts `attention` is the plain tfjs
 * version of the same).
 *
 * qkv is [B, T, 3d]: row (b, t) holds q, then k, then v, each as H heads of dh values. Head h
 * of q for sample b is a [T, dh] matrix with row stride 3d, which sgemm reads in place (its
 * leading dimension), and the mixed values are written in place into [B, T, d]. So the
 * split, the head transposes, their gradients (transposes and a concat) and the separate
 * 1/sqrt(dh) scaling (sgemm's alpha) all disappear.
 *
 *   scores[b, h] = scale * q_bh k_bhᵀ           [B, H, T, T]
 *   mixed[b, :, h] = probs[b, h] v_bh             [B, T, d]
 */
import * as tf from "@tensorflow/tfjs";
import { registerGradientsOnce } from "./wasm_kernels.ts";
import type { KernelArgs, WasmHeapBackend, WasmKernel } from "./wasm_kernels.ts";
import type { FusedBlas } from "./native_fused.ts";

/** Kernel names (registered for the wasm backend by native_matmul.ts). */
export const ATTENTION_SCORES = "KlalAttentionScores";
export const ATTENTION_SCORES_GRAD = "KlalAttentionScoresGrad";
export const ATTENTION_MIX = "KlalAttentionMix";
export const ATTENTION_MIX_GRAD = "KlalAttentionMixGrad";

const ROW_MAJOR = 101;
const N = 111;
const T = 112;

/** A new float32 tensor of zeros in the wasm heap. */
function zeros(backend: WasmHeapBackend, shape: number[]): tf.TensorInfo {
  const out = backend.makeOutput(shape, "float32");
  const offset = backend.dataIdMap.get(out.dataId)!.memoryOffset!;
  const size = shape.reduce((p, v) => p * v, 1);
  // The heap view is read after makeOutput, which may have grown (replaced) it.
  backend.wasm.HEAPU8.fill(0, offset, offset + 4 * size);
  return out;
}

/** Sizes of an attention call from qkv [B, T, 3d] and the head count. */
function dims(qkv: tf.TensorInfo, attrs: tf.NamedAttrMap | undefined) {
  const [b, t, d3] = qkv.shape;
  const heads = attrs!.heads as number;
  const d = d3 / 3;
  return { b, t, d, d3, heads, dh: d / heads, scale: attrs!.scale as number };
}

/** Kernels over `blas`'s sgemm, keyed by kernel name. */
export function attentionKernels(
  blas: Pick<FusedBlas, "sgemm" | "addresses">,
): Record<string, WasmKernel> {
  const sgemm = blas.sgemm;
  /**
   * For each tensor, a function from an element offset to its address (float32 data), taken
   * per call after the call's last allocation.
   */
  const addressesOf = (backend: WasmHeapBackend, tensors: tf.TensorInfo[]) =>
    blas.addresses(backend, tensors).map((at) => (elements: number) => at + BigInt(4 * elements));
  // Element offsets in qkv of head h of q, k, v for sample b.
  const at = (s: ReturnType<typeof dims>, b: number, part: number, h: number) =>
    b * s.t * s.d3 + part * s.d + h * s.dh;

  /** qkv [B, T, 3d] -> scale * q kᵀ, [B, H, T, T]. */
  function scores(args: KernelArgs): tf.TensorInfo {
    const { qkv } = args.inputs as { qkv: tf.TensorInfo };
    const s = dims(qkv, args.attrs);
    const backend = args.backend as WasmHeapBackend;
    const out = backend.makeOutput([s.b, s.heads, s.t, s.t], "float32");
    // Addresses only after the last allocation (heapAddresses in ./wasm_kernels.ts).
    const [src, dst] = addressesOf(backend, [qkv, out]);
    for (let b = 0; b < s.b; b++) {
      for (let h = 0; h < s.heads; h++) {
        const q = src(at(s, b, 0, h));
        const k = src(at(s, b, 1, h));
        const c = dst((b * s.heads + h) * s.t * s.t);
        sgemm(ROW_MAJOR, N, T, s.t, s.t, s.dh, s.scale, q, s.d3, k, s.d3, 0, c, s.t);
      }
    }
    return out;
  }

  /** dy [B, H, T, T], qkv -> d qkv [B, T, 3d] (zero in the v part). */
  function scoresGrad(args: KernelArgs): tf.TensorInfo {
    const { dy, qkv } = args.inputs as { dy: tf.TensorInfo; qkv: tf.TensorInfo };
    const s = dims(qkv, args.attrs);
    const backend = args.backend as WasmHeapBackend;
    const out = zeros(backend, qkv.shape);
    const [grad, src, dst] = addressesOf(backend, [dy, qkv, out]);
    for (let b = 0; b < s.b; b++) {
      for (let h = 0; h < s.heads; h++) {
        const g = grad((b * s.heads + h) * s.t * s.t);
        // dq = scale * dy k,  dk = scale * dyᵀ q
        const { t, dh, d3, scale } = s;
        const [q, k] = [src(at(s, b, 0, h)), src(at(s, b, 1, h))];
        sgemm(ROW_MAJOR, N, N, t, dh, t, scale, g, t, k, d3, 0, dst(at(s, b, 0, h)), d3);
        sgemm(ROW_MAJOR, T, N, t, dh, t, scale, g, t, q, d3, 0, dst(at(s, b, 1, h)), d3);
      }
    }
    return out;
  }

  /** probs [B, H, T, T], qkv -> probs v with heads side by side, [B, T, d]. */
  function mix(args: KernelArgs): tf.TensorInfo {
    const { probs, qkv } = args.inputs as { probs: tf.TensorInfo; qkv: tf.TensorInfo };
    const s = dims(qkv, args.attrs);
    const backend = args.backend as WasmHeapBackend;
    const out = backend.makeOutput([s.b, s.t, s.d], "float32");
    const [p, src, dst] = addressesOf(backend, [probs, qkv, out]);
    for (let b = 0; b < s.b; b++) {
      for (let h = 0; h < s.heads; h++) {
        const a = p((b * s.heads + h) * s.t * s.t);
        const c = dst(b * s.t * s.d + h * s.dh);
        const v = src(at(s, b, 2, h));
        sgemm(ROW_MAJOR, N, N, s.t, s.dh, s.t, 1, a, s.t, v, s.d3, 0, c, s.d);
      }
    }
    return out;
  }

  /** dy [B, T, d], probs, qkv -> [d probs [B, H, T, T], d qkv [B, T, 3d] (zero in q, k)]. */
  function mixGrad(args: KernelArgs): tf.TensorInfo[] {
    const { dy, probs, qkv } = args.inputs as {
      dy: tf.TensorInfo;
      probs: tf.TensorInfo;
      qkv: tf.TensorInfo;
    };
    const s = dims(qkv, args.attrs);
    const backend = args.backend as WasmHeapBackend;
    const dProbs = backend.makeOutput([s.b, s.heads, s.t, s.t], "float32");
    const dQkv = zeros(backend, qkv.shape);
    const [grad, p, src, dp, dv] = addressesOf(backend, [dy, probs, qkv, dProbs, dQkv]);
    for (let b = 0; b < s.b; b++) {
      for (let h = 0; h < s.heads; h++) {
        const g = grad(b * s.t * s.d + h * s.dh);
        const ph = (b * s.heads + h) * s.t * s.t;
        const v = src(at(s, b, 2, h));
        // d probs = dy vᵀ,  dv = probsᵀ dy
        const { t, dh, d, d3 } = s;
        sgemm(ROW_MAJOR, N, T, t, t, dh, 1, g, d, v, d3, 0, dp(ph), t);
        sgemm(ROW_MAJOR, T, N, t, dh, t, 1, p(ph), t, g, d, 0, dv(at(s, b, 2, h)), d3);
      }
    }
    return [dProbs, dQkv];
  }

  return {
    [ATTENTION_SCORES]: scores,
    [ATTENTION_SCORES_GRAD]: scoresGrad,
    [ATTENTION_MIX]: mix,
    [ATTENTION_MIX_GRAD]: mixGrad,
  };
}

/** Register the gradients of the two forward kernels (once; they are backend-neutral). */
export const registerAttentionGradients = registerGradientsOnce([
  {
    kernelName: ATTENTION_SCORES,
    inputsToSave: ["qkv"],
    gradFunc: (dy, saved, attrs) => ({
      qkv: () =>
        tf.engine().runKernel(
          ATTENTION_SCORES_GRAD,
          { dy: dy as tf.Tensor, qkv: saved[0] },
          attrs as unknown as tf.NamedAttrMap,
        ) as tf.Tensor,
    }),
  },
  {
    kernelName: ATTENTION_MIX,
    inputsToSave: ["probs", "qkv"],
    gradFunc: (dy, saved, attrs) => {
      const [dProbs, dQkv] = tf.engine().runKernel(
        ATTENTION_MIX_GRAD,
        { dy: dy as tf.Tensor, probs: saved[0], qkv: saved[1] },
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
      return { probs: () => dProbs, qkv: () => dQkv };
    },
  },
]);
