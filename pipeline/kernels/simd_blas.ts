/**
 * A BLAS shipped with the project: sgemm, sgemv and sdot of ./simd_kernels.wat (WebAssembly
 * SIMD, relaxed-SIMD fused multiply-add), instantiated over tfjs-wasm's own memory, so that the
 * native kernels (./native_matmul.ts, ./native_attention.ts, ./native_fused.ts) run where no
 * OpenBLAS is installed. Operands are byte offsets of tensors in that heap, as BigInts (the
 * OpenBLAS binding's addresses are BigInts too, so the kernels' address arithmetic serves both):
 * no copies, and a growth of the heap leaves them valid.
 *
 * sgemm packs blocks of op(B) (256 x 512) into a work area and runs 4x8 tiles of f32x4
 * accumulators over them, op(A) read in place (see the WAT). The work area and a vector of ones
 * for the reductions are allocated once per heap through tfjs-wasm's own malloc, so a product
 * allocates nothing: heap views a kernel holds stay valid across its products.
 */
import { bestSeconds } from "../lib/timing.ts";
import * as tf from "@tensorflow/tfjs";
import type { FusedBlas } from "./native_fused.ts";
import { type SimdKernels, simdModule, simdModuleCompiles } from "./simd_kernels.ts";
import type { WasmHeapBackend } from "./wasm_kernels.ts";

/** The parts of tfjs-wasm's module the SIMD BLAS touches. */
interface WasmModule {
  HEAPU8: Uint8Array;
  asm?: { memory?: unknown };
  _malloc(bytes: number): number;
  _free(pointer: number): void;
}

/** What the SIMD BLAS keeps per heap: the kernels, sgemm's work area, the ones. */
interface Bound {
  wasm: WasmModule;
  kernels: SimdKernels;
  work: number;
  ones: number;
  onesLength: number;
}

const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;
/** Ones kept from the start: every reduction of the models' shapes fits. */
const ONES = 1 << 16;

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/** Per heap (tfjs-wasm module): its kernels, work area and ones, shared by every `simdBlas`. */
const heaps = new WeakMap<WasmModule, Bound>();

/** Whether the SIMD BLAS can run here (why not, when it cannot). */
export function simdBlasAvailable(): { available: true } | { available: false; reason: string } {
  return simdModuleCompiles()
    ? { available: true }
    : { available: false, reason: "this engine cannot compile WebAssembly relaxed SIMD" };
}

function flag(name: string, value: number): number {
  if (value === NO_TRANS) return 0;
  if (value === TRANS) return 1;
  throw new Error(`SIMD BLAS: ${name} must be 111 (no transpose) or 112 (transpose), got ${value}`);
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`SIMD BLAS: ${what}`);
}

/**
 * The SIMD BLAS routines. They bind to the heap of the backend the last `addresses` call was
 * given (a kernel takes its addresses before its products), allocating the work area there on
 * first use.
 */
