/**
 * The bench's WebGPU part (pipeline/commands/bench_gpu.ts): on a software adapter (llvmpipe
 * here) it runs the whole-step trainer's path on the quickstart model, one arm with each kernel
 * geometry and stacks of 1 and 4 arms, and says that its figures are the CPU's.
 */
import assert from "node:assert/strict";
import { gpuAdapter } from "../pipeline/kernels/backend.ts";
import { gpuBench, softwareAdapter } from "../pipeline/commands/bench_gpu.ts";

const gpu = await gpuAdapter();

Deno.test("bench gpu: which adapters count as software", () => {
  assert.equal(softwareAdapter({ fallback: false, description: "llvmpipe (LLVM 15.0.6)" }), true);
  assert.equal(softwareAdapter({ fallback: true, description: "unknown" }), true);
  assert.equal(softwareAdapter({ fallback: false, description: "NVIDIA H100 80GB HBM3" }), false);
});

Deno.test({
  name: "bench gpu: the trainer rows on this adapter",
  ignore: !gpu.available || !softwareAdapter(gpu),
  async fn() {
    const lines: string[] = [];
    const result = await gpuBench(true, (l) => lines.push(l));
    assert.ok(!("skipped" in result), "measured");
    assert.equal(result.software, true);
    assert.deepEqual(result.pytorch, { skipped: "software adapter" });
    const rows = result.rows.map((r) => [r.part, r.batch, r.arms, r.matmulTile, r.attentionRows]);
    assert.deepEqual(rows.slice(0, 2), [["kernels", 8, 1, "auto", 4], ["kernels", 8, 1, 64, 1]]);
    assert.deepEqual(rows.slice(2).map((r) => r[2]), [1, 4]);
    for (const r of result.rows) {
      assert.equal(r.model, "quickstart");
      assert.ok(r.samplesPerSecond > 0 && Number.isFinite(r.samplesPerSecond));
      // Samples count every arm: one step takes arms x batch samples.
      const perStep = r.samplesPerSecond * r.msPerStep / 1000;
      assert.ok(Math.abs(perStep - r.arms * r.batch) < 1e-6 * perStep, `${perStep} samples a step`);
      assert.equal(r.ratioToPytorch, null);
    }
    assert.match(lines[0], /software: the CPU's figures/);
    assert.match(lines.at(-1)!, /b8 x 4 arms \(tiles by shape, 4 attention rows\)/);
  },
});
