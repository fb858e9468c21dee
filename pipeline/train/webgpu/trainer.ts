/**
 * A whole training step of the tiny VLM (../../model/tiny_vlm.ts) on WebGPU, outside tfjs: forward, both
 * losses, backward, the gradient norm, clipping and AdamW, as ~180 dispatches of the WGSL
 * kernels in ./wgsl.ts, recorded into one command buffer per step.
 *
 * Why: through tfjs-webgpu a paper-model step is ~1,560 kernels, each paying ~0.18 ms of host
 * bookkeeping (a bind group, a uniform buffer, the engine's tape), plus two read-backs a step
 * for the clipping norm and the loss; measured on an NVIDIA H100, the kernels were a fifth of
 * the step. Here every buffer, bind group and uniform block is made once, when the trainer is
 * built (the step's shapes never change), so a step is a few small uploads (the batch, the
 * learning rate) and the recorded dispatches; the norm and the clipping factor stay on the GPU
 * and the losses come back asynchronously, a few steps behind.
 *
 * Layout: every parameter lives in one flat buffer in the model's variable order (the same
 * order, and so the same flat moments, as ../loop.ts `AdamW`), and its gradient at the same
 * offset of a second one. The computation is the model's, term by term (the reference is the
 * tfjs path: tests/webgpu_trainer_test.ts checks the losses, every gradient and an AdamW step
 * against it to 1e-4); the one difference is a query row with every key masked, which the
 * tfjs mask makes softmax over s - 1e9 and this one over -1e9 (uniform either way for |s| < 32;
 * no sample has such a row, since visual tokens are never padding).
 *
 * Arms: one trainer can hold several models of the same shapes (`createStacked`), each with
 * its own parameters, moments, batch, map targets, λ and learning rate, stacked along a
 * leading axis of every buffer (./wgsl.ts); every dispatch covers every arm, so the step is the
 * same ~180 dispatches however many arms it trains, and a GPU that one arm's batch leaves
 * idle is filled by the others. Arms never mix: each arm's numbers are those of training it
 * alone (tests/webgpu_trainer_test.ts checks it to 1e-4). An arm can sit a step out (`step`'s
 * `active`), which is how arms resumed from different steps, or with fewer steps, share one.
 */
import type { Encoded } from "../../model/batch.ts";
import { queryCount, queryStart, sequenceLength } from "../../model/batch.ts";
import { ROW_FLOOR } from "../../model/klal_constants.ts";
import {
  attentionBackwardKeysSource,
  attentionBackwardRowsSource,
  attentionForwardSource,
  attentionRows,
} from "./attention.ts";
import { BatchUpload } from "./batch.ts";
import { COLUMN_ROWS, type Op, OpRecorder, productSplit } from "./ops.ts";
import {
  type ArmInit,
  type FlatParameter,
  READBACK,
  type StepResult,
  type StepStats,
  STORAGE,
  type WebGpuTrainerOptions,
} from "./setup.ts";
import {
  ADAMW,
  ARM_FLOATS,
  bits,
  CLIP,
  EMBED,
  EMBED_GRAD,
  type Epilogue,
  GATHER_VISUAL,
  grid1d,
  gridRows,
  KLAL_FORWARD,
  layerNormGradSource,
  layerNormSource,
  LINEAR_THREADS,
  LOSSES,
  MAX_HEAD_QUERIES,
  MAX_TOKENS,
  NTP,
  splitK,
  SUM_SQUARES,
} from "./wgsl.ts";

export { splitK };
export type { ArmInit, FlatParameter, StepResult, StepStats, WebGpuTrainerOptions };
export { webgpuDevice } from "./setup.ts";

/** Floats of an arm's stats: ntp, klal, total, norm, clip factor. */
const STATS = 8;
/** Steps whose stats may be in flight before `step` waits for the oldest. */
const STATS_IN_FLIGHT = 4;

