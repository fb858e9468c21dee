/**
 * What tests/reference/gpu.sh needs from the pipeline on the GPU machine, in one bundle:
 *
 *   gpu_tools.ts env STATE_DIR      the Vulkan set-up of pipeline/kernels/gpu_env.ts as shell `export`
 *                                   lines (exit 3, with the reason on stderr, when not ready)
 *   gpu_tools.ts webgpu BATCH STEPS paper-model training throughput on WebGPU, one JSON object
 *                                   (bench.ts's measureTraining: 2 warm-up steps excluded;
 *                                   KLAL_ALLOW_SOFTWARE_GPU=1 accepts llvmpipe)
 *   gpu_tools.ts trainer BATCH STEPS [ARMS [TILE ROWS]]
 *                                   the same with the whole-step WebGPU trainer
 *                                   (pipeline/train/webgpu/trainer.ts), one JSON object:
 *                                   ARMS stacked arms of BATCH each (default 1; samples/s
 *                                   over all arms), the matmul tile (64, 128 or auto) and
 *                                   attention rows a workgroup (1, 2, 4, 8 or auto) forced
 *   gpu_tools.ts arm SPEC [STEPS]   a paper-size arm: the KLAL arm of SPEC (a generated task,
 *                                   e.g. experiments/paper/grid-patch.yaml) as its fine-tune
 *                                   stage runs it, without the cache: data generated, the
 *                                   model trained on WebGPU from a fresh initialisation with
 *                                   the validation curve every eval_every steps, then the test
 *                                   set scored; one JSON object with each part's seconds
 *   gpu_tools.ts profile BATCH      where a WebGPU training step's time goes, one JSON object:
 *                                   the tfjs flags, whether kernels can be timed on the GPU
 *                                   (timestamp queries), the step's parts by wall time, its
 *                                   longest kernels (tf.profile) and the matmuls at its shapes
 *   gpu_tools.ts overhead BATCH     the fixed costs around the kernels: a read-back's latency,
 *                                   one small dispatch's cost, matmuls queued back to back
 *                                   (one read at the end), and the step under larger
 *                                   submit batches
 *
 * The Vulkan variables must be in a process's environment before it starts, hence two calls.
 */
import { gpuAdapter, initBackend } from "../../pipeline/kernels/backend.ts";
import * as tf from "@tensorflow/tfjs";
import {
  BENCH_MODELS,
  measureMatmul,
  measureTraining,
  measureWebgpuTrainer,
  phaseTimes,
  profileStep,
} from "../../pipeline/train/throughput.ts";
import { gpuEnvironment } from "../../pipeline/kernels/gpu_env.ts";
import { encodeSamples, layoutFor, mergeLayouts } from "../../pipeline/model/batch.ts";
import { evaluate } from "../../pipeline/eval/evaluate.ts";
import { TinyVlm } from "../../pipeline/model/tiny_vlm.ts";
import { loadSpec } from "../../pipeline/spec/mod.ts";
import { Tokenizer } from "../../pipeline/model/tokenizer.ts";
import { train } from "../../pipeline/train/loop.ts";
import { TASKS } from "../../tasks/registry.ts";

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

