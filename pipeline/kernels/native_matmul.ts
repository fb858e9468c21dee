/**
 * A native matmul for the wasm backend: a BLAS sgemm on tensors in place in tfjs-wasm's heap.
 * The BLAS is OpenBLAS `cblas_sgemm` through `Deno.dlopen` where Debian's libopenblas is
 * installed, else the SIMD BLAS shipped with the project (./simd_blas.ts: sgemm, sgemv and sdot
 * of ./simd_kernels.wat, WebAssembly SIMD over the same heap).
 *
 * Why: ~75% of a paper-size training step was the wasm `BatchMatMul` kernel, which reaches
 * ~32-35 GFLOP/s at best (and far less at our small shapes), while single-thread OpenBLAS
 * sgemm on the same core reaches ~100-127 GFLOP/s (AVX2 cores at 2.5-3 GHz). The tensors
 * already live in the wasm heap, so the kernel below hands the BLAS addresses in that heap:
 * no copies. sgemm's own transpose flags are fast, so transposed products need no
 * explicit transpose either.
 *
 * With the matmul come, through the same BLAS: `Sum` and `Mean` as sgemv (below), the
 * attention kernels of ./native_attention.ts and the fused kernels of ./native_fused.ts
 * (whole linear, GELU, layer-norm, attention and optimizer blocks as single kernels; off with
 * `KLAL_FUSED=off`). `enableNativeMatmul` also turns on the library-free copy kernels of
 * ./wasm_kernels.ts. Together with the custom gradients of ../model/ops.ts the unfused kernels made
 * a paper-size training step ~2x faster (`deno task bench`: 51-56 -> 108-111 samples/s, back
 * to back on a loaded 2-core machine).
 *
 * `KLAL_BLAS` picks the BLAS: unset (or `auto`), OpenBLAS where it loads, else the SIMD BLAS;
 * a library path, that OpenBLAS, else the SIMD BLAS; `simd`, the SIMD BLAS even where OpenBLAS
 * is installed; `off`, no BLAS (only the bit-identical copy kernels change). OpenBLAS goes
 * first where it loads: its AVX2 kernels are ~2-2.5x the SIMD BLAS's 128-bit ones
 * (docs/measurements/cpu-simd-blas.md). A serial (single-thread) OpenBLAS is preferred: the
 * pipeline runs one worker per core.
 */
import { bestSeconds } from "../lib/timing.ts";
import * as tf from "@tensorflow/tfjs";
import { attentionKernels, registerAttentionGradients } from "./native_attention.ts";
import { type FusedBlas, fusedKernels, registerFusedGradients } from "./native_fused.ts";
import { ones } from "./native_stock.ts";
import { simdBlas, simdBlasAvailable, simdSgemmGflops } from "./simd_blas.ts";
import {
  arrayAddress,
  disableWasmCopyKernels,
  enableWasmCopyKernels,
  heapAddresses,
  type KernelArgs,
  overrideWasmKernel,
  registerWasmKernels,
  restoreWasmKernels,
  unregisterWasmKernels,
  type WasmHeapBackend,
} from "./wasm_kernels.ts";

/** The BLAS the native kernels run on: OpenBLAS, or the SIMD BLAS of ./simd_blas.ts. */
export type BlasProvider = "openblas" | "simd";

/** What the SIMD BLAS is called where a library path would be. */
export const SIMD_BLAS_LIBRARY = "the SIMD BLAS of pipeline/kernels/simd_kernels.wat";

