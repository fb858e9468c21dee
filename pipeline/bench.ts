/**
 * `deno task bench [--quick] [--json]`: how fast this machine trains, measured in one run.
 *
 * - matmul GFLOP/s per backend at the models' real shapes, forward and backward ("wasm" is
 *   tfjs's own kernel, "wasm+openblas" the native matmul of pipeline/model/native_matmul.ts,
 *   measured when libopenblas is installed);
 * - training throughput (samples/s and model GFLOP/s) of the quickstart and paper models;
 * - the top kernels of one training step (tf.profile), with and without the native matmul;
 * - tensor count before and after N training steps (must be equal);
 * - two independent training runs serially vs in two worker processes: the speed-up.
 *
 * Model FLOPs are counted analytically (matmuls only, see `trainingFlopsPerSample`).
 */
import * as tf from "@tensorflow/tfjs";
import { PRETRAIN_TASK, TASKS, vocabularyOf } from "../tasks/registry.ts";
import { backendLabel, initBackend } from "./backend.ts";
import { type Encoded, encodeSamples, layoutFor, sequenceLength } from "./batch.ts";
import { disableNativeMatmul, enableNativeMatmul } from "./model/native_matmul.ts";
import { matmul } from "./model/ops.ts";
import { TinyVlm } from "./model/tiny_vlm.ts";
import { Tokenizer } from "./tokenizer.ts";
import { AdamW, batchTensors, disposeBatch, lossParts } from "./train.ts";
import { pathOf } from "./paths.ts";

/** The two model sizes the bench measures. */
export const BENCH_MODELS = {
  quickstart: { imageSize: 32, grid: 4, blobs: 2, dModel: 64, layers: 2, heads: 4, batch: 32 },
  paper: { imageSize: 64, grid: 8, blobs: 4, dModel: 128, layers: 4, heads: 4, batch: 64 },
} as const;

type BenchModel = typeof BENCH_MODELS[keyof typeof BENCH_MODELS];

/** Sizes that determine a step's FLOPs. */
export interface FlopShape {
  /** Visual tokens, text tokens. */
  tv: number;
  tt: number;
  patchDim: number;
  vocab: number;
  d: number;
  layers: number;
  mlpRatio: number;
}

/**
 * Matmul FLOPs of one training sample: 3x the forward pass (the backward pass computes two
 * matmuls per forward matmul). Forward, with T = Tv + Tt:
 *
 *   patch embedding 2 Tv P d  +  token embedding (one-hot matmul) 2 Tt V d
 *   + layers x [ qkv 2 T d 3d + scores 2 T T d + attention x values 2 T T d
 *                + projection 2 T d d + MLP 2 * 2 T d (r d) ]
 *   + output head 2 T d V
 */
export function trainingFlopsPerSample(s: FlopShape): number {
  const t = s.tv + s.tt;
  const perLayer = 2 * t * s.d * 3 * s.d + 4 * t * t * s.d + 2 * t * s.d * s.d +
    4 * t * s.d * s.mlpRatio * s.d;
  const forward = 2 * s.tv * s.patchDim * s.d + 2 * s.tt * s.vocab * s.d +
    s.layers * perLayer + 2 * t * s.d * s.vocab;
  return 3 * forward;
}

interface Setup {
  model: TinyVlm;
  data: Encoded;
  shape: FlopShape;
  batch: number;
}

function setup(m: BenchModel): Setup {
  const task = TASKS["grid-patch"];
  const tokenizer = new Tokenizer(vocabularyOf([...Object.values(TASKS), PRETRAIN_TASK]));
  const samples = task.generate!(1, Math.max(256, m.batch), {
    imageSize: m.imageSize,
    patchSize: 8,
    params: { ...task.defaultParams, grid: m.grid, blobs: m.blobs },
  });
  const layout = layoutFor(samples, tokenizer, 8);
  const data = encodeSamples(samples, tokenizer, layout, 8);
  const model = new TinyVlm({
    patchDim: layout.patchDim,
    vocab: tokenizer.size,
    dModel: m.dModel,
    layers: m.layers,
    heads: m.heads,
    mlpRatio: 4,
    gridSide: m.imageSize / 8,
    maxText: 32,
    positionStd: 0.3,
  }, 0);
  const shape: FlopShape = {
    tv: layout.visual,
    tt: sequenceLength(layout) - layout.visual,
    patchDim: layout.patchDim,
    vocab: tokenizer.size,
    d: m.dModel,
    layers: m.layers,
    mlpRatio: 4,
  };
  return { model, data, shape, batch: m.batch };
}

