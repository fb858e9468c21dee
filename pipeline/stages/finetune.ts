/**
 * The finetune stage: one arm and seed trained from the Base checkpoint, with KLAL at the
 * arm's lambda, measured on the validation set as it learns and resumable after a kill.
 */
import { writeFileAtomic } from "../atomic.ts";
import type { Cache, EntryWriter } from "../cache.ts";
import { backendReason, initBackend } from "../backend.ts";
import { encodeSamples, layoutFor, mergeLayouts } from "../batch.ts";
import { evaluate } from "../eval.ts";
import type { WeightMap } from "../model/tiny_vlm.ts";
import type { ResolvedStage } from "../plan.ts";
import type { ArmSpec, Spec, TrainSpec } from "../spec_types.ts";
import { controlTargets, train, type TrainSnapshot } from "../train.ts";
import { trainingReason } from "../train_webgpu.ts";
import { loadCheckpoint, saveCheckpoint } from "./_checkpoint.ts";
import { loadSamples, loadTask, type StageContext } from "./_common.ts";
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
export async function runFinetune(stage: ResolvedStage, out: EntryWriter, ctx: StageContext) {
  const p = stage.params as {
    task: string;
    /** `lr` is absent when the input `lr` chooses it. */
    train: Omit<TrainSpec, "lr" | "lr_grid"> & { lr?: number };
    lambda: number;
    layers: number[];
    target?: ArmSpec["target"];
    supervision?: ArmSpec["supervision"];
    queries?: ArmSpec["queries"];
    seed: number;
    backend: Spec["backend"];
  };
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
    };
  }
  const partial = partialPath(ctx.cache, stage.key);
  const resumed = readPartial(partial);
  if (resumed) {
    model.setWeights(resumed.weights);
    curve.push(...(resumed.extra.curve as LearningPoint[]));
    const pointer = resumed.extra.pointer as number[] | undefined;
    if (pointer) resumed.snapshot.pointer = Float32Array.from(pointer);
    console.error(`${ctx.experiment} ${stage.id}: resuming from step ${resumed.snapshot.step}`);
  }
  const result = await train(model, data, {
    resume: resumed?.snapshot,
    checkpointEvery: Number(stage.runtime?.checkpoint_every ?? 0),
    onCheckpoint: async (snapshot) =>
      writePartial(partial, snapshot, await model.getWeights(), {
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
    layers: p.layers.length > 0
      ? p.layers
      : model.config.layers > 0
      ? Array.from({ length: model.config.layers }, (_, i) => i)
      : [],
    queries: p.queries ?? "all",
    supervision: p.supervision ?? "attention",
    seed: p.seed,
    label: `${ctx.experiment} ${stage.id}`,
  });
  await saveCheckpoint(out, model, tokenizer, layout);
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
  await Deno.remove(partial).catch(() => {});
  return {
    backend,
    backendReason: trainingReason(backendReason(), backend, p.supervision),
    samplesPerSecond: result.samplesPerSecond,
    trainSeconds: result.seconds,
    lr,
  };
}

// ---------------------------------------------------------------- resumable training

/** Where a stage keeps its mid-training checkpoint (outside the entry, which is all-or-nothing). */
function partialPath(cache: Cache, key: string): string {
  return `${cache.root}/partial/${key}.ckpt`;
}

interface ResumableCheckpoint {
  snapshot: TrainSnapshot;
  weights: WeightMap;
  extra: Record<string, unknown>;
}

/**
 * Write a resumable checkpoint atomically: one file, written beside its final name and
 * renamed over it, so a kill at any moment leaves the previous checkpoint or the new one.
 * Layout: u32 header length, JSON header, then float32 weights, Adam m, Adam v.
 */
async function writePartial(
  path: string,
  snapshot: TrainSnapshot,
  weights: WeightMap,
  extra: Record<string, unknown>,
): Promise<void> {
  const names = Object.keys(weights);
  const header = new TextEncoder().encode(JSON.stringify({
    step: snapshot.step,
    t: snapshot.optimizer.t,
    order: snapshot.order,
    log: snapshot.log,
    seconds: snapshot.seconds,
    tensors: names.map((n) => ({
      name: n,
      shape: weights[n].shape,
      length: weights[n].data.length,
    })),
    moments: snapshot.optimizer.m.length,
    extra,
  }));
  const floats = names.reduce((a, n) => a + weights[n].data.length, 0) +
    2 * snapshot.optimizer.m.length;
  const pad = (4 - ((4 + header.length) % 4)) % 4;
  const bytes = new Uint8Array(4 + header.length + pad + 4 * floats);
  new DataView(bytes.buffer).setUint32(0, header.length, true);
  bytes.set(header, 4);
  const body = new Float32Array(bytes.buffer, 4 + header.length + pad, floats);
  let o = 0;
  for (const n of names) {
    body.set(weights[n].data, o);
    o += weights[n].data.length;
  }
  body.set(snapshot.optimizer.m, o);
  body.set(snapshot.optimizer.v, o + snapshot.optimizer.m.length);
  await writeFileAtomic(path, bytes);
}

/** The checkpoint at `path`, or undefined when there is none (or it cannot be read whole). */
function readPartial(path: string): ResumableCheckpoint | undefined {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch {
    return undefined;
  }
  try {
    const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
    const h = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + length)));
    const pad = (4 - ((4 + length) % 4)) % 4;
    const copy = bytes.slice(4 + length + pad);
    const body = new Float32Array(copy.buffer, 0, copy.byteLength / 4);
    const weights: WeightMap = {};
    let o = 0;
    for (const t of h.tensors as { name: string; shape: number[]; length: number }[]) {
      weights[t.name] = { shape: t.shape, data: body.slice(o, o + t.length) };
      o += t.length;
    }
    const m = body.slice(o, o + h.moments);
    const v = body.slice(o + h.moments, o + 2 * h.moments);
    if (v.length !== h.moments) throw new Error("truncated");
    return {
      snapshot: {
        step: h.step,
        optimizer: { t: h.t, m, v },
        order: h.order,
        log: h.log,
        seconds: h.seconds,
      },
      weights,
      extra: h.extra,
    };
  } catch (e) {
    console.error(`ignoring unreadable checkpoint ${path}: ${(e as Error).message}`);
    return undefined;
  }
}
