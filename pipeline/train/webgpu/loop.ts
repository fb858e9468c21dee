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
import type { StepResult } from "./trainer.ts";
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

/** One arm of a stacked run: a model trained in place on its data with its options. */
export interface StackedArm {
  model: TinyVlm;
  data: Encoded;
  options: TrainOptions;
}

/** Train `model` in place on `data` with the whole-step trainer (see the top of this file). */
export async function trainOnWebgpu(
  model: TinyVlm,
  data: Encoded,
  options: TrainOptions,
): Promise<TrainResult> {
  return (await trainStacked([{ model, data, options }]))[0];
}

/** What the arms of one stack must share (the trainer's shapes and update rule). */
export function stackShape(arm: StackedArm): string {
  const o = arm.options;
  return JSON.stringify({
    config: arm.model.config,
    layout: arm.data.layout,
    batch: o.batchSize,
    layers: o.layers,
    queries: o.queries ?? "all",
    weightDecay: o.optimizer === "adamw" ? o.weightDecay : 0,
    clipNorm: o.clipNorm ?? 1,
    supervision: o.supervision ?? "attention",
  });
}

/** How many arms like `arm` one stacked trainer holds on this process's GPU. */
export async function stackCapacity(arm: StackedArm): Promise<number> {
  const device = await sharedDevice();
  let parameters = 0;
  for (const v of arm.model.params.values()) parameters += v.size;
  return WebGpuTrainer.maxArms(device.limits, {
    config: arm.model.config,
    layout: arm.data.layout,
    batch: arm.options.batchSize,
  }, parameters);
}

/**
 * Train several models at once on one stacked trainer (./trainer.ts `createStacked`), each
 * exactly as `trainOnWebgpu` trains it alone: its own batches, learning-rate schedule, λ,
 * steps, evaluation and checkpoint callbacks and resume point. The arms must share
 * `stackShape`. The loop runs from the earliest arm's first step to the last arm's last; an
 * arm outside its own steps sits them out. A non-finite loss in any arm stops the stack,
 * naming the arm's label.
 */
export async function trainStacked(arms: StackedArm[]): Promise<TrainResult[]> {
  if (arms.length === 0) return [];
  const shape = stackShape(arms[0]);
  arms.forEach((a) => {
    if (stackShape(a) !== shape) {
      throw new Error(`${a.options.label}: cannot share a stack with ${arms[0].options.label}`);
    }
  });
  const first = arms[0];
  const o0 = first.options;
  const trainer = await WebGpuTrainer.createStacked(
    await sharedDevice(),
    {
      config: first.model.config,
      layout: first.data.layout,
      batch: o0.batchSize,
      lambda: o0.lambda,
      layers: o0.layers,
      queries: o0.queries ?? "all",
      weightDecay: o0.optimizer === "adamw" ? o0.weightDecay : 0,
      clipNorm: o0.clipNorm ?? 1,
    },
    await Promise.all(arms.map(async (a) => ({
      lambda: a.options.lambda,
      parameters: Object.entries(await a.model.getWeights()).map(([name, w]) => ({
        name,
        shape: w.shape,
        data: w.data,
      })),
    }))),
  );
  const state = arms.map((a, i) => {
    const o = a.options;
    const order = new BatchOrder(a.data.n, o.seed);
    const log: LossPoint[] = [];
    let begin = 0;
    let earlier = 0;
    if (o.resume) {
      trainer.restoreOptimizer(o.resume.optimizer, i);
      order.restore(o.resume.order);
      log.push(...o.resume.log);
      begin = o.resume.step;
      earlier = o.resume.seconds;
    }
    return { ...a, order, log, begin, earlier, meter: new StepMeter(o), started: 0, ended: 0 };
  });
  const begin = Math.min(...state.map((s) => s.begin));
  const end = Math.max(...state.map((s) => s.options.steps));
  const active = (i: number, step: number) =>
    step >= state[i].begin && step < state[i].options.steps;
  const label = arms.length === 1 ? o0.label : `${o0.label} (+${arms.length - 1} arms stacked)`;
  const progress = new Progress(label, end, begin);
  /** Loop steps submitted whose stats have not come back yet, oldest first. */
  const inFlight: number[] = [];
  const record = (finished: StepResult[]) => {
    for (const { arms: stats } of finished) {
      const step = inFlight.shift()!;
      let shown: Record<string, number> | undefined;
      stats.forEach((s, i) => {
        if (!active(i, step)) return;
        const { options } = state[i];
        const values = { ntp: s.ntp, klal: s.klal, total: s.total };
        for (const [part, v] of Object.entries(values)) {
          if (!Number.isFinite(v)) {
            throw new Error(`${options.label}: ${part} loss is ${v} at step ${step}`);
          }
        }
        if (!Number.isFinite(s.gradNorm)) {
          throw new Error(`${options.label}: gradient norm is ${s.gradNorm} at step ${step}`);
        }
        if (logDue(step, options)) {
          state[i].log.push({ step, ...values });
          state[i].meter.logged(step, values, learningRate(step, options), s.gradNorm);
        }
        shown ??= values;
      });
      if (shown) progress.update(step + 1, shown, o0.batchSize * arms.length);
    }
  };
  /** Every step finished and recorded; arm i's model holds its trained weights. */
  const settle = async (i: number) => {
    record(await trainer.drain(true));
    const trained = await trainer.parameters(i);
    const { model } = state[i];
    const map: WeightMap = {};
    for (const [name, v] of model.params) {
      map[name] = { shape: [...v.shape], data: trained.get(name)! };
    }
    model.setWeights(map);
  };
  try {
    for (let step = begin; step < end; step++) {
      const on = state.map((_, i) => active(i, step));
      state.forEach((s, i) => {
        if (!on[i]) return;
        if (step === s.begin) s.started = performance.now();
        trainer.setBatch(s.data, s.order.next(s.options.batchSize), i);
      });
      await trainer.step(state.map((s) => learningRate(step, s.options)), on);
      inFlight.push(step);
      record(await trainer.drain());
      for (const [i, s] of state.entries()) {
        if (!on[i]) continue;
        const o = s.options;
        if (evalDue(step, o)) {
          await settle(i);
          await o.onEval!(step + 1);
        }
        if (checkpointDue(step, o)) {
          await settle(i);
          await o.onCheckpoint!({
            step: step + 1,
            optimizer: await trainer.optimizerState(i),
            order: s.order.snapshot(),
            log: [...s.log],
            seconds: s.earlier + (performance.now() - s.started) / 1000,
          });
        }
        if (step + 1 === o.steps) s.ended = performance.now();
      }
    }
    for (const i of state.keys()) await settle(i);
  } finally {
    trainer.dispose();
    progress.done();
  }
  return state.map((s) => {
    const seconds = ((s.ended || performance.now()) - (s.started || performance.now())) / 1000;
    const steps = s.options.steps - s.begin;
    return {
      log: s.log,
      seconds: s.earlier + seconds,
      samplesPerSecond: steps > 0 ? steps * s.options.batchSize / seconds : 0,
    };
  });
}
