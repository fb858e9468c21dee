/**
 * The paper record, `reports/paper/`: one committed results file that gathers Table 1 (every
 * task's Base, NTP and KLAL+NTP arms), the λ sweep and the per-layer ablation from the
 * experiments that ran them, plus everything rendered from it: `table.md`, `README.md` (a
 * short paper section whose every number is a placeholder filled from `results.json`) and
 * the key figures as SVG.
 *
 *   deno task report paper             rebuild table.md, README.md, figures/ from results.json
 *   deno task report paper --collect   first gather results.json from the experiments' reports
 *
 * `README.src.md` is the write-up's source: prose plus `{{path:format}}` placeholders, where
 * `path` walks results.json with `/` (e.g. `table1/grid-patch/klal/mean`) and `format` is the
 * number of decimals, `p` (a p-value), `ci` (mean ± half-width (n=...)), `signed` (+1.2),
 * `list` (an array, comma-separated) or `s` (as is). The
 * source may hold no number of its own outside placeholders (checked), so the README cannot
 * drift from the record.
 */

import type { Cache } from "./cache.ts";
import {
  formatP,
  type LearningRow,
  POSTER_TABLE1,
  POSTER_TABLE2,
  type PosterTable2Row,
  renderChartSvg,
  type ResultRow,
  type StageInfo,
} from "./report.ts";
import type { Spec } from "./spec_types.ts";
import { ci95, pairedTTest } from "./stats.ts";

/** Accuracy (or another metric) of one arm over seeds: mean, 95% t-interval, the raw values. */
export interface SeedStats {
  mean: number;
  /** null when n < 2. */
  halfWidth: number | null;
  n: number;
  seeds: number[];
  values: number[];
}

/** One arm of one task: held-out accuracy % and the target attention ratio (1 = chance). */
export interface ArmRecord {
  arm: string;
  lambda: number;
  layers: number[];
  accuracy: SeedStats;
  ratio: SeedStats;
}

/** One task's row of Table 1. */
export interface Table1Record {
  label: string;
  /** Share (%) of the most common answer in the test set: accuracy of always guessing it. */
  majority: number | null;
  base: ArmRecord | null;
  ntp: ArmRecord | null;
  klal: ArmRecord | null;
  /** KLAL+NTP minus NTP, paired over seeds. */
  gain: { meanDiff: number; p: number | null; seeds: number[] } | null;
  poster: { base: number; ntp: number; klal: number } | null;
}

/** Where a part of the record came from. */
export interface SourceRecord {
  part: "table1" | "table1Long" | "lambda" | "lambdaLong" | "layers" | "investigation";
  experiment: string;
  createdAt: string;
  backend: string;
  stagesRan: number;
  stagesCached: number;
  /** Sum of the seconds of every stage this experiment shows (ran or first computed). */
  stageSeconds: number;
}

/** `reports/paper/results.json`. */
export interface PaperRecord {
  record: "paper";
  createdAt: string;
  hardware: { cpu: string; cores: number; gpu: string | null };
  backend: string;
  sources: SourceRecord[];
  /** Stage seconds summed once per distinct cache key over all sources. */
  computeSeconds: number;
  setup: {
    imageSize: number;
    patchSize: number;
    visualTokens: number;
    dModel: number;
    layers: number;
    heads: number;
    baseSteps: number;
    trainSteps: number;
    batchSize: number;
    lr: number;
    trainSamples: number;
    testSamples: number;
    testSeed: number;
    seeds: number[];
    /** Samples seen in fine-tuning: steps x batch. */
    samplesSeen: number;
  };
  /** Task names in Table 1's order. */
  tasks: string[];
  table1: Record<string, Table1Record>;
  /** Table 1 again with longer fine-tuning (same setting otherwise), when it was run. */
  table1Long: {
    experiment: string;
    steps: number;
    samplesSeen: number;
    tasks: string[];
    table1: Record<string, Table1Record>;
  } | null;
  table2: {
    lineIntersection: SeedStats | null;
    lineTracing: SeedStats | null;
    /** The same from the longer Table 1, when it was run. */
    long:
      | { steps: number; lineIntersection: SeedStats | null; lineTracing: SeedStats | null }
      | null;
    quoted: readonly PosterTable2Row[];
  };
  /** Per task: one point per λ (λ = 0 is NTP), keyed by String(λ). */
  lambda: Record<string, { values: number[]; points: Record<string, ArmRecord> }>;
  /** The λ sweep again with longer fine-tuning, when it was run. */
  lambdaLong: {
    experiment: string;
    steps: number;
    tasks: Record<string, { values: number[]; points: Record<string, ArmRecord> }>;
  } | null;
  /** Where KLAL did not win: what was tried, on validation data. */
  investigation: Investigation;
  /** The per-layer ablation on one task: NTP, then KLAL on each layer set. */
  layers: {
    task: string;
    ntp: ArmRecord | null;
    points: Record<string, ArmRecord>;
    order: string[];
  } | null;
}