/** What `enableNativeMatmul` did. */
export interface NativeMatmulStatus {
  enabled: boolean;
  /** The BLAS in use. */
  provider?: BlasProvider;
  /** OpenBLAS's shared library, or {@link SIMD_BLAS_LIBRARY}. */
  library?: string;
  /** Why it is not enabled; with the SIMD BLAS, why not OpenBLAS (when it was looked for). */
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
  // Addresses as `usize` (BigInts): ./native_fused.ts issues thousands of small products per
  // kernel call, and a pointer object per operand cost more than some of them.
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

/** OpenBLAS once loaded (it stays loaded). */
let blas: { lib: Blas; path: string } | null = null;
/** The BLAS the native kernels run on while they are on. */
let active:
  | { provider: BlasProvider; routines: FusedBlas; library: string; reason?: string }
  | null = null;
/** The wasm backend's own kernels that the native ones replaced, by name. */
const originals = new Map<string, tf.KernelConfig>();
/** Kernels of ./native_attention.ts, registered while the native kernels are on. */
const added: string[] = [];
/** Kernels of ./native_fused.ts, registered while they are on. */
const fused: string[] = [];

const DISABLED = "disabled by KLAL_BLAS=off";
const SIMD_CHOSEN = "not looked for: KLAL_BLAS=simd";

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
  if (requested === "simd") return SIMD_CHOSEN;
  const candidates = requested && requested !== "auto" ? [requested] : CANDIDATE_LIBRARIES;
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
 * Whether OpenBLAS loads here (env `KLAL_BLAS`: a library path, `simd` or `off`), without
 * touching any kernel; a library found stays loaded for `enableNativeMatmul`. `disabled`:
 * `KLAL_BLAS` is `off` or `simd`, a choice rather than a missing library.
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
      return {
        found: false,
        disabled: opened === DISABLED || opened === SIMD_CHOSEN,
        reason: opened,
      };
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
  if (!active || a.dtype !== "float32" || b.dtype !== "float32") return fallback();
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
  // makeOutput may have grown the heap: addresses only now (heapAddresses in ./wasm_kernels.ts).
  const { sgemm, addresses } = active.routines;
  const [aBase, bBase, cBase] = addresses(backend, [a, b, out]);
  const aAt = (e: number) => aBase + BigInt(4 * e);
  const bAt = (e: number) => bBase + BigInt(4 * e);
  const cAt = (e: number) => cBase + BigInt(4 * e);
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
    if (!active || x.dtype !== "float32" || x.shape.length === 0 || x.shape.includes(0)) {
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
    // makeOutput may have grown the heap: addresses only now.
    const { sgemv, addresses } = active.routines;
    const [xAt, outAt] = addresses(backend, [x, out]);
    const onesAt = active.routines.ones(r);
    const alpha = kernel === "Mean" ? 1 / r : 1;
    if (c === 1) {
      // Innermost axes: y = X·ones with X row-major [P, R].
      sgemv(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, p, r, alpha, xAt, r, onesAt, 1, 0, outAt, 1);
      return out;
    }
    for (let i = 0; i < p; i++) {
      // y_p = X_pᵀ·ones with X_p row-major [R, C].
      const [xp, yp] = [xAt + BigInt(4 * i * r * c), outAt + BigInt(4 * i * c)];
      sgemv(CBLAS_ROW_MAJOR, CBLAS_TRANS, r, c, alpha, xp, c, onesAt, 1, 0, yp, 1);
    }
    return out;
  };
}

/** OpenBLAS's routines, bound with `usize` addresses (the ones in JavaScript memory). */
function openBlasRoutines(lib: Blas): FusedBlas {
  const symbols = lib.symbols;
  return {
    sgemm: symbols.sgemmAt,
    sgemv: symbols.sgemvAt,
    sdot: symbols.sdotAt,
    addresses: heapAddresses,
    // JavaScript memory, which no allocation in the wasm heap moves.
    ones: (n: number) => arrayAddress(ones.get(n)),
  } as unknown as FusedBlas;
}

/** The BLAS to run on: `choice`, or as `KLAL_BLAS` says; a string says why none. */
function pickBlas(choice?: BlasProvider): NonNullable<typeof active> | string {
  if (env("KLAL_BLAS") === "off") return DISABLED;
  let why: string | undefined;
  if (choice !== "simd") {
    const found = typeof Deno.dlopen === "function"
      ? findOpenBlas()
      : { found: false as const, disabled: false, reason: "Deno.dlopen is unavailable" };
    if (found.found && blas) {
      return { provider: "openblas", routines: openBlasRoutines(blas.lib), library: blas.path };
    }
    if (choice === "openblas") return found.found ? "OpenBLAS is not loaded" : found.reason;
    why = found.found ? undefined : found.reason;
  }
  const simd = simdBlasAvailable();
  if (!simd.available) return why ? `${why}; ${simd.reason}` : simd.reason;
  return { provider: "simd", routines: simdBlas(), library: SIMD_BLAS_LIBRARY, reason: why };
}

function statusOf(a: NonNullable<typeof active>): NativeMatmulStatus {
  return {
    enabled: true,
    provider: a.provider,
    library: a.library,
    ...(a.reason ? { reason: a.reason } : {}),
  };
}

