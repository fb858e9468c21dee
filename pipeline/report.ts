/**
 * The experiment report: `table.md`, `results.json`, one offline `index.html` (vega, vega-lite
 * and vega-embed inlined) and every chart as SVG and PNG under `figures/`. It shows the
 * poster's Tables 1 and 2 beside ours, the empirical observation (attention on target patches
 * per layer and head), poster-like attention maps and an in-page attention explorer, training
 * and learning curves with steps-to-accuracy, difficulty breakdowns, λ and layer sweeps, and
 * the run itself (spec, cache keys, times). Pure functions (`table1`, `chartSpecs`,
 * `renderTableMarkdown`, ...) are exported for tests; the only side effects are in
 * `writeReport`.
 */

import { createCanvas, Image } from "@napi-rs/canvas";
import * as vega from "vega";
import * as vegaLite from "vega-lite";
import type { ArmSpec, Spec } from "./spec_types.ts";
import { ci95, type ConfidenceInterval, mean, pairedTTest, wilsonInterval } from "./stats.ts";
import { pathOf } from "./paths.ts";

/** One measured number: a metric of one arm and seed on one task. */
export interface ResultRow {
  task: string;
  arm: string;
  seed: number;
  metric: string;
  value: number;
}

/** One logged training step of one arm and seed, with the loss split into its parts. */
export interface CurvePoint {
  arm: string;
  seed: number;
  step: number;
  ntp: number;
  klal: number;
  total: number;
}

/** What a stage of the plan did: served from the cache or ran, and how long it took. */
export interface StageInfo {
  stage: string;
  key: string;
  status: "cached" | "ran";
  seconds: number;
  samplesPerSecond?: number;
}

/** Everything a report shows. */
export interface ReportInput {
  /** Resolved spec (shown in the report as JSON). */
  spec: Spec;
  /**
   * Metrics: "accuracy" (percent 0-100), "target_attention" (mass on GT patches, 0..1),
   * "target_attention_ratio" (mass / uniform share), per layer "target_attention_ratio@L<i>".
   */
  rows: ResultRow[];
  /** Training loss parts per arm and seed. */
  curves: CurvePoint[];
  stages: StageInfo[];
  /** Which tfjs backend ran, e.g. "wasm". */
  backend: string;
  /** ISO date. */
  createdAt: string;
  /** Validation accuracy and grounding measured during fine-tuning, per arm and seed. */
  learning?: LearningRow[];
  /** The first held-out samples with each arm's attention maps (attention figures). */
  figures?: FigureSet[];
  /** Attention mass on target patches per layer and head, per arm and seed. */
  heads?: HeadRow[];
  /** Held-out accuracy by the task's difficulty bucket, per arm and seed. */
  breakdown?: BreakdownRow[];
}

/** One point of a learning curve (validation set, during fine-tuning). */
export interface LearningRow {
  arm: string;
  seed: number;
  step: number;
  /** Percent. */
  accuracy: number;
  targetAttention: number;
  targetAttentionRatio: number;
}

/** Attention figures of one evaluated arm and seed. */
export interface FigureSet {
  arm: string;
  seed: number;
  /** Patches per image side (the maps are side x side, row-major). */
  gridSide: number;
  samples: FigureSample[];
}

/** One held-out sample with one model's answer and attention maps. */
export interface FigureSample {
  index: number;
  prompt: string;
  answer: string;
  prediction: string;
  correct: boolean;
  /** data:image/png;base64,... of the input image */
  image: string;
  /** Ground-truth P over the patch grid (row-major). */
  target: number[];
  /** Head-averaged visual attention of the answer positions, [layer][patch]. */
  layers: number[][];
  /** Per head, [layer][head][patch]. */
  heads: number[][][];
}

/** Attention mass on target patches of one layer and head. */
export interface HeadRow {
  arm: string;
  seed: number;
  layer: number;
  head: number;
  mass: number;
}

/** Accuracy of one arm and seed on one difficulty bucket. */
export interface BreakdownRow {
  arm: string;
  seed: number;
  difficulty: string;
  correct: number;
  n: number;
}

/** The paper's columns; an arm maps to one by the spec's convention. */
export type PaperColumn = "Base" | "NTP" | "KLAL+NTP" | "other";

/** One task's row of the poster's Table 1 (Qwen 2.5-VL, grounding accuracy %). */
export interface PosterRow {
  label: string;
  base: number;
  ntp: number;
  klal: number;
}

/**
 * The poster's Table 1 (Qwen 2.5-VL, grounding accuracy %), keyed by our task names, in the
 * poster's row order.
 */
export const POSTER_TABLE1: Readonly<Record<string, PosterRow>> = {
  "line-intersection": { label: "Line Intersection", base: 47.6, ntp: 62.6, klal: 70.2 },
  "line-tracing": { label: "Line Tracing", base: 49.6, ntp: 53.8, klal: 62.2 },
  "grid-patch": { label: "Grid Patch", base: 6.1, ntp: 28.6, klal: 44.9 },
  "pixmo-points": { label: "PixMo-Points", base: 16.8, ntp: 26.3, klal: 35.8 },
  "refcoco": { label: "RefCOCO (val)", base: 90.1, ntp: 90.7, klal: 91.5 },
};

/** One model's row of the poster's Table 2 (grounding accuracy %). */
export interface PosterTable2Row {
  model: string;
  lineIntersection: number;
  lineTracing: number;
}

/**
 * The poster's Table 2, quoted: reported in the paper, not run here. The first row is the
 * paper's own NTP + KLAL on Qwen 2.5-VL.
 */
export const POSTER_TABLE2: readonly PosterTable2Row[] = [
  { model: "NTP + KLAL (paper, Qwen 2.5-VL)", lineIntersection: 70.23, lineTracing: 62.21 },
  { model: "Molmo-7B-D", lineIntersection: 41.07, lineTracing: 49.51 },
  { model: "GLaMM-FS-7B", lineIntersection: 27.50, lineTracing: 39.03 },
  { model: "InstructBLIP", lineIntersection: 36.67, lineTracing: 46.23 },
  { model: "GPT-4o", lineIntersection: 42.12, lineTracing: 55.34 },
  { model: "Gemini-2.0 Flash", lineIntersection: 56.41, lineTracing: 59.25 },
];

const COLUMN_ORDER: readonly PaperColumn[] = ["Base", "NTP", "KLAL+NTP", "other"];
const PER_LAYER_RATIO = /^target_attention_ratio@L(\d+)$/;

/** The key of POSTER_TABLE1 for a task name ("grid_patch", "RefCOCO-val" are accepted). */
export function posterKey(task: string): string | undefined {
  const key = task.toLowerCase().replace(/[_\s]+/g, "-");
  if (key in POSTER_TABLE1) return key;
  return key.startsWith("refcoco") ? "refcoco" : undefined;
}

/** The poster's row for a task name ("grid_patch", "RefCOCO-val" and the like are accepted). */
export function posterRow(task: string): PosterRow | undefined {
  const key = posterKey(task);
  return key === undefined ? undefined : POSTER_TABLE1[key];
}

/** The poster's number for a column, if it has one. */
function posterValue(task: string, column: PaperColumn): number | undefined {
  const row = posterRow(task);
  if (!row) return undefined;
  if (column === "Base") return row.base;
  if (column === "NTP") return row.ntp;
  if (column === "KLAL+NTP") return row.klal;
  return undefined;
}

/** Map an arm to the paper's column: no finetune -> Base, lambda 0 -> NTP, lambda > 0 -> KLAL+NTP. */
export function paperColumn(spec: Spec, arm: string): PaperColumn {
  const armSpec = spec.arms[arm];
  if (!armSpec) return arm.toLowerCase() === "base" ? "Base" : "other";
  if (!armSpec.finetune) return "Base";
  return armSpec.lambda > 0 ? "KLAL+NTP" : "NTP";
}

/** Escape text for HTML content and attribute values. */
export function escapeHtml(text: unknown): string {
  return String(text)
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** JSON that is safe inside a <script> element (`<` as \u003c, line separators escaped). */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replaceAll("<", "\\u003c")
    .replaceAll("\u2028", "\\u2028")
    .replaceAll("\u2029", "\\u2029");
}

