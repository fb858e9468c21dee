/**
 * The training loop: L_total = L_NTP + lambda * L_KLAL (../model/losses.ts, `lossParts`),
 * AdamW (./adamw.ts), warm-up then cosine decay (./schedule.ts); on WebGPU, when the
 * whole-step trainer is on, the same loop runs there (./webgpu/loop.ts). Every step runs
 * inside tf.tidy (or disposes explicitly): the tensor count stays flat.
 */
import * as tf from "@tensorflow/tfjs";
import { type Encoded } from "../model/batch.ts";
import type { TinyVlm } from "../model/tiny_vlm.ts";
import { Progress } from "./progress.ts";
import { seedFrom } from "../lib/rng.ts";
import { trainOnWebgpu, webgpuTrainerEnabled } from "./webgpu/loop.ts";
import { batchTensors, disposeBatch } from "../model/batch_tensors.ts";
import { lossParts } from "../model/losses.ts";
import { AdamW } from "./adamw.ts";
import { BatchOrder, checkpointDue, evalDue, learningRate, logDue, StepMeter } from "./schedule.ts";
import type { LossPoint, TrainOptions, TrainResult } from "./options.ts";

export type { LossPoint, TrainOptions, TrainResult, TrainSnapshot } from "./options.ts";

let pointerInstances = 0;

/** Train `model` in place on `data`. Throws, naming the step and loss part, on NaN/Inf. */
export async function train(
  model: TinyVlm,
  data: Encoded,
  options: TrainOptions,
): Promise<TrainResult> {
  // On WebGPU, attention-supervised runs train through the whole-step trainer.
  if (webgpuTrainerEnabled(tf.getBackend(), options.supervision)) {
    return await trainOnWebgpu(model, data, options);
  }
  const variables: tf.Variable[] = model.variables();
  const supervision = options.supervision ?? "attention";
  // The pointer head belongs to the run, not to the model: it is trained beside it and
  // dropped afterwards (evaluation reads the language head only).
  const pointer = supervision === "pointer"
    ? tf.tidy(() =>
      tf.variable(
        tf.randomNormal(
          [model.config.dModel, data.layout.visual],
          0,
          0.02,
          "float32",
          seedFrom(options.seed, "pointer"),
        ),
        true,
        `pointer-${pointerInstances++}`,
      )
    )
    : undefined;
  if (pointer) variables.push(pointer);
  const optimizer = new AdamW(
    variables,
    options.optimizer === "adamw" ? options.weightDecay : 0,
  );
  const order = new BatchOrder(data.n, options.seed);
  const progress = new Progress(options.label, options.steps, options.resume?.step ?? 0);
  const log: LossPoint[] = [];
  const clipNorm = options.clipNorm ?? 1;
  const started = performance.now();
  const meter = new StepMeter(options);
  let first = 0;
  let earlier = 0;
  if (options.resume) {
    optimizer.restore(options.resume.optimizer);
    const saved = options.resume.pointer;
    if (pointer && saved) tf.tidy(() => pointer.assign(tf.tensor(saved, pointer.shape)));
    order.restore(options.resume.order);
    log.push(...options.resume.log);
    first = options.resume.step;
    earlier = options.resume.seconds;
  }
  try {
    for (let step = first; step < options.steps; step++) {
      const batch = batchTensors(data, order.next(options.batchSize));
      let ntp: tf.Scalar | undefined;
      let klal: tf.Scalar | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const parts = lossParts(model, batch, data, options.lambda, options.layers, {
          queries: options.queries,
          pointer,
        });
        ntp = tf.keep(parts.ntp);
        klal = tf.keep(parts.klal);
        return parts.total;
      }, variables);
      disposeBatch(batch);
      const gradList = variables.map((x) => grads[x.name]);
      const values = {
        ntp: (await ntp!.data())[0],
        klal: (await klal!.data())[0],
        total: (await value.data())[0],
      };
      ntp!.dispose();
      klal!.dispose();
      value.dispose();
      for (const [part, v] of Object.entries(values)) {
        if (!Number.isFinite(v)) {
          tf.dispose(gradList);
          throw new Error(`${options.label}: ${part} loss is ${v} at step ${step}`);
        }
      }
      const lr = learningRate(step, options);
      const gradNorm = await optimizer.apply(gradList, lr, clipNorm);
      tf.dispose(gradList);
      if (!Number.isFinite(gradNorm)) {
        throw new Error(`${options.label}: gradient norm is ${gradNorm} at step ${step}`);
      }
      if (logDue(step, options)) {
        log.push({ step, ...values });
        meter.logged(step, values, lr, gradNorm);
      }
      if (evalDue(step, options)) await options.onEval!(step + 1);
      progress.update(step + 1, values, options.batchSize);
      if (checkpointDue(step, options)) {
        await options.onCheckpoint!({
          step: step + 1,
          optimizer: await optimizer.snapshot(),
          order: order.snapshot(),
          log: [...log],
          seconds: earlier + (performance.now() - started) / 1000,
          ...(pointer ? { pointer: await pointer.data() as Float32Array } : {}),
        });
      }
    }
  } finally {
    optimizer.dispose();
    pointer?.dispose();
    progress.done();
  }
  const seconds = (performance.now() - started) / 1000;
  const steps = options.steps - first;
  return { log, seconds: earlier + seconds, samplesPerSecond: steps * options.batchSize / seconds };
}