/**
 * Replace the wasm backend's `BatchMatMul`, `Sum` and `Mean` with a BLAS's (`choice`, else as
 * `KLAL_BLAS` says: OpenBLAS where a libopenblas loads, else the SIMD BLAS; `off`: none).
 * Idempotent: without `choice`, the BLAS already on stays. Shapes they do not handle (other
 * dtypes, general broadcasting) go to the original kernels. Also turns on the copy kernels of
 * ./wasm_kernels.ts (bit-identical, no library needed), whether or not a BLAS runs.
 */
export function enableNativeMatmul(choice?: BlasProvider): NativeMatmulStatus {
  if (!tf.getKernel("BatchMatMul", "wasm")) {
    return { enabled: false, reason: "the wasm backend is not registered" };
  }
  enableWasmCopyKernels();
  if (active && originals.size > 0 && (choice === undefined || choice === active.provider)) {
    return statusOf(active);
  }
  if (active) disableNativeMatmul();
  enableWasmCopyKernels();
  const picked = pickBlas(choice);
  if (typeof picked === "string") return { enabled: false, reason: picked };
  active = picked;
  overrideWasmKernel("BatchMatMul", nativeBatchMatMul, originals);
  overrideWasmKernel("Sum", nativeReduce("Sum"), originals);
  overrideWasmKernel("Mean", nativeReduce("Mean"), originals);
  registerAttentionGradients();
  registerWasmKernels(attentionKernels(active.routines), added);
  if (env("KLAL_FUSED") !== "off") setFusedKernels(true);
  return statusOf(active);
}

/** Restore the wasm backend's own kernels (OpenBLAS stays loaded). */
export function disableNativeMatmul(): void {
  setFusedKernels(false);
  restoreWasmKernels(originals);
  unregisterWasmKernels(added);
  disableWasmCopyKernels();
  active = null;
}

/**
 * Turn the fused kernels of ./native_fused.ts on or off while the native kernels are on
 * (`enableNativeMatmul` turns them on unless `KLAL_FUSED=off`). Returns whether they are on.
 */
export function setFusedKernels(on: boolean): boolean {
  if (!on || !active || !nativeMatmulEnabled()) {
    unregisterWasmKernels(fused);
    return false;
  }
  if (fused.length > 0) return true;
  registerFusedGradients();
  registerWasmKernels(fusedKernels(active.routines), fused);
  return true;
}

/** The BLAS the native kernels run on now, or null when they are off. */
export function blasProvider(): BlasProvider | null {
  return nativeMatmulEnabled() && active ? active.provider : null;
}

/**
 * The routines of a BLAS, for tests and the bench: OpenBLAS's (null where it does not load)
 * or the SIMD BLAS's (null where the engine cannot compile it), whichever is on.
 */
export function blasRoutines(provider: BlasProvider): FusedBlas | null {
  if (provider === "simd") return simdBlasAvailable().available ? simdBlas() : null;
  return findOpenBlas().found && blas ? openBlasRoutines(blas.lib) : null;
}

/**
 * Single-thread sgemm at [m, k]·[k, n] in GFLOP/s: the best of `repeats` timed products after
 * an untimed one. OpenBLAS on buffers outside the wasm heap (null without OpenBLAS), or the SIMD
 * BLAS in the active wasm backend's heap (./simd_blas.ts `simdSgemmGflops`; null off wasm).
 */
export function sgemmGflops(
  m: number,
  k: number,
  n: number,
  repeats = 10,
  provider: BlasProvider = "openblas",
): number | null {
  if (provider === "simd") return simdSgemmGflops(m, k, n, repeats);
  if (!findOpenBlas().found || !blas) return null;
  const a = Float32Array.from({ length: m * k }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const b = Float32Array.from({ length: k * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
  const c = new Float32Array(m * n);
  const [aAt, bAt, cAt] = [a, b, c].map(arrayAddress);
  const sgemm = blas.lib.symbols.sgemmAt;
  const product = () =>
    sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, m, n, k, 1, aAt, k, bAt, n, 0, cAt, n);
  return 2 * m * k * n / bestSeconds(product, repeats, 1) / 1e9;
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

/** Whether `BatchMatMul` on wasm currently runs through a BLAS (see `blasProvider`). */
export function nativeMatmulEnabled(): boolean {
  return originals.has("BatchMatMul");
}
