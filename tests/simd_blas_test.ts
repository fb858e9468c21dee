/**
 * The SIMD BLAS (pipeline/kernels/simd_blas.ts, sgemm/sgemv/sdot of simd_kernels.wat): each
 * routine against a plain TypeScript reference and against OpenBLAS (where it loads) to 1e-4
 * relative, on the models' shapes and odd ones, in place in the wasm heap; a short training run
 * on it against stock tfjs-wasm; and which BLAS `KLAL_BLAS` picks.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { backendLabel, initBackend } from "../pipeline/kernels/backend.ts";
import {
  blasProvider,
  blasRoutines,
  enableNativeMatmul,
  fusedKernelsEnabled,
} from "../pipeline/kernels/native_matmul.ts";
import type { FusedBlas } from "../pipeline/kernels/native_fused.ts";
import type { WasmHeapBackend } from "../pipeline/kernels/wasm_kernels.ts";
import { maxAbsDiff, trainTrace } from "./heap_growth.ts";

await initBackend("wasm");
const simd = blasRoutines("simd");
const openblas = blasRoutines("openblas");
if (!openblas) {
  console.warn("SIMD BLAS tests: no OpenBLAS here, checked against the reference only");
}
const ignore = simd === null;
if (ignore) console.warn("SIMD BLAS tests skipped: this engine cannot compile relaxed SIMD");

const ROW_MAJOR = 101;
const N = 111;
const T = 112;

const backend = () => tf.backend() as unknown as WasmHeapBackend;

/** A deterministic float32 array in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/** Write `data` into a tensor's storage in place (the tests own these tensors). */
function fill(t: tf.Tensor, data: Float32Array): void {
  const offset = backend().dataIdMap.get(t.dataId)!.memoryOffset!;
  new Float32Array(backend().wasm.HEAPU8.buffer, offset, data.length).set(data);
}

interface GemmCase {
  ta: boolean;
  tb: boolean;
  m: number;
  n: number;
  k: number;
  alpha?: number;
  beta?: number;
  /** Extra floats per row of A, B and C (leading dimensions past the row length). */
  pad?: number;
  /** Rows of C checked against the reference (all when absent). */
  rows?: number[];
}

/** C from `blas`'s sgemm on the case's operands (C starts as `c0`). */
function runGemm(blas: FusedBlas, g: GemmCase, a: Float32Array, b: Float32Array, c0: Float32Array) {
  const { m, n, k } = g;
  const pad = g.pad ?? 0;
  const lda = (g.ta ? m : k) + pad, ldb = (g.tb ? k : n) + pad, ldc = n + pad;
  const at = tf.tensor1d(a), bt = tf.tensor1d(b), ct = tf.tensor1d(c0);
  try {
    fill(ct, c0);
    const [aAt, bAt, cAt] = blas.addresses(backend(), [at, bt, ct]);
    const [ta, tb] = [g.ta ? T : N, g.tb ? T : N];
    blas.sgemm(ROW_MAJOR, ta, tb, m, n, k, g.alpha ?? 1, aAt, lda, bAt, ldb, g.beta ?? 0, cAt, ldc);
    return { c: ct.dataSync() as Float32Array, lda, ldb, ldc };
  } finally {
    tf.dispose([at, bt, ct]);
  }
}