/** One full training step (NTP + KLAL, AdamW). */
async function trainStep(s: Setup, optimizer: AdamW, indices: number[]): Promise<void> {
  const variables = s.model.variables();
  const batch = batchTensors(s.data, indices);
  const layers = Array.from({ length: s.model.config.layers }, (_, i) => i);
  const { value, grads } = tf.variableGrads(
    () => lossParts(s.model, batch, s.data, 1, layers).total,
    variables,
  );
  await optimizer.apply(variables.map((v) => grads[v.name]), 1e-4, 1);
  await value.data();
  value.dispose();
  tf.dispose(Object.values(grads));
  disposeBatch(batch);
}

/** Training throughput of one model. */
export interface ThroughputResult {
  model: string;
  backend: string;
  batch: number;
  tokens: number;
  samplesPerSecond: number;
  gflopsPerSecond: number;
  msPerStep: number;
  flopsPerSample: number;
}

export async function measureTraining(
  name: string,
  m: BenchModel,
  steps: number,
): Promise<ThroughputResult> {
  const s = setup(m);
  const optimizer = new AdamW(s.model.variables(), 0.01);
  const indices = Array.from({ length: s.batch }, (_, i) => i % s.data.n);
  await trainStep(s, optimizer, indices); // warm-up: kernels compile, state allocates
  await trainStep(s, optimizer, indices);
  const started = performance.now();
  for (let i = 0; i < steps; i++) await trainStep(s, optimizer, indices);
  const ms = (performance.now() - started) / steps;
  optimizer.dispose();
  s.model.dispose();
  const flops = trainingFlopsPerSample(s.shape);
  const samplesPerSecond = s.batch / (ms / 1000);
  return {
    model: name,
    backend: backendLabel(),
    batch: s.batch,
    tokens: s.shape.tv + s.shape.tt,
    samplesPerSecond,
    gflopsPerSecond: samplesPerSecond * flops / 1e9,
    msPerStep: ms,
    flopsPerSample: flops,
  };
}

/** Matmul speed at one shape. */
export interface MatmulResult {
  backend: string;
  shape: string;
  forwardGflops: number;
  backwardGflops: number;
}

function measureMatmul(m: number, k: number, n: number, repeats: number): MatmulResult {
  const a = tf.randomNormal([m, k]) as tf.Tensor2D;
  const b = tf.randomNormal([k, n]) as tf.Tensor2D;
  const time = (fn: () => tf.Tensor | tf.Tensor[]) => {
    tf.dispose(fn()); // warm-up
    const started = performance.now();
    for (let i = 0; i < repeats; i++) {
      const out = fn();
      (Array.isArray(out) ? out : [out]).forEach((t) => t.dataSync());
      tf.dispose(out);
    }
    return (performance.now() - started) / repeats / 1000;
  };
  const flops = 2 * m * k * n;
  const fwd = time(() => matmul(a, b));
  const grad = tf.grads((x, y) => tf.sum(matmul(x as tf.Tensor2D, y as tf.Tensor2D)));
  const bwd = time(() => grad([a, b]));
  tf.dispose([a, b]);
  // The backward pass is two matmuls of the same size (plus a cheap sum and its gradient).
  return {
    backend: backendLabel(),
    shape: `[${m},${k}]x[${k},${n}]`,
    forwardGflops: flops / fwd / 1e9,
    backwardGflops: 2 * flops / bwd / 1e9,
  };
}

