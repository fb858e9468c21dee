/**
 * The WebGPU part of `deno task bench` (./bench.ts): the whole-step trainer
 * (pipeline/train/webgpu/trainer.ts) on whatever adapter this machine has.
 *
 * On a real GPU, the paper model: one arm at batch 64, 256 and 1,024 with the kernels the
 * shapes choose and with the 64 x 64 tiles and one attention row a workgroup (the geometry
 * the kernels had before register tiling), then 1, 4, 16 and 32 arms of batch 64 stacked in one
 * trainer; beside them the PyTorch reference on CUDA (reference.py bench, float32, TF32 off)
 * at the same batches, where a python with a CUDA torch is found. PyTorch training N arms one
 * after another has its one-arm samples/s, so a stack is compared with the one-arm figure.
 *
 * On a software adapter (llvmpipe), the same path on the quickstart model at batch 8 with few
 * steps: it shows the path works, its figures are the CPU's, not a GPU's.
 */
import { gpuAdapter, initBackend } from "../kernels/backend.ts";
import { type TorchBench, torchBench } from "../lib/torch_python.ts";
import {
  BENCH_MODELS,
  measureWebgpuTrainer,
  type TrainerBenchOptions,
  type TrainerThroughput,
} from "../train/throughput.ts";

/** One measured row: what was varied and the trainer's figures. */
export interface GpuTrainerRow extends TrainerThroughput {
  /** "kernels" (one arm, a kernel choice) or "stack" (arms of batch 64). */
  part: "kernels" | "stack";
  /** PyTorch's samples/s at this batch on CUDA, and ours over it (null: not measured). */
  pytorchSamplesPerSecond: number | null;
  ratioToPytorch: number | null;
}

/** The WebGPU figures of one bench run. */
export interface GpuBench {
  adapter: string;
  /** A software adapter: the figures are the CPU's. */
  software: boolean;
  rows: GpuTrainerRow[];
  /** The PyTorch reference on CUDA per batch, or why it did not run. */
  pytorch: TorchBench[] | { skipped: string };
}

/** Whether an adapter is a software rasteriser rather than a GPU. */
export function softwareAdapter(gpu: { fallback: boolean; description: string }): boolean {
  return gpu.fallback || /llvmpipe|lavapipe|swiftshader|software/i.test(gpu.description);
}

/** The kernel geometry before register tiling: 64 x 64 tiles, one attention row a workgroup. */
const BEFORE: TrainerBenchOptions = { matmulTile: 64, attentionRows: 1 };

/** Measure the WebGPU trainer here (see the top of this file), or say why not. */
export async function gpuBench(
  quick: boolean,
  log: (line: string) => void,
): Promise<GpuBench | { skipped: string }> {
  const gpu = await gpuAdapter();
  if (!gpu.available) return { skipped: gpu.reason };
  // The trainer takes its initial weights from a model made on the CPU.
  await initBackend("wasm");
  const software = softwareAdapter(gpu);
  const base = software ? { ...BENCH_MODELS.quickstart, batch: 8 as const } : BENCH_MODELS.paper;
  const name = software ? "quickstart" : "paper";
  const steps = software ? 2 : quick ? 5 : 30;
  const batches = software ? [8] : [64, 256, 1024];
  const stack = software ? [1, 4] : [1, 4, 16, 32];

  let pytorch: TorchBench[] | { skipped: string } = { skipped: "software adapter" };
  if (!software) {
    const runs: TorchBench[] = [];
    let skipped: { skipped: string } | undefined;
    for (const batch of batches) {
      const r = await torchBench({ device: "cuda", batch, steps: quick ? 10 : 50, warmup: 3 });
      if ("skipped" in r) {
        skipped = r;
        break;
      }
      runs.push(r);
    }
    pytorch = skipped ?? runs;
  }
  const torchAt = (batch: number) =>
    Array.isArray(pytorch)
      ? pytorch.find((r) => r.batch === batch)?.samplesPerSecond ?? null
      : null;

  const rows: GpuTrainerRow[] = [];
  const measure = async (part: GpuTrainerRow["part"], batch: number, o: TrainerBenchOptions) => {
    // bench models type their batch sizes as literals; any batch size works.
    const m = { ...base, batch: batch as 32 };
    const r = await measureWebgpuTrainer(name, m, steps, undefined, o);
    const torch = torchAt(batch);
    const row: GpuTrainerRow = {
      ...r,
      part,
      pytorchSamplesPerSecond: torch,
      ratioToPytorch: torch === null ? null : r.samplesPerSecond / torch,
    };
    rows.push(row);
    log(
      `webgpu trainer ${name} b${batch} x ${row.arms} arm${row.arms > 1 ? "s" : ""} ` +
        `(${
          row.matmulTile === "auto" ? "tiles by shape" : `tile ${row.matmulTile}`
        }, ${row.attentionRows} attention row${row.attentionRows > 1 ? "s" : ""}): ` +
        `${row.samplesPerSecond.toFixed(0)} samples/s, ${row.gflopsPerSecond.toFixed(1)} ` +
        `GFLOP/s, ${row.msPerStep.toFixed(1)} ms/step` +
        (torch === null
          ? ""
          : `; PyTorch ${torch.toFixed(0)} samples/s, ours/PyTorch ${
            row.ratioToPytorch!.toFixed(2)
          }`),
    );
  };
  log(`webgpu: ${gpu.description}${software ? " (software: the CPU's figures)" : ""}`);
  for (const batch of batches) {
    await measure("kernels", batch, {});
    await measure("kernels", batch, BEFORE);
  }
  for (const arms of stack) await measure("stack", batches[0], { arms });
  return { adapter: gpu.description, software, rows, pytorch };
}
