/** The optimizer of every training run here. */
import * as tf from "@tensorflow/tfjs";
import { fusedKernelsEnabled } from "../kernels/native_matmul.ts";
import { adamwUpdate, sumOfSquares } from "../kernels/native_fused.ts";
import type { TrainSnapshot } from "./options.ts";

/**
 * AdamW (decoupled weight decay on matrices only) over a model's variables.
 *
 * The moments live in two flat buffers and the update runs once over all parameters:
 * ~150 kernels a step instead of ~560 for a per-variable loop (kernel launches, not
 * FLOPs, dominate a small model's step on wasm). With the fused kernels of
 * model/native_fused.ts (wasm + OpenBLAS) it is two: the gradient norm, then one pass.
 */
export class AdamW {
  private readonly m: tf.Variable;
  private readonly v: tf.Variable;
  private readonly sizes: number[];
  private t = 0;

  constructor(
    private readonly variables: tf.Variable[],
    private readonly weightDecay: number,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly epsilon = 1e-8,
  ) {
    this.sizes = variables.map((x) => x.size);
    const total = this.sizes.reduce((a, b) => a + b, 0);
    this.m = tf.tidy(() => tf.variable(tf.zeros([total]), false));
    this.v = tf.tidy(() => tf.variable(tf.zeros([total]), false));
  }

  /**
   * One update with gradients in the same order as the variables. With `clipNorm` > 0 the
   * gradients are first scaled so their global L2 norm is at most `clipNorm`.
   */
  async apply(grads: tf.Tensor[], lr: number, clipNorm = 0): Promise<number> {
    if (fusedKernelsEnabled()) return await this.applyFused(grads, lr, clipNorm);
    // Reads are asynchronous so the loop also runs on backends without synchronous reads.
    const [g, norm] = tf.tidy(() => {
      const flat = tf.concat(grads.map((x) => tf.reshape(x, [-1]))); // [P]
      return [flat, tf.sqrt(tf.sum(tf.square(flat)))];
    });
    const gradNorm = (await norm.data())[0];
    if (!Number.isFinite(gradNorm)) {
      tf.dispose([g, norm]);
      return gradNorm; // the caller stops; nothing is updated
    }
    this.t++;
    const { beta1, beta2, epsilon } = this;
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    tf.tidy(() => {
      const clipped = clipNorm > 0
        ? tf.mul(g, tf.minimum(tf.div(clipNorm, tf.maximum(norm, 1e-12)), 1))
        : g;
      const m = tf.add(tf.mul(this.m, beta1), tf.mul(clipped, 1 - beta1));
      const v = tf.add(tf.mul(this.v, beta2), tf.mul(tf.square(clipped), 1 - beta2));
      this.m.assign(m);
      this.v.assign(v);
      // lr * m_hat / (sqrt(v_hat) + eps), with the bias corrections folded into scalars.
      const step = tf.div(
        tf.mul(m, lr / c1),
        tf.add(tf.sqrt(v), epsilon * Math.sqrt(c2)),
      );
      const scaled = tf.mul(step, Math.sqrt(c2));
      const parts = tf.split(scaled, this.sizes);
      this.variables.forEach((x, i) => {
        const decayed = this.weightDecay > 0 && x.rank >= 2
          ? tf.mul(x, 1 - lr * this.weightDecay)
          : x;
        x.assign(tf.sub(decayed, tf.reshape(parts[i], x.shape)));
      });
    });
    tf.dispose([g, norm]);
    return gradNorm;
  }

  /**
   * The same update through the fused kernels (wasm + OpenBLAS): the norm by sdot per
   * gradient, then one pass over every parameter, with no flat copy of the gradients.
   */
  private async applyFused(grads: tf.Tensor[], lr: number, clipNorm: number): Promise<number> {
    const squares = sumOfSquares(grads);
    const gradNorm = Math.sqrt((await squares.data())[0]);
    squares.dispose();
    if (!Number.isFinite(gradNorm)) return gradNorm; // the caller stops; nothing is updated
    this.t++;
    const { beta1, beta2, epsilon } = this;
    tf.tidy(() => {
      const [m, v, ...values] = adamwUpdate(this.m, this.v, grads, this.variables, {
        lr,
        beta1,
        beta2,
        epsilon,
        c1: 1 - beta1 ** this.t,
        c2: 1 - beta2 ** this.t,
        scale: clipNorm > 0 ? Math.min(clipNorm / Math.max(gradNorm, 1e-12), 1) : 1,
        weightDecay: this.weightDecay,
      });
      this.m.assign(m);
      this.v.assign(v);
      this.variables.forEach((x, i) => x.assign(values[i]));
    });
    return gradNorm;
  }

  /** The optimizer state, copied out. */
  async snapshot(): Promise<TrainSnapshot["optimizer"]> {
    return {
      t: this.t,
      m: await this.m.data() as Float32Array,
      v: await this.v.data() as Float32Array,
    };
  }

  /** Restore a snapshot taken from an optimizer over the same variables. */
  restore(state: TrainSnapshot["optimizer"]): void {
    if (state.m.length !== this.m.size) {
      throw new Error(`optimizer snapshot has ${state.m.length} values, expected ${this.m.size}`);
    }
    this.t = state.t;
    tf.tidy(() => {
      this.m.assign(tf.tensor1d(state.m));
      this.v.assign(tf.tensor1d(state.v));
    });
  }

  /** Free the moment estimates. */
  dispose(): void {
    this.m.dispose();
    this.v.dispose();
  }
}
