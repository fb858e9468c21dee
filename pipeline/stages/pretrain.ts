/**
 * The pretrain stage: the shared Base checkpoint, NTP on the generic pretraining mix (plus
 * KLAL toward the mix's own maps, on every layer, when `base.lambda` > 0), and what the Base
 * learned of each of its kinds: accuracy on held-out mix samples (another seed, never trained
 * on) beside each kind's fixed-answer floor (`skills.json`).
 */
import { LiveMetrics, liveMetricsPath } from "../train/live_metrics.ts";
import type { EntryWriter } from "../cache/store.ts";
import { backendReason, initBackend } from "../kernels/backend.ts";
import { encodeSamples, layoutFor, mergeLayouts } from "../model/batch.ts";
import { evaluate } from "../eval/evaluate.ts";
import { fixedAnswerFloor } from "../eval/floors.ts";
import type { Sample } from "../../tasks/task.ts";
import { pretrainMix } from "../../tasks/pretrain_mix.ts";
import { TinyVlm } from "../model/tiny_vlm.ts";
import type { ResolvedStage } from "./types.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { train } from "../train/loop.ts";
import { trainingReason } from "../train/webgpu/loop.ts";
import { saveCheckpoint } from "./_checkpoint.ts";
import { type StageContext } from "./_common.ts";
import { loadSamples } from "./_data_entry.ts";

/** Text positions the model reserves beyond the visual tokens. */
const MAX_TEXT_TOKENS = 32;

/** Pretrain a model on the data entry `data`; write its checkpoint and loss log. */
export async function runPretrain(
  stage: ResolvedStage<"pretrain">,
  out: EntryWriter,
  ctx: StageContext,
) {
  const p = stage.params;

  const backend = await initBackend(p.backend);
  const samples = await loadSamples(ctx.cache, stage.inputKeys.data);
  const tokenizer = new Tokenizer(p.model.vocabulary);
  const patchSize = p.model.patch_size;
  const layout = layoutFor(samples, tokenizer, patchSize);
  const data = encodeSamples(samples, tokenizer, layout, patchSize);
  const model = new TinyVlm({
    patchDim: layout.patchDim,
    vocab: tokenizer.size,
    dModel: p.model.d_model,
    layers: p.model.layers,
    heads: p.model.heads,
    mlpRatio: p.model.mlp_ratio,
    gridSide: Math.round(Math.sqrt(layout.visual)),
    maxText: MAX_TEXT_TOKENS,
    positionStd: p.model.position_std,
  }, p.base.seed);
  const live = new LiveMetrics(liveMetricsPath(ctx.cache.root, ctx.experiment, stage.id));
  const result = p.base.steps === 0 ? { log: [], seconds: 0, samplesPerSecond: 0 } : await train(
    model,
    data,
    {
      onMetrics: (point) => live.append({ ...point }),
      steps: p.base.steps,
      batchSize: p.base.batch_size,
      lr: p.base.lr,
      optimizer: "adamw",
      weightDecay: 0.01,
      warmup: Math.min(50, p.base.steps),
      logEvery: 10,
      lambda: p.base.lambda ?? 0,
      layers: Array.from({ length: model.config.layers }, (_, i) => i),
      seed: p.base.seed,
      label: `${ctx.experiment} pretrain`,
    },
  );
  await saveCheckpoint(out, model, tokenizer, layout);
  await out.writeBytes("metrics.jsonl", new TextEncoder().encode(live.text()));
  live.close(true);
  if (stage.inputKeys.heldout) {
    const heldout = await loadSamples(ctx.cache, stage.inputKeys.heldout);
    await out.writeJson("skills.json", await mixSkills(model, tokenizer, layout, heldout));
  }
  await out.writeJson("log.json", {
    log: result.log,
    seconds: result.seconds,
    samplesPerSecond: result.samplesPerSecond,
  });
  model.dispose();
  return {
    backend,
    backendReason: p.base.steps > 0 ? trainingReason(backendReason(), backend) : backendReason(),
    samplesPerSecond: result.samplesPerSecond,
    trainSeconds: result.seconds,
  };
}

/** One mix kind's held-out accuracy (%) beside what its best constant answer scores. */
export interface SkillScore {
  kind: string;
  n: number;
  accuracy: number;
  floor: number;
  floorAnswer: string;
}

/**
 * What the Base answers of each mix kind on held-out samples: greedy accuracy per kind (the
 * sample's `meta.difficulty`) and that kind's fixed-answer floor on the same samples, so a
 * kind counts as learned only above its floor.
 */
export async function mixSkills(
  model: TinyVlm,
  tokenizer: Tokenizer,
  trained: ReturnType<typeof layoutFor>,
  samples: Sample[],
): Promise<SkillScore[]> {
  const patchSize = Math.sqrt(model.config.patchDim / 3);
  const layout = mergeLayouts(layoutFor(samples, tokenizer, patchSize), trained);
  const data = encodeSamples(samples, tokenizer, layout, patchSize);
  const result = await evaluate(model, data, samples, pretrainMix, tokenizer, 64, 0);
  const kinds = [...new Set(samples.map((s) => String(s.meta.difficulty)))].sort();
  return kinds.map((kind) => {
    const own = samples.flatMap((s, i) => String(s.meta.difficulty) === kind ? [i] : []);
    const correct = own.filter((i) => result.predictions[i].correct).length;
    const floor = fixedAnswerFloor(pretrainMix, own.map((i) => samples[i]));
    return {
      kind,
      n: own.length,
      accuracy: 100 * correct / own.length,
      floor: floor.accuracy,
      floorAnswer: floor.answer,
    };
  });
}
