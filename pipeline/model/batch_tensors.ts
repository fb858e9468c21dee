/** A batch of encoded samples (./batch.ts) as the tensors the model and the losses read. */
import * as tf from "@tensorflow/tfjs";
import { type Encoded, queryCount } from "./batch.ts";

/** One batch as tensors (caller disposes). */
export interface BatchTensors {
  patches: tf.Tensor3D;
  text: tf.Tensor2D;
  keyMask: tf.Tensor2D;
  nextToken: tf.Tensor2D;
  lossMask: tf.Tensor2D;
  queryMask: tf.Tensor2D;
  target: tf.Tensor2D;
}

/** Copy the rows `indices` of `data` into tensors. */
export function batchTensors(data: Encoded, indices: number[]): BatchTensors {
  const { layout } = data;
  const b = indices.length;
  const tv = layout.visual;
  const tt = layout.prompt + layout.answer;
  const t = tv + tt;
  const tq = queryCount(layout);
  const rows = <T extends Float32Array | Int32Array>(src: T, width: number, out: T): T => {
    indices.forEach((row, i) => out.set(src.subarray(row * width, (row + 1) * width), i * width));
    return out;
  };
  const pd = tv * layout.patchDim;
  return {
    patches: tf.tensor3d(rows(data.patches, pd, new Float32Array(b * pd)), [
      b,
      tv,
      layout.patchDim,
    ]),
    text: tf.tensor2d(rows(data.text, tt, new Int32Array(b * tt)), [b, tt], "int32"),
    keyMask: tf.tensor2d(rows(data.keyMask, t, new Float32Array(b * t)), [b, t]),
    nextToken: tf.tensor2d(rows(data.nextToken, t, new Int32Array(b * t)), [b, t], "int32"),
    lossMask: tf.tensor2d(rows(data.lossMask, t, new Float32Array(b * t)), [b, t]),
    queryMask: tf.tensor2d(rows(data.queryMask, tq, new Float32Array(b * tq)), [b, tq]),
    target: tf.tensor2d(rows(data.target, tv, new Float32Array(b * tv)), [b, tv]),
  };
}

/** Dispose every tensor of a batch. */
export function disposeBatch(batch: BatchTensors): void {
  for (const t of Object.values(batch)) (t as tf.Tensor).dispose();
}
