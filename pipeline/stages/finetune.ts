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
import { train } from "../train/loop.ts";
import { trainingReason } from "../train/webgpu/loop.ts";
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
  const result = await train(model, data, {
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
  });
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
}