/** JavaScript source made safe to inline in a <script> element; source-map comments dropped. */
export function inlineScriptSource(code: string): string {
  return code
    .replace(/^\/\/# sourceMappingURL=.*$/gm, "")
    .replace(/<\/(script)/gi, "<\\/$1")
    .replaceAll("<!--", "<\\!--");
}

/**
 * Debiased exponential moving average (Adam-style): m_t = a*x_t + (1-a)*m_{t-1} with m_0 = 0,
 * reported as m_t / (1 - (1-a)^t), so the first value equals x_1.
 */
export function debiasedEma(values: readonly number[], alpha = 0.1): number[] {
  const out: number[] = [];
  let biased = 0;
  let decay = 1;
  for (const x of values) {
    biased = alpha * x + (1 - alpha) * biased;
    decay *= 1 - alpha;
    out.push(biased / (1 - decay));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Summaries

/** One arm of one task, summarised over seeds. */
export interface ArmSummary {
  arm: string;
  column: PaperColumn;
  /** "KLAL+NTP (klal)". */
  label: string;
  accuracy: ConfidenceInterval;
  accuracyBySeed: Map<number, number>;
  /** Mean over seeds of target_attention_ratio; NaN when absent. */
  attentionRatio: number;
  /** Mean over seeds of target_attention (mass); NaN when absent. */
  attentionMass: number;
  poster: number | undefined;
}

/** One KLAL arm against the NTP arm on the seeds both have. */
export interface Comparison {
  task: string;
  klal: ArmSummary;
  ntp: ArmSummary;
  seeds: number[];
  meanDiff: number;
  p: number | undefined;
  /** The one-line honest verdict. */
  text: string;
}

/** A task's summaries, in paper-column order, and its verdicts. */
export interface TaskSummary {
  task: string;
  arms: ArmSummary[];
  comparisons: Comparison[];
  /** Shown when there is nothing to compare. */
  note: string | undefined;
  /** "Target attention ratio ...: NTP 1.020, KLAL+NTP 11.300." when the rows exist. */
  attentionLine: string | undefined;
}

/** Tasks in the order they first appear in the rows (the spec's task when there are none). */
function taskNames(input: ReportInput): string[] {
  const names = [...new Set(input.rows.map((row) => row.task))];
  return names.length > 0 ? names : [input.spec.task.name];
}

function valuesBySeed(rows: ResultRow[], arm: string, metric: string): Map<number, number> {
  const bySeed = new Map<number, number>();
  for (const row of rows) {
    if (row.arm === arm && row.metric === metric) bySeed.set(row.seed, row.value);
  }
  return bySeed;
}

/** Arms of a task: spec order, then arms found only in rows; sorted Base, NTP, KLAL+NTP, other. */
function armsOfTask(input: ReportInput, taskRows: ResultRow[]): string[] {
  const seen = [...new Set([...Object.keys(input.spec.arms), ...taskRows.map((r) => r.arm)])];
  const withRows = seen.filter((arm) => taskRows.some((row) => row.arm === arm));
  const arms = withRows.length > 0 ? withRows : Object.keys(input.spec.arms);
  const rank = (arm: string) => COLUMN_ORDER.indexOf(paperColumn(input.spec, arm));
  return arms.map((arm, i) => ({ arm, i })).sort((a, b) => rank(a.arm) - rank(b.arm) || a.i - b.i)
    .map((entry) => entry.arm);
}

/** Format a p-value for a verdict: "p=0.073", "p<0.001". */
export function formatP(p: number | undefined): string {
  if (p === undefined || Number.isNaN(p)) return "p undefined";
  return p < 0.001 ? "p<0.001" : `p=${p.toFixed(3)}`;
}

function signedPoints(diff: number): string {
  const text = Math.abs(diff).toFixed(1);
  if (text === "0.0") return "0.0";
  return `${diff > 0 ? "+" : "-"}${text}`;
}

function compare(task: string, klal: ArmSummary, ntp: ArmSummary, named: boolean): Comparison {
  const seeds = [...klal.accuracyBySeed.keys()].filter((s) => ntp.accuracyBySeed.has(s))
    .sort((a, b) => a - b);
  const who = named ? `KLAL+NTP (${klal.arm}) vs NTP (${ntp.arm})` : "KLAL+NTP vs NTP";
  if (seeds.length === 0) {
    return {
      task,
      klal,
      ntp,
      seeds,
      meanDiff: NaN,
      p: undefined,
      text: `${who}: no seed has accuracy for both arms, so there is nothing to compare.`,
    };
  }
  const test = pairedTTest(
    seeds.map((s) => klal.accuracyBySeed.get(s)!),
    seeds.map((s) => ntp.accuracyBySeed.get(s)!),
  );
  const seedWord = seeds.length === 1 ? "seed" : "seeds";
  const testText = test.p === undefined
    ? `paired t-test over ${seeds.length} ${seedWord}: n=1, no p-value`
    : `paired t-test over ${seeds.length} ${seedWord}, ${formatP(test.p)}`;
  const caveat = test.p !== undefined && test.p >= 0.05 ? "; not significant at the 5% level" : "";
  const beats = Number(test.meanDiff.toFixed(1)) > 0;
  const head = beats
    ? `${who}: ${signedPoints(test.meanDiff)} points`
    : `${named ? `KLAL+NTP (${klal.arm})` : "KLAL+NTP"} does not beat ${
      named ? `NTP (${ntp.arm})` : "NTP"
    } here: ${signedPoints(test.meanDiff)} points`;
  return {
    task,
    klal,
    ntp,
    seeds,
    meanDiff: test.meanDiff,
    p: test.p,
    text: `${head} (${testText}${beats ? caveat : ""}).`,
  };
}

/** Summaries of every task in the input: per-arm statistics and KLAL-vs-NTP verdicts. */
export function summarize(input: ReportInput): TaskSummary[] {
  return taskNames(input).map((task) => {
    const taskRows = input.rows.filter((row) => row.task === task);
    const arms = armsOfTask(input, taskRows).map((arm): ArmSummary => {
      const column = paperColumn(input.spec, arm);
      const accuracyBySeed = valuesBySeed(taskRows, arm, "accuracy");
      const ratio = [...valuesBySeed(taskRows, arm, "target_attention_ratio").values()];
      const mass = [...valuesBySeed(taskRows, arm, "target_attention").values()];
      const seeds = [...accuracyBySeed.keys()].sort((a, b) => a - b);
      return {
        arm,
        column,
        label: column === "other" ? arm : `${column} (${arm})`,
        accuracy: ci95(seeds.map((s) => accuracyBySeed.get(s)!)),
        accuracyBySeed,
        attentionRatio: mean(ratio),
        attentionMass: mean(mass),
        poster: posterValue(task, column),
      };
    });
    const ntpArms = arms.filter((a) => a.column === "NTP");
    const klalArms = arms.filter((a) => a.column === "KLAL+NTP");
    const named = ntpArms.length > 1 || klalArms.length > 1;
    const comparisons = ntpArms.length > 0
      ? klalArms.map((klal) => compare(task, klal, ntpArms[0], named))
      : [];
    let note: string | undefined;
    if (klalArms.length === 0) note = "No KLAL+NTP arm (lambda > 0), so no verdict.";
    else if (ntpArms.length === 0) note = "No NTP arm (lambda = 0) to compare KLAL+NTP with.";
    const withRatio = arms.filter((a) => !Number.isNaN(a.attentionRatio));
    const attentionLine = withRatio.length > 0
      ? `Target attention ratio (mass on target patches / uniform share; 1 = chance): ${
        withRatio.map((a) => `${a.label} ${a.attentionRatio.toFixed(3)}`).join(", ")
      }.`
      : undefined;
    return { task, arms, comparisons, note, attentionLine };
  });
}

/** Every verdict line of the report (one per KLAL arm and task), or the reason there is none. */
export function verdictLines(summaries: TaskSummary[]): string[] {
  const prefix = (task: string) => summaries.length > 1 ? `${task}: ` : "";
  return summaries.flatMap((s) =>
    s.comparisons.length > 0
      ? s.comparisons.map((c) => prefix(s.task) + c.text)
      : [prefix(s.task) + (s.note ?? "No verdict.")]
  );
}

// ---------------------------------------------------------------------------------------
// Table 1, Table 2 and sample efficiency

/** One task's line of Table 1: our Base / NTP / KLAL+NTP beside the poster's. */
export interface Table1Row {
  /** Our task name (the poster's key when this experiment did not run the task). */
  task: string;
  /** The poster's label, else the task name. */
  label: string;
  /** False when this experiment did not run the task: its cells read "not run". */
  run: boolean;
  base: ArmSummary | undefined;
  ntp: ArmSummary | undefined;
  klal: ArmSummary | undefined;
  poster: PosterRow | undefined;
  /** KLAL+NTP minus NTP on the seeds both have, with the paired t-test. */
  gain: Comparison | undefined;
}

/** The arm that stands for a paper column in Table 1: the one named `preferred`, else the first. */
function primaryArm(
  arms: ArmSummary[],
  column: PaperColumn,
  preferred: string,
): ArmSummary | undefined {
  const candidates = arms.filter((a) => a.column === column && a.accuracy.n > 0);
  return candidates.find((a) => a.arm === preferred) ?? candidates[0];
}

/**
 * Table 1: the poster's five tasks in its order, then any other task this experiment ran.
 * A task without accuracy rows is "not run" (its cells stay empty, never invented).
 */
export function table1(input: ReportInput): Table1Row[] {
  const summaries = summarize(input);
  const fromSummary = (s: TaskSummary): Table1Row => {
    const base = primaryArm(s.arms, "Base", "base");
    const ntp = primaryArm(s.arms, "NTP", "ntp");
    const klal = primaryArm(s.arms, "KLAL+NTP", "klal");
    const poster = posterRow(s.task);
    return {
      task: s.task,
      label: poster?.label ?? s.task,
      run: s.arms.some((a) => a.accuracy.n > 0),
      base,
      ntp,
      klal,
      poster,
      gain: s.comparisons.find((c) => c.klal.arm === klal?.arm && c.ntp.arm === ntp?.arm),
    };
  };
  const rows: Table1Row[] = [];
  for (const [key, poster] of Object.entries(POSTER_TABLE1)) {
    const s = summaries.find((x) => posterKey(x.task) === key);
    const row = s ? fromSummary(s) : undefined;
    rows.push(
      row?.run ? row : {
        task: s?.task ?? key,
        label: poster.label,
        run: false,
        base: undefined,
        ntp: undefined,
        klal: undefined,
        poster,
        gain: undefined,
      },
    );
  }
  for (const s of summaries) {
    if (posterKey(s.task) === undefined) rows.push(fromSummary(s));
  }
  return rows;
}

/** Our KLAL+NTP arm on the two tasks of the poster's Table 2 (undefined: not run). */
export interface Table2Ours {
  lineIntersection: ArmSummary | undefined;
  lineTracing: ArmSummary | undefined;
}

/** Table 2's row of ours; the quoted rows are POSTER_TABLE2. */
export function table2Ours(rows: Table1Row[]): Table2Ours {
  const pick = (key: string) => rows.find((r) => r.run && posterKey(r.task) === key)?.klal;
  return { lineIntersection: pick("line-intersection"), lineTracing: pick("line-tracing") };
}

/** An accuracy level the learning curves are read at, and why it was chosen. */
export interface AccuracyThreshold {
  /** Percent. */
  value: number;
  why: string;
}

/** How many fine-tuning steps one arm needed to reach a threshold, per seed. */
export interface StepsToReach {
  arm: string;
  label: string;
  threshold: number;
  /** `step` undefined: not reached by `lastStep`. */
  seeds: { seed: number; step: number | undefined; lastStep: number }[];
}

/** Learning curves read as sample efficiency. */
export interface LearningSummary {
  thresholds: AccuracyThreshold[];
  reach: StepsToReach[];
}

/** Per arm and seed, the learning-curve points in step order. */
function learningSeries(learning: LearningRow[]): Map<string, Map<number, LearningRow[]>> {
  const byArm = new Map<string, Map<number, LearningRow[]>>();
  for (const point of learning) {
    if (!byArm.has(point.arm)) byArm.set(point.arm, new Map());
    const bySeed = byArm.get(point.arm)!;
    if (!bySeed.has(point.seed)) bySeed.set(point.seed, []);
    bySeed.get(point.seed)!.push(point);
  }
  for (const bySeed of byArm.values()) {
    for (const points of bySeed.values()) points.sort((a, b) => a.step - b.step);
  }
  return byArm;
}

/**
 * Steps to a stated validation accuracy, per arm and seed. Thresholds, ascending: the NTP
 * arm's final validation accuracy (mean over seeds: how long KLAL needs to match what NTP ends
 * with), half the best arm's final accuracy (reached by at least that arm, so informative
 * when NTP stays near chance), and 50%; one of two within a point of each other is dropped.
 */
export function learningSummary(input: ReportInput): LearningSummary | undefined {
  const learning = input.learning ?? [];
  if (learning.length === 0) return undefined;
  const series = learningSeries(learning);
  const arms = [...series.keys()].sort((a, b) =>
    COLUMN_ORDER.indexOf(paperColumn(input.spec, a)) -
    COLUMN_ORDER.indexOf(paperColumn(input.spec, b))
  );
  const finalAccuracy = (arm: string) =>
    mean([...series.get(arm)!.values()].map((points) => points.at(-1)!.accuracy));
  const seedCount = (arm: string) => {
    const n = series.get(arm)!.size;
    return n === 1 ? "1 seed" : `${n} seeds`;
  };
  const candidates: AccuracyThreshold[] = [];
  const ntp = arms.find((arm) => paperColumn(input.spec, arm) === "NTP");
  if (ntp) {
    candidates.push({
      value: Math.round(finalAccuracy(ntp) * 10) / 10,
      why: `${armLabel(input.spec, ntp)}'s final validation accuracy (mean over ${seedCount(ntp)})`,
    });
  }
  const best = arms.reduce((a, b) => (finalAccuracy(b) > finalAccuracy(a) ? b : a));
  candidates.push({
    value: Math.round(finalAccuracy(best) * 5) / 10,
    why: `half of ${armLabel(input.spec, best)}'s final validation accuracy, the best arm's ` +
      `(mean over ${seedCount(best)})`,
  });
  candidates.push({ value: 50, why: "half of the validation answers right" });
  const thresholds: AccuracyThreshold[] = [];
  for (const c of candidates.filter((c) => c.value > 0).sort((a, b) => a.value - b.value)) {
    if (!thresholds.some((t) => Math.abs(t.value - c.value) < 1)) thresholds.push(c);
  }
  const reach: StepsToReach[] = [];
  for (const threshold of thresholds) {
    for (const arm of arms) {
      const bySeed = series.get(arm)!;
      reach.push({
        arm,
        label: armLabel(input.spec, arm),
        threshold: threshold.value,
        seeds: [...bySeed.keys()].sort((a, b) => a - b).map((seed) => {
          const points = bySeed.get(seed)!;
          return {
            seed,
            step: points.find((p) => p.accuracy >= threshold.value - 1e-9)?.step,
            lastStep: points.at(-1)!.step,
          };
        }),
      });
    }
  }
  return { thresholds, reach };
}

/** "40", "50 (s0 40, s1 60)", "s0 40, s1 not reached by 60", "not reached by step 60". */
export function formatStepsToReach(entry: StepsToReach): string {
  const reached = entry.seeds.filter((s) => s.step !== undefined);
  const last = Math.max(...entry.seeds.map((s) => s.lastStep));
  if (reached.length === 0) return `not reached by step ${last}`;
  if (entry.seeds.length === 1) return String(reached[0].step);
  const perSeed = entry.seeds.map((s) =>
    `s${s.seed} ${s.step === undefined ? `not reached by ${s.lastStep}` : s.step}`
  ).join(", ");
  if (reached.length < entry.seeds.length) return perSeed;
  return `${mean(reached.map((s) => s.step!)).toFixed(0)} (${perSeed})`;
}

/** The report's one-line headline: every verdict sentence, joined. */
export function headline(input: ReportInput): string {
  return verdictLines(summarize(input)).join(" ");
}

// ---------------------------------------------------------------------------------------
// Text pieces shared by table.md and index.html

/** "62.0 ± 25.4 (n=2)", "40.0 (n=1)", "–" (no value). */
export function formatAccuracy(ci: ConfidenceInterval): string {
  if (ci.n === 0) return "–";
  if (ci.halfWidth === undefined) return `${ci.mean.toFixed(1)} (n=1)`;
  return `${ci.mean.toFixed(1)} ± ${ci.halfWidth.toFixed(1)} (n=${ci.n})`;
}

function formatRatio(value: number): string {
  return Number.isNaN(value) ? "–" : value.toFixed(3);
}

function formatPoster(value: number | undefined): string {
  return value === undefined ? "–" : value.toFixed(1);
}

function describeArm(spec: Spec, arm: string): string {
  const a = spec.arms[arm];
  if (!a) return arm;
  if (!a.finetune) return `${arm} (Base checkpoint, no fine-tuning)`;
  const layers = a.layers === "all" ? "all layers" : `layers ${a.layers.join(", ")}`;
  return a.lambda > 0 ? `${arm} (λ=${a.lambda}, ${layers})` : `${arm} (λ=0, NTP only)`;
}

/** One paragraph: task, model size, steps, seeds, backend, arms. */
export function setupLine(input: ReportInput): string {
  const { spec } = input;
  const t = spec.task;
  const m = spec.model;
  const tokensPerSide = Math.floor(t.image_size / m.patch_size);
  const seeds = spec.seeds.join(", ");
  return `Task ${t.name} (${t.image_size} px images, ${t.train} training samples per seed, ` +
    `${t.test} held-out test samples); model ${m.name} (d_model ${m.d_model}, ${m.layers} layers, ` +
    `${m.heads} heads, patch ${m.patch_size} px = ${
      tokensPerSide * tokensPerSide
    } visual tokens); ` +
    `fine-tuning ${spec.train.steps} steps at batch ${spec.train.batch_size}, lr ${spec.train.lr} ` +
    `(${spec.train.optimizer}); seeds ${seeds} (n=${spec.seeds.length}); backend ${input.backend}. ` +
    `Arms: ${Object.keys(spec.arms).map((arm) => describeArm(spec, arm)).join("; ")}.`;
}

const TABLE_HEADERS = [
  "Arm",
  "Accuracy % (ours, mean ± 95% CI)",
  "Target attention ratio",
  "Poster, Qwen 2.5-VL %",
];

function tableCells(arm: ArmSummary): string[] {
  return [
    arm.label,
    formatAccuracy(arm.accuracy),
    formatRatio(arm.attentionRatio),
    formatPoster(arm.poster),
  ];
}

export const NOT_RUN = "not run";

/** Headers of Table 1 (one row per task). */
export const TABLE1_HEADERS = [
  "Task",
  "Base (ours)",
  "NTP (ours)",
  "KLAL+NTP (ours)",
  "KLAL − NTP (ours, paired t)",
  "Base (poster)",
  "NTP (poster)",
  "KLAL+NTP (poster)",
  "KLAL − NTP (poster)",
];

function gainCell(row: Table1Row): string {
  if (!row.run) return NOT_RUN;
  const gain = row.gain;
  if (!gain || Number.isNaN(gain.meanDiff)) return "–";
  const test = gain.p === undefined ? "n=1, no p" : formatP(gain.p);
  return `${signedPoints(gain.meanDiff)} (${test})`;
}

/** Table 1's cells for one task, in TABLE1_HEADERS order. */
export function table1Cells(row: Table1Row): string[] {
  const ours = (arm: ArmSummary | undefined) =>
    !row.run ? NOT_RUN : arm ? formatAccuracy(arm.accuracy) : "–";
  const p = row.poster;
  return [
    row.label,
    ours(row.base),
    ours(row.ntp),
    ours(row.klal),
    gainCell(row),
    formatPoster(p?.base),
    formatPoster(p?.ntp),
    formatPoster(p?.klal),
    p ? signedPoints(p.klal - p.ntp) : "–",
  ];
}

export const TABLE2_HEADERS = ["Model", "Line Intersection", "Line Tracing", "Source"];

/** Table 2's rows: ours first, then the poster's quoted rows. */
export function table2Cells(ours: Table2Ours): string[][] {
  const cell = (arm: ArmSummary | undefined) => arm ? formatAccuracy(arm.accuracy) : NOT_RUN;
  return [
    [
      "NTP + KLAL (ours, tiny VLM)",
      cell(ours.lineIntersection),
      cell(ours.lineTracing),
      "this experiment",
    ],
    ...POSTER_TABLE2.map((r) => [
      r.model,
      r.lineIntersection.toFixed(2),
      r.lineTracing.toFixed(2),
      "reported in the paper, not run here",
    ]),
  ];
}

const REACH_HEADERS = ["Arm", "Accuracy reached", "Steps (validation set)"];

function reachCells(summary: LearningSummary): string[][] {
  return summary.reach.map((r) => [r.label, `≥ ${r.threshold.toFixed(1)}%`, formatStepsToReach(r)]);
}

/** Markdown text that cannot open an HTML tag (renderers pass raw HTML through). */
function markdownText(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

function markdownCell(text: string): string {
  return markdownText(text).replaceAll("|", "\\|").replace(/\s+/g, " ");
}

function markdownTable(headers: string[], rows: string[][]): string[] {
  return [
    `| ${headers.map(markdownCell).join(" | ")} |`,
    `| --- | ${headers.slice(1).map(() => "---:").join(" | ")} |`,
    ...rows.map((r) => `| ${r.map(markdownCell).join(" | ")} |`),
  ];
}

/**
 * Markdown: title, setup, Table 1, Table 2, per task the arms with the verdicts, and the
 * steps each arm needed to reach the stated accuracies.
 */
export function renderTableMarkdown(input: ReportInput): string {
  const summaries = summarize(input);
  const rows1 = table1(input);
  const lines: string[] = [
    `# KLAL reproduction: ${markdownText(input.spec.name)}`,
    "",
  ];
  if (input.spec.description) lines.push(markdownText(input.spec.description.trim()), "");
  lines.push(markdownText(setupLine(input)), "");
  lines.push(
    "## Table 1: grounding accuracy %, ours beside the poster's (Qwen 2.5-VL)",
    "",
    ...markdownTable(TABLE1_HEADERS, rows1.map(table1Cells)),
    "",
    'Ours: mean over seeds ± 95% Student-t interval (n seeds); "not run": this experiment ' +
      "did not run the task.",
    "",
    "## Table 2: Line Intersection and Line Tracing, accuracy %",
    "",
    ...markdownTable(TABLE2_HEADERS, table2Cells(table2Ours(rows1))),
    "",
    "Every row but ours is quoted from the poster: reported in the paper, not run here.",
    "",
  );
  for (const s of summaries) {
    const poster = posterRow(s.task);
    lines.push(`## ${markdownText(s.task)}${poster ? ` (poster: ${poster.label})` : ""}`, "");
    lines.push(...markdownTable(TABLE_HEADERS, s.arms.map(tableCells)), "");
    if (!poster) lines.push("The poster has no number for this task.", "");
    for (const c of s.comparisons) lines.push(markdownText(c.text), "");
    if (s.comparisons.length === 0 && s.note) lines.push(markdownText(s.note), "");
    if (s.attentionLine) lines.push(markdownText(s.attentionLine), "");
  }
  const learning = learningSummary(input);
  if (learning) {
    lines.push(
      "## Sample efficiency: fine-tuning steps to reach an accuracy",
      "",
      ...markdownTable(REACH_HEADERS, reachCells(learning)),
      "",
      ...learning.thresholds.map((t) => markdownText(`${t.value.toFixed(1)}%: ${t.why}.`)),
      "",
    );
  }
  lines.push(
    `Created ${
      markdownText(input.createdAt)
    }. Poster numbers: Esmaeilkhani and Latecki, WACV 2026, ` +
      "Tables 1 and 2 (Qwen 2.5-VL); ours are a tiny VLM pretrained on a generic synthetic mix, " +
      "so compare the direction and size of the gaps, not the absolute numbers.",
  );
  return lines.join("\n") + "\n";
}
// ---------------------------------------------------------------------------------------
// Charts

const COLUMN_COLOURS: Record<PaperColumn, string[]> = {
  "Base": ["#9e9e9e", "#bdbdbd"],
  "NTP": ["#4c78a8", "#72a1d6", "#2f4b7c"],
  "KLAL+NTP": ["#e45756", "#f58518", "#b6372f", "#ff9d98"],
  "other": ["#54a24b", "#b279a2", "#9d755d", "#eeca3b"],
};

/** Arm labels and one colour each, stable across all charts. */
function armPalette(input: ReportInput): { domain: string[]; range: string[] } {
  const arms = [
    ...new Set([
      ...Object.keys(input.spec.arms),
      ...input.rows.map((r) => r.arm),
      ...input.curves.map((c) => c.arm),
    ]),
  ];
  const used: Record<PaperColumn, number> = { "Base": 0, "NTP": 0, "KLAL+NTP": 0, "other": 0 };
  const ranked = arms.map((arm, i) => ({ arm, i, column: paperColumn(input.spec, arm) }))
    .sort((a, b) => COLUMN_ORDER.indexOf(a.column) - COLUMN_ORDER.indexOf(b.column) || a.i - b.i);
  const domain: string[] = [];
  const range: string[] = [];
  for (const { arm, column } of ranked) {
    const colours = COLUMN_COLOURS[column];
    domain.push(armLabel(input.spec, arm));
    range.push(colours[used[column]++ % colours.length]);
  }
  return { domain, range };
}

/** The palette restricted to the labels a chart shows, so its legend lists only those. */
function paletteFor(palette: { domain: string[]; range: string[] }, labels: Iterable<string>) {
  const shown = new Set(labels);
  const keep = palette.domain.map((label, i) => ({ label, colour: palette.range[i] }))
    .filter((entry) => shown.has(entry.label));
  return { domain: keep.map((e) => e.label), range: keep.map((e) => e.colour) };
}

function armLabel(spec: Spec, arm: string): string {
  const column = paperColumn(spec, arm);
  return column === "other" ? arm : `${column} (${arm})`;
}

function accuracyChart(
  s: TaskSummary,
  palette: ReturnType<typeof armPalette>,
) {
  const arms = s.arms.filter((a) => a.accuracy.n > 0);
  if (arms.length === 0) return undefined;
  const labels = arms.map((a) => a.label);
  const x = {
    field: "label",
    type: "nominal",
    sort: labels,
    title: null,
    axis: { labelAngle: 0, labelLimit: 160 },
  };
  const clampPercent = (v: number) => Math.min(100, Math.max(0, v));
  const summary = arms.map((a) => ({
    label: a.label,
    mean: a.accuracy.mean,
    n: a.accuracy.n,
    low: clampPercent(a.accuracy.low ?? a.accuracy.mean),
    high: clampPercent(a.accuracy.high ?? a.accuracy.mean),
    ci: a.accuracy.halfWidth === undefined ? "n=1" : `± ${a.accuracy.halfWidth.toFixed(1)}`,
  }));
  const seeds = arms.flatMap((a) =>
    [...a.accuracyBySeed].map(([seed, value]) => ({ label: a.label, seed, value }))
  );
  const poster = arms.filter((a) => a.poster !== undefined)
    .map((a) => ({ label: a.label, poster: a.poster }));
  const y = { type: "quantitative", scale: { domain: [0, 100] } };
  const layer: object[] = [
    {
      data: { values: summary },
      mark: { type: "bar", size: 46, opacity: 0.85 },
      encoding: {
        x,
        y: { ...y, field: "mean", title: "grounding accuracy %" },
        color: {
          field: "label",
          type: "nominal",
          scale: paletteFor(palette, labels),
          legend: null,
        },
        tooltip: [
          { field: "label", title: "arm" },
          { field: "mean", title: "mean %", format: ".1f" },
          { field: "ci", title: "95% CI" },
          { field: "n", title: "seeds" },
        ],
      },
    },
    {
      data: { values: summary.filter((d) => d.n > 1) },
      mark: { type: "rule", strokeWidth: 1.6, color: "#333" },
      encoding: { x, y: { ...y, field: "low" }, y2: { field: "high" } },
    },
    {
      data: { values: seeds },
      mark: { type: "point", filled: true, size: 36, color: "#222", opacity: 0.8 },
      encoding: {
        x,
        y: { ...y, field: "value" },
        tooltip: [
          { field: "label", title: "arm" },
          { field: "seed", title: "seed" },
          { field: "value", title: "accuracy %", format: ".1f" },
        ],
      },
    },
  ];
  if (poster.length > 0) {
    layer.push({
      data: { values: poster },
      mark: { type: "tick", size: 58, thickness: 3, color: "#111", opacity: 0.9 },
      encoding: {
        x,
        y: { ...y, field: "poster" },
        tooltip: [
          { field: "label", title: "arm" },
          { field: "poster", title: "poster (Qwen 2.5-VL) %" },
        ],
      },
    });
  }
  return {
    title: {
      text: `Grounding accuracy: ${s.task}`,
      subtitle: [
        "bar = mean over seeds, line = 95% CI, dots = seeds",
        ...(poster.length > 0 ? ["black tick = poster (Qwen 2.5-VL)"] : []),
      ],
    },
    width: { step: 110 },
    height: 260,
    layer,
  };
}

function lossChart(input: ReportInput, palette: ReturnType<typeof armPalette>) {
  if (input.curves.length === 0) return undefined;
  const series = new Map<string, CurvePoint[]>();
  for (const point of input.curves) {
    const id = JSON.stringify([point.arm, point.seed]);
    if (!series.has(id)) series.set(id, []);
    series.get(id)!.push(point);
  }
  const values: object[] = [];
  for (const points of series.values()) {
    points.sort((a, b) => a.step - b.step);
    const label = armLabel(input.spec, points[0].arm);
    for (const [part, pick] of [["NTP loss", "ntp"], ["KLAL loss", "klal"]] as const) {
      const raw = points.map((p) => p[pick]);
      const ema = debiasedEma(raw, 0.1);
      points.forEach((p, i) => {
        if (Number.isFinite(raw[i])) {
          values.push({ label, seed: p.seed, step: p.step, part, value: raw[i], ema: ema[i] });
        }
      });
    }
  }
  const x = { field: "step", type: "quantitative", title: "training step" };
  const labels = new Set(input.curves.map((c) => armLabel(input.spec, c.arm)));
  const color = {
    field: "label",
    type: "nominal",
    scale: paletteFor(palette, labels),
    title: "arm",
    legend: { symbolOpacity: 1, symbolStrokeWidth: 3 },
  };
  return {
    title: {
      text: "Training loss",
      subtitle: "faint = logged values, bold = debiased EMA (α = 0.1), one line per seed",
    },
    data: { values },
    facet: { column: { field: "part", type: "nominal", title: null, sort: ["NTP loss"] } },
    spec: {
      width: 340,
      height: 220,
      layer: [
        {
          mark: { type: "line", opacity: 0.25, strokeWidth: 1 },
          encoding: {
            x,
            y: { field: "value", type: "quantitative", title: "loss", scale: { zero: false } },
            color,
            detail: { field: "seed", type: "nominal" },
          },
        },
        {
          mark: { type: "line", strokeWidth: 2.2 },
          encoding: {
            x,
            y: { field: "ema", type: "quantitative" },
            color,
            detail: { field: "seed", type: "nominal" },
            tooltip: [
              { field: "label", title: "arm" },
              { field: "seed", title: "seed" },
              { field: "step", title: "step" },
              { field: "value", title: "loss", format: ".4f" },
              { field: "ema", title: "EMA", format: ".4f" },
            ],
          },
        },
      ],
    },
    resolve: { scale: { y: "independent" } },
  };
}

function layerAttentionChart(
  input: ReportInput,
  s: TaskSummary,
  palette: ReturnType<typeof armPalette>,
) {
  const perSeed: { label: string; layer: string; index: number; seed: number; value: number }[] =
    [];
  for (const row of input.rows) {
    const match = row.task === s.task ? PER_LAYER_RATIO.exec(row.metric) : null;
    if (!match || !Number.isFinite(row.value)) continue;
    const index = Number(match[1]);
    perSeed.push({
      label: armLabel(input.spec, row.arm),
      layer: `L${index}`,
      index,
      seed: row.seed,
      value: row.value,
    });
  }
  if (perSeed.length === 0) return undefined;
  const groups = new Map<string, typeof perSeed>();
  for (const d of perSeed) {
    const id = JSON.stringify([d.label, d.index]);
    if (!groups.has(id)) groups.set(id, []);
    groups.get(id)!.push(d);
  }
  const means = [...groups.values()].map((g) => ({
    label: g[0].label,
    layer: g[0].layer,
    index: g[0].index,
    mean: mean(g.map((d) => d.value)),
    // The label sits above the highest seed's dot.
    top: Math.max(...g.map((d) => d.value)),
    n: g.length,
  }));
  const layers = [...new Set(perSeed.map((d) => d.index))].sort((a, b) => a - b)
    .map((i) => `L${i}`);
  const labels = palette.domain.filter((label) => perSeed.some((d) => d.label === label));
  const x = {
    field: "layer",
    type: "ordinal",
    sort: layers,
    title: "layer",
    axis: { labelAngle: 0 },
  };
  const xOffset = { field: "label", type: "nominal", sort: labels };
  const color = {
    field: "label",
    type: "nominal",
    scale: paletteFor(palette, labels),
    title: "arm",
  };
  return {
    title: {
      text: `Target attention ratio per layer: ${s.task}`,
      subtitle: "attention mass on target patches / uniform share; dashed rule = chance (1)",
    },
    // A number, not a step: with xOffset a step would size each arm's bar.
    width: Math.max(160, layers.length * (34 * labels.length + 24)),
    height: 240,
    layer: [
      {
        data: { values: means },
        mark: { type: "bar", opacity: 0.85 },
        encoding: {
          x,
          xOffset,
          y: { field: "mean", type: "quantitative", title: "target attention ratio" },
          color,
          tooltip: [
            { field: "label", title: "arm" },
            { field: "layer", title: "layer" },
            { field: "mean", title: "mean ratio", format: ".3f" },
            { field: "n", title: "seeds" },
          ],
        },
      },
      {
        data: { values: means },
        mark: { type: "text", dy: -8, fontSize: 10, color: "#333" },
        encoding: {
          x,
          xOffset,
          y: { field: "top", type: "quantitative" },
          text: { field: "mean", type: "quantitative", format: ".2f" },
        },
      },
      {
        data: { values: perSeed },
        mark: { type: "point", filled: true, size: 18, color: "#222", opacity: 0.7 },
        encoding: { x, xOffset, y: { field: "value", type: "quantitative" } },
      },
      {
        data: { values: [{ chance: 1 }] },
        mark: { type: "rule", strokeDash: [5, 4], color: "#333" },
        encoding: { y: { field: "chance", type: "quantitative" } },
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------
// Attention maps: shared pieces of the poster-like figure and the explorer

/** Pixels per side of one attention map in the figures. */
const MAP_PX = 136;
/** Pixels per side of a map in the explorer. */
const EXPLORER_PX = 230;
/** Samples in the poster-like figure. */
const FIGURE_SAMPLES = 4;
/** Numbers the explorer may embed before it drops seeds, then samples. */
const EXPLORER_BUDGET = 400_000;

/** Heatmap colours for `shown` in 0..1 (0 is also fully transparent). */
const HEAT_COLOUR = { scheme: { name: "orangered", extent: [0.35, 1] }, domain: [0, 1] };

/**
 * How strongly a map cell is drawn, 0..1: attention relative to a uniform spread on a log
 * scale, log(v * n) / log(n) clamped to [0, 1]. At or below uniform it is invisible; all
 * attention on one patch is 1. The same scale for every arm, so maps compare across arms.
 */
export function relativeToUniform(value: number, n: number): number {
  if (n <= 1 || !(value > 0)) return 0;
  return Math.min(1, Math.max(0, Math.log(value * n) / Math.log(n)));
}

/** The same scaling as a Vega expression over `datum.value`, for the explorer. */
function relativeToUniformExpr(n: number): string {
  return `clamp(log(max(datum.value * ${n}, 1e-12)) / log(${n}), 0, 1)`;
}

const grayCache = new Map<string, string>();

/**
 * A light grey copy of a PNG data URL, for drawing attention on top of it (colour belongs to
 * the heatmap). The original is returned when it cannot be decoded.
 */
export function lightGrayImage(url: string): string {
  const cached = grayCache.get(url);
  if (cached) return cached;
  let out = url;
  try {
    const image = new Image();
    const base64 = url.slice(url.indexOf(",") + 1);
    image.src = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)) as unknown as Buffer;
    if (image.complete && image.width > 0) {
      const canvas = createCanvas(image.width, image.height);
      const ctx = canvas.getContext("2d");
      ctx.drawImage(image, 0, 0);
      const pixels = ctx.getImageData(0, 0, image.width, image.height);
      const d = pixels.data;
      for (let i = 0; i < d.length; i += 4) {
        const gray = 0.3 * d[i] + 0.59 * d[i + 1] + 0.11 * d[i + 2];
        const light = 255 - (255 - gray) * 0.5;
        d[i] = d[i + 1] = d[i + 2] = light;
      }
      ctx.putImageData(pixels, 0, 0);
      out = canvas.toDataURL("image/png");
    }
  } catch {
    // Not a decodable PNG: overlay on the original.
  }
  grayCache.set(url, out);
  return out;
}

/** Split text into lines of at most `width` characters at spaces. */
function wrap(text: string, width: number, maxLines = 2): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  if (lines.length > maxLines) {
    lines.length = maxLines;
    lines[maxLines - 1] = clip(lines[maxLines - 1] + " …", width);
  }
  return lines;
}

/** Patches counted as target: P_i > 0 and P_i >= 1% of the largest P (the rule of eval.ts). */
export function targetSupport(target: readonly number[]): boolean[] {
  const max = Math.max(0, ...target);
  return target.map((p) => p > 0 && p >= 0.01 * max);
}

/** Element-wise mean of equally long maps. */
function meanMap(maps: readonly number[][]): number[] {
  if (maps.length === 0) return [];
  return maps[0].map((_, i) => mean(maps.map((m) => m[i])));
}

/** Attention mass of a map on the target's support. */
export function massOnTarget(map: readonly number[], target: readonly number[]): number {
  const support = targetSupport(target);
  return map.reduce((sum, v, i) => sum + (support[i] ? v : 0), 0);
}

function round4(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}

/** Grid cells of a row-major side x side map; `shown` is relativeToUniform of the value. */
function mapCells(values: readonly number[], side: number) {
  return values.map((v, i) => {
    const r = Math.floor(i / side);
    const c = i % side;
    const shown = round4(relativeToUniform(v, values.length));
    return { r, c, r1: r + 1, c1: c + 1, value: round4(v), shown };
  });
}

function imageLayer(size: number, data: object, transform: object[] = []) {
  return {
    data,
    transform,
    mark: {
      type: "image",
      width: size,
      height: size,
      align: "left",
      baseline: "top",
      aspect: false,
      smooth: false,
    },
    encoding: { url: { field: "url", type: "nominal" }, x: { value: 0 }, y: { value: 0 } },
  };
}

/** Rects over the image: colour and opacity follow `shown` (0..1). */
function heatLayer(side: number, data: object, transform: object[] = [], what = "attention") {
  const axis = (reverse: boolean) => ({
    type: "quantitative",
    scale: { domain: [0, side], nice: false, zero: false, reverse },
    axis: null,
  });
  return {
    data,
    transform,
    mark: { type: "rect", strokeWidth: 0 },
    encoding: {
      x: { field: "c", ...axis(false) },
      x2: { field: "c1" },
      y: { field: "r", ...axis(true) },
      y2: { field: "r1" },
      color: { field: "shown", type: "quantitative", scale: HEAT_COLOUR, legend: null },
      opacity: {
        field: "shown",
        type: "quantitative",
        scale: { domain: [0, 1], range: [0, 0.9] },
        legend: null,
      },
      tooltip: [
        { field: "r", title: "patch row" },
        { field: "c", title: "patch column" },
        { field: "value", title: what, format: ".4f" },
      ],
    },
  };
}

/** One figure set per arm (its first seed), arms in paper-column order. */
function figureSetsByArm(input: ReportInput): FigureSet[] {
  const sets = (input.figures ?? []).filter((f) => f.samples.length > 0);
  const byArm = new Map<string, FigureSet>();
  for (const set of [...sets].sort((a, b) => a.seed - b.seed)) {
    if (!byArm.has(set.arm)) byArm.set(set.arm, set);
  }
  const rank = (arm: string) => COLUMN_ORDER.indexOf(paperColumn(input.spec, arm));
  return [...byArm.values()].sort((a, b) => rank(a.arm) - rank(b.arm));
}

/** Sample indices every given set has, in the first set's order. */
function commonSamples(sets: FigureSet[]): number[] {
  return sets[0].samples.map((s) => s.index)
    .filter((index) => sets.every((set) => set.samples.some((s) => s.index === index)));
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The poster's "KLAL sharpens attention maps": input, then each arm's map and answer. */
function attentionFiguresChart(input: ReportInput) {
  const sets = figureSetsByArm(input).slice(0, 6);
  if (sets.length === 0) return undefined;
  const side = sets[0].gridSide;
  const indices = commonSamples(sets).slice(0, FIGURE_SAMPLES);
  if (indices.length === 0) return undefined;
  // Wrapped here, not clipped by Vega: headless Vega can only estimate text widths.
  const chars = Math.floor(MAP_PX / 6.6);
  const titleStyle = {
    fontSize: 11,
    subtitleFontSize: 10.5,
    anchor: "start",
    offset: 5,
    subtitlePadding: 2,
  };
  // Each image once in the spec; cells pick theirs by id.
  const images: { id: string; url: string }[] = [];
  const imageRef = (url: string) => {
    let entry = images.find((x) => x.url === url);
    if (!entry) images.push(entry = { id: `img${images.length}`, url });
    return entry.id;
  };
  const imageOf = (url: string) =>
    imageLayer(MAP_PX, { name: "figure_images" }, [{ filter: `datum.id === '${imageRef(url)}'` }]);
  const rows = indices.map((index) => {
    const first = sets[0].samples.find((s) => s.index === index)!;
    const gray = lightGrayImage(first.image);
    const cells: object[] = [{
      width: MAP_PX,
      height: MAP_PX,
      title: {
        ...titleStyle,
        text: wrap(first.prompt, chars),
        subtitle: clip(`#${index} · answer "${first.answer}"`, chars + 4),
        color: "#111",
      },
      layer: [imageOf(first.image)],
    }];
    for (const set of sets) {
      const sample = set.samples.find((s) => s.index === index)!;
      const map = meanMap(sample.layers);
      const mass = massOnTarget(map, sample.target);
      cells.push({
        width: MAP_PX,
        height: MAP_PX,
        title: {
          ...titleStyle,
          text: clip(armLabel(input.spec, set.arm), chars),
          subtitle: [
            clip(`says "${sample.prediction}"`, chars - 2) + (sample.correct ? " ✓" : " ✗"),
            `on target ${mass.toFixed(2)}`,
          ],
          subtitleColor: sample.correct ? "#1b7f3b" : "#b6372f",
        },
        layer: [imageOf(gray), heatLayer(side, { values: mapCells(map, side) })],
      });
    }
    cells.push({
      width: MAP_PX,
      height: MAP_PX,
      title: { ...titleStyle, text: "ground truth P(S)", subtitle: ["target patches", " "] },
      layer: [imageOf(gray), heatLayer(side, { values: mapCells(first.target, side) }, [], "P")],
    });
    return { hconcat: cells, spacing: 12 };
  });
  return {
    title: {
      text: "Attention of the answer tokens over the image",
      subtitle: [
        "maps averaged over heads and layers; colour = attention relative to a uniform spread " +
        "(log scale: clear at or below uniform,",
        'brightest when all attention sits on one patch); "on target" = attention mass on ' +
        "the ground-truth patches",
      ],
    },
    datasets: { figure_images: images },
    vconcat: rows,
    spacing: 16,
  };
}

/** Every map the explorer can show, keyed "sample|model|layer|head" (layer "all", head "mean"). */
function explorerMaps(sets: FigureSet[], samples: number[]) {
  const maps: { k: string; v: number[]; i: number[] }[] = [];
  for (const set of sets) {
    for (const sample of set.samples.filter((s) => samples.includes(s.index))) {
      const model = `${set.arm}@${set.seed}`;
      const n = sample.target.length;
      const index = Array.from({ length: n }, (_, i) => i);
      const layerCount = sample.layers.length;
      const headCount = sample.heads[0]?.length ?? 0;
      const add = (layer: string, head: string, values: number[]) =>
        maps.push({
          k: `${sample.index}|${model}|${layer}|${head}`,
          v: values.map(round4),
          i: index,
        });
      add("all", "mean", meanMap(sample.layers));
      for (let h = 0; h < headCount; h++) {
        add("all", String(h), meanMap(sample.heads.map((layer) => layer[h])));
      }
      for (let l = 0; l < layerCount; l++) {
        add(String(l), "mean", sample.layers[l]);
        for (let h = 0; h < headCount; h++) add(String(l), String(h), sample.heads[l][h]);
      }
    }
  }
  return maps;
}

/**
 * The attention explorer: pick a held-out sample, model (arm and seed), layer and head, and
 * see that map over the image beside the ground-truth map. Vega-Lite params bound to inputs.
 */
function explorerChart(input: ReportInput) {
  const all = (input.figures ?? []).filter((f) => f.samples.length > 0);
  if (all.length === 0) return undefined;
  const rank = (arm: string) => COLUMN_ORDER.indexOf(paperColumn(input.spec, arm));
  let sets = [...all].sort((a, b) => rank(a.arm) - rank(b.arm) || a.seed - b.seed);
  const side = sets[0].gridSide;
  const size = (s: FigureSet[], k: number) => {
    const first = s[0].samples[0];
    const per = (first.layers.length + 1) * ((first.heads[0]?.length ?? 0) + 1) *
      first.target.length * 2;
    return s.length * k * per;
  };
  let samples = commonSamples(sets);
  if (size(sets, samples.length) > EXPLORER_BUDGET) sets = figureSetsByArm(input);
  samples = commonSamples(sets);
  while (samples.length > 1 && size(sets, samples.length) > EXPLORER_BUDGET) samples.pop();
  const first = sets[0].samples[0];
  const layerCount = first.layers.length;
  const headCount = first.heads[0]?.length ?? 0;
  const range = (n: number) => Array.from({ length: n }, (_, i) => String(i));
  const models = sets.map((s) => `${s.arm}@${s.seed}`);
  const modelLabels = sets.map((s) => `${armLabel(input.spec, s.arm)}, seed ${s.seed}`);
  const firstSet = sets[0];
  const sampleLabels = samples.map((index) => {
    const s = firstSet.samples.find((x) => x.index === index)!;
    return `#${index}: ${clip(s.prompt, 40)}`;
  });
  const defaultModel =
    models[sets.findIndex((s) => paperColumn(input.spec, s.arm) === "KLAL+NTP")] ??
      models[0];
  const params = [
    {
      name: "explore_sample",
      value: String(samples[0]),
      bind: {
        input: "select",
        options: samples.map(String),
        labels: sampleLabels,
        name: "sample ",
      },
    },
    {
      name: "explore_model",
      value: defaultModel,
      bind: { input: "select", options: models, labels: modelLabels, name: "model " },
    },
    {
      name: "explore_layer",
      value: "all",
      bind: {
        input: "select",
        options: ["all", ...range(layerCount)],
        labels: ["mean over layers", ...range(layerCount).map((l) => `layer ${l}`)],
        name: "layer ",
      },
    },
    {
      name: "explore_head",
      value: "mean",
      bind: {
        input: "select",
        options: ["mean", ...range(headCount)],
        labels: ["mean over heads", ...range(headCount).map((h) => `head ${h}`)],
        name: "head ",
      },
    },
    {
      name: "explore_scaled",
      value: false,
      bind: {
        input: "checkbox",
        name: "scale each map to its own maximum (off: relative to uniform, log scale) ",
      },
    },
  ];
  const images = samples.map((index) => ({
    s: String(index),
    url: lightGrayImage(firstSet.samples.find((x) => x.index === index)!.image),
  }));
  const targets = samples.map((index) => {
    const t = firstSet.samples.find((x) => x.index === index)!.target;
    return { s: String(index), v: t.map(round4), i: t.map((_, i) => i) };
  });
  const info = sets.flatMap((set) =>
    set.samples.filter((s) => samples.includes(s.index)).map((s) => ({
      s: String(s.index),
      m: `${set.arm}@${set.seed}`,
      line1: `prompt: "${clip(s.prompt, 70)}"`,
      line0: `true answer: "${clip(s.answer, 40)}"`,
      line2: `${armLabel(input.spec, set.arm)}, seed ${set.seed}, says "${s.prediction}" ${
        s.correct ? "✓ correct" : "✗ wrong"
      }`,
      correct: s.correct,
    }))
  );
  const cellTransform = (valueScaled: string) => [
    { flatten: ["v", "i"], as: ["value", "i"] },
    { joinaggregate: [{ op: "max", field: "value", as: "peak" }] },
    { calculate: `floor(datum.i / ${side})`, as: "r" },
    { calculate: `datum.i % ${side}`, as: "c" },
    { calculate: "datum.r + 1", as: "r1" },
    { calculate: "datum.c + 1", as: "c1" },
    { calculate: valueScaled, as: "shown" },
  ];
  const onSample = { filter: "datum.s === explore_sample" };
  const panelTitle = (text: string) => ({ text, fontSize: 12, anchor: "start" });
  return {
    title: {
      text: "Attention explorer",
      subtitle: "answer tokens' attention over the visual tokens; choose below the chart",
    },
    params,
    datasets: {
      explore_maps: explorerMaps(sets, samples),
      explore_images: images,
      explore_targets: targets,
      explore_info: info,
    },
    vconcat: [
      {
        width: 2 * EXPLORER_PX + 20,
        height: 50,
        data: { name: "explore_info" },
        transform: [{ filter: "datum.s === explore_sample && datum.m === explore_model" }],
        layer: [
          {
            mark: { type: "text", align: "left", baseline: "top", fontSize: 12 },
            encoding: { text: { field: "line1" }, x: { value: 0 }, y: { value: 0 } },
          },
          {
            mark: { type: "text", align: "left", baseline: "top", fontSize: 12 },
            encoding: { text: { field: "line0" }, x: { value: 0 }, y: { value: 17 } },
          },
          {
            mark: {
              type: "text",
              align: "left",
              baseline: "top",
              fontSize: 12,
              fontWeight: "bold",
            },
            encoding: {
              text: { field: "line2" },
              x: { value: 0 },
              y: { value: 34 },
              color: {
                condition: { test: "datum.correct", value: "#1b7f3b" },
                value: "#b6372f",
              },
            },
          },
        ],
      },
      {
        hconcat: [
          {
            width: EXPLORER_PX,
            height: EXPLORER_PX,
            title: panelTitle("attention of the chosen model, layer and head"),
            layer: [
              imageLayer(EXPLORER_PX, { name: "explore_images" }, [onSample]),
              heatLayer(side, { name: "explore_maps" }, [
                {
                  filter: "datum.k === explore_sample + '|' + explore_model + '|' + " +
                    "explore_layer + '|' + explore_head",
                },
                ...cellTransform(
                  "explore_scaled ? (datum.peak > 0 ? datum.value / datum.peak : 0) : " +
                    relativeToUniformExpr(side * side),
                ),
              ]),
            ],
          },
          {
            width: EXPLORER_PX,
            height: EXPLORER_PX,
            title: panelTitle("ground truth P(S)"),
            layer: [
              imageLayer(EXPLORER_PX, { name: "explore_images" }, [onSample]),
              heatLayer(
                side,
                { name: "explore_targets" },
                [onSample, ...cellTransform(relativeToUniformExpr(side * side))],
                "P",
              ),
            ],
          },
        ],
        spacing: 20,
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------
// Grounding per head, learning curves, breakdowns, sweeps

/** Target attention mass per layer x head, mean over seeds, one panel per arm. */
function headsChart(input: ReportInput) {
  const rows = input.heads ?? [];
  if (rows.length === 0) return undefined;
  const groups = new Map<string, HeadRow[]>();
  for (const row of rows) {
    const id = JSON.stringify([row.arm, row.layer, row.head]);
    if (!groups.has(id)) groups.set(id, []);
    groups.get(id)!.push(row);
  }
  const values = [...groups.values()].map((g) => ({
    label: armLabel(input.spec, g[0].arm),
    layer: `L${g[0].layer}`,
    head: `H${g[0].head}`,
    mass: round4(mean(g.map((r) => r.mass))),
    n: g.length,
  }));
  const peak = Math.max(...values.map((v) => v.mass));
  const headCount = new Set(rows.map((r) => r.head)).size;
  const rank = (label: string) => armPalette(input).domain.indexOf(label);
  const labels = [...new Set(values.map((v) => v.label))].sort((a, b) => rank(a) - rank(b));
  const layers = [...new Set(rows.map((r) => r.layer))].sort((a, b) => a - b).map((l) => `L${l}`);
  const heads = [...new Set(rows.map((r) => r.head))].sort((a, b) => a - b).map((h) => `H${h}`);
  return {
    title: {
      text: "Attention mass on target patches, per layer and head",
      subtitle: "mean over held-out samples and seeds; the colour scale is shared by the panels",
    },
    data: { values },
    facet: {
      column: {
        field: "label",
        type: "nominal",
        sort: labels,
        title: null,
        header: { labelFontSize: 12 },
      },
    },
    spec: {
      // Wide enough for the arm's name above each panel.
      width: { step: Math.max(34, Math.ceil(150 / headCount)) },
      height: { step: 30 },
      encoding: {
        x: { field: "head", type: "ordinal", sort: heads, title: "head", axis: { labelAngle: 0 } },
        y: { field: "layer", type: "ordinal", sort: layers, title: "layer" },
      },
      layer: [
        {
          mark: "rect",
          encoding: {
            color: {
              field: "mass",
              type: "quantitative",
              scale: { scheme: "viridis", domain: [0, Math.max(peak, 1e-6)] },
              title: "mass",
            },
            tooltip: [
              { field: "label", title: "arm" },
              { field: "layer" },
              { field: "head" },
              { field: "mass", format: ".4f" },
              { field: "n", title: "seeds" },
            ],
          },
        },
        {
          mark: { type: "text", fontSize: 10 },
          encoding: {
            text: { field: "mass", format: ".2f" },
            color: {
              condition: { test: `datum.mass > ${peak * 0.6}`, value: "#111" },
              value: "#fff",
            },
          },
        },
      ],
    },
  };
}

/** Validation accuracy and target attention during fine-tuning, per arm (seeds faint). */
function learningChart(
  input: ReportInput,
  palette: ReturnType<typeof armPalette>,
  summary: LearningSummary | undefined,
) {
  const learning = input.learning ?? [];
  if (learning.length === 0) return undefined;
  const seeds = learning.map((p) => ({
    label: armLabel(input.spec, p.arm),
    seed: p.seed,
    step: p.step,
    accuracy: p.accuracy,
    attention: p.targetAttention,
  }));
  const groups = new Map<string, typeof seeds>();
  for (const p of seeds) {
    const id = JSON.stringify([p.label, p.step]);
    if (!groups.has(id)) groups.set(id, []);
    groups.get(id)!.push(p);
  }
  const means = [...groups.values()].map((g) => ({
    label: g[0].label,
    step: g[0].step,
    accuracy: mean(g.map((p) => p.accuracy)),
    attention: mean(g.map((p) => p.attention)),
    n: g.length,
  }));
  const labels = palette.domain.filter((label) => seeds.some((p) => p.label === label));
  const color = {
    field: "label",
    type: "nominal",
    scale: paletteFor(palette, labels),
    title: "arm",
    legend: { symbolOpacity: 1 },
  };
  const x = {
    field: "step",
    type: "quantitative",
    title: "fine-tuning step",
    scale: { domainMin: 0 },
  };
  const panel = (field: string, title: string, extra: object[]) => ({
    width: 330,
    height: 220,
    layer: [
      {
        data: { values: seeds },
        mark: { type: "line", opacity: 0.3, strokeWidth: 1 },
        encoding: {
          x,
          y: { field, type: "quantitative", title },
          color,
          detail: { field: "seed", type: "nominal" },
        },
      },
      {
        data: { values: means },
        mark: { type: "line", strokeWidth: 2.4, point: { size: 26 } },
        encoding: {
          x,
          y: { field, type: "quantitative" },
          color,
          tooltip: [
            { field: "label", title: "arm" },
            { field: "step" },
            { field: "accuracy", title: "accuracy % (mean)", format: ".1f" },
            { field: "attention", title: "target attention (mean)", format: ".3f" },
            { field: "n", title: "seeds" },
          ],
        },
      },
      ...extra,
    ],
  });
  const thresholds = (summary?.thresholds ?? []).map((t) => ({
    value: t.value,
    text: `${t.value.toFixed(1)}%`,
  }));
  const ruleLayers = thresholds.length === 0 ? [] : [
    {
      data: { values: thresholds },
      mark: { type: "rule", strokeDash: [4, 4], color: "#555" },
      encoding: { y: { field: "value", type: "quantitative" } },
    },
    {
      data: { values: thresholds },
      mark: { type: "text", align: "left", dx: 3, dy: -6, fontSize: 10, color: "#555" },
      encoding: {
        y: { field: "value", type: "quantitative" },
        x: { value: 0 },
        text: { field: "text" },
      },
    },
  ];
  return {
    title: {
      text: "Learning curves on the validation set",
      subtitle: `measured every ${input.spec.train.eval_every} steps; bold = mean over seeds, ` +
        "faint = each seed" + (thresholds.length > 0 ? "; dashed = accuracy thresholds" : ""),
    },
    hconcat: [
      panel("accuracy", "validation accuracy %", ruleLayers),
      panel("attention", "attention mass on target patches", []),
    ],
  };
}

/** Natural order of difficulty buckets: "2 crossings" before "10 crossings". */
function difficultyOrder(buckets: string[]): string[] {
  const lead = (s: string) => {
    const m = /^-?\d+(\.\d+)?/.exec(s.trim());
    return m ? Number(m[0]) : NaN;
  };
  return [...buckets].sort((a, b) => {
    const x = lead(a);
    const y = lead(b);
    if (!Number.isNaN(x) && !Number.isNaN(y) && x !== y) return x - y;
    return a.localeCompare(b);
  });
}

/** Accuracy per difficulty bucket and arm: correct / n pooled over seeds, Wilson 95% interval. */
export function breakdownSummary(input: ReportInput) {
  const groups = new Map<string, { arm: string; difficulty: string; correct: number; n: number }>();
  for (const row of input.breakdown ?? []) {
    const id = JSON.stringify([row.arm, row.difficulty]);
    const g = groups.get(id) ?? { arm: row.arm, difficulty: row.difficulty, correct: 0, n: 0 };
    g.correct += row.correct;
    g.n += row.n;
    groups.set(id, g);
  }
  return [...groups.values()].map((g) => {
    const w = wilsonInterval(g.correct, g.n);
    return {
      label: armLabel(input.spec, g.arm),
      difficulty: String(g.difficulty),
      correct: g.correct,
      n: g.n,
      accuracy: round4(100 * w.estimate),
      low: round4(100 * w.low),
      high: round4(100 * w.high),
    };
  });
}

function breakdownChart(input: ReportInput, palette: ReturnType<typeof armPalette>) {
  const values = breakdownSummary(input);
  if (values.length === 0) return undefined;
  const buckets = difficultyOrder([...new Set(values.map((v) => v.difficulty))]);
  const labels = palette.domain.filter((label) => values.some((v) => v.label === label));
  return {
    title: {
      text: "Accuracy by difficulty",
      subtitle: "held-out samples pooled over seeds; line = Wilson 95% interval",
    },
    data: { values },
    width: Math.max(180, buckets.length * (22 * labels.length + 24)),
    height: 220,
    encoding: {
      x: {
        field: "difficulty",
        type: "nominal",
        sort: buckets,
        title: "difficulty",
        axis: { labelAngle: 0, labelLimit: 120 },
      },
      xOffset: { field: "label", type: "nominal", sort: labels },
    },
    layer: [
      {
        mark: { type: "bar", opacity: 0.85 },
        encoding: {
          y: {
            field: "accuracy",
            type: "quantitative",
            title: "accuracy %",
            scale: { domain: [0, 100] },
          },
          color: {
            field: "label",
            type: "nominal",
            scale: paletteFor(palette, labels),
            title: "arm",
          },
          tooltip: [
            { field: "label", title: "arm" },
            { field: "difficulty" },
            { field: "accuracy", title: "accuracy %", format: ".1f" },
            { field: "correct" },
            { field: "n" },
          ],
        },
      },
      {
        mark: { type: "rule", color: "#333" },
        encoding: { y: { field: "low", type: "quantitative" }, y2: { field: "high" } },
      },
    ],
  };
}

/** Layers an arm supervises, as a sorted list ("all" spelled out). */
function supervisedLayers(spec: Spec, arm: ArmSpec): number[] {
  return arm.layers === "all"
    ? Array.from({ length: spec.model.layers }, (_, i) => i)
    : [...arm.layers].sort((a, b) => a - b);
}

/** What the experiment swept: KLAL arms differing only by lambda, or only by layers. */
export function sweeps(spec: Spec): { lambda: string[][]; layers: string[][] } {
  const klal = Object.entries(spec.arms).filter(([, a]) => a.finetune && a.lambda > 0);
  const ntp = Object.entries(spec.arms).find(([, a]) => a.finetune && a.lambda === 0)?.[0];
  const group = (keyOf: (a: ArmSpec) => string, valueOf: (a: ArmSpec) => string) => {
    const groups = new Map<string, [string, ArmSpec][]>();
    for (const entry of klal) {
      const key = keyOf(entry[1]);
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key)!.push(entry);
    }
    return [...groups.values()].filter((g) => new Set(g.map(([, a]) => valueOf(a))).size > 1);
  };
  const layersOf = (a: ArmSpec) => JSON.stringify(supervisedLayers(spec, a));
  const lambda = group(layersOf, (a) => String(a.lambda)).map((g) => [
    ...(ntp ? [ntp] : []),
    ...g.sort((a, b) => a[1].lambda - b[1].lambda).map(([name]) => name),
  ]);
  const layers = group((a) => String(a.lambda), layersOf).map((g) => g.map(([name]) => name));
  return { lambda, layers };
}

/** Accuracy and target attention ratio of a set of arms along one swept axis. */
function sweepChart(
  s: TaskSummary,
  arms: string[],
  xOf: (arm: string) => string,
  text: { title: string; subtitle: string; x: string },
  reference: ArmSummary | undefined,
  palette: ReturnType<typeof armPalette>,
) {
  const chosen = arms.map((arm) => s.arms.find((a) => a.arm === arm))
    .filter((a): a is ArmSummary => a !== undefined && a.accuracy.n > 0);
  if (chosen.length < 2) return undefined;
  const order = chosen.map((a) => xOf(a.arm));
  const summary = chosen.map((a) => ({
    x: xOf(a.arm),
    label: a.label,
    mean: a.accuracy.mean,
    low: Math.max(0, a.accuracy.low ?? a.accuracy.mean),
    high: Math.min(100, a.accuracy.high ?? a.accuracy.mean),
    n: a.accuracy.n,
    ratio: Number.isNaN(a.attentionRatio) ? null : a.attentionRatio,
  }));
  const seeds = chosen.flatMap((a) =>
    [...a.accuracyBySeed].map(([seed, value]) => ({ x: xOf(a.arm), seed, value }))
  );
  const x = { field: "x", type: "ordinal", sort: order, title: text.x, axis: { labelAngle: 0 } };
  const color = {
    field: "label",
    type: "nominal",
    scale: paletteFor(palette, chosen.map((a) => a.label)),
    legend: null,
  };
  const accuracy: object[] = [
    {
      data: { values: summary },
      mark: { type: "bar", opacity: 0.85, size: 30 },
      encoding: {
        x,
        color,
        y: {
          field: "mean",
          type: "quantitative",
          title: "accuracy %",
          scale: { domain: [0, 100] },
        },
        tooltip: [
          { field: "label", title: "arm" },
          { field: "mean", title: "mean %", format: ".1f" },
          { field: "n", title: "seeds" },
        ],
      },
    },
    {
      data: { values: summary.filter((d) => d.n > 1) },
      mark: { type: "rule", color: "#333", strokeWidth: 1.5 },
      encoding: { x, y: { field: "low", type: "quantitative" }, y2: { field: "high" } },
    },
    {
      data: { values: seeds },
      mark: { type: "point", filled: true, color: "#222", size: 26 },
      encoding: { x, y: { field: "value", type: "quantitative" } },
    },
  ];
  if (reference) {
    accuracy.push({
      data: { values: [{ y: reference.accuracy.mean, text: `${reference.label}` }] },
      mark: { type: "rule", strokeDash: [5, 4], color: "#4c78a8" },
      encoding: { y: { field: "y", type: "quantitative" } },
    }, {
      data: { values: [{ y: reference.accuracy.mean, text: `${reference.label}` }] },
      mark: { type: "text", align: "left", dx: 3, dy: -6, color: "#4c78a8", fontSize: 10 },
      encoding: {
        y: { field: "y", type: "quantitative" },
        x: { value: 0 },
        text: { field: "text" },
      },
    });
  }
  const ratio = [
    {
      data: { values: summary.filter((d) => d.ratio !== null) },
      mark: { type: "bar", opacity: 0.85, size: 30 },
      encoding: {
        x,
        color,
        y: { field: "ratio", type: "quantitative", title: "target attention ratio" },
        tooltip: [{ field: "label", title: "arm" }, { field: "ratio", format: ".3f" }],
      },
    },
    {
      data: { values: [{ chance: 1 }] },
      mark: { type: "rule", strokeDash: [5, 4], color: "#333" },
      encoding: { y: { field: "chance", type: "quantitative" } },
    },
  ];
  return {
    title: { text: text.title, subtitle: text.subtitle },
    hconcat: [
      { width: { step: 56 }, height: 220, layer: accuracy },
      { width: { step: 56 }, height: 220, layer: ratio },
    ],
  };
}

/** The λ-sweep and per-layer ablation charts of a task, keyed like chartSpecs. */
function sweepCharts(
  input: ReportInput,
  s: TaskSummary,
  palette: ReturnType<typeof armPalette>,
): Record<string, object> {
  const found = sweeps(input.spec);
  const charts: Record<string, object> = {};
  const ntp = s.arms.find((a) => a.column === "NTP" && a.accuracy.n > 0);
  found.lambda.forEach((arms, i) => {
    const klalArm = input.spec.arms[arms[arms.length - 1]];
    const layers = supervisedLayers(input.spec, klalArm);
    const chart = sweepChart(
      s,
      arms,
      (arm) => `λ=${input.spec.arms[arm].lambda}`,
      {
        title: `λ sweep: ${s.task}`,
        subtitle: `KLAL weight λ (λ=0 is NTP); supervised layers ${
          layers.length === input.spec.model.layers ? "all" : layers.join(", ")
        }; bar = mean, line = 95% CI, dots = seeds; right: dashed = chance (1)`,
        x: "λ",
      },
      undefined,
      palette,
    );
    if (chart) charts[`lambda_sweep${i > 0 ? i + 1 : ""}:${s.task}`] = chart;
  });
  found.layers.forEach((arms, i) => {
    const lambda = input.spec.arms[arms[0]].lambda;
    const chart = sweepChart(
      s,
      arms,
      (arm) => {
        const layers = supervisedLayers(input.spec, input.spec.arms[arm]);
        return layers.length === input.spec.model.layers
          ? "all"
          : layers.map((l) => `L${l}`).join("+");
      },
      {
        title: `Which layers to supervise: ${s.task}`,
        subtitle: `KLAL (λ=${lambda}) on different layers; dashed blue = the NTP arm; ` +
          "right: target attention ratio, dashed = chance (1)",
        x: "supervised layers",
      },
      ntp,
      palette,
    );
    if (chart) charts[`layer_ablation${i > 0 ? i + 1 : ""}:${s.task}`] = chart;
  });
  return charts;
}

/**
 * The report's Vega-Lite specs, in page order: `accuracy:<task>`, `attention_layers:<task>`,
 * `heads`, `attention_figures`, `explorer`, `loss`, `learning`, `breakdown`,
 * `lambda_sweep:<task>`, `layer_ablation:<task>` (each only when its data exists).
 */
export function chartSpecs(input: ReportInput): Record<string, object> {
  const palette = armPalette(input);
  const summaries = summarize(input);
  const charts: Record<string, object> = {};
  const put = (key: string, chart: object | undefined) => {
    if (chart) charts[key] = chart;
  };
  for (const s of summaries) put(`accuracy:${s.task}`, accuracyChart(s, palette));
  for (const s of summaries) {
    put(`attention_layers:${s.task}`, layerAttentionChart(input, s, palette));
  }
  put("heads", headsChart(input));
  put("attention_figures", attentionFiguresChart(input));
  put("explorer", explorerChart(input));
  put("loss", lossChart(input, palette));
  put("learning", learningChart(input, palette, learningSummary(input)));
  put("breakdown", breakdownChart(input, palette));
  for (const s of summaries) Object.assign(charts, sweepCharts(input, s, palette));
  const config = {
    font: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
    view: { stroke: null },
    axis: { gridColor: "#eee", domainColor: "#999", tickColor: "#999" },
    title: { anchor: "start", subtitleColor: "#666", fontSize: 14 },
    concat: { spacing: 24 },
  };
  for (const key of Object.keys(charts)) {
    charts[key] = { ...charts[key], config, background: "white" };
  }
  return charts;
}

/** Render a Vega-Lite spec to SVG headless (used for the no-JavaScript fallback and figures). */
export async function renderChartSvg(spec: object): Promise<string> {
  // deno-lint-ignore no-explicit-any
  const compiled = vegaLite.compile(spec as any).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterise an SVG (text included) to PNG with Skia, at `scale` times its size. */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array> {
  const image = new Image();
  const loaded = new Promise<void>((resolve, reject) => {
    image.onload = () => resolve();
    image.onerror = (e) => reject(new Error(`could not rasterise the SVG: ${e}`));
  });
  image.src = new TextEncoder().encode(svg) as unknown as Buffer;
  if (!image.complete) await loaded;
  const width = Math.max(1, Math.round(image.width * scale));
  const height = Math.max(1, Math.round(image.height * scale));
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(image, 0, 0, width, height);
  return new Uint8Array(canvas.toBuffer("image/png"));
}

/** File name (no extension) of a chart under figures/: "accuracy:grid-patch" -> "accuracy-grid-patch". */
export function figureName(key: string): string {
  return key.replace(/[^A-Za-z0-9_-]+/g, "-");
}

/** Prefix every id in an SVG (and its references) so several inline SVGs cannot clash. */
export function prefixSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_, id) => `id="${prefix}${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id) => `url(#${prefix}${id})`)
    .replace(/href="#([^"]+)"/g, (_, id) => `href="#${prefix}${id}"`);
}

// ---------------------------------------------------------------------------------------
// index.html

const BUNDLES = [
  { pkg: "vega", file: "vega.min.js" },
  { pkg: "vega-lite", file: "vega-lite.min.js" },
  { pkg: "vega-embed", file: "vega-embed.min.js" },
] as const;

/** Candidate locations of a package's minified browser bundle, best first. */
function bundleUrls(pkg: string, file: string): URL[] {
  const urls: URL[] = [];
  try {
    // Resolves to node_modules/<pkg>/build/<entry>.js when nodeModulesDir is on.
    const resolved = new URL(import.meta.resolve(pkg));
    if (resolved.protocol === "file:") urls.push(new URL(file, resolved));
  } catch {
    // Not resolvable this way; fall through to the repository-relative path.
  }
  urls.push(new URL(`../node_modules/${pkg}/build/${file}`, import.meta.url));
  return urls;
}

let bundleCache: Promise<{ file: string; code: string }[]> | undefined;

/** The three minified bundles' sources; throws naming the missing file and the fix. */
function loadBundles(): Promise<{ file: string; code: string }[]> {
  bundleCache ??= Promise.all(BUNDLES.map(async ({ pkg, file }) => {
    const tried: string[] = [];
    for (const url of bundleUrls(pkg, file)) {
      try {
        return { file, code: await Deno.readTextFile(url) };
      } catch {
        tried.push(pathOf(url));
      }
    }
    throw new Error(
      `Report: expected the ${pkg} browser bundle at ${tried.join(" or ")}, found nothing; ` +
        "run `deno install` in the repository root (deno.json has nodeModulesDir: auto)",
    );
  }));
  bundleCache.catch(() => (bundleCache = undefined));
  return bundleCache;
}

/** The page's stylesheet (also used by reports/index.html). */
export const CSS = `
:root { --fg: #1d2330; --muted: #5d6677; --line: #e3e6eb; --accent: #b6372f; --bg: #fafbfc; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 60px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header .desc { margin: 4px 0 8px; font-size: 16px; }
.meta { color: var(--muted); font-size: 13px; }
nav.toc { font-size: 13px; margin: 10px 0 0; color: var(--muted); }
nav.toc a { color: var(--fg); margin-right: 12px; white-space: nowrap; }
h2 { margin: 36px 0 10px; font-size: 19px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { margin: 22px 0 8px; font-size: 16px; }
.headline { background: white; border: 1px solid var(--line); border-left: 4px solid var(--accent);
  padding: 10px 16px; margin: 18px 0; border-radius: 4px; }
.headline p { margin: 6px 0; font-weight: 600; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; background: white; border: 1px solid var(--line); font-size: 14px; }
th, td { padding: 6px 12px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f4f7; font-weight: 600; }
th.group { text-align: center; border-left: 1px solid var(--line); }
td.num, th.num { font-variant-numeric: tabular-nums; }
td.split, th.split { border-left: 1px solid var(--line); }
td.notrun { color: var(--muted); font-style: italic; }
tr.quoted td { color: var(--muted); }
tr.ours td { font-weight: 600; }
table.compact { font-size: 13px; }
table.compact th, table.compact td { padding: 5px 9px; }
.verdict { font-weight: 600; }
.note { color: var(--muted); }
figure { margin: 18px 0; background: white; border: 1px solid var(--line); border-radius: 4px;
  padding: 12px; overflow-x: auto; }
figure .fallback svg { max-width: 100%; height: auto; }
figcaption a { color: var(--muted); }
.vega-bindings { display: flex; flex-wrap: wrap; gap: 6px 18px; margin-top: 10px; font-size: 13px; }
.vega-bind-name { color: var(--muted); }
pre { background: white; border: 1px solid var(--line); padding: 12px; overflow-x: auto;
  font-size: 12.5px; line-height: 1.4; border-radius: 4px; }
code { font-size: 13px; }
details summary { cursor: pointer; font-weight: 600; margin: 14px 0 6px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; }
`;

// Replaces each pre-rendered SVG with an interactive view when the bundles load.
const BOOT = `
(function () {
  var specs = JSON.parse(document.getElementById("chart-specs").textContent);
  if (typeof vegaEmbed !== "function") return;
  document.querySelectorAll("figure[data-chart]").forEach(function (figure) {
    var key = figure.getAttribute("data-chart");
    var target = figure.querySelector(".live");
    var fallback = figure.querySelector(".fallback");
    if (!target || !specs[key]) return;
    vegaEmbed(target, specs[key], { mode: "vega-lite", renderer: "svg", actions: false })
      .then(function () {
        if (fallback) fallback.style.display = "none";
        figure.setAttribute("data-rendered", "true");
      })
      .catch(function (err) { target.textContent = ""; console.error(key, err); });
  });
})();
`;

function htmlTable(headers: string[], rows: string[][], numericFrom = 1, cls = ""): string {
  const cellClass = (i: number) => (i >= numericFrom ? ' class="num"' : "");
  const head = headers.map((h, i) => `<th${cellClass(i)}>${escapeHtml(h)}</th>`).join("");
  const body = rows.map((r) =>
    `<tr>${r.map((c, i) => `<td${cellClass(i)}>${escapeHtml(c)}</td>`).join("")}</tr>`
  ).join("\n");
  return `<div class="scroll"><table${cls ? ` class="${cls}"` : ""}>\n<thead><tr>${head}</tr>` +
    `</thead>\n<tbody>\n${body}\n</tbody>\n</table></div>`;
}

/** Table 1 with grouped headers: ours (4 columns) and the poster's (4 columns). */
function table1Html(rows: Table1Row[]): string {
  const sub = TABLE1_HEADERS.slice(1).map((h) => h.replace(/ \((ours|poster)(, paired t)?\)$/, ""));
  const head = `<tr><th rowspan="2">Task</th>` +
    `<th class="group" colspan="4">Ours: tiny VLM, mean ± 95% CI (n seeds)</th>` +
    `<th class="group" colspan="4">Poster: Qwen 2.5-VL</th></tr>\n<tr>` +
    sub.map((h, i) =>
      `<th class="num${i === 0 || i === 4 ? " split" : ""}">${escapeHtml(h)}${
        i === 3 ? " (paired t)" : ""
      }</th>`
    ).join("") + "</tr>";
  const body = rows.map((row) => {
    const cells = table1Cells(row);
    return `<tr data-task="${escapeHtml(row.task)}">` + cells.map((c, i) => {
      const classes = [
        i > 0 ? "num" : "",
        i === 1 || i === 5 ? "split" : "",
        c === NOT_RUN ? "notrun" : "",
      ].filter(Boolean).join(" ");
      return `<td${classes ? ` class="${classes}"` : ""}>${escapeHtml(c)}</td>`;
    }).join("") + "</tr>";
  }).join("\n");
  return `<div class="scroll"><table class="compact" id="table1">\n<thead>${head}</thead>\n` +
    `<tbody>\n${body}\n</tbody>\n</table></div>`;
}

function table2Html(ours: Table2Ours): string {
  const rows = table2Cells(ours);
  const head = TABLE2_HEADERS.map((h, i) =>
    `<th${i > 0 && i < 3 ? ' class="num"' : ""}>${escapeHtml(h)}</th>`
  ).join("");
  const body = rows.map((r, row) =>
    `<tr class="${row === 0 ? "ours" : "quoted"}">${
      r.map((c, i) =>
        `<td class="${
          [i > 0 && i < 3 ? "num" : "", c === NOT_RUN ? "notrun" : ""].join(" ").trim()
        }">${escapeHtml(c)}</td>`
      ).join("")
    }</tr>`
  ).join("\n");
  return `<div class="scroll"><table class="compact" id="table2">\n<thead><tr>${head}</tr>` +
    `</thead>\n<tbody>\n${body}\n</tbody>\n</table></div>`;
}

/** What a chart shows, under it. */
export function chartCaption(key: string, input?: ReportInput): string {
  const [kind, task] = key.split(":");
  switch (kind) {
    case "accuracy":
      return `Grounding accuracy on ${task}: mean over seeds with its 95% Student-t interval, ` +
        "each seed as a dot, and the poster's number for the same column as a black tick.";
    case "attention_layers":
      return "The poster's empirical observation, measured: attention mass that the answer " +
        `tokens put on the target patches, divided by a uniform share, per layer, on ${task}. ` +
        "Below the dashed line at 1 the target gets less than average attention.";
    case "heads":
      return "Attention mass on the target patches per layer and head (held-out samples, mean " +
        "over seeds). KLAL supervises the head average; this shows which heads carry it.";
    case "attention_figures":
      return 'Like the poster\'s "KLAL sharpens attention maps": the same held-out samples for ' +
        "every arm (first seed), the attention of the answer tokens overlaid on the image, and " +
        "each model's answer. Last column: the ground-truth map P(S).";
    case "explorer":
      return 'Pick a held-out sample, a model (arm and seed), a layer and a head ("mean" = ' +
        "averaged) with the controls under the chart. Without JavaScript this shows the default " +
        "choice only.";
    case "loss":
      return "Training loss split into its NTP and KLAL parts (the KLAL part is logged for NTP " +
        "arms too, where it is not optimised).";
    case "learning":
      return `Accuracy and grounding on a validation set (seed test_seed + 1, ${
        input?.spec.train.eval_samples ?? "n"
      } samples) every ${input?.spec.train.eval_every ?? "N"} fine-tuning steps: KLAL's ` +
        "sample efficiency, which the poster does not show.";
    case "breakdown":
      return "Held-out accuracy per difficulty bucket of the task, pooled over seeds.";
    default:
      if (kind.startsWith("lambda_sweep")) {
        return `How the KLAL weight λ trades off on ${task}: accuracy and target attention ratio.`;
      }
      return `Which layers KLAL supervises, on ${task}: accuracy and target attention ratio.`;
  }
}

function figureHtml(
  key: string,
  charts: Record<string, object>,
  svgs: Record<string, string>,
  input: ReportInput,
): string {
  if (!(key in charts)) return "";
  const name = figureName(key);
  return [
    `<figure id="fig-${escapeHtml(name)}" data-chart="${escapeHtml(key)}">`,
    `<div class="live"></div>`,
    `<div class="fallback">${svgs[key] ?? ""}</div>`,
    `<figcaption class="note">${escapeHtml(chartCaption(key, input))} ` +
    `<a href="figures/${escapeHtml(name)}.svg">SVG</a> · ` +
    `<a href="figures/${escapeHtml(name)}.png">PNG</a></figcaption>`,
    "</figure>",
  ].join("\n");
}

/** Wall time of the stages that ran and of all stages (as cached entries recorded it). */
function wallTimes(stages: StageInfo[]): string {
  const ran = stages.filter((s) => s.status === "ran");
  const total = stages.reduce((sum, s) => sum + s.seconds, 0);
  const ranSeconds = ran.reduce((sum, s) => sum + s.seconds, 0);
  return `${stages.length} stages: ${ran.length} ran this time (${ranSeconds.toFixed(1)} s), ` +
    `${stages.length - ran.length} came from the cache; ${
      total.toFixed(1)
    } s of stage time in all (cached stages count the time they took when they ran).`;
}

/** The whole offline index.html. `svgs` are pre-rendered charts keyed like `chartSpecs`. */
export function renderHtml(
  input: ReportInput,
  charts: Record<string, object>,
  svgs: Record<string, string>,
  bundles: { file: string; code: string }[],
): string {
  const { spec } = input;
  const summaries = summarize(input);
  const verdicts = verdictLines(summaries);
  const rows1 = table1(input);
  const learning = learningSummary(input);
  const figure = (key: string) => figureHtml(key, charts, svgs, input);
  const keysOf = (prefix: string) => Object.keys(charts).filter((k) => k.startsWith(prefix));
  const sections: { id: string; title: string; html: string[] }[] = [];

  const results: string[] = [
    `<p>${escapeHtml(setupLine(input))}</p>`,
    "<h3>Table 1: grounding accuracy %, ours beside the poster's</h3>",
    table1Html(rows1),
    '<p class="note">Ours: mean over seeds ± 95% Student-t interval (n seeds); the gain is ' +
    'KLAL+NTP − NTP on paired seeds with a two-sided paired t-test. "not run": this ' +
    "experiment did not run the task. Poster: Qwen 2.5-VL, Table 1.</p>",
    ...keysOf("accuracy:").map(figure),
    "<h3>Table 2: Line Intersection and Line Tracing, accuracy %</h3>",
    table2Html(table2Ours(rows1)),
    '<p class="note">Every row but ours is quoted from the poster&#39;s Table 2: reported in ' +
    "the paper, not run here.</p>",
  ];
  for (const s of summaries) {
    const poster = posterRow(s.task);
    results.push(
      `<h3>Every arm: ${escapeHtml(s.task)}${
        poster ? ` <span class="note">(poster: ${escapeHtml(poster.label)})</span>` : ""
      }</h3>`,
      htmlTable(TABLE_HEADERS, s.arms.map(tableCells)),
    );
    if (!poster) results.push('<p class="note">The poster has no number for this task.</p>');
    for (const c of s.comparisons) results.push(`<p class="verdict">${escapeHtml(c.text)}</p>`);
    if (s.comparisons.length === 0 && s.note) {
      results.push(`<p class="note">${escapeHtml(s.note)}</p>`);
    }
    if (s.attentionLine) results.push(`<p>${escapeHtml(s.attentionLine)}</p>`);
  }
  sections.push({ id: "results", title: "Results", html: results });

  const observation = [...keysOf("attention_layers:"), "heads"].map(figure).filter(Boolean);
  if (observation.length > 0) {
    sections.push({
      id: "observation",
      title: "Where the answer looks: the poster's empirical observation",
      html: observation,
    });
  }
  const maps = ["attention_figures", "explorer"].map(figure).filter(Boolean);
  if (maps.length > 0) sections.push({ id: "maps", title: "Attention maps", html: maps });

  const training = ["loss", "learning"].map(figure).filter(Boolean);
  if (learning) {
    training.push(
      "<h3>Sample efficiency: fine-tuning steps to reach an accuracy</h3>",
      htmlTable(REACH_HEADERS, reachCells(learning), 1, "compact"),
      `<p class="note">${
        learning.thresholds.map((t) => escapeHtml(`${t.value.toFixed(1)}%: ${t.why}.`)).join(" ")
      } Steps are the first validation point at or above the threshold; "not reached" means ` +
        "no validation point got there within the run.</p>",
    );
  }
  if (training.length > 0) sections.push({ id: "training", title: "Training", html: training });

  const breakdowns = ["breakdown", ...keysOf("lambda_sweep"), ...keysOf("layer_ablation")]
    .map(figure).filter(Boolean);
  if (breakdowns.length > 0) {
    sections.push({ id: "breakdowns", title: "Breakdowns and sweeps", html: breakdowns });
  }

  const runInfo = [
    `<p>Backend ${escapeHtml(input.backend)}. ${escapeHtml(wallTimes(input.stages))}</p>`,
  ];
  if (input.stages.length > 0) {
    runInfo.push(htmlTable(
      ["Stage", "Key", "Status", "Seconds", "Samples/s"],
      input.stages.map((st) => [
        st.stage,
        st.key.slice(0, 12),
        st.status,
        st.seconds.toFixed(1),
        st.samplesPerSecond === undefined ? "–" : st.samplesPerSecond.toFixed(1),
      ]),
      3,
      "compact",
    ));
    runInfo.push('<p class="note">Keys are cut to 12 characters; results.json has them whole.</p>');
  } else {
    runInfo.push('<p class="note">No stage information.</p>');
  }
  runInfo.push(
    "<details><summary>Resolved spec (JSON)</summary>",
    `<pre>${escapeHtml(JSON.stringify(spec, null, 2))}</pre>`,
    "</details>",
  );
  sections.push({ id: "run", title: "The run: stages, cache keys, spec", html: runInfo });

  const parts: string[] = [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>KLAL: ${escapeHtml(spec.name)}</title>`,
    `<style>${CSS}</style>`,
    "</head>",
    "<body>",
    "<main>",
    "<header>",
    `<h1>KLAL reproduction: ${escapeHtml(spec.name)}</h1>`,
  ];
  if (spec.description) parts.push(`<p class="desc">${escapeHtml(spec.description)}</p>`);
  parts.push(
    `<p class="meta">Created ${escapeHtml(input.createdAt)} · backend ${
      escapeHtml(input.backend)
    } · seeds ${escapeHtml(spec.seeds.join(", "))}</p>`,
    `<nav class="toc">${
      sections.map((s) => `<a href="#${s.id}">${escapeHtml(s.title)}</a>`).join("")
    }</nav>`,
    "</header>",
    `<section class="headline" id="headline">${
      verdicts.map((v) => `<p>${escapeHtml(v)}</p>`).join("")
    }</section>`,
  );
  for (const section of sections) {
    parts.push(
      `<section id="${section.id}">`,
      `<h2>${escapeHtml(section.title)}</h2>`,
      ...section.html,
      "</section>",
    );
  }
  parts.push(
    "<footer>Poster numbers: Esmaeilkhani and Latecki, “Direct Visual Grounding by Directing " +
      "Attention of Visual Tokens”, WACV 2026, Tables 1 and 2 (Qwen 2.5-VL). Ours come from a " +
      "tiny VLM pretrained on a generic synthetic mix: compare the direction and size of the " +
      "gaps, not the absolute numbers. This file is self-contained and works offline; every " +
      "chart is also in figures/ as SVG and PNG.</footer>",
    "</main>",
  );
  for (const bundle of bundles) {
    parts.push(
      `<script data-bundle="${escapeHtml(bundle.file)}">${
        inlineScriptSource(bundle.code)
      }</script>`,
    );
  }
  parts.push(
    `<script type="application/json" id="chart-specs">${jsonForScript(charts)}</script>`,
    `<script>${BOOT}</script>`,
    "</body>",
    "</html>",
  );
  return parts.join("\n") + "\n";
}

function ciJson(arm: ArmSummary | undefined) {
  if (!arm) return null;
  const { mean, halfWidth, n } = arm.accuracy;
  return {
    arm: arm.arm,
    mean,
    halfWidth: halfWidth ?? null,
    n,
    text: formatAccuracy(arm.accuracy),
  };
}

/**
 * results.json: `{ experiment, createdAt, backend, headline, spec, rows, stages, table1,
 * table2, learning, validation }`. `rows` are the raw numbers; `validation` the learning
 * curves (validation set, during fine-tuning); the rest is what the tables show.
 */
export function resultsJson(input: ReportInput): string {
  const { spec, rows, stages, backend, createdAt } = input;
  const rows1 = table1(input);
  const ours2 = table2Ours(rows1);
  const learning = learningSummary(input);
  return JSON.stringify(
    {
      experiment: spec.name,
      createdAt,
      backend,
      headline: headline(input),
      spec,
      rows,
      stages,
      table1: rows1.map((r) => ({
        task: r.task,
        label: r.label,
        run: r.run,
        base: ciJson(r.base),
        ntp: ciJson(r.ntp),
        klal: ciJson(r.klal),
        gain: r.gain && !Number.isNaN(r.gain.meanDiff)
          ? { meanDiff: r.gain.meanDiff, p: r.gain.p ?? null, seeds: r.gain.seeds }
          : null,
        poster: r.poster ?? null,
        cells: table1Cells(r),
      })),
      table2: {
        ours: {
          lineIntersection: ciJson(ours2.lineIntersection),
          lineTracing: ciJson(ours2.lineTracing),
        },
        quoted: POSTER_TABLE2,
      },
      learning: learning ?? null,
      // The validation curves themselves (accuracy and grounding every eval_every steps).
      validation: input.learning ?? [],
    },
    null,
    2,
  ) + "\n";
}

/**
 * Write index.html, results.json, table.md and figures/<chart>.{svg,png} into `dir`
 * (creating it). Writes to a temp dir next to `dir` and renames into place, so a crash never
 * leaves a half-written report.
 */
export async function writeReport(dir: string, input: ReportInput): Promise<void> {
  const bundles = await loadBundles();
  const charts = chartSpecs(input);
  const raw: Record<string, string> = {};
  const svgs: Record<string, string> = {};
  for (const [i, [key, chart]] of Object.entries(charts).entries()) {
    raw[key] = await renderChartSvg(chart);
    svgs[key] = prefixSvgIds(raw[key], `chart${i}-`);
  }
  const target = dir.replace(/[\\/]+$/, "");
  const slash = Math.max(target.lastIndexOf("/"), target.lastIndexOf("\\"));
  const parent = slash >= 0 ? target.slice(0, slash) || "/" : ".";
  await Deno.mkdir(parent, { recursive: true });
  const suffix = `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
  const temp = `${target}.tmp-${suffix}`;
  const old = `${target}.old-${suffix}`;
  await Deno.mkdir(`${temp}/figures`, { recursive: true });
  try {
    await Deno.writeTextFile(`${temp}/results.json`, resultsJson(input));
    await Deno.writeTextFile(`${temp}/table.md`, renderTableMarkdown(input));
    await Deno.writeTextFile(`${temp}/index.html`, renderHtml(input, charts, svgs, bundles));
    for (const [key, svg] of Object.entries(raw)) {
      const name = figureName(key);
      await Deno.writeTextFile(`${temp}/figures/${name}.svg`, svg);
      await Deno.writeFile(`${temp}/figures/${name}.png`, await svgToPng(svg));
    }
    let hadOld = false;
    try {
      await Deno.rename(target, old);
      hadOld = true;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    try {
      await Deno.rename(temp, target);
    } catch (error) {
      if (hadOld) await Deno.rename(old, target);
      throw error;
    }
    if (hadOld) await Deno.remove(old, { recursive: true });
  } catch (error) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    throw error;
  }
}