/** Check a case on the SIMD BLAS against the reference and OpenBLAS (1e-4 relative). */
function checkGemm(g: GemmCase, seed: number): void {
  const { m, n, k } = g;
  const pad = g.pad ?? 0;
  const alpha = g.alpha ?? 1, beta = g.beta ?? 0;
  const a = values(Math.max(1, (g.ta ? k : m) * ((g.ta ? m : k) + pad)), seed);
  const b = values(Math.max(1, (g.tb ? n : k) * ((g.tb ? k : n) + pad)), seed + 1);
  // beta 0 must ignore C's old contents: NaN there.
  const c0 = beta === 0
    ? new Float32Array(m * (n + pad)).fill(NaN)
    : values(m * (n + pad), seed + 2);
  const what = `${g.ta ? "T" : "N"}${g.tb ? "T" : "N"} ${m}x${n}x${k} alpha ${alpha} beta ${beta}` +
    ` pad ${pad}`;
  const got = runGemm(simd!, g, a, b, c0);
  const { lda, ldb, ldc } = got;
  const rows = g.rows ?? Array.from({ length: m }, (_, i) => i);
  for (const i of rows) {
    for (let j = 0; j < ldc; j++) {
      const v = got.c[i * ldc + j];
      if (j >= n) {
        assert.ok(Object.is(v, c0[i * ldc + j]), `${what}: C[${i}, ${j}] past n was written`);
        continue;
      }
      let sum = 0, scale = 0;
      for (let p = 0; p < k; p++) {
        const x = g.ta ? a[p * lda + i] : a[i * lda + p];
        const y = g.tb ? b[j * ldb + p] : b[p * ldb + j];
        sum += x * y;
        scale += Math.abs(x * y);
      }
      const old = beta === 0 ? 0 : beta * c0[i * ldc + j];
      const want = alpha * sum + old;
      const tolerance = 1e-4 * Math.max(Math.abs(alpha) * scale + Math.abs(old), 1e-6);
      assert.ok(Math.abs(v - want) <= tolerance, `${what}: C[${i}, ${j}] ${v} vs ${want}`);
    }
  }
  if (openblas) {
    const ref = runGemm(openblas, g, a, b, c0).c;
    const top = ref.reduce((p, v) => Number.isNaN(v) ? p : Math.max(p, Math.abs(v)), 1e-6);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        const diff = Math.abs(got.c[i * ldc + j] - ref[i * ldc + j]);
        assert.ok(diff <= 1e-4 * top, `${what}: C[${i}, ${j}] ${got.c[i * ldc + j]} vs OpenBLAS`);
      }
    }
  }
}

/** Every 53rd row and the last: the reference is slow at the models' sizes. */
const sampled = (
  m: number,
) => [...Array.from({ length: Math.ceil(m / 53) }, (_, i) => 53 * i), m - 1];

Deno.test({
  name: "SIMD sgemm: odd shapes, every transpose, padded rows, alpha and beta",
  ignore,
  fn() {
    let seed = 1;
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [7, 13, 5],
      [4, 8, 1],
      [5, 9, 3],
      [9, 1, 4],
      [1, 17, 2],
      [33, 17, 300], // two blocks of k
      [6, 600, 20], // two blocks of columns
      [3, 520, 513],
    ];
    for (const [m, n, k] of shapes) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          for (const [alpha, beta] of [[1, 0], [0.5, 0], [1, 1], [-2, 0.25]]) {
            for (const pad of [0, 3]) checkGemm({ m, n, k, ta, tb, alpha, beta, pad }, seed++);
          }
        }
      }
    }
  },
});

Deno.test({
  name: "SIMD sgemm: k = 0 and alpha = 0 leave beta C (zeros for beta 0, whatever C held)",
  ignore,
  fn() {
    for (const [alpha, beta, k] of [[1, 0, 0], [1, 2, 0], [0, 0, 3], [0, 0.5, 3]]) {
      // 3 x 4 with rows of 5 (lda, ldb >= 1 even for k = 0, as cblas asks).
      const g = { m: 3, n: 4, k, ta: false, tb: false, alpha, beta, pad: 1 };
      const c0 = beta === 0 ? new Float32Array(15).fill(NaN) : values(15, 9);
      const { c } = runGemm(simd!, g, values(15, 1), values(20, 2), c0);
      c.forEach((v, i) => {
        const want = i % 5 === 4 ? c0[i] : beta === 0 ? 0 : Math.fround(beta * c0[i]);
        assert.ok(Object.is(v, want), `alpha ${alpha} beta ${beta} k ${k}: C[${i}] ${v}`);
      });
    }
  },
});

Deno.test({
  name: "SIMD sgemm: the models' shapes (linear layers both ways, attention in place in qkv)",
  ignore,
  fn() {
    let seed = 100;
    for (const [rows, d] of [[832, 64], [4736, 128]]) {
      for (const n of [3 * d, 4 * d]) {
        const r = sampled(rows);
        checkGemm({ m: rows, n, k: d, ta: false, tb: false, rows: r }, seed++); // x·W
        checkGemm({ m: rows, n: d, k: n, ta: false, tb: true, rows: r }, seed++); // dy·Wᵀ
        checkGemm({ m: d, n, k: rows, ta: true, tb: false, rows: sampled(d) }, seed++); // xᵀ·dy
      }
    }
    // Attention's blocks: t = 74, dh = 32 in a [T, 3d] qkv row (d = 128), a [T, T] block.
    const [t, dh, d3] = [74, 32, 384];
    const pad = d3 - dh;
    checkGemm({ m: t, n: t, k: dh, ta: false, tb: true, pad, alpha: 1 / Math.sqrt(dh) }, seed++);
    checkGemm({ m: t, n: dh, k: t, ta: false, tb: false, pad: 0 }, seed++);
    checkGemm({ m: t, n: dh, k: t, ta: true, tb: false, beta: 1 }, seed++);
  },
});

