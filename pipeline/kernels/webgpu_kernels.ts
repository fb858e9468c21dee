/**
 * A split-K matmul for tfjs's WebGPU backend, for products with a small output and a long
 * reduction: the weight gradients of training, xᵀ·dy with x [B·T, d] and dy [B·T, n].
 *
 * Why: tfjs-webgpu gives each output tile one workgroup that runs the whole K loop, so a
 * [4736,128]ᵀ·[4736,128] -> [128,128] product runs on ~16 workgroups of a 132-SM H100 at
 * ~3 GFLOP/s, and these products led a training step's kernel time (measured with WebGPU
 * on an NVIDIA H100). Here K is cut into S chunks, each chunk of each 16x16
 * output tile its own workgroup, writing partial products [S, M, N]; a second kernel sums
 * them over S (one thread per output value, no atomics: deterministic).
 *
 * Wired in by overriding the backend's `BatchMatMul` (as ./native_matmul.ts does for wasm):
 * tfjs's own matMul gradient calls matMul with transposeA set for the weight gradient, so
 * the override reaches it with no custom gradient. Products outside the rule
 * (`useSplitK`) go to the original kernel unchanged.
 */
import * as tf from "@tensorflow/tfjs";

/** The parts of tfjs-webgpu's program interface (4.22, `WebGPUProgram`) used here. */
interface WebGpuProgramLike {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  variableNames: string[];
  uniforms?: string;
  workgroupSize: [number, number, number];
  size?: boolean;
  getUserCode(): string;
}

/** The parts of tfjs-webgpu's `WebGPUBackend` used here. */
interface WebGpuBackendLike {
  runWebGPUProgram(
    program: WebGpuProgramLike,
    inputs: tf.TensorInfo[],
    outputDtype: tf.DataType,
    programDefinedUniform?: { type: string; data: number[] }[],
  ): tf.TensorInfo;
  disposeData(dataId: object): boolean;
}

/** Output tile side: each workgroup computes a 16x16 block of one chunk's partial product. */
const TILE = 16;
/**
 * Threads per workgroup side (16x16 = 256 threads, one output each). Kept at one output
 * per thread: 32x32 tiles with 4x4 per thread took llvmpipe ~20 s to compile per variant.
 */
const THREADS = 16;
/** Outputs per thread along each side. */
const PER = TILE / THREADS;
/** A chunk is at least this long, so a workgroup amortises its launch over >= 8 K-tiles. */
const MIN_CHUNK = 128;
/** Aim for this many workgroups: several per SM on a 132-SM H100. */
const TARGET_WORKGROUPS = 1024;

/** When the split-K kernel replaces tfjs's matmul (see `useSplitK`). */
export interface SplitKRule {
  /** Largest output M·N (default 128·512). */
  maxOutput: number;
  /** Shortest reduction K (default 1024). */
  minK: number;
}

/** The default rule: outputs up to 128x512 with K of at least 1024. */
export const DEFAULT_SPLIT_K_RULE: SplitKRule = { maxOutput: 128 * 512, minK: 1024 };

let rule: SplitKRule = DEFAULT_SPLIT_K_RULE;
/** tfjs-webgpu's own `BatchMatMul`, while the override is on. */
let original: tf.KernelConfig | null = null;
/** How many products the split-K kernel has computed (for tests and profiling). */
let splitKCount = 0;

/**
 * Whether an M x N product with reduction K takes the split-K path: a small output (few
 * output tiles, so few workgroups) and a long K (enough work per chunk to split).
 */
export function useSplitK(m: number, n: number, k: number, r: SplitKRule = rule): boolean {
  return m * n <= r.maxOutput && k >= r.minK;
}

/**
 * Chunk length and count for K, given the number of output tiles: enough chunks to reach
 * ~TARGET_WORKGROUPS workgroups, none shorter than MIN_CHUNK, each a whole number of
 * K-tiles. Example: 128x128 output (64 tiles), K = 4736 -> 16 chunks of 304.
 */
