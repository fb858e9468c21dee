/**
 * `deno task bench [--quick] [--json]`: how fast this machine trains, measured in one run.
 *
 * - single-thread OpenBLAS sgemm GFLOP/s at the paper model's largest product, measured at
 *   the start, middle and end of the run (the yardstick: each wasm+openblas training row
 *   reports its model GFLOP/s as a fraction of the best of these);
 * - the GEMM itself at the models' products (each linear layer's forward x·W, backward dy·Wᵀ
 *   and xᵀ·dy, and attention's blocks): GFLOP/s of the SIMD BLAS (pipeline/kernels/simd_blas.ts),
 *   OpenBLAS (when installed) and stock tfjs-wasm's BatchMatMul, side by side;
 * - matmul GFLOP/s per backend at the models' real shapes, forward and backward ("wasm" is
 *   tfjs's own kernel, "wasm+openblas" the native matmul of pipeline/kernels/native_matmul.ts,
 *   measured when libopenblas is installed, "wasm+simd" the same on the SIMD BLAS);
 * - training throughput (samples/s and model GFLOP/s) of the quickstart, 64 px record and
 *   paper models, on wasm+openblas with and without the fused kernels of
 *   pipeline/kernels/native_fused.ts (`fused`), wasm+simd (fused), stock wasm and the cpu
 *   backend;
 * - the PyTorch reference (tests/reference/reference.py) training the paper model on one CPU
 *   thread, when a python3 with torch is found, and our paper throughput as a ratio of it;
 * - the top kernels of one training step (tf.profile) on each wasm variant;
 * - tensor count before and after N training steps (must be equal);
 * - two independent training runs serially vs in two worker processes: the speed-up, with
 *   each run's own training time and CPU time, so that a loaded machine shows as such;
 * - the whole-step WebGPU trainer where there is an adapter (./bench_gpu.ts): on a GPU, one
 *   arm at batch 64, 256 and 1,024 with today's kernels and the earlier geometry, and 1, 4,
 *   16 and 32 stacked arms, beside PyTorch on CUDA; on a software adapter, the path only.
 *
 * Model FLOPs are counted analytically (matmuls only, see `trainingFlopsPerSample`).
 */
import { bestSeconds } from "../lib/timing.ts";
import { parseCommand, printHelp, runCommand } from "../lib/cli.ts";
import * as tf from "@tensorflow/tfjs";
import { backendLabel, initBackend } from "../kernels/backend.ts";
import {
  type BlasProvider,
  blasRoutines,
  disableNativeMatmul,
  enableNativeMatmul,
  fusedKernelsEnabled,
  setFusedKernels,
  sgemmGflops,
} from "../kernels/native_matmul.ts";
import type { WasmHeapBackend } from "../kernels/wasm_kernels.ts";
import { AdamW } from "../train/adamw.ts";
import { projectPath } from "../lib/paths.ts";
import { type TorchBench, torchBench } from "../lib/torch_python.ts";
import { type GpuBench, gpuBench } from "./bench_gpu.ts";
import process from "node:process";
import {
  BENCH_MODELS,
  type BenchModel,
  type MatmulResult,
  measureMatmul,
  measureTraining,
  profileStep,
  setup,
  type ThroughputResult,
  trainStep,
} from "../train/throughput.ts";

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

/** One training run in a child process, as it reports itself. */
interface ChildRun {
  /** Seconds of the training steps alone (after warm-up). */
  trainSeconds: number;
  /** The process's CPU seconds (all threads) and wall seconds from start to exit. */
  cpuSeconds: number;
  processSeconds: number;
}

/**
 * Two independent training runs (the quickstart model, `steps` steps each), one after the
 * other vs at once in two worker processes. A warm-up run first (module and compile caches),
 * then serial and parallel alternately, `rounds` times; each mode's best round counts. Each
 * run reports its own training time and CPU time: in `cpuInflation` (parallel CPU per run
 * over serial), a machine short of cores or memory bandwidth shows as more CPU per run; in
 * `loadAverage` (before and after), other work on the machine.
 */