/** y from `blas`'s sgemv (y starts as `y0`). */
function runGemv(
  blas: FusedBlas,
  [trans, m, n, alpha, lda, incX, beta, incY]: number[],
  a: Float32Array,
  x: Float32Array,
  y0: Float32Array,
): Float32Array {
  const at = tf.tensor1d(a), xt = tf.tensor1d(x), yt = tf.tensor1d(y0);
  try {
    fill(yt, y0);
    const [aAt, xAt, yAt] = blas.addresses(backend(), [at, xt, yt]);
    blas.sgemv(ROW_MAJOR, trans, m, n, alpha, aAt, lda, xAt, incX, beta, yAt, incY);
    return yt.dataSync() as Float32Array;
  } finally {
    tf.dispose([at, xt, yt]);
  }
}

Deno.test({
  name: "SIMD sgemv and sdot: both orientations, strides, beta 0 over NaN; reference and OpenBLAS",
  ignore,
  fn() {
    let seed = 200;
    const cases: number[][] = [];
    for (const trans of [N, T]) {
      for (const [m, n] of [[1, 1], [7, 13], [4736, 128], [5, 3], [37, 9]]) {
        for (
          const [alpha, beta, pad, incX, incY] of [[1, 0, 0, 1, 1], [0.5, 0.25, 3, 1, 1], [
            -1,
            0,
            2,
            2,
            3,
          ]]
        ) cases.push([trans, m, n, alpha, n + pad, incX, beta, incY]);
      }
    }
    for (const c of cases) {
      const [trans, m, n, alpha, lda, incX, beta, incY] = c;
      const [xs, ys] = trans === N ? [n, m] : [m, n];
      const a = values(m * lda, seed++);
      const x = values(1 + (xs - 1) * incX, seed++);
      const y0 = beta === 0
        ? new Float32Array(1 + (ys - 1) * incY).fill(NaN)
        : values(1 + (ys - 1) * incY, seed++);
      const y = runGemv(simd!, c, a, x, y0);
      const ref = openblas ? runGemv(openblas, c, a, x, y0) : null;
      for (let i = 0; i < ys; i++) {
        let sum = 0, scale = 0;
        for (let j = 0; j < xs; j++) {
          const v = (trans === N ? a[i * lda + j] : a[j * lda + i]) * x[j * incX];
          sum += v;
          scale += Math.abs(v);
        }
        const old = beta === 0 ? 0 : beta * y0[i * incY];
        const want = alpha * sum + old;
        const tolerance = 1e-4 * Math.max(Math.abs(alpha) * scale + Math.abs(old), 1e-6);
        const got = y[i * incY];
        assert.ok(Math.abs(got - want) <= tolerance, `sgemv ${c}: y[${i}] ${got} vs ${want}`);
        if (ref) assert.ok(Math.abs(got - ref[i * incY]) <= tolerance, `sgemv ${c}: vs OpenBLAS`);
      }
      // Between the strided values, y is untouched.
      for (let i = 0; i < y.length; i++) {
        if (i % incY !== 0) assert.ok(Object.is(y[i], y0[i]), `sgemv ${c}: y[${i}] written`);
      }
    }
    for (
      const [n, incX, incY] of [[0, 1, 1], [1, 1, 1], [7, 1, 1], [1000, 1, 1], [123_457, 1, 1], [
        50,
        2,
        3,
      ]]
    ) {
      const x = values(Math.max(1, 1 + (n - 1) * incX), seed++);
      const y = values(Math.max(1, 1 + (n - 1) * incY), seed++);
      const xt = tf.tensor1d(x), yt = tf.tensor1d(y);
      let sum = 0, scale = 0;
      for (let i = 0; i < n; i++) {
        sum += x[i * incX] * y[i * incY];
        scale += Math.abs(x[i * incX] * y[i * incY]);
      }
      for (const blas of [simd!, ...(openblas ? [openblas] : [])]) {
        const [xAt, yAt] = blas.addresses(backend(), [xt, yt]);
        const got = blas.sdot(n, xAt, incX, yAt, incY);
        assert.ok(
          Math.abs(got - sum) <= 1e-4 * Math.max(scale, 1e-6),
          `sdot ${n}: ${got} vs ${sum}`,
        );
      }
      tf.dispose([xt, yt]);
    }
  },
});

