/**
 * Collecting the paper record from the experiments' reports (their results.json) and, for the
 * majority-answer baseline and the fixed-answer floor, the test sets and eval entries in the
 * cache.
 */

import type { Cache } from "../../cache/store.ts";
import type { Spec } from "../../spec/types.ts";
import { ci95, holmAdjust, pairedTTest } from "../stats.ts";
import { POSTER_TABLE1, POSTER_TABLE2 } from "../poster.ts";
import type { LearningRow, ResultRow, StageInfo, TaskFloor } from "../types.ts";
import type {
  ArmRecord,
  ComparisonRecord,
  Investigation,
  LearningRecord,
  PaperRecord,
  PaperSources,
  ProbeArm,
  ReferenceRecord,
  RegimeRecord,
  SeedStats,
  SourceRecord,
  Table1Record,
} from "./types.ts";

/**
 * The 64 px record's experiments (experiments/paper/64px/*.yaml): one per task for Table 1, the
 * λ sweep (a sweep over two tasks: its per-task reports are read) and the layer ablation.
 */
export const RECORD_SOURCES: PaperSources = {
  table1: [
    "paper-64px-grid-patch",
    "paper-64px-line-intersection",
    "paper-64px-line-tracing",
    "paper-64px-pixmo-points",
    "paper-64px-refcoco",
  ],
  lambda: "paper-64px-lambda",
  layers: "paper-64px-layers",
  long: "paper-64px-efficiency",
  tracing: "paper-64px-line-tracing-probe",
};

/** The fields of an experiment's results.json that the record reads. */
interface ExperimentResults {
  experiment: string;
  createdAt: string;
  backend: string;
  spec: Spec;
  rows: ResultRow[];
  stages: StageInfo[];
  validation?: LearningRow[];
  /** Per task, the fixed-answer floor its eval entries wrote (floor.json). */
  floors?: Record<string, TaskFloor>;
  /** Bootstrap intervals the experiment's own report computed (seeds, then test items). */
  table1?: {
    task: string;
    base?: ArmInterval | null;
    ntp?: ArmInterval | null;
    klal?: ArmInterval | null;
    controls?: ArmInterval[];
  }[];
  statistics?: {
    comparisons?: {
      task: string;
      arms: [string, string];
      bootstrap: { low: number; high: number } | null;
    }[];
  };
}

/** An arm's accuracy entry in an experiment's results.json table1. */
interface ArmInterval {
  arm: string;
  bootstrap: { estimate: number; low: number; high: number } | null;
}

/** The per-experiment reports of a sweep named `name` (`name--label`), sorted by name. */
async function sweepReports(reportsDir: string, name: string): Promise<ExperimentResults[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(reportsDir)) {
    if (entry.isDirectory && entry.name.startsWith(`${name}--`)) names.push(entry.name);
  }
  if (names.length === 0) {
    throw new MissingReport(
      `no report ${reportsDir}/${name}--*: run \`deno task experiment\` on the spec named ${name}`,
    );
  }
  return await Promise.all(names.sort().map((n) => readResults(reportsDir, n)));
}

function probeArm(
  results: ExperimentResults,
  arm: string,
  task = tasksOf(results)[0],
): ProbeArm | null {
  const rec = armRecord(results, task, arm);
  if (!rec) return null;
  const bySteps = new Map<number, { accuracy: number[]; ratio: number[] }>();
  for (const row of results.validation ?? []) {
    if (row.arm !== arm) continue;
    const at = bySteps.get(row.step) ?? { accuracy: [], ratio: [] };
    at.accuracy.push(row.accuracy);
    at.ratio.push(row.targetAttentionRatio);
    bySteps.set(row.step, at);
  }
  const avg = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const curve = [...bySteps.entries()].sort((a, b) => a[0] - b[0])
    .map(([step, v]) => ({ step, accuracy: avg(v.accuracy), ratio: avg(v.ratio) }));
  return { arm, accuracy: rec.accuracy, ratio: rec.ratio, curve };
}

/**
 * An investigation run as a sweep (one report per point), read from its reports (each added
 * to `used`): its experiment, the training steps and test seed its points share (the first
 * point's), and its results by task, gathered by `byTask`.
 */
