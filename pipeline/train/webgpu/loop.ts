/**
 * The training loop of ../loop.ts on the whole-step WebGPU trainer (./trainer.ts):
 * used when the active backend is WebGPU and the run supervises attention (the pointer-head
 * control stays on tfjs). The same batches (BatchOrder, same seed), learning-rate schedule,
 * clipping, AdamW, logging, NaN checks, evaluation callbacks and checkpoints; the model's tfjs
 * variables receive the trained weights before every callback and at the end, so evaluation
 * and checkpoints read them as usual. Losses arrive a few steps behind the GPU (the loop never
 * waits for a read-back), so a non-finite loss stops the run a few steps late, naming the
 * step it happened at. `KLAL_WEBGPU_TRAINER=off` trains through tfjs-webgpu instead.
 */
import type { Encoded } from "../../model/batch.ts";
import { webgpuDevice, WebGpuTrainer } from "./trainer.ts";
import type { StepStats } from "./trainer.ts";
import type { TinyVlm, WeightMap } from "../../model/tiny_vlm.ts";
import { Progress } from "../progress.ts";
import {
  BatchOrder,
  checkpointDue,
  evalDue,
  learningRate,
  logDue,
  StepMeter,
} from "../schedule.ts";
import { type LossPoint, type TrainOptions, type TrainResult } from "../options.ts";

/** Whether ../loop.ts trains through the whole-step trainer on the active backend. */
export function webgpuTrainerEnabled(
  backend: string,
  supervision: TrainOptions["supervision"] = "attention",
): boolean {
  return backend === "webgpu" && supervision === "attention" &&
    Deno.env.get("KLAL_WEBGPU_TRAINER") !== "off";
}

/** A stage's backend reason, saying when its training steps ran on the whole-step trainer. */
export function trainingReason(
  reason: string,
  backend: string,
  supervision: TrainOptions["supervision"] = "attention",
): string {
  return webgpuTrainerEnabled(backend, supervision)
    ? `${reason}; training steps on the whole-step WebGPU trainer`
    : reason;
}

let device: Promise<GPUDevice> | null = null;

/** One GPU device per process, shared by every run in it. */
function sharedDevice(): Promise<GPUDevice> {
  device ??= webgpuDevice();
  return device;
}

/** Train `model` in place on `data` with the whole-step trainer (see the top of this file). */
export async function trainOnWebgpu(
  model: TinyVlm,
  data: Encoded,
  options: TrainOptions,
): Promise<TrainResult> {
  const weights = await model.getWeights();
  const trainer = await WebGpuTrainer.create(await sharedDevice(), {
    config: model.config,
    layout: data.layout,
    batch: options.batchSize,
    lambda: options.lambda,
    layers: options.layers,
    queries: options.queries ?? "all",
    weightDecay: options.optimizer === "adamw" ? options.weightDecay : 0,
    clipNorm: options.clipNorm ?? 1,
  }, Object.entries(weights).map(([name, w]) => ({ name, shape: w.shape, data: w.data })));
  const order = new BatchOrder(data.n, options.seed);
  const progress = new Progress(options.label, options.steps, options.resume?.step ?? 0);
  const log: LossPoint[] = [];
  const started = performance.now();
  const meter = new StepMeter(options);
  let first = 0;
  let earlier = 0;
  if (options.resume) {
    trainer.restoreOptimizer(options.resume.optimizer);
    order.restore(options.resume.order);
    log.push(...options.resume.log);
    first = options.resume.step;
    earlier = options.resume.seconds;
  }
  /** Loop steps submitted whose stats have not come back yet, oldest first. */
  const inFlight: number[] = [];
  const record = (finished: { stats: StepStats }[]) => {
    for (const { stats } of finished) {
      const step = inFlight.shift()!;
      const values = { ntp: stats.ntp, klal: stats.klal, total: stats.total };
      for (const [part, v] of Object.entries(values)) {
        if (!Number.isFinite(v)) {
          throw new Error(`${options.label}: ${part} loss is ${v} at step ${step}`);
        }
      }
      if (!Number.isFinite(stats.gradNorm)) {
        throw new Error(`${options.label}: gradient norm is ${stats.gradNorm} at step ${step}`);
      }
      if (logDue(step, options)) {
        log.push({ step, ...values });
        meter.logged(step, values, learningRate(step, options), stats.gradNorm);
      }
      progress.update(step + 1, values, options.batchSize);
    }
  };
  /** Every step finished and its stats recorded; the model's variables hold the weights. */
  const settle = async () => {
    record(await trainer.drain(true));
    const trained = await trainer.parameters();
    const map: WeightMap = {};
    for (const [name, v] of model.params) {
      map[name] = { shape: [...v.shape], data: trained.get(name)! };
    }
    model.setWeights(map);
  };
  try {
    for (let step = first; step < options.steps; step++) {
      trainer.setBatch(data, order.next(options.batchSize));
      await trainer.step(learningRate(step, options));
      inFlight.push(step);
      record(await trainer.drain());
      if (evalDue(step, options)) {
        await settle();
        await options.onEval!(step + 1);
      }
      if (checkpointDue(step, options)) {
        await settle();
        await options.onCheckpoint!({
          step: step + 1,
          optimizer: await trainer.optimizerState(),
          order: order.snapshot(),
          log: [...log],
          seconds: earlier + (performance.now() - started) / 1000,
        });
      }
    }
    await settle();
  } finally {
    trainer.dispose();
    progress.done();
  }
  const seconds = (performance.now() - started) / 1000;
  const steps = options.steps - first;
  return { log, seconds: earlier + seconds, samplesPerSecond: steps * options.batchSize / seconds };
}