/** The whole-step trainer (see the top of this file). */
export class WebGpuTrainer {
  /** Parameters of one arm. */
  readonly parameterCount: number;
  /** Arms stacked in this trainer. */
  readonly arms: number;
  /** Dispatches of one training step (whatever the number of arms). */
  readonly dispatchesPerStep: number;
  /** Attention query rows a workgroup (the option's, else the shape's default). */
  readonly attentionRows: number;
  private readonly offsets = new Map<string, number>();
  private readonly buffers: GPUBuffer[] = [];
  private readonly forwardOps: Op[] = [];
  private readonly backwardOps: Op[] = [];
  private readonly updateOps: Op[] = [];
  /** Each arm's optimizer step count. */
  private readonly t: number[];
  private submitted = 0;
  private readonly pending: { step: number; buffer: GPUBuffer; done: Promise<void> }[] = [];
  private readonly spare: GPUBuffer[] = [];
  private readonly finished: StepResult[] = [];
  private readonly lambdas: number[];
  // Device buffers that the host writes or reads.
  private readonly params: GPUBuffer;
  private readonly grads: GPUBuffer;
  private readonly m: GPUBuffer;
  private readonly v: GPUBuffer;
  private readonly stats: GPUBuffer;
  private readonly armConst: GPUBuffer;
  private readonly batch: BatchUpload;