async function parallelSpeedup(steps: number, backend: string, rounds: number) {
  const worker = projectPath("pipeline/commands/bench.ts");
  const run = async (): Promise<ChildRun & { wallSeconds: number }> => {
    const started = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", worker, "--child", String(steps), backend],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const wallSeconds = (performance.now() - started) / 1000;
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
    if (!out.success) throw new Error(`bench worker failed (exit ${out.code})`);
    return { ...JSON.parse(line) as ChildRun, wallSeconds };
  };
  const loadBefore = Deno.loadavg();
  await run(); // warm-up
  const serial: { seconds: number; runs: ChildRun[] }[] = [];
  const parallel: { seconds: number; runs: ChildRun[] }[] = [];
  for (let round = 0; round < rounds; round++) {
    let started = performance.now();
    const one = await run();
    const two = await run();
    serial.push({ seconds: (performance.now() - started) / 1000, runs: [one, two] });
    started = performance.now();
    const both = await Promise.all([run(), run()]);
    parallel.push({ seconds: (performance.now() - started) / 1000, runs: both });
  }
  const best = <T extends { seconds: number }>(xs: T[]) =>
    xs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const [s, p] = [best(serial), best(parallel)];
  const sum = (runs: ChildRun[], key: keyof ChildRun) => runs.reduce((a, r) => a + r[key], 0);
  // Training throughput of two runs at once over one run alone (start-up left out).
  const trainSpeedup = (2 / Math.max(...p.runs.map((r) => r.trainSeconds))) /
    (2 / sum(s.runs, "trainSeconds"));
  return {
    runs: 2,
    steps,
    rounds,
    serialSeconds: s.seconds,
    parallelSeconds: p.seconds,
    speedup: s.seconds / p.seconds,
    trainSpeedup,
    startupSeconds: (sum(s.runs, "processSeconds") - sum(s.runs, "trainSeconds")) / 2,
    cpuInflation: sum(p.runs, "cpuSeconds") / sum(s.runs, "cpuSeconds"),
    loadAverage: { before: loadBefore[0], after: Deno.loadavg()[0] },
  };
}

type Profile = Awaited<ReturnType<typeof profileStep>> & {
  model: string;
  backend: string;
  fused: boolean;
};

/**
 * The bench's backend variants: "wasm" (tfjs's own kernels), "wasm+openblas-unfused" (the
 * native matmul and attention kernels without the fused ones, as `KLAL_FUSED=off`),
 * "wasm+openblas" (everything: what training uses where OpenBLAS is installed), "wasm+simd"
 * (everything on the SIMD BLAS: what training uses without OpenBLAS), "cpu".
 */
const VARIANTS = ["wasm", "wasm+openblas-unfused", "wasm+openblas", "wasm+simd", "cpu"] as const;
type Variant = typeof VARIANTS[number];

/** Switch to a bench variant; false when it is not available here. */
async function useBackend(variant: Variant): Promise<boolean> {
  await initBackend(variant === "cpu" ? "cpu" : "wasm");
  if (variant === "wasm") disableNativeMatmul();
  if (variant === "cpu" || variant === "wasm") return true;
  const blas: BlasProvider = variant === "wasm+simd" ? "simd" : "openblas";
  if (!enableNativeMatmul(blas).enabled) return false;
  const fused = variant !== "wasm+openblas-unfused";
  return setFusedKernels(fused) === fused;
}

/** One product of the GEMM comparison: GFLOP/s of each implementation (null: not here). */
export interface GemmResult {
  /** Which product: "x·W", "dy·Wᵀ", "xᵀ·dy", "q·kᵀ", "p·v" (model and d in `shape`'s sizes). */
  product: string;
  /** op(A) [m, k] times op(B) [k, n], with the flags: "NN", "NT", "TN". */
  shape: string;
  simd: number | null;
  openblas: number | null;
  /** tfjs-wasm's own BatchMatMul through tf.matMul (the transposes as its flags). */
  stock: number;
}

