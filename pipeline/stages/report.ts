/**
 * The report stage, run in the main process: gathers every eval and finetune entry of a plan
 * and writes the report (../report.ts) into its own cache entry.
 */
import type { Cache, EntryWriter, Manifest } from "../cache/store.ts";
import type { evaluate } from "../eval/evaluate.ts";
import type { ResolvedStage } from "./types.ts";
import {
  type BaseSkills,
  type BreakdownRow,
  type CurvePoint,
  type FigureSample,
  type FigureSet,
  type HeadRow,
  type ItemSet,
  type LearningRow,
  type ReportInput,
  type ResultRow,
  type TaskFloor,
  type TestSetInput,
  writeReport,
} from "../report/mod.ts";
import type { Spec } from "../spec/types.ts";
import type { LossPoint } from "../train/options.ts";
import type { StageContext } from "./_common.ts";
import type { LearningPoint } from "./finetune.ts";
import { promptOverlap } from "../eval/prompt_overlap.ts";

/** What the report stage needs besides its inputs: the whole plan and what each stage did. */
export interface ReportExtra {
  stages: ResolvedStage[];
  statuses: Map<string, { status: "cached" | "ran"; seconds: number }>;
}

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
  const items: ItemSet[] = [];
  const floors: Record<string, TaskFloor> = {};
  const side = spec.task.image_size / spec.model.patch_size;
  const backends = new Set<string>();
  const reasons = new Set<string>();
  const stageInfo: ReportInput["stages"] = [];
  const testPrompts: string[] = [];
  const pretrainPrompts: string[] = [];
  const baseSkills: BaseSkills[] = [];
  const testSets = new Map<string, TestSetInput>();
  for (const stage of stages) {
    if (stage.kind === "report") continue;
    const manifest: Manifest = await cache.manifest(stage.key);
    const info = manifest.info as {
      backend?: string;
      backendReason?: string;
      samplesPerSecond?: number;
    };
    if (info.backend) backends.add(info.backend);
    // Each stage's reason may name several things ("set in the spec; training steps on ...").
    for (const part of info.backendReason?.split("; ") ?? []) reasons.add(part);
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
    if (stage.kind === "data") {
      // The test set's prompts and the Base's pretraining prompts, for what the Base has seen.
      const own = stage.params.task === spec.task.name;
      const wanted = own ? stage.params.split === "test" : stage.params.split === "train";
      if (!wanted || !manifest.files["samples.jsonl"]) continue;
      const text = new TextDecoder().decode(await cache.readBytes(stage.key, "samples.jsonl"));
      const prompts = text.trim().split("\n").filter((l) => l.length > 0)
        .map((l) => (JSON.parse(l) as { prompt: string }).prompt);
      (own ? testPrompts : pretrainPrompts).push(...prompts);
    } else if (stage.kind === "eval" && stage.testSet) {
      // A further test set: its accuracy, task measures, attention ratios, floor and items.
      const set = testSets.get(stage.testSet) ??
        { name: stage.testSet, rows: [], items: [] } as TestSetInput;
      testSets.set(stage.testSet, set);
      await readFurtherEval(cache, stage, spec.task.name, manifest, set);
    } else if (stage.kind === "eval") {
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
      // Entries written before these measures existed lack them.
      const measures: [string, number | undefined][] = [
        ["target_attention_ratio_first", m.targetAttentionRatioFirst],
        ["visual_share", m.visualShare],
        ["visual_share_first", m.visualShareFirst],
      ];
      for (const [metric, value] of measures) {
        if (typeof value === "number") rows.push({ task, arm, seed, metric, value });
      }
      if (manifest.files["floor.json"] && !floors[task]) {
        floors[task] = floorOf(await cache.readJson<TaskFloor>(stage.key, "floor.json"));
      }
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
      const predictions = await readPredictions(cache, stage.key, manifest);
      const buckets = new Map<string, { correct: number; n: number }>();
      for (const p of predictions) {
        const b = buckets.get(String(p.difficulty)) ?? { correct: 0, n: 0 };
        b.n++;
        if (p.correct) b.correct++;
        buckets.set(String(p.difficulty), b);
      }
      const outcomes = predictions.map(outcomeOf);
      for (const [difficulty, b] of buckets) breakdown.push({ arm, seed, difficulty, ...b });
      if (outcomes.length > 0) items.push({ task, arm, seed, items: outcomes });
    } else if (stage.kind === "pretrain" && manifest.files["skills.json"]) {
      const skills = await cache.readJson<BaseSkills["skills"]>(stage.key, "skills.json");
      baseSkills.push({ stage: stage.id, skills });
    } else if (stage.kind === "finetune") {
      const log = await cache.readJson<{ log: LossPoint[]; learning?: LearningPoint[] }>(
        stage.key,
        "log.json",
      );
      // The live metrics' loss lines when the entry has them (the same points as log.json's,
      // with the learning rate and gradient norm beside them), else log.json's.
      const metrics = manifest.files["metrics.jsonl"]
        ? new TextDecoder().decode(await cache.readBytes(stage.key, "metrics.jsonl"))
          .split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as LossPoint)
          .filter((p) => typeof p.total === "number")
        : undefined;
      for (const point of metrics ?? log.log) {
        const { step, ntp, klal, total } = point;
        curves.push({ arm, seed, step, ntp, klal, total });
      }
      for (const point of log.learning ?? []) learning.push({ arm, seed, ...point });
    }
  }
  return {
    spec,
    rows,
    curves,
    stages: stageInfo,
    backend: [...backends].sort().join(", ") || "none",
    ...(reasons.size > 0 ? { backendReason: [...reasons].join("; ") } : {}),
    createdAt: new Date().toISOString(),
    learning,
    figures,
    heads,
    breakdown,
    floors,
    items,
    ...(baseSkills.length > 0 ? { baseSkills } : {}),
    ...(testSets.size > 0 ? { testSets: [...testSets.values()] } : {}),
    ...(testPrompts.length > 0 && pretrainPrompts.length > 0
      ? { promptOverlap: { [spec.task.name]: promptOverlap(testPrompts, pretrainPrompts) } }
      : {}),
  };
}