  private constructor(
    private readonly device: GPUDevice,
    private readonly options: WebGpuTrainerOptions,
    arms: ArmInit[],
  ) {
    const { config, layout, batch: b } = options;
    const A = arms.length;
    if (A === 0) throw new Error("WebGPU trainer: no arm");
    this.arms = A;
    this.t = new Array(A).fill(0);
    this.lambdas = arms.map((a) => a.lambda);
    const tv = layout.visual;
    const t = sequenceLength(layout);
    const tt = t - tv;
    const tq = queryCount(layout);
    const q0 = queryStart(layout);
    const d = config.dModel;
    const heads = config.heads;
    const dh = d / heads;
    const hidden = config.mlpRatio * d;
    const vocab = config.vocab;
    const side = config.gridSide;
    const pd = layout.patchDim;
    const rows = b * t;
    if (t > MAX_TOKENS) throw new Error(`WebGPU trainer: ${t} tokens exceeds ${MAX_TOKENS}`);
    if (dh > 128) throw new Error(`WebGPU trainer: head size ${dh} exceeds 128`);
    if (heads * tq > MAX_HEAD_QUERIES) {
      throw new Error(`WebGPU trainer: ${heads} heads x ${tq} queries exceeds ${MAX_HEAD_QUERIES}`);
    }
    if (options.layers.length === 0) throw new Error("WebGPU trainer: no supervised layer");
    if (tv !== side * side) throw new Error(`expected ${side * side} visual tokens, got ${tv}`);
    if (tt > config.maxText) throw new Error(`text of ${tt} tokens exceeds ${config.maxText}`);

    // Parameters, flat, in the model's order; arm a's at a·P.
    const parameters = arms[0].parameters;
    let total = 0;
    for (const p of parameters) {
      this.offsets.set(p.name, total);
      total += p.data.length;
    }
    this.parameterCount = total;
    const P = total;
    const flat = new Float32Array(A * P);
    arms.forEach((arm, a) => {
      if (
        arm.parameters.length !== parameters.length ||
        arm.parameters.some((p, i) =>
          p.name !== parameters[i].name || p.data.length !== parameters[i].data.length
        )
      ) throw new Error(`WebGPU trainer: arm ${a}'s parameters differ from arm 0's in shape`);
      for (const p of arm.parameters) flat.set(p.data, a * P + this.offsets.get(p.name)!);
    });
    const decay = new Float32Array(P);
    for (const p of parameters) {
      const at = this.offsets.get(p.name)!;
      if (options.weightDecay > 0 && p.shape.length >= 2) decay.fill(1, at, at + p.data.length);
    }
    const off = (name: string) => {
      const o = this.offsets.get(name);
      if (o === undefined) throw new Error(`WebGPU trainer: no parameter ${name}`);
      return o;
    };
    // The embedding tables must lie one after another (EMBED_GRAD writes them as one block).
    if (
      off("position.row") !== off("token") + vocab * d ||
      off("position.col") !== off("position.row") + side * d ||
      off("position.text") !== off("position.col") + side * d
    ) throw new Error("WebGPU trainer: unexpected parameter order");

    /** A storage buffer of `floats` values an arm, for every arm. */
    const buffer = (floats: number, shared = false) => {
      const size = Math.max(16, 4 * floats * (shared ? 1 : A));
      const buf = device.createBuffer({ size, usage: STORAGE });
      this.buffers.push(buf);
      return buf;
    };
    this.params = buffer(P);
    device.queue.writeBuffer(this.params, 0, flat);
    this.grads = buffer(P);
    this.m = buffer(P);
    this.v = buffer(P);
    const decayMask = buffer(P, true);
    device.queue.writeBuffer(decayMask, 0, decay);
    this.stats = buffer(STATS);
    this.armConst = buffer(ARM_FLOATS);
    this.writeArmConstants(new Array(A).fill(0), new Array(A).fill(true));

    this.batch = new BatchUpload(device, options, (floats) => buffer(floats));
    const bb = this.batch.buffers;

    // Activations kept for the backward pass.
    const stream = buffer(rows * d);
    const layers = Array.from({ length: config.layers }, () => ({
      n1: buffer(rows * d),
      h1: buffer(rows * d),
      r1: buffer(rows),
      qkv: buffer(rows * 3 * d),
      probs: buffer(b * heads * t * t),
      mixed: buffer(rows * d),
      proj: buffer(rows * d),
      n2: buffer(rows * d),
      h2: buffer(rows * d),
      r2: buffer(rows),
      pre: buffer(rows * hidden),
      act: buffer(rows * hidden),
      branch: buffer(rows * d),
    }));
    const nf = buffer(rows * d);
    const hf = buffer(rows * d);
    const rf = buffer(rows);
    const logits = buffer(rows * vocab);
    const rowLoss = buffer(rows);
    const slots = options.layers.length;
    const qBuf = buffer(slots * b * tv);
    const kl = buffer(slots * b);
    // Gradients of activations.
    const dLogits = buffer(rows * vocab);
    const dStream = buffer(rows * d);
    const dH = buffer(rows * d);
    const dPre = buffer(rows * hidden);
    const dMixed = buffer(rows * d);
    const dQkv = buffer(rows * 3 * d);
    const dScores = buffer(b * heads * t * t);
    const dVisual = buffer(b * tv * d);

    // Scratch for split-K partial products and column sums, sized by the largest user: the
    // weight gradients' products [in, out] over K = the rows that read the weight.
    const weightGradients: [number, number, number][] = [
      [pd, d, b * tv],
      [d, vocab, rows],
      [d, 3 * d, rows],
      [d, d, rows],
      [d, hidden, rows],
      [hidden, d, rows],
    ];
    let scratchFloats = Math.ceil(rows / COLUMN_ROWS) * Math.max(3 * d, hidden, vocab);
    for (const [m, n, k] of weightGradients) {
      const { splits } = productSplit(m, n, k, options.matmulTile);
      if (splits > 1) scratchFloats = Math.max(scratchFloats, splits * m * n);
    }
    const scratch = buffer(scratchFloats);
    const normParts = Math.ceil(P / (LINEAR_THREADS * 8));
    const normScratch = buffer(normParts);

    // --- op builders -------------------------------------------------------------------
    const recorder = new OpRecorder(
      device,
      A,
      P,
      {
        params: this.params,
        grads: this.grads,
        scratch,
      },
      this.buffers,
      options.matmulTile,
    );
    const op = recorder.op.bind(recorder);
    const matmul = recorder.matmul.bind(recorder);
    const columnSum = recorder.columnSum.bind(recorder);
    const layerNorm = (
      x: GPUBuffer,
      r: GPUBuffer | null,
      writeSum: boolean,
      prefix: string,
      out: { n: GPUBuffer; h: GPUBuffer; r: GPUBuffer },
    ) => {
      const bindings: Record<number, GPUBuffer> = {
        1: this.params,
        2: x,
        4: out.n,
        5: out.h,
        6: out.r,
      };
      if (r) bindings[3] = r;
      op(
        this.forwardOps,
        layerNormSource(r !== null, writeSum),
        [rows, d, off(`${prefix}.g`), off(`${prefix}.b`), P],
        bindings,
        gridRows(rows),
      );
    };
    const layerNormGrad = (
      dy: GPUBuffer,
      saved: { n: GPUBuffer; r: GPUBuffer },
      prefix: string,
      accumulate: boolean,
    ) => {
      const list = this.backwardOps;
      op(
        list,
        layerNormGradSource(accumulate),
        [rows, d, off(`${prefix}.g`), P],
        { 1: this.params, 2: dy, 3: saved.n, 4: saved.r, 5: dStream },
        gridRows(rows),
      );
      columnSum(list, rows, d, dy, off(`${prefix}.g`), saved.n);
      columnSum(list, rows, d, dy, off(`${prefix}.b`));
    };
    /** Forward x·W + b; backward dX (into dx, optional), dW and db. */
    const linearGrad = (
      x: GPUBuffer,
      k: number,
      n: number,
      dy: GPUBuffer,
      prefix: string,
      dx: GPUBuffer | null,
      dxEpilogue?: { aux: GPUBuffer },
      hasBias = true,
    ) => {
      const list = this.backwardOps;
      const w = off(`${prefix}${hasBias ? ".w" : ""}`);
      matmul(list, {
        m: k,
        n,
        k: rows,
        a: x,
        aArm: rows * k,
        lda: k,
        transA: true,
        b: dy,
        bArm: rows * n,
        ldb: n,
        c: this.grads,
        cOff: w,
        cArm: P,
        split: true,
      });
      if (hasBias) columnSum(list, rows, n, dy, off(`${prefix}.b`));
      if (dx) {
        matmul(list, {
          m: rows,
          n: k,
          k: n,
          a: dy,
          aArm: rows * n,
          lda: n,
          b: this.params,
          bOff: w,
          bArm: P,
          ldb: n,
          transB: true,
          c: dx,
          cArm: rows * k,
          epilogue: dxEpilogue ? "geluGrad" : "none",
          aux: dxEpilogue?.aux,
        });
      }
    };
    /** x·W + b (the epilogue's) in the forward pass: x [rows, k] per arm, W a parameter. */
    const linear = (
      x: GPUBuffer,
      k: number,
      n: number,
      prefix: string,
      out: GPUBuffer,
      epilogue: Epilogue,
      g?: GPUBuffer,
    ) => {
      const bias = epilogue === "bias" || epilogue === "gelu";
      matmul(this.forwardOps, {
        m: rows,
        n,
        k,
        a: x,
        aArm: rows * k,
        lda: k,
        b: this.params,
        bOff: off(bias ? `${prefix}.w` : prefix),
        bArm: P,
        ldb: n,
        c: out,
        cArm: rows * n,
        epilogue,
        bias: bias ? off(`${prefix}.b`) : 0,
        g,
      });
    };

    // --- forward -----------------------------------------------------------------------
    const f = this.forwardOps;
    op(
      f,
      EMBED,
      [
        rows * d,
        t,
        tv,
        tt,
        d,
        pd,
        side,
        off("patch.w"),
        off("patch.b"),
        off("token"),
        off("position.row"),
        off("position.col"),
        off("position.text"),
        P,
        b,
      ],
      { 1: this.params, 2: bb.patches, 3: bb.text, 4: stream },
      grid1d(rows * d),
    );
    const scale = 1 / Math.sqrt(dh);
    // The attention kernels see every arm's samples as one batch (see ./wgsl.ts).
    const samples = A * b;
    const perGroup = options.attentionRows ?? attentionRows(t, dh);
    this.attentionRows = perGroup;
    const attentionForward = attentionForwardSource(perGroup, t, dh);
    const attentionBackwardRows = attentionBackwardRowsSource(perGroup, t, dh);
    const attentionBackwardKeys = attentionBackwardKeysSource(perGroup, t, dh);
    const attentionGrid: [number, number, number] = [Math.ceil(t / perGroup), heads, samples];
    for (let l = 0; l < config.layers; l++) {
      const s = layers[l];
      const into = { n: s.n1, h: s.h1, r: s.r1 };
      if (l === 0) layerNorm(stream, null, false, `h${l}.ln1`, into);
      else layerNorm(stream, layers[l - 1].branch, true, `h${l}.ln1`, into);
      linear(s.h1, d, 3 * d, `h${l}.qkv`, s.qkv, "bias");
      op(
        f,
        attentionForward,
        [t, d, heads, dh, bits(scale)],
        {
          1: s.qkv,
          2: bb.keyMask,
          3: s.probs,
          4: s.mixed,
        },
        attentionGrid,
        true,
      );
      linear(s.mixed, d, d, `h${l}.proj`, s.proj, "bias");
      layerNorm(stream, s.proj, true, `h${l}.ln2`, { n: s.n2, h: s.h2, r: s.r2 });
      linear(s.h2, d, hidden, `h${l}.fc`, s.pre, "gelu", s.act);
      linear(s.act, hidden, d, `h${l}.out`, s.branch, "bias");
    }
    const last = config.layers > 0 ? layers[config.layers - 1].branch : null;
    layerNorm(stream, last, false, "lnf", { n: nf, h: hf, r: rf });
    linear(hf, d, vocab, "head.w", logits, "none");
    op(f, NTP, [rows, vocab], {
      1: logits,
      2: bb.next,
      3: bb.lossWeight,
      4: rowLoss,
      5: dLogits,
    }, gridRows(rows));
    const eps = options.klalEpsilon ?? 1e-8;
    options.layers.forEach((l, slot) => {
      if (l < 0 || l >= config.layers) throw new Error(`WebGPU trainer: no layer ${l}`);
      op(f, KLAL_FORWARD, [b, heads, t, tv, tq, q0, slot, bits(eps), bits(ROW_FLOOR), slots], {
        1: layers[l].probs,
        2: bb.queryWeight,
        3: bb.target,
        4: qBuf,
        5: kl,
      }, [b, 1, 1]);
    });
    op(f, LOSSES, [rows, b, slots, STATS], {
      1: rowLoss,
      2: kl,
      3: this.stats,
      4: this.armConst,
    }, [1, 1, 1]);

    // --- backward ----------------------------------------------------------------------
    const back = this.backwardOps;
    linearGrad(hf, d, vocab, dLogits, "head.w", dH, undefined, false);
    layerNormGrad(dH, { n: nf, r: rf }, "lnf", false);
    // KLAL's coefficient -λ / (layers·B), λ the arm's (read from armConst by the kernel).
    const coef = -1 / (slots * b);
    const anyKlal = this.lambdas.some((x) => x > 0);
    for (let l = config.layers - 1; l >= 0; l--) {
      const s = layers[l];
      // The branch (MLP output) and the stream after attention both receive dStream.
      linearGrad(s.act, hidden, d, dStream, `h${l}.out`, dPre, { aux: s.pre });
      linearGrad(s.h2, d, hidden, dPre, `h${l}.fc`, dH);
      layerNormGrad(dH, { n: s.n2, r: s.r2 }, `h${l}.ln2`, true);
      linearGrad(s.mixed, d, d, dStream, `h${l}.proj`, dMixed);
      const slot = options.layers.indexOf(l);
      op(
        back,
        attentionBackwardRows,
        [
          b,
          t,
          d,
          heads,
          dh,
          tv,
          tq,
          q0,
          Math.max(slot, 0),
          bits(scale),
          bits(coef),
          bits(eps),
          bits(ROW_FLOOR),
          slot >= 0 && anyKlal ? 1 : 0,
          slots,
        ],
        {
          1: s.qkv,
          2: s.probs,
          3: dMixed,
          4: dScores,
          5: dQkv,
          6: bb.target,
          7: qBuf,
          8: bb.queryWeight,
          9: this.armConst,
        },
        attentionGrid,
        true,
      );
      op(
        back,
        attentionBackwardKeys,
        [t, d, heads, dh, bits(scale)],
        {
          1: s.qkv,
          2: s.probs,
          3: dMixed,
          4: dScores,
          5: dQkv,
        },
        attentionGrid,
        true,
      );
      linearGrad(s.h1, d, 3 * d, dQkv, `h${l}.qkv`, dH);
      layerNormGrad(dH, { n: s.n1, r: s.r1 }, `h${l}.ln1`, true);
    }
    // The embedding: patch.w and patch.b from the visual rows, the tables from everything.
    op(
      back,
      GATHER_VISUAL,
      [samples * tv * d, t, tv, d],
      {
        1: dStream,
        2: dVisual,
      },
      grid1d(samples * tv * d),
      true,
    );
    matmul(back, {
      m: pd,
      n: d,
      k: b * tv,
      a: bb.patches,
      aArm: b * tv * pd,
      lda: pd,
      transA: true,
      b: dVisual,
      bArm: b * tv * d,
      ldb: d,
      c: this.grads,
      cOff: off("patch.w"),
      cArm: P,
      split: true,
    });
    columnSum(back, b * tv, d, dVisual, off("patch.b"));
    const tableValues = (vocab + 2 * side + config.maxText) * d;
    op(back, EMBED_GRAD, [tableValues, b, t, tv, tt, d, vocab, side, off("token"), P], {
      1: dStream,
      2: bb.text,
      3: this.grads,
    }, grid1d(tableValues));

    // --- norm, clipping, AdamW ---------------------------------------------------------
    const up = this.updateOps;
    op(up, SUM_SQUARES, [P, normParts], { 1: this.grads, 2: normScratch }, [normParts, 1, 1]);
    op(up, CLIP, [normParts, bits(options.clipNorm), STATS], {
      1: normScratch,
      2: this.stats,
    }, [1, 1, 1]);
    op(up, ADAMW, [P, bits(options.beta1 ?? 0.9), bits(options.beta2 ?? 0.999), STATS], {
      1: this.params,
      2: this.grads,
      3: this.m,
      4: this.v,
      5: decayMask,
      6: this.stats,
      7: this.armConst,
    }, grid1d(P));
    this.dispatchesPerStep = this.forwardOps.length + this.backwardOps.length +
      this.updateOps.length;
  }

