/**
 * The stages: `(inputs from the cache, params, ctx) => files in a new cache entry`.
 * A stage reads its inputs only through the cache, by key.
 */
import { createCanvas } from "@napi-rs/canvas";
import { PRETRAIN_TASK, TASKS } from "../tasks/registry.ts";
import { vocabularyOf } from "../tasks/registry.ts";
import type { DataSource, Sample, Task, TaskConfig } from "../tasks/task.ts";
import { Rng, seedFrom } from "./rng.ts";
import { initBackend } from "./backend.ts";
import { encodeSamples, type Layout, layoutFor, mergeLayouts } from "./batch.ts";
import type { Cache, EntryWriter, Manifest } from "./cache.ts";
import { evaluate } from "./eval.ts";
import { TinyVlm, type TinyVlmConfig, type WeightMap } from "./model/tiny_vlm.ts";
import type { ResolvedStage } from "./plan.ts";
import {
  type BreakdownRow,
  type CurvePoint,
  type FigureSample,
  type FigureSet,
  type HeadRow,
  type LearningRow,
  type ReportInput,
  type ResultRow,
  writeReport,
} from "./report.ts";
import type { BaseSpec, ModelSpec, Spec, TrainSpec } from "./spec_types.ts";
import { Tokenizer } from "./tokenizer.ts";
import { type LossPoint, train, type TrainSnapshot } from "./train.ts";

/** What every stage gets besides its own params. */
export interface StageContext {
  cache: Cache;
  /** Experiment name (for messages). */
  experiment: string;
  /** Called when another process computed the stage while this one waited for its lock. */
  onReuse?: () => void;
}

/** Text positions the model reserves beyond the visual tokens. */
const MAX_TEXT_TOKENS = 32;

function taskByName(name: string): Task {
  if (name === PRETRAIN_TASK.name) return PRETRAIN_TASK;
  const task = TASKS[name];
  if (!task) throw new Error(`unknown task ${name}`);
  return task;
}

// ---------------------------------------------------------------- data

/** Parameters of a data stage. */
interface DataParams {
  task: string;
  seed: number;
  split: string;
  n: number;
  image_size: number;
  patch_size: number;
  task_params: Record<string, unknown>;
  source?: DataSource;
}

/**
 * Samples of a data stage: generated (synthetic tasks); loaded from the spec's source (real
 * data; a seeded subset of `n` when the file holds more); or, for real-format tasks without
 * a source, an offline stand-in written in the real format and read back by the same loader.
 */