async function sweepInvestigation<T>(
  reportsDir: string,
  experiment: string,
  used: ExperimentResults[],
  byTask: (reports: ExperimentResults[]) => T,
) {
  const reports = await reportOrSweep(reportsDir, experiment);
  used.push(...reports);
  const spec = reports[0].spec;
  return {
    experiment,
    steps: spec.train.steps,
    testSeed: spec.task.test_seed,
    tasks: byTask(reports),
  };
}

/** The longer-training investigation: its NTP and KLAL+NTP arms, by task. */
function longTasks(reports: ExperimentResults[]): NonNullable<Investigation["long"]>["tasks"] {
  const tasks: NonNullable<Investigation["long"]>["tasks"] = {};
  for (const r of reports) {
    const cols = columnArms(r.spec);
    for (const task of tasksOf(r)) {
      tasks[task] = {
        ntp: cols.ntp ? probeArm(r, cols.ntp, task) : null,
        klal: cols.klal ? probeArm(r, cols.klal, task) : null,
      };
    }
  }
  return tasks;
}

/** The sharpness investigation: its KLAL+NTP arm at each task.params.sigma, by task. */
function sigmaTasks(reports: ExperimentResults[]): NonNullable<Investigation["sigma"]>["tasks"] {
  const tasks: NonNullable<Investigation["sigma"]>["tasks"] = {};
  for (const r of reports) {
    const task = tasksOf(r)[0];
    const value = Number((r.spec.task.params as Record<string, unknown> | undefined)?.sigma);
    const klal = columnArms(r.spec).klal;
    const arm = klal ? probeArm(r, klal) : null;
    if (!arm || !Number.isFinite(value)) continue;
    tasks[task] ??= { values: [], points: {} };
    tasks[task].points[String(value)] = arm;
    tasks[task].values.push(value);
  }
  for (const t of Object.values(tasks)) t.values.sort((a, b) => a - b);
  return tasks;
}

async function collectInvestigation(
  reportsDir: string,
  sources: PaperSources,
  cache: Cache | undefined,
): Promise<{ investigation: Investigation; used: ExperimentResults[] }> {
  const used: ExperimentResults[] = [];
  const long = sources.long
    ? await sweepInvestigation(reportsDir, sources.long, used, longTasks)
    : null;
  const sigma = sources.sigma
    ? await sweepInvestigation(reportsDir, sources.sigma, used, sigmaTasks)
    : null;
  const tracing = sources.tracing
    ? await sweepInvestigation(reportsDir, sources.tracing, used, longTasks)
    : null;
  let confirm: Investigation["confirm"] = null;
  if (sources.confirm) {
    const r = await readResults(reportsDir, sources.confirm);
    used.push(r);
    confirm = {
      experiment: sources.confirm,
      steps: r.spec.train.steps,
      params: (r.spec.task.params ?? {}) as Record<string, unknown>,
      ...await buildTable1(r, cache),
    };
  }
  return { investigation: { long, sigma, tracing, confirm }, used };
}

/** A missing or unreadable experiment report (exit 1 from the CLI). */
export class MissingReport extends Error {}

/**
 * The per-point reports of the sweep `name` (`name--label`: each has one task and its own
 * learning curves), or the report `name` itself when it is not a sweep.
 */
async function reportOrSweep(reportsDir: string, name: string): Promise<ExperimentResults[]> {
  try {
    return await sweepReports(reportsDir, name);
  } catch (e) {
    if (e instanceof MissingReport) return [await readResults(reportsDir, name)];
    throw e;
  }
}

async function readResults(reportsDir: string, name: string): Promise<ExperimentResults> {
  const path = `${reportsDir}/${name}/results.json`;
  try {
    return JSON.parse(await Deno.readTextFile(path)) as ExperimentResults;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new MissingReport(
        `${path} not found: run \`deno task experiment\` on the spec named ${name} (or ` +
          `\`deno task report ${name}\` if its stages are cached)`,
      );
    }
    throw e;
  }
}

function seedStats(rows: readonly ResultRow[]): SeedStats {
  const sorted = [...rows].sort((a, b) => a.seed - b.seed);
  const values = sorted.map((r) => r.value);
  const ci = ci95(values);
  return {
    mean: ci.mean,
    halfWidth: ci.halfWidth ?? null,
    n: values.length,
    seeds: sorted.map((r) => r.seed),
    values,
  };
}

function armLayers(spec: Spec, arm: string): number[] {
  const a = spec.arms[arm];
  if (!a || a.lambda === 0) return [];
  return a.layers === "all"
    ? Array.from({ length: spec.model.layers }, (_, i) => i)
    : [...a.layers].sort((x, y) => x - y);
}