  /** Build a one-arm trainer over `parameters` (the model's variables, in order) on `device`. */
  static create(
    device: GPUDevice,
    options: WebGpuTrainerOptions,
    parameters: FlatParameter[],
  ): Promise<WebGpuTrainer> {
    return WebGpuTrainer.createStacked(device, options, [{ lambda: options.lambda, parameters }]);
  }

  /**
   * Build a trainer of `arms` stacked models (each its own λ and parameters, in the model's
   * order; `options.lambda` is not read) on `device`.
   */
  static async createStacked(
    device: GPUDevice,
    options: WebGpuTrainerOptions,
    arms: ArmInit[],
  ): Promise<WebGpuTrainer> {
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    let trainer: WebGpuTrainer | undefined;
    let thrown: unknown;
    try {
      trainer = new WebGpuTrainer(device, options, arms);
    } catch (e) {
      thrown = e;
    }
    const invalid = await device.popErrorScope();
    const memory = await device.popErrorScope();
    const error = invalid ?? memory;
    if (thrown !== undefined || error) trainer?.dispose();
    if (thrown !== undefined) throw thrown;
    if (error) throw new Error(`WebGPU trainer (${arms.length} arms): ${error.message}`);
    return trainer!;
  }

  /**
   * How many arms of these shapes one trainer can stack on `limits`: each stacked buffer must
   * fit one storage binding (the largest are the attention probabilities, the logits and the
   * split-K scratch).
   */
  static maxArms(
    limits: { maxStorageBufferBindingSize: number; maxBufferSize: number },
    options: Pick<WebGpuTrainerOptions, "config" | "layout" | "batch">,
    parameterCount: number,
  ): number {
    const { config, layout, batch: b } = options;
    const t = sequenceLength(layout);
    const rows = b * t;
    const d = config.dModel;
    const widest = Math.max(
      parameterCount,
      b * config.heads * t * t,
      rows * config.vocab,
      rows * config.mlpRatio * d,
      rows * 3 * d,
    );
    const bytes = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    // The split-K scratch can be a few times the widest weight; leave it a factor of two.
    return Math.max(1, Math.floor(bytes / (4 * widest * 2)));
  }