/** The experiments a record is collected from (their report names under reports/). */
export interface PaperSources {
  table1: string;
  /** Table 1 with longer fine-tuning. */
  table1Long?: string;
  lambda?: string;
  /** The λ sweep with longer fine-tuning. */
  lambdaLong?: string;
  layers?: string;
  /** Investigation: longer training (a task sweep; its per-task reports are read). */
  long?: string;
  /** Investigation: ground-truth sharpness (a sweep over task.params.sigma). */
  sigma?: string;
  /** Confirmation on the test seed of a validation finding (NTP and KLAL+NTP arms). */
  confirm?: string;
}

/** One arm's run in an investigation: final validation accuracy, ratio and the curve. */
export interface ProbeArm {
  arm: string;
  accuracy: SeedStats;
  ratio: SeedStats;
  /** Validation accuracy % and target attention ratio during fine-tuning (mean over seeds). */
  curve: { step: number; accuracy: number; ratio: number }[];
}

/** Investigations run on validation data (never the test seed). */
export interface Investigation {
  long: {
    experiment: string;
    steps: number;
    testSeed: number;
    tasks: Record<string, { ntp: ProbeArm | null; klal: ProbeArm | null }>;
  } | null;
  sigma: {
    experiment: string;
    steps: number;
    testSeed: number;
    tasks: Record<string, { values: number[]; points: Record<string, ProbeArm> }>;
  } | null;
  /** The confirmation run on the test seed: Table 1's columns for its task(s). */
  confirm: {
    experiment: string;
    steps: number;
    /** The task parameters it changed, as run (e.g. sigma). */
    params: Record<string, unknown>;
    tasks: string[];
    table1: Record<string, Table1Record>;
  } | null;
}