/** The kernels of one training step, by total time (tf.profile). */
export async function profileStep(m: BenchModel) {
  const s = setup(m);
  const optimizer = new AdamW(s.model.variables(), 0.01);
  const indices = Array.from({ length: s.batch }, (_, i) => i % s.data.n);
  await trainStep(s, optimizer, indices);
  const info = await tf.profile(() => trainStep(s, optimizer, indices));
  optimizer.dispose();
  s.model.dispose();
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    entry.ms += Number(k.kernelTimeMs) || 0;
    entry.calls++;
    byKernel.set(k.name, entry);
  }
  const total = [...byKernel.values()].reduce((a, b) => a + b.ms, 0);
  const top = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 10)
    .map(([kernel, v]) => ({ kernel, calls: v.calls, ms: v.ms, share: v.ms / total }));
  return { kernels: info.kernels.length, kernelMs: total, top };
}

async function tensorCountAcross(m: BenchModel, steps: number) {
  const s = setup(m);
  const optimizer = new AdamW(s.model.variables(), 0.01);
  const indices = Array.from({ length: s.batch }, (_, i) => i % s.data.n);
  await trainStep(s, optimizer, indices);
  const before = tf.memory().numTensors;
  for (let i = 0; i < steps; i++) await trainStep(s, optimizer, indices);
  const after = tf.memory().numTensors;
  optimizer.dispose();
  s.model.dispose();
  return { steps, before, after, flat: before === after };
}

/** Two independent training runs, one after the other vs at once in two processes. */
async function parallelSpeedup(steps: number, backend: string) {
  const worker = pathOf(import.meta.url);
  const run = () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", worker, "--child", String(steps), backend],
      stdout: "null",
      stderr: "inherit",
    }).output();
  let started = performance.now();
  await run();
  await run();
  const serial = (performance.now() - started) / 1000;
  started = performance.now();
  await Promise.all([run(), run()]);
  const parallel = (performance.now() - started) / 1000;
  return {
    runs: 2,
    steps,
    serialSeconds: serial,
    parallelSeconds: parallel,
    speedup: serial / parallel,
  };
}

type Profile = Awaited<ReturnType<typeof profileStep>> & { model: string; backend: string };

/**
 * Switch to a bench row's backend: "wasm" is tfjs's own kernels, "wasm+openblas" wasm with
 * the native matmul. False when that variant is not available here.
 */
async function useBackend(label: string): Promise<boolean> {
  await initBackend(label === "cpu" ? "cpu" : "wasm");
  if (label === "wasm") disableNativeMatmul();
  if (label === "wasm+openblas") return enableNativeMatmul().enabled;
  return true;
}

/** Everything the bench measures. */
export interface BenchResult {
  machine: { cores: number; os: string; deno: string };
  quick: boolean;
  matmul: MatmulResult[];
  training: ThroughputResult[];
  /** The profile of the backend training uses by default (the last of `profiles`). */
  profile: Profile;
  /** One profile per wasm variant measured ("wasm", then "wasm+openblas" when present). */
  profiles: Profile[];
  tensors: Awaited<ReturnType<typeof tensorCountAcross>>;
  workers: Awaited<ReturnType<typeof parallelSpeedup>>;
}