  /** Upload the rows `indices` of `data` as arm `arm`'s next batch. */
  setBatch(data: Encoded, indices: number[], arm = 0): void {
    this.checkArm(arm);
    this.batch.set(data, indices, arm);
  }

  private checkArm(arm: number): void {
    if (!Number.isInteger(arm) || arm < 0 || arm >= this.arms) {
      throw new Error(`WebGPU trainer: no arm ${arm} (it has ${this.arms})`);
    }
  }

  /** Each arm's λ, AdamW step scale, its ε, decay factor and whether it trains (armConst). */
  private writeArmConstants(lrs: number[], active: boolean[]): void {
    const beta1 = this.options.beta1 ?? 0.9;
    const beta2 = this.options.beta2 ?? 0.999;
    const epsilon = this.options.epsilon ?? 1e-8;
    const values = new Float32Array(this.arms * ARM_FLOATS);
    for (let a = 0; a < this.arms; a++) {
      const t = Math.max(this.t[a], 1);
      const c1 = 1 - beta1 ** t;
      const root = Math.sqrt(1 - beta2 ** t);
      const lr = lrs[a];
      const o = a * ARM_FLOATS;
      values[o] = this.lambdas[a];
      values[o + 1] = lr / c1 * root;
      values[o + 2] = epsilon * root;
      values[o + 3] = this.options.weightDecay > 0 ? 1 - lr * this.options.weightDecay : 1;
      values[o + 4] = active[a] ? 1 : 0;
    }
    this.device.queue.writeBuffer(this.armConst, 0, values);
  }

