/**
 * The pretrain stage: the shared Base checkpoint, NTP on the generic pretraining mix (plus
 * KLAL toward the mix's own maps, on every layer, when `base.lambda` > 0).
 */
import type { EntryWriter } from "../cache/store.ts";
import { backendReason, initBackend } from "../kernels/backend.ts";
import { encodeSamples, layoutFor } from "../model/batch.ts";
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
  const result = p.base.steps === 0 ? { log: [], seconds: 0, samplesPerSecond: 0 } : await train(
    model,
    data,
    {
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
