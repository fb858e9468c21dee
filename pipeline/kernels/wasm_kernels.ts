/**
 * Faster wasm kernels for the copies a training step makes: same values, less copying.
 *
 * - `Identity`, and `Cast` to the same dtype, share the input's storage (a reference count,
 *   as tfjs's cpu backend does) instead of copying it. tfjs clones every tensor it saves for
 *   the backward pass through `Identity`: ~550 full copies per paper-size step.
 * - `Slice`, `SplitV` and `Concat` copy straight within the wasm heap (`copyWithin`, one
 *   call per contiguous run). The stock `Slice` first copies the *whole* input out of the
 *   heap (`readSync`), so splitting the optimizer's flat update into ~70 parameters copied
 *   it ~70 times; the stock `Concat` makes a subarray per row.
 *
 * tfjs tensors are immutable (a variable's `assign` swaps in a new buffer), so shared
 * storage is never written through. Every result is bit-identical to the stock kernel's.
 */
import * as tf from "@tensorflow/tfjs";

/**
 * The parts of the wasm backend (tfjs-backend-wasm 4.x) that a kernel working in its heap
 * touches: where a tensor's data lies, a new output, the heap itself.
 */
export interface WasmHeapBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number | null } | undefined };
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
  wasm: { HEAPU8: Uint8Array };
}

/** The parts of the wasm backend these kernels touch. */
interface WasmBackendLike extends WasmHeapBackend {
  incRef(dataId: object): void;
}

/** What tfjs hands a kernel function. */
export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** A kernel function over {@link KernelArgs}. */
export type WasmKernel = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/**
 * cblas_sgemm, row-major, with its matrix operands as `Operand`: pointer objects, or byte
 * addresses for the binding with `usize` parameters (see {@link heapAddresses}).
 */
export type Sgemm<Operand> = (
  order: number,
  transA: number,
  transB: number,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Operand,
  lda: number,
  b: Operand,
  ldb: number,
  beta: number,
  c: Operand,
  ldc: number,
) => void;

/** Bytes per element of the dtypes the wasm heap stores. */
const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

const originals = new Map<string, tf.KernelConfig>();

/**
 * Pointers into the wasm heap at the data of `tensors`, for OpenBLAS: for each tensor, a
 * function from an element offset to a pointer. A tensor's byte offset in the heap never
 * changes (tfjs-backend-wasm mallocs its storage once), but the heap's ArrayBuffer does:
 * growing the heap (any allocation: `makeOutput`, a new tensor) detaches the old buffer, and
 * on a runtime that cannot grow wasm memory in place the heap also moves. So take these per
 * kernel call, after the call's last allocation, and use them only before it returns. Throws
 * (instead of handing OpenBLAS a null or out-of-heap address) when the heap view is detached
 * or a tensor does not lie inside the heap.
 */
export function heapPointers(
  backend: Pick<WasmHeapBackend, "dataIdMap" | "wasm">,
  tensors: tf.TensorInfo[],
): ((elements: number) => Deno.PointerValue)[] {
  const heap = backend.wasm.HEAPU8;
  const base = heap.byteLength > 0 ? Deno.UnsafePointer.of(heap) : null;
  if (base === null) throw new Error("the wasm heap view is detached (taken before a growth)");
  return tensors.map((t) => {
    const offset = backend.dataIdMap.get(t.dataId)?.memoryOffset;
    const bytes = BYTES[t.dtype] ?? 4;
    const size = t.shape.reduce((p, v) => p * v, 1);
    if (offset == null || offset + size * bytes > heap.byteLength) {
      throw new Error(`a ${t.dtype} [${t.shape}] tensor is not in the wasm heap`);
    }
    return (elements: number) => Deno.UnsafePointer.offset(base, offset + bytes * elements);
  });
}

/**
 * Byte addresses (BigInts) of the data of `tensors` in the wasm heap, for OpenBLAS bound
 * with `usize` parameters: a kernel issuing thousands of small products per call spends
 * ~60 ns per call passing BigInt addresses against ~160 ns for pointer objects made by
 * `Deno.UnsafePointer.offset` (plain numbers are slower still: V8's fast call wants BigInts).
 * The same rules as {@link heapPointers}: take them per call after the last allocation.
 */
export function heapAddresses(
  backend: Pick<WasmHeapBackend, "dataIdMap" | "wasm">,
  tensors: tf.TensorInfo[],
): bigint[] {
  const heap = backend.wasm.HEAPU8;
  const base = heap.byteLength > 0 ? Deno.UnsafePointer.of(heap) : null;
  if (base === null) throw new Error("the wasm heap view is detached (taken before a growth)");
  const address = BigInt(Deno.UnsafePointer.value(base));
  return tensors.map((t) => {
    const offset = backend.dataIdMap.get(t.dataId)?.memoryOffset;
    const size = t.shape.reduce((p, v) => p * v, 1);
    if (offset == null || offset + size * (BYTES[t.dtype] ?? 4) > heap.byteLength) {
      throw new Error(`a ${t.dtype} [${t.shape}] tensor is not in the wasm heap`);
    }
    return address + BigInt(offset);
  });
}