function armRecord(results: ExperimentResults, task: string, arm: string): ArmRecord | null {
  const of = (metric: string) =>
    results.rows.filter((r) => r.task === task && r.arm === arm && r.metric === metric);
  const accuracy = of("accuracy");
  if (accuracy.length === 0) return null;
  const armSpec = results.spec.arms[arm];
  const entry = results.table1?.find((t) => t.task === task);
  const interval = entry
    ? [entry.base, entry.ntp, entry.klal, ...(entry.controls ?? [])].find((a) => a?.arm === arm)
    : undefined;
  const optional = (metric: string) => {
    const found = of(metric);
    return found.length > 0 ? { [metricField[metric]]: seedStats(found) } : {};
  };
  return {
    arm,
    lambda: armSpec?.finetune ? armSpec.lambda : 0,
    layers: armLayers(results.spec, arm),
    accuracy: seedStats(accuracy),
    ratio: seedStats(of("target_attention_ratio")),
    ...optional("target_attention_ratio_first"),
    ...optional("visual_share"),
    ...(interval ? { bootstrap: interval.bootstrap } : {}),
  };
}

/** The ArmRecord field of each optional per-seed metric. */
const metricField: Record<string, "ratioFirst" | "visualShare"> = {
  target_attention_ratio_first: "ratioFirst",
  visual_share: "visualShare",
};

function tasksOf(results: ExperimentResults): string[] {
  const seen: string[] = [];
  for (const r of results.rows) if (!seen.includes(r.task)) seen.push(r.task);
  return seen;
}

/**
 * Arms of each paper column: Base (no fine-tuning), NTP (λ = 0), KLAL+NTP (λ > 0 toward the
 * task's own maps, on the attention), and the controls: the shuffled-map arm and the
 * pointer-head arm.
 */
function columnArms(
  spec: Spec,
): { base?: string; ntp?: string; klal?: string; shuffled?: string; pointer?: string } {
  const entries = Object.entries(spec.arms);
  const find = (test: (a: Spec["arms"][string]) => boolean) =>
    entries.find(([, a]) => test(a))?.[0];
  return {
    base: find((a) => !a.finetune),
    ntp: find((a) => a.finetune && a.lambda === 0),
    // Reports written before the control arms existed have neither key: read them as the
    // task's maps on the attention.
    klal: find((a) =>
      a.finetune && a.lambda > 0 && a.target !== "shuffled" && a.target !== "uniform" &&
      a.supervision !== "pointer"
    ),
    shuffled: find((a) => a.finetune && a.lambda > 0 && a.target === "shuffled"),
    pointer: find((a) => a.finetune && a.lambda > 0 && a.supervision === "pointer"),
  };
}

/** Share (%) of the most common answer among a data stage's samples.jsonl lines. */
export function majorityShare(samplesJsonl: string): number {
  const counts = new Map<string, number>();
  let n = 0;
  for (const line of samplesJsonl.split("\n")) {
    if (line.trim() === "") continue;
    const answer = String(JSON.parse(line).answer);
    counts.set(answer, (counts.get(answer) ?? 0) + 1);
    n++;
  }
  if (n === 0) return NaN;
  return 100 * Math.max(...counts.values()) / n;
}

/** Tasks scored by exact match of the answer text, where "always the most common answer" is a baseline. */
const EXACT_MATCH_TASKS = new Set(["grid-patch", "line-intersection", "line-tracing"]);

async function majorityOf(
  cache: Cache | undefined,
  results: ExperimentResults,
  task: string,
): Promise<number | null> {
  if (!cache || !EXACT_MATCH_TASKS.has(task)) return null;
  const testSeed = results.spec.task.test_seed;
  const stage = results.stages.find((s) =>
    s.stage.endsWith(`data:${task}:test:s${testSeed}`) ||
    s.stage === `data:${task}:test:s${testSeed}`
  );
  if (!stage || !await cache.has(stage.key)) return null;
  return majorityShare(new TextDecoder().decode(await cache.readBytes(stage.key, "samples.jsonl")));
}

/**
 * The fixed-answer floor of `task`'s test set: from the report (which gathered it from the eval
 * entries' floor.json), else from floor.json of an eval entry in the cache that evaluated on
 * that test set (same stage-name prefix as its data stage). null when neither has it.
 */