export function splitPlan(tiles: number, k: number): { chunk: number; splits: number } {
  const wanted = Math.max(
    1,
    Math.min(Math.ceil(k / MIN_CHUNK), Math.ceil(TARGET_WORKGROUPS / tiles)),
  );
  const chunk = Math.ceil(Math.ceil(k / wanted) / TILE) * TILE;
  return { chunk, splits: Math.ceil(k / chunk) };
}

/**
 * Partial products P[s] = op(A)[:, chunk s] · op(B)[chunk s, :] for s < S, where op
 * transposes when the flag is set: A is [K, M] with transposeA, else [M, K]; B is [N, K]
 * with transposeB, else [K, N]. Workgroup (x, y, z) computes output tile (row y, col x) of
 * chunk z; thread (tx, ty) owns output (row ty, column tx) of the tile (with PER > 1,
 * rows ty + THREADS·i and columns tx + THREADS·j, i, j < PER). Reads go through f32():
 * tfjs-webgpu casts int32 to float32 without a copy, so a float32 one-hot may sit in an
 * int32 buffer (the token-embedding gradient's A), and WGSL would otherwise not compile,
 * silently leaving zeros.
 */
class SplitKPartialsProgram implements WebGpuProgramLike {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [2], y: [1], z: [0] };
  dispatch: [number, number, number];
  variableNames = ["A", "B"];
  uniforms = "dimM : i32, dimN : i32, dimK : i32, chunkK : i32,";
  workgroupSize: [number, number, number] = [THREADS, THREADS, 1];

  constructor(
    splits: number,
    m: number,
    n: number,
    private transposeA: boolean,
    private transposeB: boolean,
  ) {
    this.outputShape = [splits, m, n];
    this.dispatch = [Math.ceil(n / TILE), Math.ceil(m / TILE), splits];
    this.shaderKey = `klalSplitKPartials_${transposeA}_${transposeB}`;
  }

  getUserCode(): string {
    // Tile loads: thread (tx, ty) loads elements (ty + THREADS·r, tx + THREADS·c) of the
    // stored layout's tile, so neighbouring threads read neighbouring addresses.
    // A stored [K, M] (transposeA): r walks k, c walks m; stored [M, K]: r walks m, c walks k.
    const loadA = this.transposeA
      ? `let kk = ty + r * ${THREADS}; let mm = tx + c * ${THREADS};
         let row = row0 + mm; let k = k0 + kk;
         var v = 0.0;
         if (row < uniforms.dimM && k < kEnd) { v = f32(A[k * uniforms.dimM + row]); }
         tileA[kk][mm] = v;`
      : `let mm = ty + r * ${THREADS}; let kk = tx + c * ${THREADS};
         let row = row0 + mm; let k = k0 + kk;
         var v = 0.0;
         if (row < uniforms.dimM && k < kEnd) { v = f32(A[row * uniforms.dimK + k]); }
         tileA[kk][mm] = v;`;
    // B stored [N, K] (transposeB): r walks n, c walks k; stored [K, N]: r walks k, c walks n.
    const loadB = this.transposeB
      ? `let nn = ty + r * ${THREADS}; let kk = tx + c * ${THREADS};
         let col = col0 + nn; let k = k0 + kk;
         var v = 0.0;
         if (col < uniforms.dimN && k < kEnd) { v = f32(B[col * uniforms.dimK + k]); }
         tileB[kk][nn] = v;`
      : `let kk = ty + r * ${THREADS}; let nn = tx + c * ${THREADS};
         let col = col0 + nn; let k = k0 + kk;
         var v = 0.0;
         if (col < uniforms.dimN && k < kEnd) { v = f32(B[k * uniforms.dimN + col]); }
         tileB[kk][nn] = v;`;
    return `
      var<workgroup> tileA : array<array<f32, ${TILE}>, ${TILE}>; // [k][m]
      var<workgroup> tileB : array<array<f32, ${TILE}>, ${TILE}>; // [k][n]

      fn main() {
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let col0 = i32(workgroupId.x) * ${TILE};
        let row0 = i32(workgroupId.y) * ${TILE};
        let split = i32(workgroupId.z);
        let kStart = split * uniforms.chunkK;
        let kEnd = min(kStart + uniforms.chunkK, uniforms.dimK);
        // The loop count comes from uniforms only, so the barriers stay in uniform control
        // flow; the last chunk's surplus K-tiles load zeros.
        let kTiles = (uniforms.chunkK + ${TILE - 1}) / ${TILE};
        var acc : array<array<f32, ${PER}>, ${PER}>; // zero-initialised
        for (var t = 0; t < kTiles; t = t + 1) {
          let k0 = kStart + t * ${TILE};
          for (var r = 0; r < ${PER}; r = r + 1) {
            for (var c = 0; c < ${PER}; c = c + 1) {
              ${loadA}
            }
          }
          for (var r = 0; r < ${PER}; r = r + 1) {
            for (var c = 0; c < ${PER}; c = c + 1) {
              ${loadB}
            }
          }
          workgroupBarrier();
          for (var kk = 0; kk < ${TILE}; kk = kk + 1) {
            var bs : array<f32, ${PER}>;
            for (var j = 0; j < ${PER}; j = j + 1) { bs[j] = tileB[kk][tx + j * ${THREADS}]; }
            for (var i = 0; i < ${PER}; i = i + 1) {
              let av = tileA[kk][ty + i * ${THREADS}];
              for (var j = 0; j < ${PER}; j = j + 1) { acc[i][j] = acc[i][j] + av * bs[j]; }
            }
          }
          workgroupBarrier();
        }
        let base = split * uniforms.dimM * uniforms.dimN;
        for (var i = 0; i < ${PER}; i = i + 1) {
          let row = row0 + ty + i * ${THREADS};
          for (var j = 0; j < ${PER}; j = j + 1) {
            let col = col0 + tx + j * ${THREADS};
            if (row < uniforms.dimM && col < uniforms.dimN) {
              result[base + row * uniforms.dimN + col] = acc[i][j];
            }
          }
        }
      }
    `;
  }
}