async function produceSamples(task: Task, p: DataParams, config: TaskConfig): Promise<Sample[]> {
  if (task.generate) return task.generate(p.seed, p.n, config);
  if (!task.load || !task.writeStandIn) throw new Error(`task ${p.task} has no data`);
  if (p.source) {
    const all = await task.load(p.source, config);
    const order = new Rng(seedFrom(p.task, p.split, p.seed)).shuffle(all.map((_, i) => i));
    return order.slice(0, p.n).sort((a, b) => a - b).map((i) => all[i]);
  }
  const dir = await Deno.makeTempDir({ prefix: `klal-${p.task}-` });
  try {
    const source = await task.writeStandIn(dir, p.seed, p.n, config);
    return (await task.load(source, config)).slice(0, p.n);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Data files: images as bytes (quantised like any stored image), targets, text and meta. */
async function runData(stage: ResolvedStage, out: EntryWriter) {
  const p = { ...stage.params } as unknown as DataParams;
  const task = taskByName(p.task);
  const config = { imageSize: p.image_size, patchSize: p.patch_size, params: p.task_params };
  const samples = await produceSamples(task, p, config);
  p.n = samples.length;
  const pixels = p.image_size * p.image_size * 3;
  const tv = (p.image_size / p.patch_size) ** 2;
  const images = new Uint8Array(p.n * pixels);
  const targets = new Float32Array(p.n * tv);
  const lines: string[] = [];
  samples.forEach((s, i) => {
    for (let j = 0; j < pixels; j++) {
      images[i * pixels + j] = Math.round(Math.min(1, Math.max(0, s.image.data[j])) * 255);
    }
    targets.set(s.target, i * tv);
    lines.push(JSON.stringify({ prompt: s.prompt, answer: s.answer, meta: s.meta }));
  });
  await out.writeBytes("images.u8", images);
  await out.writeBytes("targets.f32", new Uint8Array(targets.buffer));
  await out.writeText("samples.jsonl", lines.join("\n") + "\n");
  await out.writeJson("data.json", { n: p.n, image_size: p.image_size, patches: tv });
  return { samples: p.n };
}

/** Read the samples of a data entry back. */
export async function loadSamples(cache: Cache, key: string): Promise<Sample[]> {
  const info = await cache.readJson<{ n: number; image_size: number; patches: number }>(
    key,
    "data.json",
  );
  const images = await cache.readBytes(key, "images.u8");
  const targetBytes = await cache.readBytes(key, "targets.f32");
  const targets = new Float32Array(
    targetBytes.buffer,
    targetBytes.byteOffset,
    info.n * info.patches,
  );
  const text = new TextDecoder().decode(await cache.readBytes(key, "samples.jsonl"));
  const rows = text.trim().split("\n").map((l) => JSON.parse(l));
  const pixels = info.image_size * info.image_size * 3;
  return rows.map((r, i) => {
    const data = new Float32Array(pixels);
    for (let j = 0; j < pixels; j++) data[j] = images[i * pixels + j] / 255;
    return {
      image: { width: info.image_size, height: info.image_size, data },
      prompt: r.prompt,
      answer: r.answer,
      target: targets.slice(i * info.patches, (i + 1) * info.patches),
      meta: r.meta,
    };
  });
}

// ---------------------------------------------------------------- checkpoints

interface CheckpointIndex {
  config: TinyVlmConfig;
  vocabulary: string[];
  layout: Layout;
  tensors: { name: string; shape: number[]; offset: number; length: number }[];
}

async function saveCheckpoint(
  out: EntryWriter,
  model: TinyVlm,
  tokenizer: Tokenizer,
  layout: Layout,
): Promise<void> {
  const weights = await model.getWeights();
  const tensors: CheckpointIndex["tensors"] = [];
  let offset = 0;
  for (const [name, w] of Object.entries(weights)) {
    tensors.push({ name, shape: w.shape, offset, length: w.data.length });
    offset += w.data.length;
  }
  const flat = new Float32Array(offset);
  for (const t of tensors) flat.set(weights[t.name].data, t.offset);
  await out.writeBytes("weights.f32", new Uint8Array(flat.buffer));
  const index: CheckpointIndex = {
    config: model.config,
    vocabulary: [...tokenizer.words],
    layout,
    tensors,
  };
  await out.writeJson("checkpoint.json", index);
}

export async function loadCheckpoint(
  cache: Cache,
  key: string,
): Promise<{ model: TinyVlm; tokenizer: Tokenizer; layout: Layout }> {
  const index = await cache.readJson<CheckpointIndex>(key, "checkpoint.json");
  const bytes = await cache.readBytes(key, "weights.f32");
  const flat = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const weights: WeightMap = {};
  for (const t of index.tensors) {
    weights[t.name] = { shape: t.shape, data: flat.subarray(t.offset, t.offset + t.length) };
  }
  const model = new TinyVlm(index.config, 0);
  model.setWeights(weights);
  return { model, tokenizer: new Tokenizer(index.vocabulary), layout: index.layout };
}

// ---------------------------------------------------------------- train stages

function allLayers(model: TinyVlm): number[] {
  return Array.from({ length: model.config.layers }, (_, i) => i);
}

function curveFile(log: LossPoint[], seconds: number, samplesPerSecond: number) {
  return { log, seconds, samplesPerSecond };
}

async function runPretrain(stage: ResolvedStage, out: EntryWriter, ctx: StageContext) {
  const p = stage.params as {
    model: ModelSpec & { vocabulary: string[] };
    base: BaseSpec;
    backend: Spec["backend"];
  };
  const backend = await initBackend(p.backend);
  const samples = await loadSamples(ctx.cache, stage.inputKeys.data);
  const tokenizer = new Tokenizer(vocabularyOf(p.model.vocabulary.map(taskByName)));
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
      lambda: 0,
      layers: allLayers(model),
      seed: p.base.seed,
      label: `${ctx.experiment} pretrain`,
    },
  );
  await saveCheckpoint(out, model, tokenizer, layout);
  await out.writeJson("log.json", curveFile(result.log, result.seconds, result.samplesPerSecond));
  model.dispose();
  return { backend, samplesPerSecond: result.samplesPerSecond, trainSeconds: result.seconds };
}

