/**
 * Growing the wasm heap under the native kernels (pipeline/kernels/native_matmul.ts,
 * native_attention.ts, native_fused.ts, wasm_kernels.ts), shared by tests/heap_growth_test.ts
 * and the child process of tests/native_repeat_test.ts.
 *
 * Growing the heap replaces its ArrayBuffer (the old one is detached: its views read as
 * length 0), so a kernel that kept a view or a pointer from before a growth would read or
 * write through a stale one. The helpers grow the heap through its own allocator, as a big
 * tensor does, so tfjs's views are renewed the way they are in a real run.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { disableNativeMatmul, enableNativeMatmul } from "../pipeline/kernels/native_matmul.ts";
import {
  ATTENTION_MIX,
  ATTENTION_MIX_GRAD,
  ATTENTION_SCORES,
  ATTENTION_SCORES_GRAD,
} from "../pipeline/kernels/native_attention.ts";
import * as fused from "../pipeline/kernels/native_fused.ts";
import { AdamW } from "../pipeline/train/adamw.ts";
import { batchTensors, disposeBatch } from "../pipeline/model/batch_tensors.ts";
import { lossParts } from "../pipeline/model/losses.ts";
import { tinyGridData, tinyModel } from "./fixtures.ts";

/** The parts of tfjs-backend-wasm 4.x these helpers touch. */
interface WasmHeapBackend {
  wasm: { HEAPU8: Uint8Array; _malloc(bytes: number): number; _free(pointer: number): void };
  makeOutput(shape: number[], dtype: string, ...rest: unknown[]): tf.TensorInfo;
}

function wasmBackend(): WasmHeapBackend {
  assert.equal(tf.getBackend(), "wasm");
  return tf.backend() as unknown as WasmHeapBackend;
}

/** Current size of the wasm heap in bytes. */
export function heapBytes(): number {
  return wasmBackend().wasm.HEAPU8.byteLength;
}

/**
 * Grow the wasm heap (by about a fifth, emscripten's step): allocate blocks until it grows,
 * then free them. Checks that the heap view from before the growth is detached. Returns the
 * new size in bytes.
 */
export function growHeap(): number {
  const { wasm } = wasmBackend();
  const before = wasm.HEAPU8;
  const size = before.byteLength;
  const block = Math.max(1 << 20, size >> 4);
  const blocks: number[] = [];
  try {
    while (wasm.HEAPU8.byteLength === size) {
      const p = wasm._malloc(block);
      if (p === 0) throw new Error(`the wasm heap cannot grow past ${size} bytes`);
      blocks.push(p);
    }
  } finally {
    for (const p of blocks) wasm._free(p);
  }
  assert.equal(before.byteLength, 0, "the heap view from before the growth is still attached");
  return wasm.HEAPU8.byteLength;
}

/**
 * Run `fn` with every `makeOutput` of the wasm backend growing the heap right after it
 * allocates: a kernel that took a heap view or pointer before allocating its output then
 * holds a stale one. Returns `fn`'s result and how many times the heap grew.
 */
export function withGrowingOutputs<T>(fn: () => T): { result: T; growths: number } {
  const backend = wasmBackend();
  const makeOutput = backend.makeOutput;
  let growths = 0;
  backend.makeOutput = function (this: WasmHeapBackend, ...args) {
    const out = makeOutput.apply(this, args);
    growHeap();
    growths++;
    return out;
  };
  try {
    return { result: fn(), growths };
  } finally {
    // The method lives on the prototype; the instance's own property shadowed it.
    delete (backend as Partial<WasmHeapBackend>).makeOutput;
    assert.equal(backend.makeOutput, makeOutput);
  }
}

/** Largest absolute difference between two equal-length arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return Number.isNaN(max) ? Infinity : max;
}

/** Losses of each step and the weights after the last, of a short tiny-model training run. */
export interface TrainingTrace {
  losses: number[];
  weights: Float32Array[];
  /** Heap size before each step. */
  heap: number[];
}

/**
 * `steps` AdamW steps of a small model (d=32, 4 heads, KLAL on both layers) on tiny Grid
 * Patch data, with the native kernels on or off; with `grow`, the wasm heap grows before
 * every step.
 */
