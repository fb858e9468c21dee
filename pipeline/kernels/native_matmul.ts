/**
 * A native matmul for the wasm backend: OpenBLAS `cblas_sgemm` through `Deno.dlopen`.
 *
 * Why: ~75% of a paper-size training step was the wasm `BatchMatMul` kernel, which reaches
 * ~32-35 GFLOP/s at best (and far less at our small shapes), while single-thread OpenBLAS
 * sgemm on the same core reaches ~100-127 GFLOP/s (AVX2 cores at 2.5-3 GHz). The tensors
 * already live in the wasm heap, so the kernel below hands OpenBLAS pointers into that heap:
 * no copies. sgemm's own transpose flags are fast, so transposed products need no
 * explicit transpose either.
 *
 * With the matmul come, through the same library: `Sum` and `Mean` as sgemv (below), the
 * attention kernels of ./native_attention.ts and the fused kernels of ./native_fused.ts
 * (whole linear, GELU, layer-norm, attention and optimizer blocks as single kernels; off with
 * `KLAL_FUSED=off`). `enableNativeMatmul` also turns on the library-free copy kernels of
 * ./wasm_kernels.ts. Together with the custom gradients of ../model/ops.ts the unfused kernels made
 * a paper-size training step ~2x faster (`deno task bench`: 51-56 -> 108-111 samples/s, back
 * to back on a loaded 2-core machine).
 *
 * Used only when present: without libopenblas (or with `KLAL_BLAS=off`) only the
 * bit-identical copy kernels change. A serial (single-thread) OpenBLAS is preferred: the
 * pipeline runs one worker per core.
 */
import * as tf from "@tensorflow/tfjs";
import { attentionKernels, registerAttentionGradients } from "./native_attention.ts";
import { type FusedBlas, fusedKernels, registerFusedGradients } from "./native_fused.ts";
import {
  arrayAddress,
  disableWasmCopyKernels,
  enableWasmCopyKernels,
  heapPointers,
  type KernelArgs,
  overrideWasmKernel,
  registerWasmKernels,
  restoreWasmKernels,
  type Sgemm,
  unregisterWasmKernels,
  type WasmHeapBackend,
} from "./wasm_kernels.ts";

/** What `enableNativeMatmul` did. */
export interface NativeMatmulStatus {
  enabled: boolean;
  /** The shared library in use. */
  library?: string;
  /** Why it is not enabled. */
  reason?: string;
}

/** Serial builds first; the last entries are whatever `ldconfig` resolves. */
const CANDIDATE_LIBRARIES = [
  "/usr/lib/x86_64-linux-gnu/openblas-serial/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/openblas-serial/libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "libopenblas.so.0",
  "libopenblas.so",
];

/** The same trailing parameters of sgemm and sgemv: alpha, A, lda, B, ldb, beta, C, ldc. */
const blasOperands = <P extends "pointer" | "usize">(p: P) =>
  ["f32", p, "i32", p, "i32", "f32", p, "i32"] as const;
/** cblas_sgemm's parameters: order, transA, transB, M, N, K, then the operands. */
const sgemmParameters = <P extends "pointer" | "usize">(p: P) =>
  ["i32", "i32", "i32", "i32", "i32", "i32", ...blasOperands(p)] as const;
/** cblas_sgemv's parameters: order, trans, M, N, then the operands (x, incX, y, incY). */
const sgemvParameters = <P extends "pointer" | "usize">(p: P) =>
  ["i32", "i32", "i32", "i32", ...blasOperands(p)] as const;

const SYMBOLS = {
  cblas_sgemm: { parameters: sgemmParameters("pointer"), result: "void" },
  cblas_sgemv: { parameters: sgemvParameters("pointer"), result: "void" },
  // The same routines with addresses as plain numbers (./native_fused.ts issues thousands of
  // small products per kernel call; a pointer object per operand cost more than some of them).
  sgemmAt: { name: "cblas_sgemm", parameters: sgemmParameters("usize"), result: "void" },
  sgemvAt: { name: "cblas_sgemv", parameters: sgemvParameters("usize"), result: "void" },
  sdotAt: {
    name: "cblas_sdot",
    // N, X, incX, Y, incY
    parameters: ["i32", "usize", "i32", "usize", "i32"],
    result: "f32",
  },
  // A pthread build would otherwise use every core; the pipeline runs one worker per core.
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
} as const;