/** The CPU-scale experiments (experiments/paper/cpu-*.yaml): the default sources. */
export const CPU_SOURCES: PaperSources = {
  table1: "paper-cpu",
  table1Long: "paper-cpu-2400",
  lambda: "paper-cpu-lambda",
  lambdaLong: "paper-cpu-lambda-2400",
  layers: "paper-cpu-layers",
  long: "paper-cpu-long",
  sigma: "paper-cpu-sigma",
  confirm: "paper-cpu-li-sharp",
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

function probeArm(results: ExperimentResults, arm: string): ProbeArm | null {
  const task = tasksOf(results)[0];
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

async function collectInvestigation(
  reportsDir: string,
  sources: PaperSources,
  cache: Cache | undefined,
): Promise<{ investigation: Investigation; used: ExperimentResults[] }> {
  const used: ExperimentResults[] = [];
  let long: Investigation["long"] = null;
  if (sources.long) {
    const reports = await sweepReports(reportsDir, sources.long);
    used.push(...reports);
    const tasks: NonNullable<Investigation["long"]>["tasks"] = {};
    for (const r of reports) {
      const cols = columnArms(r.spec);
      tasks[tasksOf(r)[0]] = {
        ntp: cols.ntp ? probeArm(r, cols.ntp) : null,
        klal: cols.klal ? probeArm(r, cols.klal) : null,
      };
    }
    const spec = reports[0].spec;
    long = {
      experiment: sources.long,
      steps: spec.train.steps,
      testSeed: spec.task.test_seed,
      tasks,
    };
  }
  let sigma: Investigation["sigma"] = null;
  if (sources.sigma) {
    const reports = await sweepReports(reportsDir, sources.sigma);
    used.push(...reports);
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
    const spec = reports[0].spec;
    sigma = {
      experiment: sources.sigma,
      steps: spec.train.steps,
      testSeed: spec.task.test_seed,
      tasks,
    };
  }
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
  return { investigation: { long, sigma, confirm }, used };
}

/** A missing or unreadable experiment report (exit 1 from the CLI). */
export class MissingReport extends Error {}

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
  return {
    arm,
    lambda: armSpec?.finetune ? armSpec.lambda : 0,
    layers: armLayers(results.spec, arm),
    accuracy: seedStats(accuracy),
    ratio: seedStats(of("target_attention_ratio")),
  };
}

function tasksOf(results: ExperimentResults): string[] {
  const seen: string[] = [];
  for (const r of results.rows) if (!seen.includes(r.task)) seen.push(r.task);
  return seen;
}

/** Arms of each paper column: Base (no fine-tuning), NTP (λ = 0), KLAL+NTP (λ > 0). */
function columnArms(spec: Spec): { base?: string; ntp?: string; klal?: string } {
  const entries = Object.entries(spec.arms);
  return {
    base: entries.find(([, a]) => !a.finetune)?.[0],
    ntp: entries.find(([, a]) => a.finetune && a.lambda === 0)?.[0],
    klal: entries.find(([, a]) => a.finetune && a.lambda > 0)?.[0],
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
  const t1 = await readResults(reportsDir, sources.table1);
  const lambdaResults = sources.lambda ? await readResults(reportsDir, sources.lambda) : null;
  const layersResults = sources.layers ? await readResults(reportsDir, sources.layers) : null;

  const extra: [SourceRecord["part"], ExperimentResults][] = [];
  const { tasks, table1 } = await buildTable1(t1, cache);
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

  const lambda = lambdaResults ? buildLambda(lambdaResults) : {};
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
    ["table1", t1],
    ["lambda", lambdaResults],
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
      trainSteps: spec.train.steps,
      batchSize: spec.train.batch_size,
      lr: spec.train.lr,
      trainSamples: spec.task.train,
      testSamples: spec.task.test,
      testSeed: spec.task.test_seed,
      seeds: spec.seeds,
      samplesSeen: spec.train.steps * spec.train.batch_size,
    },
    tasks,
    table1,
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

/** Table 1's rows (poster order) from one experiment's results. */
async function buildTable1(
  t1: ExperimentResults,
  cache: Cache | undefined,
): Promise<{ tasks: string[]; table1: Record<string, Table1Record> }> {
  const columns = columnArms(t1.spec);
  const order = Object.keys(POSTER_TABLE1);
  const tasks = tasksOf(t1).sort((a, b) => order.indexOf(a) - order.indexOf(b));
  const table1: Record<string, Table1Record> = {};
  for (const task of tasks) {
    const get = (arm?: string) => (arm ? armRecord(t1, task, arm) : null);
    const base = get(columns.base), ntp = get(columns.ntp), klal = get(columns.klal);
    let gain: Table1Record["gain"] = null;
    if (ntp && klal) {
      const seeds = klal.accuracy.seeds.filter((s) => ntp.accuracy.seeds.includes(s));
      const pick = (a: ArmRecord) =>
        seeds.map((s) => a.accuracy.values[a.accuracy.seeds.indexOf(s)]);
      const test = pairedTTest(pick(klal), pick(ntp));
      gain = { meanDiff: test.meanDiff, p: test.p ?? null, seeds };
    }
    const poster = POSTER_TABLE1[task];
    table1[task] = {
      label: poster?.label ?? task,
      majority: await majorityOf(cache, t1, task),
      base,
      ntp,
      klal,
      gain,
      poster: poster ? { base: poster.base, ntp: poster.ntp, klal: poster.klal } : null,
    };
  }
  return { tasks, table1 };
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

// ---------------------------------------------------------------------------------------
// Rendering: every number comes from the record.

/** A value formatted as the README and tables show it. */
export function formatValue(value: unknown, format: string): string {
  if (format === "s") return String(value);
  if (format === "list") return Array.isArray(value) ? value.join(", ") : String(value);
  if (format === "p") return typeof value === "number" ? formatP(value) : "p undefined";
  if (format === "ci") {
    const s = value as SeedStats | null;
    if (!s) return "not run";
    const hw = s.halfWidth === null ? "" : ` ± ${s.halfWidth.toFixed(1)}`;
    return `${s.mean.toFixed(1)}${hw} (n=${s.n})`;
  }
  if (format === "signed") {
    const v = value as number;
    const text = Math.abs(v).toFixed(1);
    return text === "0.0" ? "0.0" : `${v > 0 ? "+" : "−"}${text}`;
  }
  if (/^\d$/.test(format)) {
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new Error(`expected a finite number for format ${format}, found ${String(value)}`);
    }
    return value.toFixed(Number(format));
  }
  throw new Error(`unknown format "${format}" (expected 0-9, p, ci, signed, list or s)`);
}

/** Walk `record` along a `/`-separated path; throws naming the first missing segment. */
export function lookup(record: unknown, path: string): unknown {
  let node = record;
  const done: string[] = [];
  for (const key of path.split("/")) {
    if (node === null || typeof node !== "object" || !(key in node)) {
      throw new Error(`results.json has no "${[...done, key].join("/")}"`);
    }
    node = (node as Record<string, unknown>)[key];
    done.push(key);
  }
  return node;
}

const PLACEHOLDER = /\{\{\s*([^}:]+?)\s*(?::\s*([a-z0-9]+)\s*)?\}\}/g;

/** Fill every `{{path:format}}` of `template` from the record. */
export function fillTemplate(template: string, record: PaperRecord): string {
  const errors: string[] = [];
  const out = template.replace(PLACEHOLDER, (whole, path: string, format = "s") => {
    try {
      return formatValue(lookup(record, path), format);
    } catch (e) {
      errors.push(`${whole}: ${(e as Error).message}`);
      return whole;
    }
  });
  if (errors.length > 0) throw new Error(`README.src.md: ${errors.join("; ")}`);
  return out;
}

/**
 * Numerals in the template's own prose (outside placeholders), other than names that carry
 * digits ("Table 1", "Qwen 2.5-VL", "WACV 2026", ...). Empty when the source is clean.
 */
export function strayNumbers(template: string): string[] {
  const allowed = [
    /Table [12]\b/g,
    /Qwen 2\.5-VL/g,
    /WACV 2026/g,
    /Molmo-7B-D|GLaMM-FS-7B|GPT-4o|Gemini-2\.0/g,
    /\bH100\b/g,
    /\bfp32\b|\bTF32\b/g,
    /#\d+/g, // issue numbers
    /\b95% /g, // the confidence level
    /\b1 = chance\b/g, // the ratio's definition
    /\b[a-z0-9_-]+\.(?:yaml|json|md|svg|ts)\b/g, // file names
    /^#+ /gm,
  ];
  let text = template.replace(PLACEHOLDER, " ");
  text = text.replace(/`[^`]*`/g, " "); // commands and code
  for (const pattern of allowed) text = text.replace(pattern, " ");
  return [...text.matchAll(/\d+(?:\.\d+)?/g)].map((m) => m[0]);
}

function mdTable(headers: string[], rows: string[][], numericFrom = 1): string[] {
  return [
    `| ${headers.join(" | ")} |`,
    `| ${headers.map((_, i) => (i >= numericFrom ? "---:" : "---")).join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ];
}

const ci = (s: SeedStats | null | undefined) => formatValue(s ?? null, "ci");
const ratioText = (a: ArmRecord | null) => (a ? a.ratio.mean.toFixed(2) : "not run");

/** One row per swept value: the value, accuracy and target attention ratio. */
function sweepTable(
  axis: string,
  sweep: { values: number[]; points: Record<string, { accuracy: SeedStats; ratio: SeedStats }> },
): string[] {
  return mdTable(
    [axis, "Accuracy %", "Target attention ratio"],
    sweep.values.map((v) => {
      const p = sweep.points[String(v)];
      return [String(v), ci(p.accuracy), p.ratio.mean.toFixed(2)];
    }),
  );
}

/** Table 1's markdown rows (ours beside the poster's). */
function table1Markdown(tasks: string[], table1: Record<string, Table1Record>): string[] {
  return mdTable(
    [
      "Task",
      "Base",
      "NTP",
      "KLAL+NTP",
      "KLAL − NTP (paired t)",
      "Most common answer",
      "Base (poster)",
      "NTP (poster)",
      "KLAL+NTP (poster)",
    ],
    tasks.map((task) => {
      const t = table1[task];
      const gain = t.gain
        ? `${formatValue(t.gain.meanDiff, "signed")} (${formatValue(t.gain.p, "p")})`
        : "not run";
      return [
        t.label,
        ci(t.base?.accuracy),
        ci(t.ntp?.accuracy),
        ci(t.klal?.accuracy),
        gain,
        t.majority === null ? "–" : t.majority.toFixed(1),
        t.poster ? t.poster.base.toFixed(1) : "–",
        t.poster ? t.poster.ntp.toFixed(1) : "–",
        t.poster ? t.poster.klal.toFixed(1) : "–",
      ];
    }),
  );
}

/** `reports/paper/table.md`. */
export function renderPaperTable(record: PaperRecord): string {
  const s = record.setup;
  const lines = [
    "# KLAL reproduction: the paper record",
    "",
    `Tiny VLM (d_model ${s.dModel}, ${s.layers} layers, ${s.heads} heads), ${s.imageSize} px ` +
    `images in ${s.visualTokens} patches of ${s.patchSize} px; fine-tuning ${s.trainSteps} ` +
    `steps at batch ${s.batchSize}, lr ${s.lr}; ${s.trainSamples} training and ` +
    `${s.testSamples} held-out test samples per task (test seed ${s.testSeed}); seeds ` +
    `${s.seeds.join(", ")}. Backend ${record.backend}; ${record.hardware.cpu}, ` +
    `${record.hardware.cores} cores${
      record.hardware.gpu ? `, ${record.hardware.gpu}` : ", no GPU"
    }.`,
    "",
    `## Table 1: grounding accuracy %, ${s.trainSteps} steps, ours (mean ± 95% t-interval over ` +
    "seeds) beside the poster's (Qwen 2.5-VL)",
    "",
    ...table1Markdown(record.tasks, record.table1),
    "",
    ...(record.table1Long
      ? [
        `## Table 1 with ${record.table1Long.steps} fine-tuning steps (${record.table1Long.experiment})`,
        "",
        ...table1Markdown(record.table1Long.tasks, record.table1Long.table1),
        "",
      ]
      : []),
    "## Target attention ratio (attention mass on the ground-truth patches / their uniform share; 1 = chance)",
    "",
    ...mdTable(
      record.table1Long
        ? [
          "Task",
          "Base",
          "NTP",
          "KLAL+NTP",
          `NTP, ${record.table1Long.steps} steps`,
          `KLAL+NTP, ${record.table1Long.steps} steps`,
        ]
        : ["Task", "Base", "NTP", "KLAL+NTP"],
      record.tasks.map((task) => {
        const t = record.table1[task];
        const long = record.table1Long?.table1[task];
        return [
          t.label,
          ratioText(t.base),
          ratioText(t.ntp),
          ratioText(t.klal),
          ...(record.table1Long
            ? [ratioText(long?.ntp ?? null), ratioText(long?.klal ?? null)]
            : []),
        ];
      }),
    ),
    "",
    "## Table 2: Line Intersection and Line Tracing, accuracy %",
    "",
    ...mdTable(
      ["Model", "Line Intersection", "Line Tracing", "Source"],
      [
        [
          "NTP + KLAL (ours, tiny VLM)",
          ci(record.table2.lineIntersection),
          ci(record.table2.lineTracing),
          `this record, ${s.trainSteps} steps`,
        ],
        ...(record.table2.long
          ? [[
            `NTP + KLAL (ours, tiny VLM, ${record.table2.long.steps} steps)`,
            ci(record.table2.long.lineIntersection),
            ci(record.table2.long.lineTracing),
            `this record, ${record.table2.long.steps} steps`,
          ]]
          : []),
        ...record.table2.quoted.map((q) => [
          q.model,
          q.lineIntersection.toFixed(2),
          q.lineTracing.toFixed(2),
          "reported in the paper, not run here",
        ]),
      ],
    ),
  ];
  const lambdaSets: [number, PaperRecord["lambda"]][] = [[s.trainSteps, record.lambda]];
  if (record.lambdaLong) lambdaSets.push([record.lambdaLong.steps, record.lambdaLong.tasks]);
  for (const [steps, set] of lambdaSets) {
    for (const [task, sweep] of Object.entries(set)) {
      lines.push(
        "",
        `## λ sweep: ${record.table1[task]?.label ?? task}, ${steps} steps`,
        "",
        ...sweepTable("λ", sweep),
      );
    }
  }
  if (record.layers) {
    const l = record.layers;
    lines.push(
      "",
      `## Supervised layers: ${
        record.table1[l.task]?.label ?? l.task
      } (KLAL λ=1 on a subset of layers)`,
      "",
      ...mdTable(
        ["Arm", "Layers", "Accuracy %", "Target attention ratio"],
        [
          ...(l.ntp ? [["NTP (λ=0)", "–", ci(l.ntp.accuracy), ratioText(l.ntp)]] : []),
          ...l.order.map((k) => {
            const p = l.points[k];
            return [k, p.layers.join(", "), ci(p.accuracy), ratioText(p)];
          }),
        ],
      ),
    );
  }
  const inv = record.investigation;
  if (inv.long) {
    const long = inv.long;
    lines.push(
      "",
      `## Investigation: ${long.steps} fine-tuning steps (validation data, seed ${long.testSeed})`,
      "",
      ...mdTable(
        ["Task", "NTP accuracy %", "KLAL+NTP accuracy %", "NTP ratio", "KLAL+NTP ratio"],
        Object.entries(long.tasks).map(([task, t]) => [
          record.table1[task]?.label ?? task,
          ci(t.ntp?.accuracy),
          ci(t.klal?.accuracy),
          t.ntp ? t.ntp.ratio.mean.toFixed(2) : "not run",
          t.klal ? t.klal.ratio.mean.toFixed(2) : "not run",
        ]),
      ),
    );
  }
  if (inv.sigma) {
    const sigma = inv.sigma;
    for (const [task, sweep] of Object.entries(sigma.tasks)) {
      lines.push(
        "",
        `## Investigation: ground-truth sharpness, ${record.table1[task]?.label ?? task} ` +
          `(KLAL+NTP, ${sigma.steps} steps, validation data, seed ${sigma.testSeed})`,
        "",
        ...sweepTable("Gaussian σ (patches)", sweep),
      );
    }
  }
  if (inv.confirm) {
    const c = inv.confirm;
    const changed = Object.entries(c.params).map(([k, v]) => `${k} ${JSON.stringify(v)}`);
    lines.push(
      "",
      `## Confirmation on the test seed: ${c.experiment} (${c.steps} steps; ${changed.join(", ")})`,
      "",
      ...table1Markdown(c.tasks, c.table1),
    );
  }
  lines.push(
    "",
    "Every number above is in results.json; rows other than ours in Table 2 and the poster " +
      "columns are quoted from the poster, not run here.",
    "",
  );
  return lines.join("\n");
}

const ARM_COLOURS = {
  domain: ["Base", "NTP", "KLAL+NTP"],
  range: ["#9e9e9e", "#4c78a8", "#e45756"],
};

/** The record's figures as Vega-Lite specs, keyed by file name (without .svg). */
/** Table 1 as a chart, and the per-arm rows the attention chart reuses. */
function table1Chart(
  tasks: string[],
  table1: Record<string, Table1Record>,
  steps: number,
): { chart: object; armRows: object[]; labels: string[] } {
  const armRows: object[] = [];
  const seedRows: object[] = [];
  const posterRows: object[] = [];
  for (const task of tasks) {
    const t = table1[task];
    for (const [column, arm] of [["Base", t.base], ["NTP", t.ntp], ["KLAL+NTP", t.klal]] as const) {
      if (!arm) continue;
      const hw = arm.accuracy.halfWidth ?? 0;
      armRows.push({
        task: t.label,
        arm: column,
        accuracy: arm.accuracy.mean,
        low: Math.max(0, arm.accuracy.mean - hw),
        high: Math.min(100, arm.accuracy.mean + hw),
        ratio: arm.ratio.mean,
      });
      arm.accuracy.values.forEach((v, i) =>
        seedRows.push({ task: t.label, arm: column, accuracy: v, seed: arm.accuracy.seeds[i] })
      );
    }
    if (t.poster) {
      posterRows.push({ task: t.label, arm: "Base", accuracy: t.poster.base });
      posterRows.push({ task: t.label, arm: "NTP", accuracy: t.poster.ntp });
      posterRows.push({ task: t.label, arm: "KLAL+NTP", accuracy: t.poster.klal });
    }
  }
  const labels = tasks.map((t) => table1[t].label);
  const x = { field: "arm", type: "nominal", sort: ARM_COLOURS.domain, title: null };
  const colour = { field: "arm", type: "nominal", scale: ARM_COLOURS, legend: null };
  // One dataset with a `kind` per row: layers inside a facet must share the faceted data.
  const table1Rows = [
    ...armRows.map((r) => ({ ...r, kind: "mean" })),
    ...seedRows.map((r) => ({ ...r, kind: "seed" })),
    ...posterRows.map((r) => ({ ...r, kind: "poster" })),
  ];
  const only = (kind: string) => [{ filter: `datum.kind === '${kind}'` }];
  const chart = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: {
      text:
        `Table 1 (${steps} fine-tuning steps): held-out accuracy %, ours (bars: mean, whiskers: 95% CI, dots: seeds)`,
      subtitle: "black ticks: the poster's Qwen 2.5-VL numbers (quoted, not run here)",
    },
    data: { values: table1Rows },
    facet: { column: { field: "task", type: "nominal", sort: labels, title: null } },
    spec: {
      width: 110,
      height: 200,
      layer: [
        {
          transform: only("mean"),
          mark: "bar",
          encoding: {
            x,
            y: {
              field: "accuracy",
              type: "quantitative",
              scale: { domain: [0, 100] },
              title: "accuracy %",
            },
            color: colour,
          },
        },
        {
          transform: only("mean"),
          mark: "rule",
          encoding: { x, y: { field: "low", type: "quantitative" }, y2: { field: "high" } },
        },
        {
          transform: only("seed"),
          mark: { type: "circle", size: 22, color: "black", opacity: 0.6 },
          encoding: { x, y: { field: "accuracy", type: "quantitative" } },
        },
        {
          transform: only("poster"),
          mark: { type: "tick", color: "black", thickness: 2 },
          encoding: { x, y: { field: "accuracy", type: "quantitative" } },
        },
      ],
    },
  };
  return { chart, armRows, labels };
}