const [mode, ...rest] = Deno.args;
if (mode === "env" && rest.length === 1) {
  const found = gpuEnvironment(rest[0]);
  if (!found.ready) {
    console.error(found.reason);
    Deno.exit(3);
  }
  for (const [key, value] of Object.entries(found.env)) {
    console.log(`export ${key}=${shellQuote(value)}`);
  }
} else if (mode === "arm" && (rest.length === 1 || rest.length === 2)) {
  const gpu = await gpuAdapter();
  const software = Deno.env.get("KLAL_ALLOW_SOFTWARE_GPU") === "1";
  if (!gpu.available || (gpu.fallback && !software)) {
    console.error(`arm: no real GPU adapter: ${gpu.available ? gpu.description : gpu.reason}`);
    Deno.exit(3);
  }
  await initBackend("webgpu");
  const result = await paperArm(rest[0], rest[1] ? Number(rest[1]) : undefined);
  console.log(JSON.stringify({ adapter: gpu.description, ...result }));
} else if (
  (mode === "webgpu" && rest.length === 2) ||
  (mode === "trainer" && [2, 3, 5].includes(rest.length)) ||
  ((mode === "profile" || mode === "overhead") && rest.length === 1)
) {
  const gpu = await gpuAdapter();
  // KLAL_ALLOW_SOFTWARE_GPU=1 runs on a software adapter too (to try the path on a CPU machine).
  const software = Deno.env.get("KLAL_ALLOW_SOFTWARE_GPU") === "1";
  if (!gpu.available || (gpu.fallback && !software)) {
    const why = gpu.available ? `only a software adapter (${gpu.description})` : gpu.reason;
    console.error(`webgpu: no real GPU adapter: ${why}`);
    Deno.exit(3);
  }
  // The trainer takes its initial weights from a model made on the CPU.
  await initBackend(mode === "trainer" ? "wasm" : "webgpu");
  // bench.ts types its models' batch sizes as literals; any batch size works.
  const paper = { ...BENCH_MODELS.paper, batch: Number(rest[0]) as 64 };
  if (mode === "overhead") {
    console.log(JSON.stringify({ adapter: gpu.description, ...await overhead(paper) }));
  } else if (mode === "trainer") {
    const forced = (value: string | undefined) =>
      value === undefined || value === "auto" ? undefined : Number(value);
    const result = await measureWebgpuTrainer("paper", paper, Number(rest[1]), undefined, {
      arms: rest[2] ? Number(rest[2]) : 1,
      matmulTile: forced(rest[3]) as 64 | 128 | undefined,
      attentionRows: forced(rest[4]) as 1 | 2 | 4 | 8 | undefined,
    });
    console.log(JSON.stringify({ ...result, adapter: gpu.description }));
  } else if (mode === "webgpu") {
    const result = await measureTraining("paper", paper, Number(rest[1]));
    console.log(JSON.stringify({ ...result, adapter: gpu.description }));
  } else {
    // tfjs-webgpu's backend object: its device says whether kernels can be timed on the GPU.
    const backend = tf.backend() as unknown as {
      device?: { features?: { has(f: string): boolean } };
    };
    const rows = paper.batch * 74;
    const d = paper.dModel;
    console.log(JSON.stringify({
      adapter: gpu.description,
      flags: tf.env().getFlags(),
      timestampQuery: backend.device?.features?.has("timestamp-query") ?? null,
      phases: await phaseTimes(paper, 3),
      profile: await profileStep(paper, 30),
      matmuls: [
        await measureMatmul(rows, d, d, 5),
        await measureMatmul(rows, d, 4 * d, 5),
        await measureMatmul(rows, 4 * d, d, 5),
        await measureMatmul(d, rows, d, 5),
        await measureMatmul(d, rows, 4 * d, 5),
      ],
    }));
  }
} else {
  console.error(
    "usage: gpu_tools.ts overhead BATCH | " +
      "gpu_tools.ts env STATE_DIR | gpu_tools.ts webgpu BATCH STEPS | " +
      "gpu_tools.ts trainer BATCH STEPS [ARMS [TILE ROWS]] | gpu_tools.ts arm SPEC [STEPS] | " +
      "gpu_tools.ts profile BATCH",
  );
  Deno.exit(2);
}

/** Mean ms of `fn` over `repeats` runs after one warm-up. */
async function meanMs(repeats: number, fn: () => Promise<void>): Promise<number> {
  await fn();
  const started = performance.now();
  for (let i = 0; i < repeats; i++) await fn();
  return (performance.now() - started) / repeats;
}

async function overhead(paper: typeof BENCH_MODELS.paper) {
  const x = tf.randomNormal([64]);
  // A scalar computed and read back: the round trip's latency.
  const readMs = await meanMs(20, async () => {
    const y = tf.sum(x);
    await y.data();
    y.dispose();
  });
  // 500 dependent small kernels, one read: the cost of a dispatch.
  const chain = 500;
  const chainMs = await meanMs(3, async () => {
    const y = tf.tidy(() => {
      let t = x;
      for (let i = 0; i < chain; i++) t = tf.add(t, 1);
      return t;
    });
    await y.data();
    y.dispose();
  });
  x.dispose();
  // Matmuls queued back to back, one read at the end: the kernels' own speed.
  const rows = paper.batch * 74;
  const d = paper.dModel;
  const shapes: [number, number, number, boolean, boolean][] = [
    [rows, d, 4 * d, false, false],
    [rows, 4 * d, d, false, false],
    [rows, 4 * d, d, false, true], // dX = dY · W^T
    [d, rows, 4 * d, true, false], // dW = X^T · dY
    [4 * d, rows, d, true, false],
  ];
  const queued = [];
  for (const [m, k, n, ta, tb] of shapes) {
    const a = tf.randomNormal(ta ? [k, m] : [m, k]) as tf.Tensor2D;
    const b = tf.randomNormal(tb ? [n, k] : [k, n]) as tf.Tensor2D;
    const reps = 10;
    const ms = await meanMs(2, async () => {
      const outs = tf.tidy(() => Array.from({ length: reps }, () => tf.matMul(a, b, ta, tb)));
      await outs[reps - 1].data();
      tf.dispose(outs);
    }) / reps;
    queued.push({
      shape: `${m}x${k}x${n}`,
      transposeA: ta,
      transposeB: tb,
      ms,
      gflops: 2 * m * k * n / ms / 1e6,
    });
    tf.dispose([a, b]);
  }
  // The whole step with fewer, larger submits.
  const submits = [];
  for (const size of [15, 100, 1000]) {
    tf.env().set("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE", size);
    submits.push({ submitBatch: size, ...await phaseTimes(paper, 3) });
  }
  tf.env().set("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE", 15);
  return { readMs, dispatchMs: chainMs / chain, queued, submits };
}