async function floorOf(
  cache: Cache | undefined,
  results: ExperimentResults,
  task: string,
): Promise<TaskFloor | null> {
  const reported = results.floors?.[task];
  if (reported) {
    return { answer: reported.answer, accuracy: reported.accuracy, kind: reported.kind };
  }
  if (!cache) return null;
  const suffix = `data:${task}:test:s${results.spec.task.test_seed}`;
  const data = results.stages.find((s) => s.stage.endsWith(suffix));
  if (!data) return null;
  const prefix = data.stage.slice(0, data.stage.length - suffix.length);
  for (const s of results.stages) {
    if (!s.stage.startsWith(`${prefix}eval:`) || !await cache.has(s.key)) continue;
    const f = await cache.readJson<TaskFloor>(s.key, "floor.json").catch(() => null);
    if (f) return { answer: f.answer, accuracy: f.accuracy, kind: f.kind };
  }
  return null;
}

/** Points NTP's mean must clear the floor by to count as learning (the regime's bar). */
export const NTP_MARGIN = 5;

/** The paper's regime per task: the Base above the floor, NTP `NTP_MARGIN` points above it. */
export function regimeOf(tasks: string[], table1: Record<string, Table1Record>): RegimeRecord {
  const perTask: RegimeRecord["perTask"] = {};
  for (const task of tasks) {
    const row = table1[task];
    const floor = row?.floor?.accuracy;
    const known = floor !== undefined && Number.isFinite(floor);
    const base = row?.base;
    const baseOverFloor = known && base ? base.accuracy.mean - floor : null;
    const baseLow = base?.bootstrap?.low ?? base?.accuracy.mean;
    const ntpOverFloor = known && row?.ntp ? row.ntp.accuracy.mean - floor : null;
    perTask[task] = {
      baseOverFloor,
      baseAbove: known && baseLow !== undefined && baseLow > floor,
      ntpOverFloor,
      // A hair of slack: 8.2 - 3.2 is 4.999... in floating point.
      ntpAbove: ntpOverFloor !== null && ntpOverFloor >= NTP_MARGIN - 1e-9,
    };
  }
  const baseAbove = tasks.filter((t) => perTask[t].baseAbove);
  const ntpAbove = tasks.filter((t) => perTask[t].ntpAbove);
  return {
    ntpMargin: NTP_MARGIN,
    perTask,
    baseAbove,
    ntpAbove,
    baseAboveCount: baseAbove.length,
    ntpAboveCount: ntpAbove.length,
  };
}

/**
 * KLAL+NTP against the larger of the floor and NTP's mean: a paired t-test over seeds when NTP
 * is the larger (the gain), a one-sample t-test against the constant when the floor is.
 */
export function referenceOf(
  floor: TaskFloor | null,
  ntp: ArmRecord | null,
  klal: ArmRecord | null,
  gain: Table1Record["gain"],
): ReferenceRecord | null {
  if (!floor || !Number.isFinite(floor.accuracy) || !ntp || !klal) return null;
  const ntpMean = ntp.accuracy.mean;
  const klalMean = klal.accuracy.mean;
  if (floor.accuracy > ntpMean) {
    const values = klal.accuracy.values;
    const test = pairedTTest(values, values.map(() => floor.accuracy));
    return {
      against: "floor",
      accuracy: floor.accuracy,
      ntpOverFloor: ntpMean - floor.accuracy,
      klalOverReference: klalMean - floor.accuracy,
      p: test.p ?? null,
    };
  }
  return {
    against: "NTP",
    accuracy: ntpMean,
    ntpOverFloor: ntpMean - floor.accuracy,
    klalOverReference: klalMean - ntpMean,
    p: gain?.p ?? null,
  };
}

function sourceRecord(part: SourceRecord["part"], r: ExperimentResults): SourceRecord {
  return {
    part,
    experiment: r.experiment,
    createdAt: r.createdAt,
    backend: r.backend,
    stagesRan: r.stages.filter((s) => s.status === "ran").length,
    stagesCached: r.stages.filter((s) => s.status === "cached").length,
    stageSeconds: r.stages.reduce((sum, s) => sum + s.seconds, 0),
  };
}

