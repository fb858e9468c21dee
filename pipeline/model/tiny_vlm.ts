/**
 * A tiny auto-regressive vision-language model, readable top to bottom.
 *
 *   image -> patches -> linear patch embedding  \
 *                                                concat -> + positions -> N x [pre-LN causal
 *   text ids -> token embedding (one-hot matmul) /          attention + MLP] -> LN -> logits
 *
 * One causal transformer over [visual tokens; prompt; answer]. `forward` returns the logits
 * and every layer's attention probabilities, so KLAL and the figures read them directly.
 */
import * as tf from "@tensorflow/tfjs";
import { seedFrom } from "../lib/rng.ts";
import {
  attention,
  attentionMask,
  layerNorm,
  linear,
  linearGelu,
  residualLayerNorm,
} from "./ops.ts";

/** Architecture of the model. */
export interface TinyVlmConfig {
  /** Values per image patch (patch_size^2 * 3). */
  patchDim: number;
  /** Vocabulary size. */
  vocab: number;
  dModel: number;
  layers: number;
  heads: number;
  mlpRatio: number;
  /** Patches per image side: visual tokens form a gridSide x gridSide grid. */
  gridSide: number;
  /** Longest text part (prompt + answer) the text position table covers. */
  maxText: number;
  /** Std of the position embeddings' initialisation (larger: position easier to read). */
  positionStd: number;
}

/** Inputs of one forward pass (see pipeline/model/batch.ts for the layout). */
export interface ForwardInputs {
  /** [B, Tv, patchDim] */
  patches: tf.Tensor3D;
  /** [B, Tt] int32 token ids of the text part */
  text: tf.Tensor2D;
  /** [B, T] 1 = key may be attended, 0 = padding */
  keyMask: tf.Tensor2D;
}

/** Outputs of one forward pass. */
export interface ForwardOutputs {
  /** [B, T, V] next-token logits at every position */
  logits: tf.Tensor3D;
  /** One per layer: [B, H, T, T] attention probabilities (query x key) */
  attentions: tf.Tensor4D[];
  /** [B, T, d] the final layer-normed hidden states (what the logits read) */
  hidden: tf.Tensor3D;
}

/** Named weights as plain arrays: what checkpoints store. */
export type WeightMap = Record<string, { shape: number[]; data: Float32Array }>;

let instances = 0;

/** The model: a dictionary of variables plus a pure forward function over them. */
export class TinyVlm {
  readonly config: TinyVlmConfig;
  readonly params: Map<string, tf.Variable>;

  constructor(config: TinyVlmConfig, seed: number) {
    if (config.dModel % config.heads !== 0) {
      throw new Error(`d_model ${config.dModel} is not divisible by heads ${config.heads}`);
    }
    this.config = config;
    this.params = new Map();
    // tfjs variable names are global: make them unique per model instance.
    const prefix = `vlm${instances++}/`;
    const { patchDim, vocab, dModel: d, layers, mlpRatio, gridSide, maxText } = config;
    const std = 0.02;
    // Residual projections scaled down by depth (GPT-2 style) for stable early training.
    const residualStd = std / Math.sqrt(2 * layers);
    const add = (name: string, shape: number[], init: "normal" | "zeros" | "ones", s = std) => {
      const value = init === "zeros"
        ? tf.zeros(shape)
        : init === "ones"
        ? tf.ones(shape)
        : tf.randomNormal(shape, 0, s, "float32", seedFrom(seed, name));
      this.params.set(name, tf.variable(value, true, prefix + name));
      value.dispose();
    };
    add("patch.w", [patchDim, d], "normal");
    add("patch.b", [d], "zeros");
    add("token", [vocab, d], "normal");
    // Visual positions are factorised: row embedding + column embedding.
    add("position.row", [gridSide, d], "normal", config.positionStd);
    add("position.col", [gridSide, d], "normal", config.positionStd);
    add("position.text", [maxText, d], "normal", config.positionStd);
    for (let l = 0; l < layers; l++) {
      add(`h${l}.ln1.g`, [d], "ones");
      add(`h${l}.ln1.b`, [d], "zeros");
      add(`h${l}.qkv.w`, [d, 3 * d], "normal");
      add(`h${l}.qkv.b`, [3 * d], "zeros");
      add(`h${l}.proj.w`, [d, d], "normal", residualStd);
      add(`h${l}.proj.b`, [d], "zeros");
      add(`h${l}.ln2.g`, [d], "ones");
      add(`h${l}.ln2.b`, [d], "zeros");
      add(`h${l}.fc.w`, [d, mlpRatio * d], "normal");
      add(`h${l}.fc.b`, [mlpRatio * d], "zeros");
      add(`h${l}.out.w`, [mlpRatio * d, d], "normal", residualStd);
      add(`h${l}.out.b`, [d], "zeros");
    }
    add("lnf.g", [d], "ones");
    add("lnf.b", [d], "zeros");
    add("head.w", [d, vocab], "normal");
  }