const CBLAS_ROW_MAJOR = 101;
const CBLAS_NO_TRANS = 111;
const CBLAS_TRANS = 112;

type Blas = Deno.DynamicLibrary<typeof SYMBOLS>;

let blas: { lib: Blas; path: string } | null = null;
/** The wasm backend's own kernels that the native ones replaced, by name. */
const originals = new Map<string, tf.KernelConfig>();
/** Kernels of ./native_attention.ts, registered while the native kernels are on. */
const added: string[] = [];
/** Kernels of ./native_fused.ts, registered while they are on. */
const fused: string[] = [];

const DISABLED = "disabled by KLAL_BLAS=off";

/** An environment variable, or undefined without env permission. */
function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no env permission: use the defaults
  }
}

function openBlas(): { lib: Blas; path: string } | string {
  const requested = env("KLAL_BLAS");
  if (requested === "off") return DISABLED;
  const candidates = requested ? [requested] : CANDIDATE_LIBRARIES;
  const errors: string[] = [];
  for (const path of candidates) {
    try {
      const lib = Deno.dlopen(path, SYMBOLS);
      lib.symbols.openblas_set_num_threads?.(1);
      return { lib, path };
    } catch (e) {
      errors.push(`${path}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  return `no libopenblas could be loaded (apt-get install libopenblas0-serial, or set ` +
    `KLAL_BLAS to its path); tried ${errors.join("; ")}`;
}

/** Whether `t`'s data lives in the wasm heap (not a string or an empty tensor). */
function inHeap(backend: WasmHeapBackend, t: tf.TensorInfo): boolean {
  return backend.dataIdMap.get(t.dataId)?.memoryOffset != null;
}

/**
 * Whether OpenBLAS loads here (env `KLAL_BLAS`: a library path, or `off`), without touching
 * any kernel; a library found stays loaded for `enableNativeMatmul`. `disabled`: `KLAL_BLAS`
 * is `off`, a choice rather than a missing library.
 */
export function findOpenBlas():
  | { found: true; library: string }
  | { found: false; disabled: boolean; reason: string } {
  if (!blas) {
    if (typeof Deno.dlopen !== "function") {
      return { found: false, disabled: false, reason: "Deno.dlopen is unavailable" };
    }
    const opened = openBlas();
    if (typeof opened === "string") {
      return { found: false, disabled: opened === DISABLED, reason: opened };
    }
    blas = opened;
  }
  return { found: true, library: blas.path };
}

/** Element offset of batch `i` of a [batch, rows, cols] operand (a batch of 1 broadcasts). */
function batchOffset(batch: number, i: number, rows: number, cols: number): number {
  return batch === 1 ? 0 : i * rows * cols;
}

function nativeBatchMatMul(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const transposeA = Boolean(args.attrs?.transposeA);
  const transposeB = Boolean(args.attrs?.transposeB);
  const fallback = () =>
    originals.get("BatchMatMul")!.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
  if (!blas || a.dtype !== "float32" || b.dtype !== "float32") return fallback();
  if (a.shape.length < 2 || b.shape.length < 2) return fallback();
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = outerA.reduce((p, v) => p * v, 1);
  const batchB = outerB.reduce((p, v) => p * v, 1);
  // Our shapes: equal batch dims, or one side a plain matrix (or a batch of 1) that
  // broadcasts; anything else goes to the original kernel.
  const sameBatch = outerA.length === outerB.length && outerA.every((v, i) => v === outerB[i]);
  const outer = sameBatch
    ? outerA
    : batchB === 1 && outerB.length <= outerA.length
    ? outerA
    : batchA === 1 && outerA.length <= outerB.length
    ? outerB
    : null;
  if (outer === null) return fallback();
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const m = transposeA ? aCols : aRows;
  const k = transposeA ? aRows : aCols;
  const n = transposeB ? bRows : bCols;
  if ((transposeB ? bCols : bRows) !== k) return fallback(); // let tfjs say why
  const batch = Math.max(batchA, batchB);
  if (m * n * k * batch === 0) return fallback();

  const backend = args.backend as WasmHeapBackend;
  if (!inHeap(backend, a) || !inHeap(backend, b)) return fallback();
  const out = backend.makeOutput([...outer, m, n], "float32");
  // makeOutput may have grown the heap: pointers only now (heapPointers in ./wasm_kernels.ts).
  const [aAt, bAt, cAt] = heapPointers(backend, [a, b, out]);
  const sgemm = blas.lib.symbols.cblas_sgemm;
  for (let i = 0; i < batch; i++) {
    // Row-major: lda/ldb are the stored row lengths, whatever the transpose flags.
    sgemm(
      CBLAS_ROW_MAJOR,
      transposeA ? CBLAS_TRANS : CBLAS_NO_TRANS,
      transposeB ? CBLAS_TRANS : CBLAS_NO_TRANS,
      m,
      n,
      k,
      1,
      aAt(batchOffset(batchA, i, aRows, aCols)),
      aCols,
      bAt(batchOffset(batchB, i, bRows, bCols)),
      bCols,
      0,
      cAt(i * m * n),
      n,
    );
  }
  return out;
}

/** A Float32Array of at least `n` ones, kept for sgemv's reductions. */
let ones = new Float32Array(0);
function onesOf(n: number): Float32Array {
  if (ones.length < n) ones = new Float32Array(Math.max(n, 4096)).fill(1);
  return ones;
}

/**
 * `Sum` and `Mean` over a block of adjacent axes through sgemv: x viewed as [P, R, C] reduced
 * over R is P products X_pᵀ·ones (or one product X·ones when C = 1), times 1/R for a mean.
 * The wasm kernels first transpose non-innermost axes innermost (a full copy: bias and
 * layer-norm gradients were ~10% of a paper-size step) and reduce with scalar loops.
 */
function nativeReduce(kernel: "Sum" | "Mean") {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const fallback = () => originals.get(kernel)!.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
    if (!blas || x.dtype !== "float32" || x.shape.length === 0 || x.shape.includes(0)) {
      return fallback();
    }
    const axes = tf.util.parseAxisParam(args.attrs?.axis as number | number[], x.shape)
      .sort((a, b) => a - b);
    const first = axes[0];
    const last = axes[axes.length - 1];
    if (last - first !== axes.length - 1) return fallback();
    const size = (from: number, to: number) => x.shape.slice(from, to).reduce((p, v) => p * v, 1);
    const p = size(0, first);
    const r = size(first, last + 1);
    const c = size(last + 1, x.shape.length);
    const backend = args.backend as WasmHeapBackend;
    if (!inHeap(backend, x)) return fallback();
    const keepDims = Boolean(args.attrs?.keepDims);
    const outShape = x.shape.map((v, i) => (i >= first && i <= last ? 1 : v))
      .filter((_, i) => keepDims || i < first || i > last);
    const out = backend.makeOutput(outShape, "float32");
    // makeOutput may have grown the heap: pointers only now.
    const [xAt, outAt] = heapPointers(backend, [x, out]);
    // The ones live in JS memory (not the wasm heap), which no allocation here moves.
    const onesPtr = Deno.UnsafePointer.of(onesOf(r));
    const alpha = kernel === "Mean" ? 1 / r : 1;
    const sgemv = blas.lib.symbols.cblas_sgemv;
    if (c === 1) {
      // Innermost axes: y = X·ones with X row-major [P, R].
      sgemv(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, p, r, alpha, xAt(0), r, onesPtr, 1, 0, outAt(0), 1);
      return out;
    }
    for (let i = 0; i < p; i++) {
      // y_p = X_pᵀ·ones with X_p row-major [R, C].
      const [xp, yp] = [xAt(i * r * c), outAt(i * c)];
      sgemv(CBLAS_ROW_MAJOR, CBLAS_TRANS, r, c, alpha, xp, c, onesPtr, 1, 0, yp, 1);
    }
    return out;
  };
}

/**
 * Replace the wasm backend's `BatchMatMul`, `Sum` and `Mean` with OpenBLAS when a
 * libopenblas can be loaded (env `KLAL_BLAS`: a library path, or `off`). Idempotent.
 * Shapes they do not handle (other dtypes, general broadcasting) go to the original kernels.
 * Also turns on the copy kernels of ./wasm_kernels.ts (bit-identical, no library needed),
 * whether or not OpenBLAS loads.
 */
export function enableNativeMatmul(): NativeMatmulStatus {
  if (!tf.getKernel("BatchMatMul", "wasm")) {
    return { enabled: false, reason: "the wasm backend is not registered" };
  }
  enableWasmCopyKernels();
  if (blas && originals.size > 0) return { enabled: true, library: blas.path };
  if (typeof Deno.dlopen !== "function") {
    return { enabled: false, reason: "Deno.dlopen is unavailable in this runtime" };
  }
  const opened = blas ?? openBlas();
  if (typeof opened === "string") return { enabled: false, reason: opened };
  blas = opened;
  overrideWasmKernel("BatchMatMul", nativeBatchMatMul, originals);
  overrideWasmKernel("Sum", nativeReduce("Sum"), originals);
  overrideWasmKernel("Mean", nativeReduce("Mean"), originals);
  registerAttentionGradients();
  const sgemm = blas.lib.symbols.cblas_sgemm as unknown as Sgemm<Deno.PointerValue>;
  registerWasmKernels(attentionKernels(sgemm), added);
  if (env("KLAL_FUSED") !== "off") setFusedKernels(true);
  return { enabled: true, library: blas.path };
}

/** Restore the wasm backend's own kernels (the library stays loaded). */
export function disableNativeMatmul(): void {
  setFusedKernels(false);
  restoreWasmKernels(originals);
  unregisterWasmKernels(added);
  disableWasmCopyKernels();
}

/**
 * Turn the fused kernels of ./native_fused.ts on or off while the native kernels are on
 * (`enableNativeMatmul` turns them on unless `KLAL_FUSED=off`). Returns whether they are on.
 */
export function setFusedKernels(on: boolean): boolean {
  if (!on || !blas || !nativeMatmulEnabled()) {
    unregisterWasmKernels(fused);
    return false;
  }
  if (fused.length > 0) return true;
  registerFusedGradients();
  const symbols = blas.lib.symbols;
  const routines = {
    sgemm: symbols.sgemmAt,
    sgemv: symbols.sgemvAt,
    sdot: symbols.sdotAt,
  } as unknown as FusedBlas;
  registerWasmKernels(fusedKernels(routines), fused);
  return true;
}

/**
 * Single-thread OpenBLAS sgemm at [m, k]·[k, n] in GFLOP/s: the best of `repeats` timed
 * products after an untimed one, on buffers outside the wasm heap. Null without OpenBLAS.
 */
export function sgemmGflops(m: number, k: number, n: number, repeats = 10): number | null {
  if (!findOpenBlas().found || !blas) return null;
  const a = Float32Array.from({ length: m * k }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const b = Float32Array.from({ length: k * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
  const c = new Float32Array(m * n);
  const [aAt, bAt, cAt] = [a, b, c].map(arrayAddress);
  const sgemm = blas.lib.symbols.sgemmAt;
  const product = () =>
    sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, m, n, k, 1, aAt, k, bAt, n, 0, cAt, n);
  product();
  let best = Infinity;
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    product();
    best = Math.min(best, (performance.now() - started) / 1000);
  }
  return 2 * m * k * n / best / 1e9;
}

/** Whether the fused kernels of ./native_fused.ts can run now (on, and wasm active). */
export function fusedKernelsEnabled(): boolean {
  return fused.length > 0 && tf.getBackend() === "wasm";
}

/**
 * Whether the attention kernels of ./native_attention.ts can run now: native kernels on
 * and wasm the active backend.
 */
export function nativeAttentionEnabled(): boolean {
  return added.length > 0 && tf.getBackend() === "wasm";
}

/** Whether `BatchMatMul` on wasm currently runs through OpenBLAS. */
export function nativeMatmulEnabled(): boolean {
  return originals.has("BatchMatMul");
}