/** What the report keeps of an eval entry's floor.json. */
function floorOf(f: TaskFloor): TaskFloor {
  return {
    answer: f.answer,
    accuracy: f.accuracy,
    kind: f.kind,
    ...(f.shortcut ? { shortcut: f.shortcut } : {}),
    ...(f.questionBlind ? { questionBlind: f.questionBlind } : {}),
  };
}

/** One eval entry of a further test set into `set`: what its summary reads. */
async function readFurtherEval(
  cache: Cache,
  stage: ResolvedStage,
  task: string,
  manifest: Manifest,
  set: TestSetInput,
): Promise<void> {
  const [arm, seed] = [stage.arm!, stage.seed!];
  const m = await cache.readJson<EvalMetrics>(stage.key, "metrics.json");
  const push = (metric: string, value: number | undefined) => {
    if (typeof value === "number") set.rows.push({ task, arm, seed, metric, value });
  };
  push("accuracy", m.accuracy);
  for (const [metric, value] of Object.entries(m.extra ?? {})) push(metric, value);
  push("target_attention", m.targetAttention);
  push("target_attention_ratio", m.targetAttentionRatio);
  push("target_attention_ratio_first", m.targetAttentionRatioFirst);
  if (manifest.files["floor.json"] && !set.floor) {
    set.floor = floorOf(await cache.readJson<TaskFloor>(stage.key, "floor.json"));
  }
  const items = (await readPredictions(cache, stage.key, manifest)).map(outcomeOf);
  if (items.length > 0) set.items.push({ task, arm, seed, items });
}

/** One line of an eval entry's predictions.jsonl (the fields the report reads). */
interface PredictionLine {
  index: number;
  answer: string;
  prediction: string;
  difficulty: string | number;
  correct: boolean;
  image?: string;
}

/** An eval entry's per-item predictions, in test-set order (none without the file). */
async function readPredictions(
  cache: Cache,
  key: string,
  manifest: Manifest,
): Promise<PredictionLine[]> {
  if (!manifest.files["predictions.jsonl"]) return [];
  const text = new TextDecoder().decode(await cache.readBytes(key, "predictions.jsonl"));
  return text.split("\n").filter((l) => l.trim().length > 0).map((l) => JSON.parse(l));
}

/** A prediction as the report's item outcome (the image only where items share one). */
function outcomeOf(p: PredictionLine): ItemSet["items"][number] {
  return {
    index: p.index,
    answer: p.answer,
    prediction: p.prediction,
    correct: p.correct,
    ...(p.image === undefined ? {} : { image: p.image }),
  };
}

/** Write the report of `extra.stages` into the entry. */
export async function runReport(
  stage: ResolvedStage<"report">,
  out: EntryWriter,
  ctx: StageContext,
  extra: ReportExtra,
) {
  const spec = stage.params.spec;
  const input = {
    ...await reportInput(spec, extra.stages, ctx.cache, extra.statuses),
    ...(stage.params.vocabulary ? { vocabulary: stage.params.vocabulary } : {}),
  };
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