  private p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`missing parameter ${name}`);
    return v;
  }

  /** Logits and per-layer attention probabilities. Call inside tf.tidy. */
  forward(inputs: ForwardInputs): ForwardOutputs {
    const { dModel: d, heads, layers, vocab } = this.config;
    const tv = inputs.patches.shape[1];
    const tt = inputs.text.shape[1];
    const side = this.config.gridSide;
    if (tv !== side * side) throw new Error(`expected ${side * side} visual tokens, got ${tv}`);
    if (tt > this.config.maxText) {
      throw new Error(`text of ${tt} tokens exceeds the model's ${this.config.maxText}`);
    }

    const visual = linear(inputs.patches, this.p("patch.w"), this.p("patch.b"));
    // One-hot matmul instead of gather: wasm has no UnsortedSegmentSum for gather's gradient.
    const oneHot = tf.oneHot(tf.cast(inputs.text, "int32"), vocab); // [B, Tt, V]
    const words = linear(oneHot, this.p("token")); // [B, Tt, d]
    const grid = tf.add(
      tf.expandDims(this.p("position.row"), 1),
      tf.expandDims(this.p("position.col"), 0),
    ); // [side, side, d]
    const positions = tf.concat([
      tf.reshape(grid, [tv, d]),
      tf.slice(this.p("position.text"), [0, 0], [tt, d]),
    ]); // [T, d]
    let x = tf.add(tf.concat([visual, words], 1), positions) as tf.Tensor3D; // [B, T, d]

    // Query i may see key j <= i that is not padding.
    const mask = attentionMask(inputs.keyMask);

    const attentions: tf.Tensor4D[] = [];
    // Each residual sum is made together with the layer norm that reads it: `branch` is the
    // sublayer output still to be added to x.
    let branch: tf.Tensor | null = null;
    for (let l = 0; l < layers; l++) {
      let h: tf.Tensor3D;
      if (branch) {
        const r = residualLayerNorm(x, branch, this.p(`h${l}.ln1.g`), this.p(`h${l}.ln1.b`));
        [x, h] = [r.sum!, r.normed];
      } else {
        h = layerNorm(x, this.p(`h${l}.ln1.g`), this.p(`h${l}.ln1.b`));
      }
      const qkv = linear(h, this.p(`h${l}.qkv.w`), this.p(`h${l}.qkv.b`));
      const { probs, mixed } = attention(qkv as tf.Tensor3D, heads, mask); // [B, H, T, T]
      attentions.push(probs);
      const projected = linear(mixed, this.p(`h${l}.proj.w`), this.p(`h${l}.proj.b`));
      const r = residualLayerNorm(x, projected, this.p(`h${l}.ln2.g`), this.p(`h${l}.ln2.b`));
      x = r.sum!;
      const hidden = linearGelu(r.normed, this.p(`h${l}.fc.w`), this.p(`h${l}.fc.b`));
      branch = linear(hidden, this.p(`h${l}.out.w`), this.p(`h${l}.out.b`));
    }
    const final = branch
      ? residualLayerNorm(x, branch, this.p("lnf.g"), this.p("lnf.b"), false).normed
      : layerNorm(x, this.p("lnf.g"), this.p("lnf.b"));
    const logits = linear(final, this.p("head.w")) as tf.Tensor3D; // [B, T, V]
    return { logits, attentions, hidden: final as tf.Tensor3D };
  }

  /** Trainable variables in a fixed order. */
  variables(): tf.Variable[] {
    return [...this.params.values()];
  }

  /** Copy the weights out as plain arrays. */
  async getWeights(): Promise<WeightMap> {
    const out: WeightMap = {};
    for (const [name, v] of this.params) {
      out[name] = { shape: [...v.shape], data: await v.data() as Float32Array };
    }
    return out;
  }

  /** Load weights saved by getWeights; every parameter must be present with its shape. */
  setWeights(weights: WeightMap): void {
    for (const [name, v] of this.params) {
      const w = weights[name];
      if (!w) throw new Error(`checkpoint lacks parameter ${name}`);
      if (w.shape.join("x") !== v.shape.join("x")) {
        throw new Error(`parameter ${name}: checkpoint shape ${w.shape} != model ${v.shape}`);
      }
      tf.tidy(() => v.assign(tf.tensor(w.data, w.shape)));
    }
  }

  /** Free the variables. */
  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
  }
}
