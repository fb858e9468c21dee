/**
 * The WebGPU backend computes what wasm computes, and the whole training loop runs on it
 * (it reads tensors asynchronously). On these CPU machines the adapter is llvmpipe, a
 * software GPU: correct but slow, which is why `auto` skips it.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { gpuAdapter, initBackend } from "../pipeline/kernels/backend.ts";
import { evaluate } from "../pipeline/eval/evaluate.ts";
import { TinyVlm, type WeightMap } from "../pipeline/model/tiny_vlm.ts";
import { train } from "../pipeline/train/loop.ts";
import { gridPatch } from "../tasks/grid_patch.ts";
import {
  lossAndGrads as fixtureLossAndGrads,
  releaseWebgpu,
  tinyGridData,
  tinyModelConfig,
  tinyTrainOptions,
} from "./fixtures.ts";
import { ROOT } from "./cli.ts";

const gpu = await gpuAdapter();
const fixture = tinyGridData(2, 16);
const { samples, tokenizer, data } = fixture;
const modelConfig = tinyModelConfig(fixture, { positionStd: 0.3 });

const lossAndGrads = (weights?: WeightMap) => fixtureLossAndGrads(data, modelConfig, 4, weights);

const adapterName = gpu.available ? gpu.description : gpu.reason;

Deno.test({
  name: `webgpu: loss, gradients and a training run match wasm (${adapterName})`,
  ignore: !gpu.available,
  async fn() {
    assert.match(await initBackend("wasm"), /^wasm/);
    const reference = await lossAndGrads();
    assert.equal(await initBackend("webgpu"), "webgpu");
    const webgpu = await lossAndGrads(reference.weights);
    assert.ok(Math.abs(webgpu.loss - reference.loss) < 1e-4, `${webgpu.loss} vs ${reference.loss}`);
    reference.grads.forEach((g, i) =>
      g.forEach((x, j) => {
        const y = webgpu.grads[i][j];
        assert.ok(Math.abs(x - y) < 1e-4 + 1e-3 * Math.abs(x), `grad ${i}[${j}]: ${y} vs ${x}`);
      })
    );
    // The training loop and evaluation end to end on WebGPU, with a flat tensor count.
    const model = new TinyVlm(modelConfig, 4);
    const options = tinyTrainOptions({
      steps: 3,
      batchSize: 8,
      lr: 1e-3,
      seed: 0,
      label: "webgpu",
    });
    await train(model, data, { ...options, steps: 1 });
    const before = tf.memory().numTensors;
    const result = await train(model, data, options);
    assert.equal(tf.memory().numTensors, before);
    assert.equal(result.log.length, 3);
    const evaluated = await evaluate(model, data, samples, gridPatch, tokenizer, 8, 2);
    assert.equal(evaluated.predictions.length, 16);
    model.dispose();
    await releaseWebgpu();
  },
});

Deno.test("auto skips a software GPU adapter; an unavailable webgpu says why", async () => {
  if (gpu.available && gpu.fallback) assert.match(await initBackend("auto"), /^wasm/);
  if (!gpu.available) {
    await assert.rejects(initBackend("webgpu"), /backend "webgpu" is not available: /);
  }
});

Deno.test({
  name: "on Linux, adapters come through Vulkan only: Mesa's EGL driver is never loaded",
  ignore: Deno.build.os !== "linux",
}, async () => {
  // A fresh process with DENO_WEBGPU_BACKEND unset, as a user's would be.
  const probe = `
    Deno.env.delete("DENO_WEBGPU_BACKEND");
    const { gpuAdapter } = await import(${JSON.stringify(`${ROOT}pipeline/kernels/backend.ts`)});
    const gpu = await gpuAdapter();
    const maps = Deno.readTextFileSync("/proc/self/maps");
    console.log(JSON.stringify({
      backend: Deno.env.get("DENO_WEBGPU_BACKEND"),
      gl: ["libEGL_mesa", "swrast_dri"].filter((lib) => maps.includes(lib)),
      available: gpu.available,
    }));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", probe],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const seen = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  assert.deepEqual(seen, { backend: "vulkan", gl: [], available: gpu.available });
  assert.doesNotMatch(stderr, /XDG_RUNTIME_DIR/);
});