/**
 * The models' products: per model and linear layer (d -> 3d and d -> 4d), forward x·W and the
 * two backward products; attention's per-head blocks, scores q·kᵀ and the mix p·v.
 */
function gemmShapes(): {
  product: string;
  m: number;
  k: number;
  n: number;
  ta: boolean;
  tb: boolean;
}[] {
  const out: ReturnType<typeof gemmShapes> = [];
  const seen = new Set<string>();
  const add = (product: string, m: number, k: number, n: number, ta: boolean, tb: boolean) => {
    const key = `${m},${k},${n},${ta},${tb}`;
    if (!seen.has(key)) out.push({ product, m, k, n, ta, tb });
    seen.add(key);
  };
  for (const m of Object.values(BENCH_MODELS)) {
    const rows = m.batch * (m.imageSize ** 2 / 64 + 10);
    for (const n of [3 * m.dModel, 4 * m.dModel]) {
      add("x·W", rows, m.dModel, n, false, false);
      add("dy·Wᵀ", rows, n, m.dModel, false, true);
      add("xᵀ·dy", m.dModel, rows, n, true, false);
    }
    const t = m.imageSize ** 2 / 64 + 10;
    const dh = m.dModel / m.heads;
    add("q·kᵀ", t, dh, t, false, true);
    add("p·v", t, t, dh, false, false);
  }
  return out;
}

/**
 * The GEMM comparison on the wasm backend, operands in its heap: each BLAS's sgemm called
 * directly (`blasRoutines`), stock tfjs-wasm through tf.matMul with the native kernels off.
 * Small products run in a loop of enough calls to time (at least ~2 ms per timed run).
 */
async function gemmComparison(repeats: number): Promise<GemmResult[]> {
  await initBackend("wasm");
  disableNativeMatmul();
  const backend = tf.backend() as unknown as WasmHeapBackend;
  const results: GemmResult[] = [];
  for (const g of gemmShapes()) {
    const flops = 2 * g.m * g.k * g.n;
    const calls = Math.max(1, Math.ceil(4e6 / flops));
    const a = tf.randomNormal(g.ta ? [g.k, g.m] : [g.m, g.k]) as tf.Tensor2D;
    const b = tf.randomNormal(g.tb ? [g.n, g.k] : [g.k, g.n]) as tf.Tensor2D;
    const c = tf.zeros([g.m, g.n]);
    const blas = (provider: BlasProvider) => {
      const r = blasRoutines(provider);
      if (!r) return null;
      const [aAt, bAt, cAt] = r.addresses(backend, [a, b, c]);
      const [ta, tb] = [g.ta ? 112 : 111, g.tb ? 112 : 111];
      const [lda, ldb] = [g.ta ? g.m : g.k, g.tb ? g.k : g.n];
      const s = bestSeconds(() => {
        for (let i = 0; i < calls; i++) {
          r.sgemm(101, ta, tb, g.m, g.n, g.k, 1, aAt, lda, bAt, ldb, 0, cAt, g.n);
        }
      }, repeats);
      return calls * flops / s / 1e9;
    };
    const simd = blas("simd");
    const openblas = blas("openblas");
    const stock = calls * flops / bestSeconds(() => {
      for (let i = 0; i < calls; i++) tf.tidy(() => tf.matMul(a, b, g.ta, g.tb)).dispose();
    }, repeats) / 1e9;
    tf.dispose([a, b, c]);
    const flags = `${g.ta ? "T" : "N"}${g.tb ? "T" : "N"}`;
    results.push({
      product: g.product,
      shape: `[${g.m},${g.k}]x[${g.k},${g.n}] ${flags}`,
      simd,
      openblas,
      stock,
    });
  }
  return results;
}