Deno.test({
  name: "SIMD BLAS: column-major order, unknown flags and short leading dimensions throw",
  ignore,
  fn() {
    const t = tf.zeros([16]);
    const [at] = simd!.addresses(backend(), [t]);
    assert.throws(() => simd!.sgemm(102, N, N, 2, 2, 2, 1, at, 2, at, 2, 0, at, 2), /row-major/);
    assert.throws(
      () => simd!.sgemm(ROW_MAJOR, 113, N, 2, 2, 2, 1, at, 2, at, 2, 0, at, 2),
      /transA/,
    );
    assert.throws(() => simd!.sgemm(ROW_MAJOR, N, N, 2, 2, 3, 1, at, 2, at, 2, 0, at, 2), /lda/);
    assert.throws(() => simd!.sgemv(ROW_MAJOR, N, 2, 2, 1, at, 2, at, 0, 0, at, 1), /increments/);
    t.dispose();
  },
});

Deno.test({
  name:
    "SIMD BLAS: a short training run (heap growing) gives stock wasm's losses and weights (1e-4)",
  ignore,
  async fn() {
    const stock = await trainTrace({ native: false, grow: false });
    assert.equal(enableNativeMatmul("simd").provider, "simd");
    try {
      assert.ok(fusedKernelsEnabled());
      const ours = await trainTrace({ native: true, grow: true });
      assert.equal(blasProvider(), "simd");
      assert.equal(backendLabel(), "wasm+simd");
      assert.ok(ours.losses.every(Number.isFinite));
      assert.ok(maxAbsDiff(ours.losses, stock.losses) < 1e-4, `${ours.losses} vs ${stock.losses}`);
      ours.weights.forEach((w, i) =>
        assert.ok(maxAbsDiff(w, stock.weights[i]) < 1e-4, `weight ${i} after the last step`)
      );
    } finally {
      enableNativeMatmul(openblas ? "openblas" : "simd");
    }
  },
});

Deno.test({
  name:
    "KLAL_BLAS: auto prefers OpenBLAS, simd forces the SIMD BLAS (KLAL_SIMD=off too), off neither",
  ignore,
  async fn() {
    const module = new URL("../pipeline/kernels/native_matmul.ts", import.meta.url).href;
    const backendModule = new URL("../pipeline/kernels/backend.ts", import.meta.url).href;
    const code = `
      import { backendLabel, initBackend } from "${backendModule}";
      import { fusedKernelsEnabled, nativeAttentionEnabled } from "${module}";
      await initBackend("wasm");
      console.log(JSON.stringify({
        label: backendLabel(),
        fused: fusedKernelsEnabled(),
        attention: nativeAttentionEnabled(),
      }));
    `;
    const run = async (env: Record<string, string>) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--quiet", code],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
    };
    const on = { fused: true, attention: true };
    const auto = openblas ? "wasm+openblas" : "wasm+simd";
    assert.deepEqual(await run({ KLAL_BLAS: "" }), { label: auto, ...on });
    assert.deepEqual(await run({ KLAL_BLAS: "auto" }), { label: auto, ...on });
    assert.deepEqual(await run({ KLAL_BLAS: "simd" }), { label: "wasm+simd", ...on });
    assert.deepEqual(await run({ KLAL_BLAS: "simd", KLAL_SIMD: "off" }), {
      label: "wasm+simd",
      ...on,
    });
    // A library that is not there: the SIMD BLAS.
    assert.deepEqual(await run({ KLAL_BLAS: "/nonexistent/libopenblas.so.0" }), {
      label: "wasm+simd",
      ...on,
    });
    assert.deepEqual(await run({ KLAL_BLAS: "off" }), {
      label: "wasm",
      fused: false,
      attention: false,
    });
  },
});