export function simdBlas(): FusedBlas {
  let bound: Bound | null = null;

  function bind(wasm: WasmModule): Bound {
    if (bound?.wasm === wasm) return bound;
    let b = heaps.get(wasm);
    if (!b) {
      const kernels = simdModule(wasm);
      if (!kernels) throw new Error("SIMD BLAS: the module cannot be instantiated here");
      const work = wasm._malloc(kernels.sgemmWorkBytes());
      const ones = wasm._malloc(4 * ONES);
      if (work === 0 || ones === 0) throw new Error("SIMD BLAS: no heap left for its work area");
      // Views only after the allocations (either may have grown the heap).
      new Float32Array(wasm.HEAPU8.buffer, ones, ONES).fill(1);
      b = { wasm, kernels, work, ones, onesLength: ONES };
      heaps.set(wasm, b);
    }
    bound = b;
    return b;
  }

  function current(): Bound {
    if (!bound) throw new Error("SIMD BLAS: no heap bound (take addresses first)");
    return bound;
  }

  return {
    addresses(backend, tensors) {
      const heap = bind(backend.wasm as unknown as WasmModule).wasm.HEAPU8;
      return tensors.map((t) => {
        const offset = backend.dataIdMap.get(t.dataId)?.memoryOffset;
        const size = t.shape.reduce((p, v) => p * v, 1);
        if (offset == null || offset + size * (BYTES[t.dtype] ?? 4) > heap.byteLength) {
          throw new Error(`a ${t.dtype} [${t.shape}] tensor is not in the wasm heap`);
        }
        return BigInt(offset);
      });
    },
    ones(n) {
      const b = current();
      if (n > b.onesLength) {
        const length = Math.max(n, 2 * b.onesLength);
        const at = b.wasm._malloc(4 * length);
        if (at === 0) throw new Error("SIMD BLAS: no heap left for the ones");
        b.wasm._free(b.ones);
        new Float32Array(b.wasm.HEAPU8.buffer, at, length).fill(1);
        b.ones = at;
        b.onesLength = length;
      }
      return BigInt(b.ones);
    },
    sgemm(order, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
      check(order === ROW_MAJOR, `row-major (101) only, got order ${order}`);
      const ta = flag("transA", transA);
      const tb = flag("transB", transB);
      check(m >= 0 && n >= 0 && k >= 0, `negative size ${m}x${n}x${k}`);
      check(lda >= Math.max(1, ta ? m : k), `lda ${lda} too small`);
      check(ldb >= Math.max(1, tb ? k : n), `ldb ${ldb} too small`);
      check(ldc >= Math.max(1, n), `ldc ${ldc} too small`);
      const s = current();
      s.kernels.sgemm(
        ta,
        tb,
        m,
        n,
        k,
        alpha,
        Number(a),
        lda,
        Number(b),
        ldb,
        beta,
        Number(c),
        ldc,
        s.work,
      );
    },
    sgemv(order, trans, m, n, alpha, a, lda, x, incX, beta, y, incY) {
      check(order === ROW_MAJOR, `row-major (101) only, got order ${order}`);
      check(incX > 0 && incY > 0, `positive increments only, got ${incX}, ${incY}`);
      check(lda >= Math.max(1, n), `lda ${lda} too small`);
      const t = flag("trans", trans);
      current().kernels.sgemv(
        t,
        m,
        n,
        alpha,
        Number(a),
        lda,
        Number(x),
        incX,
        beta,
        Number(y),
        incY,
      );
    },
    sdot(n, x, incX, y, incY) {
      check(incX > 0 && incY > 0, `positive increments only, got ${incX}, ${incY}`);
      return n > 0 ? current().kernels.sdot(n, Number(x), incX, Number(y), incY) : 0;
    },
  };
}

/**
 * The SIMD sgemm at [m, k]·[k, n] in GFLOP/s on the active wasm backend's heap: the best of
 * `repeats` timed products after two untimed ones (the engine compiles hot code in tiers).
 * Null where wasm is not the active backend or the module cannot run.
 */
export function simdSgemmGflops(m: number, k: number, n: number, repeats = 10): number | null {
  if (tf.getBackend() !== "wasm" || !simdModuleCompiles()) return null;
  const blas = simdBlas();
  const backend = tf.backend() as unknown as WasmHeapBackend;
  const a = tf.tensor2d(
    Float32Array.from({ length: m * k }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5),
    [m, k],
  );
  const b = tf.tensor2d(
    Float32Array.from({ length: k * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5),
    [k, n],
  );
  const c = tf.zeros([m, n]);
  try {
    const [aAt, bAt, cAt] = blas.addresses(backend, [a, b, c]);
    const product = () =>
      blas.sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1, aAt, k, bAt, n, 0, cAt, n);
    return 2 * m * k * n / bestSeconds(product, repeats) / 1e9;
  } finally {
    tf.dispose([a, b, c]);
  }
}