/** The single-thread sgemm yardstick: the paper model's largest product. */
function sgemmShape() {
  const m = BENCH_MODELS.paper;
  return {
    m: m.batch * ((m.imageSize / 8) ** 2 + 10),
    k: m.dModel,
    n: 4 * m.dModel,
  };
}

/**
 * The PyTorch reference training the paper model on one CPU thread (reference.py bench,
 * OMP_NUM_THREADS=1: our training is single-threaded too), or why it did not run.
 */
function pytorchReference(steps: number): Promise<TorchBench | { skipped: string }> {
  return torchBench({ device: "cpu", batch: 64, steps, threads: 1 });
}

/** Everything the bench measures. */
export interface BenchResult {
  machine: { cores: number; os: string; deno: string; cpu: string; loadAverage: number[] };
  quick: boolean;
  /** Single-thread OpenBLAS sgemm (null without OpenBLAS): the best and every measurement. */
  sgemm: { shape: string; gflops: number; measured: number[] } | null;
  /** The SIMD BLAS's, OpenBLAS's and stock tfjs-wasm's GEMM at the models' products. */
  gemm: GemmResult[];
  matmul: MatmulResult[];
  training: (ThroughputResult & { ratioToSgemm: number | null })[];
  /** The profile of the backend training uses by default (the last of `profiles`). */
  profile: Profile;
  /** One profile per wasm variant measured. */
  profiles: Profile[];
  tensors: Awaited<ReturnType<typeof tensorCountAcross>>;
  workers: Awaited<ReturnType<typeof parallelSpeedup>>;
  /** The whole-step WebGPU trainer (./bench_gpu.ts), or why it was not measured. */
  webgpu: GpuBench | { skipped: string };
  /** The PyTorch reference on the paper model and our (default backend's) paper throughput over it. */
  pytorch: (TorchBench & { ratio: number | null }) | { skipped: string };
}

/** The CPU's model name (Linux: /proc/cpuinfo), or "". */
function cpuName(): string {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    return info.match(/^model name\s*:\s*(.*)$/m)?.[1].trim() ?? "";
  } catch {
    return "";
  }
}