async function runFinetune(stage: ResolvedStage, out: EntryWriter, ctx: StageContext) {
  const p = stage.params as {
    task: string;
    train: TrainSpec;
    lambda: number;
    layers: number[];
    seed: number;
    backend: Spec["backend"];
  };
  const backend = await initBackend(p.backend);
  const { model, tokenizer } = await loadCheckpoint(ctx.cache, stage.inputKeys.base);
  const samples = await loadSamples(ctx.cache, stage.inputKeys.data);
  const patchSize = Math.sqrt(model.config.patchDim / 3);
  const layout = layoutFor(samples, tokenizer, patchSize);
  const data = encodeSamples(samples, tokenizer, layout, patchSize);
  const t = p.train;
  const curve: LearningPoint[] = [];
  let onEval: ((step: number) => Promise<void>) | undefined;
  if (stage.inputKeys.val) {
    const task = taskByName(p.task);
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
    console.error(`${ctx.experiment} ${stage.id}: resuming from step ${resumed.snapshot.step}`);
  }
  const result = await train(model, data, {
    resume: resumed?.snapshot,
    checkpointEvery: Number(stage.runtime?.checkpoint_every ?? 0),
    onCheckpoint: async (snapshot) =>
      writePartial(partial, snapshot, await model.getWeights(), { curve }),
    evalEvery: t.eval_every,
    onEval,
    steps: t.steps,
    batchSize: t.batch_size,
    lr: t.lr,
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
    seed: p.seed,
    label: `${ctx.experiment} ${stage.id}`,
  });
  await saveCheckpoint(out, model, tokenizer, layout);
  await out.writeJson("log.json", {
    ...curveFile(result.log, result.seconds, result.samplesPerSecond),
    learning: curve,
    resumedFrom: resumed?.snapshot.step ?? 0,
  });
  model.dispose();
  await Deno.remove(partial).catch(() => {});
  return { backend, samplesPerSecond: result.samplesPerSecond, trainSeconds: result.seconds };
}

// ---------------------------------------------------------------- resumable training

/** Where a stage keeps its mid-training checkpoint (outside the entry, which is all-or-nothing). */
function partialPath(cache: Cache, key: string): string {
  return `${cache.root}/partial/${key}.ckpt`;
}

interface Partial {
  snapshot: TrainSnapshot;
  weights: WeightMap;
  extra: Record<string, unknown>;
}

/**
 * Write a resumable checkpoint atomically: one file, written beside its final name and
 * renamed over it, so a kill at any moment leaves the previous checkpoint or the new one.
 * Layout: u32 header length, JSON header, then float32 weights, Adam m, Adam v.
 */
function writePartial(
  path: string,
  snapshot: TrainSnapshot,
  weights: WeightMap,
  extra: Record<string, unknown>,
): void {
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
  Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const file = Deno.openSync(tmp, { write: true, create: true, truncate: true });
  try {
    let written = 0;
    while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
    file.syncSync();
  } finally {
    file.close();
  }
  Deno.renameSync(tmp, path);
}

