/**
 * One batch for the whole-step WebGPU trainer (./trainer.ts): rows of the encoded data
 * copied into host arrays made once, the per-batch weights the kernels read precomputed
 * (NTP: lossMask / Σ lossMask; KLAL: queryMask / count / heads, only the first answer position
 * with `queries: first`), and everything written to its storage buffer, at the arm's place in
 * a stacked trainer's (each buffer holds every arm's batch, arm-major).
 */
import type { Encoded, Layout } from "../../model/batch.ts";
import { queryCount, sequenceLength } from "../../model/batch.ts";
import type { KlalQueries } from "../../model/losses.ts";

/** What a batch's shape and weights depend on (a part of the trainer's options). */
export interface BatchOptions {
  layout: Layout;
  batch: number;
  queries: KlalQueries;
  config: { heads: number };
}

/** The batch's storage buffers, as the kernels bind them. */
export type BatchBuffers = Record<
  "patches" | "text" | "keyMask" | "next" | "lossWeight" | "queryWeight" | "target",
  GPUBuffer
>;

/** Host staging and device buffers of one batch. */
export class BatchUpload {
  readonly buffers: BatchBuffers;
  private readonly host: {
    patches: Float32Array<ArrayBuffer>;
    text: Int32Array<ArrayBuffer>;
    keyMask: Float32Array<ArrayBuffer>;
    next: Int32Array<ArrayBuffer>;
    lossWeight: Float32Array<ArrayBuffer>;
    queryWeight: Float32Array<ArrayBuffer>;
    target: Float32Array<ArrayBuffer>;
  };
  private readonly b: number;
  private readonly tv: number;
  private readonly tt: number;
  private readonly t: number;
  private readonly tq: number;

  /** `storage(floats)` makes a storage buffer of that many 4-byte values for every arm. */
  constructor(
    private readonly device: GPUDevice,
    private readonly options: BatchOptions,
    storage: (floats: number) => GPUBuffer,
  ) {
    const { layout, batch: b } = options;
    this.b = b;
    this.tv = layout.visual;
    this.t = sequenceLength(layout);
    this.tt = this.t - this.tv;
    this.tq = queryCount(layout);
    const rows = b * this.t;
    this.host = {
      patches: new Float32Array(b * this.tv * layout.patchDim),
      text: new Int32Array(b * this.tt),
      keyMask: new Float32Array(rows),
      next: new Int32Array(rows),
      lossWeight: new Float32Array(rows),
      queryWeight: new Float32Array(b * Math.max(this.tq, 1)),
      target: new Float32Array(b * this.tv),
    };
    const h = this.host;
    this.buffers = {
      patches: storage(h.patches.length),
      text: storage(h.text.length),
      keyMask: storage(h.keyMask.length),
      next: storage(h.next.length),
      lossWeight: storage(h.lossWeight.length),
      queryWeight: storage(h.queryWeight.length),
      target: storage(h.target.length),
    };
  }

  /** Upload the rows `indices` of `data` as arm `arm`'s batch. */
  set(data: Encoded, indices: number[], arm = 0): void {
    const { b, tv, tt, t, tq } = this;
    if (indices.length !== b) throw new Error(`batch of ${indices.length}, trainer built for ${b}`);
    const h = this.host;
    const pd = data.layout.patchDim;
    const copy = <T extends Float32Array | Int32Array>(src: T, width: number, out: T) => {
      indices.forEach((row, i) => out.set(src.subarray(row * width, (row + 1) * width), i * width));
    };
    copy(data.patches, tv * pd, h.patches);
    copy(data.text, tt, h.text);
    copy(data.keyMask, t, h.keyMask);
    copy(data.nextToken, t, h.next);
    copy(data.target, tv, h.target);
    // NTP's weights: lossMask / Σ lossMask over the batch.
    let masked = 0;
    indices.forEach((row, i) => {
      for (let j = 0; j < t; j++) {
        const w = data.lossMask[row * t + j];
        h.lossWeight[i * t + j] = w;
        masked += w;
      }
    });
    const denominator = Math.max(masked, 1);
    for (let j = 0; j < h.lossWeight.length; j++) h.lossWeight[j] /= denominator;
    // KLAL's query weights: queryMask (only the first with `first`) / count / heads.
    const heads = this.options.config.heads;
    h.queryWeight.fill(0);
    indices.forEach((row, i) => {
      let count = 0;
      for (let q = 0; q < tq; q++) {
        const w = this.options.queries === "first" && q > 0 ? 0 : data.queryMask[row * tq + q];
        h.queryWeight[i * tq + q] = w;
        count += w;
      }
      for (let q = 0; q < tq; q++) h.queryWeight[i * tq + q] /= Math.max(count, 1) * heads;
    });
    const queue = this.device.queue;
    for (const key of Object.keys(this.buffers) as (keyof BatchBuffers)[]) {
      queue.writeBuffer(this.buffers[key], arm * h[key].byteLength, h[key]);
    }
  }
}