/** Run the whole bench. */
export async function bench(quick: boolean, log: (line: string) => void): Promise<BenchResult> {
  const backends = ["wasm", "wasm+openblas", "cpu"];
  const matmulResults: MatmulResult[] = [];
  const training: ThroughputResult[] = [];
  const measured: string[] = [];
  for (const backend of backends) {
    if (!(await useBackend(backend))) {
      log(`${backend}: skipped (${enableNativeMatmul().reason})`);
      continue;
    }
    measured.push(backend);
    for (const m of Object.values(BENCH_MODELS)) {
      const rows = m.batch * (m.imageSize ** 2 / 64 + 10);
      if (backend === "cpu" && m === BENCH_MODELS.paper && quick) continue;
      // The models' real shapes: the QKV projection and the first MLP layer.
      for (const [k, n] of [[m.dModel, 3 * m.dModel], [m.dModel, 4 * m.dModel]]) {
        matmulResults.push(measureMatmul(rows, k, n, quick ? 3 : 10));
        log(
          `matmul ${backend} ${matmulResults.at(-1)!.shape}: ` +
            `fwd ${matmulResults.at(-1)!.forwardGflops.toFixed(1)} GFLOP/s, ` +
            `bwd ${matmulResults.at(-1)!.backwardGflops.toFixed(1)} GFLOP/s`,
        );
      }
    }
    for (const [name, m] of Object.entries(BENCH_MODELS)) {
      if (backend === "cpu" && name === "paper") continue; // minutes per step: not informative
      const steps = quick ? 3 : name === "paper" ? 10 : 30;
      training.push(await measureTraining(name, m, steps));
      const r = training.at(-1)!;
      log(
        `train ${backend} ${name} (batch ${r.batch}, ${r.tokens} tokens): ` +
          `${r.samplesPerSecond.toFixed(0)} samples/s, ${r.gflopsPerSecond.toFixed(1)} GFLOP/s, ` +
          `${r.msPerStep.toFixed(0)} ms/step`,
      );
    }
  }
  const profiled = quick ? BENCH_MODELS.quickstart : BENCH_MODELS.paper;
  const profiles: Profile[] = [];
  for (const backend of measured.filter((b) => b !== "cpu")) {
    await useBackend(backend);
    const profile = {
      model: profiled === BENCH_MODELS.paper ? "paper" : "quickstart",
      backend: backendLabel(),
      ...await profileStep(profiled),
    };
    profiles.push(profile);
    log(
      `profile (${profile.model}, ${profile.backend}): ${profile.kernels} kernels, ${
        profile.kernelMs.toFixed(0)
      } ms`,
    );
    for (const k of profile.top) {
      log(
        `  ${k.kernel.padEnd(22)} ${String(k.calls).padStart(5)} calls ${
          k.ms.toFixed(1).padStart(8)
        } ms ${(100 * k.share).toFixed(1).padStart(5)}%`,
      );
    }
  }
  // The rest runs on what training uses by default (native matmul when installed).
  await initBackend("wasm");
  const tensors = await tensorCountAcross(BENCH_MODELS.quickstart, quick ? 20 : 100);
  log(`tensors: ${tensors.before} before, ${tensors.after} after ${tensors.steps} steps`);
  const workers = await parallelSpeedup(quick ? 10 : 300, "wasm");
  log(
    `2 training runs: serial ${workers.serialSeconds.toFixed(1)} s, 2 workers ${
      workers.parallelSeconds.toFixed(1)
    } s, speed-up ${workers.speedup.toFixed(2)}x`,
  );
  return {
    machine: {
      cores: navigator.hardwareConcurrency,
      os: `${Deno.build.os} ${Deno.build.arch}`,
      deno: Deno.version.deno,
    },
    quick,
    matmul: matmulResults,
    training,
    profile: profiles.at(-1)!,
    profiles,
    tensors,
    workers,
  };
}

if (import.meta.main) {
  const args = Deno.args;
  if (args[0] === "--child") {
    // One of the parallel-speedup runs: train the quickstart model for N steps.
    await initBackend(args[2] as "wasm");
    await measureTraining("quickstart", BENCH_MODELS.quickstart, Number(args[1]));
    Deno.exit(0);
  }
  const unknown = args.filter((a) => a !== "--quick" && a !== "--json");
  if (unknown.length > 0) {
    console.error(`error: unknown option ${unknown[0]}\nusage: deno task bench [--quick] [--json]`);
    Deno.exit(2);
  }
  const json = args.includes("--json");
  const result = await bench(args.includes("--quick"), json ? () => {} : (l) => console.log(l));
  if (json) console.log(JSON.stringify(result, null, 2));
}