export function paperCharts(record: PaperRecord): Record<string, object> {
  const charts: Record<string, object> = {};
  const main = table1Chart(record.tasks, record.table1, record.setup.trainSteps);
  charts.table1 = main.chart;
  if (record.table1Long) {
    const long = record.table1Long;
    charts.table1_long = table1Chart(long.tasks, long.table1, long.steps).chart;
  }
  const { armRows, labels } = main;
  const x = { field: "arm", type: "nominal", sort: ARM_COLOURS.domain, title: null };
  const colour = { field: "arm", type: "nominal", scale: ARM_COLOURS, legend: null };
  charts.attention = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: {
      text: "Attention mass on the ground-truth patches, relative to uniform (1 = chance)",
      subtitle: "mean over seeds and layers of the answer-predicting positions, held-out test set",
    },
    data: { values: armRows },
    facet: { column: { field: "task", type: "nominal", sort: labels, title: null } },
    spec: {
      width: 110,
      height: 180,
      layer: [
        {
          mark: "bar",
          encoding: {
            x,
            y: { field: "ratio", type: "quantitative", title: "target attention ratio" },
            color: colour,
          },
        },
        {
          mark: { type: "rule", strokeDash: [4, 3], color: "black" },
          encoding: { y: { datum: 1 } },
        },
      ],
    },
  };
  const lambdaRows: object[] = [];
  const lambdaSets: [number, PaperRecord["lambda"]][] = [[record.setup.trainSteps, record.lambda]];
  if (record.lambdaLong) lambdaSets.push([record.lambdaLong.steps, record.lambdaLong.tasks]);
  for (const [steps, set] of lambdaSets) {
    for (const [task, sweep] of Object.entries(set)) {
      for (const v of sweep.values) {
        const p = sweep.points[String(v)];
        const hw = p.accuracy.halfWidth ?? 0;
        lambdaRows.push({
          task: `${record.table1[task]?.label ?? task}, ${steps} steps`,
          lambda: v,
          accuracy: p.accuracy.mean,
          low: Math.max(0, p.accuracy.mean - hw),
          high: Math.min(100, p.accuracy.mean + hw),
          ratio: p.ratio.mean,
        });
      }
    }
  }
  if (lambdaRows.length > 0) {
    const lx = { field: "lambda", type: "ordinal", title: "λ (0 = NTP only)" };
    charts.lambda = {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      title: {
        text: "λ sweep: held-out accuracy % (line: mean over seeds, band: 95% CI)",
        subtitle: "and the target attention ratio (right panel per task)",
      },
      data: { values: lambdaRows },
      facet: {
        row: {
          field: "task",
          type: "nominal",
          title: null,
          sort: [...new Set(lambdaRows.map((r) => (r as { task: string }).task))],
        },
      },
      spec: {
        hconcat: [
          {
            width: 240,
            height: 150,
            layer: [
              {
                mark: { type: "area", opacity: 0.25, color: "#e45756" },
                encoding: {
                  x: lx,
                  y: {
                    field: "low",
                    type: "quantitative",
                    scale: { domain: [0, 100] },
                    title: "accuracy %",
                  },
                  y2: { field: "high" },
                },
              },
              {
                mark: { type: "line", point: true, color: "#e45756" },
                encoding: { x: lx, y: { field: "accuracy", type: "quantitative" } },
              },
            ],
          },
          {
            width: 240,
            height: 150,
            layer: [
              {
                mark: { type: "line", point: true, color: "#4c78a8" },
                encoding: {
                  x: lx,
                  y: { field: "ratio", type: "quantitative", title: "target attention ratio" },
                },
              },
              {
                mark: { type: "rule", strokeDash: [4, 3], color: "black" },
                encoding: { y: { datum: 1 } },
              },
            ],
          },
        ],
      },
    };
  }
  if (record.layers) {
    const l = record.layers;
    const rows: object[] = [];
    const seeds: object[] = [];
    const add = (name: string, a: ArmRecord) => {
      const hw = a.accuracy.halfWidth ?? 0;
      rows.push({
        arm: name,
        group: a.lambda > 0 ? "KLAL+NTP" : "NTP",
        accuracy: a.accuracy.mean,
        low: Math.max(0, a.accuracy.mean - hw),
        high: Math.min(100, a.accuracy.mean + hw),
        ratio: a.ratio.mean,
      });
      a.accuracy.values.forEach((v) => seeds.push({ arm: name, accuracy: v }));
    };
    if (l.ntp) add("NTP (λ=0)", l.ntp);
    for (const k of l.order) add(`KLAL on ${k}`, l.points[k]);
    const names = rows.map((r) => (r as { arm: string }).arm);
    const lx = {
      field: "arm",
      type: "nominal",
      sort: names,
      title: null,
      axis: { labelAngle: -20 },
    };
    charts.layers = {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      title: {
        text: `Which layers to supervise: ${
          record.table1[l.task]?.label ?? l.task
        }, held-out accuracy %`,
        subtitle: "bars: mean, whiskers: 95% CI, dots: seeds",
      },
      datasets: { rows, seeds },
      data: { name: "rows" },
      width: 300,
      height: 200,
      layer: [
        {
          mark: "bar",
          encoding: {
            color: { field: "group", type: "nominal", scale: ARM_COLOURS, legend: null },
            x: lx,
            y: {
              field: "accuracy",
              type: "quantitative",
              scale: { domain: [0, 100] },
              title: "accuracy %",
            },
          },
        },
        {
          mark: "rule",
          encoding: { x: lx, y: { field: "low", type: "quantitative" }, y2: { field: "high" } },
        },
        {
          data: { name: "seeds" },
          mark: { type: "circle", size: 22, color: "black", opacity: 0.6 },
          encoding: { x: lx, y: { field: "accuracy", type: "quantitative" } },
        },
      ],
    };
  }
  const long = record.investigation.long;
  if (long) {
    const rows: object[] = [];
    for (const [task, t] of Object.entries(long.tasks)) {
      for (const [label, arm] of [["NTP", t.ntp], ["KLAL+NTP", t.klal]] as const) {
        for (const p of arm?.curve ?? []) {
          rows.push({ task: record.table1[task]?.label ?? task, arm: label, ...p });
        }
      }
    }
    if (rows.length > 0) {
      const sx = { field: "step", type: "quantitative", title: "fine-tuning step" };
      // Only the two fine-tuned arms are drawn here, so the legend lists only those.
      const trained = { domain: ARM_COLOURS.domain.slice(1), range: ARM_COLOURS.range.slice(1) };
      const colourBy = { field: "arm", type: "nominal", scale: trained, title: null };
      charts.long_training = {
        $schema: "https://vega.github.io/schema/vega-lite/v5.json",
        title: {
          text:
            `Investigation: ${long.steps} steps, validation accuracy % and target attention ratio`,
          subtitle: `one seed; validation data from seed ${long.testSeed + 1}, never the test seed`,
        },
        data: { values: rows },
        facet: { column: { field: "task", type: "nominal", title: null } },
        spec: {
          vconcat: [
            {
              width: 160,
              height: 130,
              mark: { type: "line", point: true },
              encoding: {
                x: sx,
                y: { field: "accuracy", type: "quantitative", title: "accuracy %" },
                color: colourBy,
              },
            },
            {
              width: 160,
              height: 110,
              mark: { type: "line", point: true },
              encoding: {
                x: sx,
                y: { field: "ratio", type: "quantitative", title: "target attention ratio" },
                color: colourBy,
              },
            },
          ],
        },
      };
    }
  }
  return charts;
}