/**
 * The KLAL arm of `specPath` as pipeline/stages/finetune.ts runs it (the spec's sizes, model,
 * schedule and validation curve), from a fresh initialisation instead of a Base and without
 * the cache, timed by part.
 */
async function paperArm(specPath: string, stepsOverride?: number) {
  const spec = await loadSpec(specPath, [], { tasks: TASKS });
  const task = TASKS[spec.task.name];
  if (!task.generate) throw new Error(`arm: ${spec.task.name} is not a generated task`);
  const { train: trainN, test: testN } = spec.task;
  if (trainN === "all" || testN === "all") throw new Error(`arm: ${specPath} has real data sizes`);
  const arm = Object.values(spec.arms).find((a) => (a.lambda ?? 0) > 0);
  if (!arm) throw new Error(`arm: ${specPath} has no arm with lambda > 0`);
  const patchSize = spec.model.patch_size;
  const config = { imageSize: spec.task.image_size, patchSize, params: spec.task.params };
  let started = performance.now();
  const trainSamples = task.generate(spec.seeds[0], trainN, config);
  const valSamples = task.generate(spec.task.test_seed + 1, spec.train.eval_samples, config);
  const testSamples = task.generate(spec.task.test_seed, testN, config);
  const tokenizer = new Tokenizer(task.vocabulary);
  const layout = layoutFor(trainSamples, tokenizer, patchSize);
  const data = encodeSamples(trainSamples, tokenizer, layout, patchSize);
  const encode = (samples: typeof valSamples) =>
    encodeSamples(
      samples,
      tokenizer,
      mergeLayouts(layoutFor(samples, tokenizer, patchSize), layout),
      patchSize,
    );
  const val = encode(valSamples);
  const test = encode(testSamples);
  const dataSeconds = (performance.now() - started) / 1000;
  const model = new TinyVlm({
    patchDim: layout.patchDim,
    vocab: tokenizer.size,
    dModel: spec.model.d_model,
    layers: spec.model.layers,
    heads: spec.model.heads,
    mlpRatio: spec.model.mlp_ratio,
    gridSide: Math.round(Math.sqrt(layout.visual)),
    maxText: 32,
    positionStd: spec.model.position_std,
  }, spec.seeds[0]);
  const t = spec.train;
  const curve: { step: number; accuracy: number }[] = [];
  let evalSeconds = 0;
  started = performance.now();
  const result = await train(model, data, {
    steps: stepsOverride ?? t.steps,
    batchSize: t.batch_size,
    lr: t.lr ?? 3e-4,
    optimizer: t.optimizer,
    weightDecay: t.weight_decay,
    warmup: t.warmup,
    logEvery: t.log_every,
    lambda: arm.lambda ?? 0,
    layers: Array.from({ length: spec.model.layers }, (_, i) => i),
    seed: spec.seeds[0],
    label: "arm",
    evalEvery: t.eval_every,
    onEval: async (step) => {
      const at = performance.now();
      const r = await evaluate(model, val, valSamples, task, tokenizer, 128, 0);
      curve.push({ step, accuracy: r.accuracy });
      evalSeconds += (performance.now() - at) / 1000;
    },
  });
  const trainAndCurveSeconds = (performance.now() - started) / 1000;
  started = performance.now();
  const scored = await evaluate(model, test, testSamples, task, tokenizer, spec.eval.batch_size, 0);
  const testSeconds = (performance.now() - started) / 1000;
  model.dispose();
  return {
    spec: specPath,
    steps: stepsOverride ?? t.steps,
    batch: t.batch_size,
    model: { d: spec.model.d_model, layers: spec.model.layers, heads: spec.model.heads },
    train: spec.task.train,
    dataSeconds,
    trainSeconds: trainAndCurveSeconds - evalSeconds,
    curveSeconds: evalSeconds,
    curvePoints: curve.length,
    testSeconds,
    armSeconds: dataSeconds + trainAndCurveSeconds + testSeconds,
    samplesPerSecond: result.samplesPerSecond,
    finalLoss: result.log.at(-1),
    curve,
    testAccuracy: scored.accuracy,
    targetAttentionRatio: scored.targetAttentionRatio,
  };
}
