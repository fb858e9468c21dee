/**
 * The SIMD kernels of ./simd_kernels.wat, instantiated over tfjs-wasm's own memory so they
 * work in place on tensors (byte offsets into the heap; a growth of the heap keeps them
 * valid). Used by the fused kernels (./native_fused.ts) for layer norm forward and backward,
 * GELU with its bias and slope and its gradient with the bias's, attention's causal softmax and
 * its gradient, next-token cross-entropy's rows and AdamW, each one pass per row or value where
 * the stock ops take several. The module uses relaxed SIMD's fused multiply-add; where it cannot
 * be compiled, or with `KLAL_SIMD=off`, the fused kernels use the stock ops.
 *
 * The same module carries sgemm, sgemv and sdot, the SIMD BLAS of ./simd_blas.ts that the
 * native kernels run on where OpenBLAS is missing; `KLAL_SIMD=off` leaves those on (it is about
 * the row passes above), `KLAL_BLAS=off` turns them off with every native kernel.
 */
import { SIMD_KERNELS_WASM } from "./simd_kernels_wasm.ts";

/** The kernels, by their WAT signatures (pointers are byte offsets in the heap). */
export interface SimdKernels {
  layerNorm(
    x: number,
    r: number,
    sum: number,
    y: number,
    g: number,
    b: number,
    rows: number,
    d: number,
    flags: number,
    eps: number,
  ): void;
  layerNormGrad(
    dy: number,
    x: number,
    r: number,
    ds: number,
    g: number,
    dx: number,
    dgain: number,
    dbias: number,
    rows: number,
    d: number,
    flags: number,
    eps: number,
  ): void;
  softmaxCausal(s: number, mask: number, blocks: number, heads: number, t: number): void;
  softmaxGrad(p: number, g: number, t: number): void;
  biasGelu(
    z: number,
    b: number,
    y: number,
    slope: number,
    rows: number,
    n: number,
    a: number,
  ): void;
  geluGradBias(
    g: number,
    slope: number,
    out: number,
    colsum: number,
    rows: number,
    n: number,
  ): void;
  adamw(
    p: number,
    g: number,
    out: number,
    m: number,
    v: number,
    m2: number,
    v2: number,
    n: number,
    decay: number,
    beta1: number,
    beta2: number,
    scale: number,
    step: number,
    eps: number,
  ): void;
  crossEntropyRows(
    x: number,
    targets: number,
    w: number,
    grad: number,
    stats: number,
    rows: number,
    v: number,
  ): void;
  /**
   * C = alpha op(A) op(B) + beta C, row-major; ta, tb: 1 transposes the stored matrix; beta 0
   * never reads C. `work`: sgemmWorkBytes() bytes of scratch in the heap.
   */
  sgemm(
    ta: number,
    tb: number,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: number,
    lda: number,
    b: number,
    ldb: number,
    beta: number,
    c: number,
    ldc: number,
    work: number,
  ): void;
  /** The scratch `sgemm` needs, in bytes. */
  sgemmWorkBytes(): number;
  /** y = alpha op(A) x + beta y, row-major A m x n (trans 1: Aᵀ); positive increments. */
  sgemv(
    trans: number,
    m: number,
    n: number,
    alpha: number,
    a: number,
    lda: number,
    x: number,
    incX: number,
    beta: number,
    y: number,
    incY: number,
  ): void;
  /** Σ x[i incX] y[i incY] over n values (positive increments). */
  sdot(n: number, x: number, incX: number, y: number, incY: number): number;
}

/** The part of tfjs-wasm's module that holds its memory. */
interface WasmModuleLike {
  asm?: { memory?: unknown };
}

let compiled: WebAssembly.Module | null = null;
const instances = new WeakMap<WebAssembly.Memory, SimdKernels>();

/** The kernels over `wasm`'s memory, or null when they are off or cannot be had. */
export function simdKernels(wasm: WasmModuleLike): SimdKernels | null {
  if (Deno.env.get("KLAL_SIMD") === "off") return null;
  return simdModule(wasm);
}

/** Whether this engine compiles the module (WebAssembly SIMD with relaxed SIMD). */
export function simdModuleCompiles(): boolean {
  try {
    compiled ??= compile();
    return true;
  } catch {
    return false;
  }
}

function compile(): WebAssembly.Module {
  return new WebAssembly.Module(Uint8Array.from(atob(SIMD_KERNELS_WASM), (c) => c.charCodeAt(0)));
}

/**
 * The module over `wasm`'s memory whatever `KLAL_SIMD` says (the SIMD BLAS, ./simd_blas.ts),
 * or null where there is no memory or the engine cannot compile it.
 */
export function simdModule(wasm: WasmModuleLike): SimdKernels | null {
  const memory = wasm.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  let kernels = instances.get(memory);
  if (!kernels) {
    try {
      compiled ??= compile();
      const instance = new WebAssembly.Instance(compiled, { env: { memory } });
      kernels = instance.exports as unknown as SimdKernels;
    } catch {
      return null; // no SIMD in this engine: the stock ops it is
    }
    instances.set(memory, kernels);
  }
  return kernels;
}
