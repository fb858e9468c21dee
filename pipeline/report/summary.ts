/**
 * Summaries and statistics: per task and arm the accuracy over seeds with its 95% interval,
 * KLAL-vs-NTP verdicts (paired t-test), Table 1 and Table 2 rows, steps to reach an accuracy
 * on the learning curves, difficulty breakdowns, and which sweeps the arms form. Pure
 * functions of a ReportInput; tables, charts and results.json all read numbers from here.
 */

import type { ArmSpec, Spec } from "../spec_types.ts";
import { ci95, type ConfidenceInterval, mean, pairedTTest, wilsonInterval } from "../stats.ts";
import {
  armLabel,
  COLUMN_ORDER,
  type PaperColumn,
  paperColumn,
  POSTER_TABLE1,
  posterKey,
  type PosterRow,
  posterRow,
  posterValue,
} from "./poster.ts";
import type { LearningRow, ReportInput, ResultRow } from "./types.ts";

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

/** Round to 4 decimals: enough for charts and tooltips, and it keeps embedded data small. */
export function round4(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}

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

/** "+1.2", "-0.4", or "0.0" when the difference rounds to nothing. */
export function signedPoints(diff: number): string {
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

/** Layers an arm supervises, as a sorted list ("all" spelled out). */
export function supervisedLayers(spec: Spec, arm: ArmSpec): number[] {
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