  private encode(lists: Op[][]): GPUCommandEncoder {
    const encoder = this.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (const list of lists) {
      for (const o of list) {
        pass.setPipeline(o.pipeline);
        pass.setBindGroup(0, o.bindGroup);
        pass.dispatchWorkgroups(o.groups[0], o.groups[1], o.groups[2]);
      }
    }
    pass.end();
    return encoder;
  }

  /**
   * One training step of every arm on its current batch at learning rate `lr` (one for all, or
   * one an arm): submitted, not awaited. An arm with `active[arm]` false sits the step out
   * (its parameters, moments and step count stay). Stats arrive later through `drain`; at most
   * a few steps are in flight.
   */
  async step(lr: number | number[], active?: boolean[]): Promise<void> {
    while (this.pending.length >= STATS_IN_FLIGHT) await this.collect();
    const lrs = typeof lr === "number" ? new Array(this.arms).fill(lr) : lr;
    const on = active ?? new Array(this.arms).fill(true);
    if (lrs.length !== this.arms || on.length !== this.arms) {
      throw new Error(`WebGPU trainer: a step needs a value for each of ${this.arms} arms`);
    }
    on.forEach((a, i) => {
      if (a) this.t[i]++;
    });
    this.writeArmConstants(lrs, on);
    this.submitted++;
    const encoder = this.encode([this.forwardOps, this.backwardOps, this.updateOps]);
    const floats = this.arms * STATS;
    const readback = this.spare.pop() ??
      this.device.createBuffer({ size: 4 * floats, usage: READBACK });
    encoder.copyBufferToBuffer(this.stats, 0, readback, 0, 4 * floats);
    this.device.queue.submit([encoder.finish()]);
    this.pending.push({
      step: this.submitted,
      buffer: readback,
      done: readback.mapAsync(GPUMapMode.READ),
    });
  }

