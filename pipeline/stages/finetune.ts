/**
 * The finetune stage: one arm and seed trained from the Base checkpoint, with KLAL at the
 * arm's lambda, measured on the validation set as it learns and resumable after a kill.
 */
import { LiveMetrics, liveMetricsPath } from "../train/live_metrics.ts";
import type { EntryWriter } from "../cache/store.ts";
import { backendReason, initBackend } from "../kernels/backend.ts";
import { encodeSamples, layoutFor, mergeLayouts } from "../model/batch.ts";
import { evaluate } from "../eval/evaluate.ts";
import { klalLayers, type ResolvedStage } from "./types.ts";
import { controlTargets } from "../train/controls.ts";
import * as tf from "@tensorflow/tfjs";
import { train, type TrainOptions, type TrainResult } from "../train/loop.ts";
import {
  stackCapacity,
  stackShape,
  trainingReason,
  trainStacked,
  webgpuTrainerEnabled,
} from "../train/webgpu/loop.ts";
import type { Encoded } from "../model/batch.ts";
import type { TinyVlm } from "../model/tiny_vlm.ts";
import { loadCheckpoint, saveCheckpoint } from "./_checkpoint.ts";
import { loadTask, type StageContext } from "./_common.ts";
import { loadSamples } from "./_data_entry.ts";
import { readPartial, removePartials, writePartial } from "./_resume.ts";
import type { LrChoice } from "./choose_lr.ts";

/** Held-out accuracy and grounding measured during fine-tuning (validation set). */
export interface LearningPoint {
  step: number;
  accuracy: number;
  targetAttention: number;
  targetAttentionRatio: number;
}

/** A fine-tune ready to train: its model, data and options, and what writes its entry. */
interface PreparedFinetune {
  model: TinyVlm;
  data: Encoded;
  options: TrainOptions;
  /** Write the entry's files from the trained model; the stage's manifest info. */
  finish(result: TrainResult, out: EntryWriter): Promise<Record<string, unknown>>;
}

/**
 * Fine-tune the checkpoint `base` on the data entry `data`; write the result and its curves.
 * With an input `lr` (a choose-lr entry, train.lr_grid) the learning rate is the one chosen
 * there; log.json records the rate used either way.
 */
export async function runFinetune(
  stage: ResolvedStage<"finetune" | "lr-finetune">,
  out: EntryWriter,
  ctx: StageContext,
) {
  const job = await prepareFinetune(stage, ctx);
  return await job.finish(await train(job.model, job.data, job.options), out);
}

/**
 * Several fine-tunes trained together on one stacked WebGPU trainer (../train/webgpu/loop.ts
 * `trainStacked`), each written to its own entry (`outs`, by stage key) exactly as
 * `runFinetune` writes it. Stages whose shapes differ (model, layout, batch, layers) go in
 * separate stacks, as do more arms than the GPU's largest buffer holds; each stack's arms are
 * the numbers of training them alone. On a backend without the whole-step trainer they train
 * one after another. Returns each stage's manifest info.
 */
export async function runFinetuneGroup(
  stages: ResolvedStage<"finetune" | "lr-finetune">[],
  outs: Map<string, EntryWriter>,
  ctx: StageContext,
): Promise<Map<string, Record<string, unknown>>> {
  const info = new Map<string, Record<string, unknown>>();
  const jobs = [];
  for (const stage of stages) jobs.push({ stage, job: await prepareFinetune(stage, ctx) });
  const stacked = webgpuTrainerEnabled(tf.getBackend(), "attention") &&
    jobs.every(({ job }) => (job.options.supervision ?? "attention") === "attention");
  if (!stacked) {
    for (const { stage, job } of jobs) {
      const result = await train(job.model, job.data, job.options);
      info.set(stage.key, await job.finish(result, outs.get(stage.key)!));
    }
    return info;
  }
  const byShape = new Map<string, typeof jobs>();
  for (const j of jobs) {
    const shape = stackShape(j.job);
    byShape.set(shape, [...(byShape.get(shape) ?? []), j]);
  }
  for (const group of byShape.values()) {
    const most = await stackCapacity(group[0].job);
    for (let at = 0; at < group.length; at += most) {
      const chunk = group.slice(at, at + most);
      console.error(
        `${ctx.experiment}: ${chunk.length} fine-tune(s) stacked on one trainer: ` +
          chunk.map((c) => c.stage.id).join(", "),
      );
      const results = await trainStacked(chunk.map((c) => c.job));
      for (const [k, { stage, job }] of chunk.entries()) {
        info.set(stage.key, {
          ...(await job.finish(results[k], outs.get(stage.key)!)),
          stackedWith: chunk.length - 1,
        });
      }
    }
  }
  return info;
}

