/**
 * The SIMD kernels: the committed binary (pipeline/kernels/simd_kernels_wasm.ts) is the WAT
 * source compiled, and each kernel computes its formula on values checked by hand here (the
 * fused kernels that call them are checked against the stock ops in native_fused_test.ts).
 */
import assert from "node:assert/strict";
import { compileSimdKernels, simdModuleSource } from "../pipeline/commands/simd.ts";
import { simdKernels } from "../pipeline/kernels/simd_kernels.ts";

Deno.test("simd kernels: the committed binary is simd_kernels.wat compiled", async () => {
  const fresh = simdModuleSource(await compileSimdKernels());
  const committed = await Deno.readTextFile(
    new URL("../pipeline/kernels/simd_kernels_wasm.ts", import.meta.url),
  );
  // deno fmt may rewrap the generated file; the base64 text is what must agree.
  const payload = (s: string) => s.match(/"[A-Za-z0-9+/=]+"/g)!.join("");
  assert.equal(payload(committed), payload(fresh), "run `deno task simd`");
});

Deno.test("simd kernels: layer norm, its gradient and the GELU passes by hand", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const k = simdKernels({ asm: { memory } })!;
  assert.ok(k, "SIMD kernels instantiate over an imported memory");
  const f = new Float32Array(memory.buffer);
  // One row of 4: x = [1, 2, 3, 6], r = [1, 0, 1, -2] -> s = [2, 2, 4, 4], mean 3, c = ±1,
  // var 1, inv = 1/sqrt(1 + eps); gain [1, 2, 1, 2], bias [0, 0, 1, 1].
  f.set([1, 2, 3, 6], 0);
  f.set([1, 0, 1, -2], 4);
  f.set([1, 2, 1, 2], 8);
  f.set([0, 0, 1, 1], 12);
  const eps = 1e-5;
  const inv = 1 / Math.sqrt(1 + eps);
  k.layerNorm(0, 16, 64, 80, 32, 48, 1, 4, 3, eps);
  assert.deepEqual(Array.from(f.subarray(16, 20)), [2, 2, 4, 4]); // the sum
  const y = Array.from(f.subarray(20, 24));
  [-inv, -2 * inv, 1 + inv, 1 + 2 * inv].forEach((v, i) => assert.ok(Math.abs(y[i] - v) < 1e-6));
  // Gradient with dy = [1, 0, 0, 0], the same a, gain [1, 2, 1, 2], ds = [0, 0, 0, 1]:
  // c = [-1, -1, 1, 1], dn = [1, 0, 0, 0], ma = 1/4, mc = -1/4;
  // dx = dn·inv - c·inv³·mc - inv·ma (+ ds); dgain = dy·c·inv = [-inv, 0, 0, 0]; dbias = dy.
  f.set([1, 0, 0, 0], 24);
  f.set([0, 0, 0, 1], 28);
  k.layerNormGrad(96, 0, 16, 112, 32, 128, 144, 160, 1, 4, 3, eps);
  const c = [-1, -1, 1, 1];
  const dx = Array.from(f.subarray(32, 36));
  c.forEach((ci, i) => {
    const dn = [1, 0, 0, 0][i];
    const want = dn * inv - ci * inv ** 3 * -0.25 - inv * 0.25 + [0, 0, 0, 1][i];
    assert.ok(Math.abs(dx[i] - want) < 1e-6, `dx[${i}] ${dx[i]} vs ${want}`);
  });
  assert.ok(Math.abs(f[36] + inv) < 1e-6);
  assert.deepEqual(Array.from(f.subarray(37, 40)), [0, 0, 0]);
  assert.deepEqual(Array.from(f.subarray(40, 44)), [1, 0, 0, 0]);
  // GELU of a product plus bias, two rows of 4: u = z + b; s = sigmoid(1.702 u), y = u s,
  // slope d = s + 1.702 y (1 - s). u = -60 is where exp(-1.702 u) is capped (s ~ 0, not NaN).
  f.set([0, 1, -1, 2, 10, -60, 0.5, -3], 200);
  f.set([0.5, 0, 1, -2], 210);
  k.biasGelu(800, 840, 880, 920, 2, 4, 1.702);
  const u = [0.5, 1, 0, 0, 10.5, -60, 1.5, -5];
  const sig = u.map((v) => 1 / (1 + Math.exp(-1.702 * v)));
  const gy = u.map((v, i) => v * sig[i]);
  const slope = gy.map((v, i) => sig[i] + 1.702 * v * (1 - sig[i]));
  u.forEach((_, i) => {
    assert.ok(Math.abs(f[220 + i] - gy[i]) < 1e-6, `gelu y[${i}] ${f[220 + i]} vs ${gy[i]}`);
    assert.ok(Math.abs(f[230 + i] - slope[i]) < 1e-6, `gelu d[${i}] ${f[230 + i]} vs ${slope[i]}`);
  });
  // Its gradient: out = g d, and the bias gradient the column sums (colsum starts as junk).
  f.set([1, -2, 3, 0.5, 2, 1, -1, 4], 240);
  f.set([9, 9, 9, 9], 260);
  k.geluGradBias(960, 920, 1000, 1040, 2, 4);
  const g = [1, -2, 3, 0.5, 2, 1, -1, 4];
  const out = g.map((v, i) => v * f[230 + i]);
  assert.deepEqual(Array.from(f.subarray(250, 258)), out.map(Math.fround));
  [0, 1, 2, 3].forEach((j) => {
    const want = out[j] + out[4 + j];
    assert.ok(Math.abs(f[260 + j] - want) < 1e-6, `colsum[${j}] ${f[260 + j]} vs ${want}`);
  });
});

Deno.test("simd kernels: KLAL_SIMD=off turns them off; no memory, no kernels", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  Deno.env.set("KLAL_SIMD", "off");
  try {
    assert.equal(simdKernels({ asm: { memory } }), null);
  } finally {
    Deno.env.delete("KLAL_SIMD");
  }
  assert.equal(simdKernels({}), null);
});