/** Write `text` to `path` through a temp file and a rename: never half-written. */
async function writeAtomic(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(temp, text);
    await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
}

/** Serialise the record as committed (stable key order, two-space indent, final newline). */
export function recordJson(record: PaperRecord): string {
  return JSON.stringify(record, null, 2) + "\n";
}

/**
 * Render table.md, README.md (from README.src.md) and figures/*.svg in `dir` from
 * `dir/results.json`. Returns the files written.
 */
export async function rebuildPaper(dir: string): Promise<string[]> {
  const record = JSON.parse(await Deno.readTextFile(`${dir}/results.json`)) as PaperRecord;
  const template = await Deno.readTextFile(`${dir}/README.src.md`);
  const stray = strayNumbers(template);
  if (stray.length > 0) {
    throw new Error(
      `${dir}/README.src.md: numbers outside placeholders (${stray.slice(0, 5).join(", ")}); ` +
        "put them in results.json and refer to them as {{path:format}}",
    );
  }
  const readme = fillTemplate(template, record);
  const written: string[] = [];
  await writeAtomic(`${dir}/table.md`, renderPaperTable(record));
  written.push("table.md");
  await writeAtomic(`${dir}/README.md`, readme);
  written.push("README.md");
  await Deno.mkdir(`${dir}/figures`, { recursive: true });
  for (const [name, chart] of Object.entries(paperCharts(record))) {
    await writeAtomic(`${dir}/figures/${name}.svg`, await renderChartSvg(chart));
    written.push(`figures/${name}.svg`);
  }
  return written;
}