  /** Wait for the oldest step in flight and keep its stats. */
  private async collect(): Promise<void> {
    const p = this.pending.shift()!;
    await p.done;
    const s = new Float32Array(p.buffer.getMappedRange().slice(0));
    p.buffer.unmap();
    this.spare.push(p.buffer);
    const arms = this.armStats(s);
    this.finished.push({ step: p.step, stats: arms[0], arms });
  }

  private armStats(s: Float32Array): StepStats[] {
    return Array.from({ length: this.arms }, (_, a) => {
      const o = a * STATS;
      return { ntp: s[o], klal: s[o + 1], total: s[o + 2], gradNorm: s[o + 3] };
    });
  }

  /**
   * The stats of every step finished since the last call, oldest first (`all`: wait for
   * every step in flight). Step numbers count submissions from 1 (a lone arm's optimizer t).
   */
  async drain(all = false): Promise<StepResult[]> {
    if (all) { while (this.pending.length > 0) await this.collect(); }
    return this.finished.splice(0);
  }

  /** Forward and backward on the current batch, no update: arm `arm`'s stats and gradient. */
  async gradients(arm = 0): Promise<{ stats: StepStats; grads: Float32Array }> {
    this.checkArm(arm);
    await this.drain(true);
    const encoder = this.encode([this.forwardOps, this.backwardOps, [
      this.updateOps[0],
      this.updateOps[1],
    ]]);
    const s = await this.read(this.stats, 0, this.arms * STATS, encoder);
    const grads = await this.read(this.grads, arm * this.parameterCount, this.parameterCount);
    return { stats: this.armStats(s)[arm], grads };
  }

