/**
 * The SIMD kernels: the committed binary (pipeline/model/simd_kernels_wasm.ts) is the WAT
 * source compiled, and each kernel computes its formula on values checked by hand here (the
 * fused kernels that call them are checked against the stock ops in native_fused_test.ts).
 */
import assert from "node:assert/strict";
import { compileSimdKernels, simdModuleSource } from "../pipeline/model/simd_build.ts";
import { simdKernels } from "../pipeline/model/simd_kernels.ts";

Deno.test("simd kernels: the committed binary is simd_kernels.wat compiled", async () => {
  const fresh = simdModuleSource(await compileSimdKernels());
  const committed = await Deno.readTextFile(
    new URL("../pipeline/model/simd_kernels_wasm.ts", import.meta.url),
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
  // GELU passes over 5 values (4 by SIMD, 1 in the scalar tail).
  f.set([1, 2, 3, 4, 5], 200);
  f.set([0.5, 0.25, 1, 0, 2], 210);
  k.scaledProduct(800, 840, 880, 5, 0.5);
  assert.deepEqual(Array.from(f.subarray(220, 225)), [0.25, 0.25, 1.5, 0, 5]);
  k.geluGrad(800, 840, 880, 960, 5, 2); // g·(s + 2·y·(1 - s)) with y the line above
  const want = [1 * (0.5 + 2 * 0.25 * 0.5), 2 * (0.25 + 2 * 0.25 * 0.75), 3, 0, 5 * (2 - 2 * 5)];
  assert.deepEqual(Array.from(f.subarray(240, 245)), want);
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
