/**
 * Matmuls whose gradients transpose explicitly where that is faster.
 *
 * tfjs's own matMul gradient calls matMul with transposeA/transposeB set, which the wasm
 * backend runs ~14x slower than a plain matMul after an explicit transpose (DESIGN.md,
 * "Measured facts"). With the native OpenBLAS matmul (or on other backends) the flags are
 * free, so the explicit transposes (7% of a paper-size step) are skipped. Same values, same
 * gradients, faster steps.
 */
import * as tf from "@tensorflow/tfjs";
import { nativeMatmulEnabled } from "./native_matmul.ts";

/** True when matMul's transpose flags cost nothing extra on the active backend. */
function transposeFlagsAreFree(): boolean {
  return tf.getBackend() !== "wasm" || nativeMatmulEnabled();
}

type GradArgs = (tf.Tensor | tf.GradSaveFunc)[];

const matMul2d = tf.customGrad((...args: GradArgs) => {
  const [x, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy, saved) => {
      const [sx, sw] = saved as tf.Tensor2D[];
      if (transposeFlagsAreFree()) {
        return [
          tf.matMul(dy as tf.Tensor2D, sw, false, true),
          tf.matMul(sx, dy as tf.Tensor2D, true, false),
        ];
      }
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
      if (transposeFlagsAreFree()) {
        return [
          tf.matMul(dy as tf.Tensor3D, sy, false, true),
          tf.matMul(sx, dy as tf.Tensor3D, true, false),
        ];
      }
      return [
        tf.matMul(dy as tf.Tensor3D, tf.transpose(sy, [0, 2, 1])),
        tf.matMul(tf.transpose(sx, [0, 2, 1]), dy as tf.Tensor3D),
      ];
    },
  };
});

/** [M, K] x [K, N] -> [M, N]. */
export function matmul(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return matMul2d(a, b) as tf.Tensor2D;
}

/** Batched [B, M, K] x [B, K, N] -> [B, M, N]. */
export function batchMatmul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  return matMul3d(a, b) as tf.Tensor3D;
}

/** x [..., K] times w [K, N] -> [..., N], via one 2-D matmul. */
export function linear(x: tf.Tensor, w: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const k = x.shape[x.rank - 1];
  const outShape = [...x.shape.slice(0, -1), w.shape[1] as number];
  let y: tf.Tensor = matmul(tf.reshape(x, [-1, k]), w as tf.Tensor2D);
  if (bias) y = tf.add(y, bias);
  return tf.reshape(y, outShape);
}
