/**
 * What the fused kernels (./native_fused.ts, ./native_loss.ts) share: the parts of the wasm
 * backend they touch, tensors' byte offsets and shape checks for the SIMD kernels
 * (./simd_kernels.ts), a ones vector outside the heap, and `Stock`, the backend's own kernels
 * called from inside a fused kernel with every temporary freed, also when the call throws.
 */
import * as tf from "@tensorflow/tfjs";
import { heapViews } from "./wasm_kernels.ts";
import type { WasmHeapBackend, WasmKernel } from "./wasm_kernels.ts";
import { type SimdKernels, simdKernels } from "./simd_kernels.ts";

/** The parts of the wasm backend these kernels touch. */
export interface WasmBackendLike extends WasmHeapBackend {
  disposeData(dataId: object, force?: boolean): boolean;
}

/** Byte offsets in the wasm heap of float32 tensors (for ./simd_kernels.ts). */
export function offsets(backend: WasmBackendLike, tensors: tf.TensorInfo[]): number[] {
  return tensors.map((t) => {
    const offset = backend.dataIdMap.get(t.dataId)?.memoryOffset;
    if (t.dtype !== "float32" || offset == null) {
      throw new Error(`a ${t.dtype} [${t.shape}] tensor is not float32 data in the wasm heap`);
    }
    return offset;
  });
}

/** Throws unless every tensor has the shape `shape` (the SIMD kernels read by offset). */
export function sameShapes(
  kernel: string,
  shape: number[],
  tensors: (tf.TensorInfo | undefined)[],
) {
  for (const t of tensors) {
    if (t && t.shape.join(",") !== shape.join(",")) {
      throw new Error(`${kernel}: expected shape [${shape}], got [${t.shape}]`);
    }
  }
}

/** The SIMD kernels for rows of `d` values (d a multiple of 4), else null. */
export function simdFor(backend: WasmBackendLike, d: number): SimdKernels | null {
  return d % 4 === 0 ? simdKernels(backend.wasm as { asm?: { memory?: unknown } }) : null;
}

export const sizeOf = (shape: number[]) => shape.reduce((p, v) => p * v, 1);

/**
 * Scratch space outside the wasm heap (a growth of the heap never moves it), for sgemm
 * operands a kernel makes and drops: a ones vector.
 */
class Scratch {
  private data = new Float32Array(0);
  constructor(private readonly fillWith: number) {}
  /** At least `n` values (filled with `fillWith` when made). */
  get(n: number): Float32Array {
    if (this.data.length < n) {
      this.data = new Float32Array(Math.max(n, 2 * this.data.length, 4096));
      if (this.fillWith !== 0) this.data.fill(this.fillWith);
    }
    return this.data;
  }
}

/** A vector of ones for sgemm/sgemv reductions and rank-1 bias products. */
export const ones = new Scratch(1);

/** The `Stock` helpers of the kernel call under way (their tensors are freed if it throws). */
const open: Stock[] = [];

/**
 * The wasm backend's own kernels (xnnpack and C, vectorised: elementwise arithmetic runs
 * 3-10x faster there than in a JavaScript loop) called from inside a fused kernel, with no
 * engine bookkeeping; every tensor made is disposed by `done` unless returned.
 */
export class Stock {
  private readonly made: tf.TensorInfo[] = [];
  constructor(readonly backend: WasmBackendLike) {
    open.push(this);
  }

  call(name: string, inputs: Record<string, tf.TensorInfo>, attrs: tf.NamedAttrMap = {}) {
    const out = tf.getKernel(name, "wasm")!.kernelFunc({
      inputs,
      attrs,
      backend: this.backend as unknown as tf.KernelBackend,
    }) as tf.TensorInfo;
    this.made.push(out);
    return out;
  }

  add = (a: tf.TensorInfo, b: tf.TensorInfo) => this.call("Add", { a, b });
  sub = (a: tf.TensorInfo, b: tf.TensorInfo) => this.call("Sub", { a, b });
  mul = (a: tf.TensorInfo, b: tf.TensorInfo) => this.call("Multiply", { a, b });
  /** Mean over the last axis, keeping it (OpenBLAS sgemv through ./native_matmul.ts). */
  rowMean = (x: tf.TensorInfo) =>
    this.call("Mean", { x }, { axis: [x.shape.length - 1], keepDims: true });

  /** A new tensor (disposed by `done` unless returned). */
  make(shape: number[]): tf.TensorInfo {
    const out = this.backend.makeOutput(shape, "float32");
    this.made.push(out);
    return out;
  }

  /** A scalar tensor holding `value`. */
  scalar(value: number): tf.TensorInfo {
    const out = this.make([]);
    heapViews(this.backend, [out])[0][0] = value;
    return out;
  }

  /** Dispose everything made here but `keep`. */
  done(...keep: tf.TensorInfo[]): void {
    for (const t of this.made) if (!keep.includes(t)) this.backend.disposeData(t.dataId);
    this.made.length = 0;
  }
}

/**
 * `kernel`, made to free what its `Stock` helpers made when it throws (the tensors of a
 * failed call would otherwise stay in the wasm heap).
 */
export function withStocksFreedOnThrow(kernel: WasmKernel): WasmKernel {
  return (args) => {
    const mark = open.length;
    try {
      return kernel(args);
    } catch (e) {
      for (const stock of open.slice(mark)) stock.done();
      throw e;
    } finally {
      open.length = mark;
    }
  };
}