/** Read the model's CPU name (Linux), for the record's hardware line. */
async function cpuName(): Promise<string> {
  try {
    const text = await Deno.readTextFile("/proc/cpuinfo");
    return text.match(/^model name\s*:\s*(.+)$/m)?.[1].trim() ?? "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}

/** Gather the record from the experiments' reports (and the cache, for test-set answers). */
export async function collectPaper(options: {
  reportsDir: string;
  sources: PaperSources;
  cache?: Cache;
  gpu?: string | null;
}): Promise<PaperRecord> {
  const { reportsDir, sources, cache } = options;
  const t1List = await Promise.all(
    (Array.isArray(sources.table1) ? sources.table1 : [sources.table1]).map((name) =>
      readResults(reportsDir, name)
    ),
  );
  const t1 = t1List[0];
  const lambdaReports = sources.lambda ? await reportOrSweep(reportsDir, sources.lambda) : [];
  const layersResults = sources.layers ? await readResults(reportsDir, sources.layers) : null;

  const extra: [SourceRecord["part"], ExperimentResults][] = [];
  const { tasks, table1 } = await buildTable1(t1List, cache);
  const learning: Record<string, LearningRecord> = {};
  for (const r of t1List) Object.assign(learning, buildLearning(r));
  let table1Long: PaperRecord["table1Long"] = null;
  if (sources.table1Long) {
    const r = await readResults(reportsDir, sources.table1Long);
    const built = await buildTable1(r, cache);
    table1Long = {
      experiment: sources.table1Long,
      steps: r.spec.train.steps,
      samplesSeen: r.spec.train.steps * r.spec.train.batch_size,
      ...built,
    };
    extra.push(["table1Long", r]);
  }

  const lambda: PaperRecord["lambda"] = {};
  for (const r of lambdaReports) Object.assign(lambda, buildLambda(r));
  let lambdaLong: PaperRecord["lambdaLong"] = null;
  if (sources.lambdaLong) {
    const r = await readResults(reportsDir, sources.lambdaLong);
    lambdaLong = {
      experiment: sources.lambdaLong,
      steps: r.spec.train.steps,
      tasks: buildLambda(r),
    };
    extra.push(["lambdaLong", r]);
  }

  let layers: PaperRecord["layers"] = null;
  if (layersResults) {
    const task = tasksOf(layersResults)[0];
    const depth = layersResults.spec.model.layers;
    const cols = columnArms(layersResults.spec);
    const points: Record<string, ArmRecord> = {};
    for (const arm of Object.keys(layersResults.spec.arms)) {
      const a = layersResults.spec.arms[arm];
      if (!a.finetune || a.lambda === 0) continue;
      const rec = armRecord(layersResults, task, arm);
      if (rec) points[layerSetName(rec.layers, depth)] = rec;
    }
    const order = ["first-half", "second-half", "all"].filter((k) => k in points);
    for (const k of Object.keys(points)) if (!order.includes(k)) order.push(k);
    layers = {
      task,
      ntp: cols.ntp ? armRecord(layersResults, task, cols.ntp) : null,
      points,
      order,
    };
  }

  const { investigation, used } = await collectInvestigation(reportsDir, sources, cache);
  const parts: [SourceRecord["part"], ExperimentResults | null][] = [
    ...t1List.map((r): [SourceRecord["part"], ExperimentResults] => ["table1", r]),
    ...lambdaReports.map((r): [SourceRecord["part"], ExperimentResults] => ["lambda", r]),
    ["layers", layersResults],
    ...extra,
    ...used.map((r): [SourceRecord["part"], ExperimentResults] => ["investigation", r]),
  ];
  const sourceList = parts.filter((p): p is [SourceRecord["part"], ExperimentResults] => !!p[1])
    .map(([part, r]) => sourceRecord(part, r));
  const seconds = new Map<string, number>();
  for (const [, r] of parts) for (const s of r?.stages ?? []) seconds.set(s.key, s.seconds);
  const spec = t1.spec;
  const side = spec.task.image_size / spec.model.patch_size;
  return {
    record: "paper",
    createdAt: new Date().toISOString(),
    hardware: {
      cpu: await cpuName(),
      cores: navigator.hardwareConcurrency,
      gpu: options.gpu ?? null,
    },
    backend: t1.backend,
    sources: sourceList,
    computeSeconds: [...seconds.values()].reduce((a, b) => a + b, 0),
    setup: {
      imageSize: spec.task.image_size,
      patchSize: spec.model.patch_size,
      visualTokens: side * side,
      dModel: spec.model.d_model,
      layers: spec.model.layers,
      heads: spec.model.heads,
      baseSteps: spec.base.steps,
      baseLambda: spec.base.lambda ?? 0,
      baseKinds: (spec.base.mix?.kinds as string[] | undefined)?.join(", ") ?? null,
      baseSamples: spec.base.train,
      trainSteps: spec.train.steps,
      batchSize: spec.train.batch_size,
      lr: spec.train.lr,
      trainSamples: spec.task.train,
      testSamples: spec.task.test,
      testSeed: spec.task.test_seed,
      seeds: spec.seeds,
      samplesSeen: spec.train.steps * spec.train.batch_size,
      floorNote: "Floors were computed on each task's own test set by the evaluation stages " +
        "that scored the arms (their floor.json), with the generators that produced the record.",
    },
    tasks,
    table1,
    regime: regimeOf(tasks, table1),
    learning,
    table2: {
      lineIntersection: table1["line-intersection"]?.klal?.accuracy ?? null,
      lineTracing: table1["line-tracing"]?.klal?.accuracy ?? null,
      long: table1Long
        ? {
          steps: table1Long.steps,
          lineIntersection: table1Long.table1["line-intersection"]?.klal?.accuracy ?? null,
          lineTracing: table1Long.table1["line-tracing"]?.klal?.accuracy ?? null,
        }
        : null,
      quoted: POSTER_TABLE2,
    },
    table1Long,
    lambda,
    lambdaLong,
    layers,
    investigation,
  };
}

/** Per task, one point per λ of an experiment whose arms differ in λ (λ = 0 is NTP). */
function buildLambda(results: ExperimentResults): PaperRecord["lambda"] {
  const lambda: PaperRecord["lambda"] = {};
  for (const task of tasksOf(results)) {
    const points: Record<string, ArmRecord> = {};
    for (const arm of Object.keys(results.spec.arms)) {
      const a = results.spec.arms[arm];
      if (!a.finetune) continue;
      const rec = armRecord(results, task, arm);
      if (rec) points[String(a.lambda)] = rec;
    }
    const values = Object.values(points).map((p) => p.lambda).sort((a, b) => a - b);
    lambda[task] = { values, points };
  }
  return lambda;
}

/** KLAL+NTP against `other`, paired over the seeds both have (Holm p filled in later). */
function compare(
  results: ExperimentResults,
  task: string,
  klal: ArmRecord,
  other: ArmRecord,
): ComparisonRecord {
  const seeds = klal.accuracy.seeds.filter((s) => other.accuracy.seeds.includes(s));
  const pick = (a: ArmRecord) => seeds.map((s) => a.accuracy.values[a.accuracy.seeds.indexOf(s)]);
  const test = pairedTTest(pick(klal), pick(other));
  const reported = results.statistics?.comparisons?.find((c) =>
    c.task === task && c.arms[0] === klal.arm && c.arms[1] === other.arm
  );
  return {
    against: other.arm,
    meanDiff: test.meanDiff,
    p: test.p ?? null,
    pHolm: null,
    bootstrap: reported?.bootstrap
      ? { low: reported.bootstrap.low, high: reported.bootstrap.high }
      : null,
    seeds,
  };
}

/**
 * Table 1's rows (poster order) from one or more experiments' results (a task's row comes from
 * the first experiment that has it), with Holm-adjusted p over every comparison in the table.
 */
async function buildTable1(
  sources: ExperimentResults | ExperimentResults[],
  cache: Cache | undefined,
): Promise<{ tasks: string[]; table1: Record<string, Table1Record> }> {
  const list = Array.isArray(sources) ? sources : [sources];
  const order = Object.keys(POSTER_TABLE1);
  const owner = new Map<string, ExperimentResults>();
  for (const r of list) for (const task of tasksOf(r)) if (!owner.has(task)) owner.set(task, r);
  const tasks = [...owner.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b));
  const table1: Record<string, Table1Record> = {};
  for (const task of tasks) {
    const t1 = owner.get(task)!;
    const columns = columnArms(t1.spec);
    const get = (arm?: string) => (arm ? armRecord(t1, task, arm) : null);
    const base = get(columns.base), ntp = get(columns.ntp), klal = get(columns.klal);
    const shuffled = get(columns.shuffled), pointer = get(columns.pointer);
    let gain: Table1Record["gain"] = null;
    const comparisons: ComparisonRecord[] = [];
    if (klal) {
      for (const other of [ntp, shuffled, pointer]) {
        if (other) comparisons.push(compare(t1, task, klal, other));
      }
    }
    if (ntp && klal) {
      const c = comparisons[0];
      gain = { meanDiff: c.meanDiff, p: c.p, seeds: c.seeds };
    }
    const poster = POSTER_TABLE1[task];
    const floor = await floorOf(cache, t1, task);
    table1[task] = {
      label: poster?.label ?? task,
      majority: await majorityOf(cache, t1, task),
      floor,
      reference: referenceOf(floor, ntp, klal, gain),
      base,
      ntp,
      klal,
      shuffled,
      pointer,
      gain,
      comparisons,
      poster: poster ? { base: poster.base, ntp: poster.ntp, klal: poster.klal } : null,
    };
  }
  // One Holm family: every comparison of the table.
  const all = tasks.flatMap((t) => table1[t].comparisons ?? []);
  const adjusted = holmAdjust(all.map((c) => c.p ?? undefined));
  all.forEach((c, i) => (c.pHolm = adjusted[i] ?? null));
  return { tasks, table1 };
}

/** The validation learning curves an experiment logged (eval_every), and steps to NTP's end. */
function buildLearning(results: ExperimentResults): Record<string, LearningRecord> {
  const out: Record<string, LearningRecord> = {};
  const rows = results.validation ?? [];
  if (rows.length === 0) return out;
  const task = tasksOf(results)[0];
  const columns = columnArms(results.spec);
  const curves: LearningRecord["curves"] = {};
  const bySeed = new Map<string, Map<number, LearningRow[]>>();
  for (const row of rows) {
    const arm = bySeed.get(row.arm) ?? new Map<number, LearningRow[]>();
    arm.set(row.seed, [...(arm.get(row.seed) ?? []), row]);
    bySeed.set(row.arm, arm);
  }
  for (const [arm, seeds] of bySeed) {
    const steps = new Map<number, { accuracy: number[]; ratio: number[] }>();
    for (const points of seeds.values()) {
      for (const p of points) {
        const at = steps.get(p.step) ?? { accuracy: [], ratio: [] };
        at.accuracy.push(p.accuracy);
        at.ratio.push(p.targetAttentionRatio);
        steps.set(p.step, at);
      }
    }
    const avg = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    curves[arm] = [...steps.entries()].sort((a, b) => a[0] - b[0])
      .map(([step, v]) => ({ step, accuracy: avg(v.accuracy), ratio: avg(v.ratio) }));
  }
  const finals = (arm: string) =>
    [...bySeed.get(arm)!.values()].map((points) =>
      points.reduce((a, b) => (b.step > a.step ? b : a)).accuracy
    );
  const ntp = columns.ntp && bySeed.has(columns.ntp) ? columns.ntp : undefined;
  const threshold = ntp ? finals(ntp).reduce((a, b) => a + b, 0) / finals(ntp).length : null;
  const stepsToThreshold: Record<string, (number | null)[]> = {};
  if (threshold !== null) {
    for (const [arm, seeds] of bySeed) {
      stepsToThreshold[arm] = [...seeds.entries()].sort((a, b) => a[0] - b[0]).map(([, pts]) =>
        [...pts].sort((a, b) => a.step - b.step).find((p) => p.accuracy >= threshold - 1e-9)
          ?.step ?? null
      );
    }
  }
  // On the mean curves: NTP's reaches its own final mean by its last step at the latest.
  const curveSteps = (arm?: string) =>
    threshold === null || !arm || !curves[arm]
      ? null
      : curves[arm].find((p) => p.accuracy >= threshold - 1e-9)?.step ?? null;
  const klalSteps = curveSteps(columns.klal), ntpSteps = curveSteps(ntp);
  out[task] = {
    experiment: results.experiment,
    steps: results.spec.train.steps,
    curves,
    threshold,
    stepsToThreshold,
    klalOverNtpSteps: klalSteps !== null && ntpSteps ? klalSteps / ntpSteps : null,
  };
  return out;
}

/** "first-half", "second-half", "all", or the layer list, for a supervised layer set. */
export function layerSetName(layers: readonly number[], depth: number): string {
  const half = Math.floor(depth / 2);
  const same = (want: number[]) =>
    want.length === layers.length && want.every((v, i) => layers[i] === v);
  const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
  if (same(range(0, depth))) return "all";
  if (same(range(0, half))) return "first-half";
  if (same(range(half, depth))) return "second-half";
  return `layers-${layers.join("-")}`;
}