/** C[i] = sum over s of P[s, i]: one thread per output value, reading coalesced rows of P. */
class SumSplitsProgram implements WebGpuProgramLike {
  outputShape: number[];
  shaderKey = "klalSumSplits";
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  variableNames = ["P"];
  uniforms = "splits : i32,";
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;

  constructor(outShape: number[]) {
    this.outputShape = outShape;
    this.dispatchLayout = { x: outShape.map((_, i) => i) };
    const size = outShape.reduce((p, v) => p * v, 1);
    this.dispatch = [Math.ceil(size / this.workgroupSize[0]), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var sum = 0.0;
          for (var s = 0; s < uniforms.splits; s = s + 1) {
            sum = sum + P[s * uniforms.size + index];
          }
          setOutputAtIndex(index, sum);
        }
      }
    `;
  }
}

/**
 * op(a) · op(b) with split-K on the WebGPU backend `backend`, for a batch of one: a is
 * [.., K, M] with transposeA else [.., M, K], b is [.., N, K] with transposeB else
 * [.., K, N] (leading dims all 1). Returns [..., M, N] (the longer operand's leading dims).
 */
export function splitKMatmulInfo(
  backend: unknown,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): tf.TensorInfo {
  const gpu = backend as WebGpuBackendLike;
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const m = transposeA ? aCols : aRows;
  const k = transposeA ? aRows : aCols;
  const n = transposeB ? bRows : bCols;
  const outer = a.shape.length >= b.shape.length ? a.shape.slice(0, -2) : b.shape.slice(0, -2);
  const tiles = Math.ceil(m / TILE) * Math.ceil(n / TILE);
  const { chunk, splits } = splitPlan(tiles, k);
  const partialsProgram = new SplitKPartialsProgram(splits, m, n, transposeA, transposeB);
  const dims = [m, n, k, chunk].map((v) => ({ type: "int32", data: [v] }));
  const partials = gpu.runWebGPUProgram(partialsProgram, [a, b], "float32", dims); // [S, M, N]
  const out = gpu.runWebGPUProgram(
    new SumSplitsProgram([...outer, m, n]),
    [partials],
    "float32",
    [{ type: "int32", data: [splits] }],
  );
  gpu.disposeData(partials.dataId);
  splitKCount++;
  return out;
}

/**
 * op(a) · op(b) through the split-K kernel on the active backend, which must be webgpu; no
 * gradient (the override below is how training reaches it). For tests and benchmarks.
 */
export function splitKMatmul(
  a: tf.Tensor,
  b: tf.Tensor,
  transposeA = false,
  transposeB = false,
): tf.Tensor {
  if (tf.getBackend() !== "webgpu") {
    throw new Error(`splitKMatmul needs the webgpu backend, got "${tf.getBackend()}"`);
  }
  const info = splitKMatmulInfo(tf.backend(), a, b, transposeA, transposeB);
  return tf.engine().makeTensorFromTensorInfo(info);
}

/** `BatchMatMul` for webgpu: split-K where `useSplitK` says so, else tfjs's own kernel. */
function batchMatMulWithSplitK(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo | tf.TensorInfo[] {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const transposeA = Boolean(args.attrs?.transposeA);
  const transposeB = Boolean(args.attrs?.transposeB);
  const fallback = () => original!.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
  if (a.dtype !== "float32" || b.dtype !== "float32") return fallback();
  if (a.shape.length < 2 || b.shape.length < 2) return fallback();
  const batch = (s: number[]) => s.slice(0, -2).reduce((p, v) => p * v, 1);
  if (batch(a.shape) !== 1 || batch(b.shape) !== 1) return fallback();
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const m = transposeA ? aCols : aRows;
  const k = transposeA ? aRows : aCols;
  const n = transposeB ? bRows : bCols;
  if ((transposeB ? bCols : bRows) !== k) return fallback(); // let tfjs say why
  if (m * n * k === 0 || !useSplitK(m, n, k)) return fallback();
  return splitKMatmulInfo(args.backend, a, b, transposeA, transposeB);
}

/**
 * Route webgpu's small-output, long-K matmuls (`useSplitK` under `r`) through the split-K
 * kernel. Needs @tensorflow/tfjs-backend-webgpu loaded; env `KLAL_WEBGPU_SPLITK=off`
 * leaves tfjs's kernel in place. Idempotent; a later call only changes the rule.
 * Returns whether the override is on.
 */
export function enableSplitKMatmul(r: SplitKRule = DEFAULT_SPLIT_K_RULE): boolean {
  let requested: string | undefined;
  try {
    requested = Deno.env.get("KLAL_WEBGPU_SPLITK");
  } catch {
    requested = undefined; // no env permission: use the default
  }
  if (requested === "off") return false;
  rule = r;
  if (original) return true;
  const current = tf.getKernel("BatchMatMul", "webgpu");
  if (!current) return false;
  original = current;
  tf.unregisterKernel("BatchMatMul", "webgpu");
  tf.registerKernel({
    ...current,
    kernelFunc: batchMatMulWithSplitK as unknown as tf.KernelFunc,
  });
  return true;
}

/** Put tfjs-webgpu's own `BatchMatMul` back. */
export function disableSplitKMatmul(): void {
  if (!original) return;
  tf.unregisterKernel("BatchMatMul", "webgpu");
  tf.registerKernel(original);
  original = null;
  rule = DEFAULT_SPLIT_K_RULE;
}

/** Whether webgpu's `BatchMatMul` currently goes through `batchMatMulWithSplitK`. */
export function splitKMatmulEnabled(): boolean {
  return original !== null;
}

/** How many products the split-K kernel has computed in this process. */
export function splitKMatmulCount(): number {
  return splitKCount;
}
