/**
 * The native kernels under a growing wasm heap: growth between training steps, and growth
 * inside every kernel's own output allocation, must not change a single number.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  disableNativeMatmul,
  enableNativeMatmul,
  nativeMatmulEnabled,
} from "../pipeline/kernels/native_matmul.ts";
import { wasmCopyKernelsEnabled } from "../pipeline/kernels/wasm_kernels.ts";
import { growthGroups, kernelCases, maxAbsDiff, trainTrace } from "./heap_growth.ts";
import { pathOf } from "../pipeline/lib/paths.ts";
import { wasmWithNativeKernels } from "./native_setup.ts";

const CHILD = pathOf(new URL("./native_stress_child.ts", import.meta.url));

const blas = await wasmWithNativeKernels("heap growth tests run the copy kernels only");

Deno.test("heap growth between training steps: losses and weights equal plain wasm's (1e-4)", async () => {
  const plain = await trainTrace({ native: false, grow: false });
  const native = await trainTrace({ native: true, grow: true });
  assert.ok(nativeMatmulEnabled() === blas && wasmCopyKernelsEnabled());
  // The heap really grew before every step of the native run.
  native.heap.slice(1).forEach((bytes, i) => assert.ok(bytes > native.heap[i], `step ${i + 1}`));
  assert.equal(native.losses.length, plain.losses.length);
  assert.ok(native.losses.every(Number.isFinite));
  assert.ok(maxAbsDiff(native.losses, plain.losses) < 1e-4, `${native.losses} vs ${plain.losses}`);
  assert.equal(native.weights.length, plain.weights.length);
  native.weights.forEach((w, i) =>
    assert.ok(maxAbsDiff(w, plain.weights[i]) < 1e-4, `weight ${i} after the last step`)
  );
});

Deno.test("heap growth inside each kernel's output allocation: the same values as without", async () => {
  enableNativeMatmul();
  const { cases: all, inputs } = kernelCases();
  const cases = all.filter((k) => blas || !k.blas);
  const groups = growthGroups(cases).length;
  tf.dispose(inputs);
  // One process per group of cases: growing at every allocation of every case would take a
  // single process's heap past 4 GiB.
  const seen: string[] = [];
  for (let group = 0; group < groups; group++) {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", CHILD, "--group", String(group), "--kernels-only"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(stdout);
    assert.equal(code, 0, `group ${group}: ${out}${new TextDecoder().decode(stderr)}`);
    const names = out.match(/group \d+ of \d+: ([^;]*);/)?.[1].split(", ") ?? [];
    seen.push(...names);
  }
  assert.deepEqual(seen, cases.map((k) => k.name), "every case grew the heap in some group");
});

Deno.test("native and fused kernels agree with the stock kernels on the same calls (1e-4)", () => {
  enableNativeMatmul();
  const { cases: all, inputs } = kernelCases();
  const cases = all.filter((k) => blas || !k.blas);
  const native = cases.map((k) => k.run());
  disableNativeMatmul();
  const stock = cases.map((k) => k.stock ? k.run() : []);
  enableNativeMatmul();
  stock.forEach((outs, i) =>
    outs.forEach((t, j) =>
      assert.ok(maxAbsDiff(t.dataSync(), native[i][j].dataSync()) < 1e-4, cases[i].name)
    )
  );
  tf.dispose([...native.flat(), ...stock.flat(), ...inputs]);
});