export async function trainTrace(
  options: { native: boolean; grow: boolean; steps?: number },
): Promise<TrainingTrace> {
  if (options.native) enableNativeMatmul();
  else disableNativeMatmul();
  try {
    const fixture = tinyGridData(4, 16);
    const model = tinyModel(fixture, 11, { dModel: 32, heads: 4 });
    const variables = model.variables();
    const optimizer = new AdamW(variables, 0.01);
    const trace: TrainingTrace = { losses: [], weights: [], heap: [] };
    for (let step = 0; step < (options.steps ?? 3); step++) {
      if (options.grow) growHeap();
      trace.heap.push(heapBytes());
      const rows = Array.from({ length: 8 }, (_, i) => (step * 8 + i) % fixture.samples.length);
      const batch = batchTensors(fixture.data, rows);
      const { value, grads } = tf.variableGrads(
        () => lossParts(model, batch, fixture.data, 1, [0, 1]).total,
        variables,
      );
      trace.losses.push((await value.data())[0]);
      await optimizer.apply(variables.map((v) => grads[v.name]), 3e-3, 1);
      tf.dispose([value, ...Object.values(grads)]);
      disposeBatch(batch);
    }
    for (const v of variables) trace.weights.push(await v.data() as Float32Array);
    optimizer.dispose();
    model.dispose();
    return trace;
  } finally {
    enableNativeMatmul();
  }
}

/** One call of each kernel the native path replaces or adds, as `runKernel` arguments. */
export interface KernelCase {
  name: string;
  run: () => tf.Tensor[];
  /** Needs OpenBLAS (the copy kernels do not). */
  blas: boolean;
  /** The wasm backend has a stock kernel of this name (the attention kernels are ours). */
  stock: boolean;
}

/**
 * A call of every native kernel (matmul, Sum, Mean, the four attention kernels), fused kernel
 * (./native_fused.ts: linear and its gradients, linear + GELU, GELU's gradient, layer norms
 * and their gradient, attention and its gradient, the sum of squares, AdamW) and copy kernel
 * (Slice, SplitV, Concat), on the tensors `inputs` holds (dispose them after).
 */
export function kernelCases(): { cases: KernelCase[]; inputs: tf.Tensor[] } {
  const [b, t, heads, dh] = [2, 5, 2, 3];
  const d = heads * dh;
  const a = tf.randomNormal([3, 7, 5], 0, 1, "float32", 1);
  const c = tf.randomNormal([3, 6, 5], 0, 1, "float32", 2);
  const x = tf.randomNormal([4, 6, 5], 0, 1, "float32", 3);
  const y = tf.randomNormal([4, 2, 5], 0, 1, "float32", 8);
  const qkv = tf.randomNormal([b, t, 3 * d], 0, 1, "float32", 4);
  const probs = tf.softmax(tf.randomNormal([b, heads, t, t], 0, 1, "float32", 5));
  const dScores = tf.randomNormal([b, heads, t, t], 0, 1, "float32", 6);
  const dMixed = tf.randomNormal([b, t, d], 0, 1, "float32", 7);
  const attention = { heads, scale: 1 / Math.sqrt(dh) };
  const w = tf.randomNormal([5, 3], 0, 1, "float32", 9);
  const bias = tf.randomNormal([3], 0, 1, "float32", 10);
  const gain = tf.randomNormal([5], 1, 0.2, "float32", 11);
  const dy = tf.randomNormal([4, 6, 3], 0, 1, "float32", 12);
  const keyMask = tf.tensor2d([[1, 1, 1, 1, 0], [0, 1, 1, 1, 1]]);
  const flat = tf.randomNormal([30], 0, 1, "float32", 13);
  const sig = tf.sigmoid(dy);
  // AdamW's flat moments over x (120 values) and w (15).
  const m = tf.randomNormal([135], 0, 1, "float32", 14);
  const v = tf.abs(m);
  const run = (name: string, inputs: tf.NamedTensorMap | tf.Tensor[], attrs = {}) => () => {
    const out = tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs);
    return Array.isArray(out) ? out as tf.Tensor[] : [out as tf.Tensor];
  };
  const cases: KernelCase[] = [
    {
      name: "BatchMatMul",
      run: run("BatchMatMul", { a, b: c }, { transposeA: false, transposeB: true }),
      blas: true,
      stock: true,
    },
    {
      name: "Sum",
      run: run("Sum", { x }, { axis: [0, 1], keepDims: false }),
      blas: true,
      stock: true,
    },
    { name: "Mean", run: run("Mean", { x }, { axis: 2, keepDims: true }), blas: true, stock: true },
    {
      name: ATTENTION_SCORES,
      run: run(ATTENTION_SCORES, { qkv }, attention),
      blas: true,
      stock: false,
    },
    {
      name: ATTENTION_SCORES_GRAD,
      run: run(ATTENTION_SCORES_GRAD, { dy: dScores, qkv }, attention),
      blas: true,
      stock: false,
    },
    {
      name: ATTENTION_MIX,
      run: run(ATTENTION_MIX, { probs, qkv }, attention),
      blas: true,
      stock: false,
    },
    {
      name: ATTENTION_MIX_GRAD,
      run: run(ATTENTION_MIX_GRAD, { dy: dMixed, probs, qkv }, attention),
      blas: true,
      stock: false,
    },
    {
      name: "Slice",
      run: run("Slice", { x }, { begin: [1, 2, 0], size: [2, 3, 4] }),
      blas: false,
      stock: true,
    },
    {
      name: "SplitV",
      run: run("SplitV", { x }, { numOrSizeSplits: [1, 3, 2], axis: 1 }),
      blas: false,
      stock: true,
    },
    { name: "Concat", run: run("Concat", [x, y, x], { axis: 1 }), blas: false, stock: true },
    ...([
      [fused.LINEAR, { x, w, b: bias }],
      [fused.LINEAR_GRAD_INPUT, { dy, w }],
      [fused.LINEAR_GRAD_WEIGHT, { x, dy }],
      [fused.LINEAR_GRAD_BIAS, { dy }],
      [fused.LINEAR_GELU, { x, w, b: bias }],
      [fused.GELU_GRAD, { dy, slope: sig }],
      [fused.LAYER_NORM, { x, gain, bias: gain }],
      [fused.RESIDUAL_LAYER_NORM, { x, r: x, gain, bias: gain }, { withSum: true }],
      [fused.LAYER_NORM_GRAD, { dy: x, x, r: x, ds: x, gain }],
      [fused.ATTENTION, { qkv, keyMask }, attention],
      [fused.ATTENTION_GRAD, { dMixed, dProbs: dScores, qkv, probs }, attention],
      [fused.SUM_SQUARES, { 0: x, 1: flat }],
      [fused.ADAMW, { m, v, p0: x, g0: x, p1: w, g1: w }, {
        count: 2,
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        c1: 0.1,
        c2: 0.001,
        scale: 0.5,
        weightDecay: 0.1,
      }],
    ] as [string, tf.NamedTensorMap, tf.NamedAttrMap?][]).map(([name, inputs, attrs]) => ({
      name,
      run: run(name, inputs, attrs),
      blas: true,
      stock: false,
    })),
  ];
  return {
    cases,
    inputs: [a, c, x, y, qkv, probs, dScores, dMixed, w, bias, gain, dy, keyMask, flat, sig, m, v],
  };
}