/** The byte address of a JavaScript typed array's data (which no wasm allocation moves). */
export function arrayAddress(array: Float32Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(array)));
}

/**
 * Float32Array views of the data of float32 `tensors` in the wasm heap, for kernels that
 * loop over the values in JavaScript. The same rules as {@link heapPointers}: take them per
 * kernel call after its last allocation (a growth detaches them), never keep them.
 */
export function heapViews(
  backend: Pick<WasmHeapBackend, "dataIdMap" | "wasm">,
  tensors: tf.TensorInfo[],
): Float32Array[] {
  const heap = backend.wasm.HEAPU8;
  if (heap.byteLength === 0) {
    throw new Error("the wasm heap view is detached (taken before a growth)");
  }
  return tensors.map((t) => {
    const offset = backend.dataIdMap.get(t.dataId)?.memoryOffset;
    const size = t.shape.reduce((p, v) => p * v, 1);
    if (t.dtype !== "float32" || offset == null || offset + 4 * size > heap.byteLength) {
      throw new Error(`a ${t.dtype} [${t.shape}] tensor is not float32 data in the wasm heap`);
    }
    return new Float32Array(heap.buffer, heap.byteOffset + offset, size);
  });
}

function callOriginal(name: string, args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  return originals.get(name)!.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
}

/** The input itself, one more reference to its storage. */
function share(x: tf.TensorInfo, backend: WasmBackendLike): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

function identity(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (!(x.dtype in BYTES)) return callOriginal("Identity", args);
  return share(x, args.backend as WasmBackendLike);
}

function cast(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (args.attrs?.dtype !== x.dtype || !(x.dtype in BYTES)) return callOriginal("Cast", args);
  return share(x, args.backend as WasmBackendLike);
}

/** Row-major element strides of `shape`. */
function stridesOf(shape: number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

/**
 * Copy the box `begin`..`begin + size` of a row-major tensor at byte offset `src` (of
 * `shape`) to `dst`, densely packed: one `copyWithin` per contiguous run.
 */
function copyBox(
  heap: Uint8Array,
  src: number,
  dst: number,
  shape: number[],
  begin: number[],
  size: number[],
  bytes: number,
): void {
  const strides = stridesOf(shape);
  // Axes after `inner` are taken whole, so a run spans axis `inner` and everything after it.
  let inner = shape.length - 1;
  while (inner > 0 && size[inner] === shape[inner]) inner--;
  const run = size[inner] * strides[inner] * bytes;
  let first = 0;
  for (let a = 0; a < shape.length; a++) first += begin[a] * strides[a];
  const index = new Array<number>(inner).fill(0);
  let offset = src + first * bytes;
  let out = dst;
  for (;;) {
    heap.copyWithin(out, offset, offset + run);
    out += run;
    // Odometer over the axes before `inner`.
    let a = inner - 1;
    while (a >= 0) {
      index[a]++;
      offset += strides[a] * bytes;
      if (index[a] < size[a]) break;
      offset -= index[a] * strides[a] * bytes;
      index[a] = 0;
      a--;
    }
    if (a < 0) return;
  }
}

/** Whether `x` lives in the heap with a dtype the copies handle (and has elements). */
function copyable(x: tf.TensorInfo, backend: WasmBackendLike): boolean {
  return x.dtype in BYTES && x.shape.length > 0 && !x.shape.includes(0) &&
    backend.dataIdMap.get(x.dataId)?.memoryOffset != null;
}

/** The box `begin`..`begin + size` of `x` (checked `copyable`) as a new tensor. */
function sliceInfo(
  x: tf.TensorInfo,
  begin: number[],
  size: number[],
  backend: WasmBackendLike,
): tf.TensorInfo {
  const xOffset = backend.dataIdMap.get(x.dataId)!.memoryOffset!;
  const out = backend.makeOutput(size, x.dtype);
  const outOffset = backend.dataIdMap.get(out.dataId)!.memoryOffset!;
  // makeOutput may have grown the heap: take it only now.
  copyBox(backend.wasm.HEAPU8, xOffset, outOffset, x.shape, begin, size, BYTES[x.dtype]);
  return out;
}

function slice(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as tf.Tensor,
    args.attrs!.begin as number[],
    args.attrs!.size as number[],
  );
  const backend = args.backend as WasmBackendLike;
  if (!copyable(x, backend) || size.includes(0)) return callOriginal("Slice", args);
  return sliceInfo(x, begin, size, backend);
}