/** Everything a fine-tune needs before its first step (see `runFinetune`). */
async function prepareFinetune(
  stage: ResolvedStage<"finetune" | "lr-finetune">,
  ctx: StageContext,
): Promise<PreparedFinetune> {
  const p = stage.params;

  const backend = await initBackend(p.backend);
  const { model, tokenizer } = await loadCheckpoint(ctx.cache, stage.inputKeys.base);
  const samples = await loadSamples(ctx.cache, stage.inputKeys.data);
  const patchSize = Math.sqrt(model.config.patchDim / 3);
  const layout = layoutFor(samples, tokenizer, patchSize);
  const encoded = encodeSamples(samples, tokenizer, layout, patchSize);
  // Control arms train toward other maps than the task's own (the eval stage still scores
  // against the real ones).
  const data = p.target === "shuffled" || p.target === "uniform"
    ? controlTargets(encoded, p.target, p.seed)
    : encoded;
  const t = p.train;
  const lr = stage.inputKeys.lr
    ? (await ctx.cache.readJson<LrChoice>(stage.inputKeys.lr, "choice.json")).lr
    : t.lr;
  if (lr === undefined) throw new Error(`${stage.id}: no learning rate (train.lr or an lr input)`);
  if (stage.inputKeys.lr) {
    console.error(`${ctx.experiment} ${stage.id}: lr ${lr}, chosen by ${stage.inputs.lr}`);
  }
  const curve: LearningPoint[] = [];
  let onEval: ((step: number) => Promise<void>) | undefined;
  if (stage.inputKeys.val) {
    const task = await loadTask(p.task);
    const valSamples = await loadSamples(ctx.cache, stage.inputKeys.val);
    const own = layoutFor(valSamples, tokenizer, patchSize);
    const valLayout = mergeLayouts(own, layout);
    const val = encodeSamples(valSamples, tokenizer, valLayout, patchSize);
    onEval = async (step) => {
      const r = await evaluate(model, val, valSamples, task, tokenizer, 128, 0);
      curve.push({
        step,
        accuracy: r.accuracy,
        targetAttention: r.targetAttention,
        targetAttentionRatio: r.targetAttentionRatio,
      });
      // Called only while training runs, when `live` (made below) exists.
      live.append({
        step,
        val_accuracy: r.accuracy,
        val_target_attention: r.targetAttention,
        val_target_attention_ratio: r.targetAttentionRatio,
      });
    };
  }
  const label = `${ctx.experiment} ${stage.id}`;
  const resumed = await readPartial(
    ctx.cache,
    stage.key,
    (line) => console.error(`${label}: ${line}`),
  );
  if (resumed) {
    model.setWeights(resumed.weights);
    curve.push(...(resumed.extra.curve as LearningPoint[]));
    const pointer = resumed.extra.pointer as number[] | undefined;
    if (pointer) resumed.snapshot.pointer = Float32Array.from(pointer);
    console.error(`${label}: resuming from step ${resumed.snapshot.step}`);
  }
  const live = new LiveMetrics(
    liveMetricsPath(ctx.cache.root, ctx.experiment, stage.id),
    resumed?.snapshot.step ?? 0,
  );
  const options: TrainOptions = {
    onMetrics: (point) => live.append({ ...point }),
    resume: resumed?.snapshot,
    checkpointEvery: Number(stage.runtime?.checkpoint_every ?? 0),
    onCheckpoint: async (snapshot) =>
      writePartial(ctx.cache, stage.key, snapshot, await model.getWeights(), {
        curve,
        ...(snapshot.pointer ? { pointer: Array.from(snapshot.pointer) } : {}),
      }),
    evalEvery: t.eval_every,
    onEval,
    steps: t.steps,
    batchSize: t.batch_size,
    lr,
    optimizer: t.optimizer,
    weightDecay: t.weight_decay,
    warmup: t.warmup,
    logEvery: t.log_every,
    lambda: p.lambda,
    // With lambda 0 KLAL is only measured (for the curves), over every layer.
    layers: klalLayers(p, model.config.layers),
    queries: p.queries ?? "all",
    supervision: p.supervision ?? "attention",
    seed: p.seed,
    label,
  };
  const finish = async (result: TrainResult, out: EntryWriter) => {
    await saveCheckpoint(out, model, tokenizer, layout);
    await out.writeBytes("metrics.jsonl", new TextEncoder().encode(live.text()));
    live.close(true);
    await out.writeJson("log.json", {
      log: result.log,
      seconds: result.seconds,
      samplesPerSecond: result.samplesPerSecond,
      learning: curve,
      resumedFrom: resumed?.snapshot.step ?? 0,
      lr,
      ...(stage.inputKeys.lr ? { lrChosenBy: stage.inputs.lr } : {}),
    });
    model.dispose();
    await removePartials(ctx.cache, stage.key);
    return {
      backend,
      backendReason: trainingReason(backendReason(), backend, p.supervision),
      samplesPerSecond: result.samplesPerSecond,
      trainSeconds: result.seconds,
      lr,
    };
  };
  return { model, data, options, finish };
}