/**
 * A process's wasm heap grows about 50 times before it reaches wasm32's 4 GiB (each growth
 * adds a fifth, at most 96 MiB), while growing at every allocation of every kernel case
 * takes ~70 growths (the fused kernels allocate their intermediates). So the cases are run
 * with growth in groups, one process per group: at most this many growths each.
 */
export const GROWTHS_PER_PROCESS = 36;

/** How many outputs one call of each case allocates (a dry run, no growth). */
export function allocationCounts(cases: KernelCase[]): number[] {
  const backend = wasmBackend();
  const makeOutput = backend.makeOutput;
  return cases.map((kernel) => {
    let count = 0;
    backend.makeOutput = function (this: WasmHeapBackend, ...args) {
      count++;
      return makeOutput.apply(this, args);
    };
    try {
      tf.dispose(kernel.run());
    } finally {
      delete (backend as Partial<WasmHeapBackend>).makeOutput;
    }
    return count;
  });
}

/** Consecutive groups of case indices needing at most GROWTHS_PER_PROCESS growths each. */
export function growthGroups(cases: KernelCase[]): number[][] {
  const groups: number[][] = [[]];
  let used = 0;
  allocationCounts(cases).forEach((count, i) => {
    if (count > GROWTHS_PER_PROCESS) throw new Error(`${cases[i].name} allocates ${count} times`);
    if (used + count > GROWTHS_PER_PROCESS) {
      groups.push([]);
      used = 0;
    }
    groups.at(-1)!.push(i);
    used += count;
  });
  return groups;
}

/**
 * Run the cases of growth group `group` (modulo the number of groups) once plainly and once
 * growing the heap at every output allocation; throws when a value changed. Returns how
 * many times the heap grew and the kernels run.
 */
export function growthGroupCheck(
  group: number,
  blas: boolean,
): { growths: number; names: string[]; groups: number } {
  const { cases: all, inputs } = kernelCases();
  const cases = all.filter((k) => blas || !k.blas);
  const groups = growthGroups(cases);
  const chosen = groups[((group % groups.length) + groups.length) % groups.length];
  let growths = 0;
  for (const kernel of chosen.map((i) => cases[i])) {
    const before = kernel.run();
    const after = withGrowingOutputs(kernel.run);
    growths += after.growths;
    if (after.growths < after.result.length) {
      throw new Error(`${kernel.name}: the heap grew only ${after.growths} times`);
    }
    after.result.forEach((t, i) => {
      if (t.shape.join() !== before[i].shape.join()) {
        throw new Error(`${kernel.name} output ${i}: shape ${t.shape} vs ${before[i].shape}`);
      }
      if (maxAbsDiff(t.dataSync(), before[i].dataSync()) !== 0) {
        throw new Error(`${kernel.name} output ${i} changed when the heap grew`);
      }
    });
    tf.dispose([...before, ...after.result]);
  }
  tf.dispose(inputs);
  return { growths, names: chosen.map((i) => cases[i].name), groups: groups.length };
}