function splitV(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const axis = tf.util.parseAxisParam(args.attrs!.axis as number, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(
    x as tf.Tensor,
    args.attrs!.numOrSizeSplits as number[] | number,
    axis,
  );
  if (!copyable(x, args.backend as WasmBackendLike) || sizes.some((s) => s === 0)) {
    return callOriginal("SplitV", args);
  }
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = [...x.shape];
    size[axis] = s;
    const out = sliceInfo(x, begin, size, args.backend as WasmBackendLike);
    begin[axis] += s;
    return out;
  });
}

/** Concatenation along `axis`: per outer index, one `copyWithin` per input. */
function concat(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const inputs = args.inputs as unknown as tf.TensorInfo[];
  const backend = args.backend as WasmBackendLike;
  const axis = tf.util.parseAxisParam(args.attrs!.axis as number, inputs[0].shape)[0];
  if (inputs.length < 2 || !inputs.every((t) => copyable(t, backend))) {
    return callOriginal("Concat", args);
  }
  const outShape = tf.backend_util.computeOutShape(inputs.map((t) => t.shape), axis);
  const bytes = BYTES[inputs[0].dtype];
  const outer = inputs[0].shape.slice(0, axis).reduce((p, v) => p * v, 1);
  const runs = inputs.map((t) => bytes * t.shape.slice(axis).reduce((p, v) => p * v, 1));
  const out = backend.makeOutput(outShape, inputs[0].dtype);
  const offsets = inputs.map((t) => backend.dataIdMap.get(t.dataId)!.memoryOffset!);
  let dst = backend.dataIdMap.get(out.dataId)!.memoryOffset!;
  const heap = backend.wasm.HEAPU8;
  for (let i = 0; i < outer; i++) {
    for (let j = 0; j < inputs.length; j++) {
      const src = offsets[j] + i * runs[j];
      heap.copyWithin(dst, src, src + runs[j]);
      dst += runs[j];
    }
  }
  return out;
}

const KERNELS: Record<string, WasmKernel> = {
  Identity: identity,
  Cast: cast,
  Slice: slice,
  SplitV: splitV,
  Concat: concat,
};

/** Replace a wasm kernel, keeping the original (and its setup) for the cases we pass on. */
export function overrideWasmKernel(
  name: string,
  kernelFunc: WasmKernel,
  store: Map<string, tf.KernelConfig>,
): boolean {
  if (store.has(name)) return true;
  const current = tf.getKernel(name, "wasm");
  if (!current) return false;
  store.set(name, current);
  tf.unregisterKernel(name, "wasm");
  tf.registerKernel({
    kernelName: name,
    backendName: "wasm",
    // The original's setup binds its wasm function, which the fallback needs.
    setupFunc: current.setupFunc,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  });
  return true;
}

/**
 * Register `kernels` (new kernel names, no stock kernel to keep) for the wasm backend and
 * note their names in `registered`, for {@link unregisterWasmKernels}.
 */
export function registerWasmKernels(
  kernels: Record<string, WasmKernel>,
  registered: string[],
): void {
  for (const [name, kernelFunc] of Object.entries(kernels)) {
    tf.registerKernel({
      kernelName: name,
      backendName: "wasm",
      kernelFunc: kernelFunc as unknown as tf.KernelFunc,
    });
    registered.push(name);
  }
}

/** Unregister the wasm kernels named in `registered` and empty it. */
export function unregisterWasmKernels(registered: string[]): void {
  for (const name of registered.splice(0)) tf.unregisterKernel(name, "wasm");
}

/**
 * A function that registers `gradients` with tfjs on its first call and does nothing after
 * (gradients are backend-neutral: they outlive turning the kernels off).
 */
export function registerGradientsOnce(gradients: tf.GradConfig[]): () => void {
  let registered = false;
  return () => {
    if (registered) return;
    registered = true;
    for (const gradient of gradients) tf.registerGradient(gradient);
  };
}

/** Put back the original kernels saved in `store`. */
export function restoreWasmKernels(store: Map<string, tf.KernelConfig>): void {
  for (const [name, config] of store) {
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel(config);
  }
  store.clear();
}

/** Use the copy kernels above on the wasm backend. Idempotent; false without wasm. */
export function enableWasmCopyKernels(): boolean {
  for (const [name, fn] of Object.entries(KERNELS)) {
    if (!overrideWasmKernel(name, fn, originals)) return false;
  }
  return true;
}

/** Restore the wasm backend's own copy kernels. */
export function disableWasmCopyKernels(): void {
  restoreWasmKernels(originals);
}

/** Whether the copy kernels are in use. */
export function wasmCopyKernelsEnabled(): boolean {
  return originals.size > 0;
}