/** Run the whole bench. */
export async function bench(quick: boolean, log: (line: string) => void): Promise<BenchResult> {
  const matmulResults: MatmulResult[] = [];
  const training: ThroughputResult[] = [];
  const measured: Variant[] = [];
  const shape = sgemmShape();
  const sgemmRuns: number[] = [];
  const yardstick = (when: string) => {
    const g = sgemmGflops(shape.m, shape.k, shape.n, quick ? 3 : 10);
    if (g === null) return;
    sgemmRuns.push(g);
    log(`sgemm [${shape.m},${shape.k}]x[${shape.k},${shape.n}] (${when}): ${g.toFixed(1)} GFLOP/s`);
  };
  yardstick("start");
  const gemm = await gemmComparison(quick ? 3 : 10);
  const fmt = (g: number | null) => (g === null ? "-" : g.toFixed(1)).padStart(6);
  log("GEMM GFLOP/s        shape                             simd  openblas  stock wasm");
  for (const g of gemm) {
    log(
      `  ${g.product.padEnd(8)} ${g.shape.padEnd(34)} ${fmt(g.simd)}    ${fmt(g.openblas)}      ${
        fmt(g.stock)
      }`,
    );
  }
  for (const variant of VARIANTS) {
    if (!(await useBackend(variant))) {
      log(`${variant}: skipped (${enableNativeMatmul().reason})`);
      continue;
    }
    measured.push(variant);
    // The matmul kernel is the same with and without the fused kernels.
    if (variant !== "wasm+openblas-unfused") {
      for (const m of Object.values(BENCH_MODELS)) {
        const rows = m.batch * (m.imageSize ** 2 / 64 + 10);
        if (variant === "cpu" && m !== BENCH_MODELS.quickstart && quick) continue;
        // The models' real shapes: the QKV projection and the first MLP layer.
        for (const [k, n] of [[m.dModel, 3 * m.dModel], [m.dModel, 4 * m.dModel]]) {
          matmulResults.push(await measureMatmul(rows, k, n, quick ? 3 : 10));
          log(
            `matmul ${variant} ${matmulResults.at(-1)!.shape}: ` +
              `fwd ${matmulResults.at(-1)!.forwardGflops.toFixed(1)} GFLOP/s, ` +
              `bwd ${matmulResults.at(-1)!.backwardGflops.toFixed(1)} GFLOP/s`,
          );
        }
      }
    }
    for (const [name, m] of Object.entries(BENCH_MODELS)) {
      if (variant === "cpu" && name !== "quickstart") continue; // minutes per step
      const steps = quick ? 3 : name === "paper" ? 10 : name === "record64" ? 20 : 30;
      if (variant === "wasm+openblas" && name === "paper") yardstick("before the paper model");
      training.push(await measureTraining(name, m, steps));
      const r = training.at(-1)!;
      log(
        `train ${variant} ${name} (batch ${r.batch}, ${r.tokens} tokens): ` +
          `${r.samplesPerSecond.toFixed(0)} samples/s, ${r.gflopsPerSecond.toFixed(1)} GFLOP/s, ` +
          `${r.msPerStep.toFixed(0)} ms/step`,
      );
    }
  }
  yardstick("after training");
  const sgemm = sgemmRuns.length > 0 ? Math.max(...sgemmRuns) : null;
  const withRatio = training.map((r) => ({
    ...r,
    ratioToSgemm: sgemm !== null && r.backend === "wasm+openblas"
      ? r.gflopsPerSecond / sgemm
      : null,
  }));
  for (const r of withRatio.filter((t) => t.ratioToSgemm !== null)) {
    log(
      `  ${r.model}${r.fused ? "" : " (unfused)"}: ${r.ratioToSgemm!.toFixed(2)} of sgemm`,
    );
  }

  const profiled = quick ? BENCH_MODELS.quickstart : BENCH_MODELS.paper;
  const profiles: Profile[] = [];
  for (const variant of measured.filter((b) => b !== "cpu")) {
    await useBackend(variant);
    const profile = {
      model: profiled === BENCH_MODELS.paper ? "paper" : "quickstart",
      backend: backendLabel(),
      fused: fusedKernelsEnabled(),
      ...await profileStep(profiled),
    };
    profiles.push(profile);
    log(
      `profile (${profile.model}, ${variant}): ${profile.kernels} kernels, ${
        profile.kernelMs.toFixed(0)
      } ms`,
    );
    for (const k of profile.top) {
      log(
        `  ${k.kernel.padEnd(24)} ${String(k.calls).padStart(5)} calls ${
          k.ms.toFixed(1).padStart(8)
        } ms ${(100 * k.share).toFixed(1).padStart(5)}%`,
      );
    }
  }
  // The rest runs on what training uses by default (native and fused kernels when installed):
  // the last variant's BLAS would otherwise stay active (initBackend keeps an active one).
  disableNativeMatmul();
  await initBackend("wasm");
  const ours = training.findLast((r) =>
    r.model === "paper" && r.backend === backendLabel() &&
    r.fused === fusedKernelsEnabled()
  );
  const tensors = await tensorCountAcross(BENCH_MODELS.quickstart, quick ? 20 : 100);
  log(`tensors: ${tensors.before} before, ${tensors.after} after ${tensors.steps} steps`);

  const torch = await pytorchReference(quick ? 3 : 10);
  const pytorch: BenchResult["pytorch"] = "skipped" in torch
    ? torch
    : { ...torch, ratio: ours ? ours.samplesPerSecond / torch.samplesPerSecond : null };
  log(
    "skipped" in pytorch
      ? `pytorch: skipped (${pytorch.skipped})`
      : `pytorch (cpu, ${pytorch.threads} thread): ${pytorch.samplesPerSecond.toFixed(0)} ` +
        `samples/s, ${pytorch.gflopsPerSecond.toFixed(1)} GFLOP/s; ours/pytorch ${
          pytorch.ratio?.toFixed(2)
        }`,
  );

  const workers = await parallelSpeedup(quick ? 10 : 300, "wasm", quick ? 1 : 2);
  log(
    `2 training runs: serial ${workers.serialSeconds.toFixed(1)} s, 2 workers ${
      workers.parallelSeconds.toFixed(1)
    } s, speed-up ${workers.speedup.toFixed(2)}x (training alone ${
      workers.trainSpeedup.toFixed(2)
    }x; start-up ${workers.startupSeconds.toFixed(2)} s per run; CPU per run in parallel ${
      workers.cpuInflation.toFixed(2)
    }x; load average ${workers.loadAverage.before.toFixed(2)} -> ${
      workers.loadAverage.after.toFixed(2)
    })`,
  );
  const webgpu = await gpuBench(quick, log);
  if ("skipped" in webgpu) log(`webgpu trainer: skipped (${webgpu.skipped})`);
  return {
    machine: {
      cores: navigator.hardwareConcurrency,
      os: `${Deno.build.os} ${Deno.build.arch}`,
      deno: Deno.version.deno,
      cpu: cpuName(),
      loadAverage: Deno.loadavg(),
    },
    quick,
    sgemm: sgemm === null ? null : {
      shape: `[${shape.m},${shape.k}]x[${shape.k},${shape.n}]`,
      gflops: sgemm,
      measured: sgemmRuns,
    },
    gemm,
    matmul: matmulResults,
    training: withRatio,
    profile: profiles.at(-1)!,
    profiles,
    tensors,
    workers,
    webgpu,
    pytorch,
  };
}

