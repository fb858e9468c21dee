/**
 * The eval stage: a checkpoint's accuracy and grounding on the test set, with figure samples
 * and the test set's fixed-answer floor.
 */
import { createCanvas } from "@napi-rs/canvas";
import type { Sample } from "../../tasks/task.ts";
import { backendReason, initBackend } from "../kernels/backend.ts";
import { encodeSamples, layoutFor, mergeLayouts } from "../model/batch.ts";
import type { EntryWriter } from "../cache/store.ts";
import { evaluate } from "../eval/evaluate.ts";
import { fixedAnswerFloor, shortcutFloors } from "../eval/floors.ts";
import { questionBlind } from "../eval/question_blind.ts";
import type { ResolvedStage } from "./types.ts";
import type { FigureSample } from "../report/types.ts";
import { loadCheckpoint } from "./_checkpoint.ts";
import { loadTask, type StageContext } from "./_common.ts";
import { loadSamples } from "./_data_entry.ts";

/**
 * Evaluate the checkpoint `model` on the data entry `data`: predictions, metrics, figures, and
 * floor.json (what the best one constant answer scores on the same test set).
 */
export async function runEval(
  stage: ResolvedStage<"eval" | "lr-eval">,
  out: EntryWriter,
  ctx: StageContext,
) {
  const p = stage.params;
  const backend = await initBackend(p.backend);
  const task = await loadTask(p.task);
  const { model, tokenizer, layout: trained } = await loadCheckpoint(
    ctx.cache,
    stage.inputKeys.model,
  );
  const samples = await loadSamples(ctx.cache, stage.inputKeys.data);
  const patchSize = Math.sqrt(model.config.patchDim / 3);
  const own = layoutFor(samples, tokenizer, patchSize);
  const layout = mergeLayouts(own, trained);
  const data = encodeSamples(samples, tokenizer, layout, patchSize);
  const result = await evaluate(model, data, samples, task, tokenizer, p.batch_size);
  model.dispose();
  await out.writeText(
    "predictions.jsonl",
    result.predictions.map((x) => JSON.stringify(x)).join("\n") + "\n",
  );
  const { predictions: _, maps, ...metrics } = result;
  await out.writeJson("metrics.json", metrics);
  // What answering or attending without the image's content gets: the fixed-answer floor, the
  // task's shortcut rules (best first) and the question-blind attention baseline.
  const shortcuts = shortcutFloors(task.shortcuts ?? [], samples);
  await out.writeJson("floor.json", {
    ...fixedAnswerFloor(task, samples),
    ...(shortcuts.length > 0 ? { shortcut: shortcuts[0], shortcuts } : {}),
    questionBlind: questionBlind(samples, patchSize),
  });
  // The first few held-out samples with their attention maps, for the report's figures.
  const figures: FigureSample[] = maps.map((m) => {
    const s = samples[m.index];
    const p = result.predictions[m.index];
    return {
      index: m.index,
      prompt: s.prompt,
      answer: s.answer,
      prediction: p.prediction,
      correct: p.correct,
      image: pngDataUrl(s.image),
      target: Array.from(s.target, (v) => Math.round(v * 1e5) / 1e5),
      layers: m.layers,
      heads: m.heads,
    };
  });
  await out.writeJson("figures.json", figures);
  return { backend, backendReason: backendReason(), accuracy: result.accuracy };
}

/** PNG data URL of an RGB image. */
export function pngDataUrl(image: Sample["image"]): string {
  const canvas = createCanvas(image.width, image.height);
  const ctx = canvas.getContext("2d");
  const pixels = ctx.createImageData(image.width, image.height);
  for (let i = 0; i < image.width * image.height; i++) {
    for (let c = 0; c < 3; c++) {
      pixels.data[4 * i + c] = Math.round(Math.min(1, Math.max(0, image.data[3 * i + c])) * 255);
    }
    pixels.data[4 * i + 3] = 255;
  }
  ctx.putImageData(pixels, 0, 0);
  return canvas.toDataURL("image/png");
}