  private async read(
    src: GPUBuffer,
    offset: number,
    floats: number,
    encoder?: GPUCommandEncoder,
  ): Promise<Float32Array> {
    const e = encoder ?? this.device.createCommandEncoder();
    const staging = this.device.createBuffer({ size: 4 * floats, usage: READBACK });
    e.copyBufferToBuffer(src, 4 * offset, staging, 0, 4 * floats);
    this.device.queue.submit([e.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    staging.destroy();
    return out;
  }

  /** Arm `arm`'s current parameters, by name (waits for every step in flight). */
  async parameters(arm = 0): Promise<Map<string, Float32Array>> {
    this.checkArm(arm);
    await this.drain(true);
    const flat = await this.read(this.params, arm * this.parameterCount, this.parameterCount);
    const out = new Map<string, Float32Array>();
    const names = [...this.offsets.keys()];
    names.forEach((name, i) => {
      const end = i + 1 < names.length ? this.offsets.get(names[i + 1])! : this.parameterCount;
      out.set(name, flat.slice(this.offsets.get(name)!, end));
    });
    return out;
  }

  /** Arm `arm`'s optimizer state (flat moments in the model's order, as ../loop.ts AdamW). */
  async optimizerState(arm = 0): Promise<{ t: number; m: Float32Array; v: Float32Array }> {
    this.checkArm(arm);
    await this.drain(true);
    const at = arm * this.parameterCount;
    return {
      t: this.t[arm],
      m: await this.read(this.m, at, this.parameterCount),
      v: await this.read(this.v, at, this.parameterCount),
    };
  }

  /** Continue arm `arm` from an optimizer state taken from a run over the same parameters. */
  restoreOptimizer(state: { t: number; m: Float32Array; v: Float32Array }, arm = 0): void {
    this.checkArm(arm);
    if (state.m.length !== this.parameterCount) {
      throw new Error(
        `optimizer snapshot has ${state.m.length} values, expected ${this.parameterCount}`,
      );
    }
    this.t[arm] = state.t;
    const at = 4 * arm * this.parameterCount;
    this.device.queue.writeBuffer(this.m, at, new Float32Array(state.m));
    this.device.queue.writeBuffer(this.v, at, new Float32Array(state.v));
  }

  /** Free every buffer (the device stays). */
  dispose(): void {
    for (const b of this.buffers) b.destroy();
    for (const p of this.pending) p.buffer.destroy();
    for (const b of this.spare) b.destroy();
    this.buffers.length = 0;
    this.pending.length = 0;
    this.spare.length = 0;
  }
}