const BENCH_USAGE = `usage: deno task bench [--quick] [--json]

  Measures this machine: sgemm, the SIMD BLAS's GEMM beside OpenBLAS's and stock wasm's at
  the models' products, matmuls per backend, training throughput of the quickstart, 64 px and
  paper models (OpenBLAS fused and unfused, the SIMD BLAS), a step's kernel profile, the
  tensor count, two workers against one, the PyTorch reference when torch is importable, and
  the whole-step WebGPU trainer (one arm, stacked arms) where there is a WebGPU adapter.

options:
  --quick     fewer steps and repeats
  --json      one JSON object on stdout instead of the table
  -h, --help  this text`;

if (import.meta.main) {
  const args = Deno.args;
  if (args[0] === "--child") {
    // One of the parallel-speedup runs: train the quickstart model for N steps and report
    // its own timings on stdout.
    await initBackend(args[2] as "wasm");
    const r = await measureTraining("quickstart", BENCH_MODELS.quickstart, Number(args[1]));
    const usage = process.cpuUsage();
    const report: ChildRun = {
      trainSeconds: r.msPerStep * Number(args[1]) / 1000,
      cpuSeconds: (usage.user + usage.system) / 1e6,
      // performance.now() counts from the process's start.
      processSeconds: performance.now() / 1000,
    };
    console.log(JSON.stringify(report));
    Deno.exit(0);
  }
  Deno.exit(
    await runCommand(BENCH_USAGE, async () => {
      const parsed = parseCommand(args, {
        options: { quick: { type: "boolean" }, json: { type: "boolean" } },
      });
      if (parsed.help) return printHelp(BENCH_USAGE);
      const json = parsed.values.json === true;
      const result = await bench(
        parsed.values.quick === true,
        json ? () => {} : (l) => {
          console.log(l);
        },
      );
      if (json) console.log(JSON.stringify(result, null, 2));
      return 0;
    }),
  );
}