/** The checkpoint at `path`, or undefined when there is none (or it cannot be read whole). */
function readPartial(path: string): Partial | undefined {
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

/** Held-out accuracy and grounding measured during fine-tuning (validation set). */
export interface LearningPoint {
  step: number;
  accuracy: number;
  targetAttention: number;
  targetAttentionRatio: number;
}

// ---------------------------------------------------------------- eval

async function runEval(stage: ResolvedStage, out: EntryWriter, ctx: StageContext) {
  const p = stage.params as { task: string; batch_size: number; backend: Spec["backend"] };
  const backend = await initBackend(p.backend);
  const task = taskByName(p.task);
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
  return { backend, accuracy: result.accuracy };
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

// ---------------------------------------------------------------- report

/** Metrics an eval entry wrote. */
type EvalMetrics = Omit<Awaited<ReturnType<typeof evaluate>>, "predictions">;

/** Gather the report's inputs from the cache entries of a resolved plan. */
export async function reportInput(
  spec: Spec,
  stages: ResolvedStage[],
  cache: Cache,
  statuses: Map<string, { status: "cached" | "ran"; seconds: number }>,
): Promise<ReportInput> {
  const rows: ResultRow[] = [];
  const curves: CurvePoint[] = [];
  const learning: LearningRow[] = [];
  const figures: FigureSet[] = [];
  const heads: HeadRow[] = [];
  const breakdown: BreakdownRow[] = [];
  const side = spec.task.image_size / spec.model.patch_size;
  const backends = new Set<string>();
  const stageInfo: ReportInput["stages"] = [];
  for (const stage of stages) {
    if (stage.kind === "report") continue;
    const manifest: Manifest = await cache.manifest(stage.key);
    const info = manifest.info as { backend?: string; samplesPerSecond?: number };
    if (info.backend) backends.add(info.backend);
    const status = statuses.get(stage.id);
    stageInfo.push({
      stage: stage.id,
      key: stage.key,
      status: status?.status ?? "cached",
      seconds: status?.status === "ran" ? status.seconds : manifest.seconds,
      samplesPerSecond: info.samplesPerSecond,
    });
    const arm = stage.arm!;
    const seed = stage.seed!;
    if (stage.kind === "eval") {
      const m = await cache.readJson<EvalMetrics>(stage.key, "metrics.json");
      const task = spec.task.name;
      rows.push({ task, arm, seed, metric: "accuracy", value: m.accuracy });
      for (const [metric, value] of Object.entries(m.extra ?? {})) {
        rows.push({ task, arm, seed, metric, value });
      }
      rows.push({ task, arm, seed, metric: "target_attention", value: m.targetAttention });
      rows.push({
        task,
        arm,
        seed,
        metric: "target_attention_ratio",
        value: m.targetAttentionRatio,
      });
      for (const l of m.layers) {
        rows.push({
          task,
          arm,
          seed,
          metric: `target_attention_ratio@L${l.layer}`,
          value: l.ratio,
        });
        l.headMass.forEach((mass, head) => heads.push({ arm, seed, layer: l.layer, head, mass }));
      }
      // Entries written before figures existed (or by tools) may lack these files.
      if (manifest.files["figures.json"]) {
        const samples = await cache.readJson<FigureSample[]>(stage.key, "figures.json");
        figures.push({ arm, seed, gridSide: side, samples });
      }
      const text = manifest.files["predictions.jsonl"]
        ? new TextDecoder().decode(await cache.readBytes(stage.key, "predictions.jsonl"))
        : "";
      const buckets = new Map<string, { correct: number; n: number }>();
      for (const line of text.trim().split("\n").filter((l) => l.length > 0)) {
        const p = JSON.parse(line) as { difficulty: string | number; correct: boolean };
        const b = buckets.get(String(p.difficulty)) ?? { correct: 0, n: 0 };
        b.n++;
        if (p.correct) b.correct++;
        buckets.set(String(p.difficulty), b);
      }
      for (const [difficulty, b] of buckets) breakdown.push({ arm, seed, difficulty, ...b });
    } else if (stage.kind === "finetune") {
      const log = await cache.readJson<{ log: LossPoint[]; learning?: LearningPoint[] }>(
        stage.key,
        "log.json",
      );
      for (const point of log.log) curves.push({ arm, seed, ...point });
      for (const point of log.learning ?? []) learning.push({ arm, seed, ...point });
    }
  }
  return {
    spec,
    rows,
    curves,
    stages: stageInfo,
    backend: [...backends].sort().join(", ") || "none",
    createdAt: new Date().toISOString(),
    learning,
    figures,
    heads,
    breakdown,
  };
}

async function runReport(
  stage: ResolvedStage,
  out: EntryWriter,
  ctx: StageContext,
  extra: ReportExtra,
) {
  const spec = (stage.params as { spec: Spec }).spec;
  const input = await reportInput(spec, extra.stages, ctx.cache, extra.statuses);
  const scratch = await Deno.makeTempDir({ prefix: "klal-report-" });
  try {
    await writeReport(`${scratch}/report`, input);
    for (const name of await listFiles(`${scratch}/report`)) {
      await out.writeBytes(name, await Deno.readFile(`${scratch}/report/${name}`));
    }
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
  return { backend: input.backend };
}

/** Relative paths of every file under `dir`, sorted. */
export async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(`${dir}/${prefix}`)) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) names.push(...await listFiles(dir, rel));
    else if (entry.isFile) names.push(rel);
  }
  return names.sort();
}

// ---------------------------------------------------------------- dispatch

/** What the report stage needs besides its inputs: the whole plan and what each stage did. */
export interface ReportExtra {
  stages: ResolvedStage[];
  statuses: Map<string, { status: "cached" | "ran"; seconds: number }>;
}

/** Run one stage and store its outputs under its key. */
export async function runStage(
  stage: ResolvedStage,
  ctx: StageContext,
  extra?: ReportExtra,
): Promise<Manifest> {
  // One process computes a key; others wait on the lock and then find it cached.
  return await ctx.cache.withLock(stage.key, async () => {
    if (await ctx.cache.has(stage.key)) {
      ctx.onReuse?.();
      return await ctx.cache.manifest(stage.key);
    }
    return await computeStage(stage, ctx, extra);
  });
}

function computeStage(
  stage: ResolvedStage,
  ctx: StageContext,
  extra?: ReportExtra,
): Promise<Manifest> {
  return ctx.cache.write(
    stage.key,
    {
      stage: stage.id,
      kind: stage.kind,
      params: stage.params,
      inputs: stage.inputKeys,
      codeVersion: stage.codeVersion,
    },
    (out) => {
      switch (stage.kind) {
        case "data":
          return runData(stage, out);
        case "pretrain":
          return runPretrain(stage, out, ctx);
        case "finetune":
          return runFinetune(stage, out, ctx);
        case "eval":
          return runEval(stage, out, ctx);
        case "report":
          if (!extra) throw new Error("the report stage runs in the main process");
          return runReport(stage, out, ctx, extra);
      }
    },
  );
}
