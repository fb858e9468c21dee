/**
 * Summaries and statistics: per task and arm the accuracy over seeds with its 95% interval
 * (and, from the test items, a bootstrap interval over seeds and items), KLAL-vs-NTP and
 * KLAL-vs-control verdicts (paired t-test, Holm-adjusted over the report, paired bootstrap,
 * McNemar per seed) worded against the fixed-answer floor, Table 1 and Table 2 rows, steps to
 * reach an accuracy on the learning curves, difficulty breakdowns, and which sweeps the arms
 * form. Pure functions of a ReportInput; tables, charts and results.json all read numbers
 * from here.
 */

import type { ArmSpec, Spec } from "../spec/types.ts";
import {
  type BootstrapInterval,
  ci95,
  type ConfidenceInterval,
  groupMeans,
  holmAdjust,
  mean,
  pairedTTest,
  wilsonInterval,
} from "./stats.ts";
import {
  answerClasses,
  armBootstrap,
  type ArmConfusion,
  armConfusion,
  baseGroups,
  itemsOf,
  mcnemarBySeed,
  pairedBootstrap,
  type SeedMcNemar,
} from "./items.ts";
import {
  armLabel,
  COLUMN_ORDER,
  controlKind,
  isStandIn,
  type PaperColumn,
  paperColumn,
  POSTER_TABLE1,
  posterKey,
  type PosterRow,
  posterRow,
  posterValue,
  taskLabel,
} from "./poster.ts";
import type { ReportInput, ResultRow, TaskFloor } from "./types.ts";
import type { PromptOverlap } from "../eval/prompt_overlap.ts";

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

/** `items` in groups of equal `keyOf` (compared as JSON), in the order of each group's first. */
export function groupBy<T>(items: Iterable<T>, keyOf: (item: T) => unknown): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const id = JSON.stringify(keyOf(item));
    const group = groups.get(id);
    if (group) group.push(item);
    else groups.set(id, [item]);
  }
  return [...groups.values()];
}

/** One arm of one task, summarised over seeds. */
export interface ArmSummary {
  arm: string;
  column: PaperColumn;
  /** "KLAL+NTP (klal)", "Control: shuffled maps (shuffled)". */
  label: string;
  /** For a control arm, what it changes ("shuffled maps", "pointer head"). */
  control: string | undefined;
  accuracy: ConfidenceInterval;
  accuracyBySeed: Map<number, number>;
  /**
   * Bootstrap 95% interval over seeds crossed with test items (test sampling included);
   * undefined without item outcomes for every seed.
   */
  bootstrap: BootstrapInterval | undefined;
  /** Mean over seeds of target_attention_ratio; NaN when absent. */
  attentionRatio: number;
  /** Mean over seeds of target_attention_ratio_first (first answer position); NaN when absent. */
  attentionRatioFirst: number;
  /** Mean over seeds of visual_share (raw attention share on visual tokens); NaN when absent. */
  visualShare: number;
  /** Mean over seeds of visual_share_first; NaN when absent. */
  visualShareFirst: number;
  /**
   * Mean over seeds of each of the task's own measures (RefCOCO: mean IoU and accuracy at
   * IoU >= 0.3), by name; empty for tasks without any.
   */
  taskMetrics: Record<string, number>;
  /** Mean over seeds of target_attention (mass); NaN when absent. */
  attentionMass: number;
  poster: number | undefined;
}

/**
 * One KLAL+NTP arm against a reference arm on the seeds both have: the NTP arm (`kind`
 * "ntp"), or a control arm ("control").
 */
export interface Comparison {
  task: string;
  kind: "ntp" | "control";
  klal: ArmSummary;
  /** The reference: the NTP arm, or the control. */
  other: ArmSummary;
  seeds: number[];
  /**
   * Per seed, its Base, when the fine-tunes start from several (base.seed a list): the test is
   * then over the Bases' means and the bootstrap draws Bases first. Undefined with one Base.
   */
  bases?: number[];
  meanDiff: number;
  /** Paired t-test over seeds (over Bases' means, with several); undefined with one seed. */
  p: number | undefined;
  /** p after Holm's adjustment over every comparison of the report (one family). */
  pHolm: number | undefined;
  /** How many p-values the Holm family holds. */
  family: number;
  /** Paired bootstrap of the difference over seeds and test items; undefined without items. */
  bootstrap: BootstrapInterval | undefined;
  /** Item-level exact McNemar per seed (onlyA: items only KLAL+NTP got right). */
  mcnemar: SeedMcNemar[];
  /** The honest verdict, stated against the larger of the floor and the reference. */
  text: string;
}

/** A task's summaries, in paper-column order, and its verdicts. */
export interface TaskSummary {
  task: string;
  /** The task's label in tables and charts (a stand-in says so). */
  label: string;
  /** A real-format task whose test set came from its offline stand-in. */
  standIn: boolean;
  /** The fixed-answer floor on the task's test set, when the eval stage recorded it. */
  floor: TaskFloor | undefined;
  arms: ArmSummary[];
  /** KLAL+NTP vs NTP first, then KLAL+NTP vs each control. */
  comparisons: Comparison[];
  /** Shown when there is nothing to compare. */
  note: string | undefined;
  /** "Target attention ratio ...: NTP 1.020, KLAL+NTP 11.300." when the rows exist. */
  attentionLine: string | undefined;
  /** The task's own measures per arm (mean IoU, ...), when it has any. */
  measuresLine: string | undefined;
  /** What the Base's pretraining prompts hold of the test prompts, when both were read. */
  overlapLine: string | undefined;
  /** Truth x prediction per arm, for a task whose answers form a small closed set. */
  confusion: ArmConfusion[];
  /** A further test set's name (task.source.tests): its own Holm family, no poster number. */
  testSet?: string;
}

/**
 * The further test sets (task.source.tests), each summarised as the main test set is, from
 * its own rows, items and floor: the same trainings, another test set. Each is its own Holm
 * family (the main report's family is unchanged by adding one), and the poster's number,
 * which is for its own split, is left out.
 */
export function testSetSummaries(input: ReportInput): TaskSummary[] {
  const task = input.spec.task.name;
  return (input.testSets ?? []).flatMap((t) => {
    const sub: ReportInput = {
      ...input,
      rows: t.rows,
      items: t.items,
      floors: t.floor ? { [task]: t.floor } : {},
      testSets: undefined,
      promptOverlap: undefined,
    };
    const s = summarize(sub).find((x) => x.task === task);
    if (!s) return [];
    return [{
      ...s,
      label: `test set ${t.name}`,
      testSet: t.name,
      arms: s.arms.map((a) => ({ ...a, poster: undefined })),
    }];
  });
}

/** Tasks in the order they first appear in the rows (the spec's task when there are none). */
function taskNames(input: ReportInput): string[] {
  const names = [...new Set(input.rows.map((row) => row.task))];
  return names.length > 0 ? names : [input.spec.task.name];
}

/** The label of a task in this report's tables and charts (see taskLabel). */
export function reportTaskLabel(input: ReportInput, task: string): string {
  return taskLabel(input.spec, task, input.taskSpecs?.[task]);
}

function valuesBySeed(rows: ResultRow[], arm: string, metric: string): Map<number, number> {
  const bySeed = new Map<number, number>();
  for (const row of rows) {
    if (row.arm === arm && row.metric === metric) bySeed.set(row.seed, row.value);
  }
  return bySeed;
}

/**
 * Arms of a task: spec order, then arms found only in rows; sorted Base, NTP, KLAL+NTP,
 * Control, other.
 */
function armsOfTask(input: ReportInput, taskRows: ResultRow[]): string[] {
  const seen = [...new Set([...Object.keys(input.spec.arms), ...taskRows.map((r) => r.arm)])];
  const withRows = seen.filter((arm) => taskRows.some((row) => row.arm === arm));
  const arms = withRows.length > 0 ? withRows : Object.keys(input.spec.arms);
  const rank = (arm: string) => COLUMN_ORDER.indexOf(paperColumn(input.spec, arm));
  return arms.map((arm, i) => ({ arm, i })).sort((a, b) => rank(a.arm) - rank(b.arm) || a.i - b.i)
    .map((entry) => entry.arm);
}

/** '; attention that ignores the question (spread over the patches with ink): 31.8'. */
function questionBlindWords(floor: TaskFloor | undefined): string {
  const ink = floor?.questionBlind?.ink;
  if (ink === undefined || Number.isNaN(ink)) return "";
  const objects = floor?.questionBlind?.objects;
  return `; attention that ignores the question, spread evenly over the patches with ink, ` +
    `scores ${ink.toFixed(3)}${
      objects === undefined || Number.isNaN(objects)
        ? ""
        : `, over the patches of every candidate object ${objects.toFixed(3)}`
    }`;
}

/** 'Prompts the Base saw: 27 of 27 distinct test prompts occur word for word ...'. */
function overlapWords(o: PromptOverlap | undefined): string | undefined {
  if (!o) return undefined;
  const examples = o.examples.length > 0
    ? ` (${o.examples.map((e) => `"${e}"`).join(", ")}${o.seen > o.examples.length ? ", ..." : ""})`
    : "";
  return `What the Base saw of the questions: ${o.seen} of ${o.distinct} distinct test prompts ` +
    `occur word for word among its pretraining prompts${examples}; ${o.wordsSeen} of the ` +
    `${o.words} words of the test prompts occur there.`;
}

/** The metrics every eval entry records, whatever the task (the rest are the task's own). */
const EVAL_METRICS = new Set([
  "accuracy",
  "target_attention",
  "target_attention_ratio",
  "target_attention_ratio_first",
  "visual_share",
  "visual_share_first",
]);

/** The names of the task's own measures among an arm's rows, sorted. */
function taskMetricNames(rows: readonly ResultRow[], arm: string): string[] {
  const names = rows.filter((r) => r.arm === arm && !EVAL_METRICS.has(r.metric))
    .map((r) => r.metric).filter((m) => !m.startsWith("target_attention_ratio@"));
  return [...new Set(names)].sort();
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

/** "[58.1, 65.9]" for an accuracy interval, "[+2.0, +9.5]" for a difference. */
export function formatInterval(interval: BootstrapInterval, signed = false): string {
  const f = (v: number) => (signed ? signedPoints(v) : v.toFixed(1));
  return `[${f(interval.low)}, ${f(interval.high)}]`;
}

/**
 * An arm within this many points of the fixed-answer floor has not left its prior: it does
 * no better than always giving one answer.
 */
export const FLOOR_MARGIN = 2;

/** "0.4 points above", "1.2 points below", "at" (within 0.05). */
function offsetWords(diff: number): string {
  const text = Math.abs(diff).toFixed(1);
  if (text === "0.0") return "exactly at";
  return `${text} points ${diff > 0 ? "above" : "below"}`;
}

/**
 * The floor a claim is stated against: the larger of the fixed-answer floor and the task's
 * best shortcut rule (what answering from a cue a reviewer would think of gets).
 */
export function claimFloor(floor: TaskFloor): number {
  return Math.max(floor.accuracy, floor.shortcut?.accuracy ?? -Infinity);
}

/** 'the fixed-answer floor (33.4%, always "1")', or the shortcut floor when it is larger. */
function floorName(floor: TaskFloor): string {
  const how = floor.kind === "majority" ? "always" : "the best constant,";
  const fixed = `the fixed-answer floor (${floor.accuracy.toFixed(1)}%, ${how} "${floor.answer}")`;
  if (!floor.shortcut || floor.shortcut.accuracy <= floor.accuracy) return fixed;
  return `the shortcut floor (${
    floor.shortcut.accuracy.toFixed(1)
  }%, answering from ${floor.shortcut.rule}; ${fixed.replace(/^the /, "")} is lower)`;
}

/** Whether an arm's mean accuracy is within FLOOR_MARGIN points of the claim floor (or below). */
export function atFloor(arm: ArmSummary, floor: TaskFloor | undefined): boolean {
  return floor !== undefined && arm.accuracy.n > 0 && !Number.isNaN(floor.accuracy) &&
    arm.accuracy.mean <= claimFloor(floor) + FLOOR_MARGIN;
}

/**
 * The wording rules against the floor, for KLAL+NTP vs NTP:
 * - NTP at the floor (within FLOOR_MARGIN points): NTP has not left its prior, so the
 *   comparison measures getting off the prior, not grounding beyond it;
 * - otherwise NTP's distance above the floor is stated;
 * - KLAL+NTP at the floor: said so (it has not left its prior either);
 * - NTP below the floor: KLAL+NTP's gain is also stated from the floor, the larger of the two.
 */
function floorSentences(floor: TaskFloor | undefined, klal: ArmSummary, ntp: ArmSummary) {
  if (!floor || Number.isNaN(floor.accuracy) || ntp.accuracy.n === 0) return [];
  const f = claimFloor(floor);
  const n = ntp.accuracy.mean;
  const k = klal.accuracy.mean;
  const out: string[] = [];
  const ntpAt = atFloor(ntp, floor);
  if (ntpAt) {
    out.push(
      `NTP is ${offsetWords(n - f)} ${floorName(floor)}, so NTP has not left its prior: the ` +
        "comparison measures getting off the prior.",
    );
  } else out.push(`NTP is ${offsetWords(n - f)} ${floorName(floor)}.`);
  if (atFloor(klal, floor)) {
    out.push(
      ntpAt
        ? `KLAL+NTP is ${offsetWords(k - f)} the floor: it has not left its prior either.`
        : `KLAL+NTP is ${offsetWords(k - f)} ${floorName(floor)}: it has not left its prior.`,
    );
  } else if (f > n) {
    out.push(
      `From the larger of the floor and NTP (the floor), KLAL+NTP is ${
        signedPoints(k - f)
      } points.`,
    );
  }
  return out;
}

/** "shuffled maps" -> "shuffled-map control", "pointer head" -> "pointer-head control". */
export function controlName(kind: string): string {
  return kind.split(", ").map((part) => part.replace(/ maps$/, "-map").replace(/ head$/, "-head"))
    .join(", ") + " control";
}

/** The statistics of a comparison, before its wording (which needs the Holm family). */
type RawComparison = Omit<Comparison, "pHolm" | "family" | "text">;

function compareArms(
  input: ReportInput,
  task: string,
  kind: Comparison["kind"],
  klal: ArmSummary,
  other: ArmSummary,
): RawComparison {
  const seeds = [...klal.accuracyBySeed.keys()].filter((s) => other.accuracyBySeed.has(s))
    .sort((a, b) => a - b);
  const bases = baseGroups(input.spec, klal.arm, seeds);
  const pair = { task, kind, klal, other, seeds, ...(bases ? { bases } : {}) };
  if (seeds.length === 0) {
    return { ...pair, meanDiff: NaN, p: undefined, bootstrap: undefined, mcnemar: [] };
  }
  const accA = seeds.map((s) => klal.accuracyBySeed.get(s)!);
  const accB = seeds.map((s) => other.accuracyBySeed.get(s)!);
  // Seeds nested in Bases: the Bases are the replicates, so the test is over their means
  // (a seed-within-Base model's test of the arm effect, Bases random; df = Bases - 1).
  const test = pairedTTest(accA, accB);
  const p = bases ? pairedTTest(groupMeans(accA, bases), groupMeans(accB, bases)).p : test.p;
  const a = itemsOf(input, task, klal.arm);
  const b = itemsOf(input, task, other.arm);
  return {
    ...pair,
    meanDiff: test.meanDiff,
    p,
    bootstrap: pairedBootstrap(a, b, seeds, bases),
    mcnemar: mcnemarBySeed(a, b, seeds),
  };
}

/** "3 Bases" when a comparison's seeds come from several Bases. */
function basesCount(c: RawComparison): number | undefined {
  return c.bases ? new Set(c.bases).size : undefined;
}

/** "(paired t-test over 2 seeds, p=0.107, Holm p=0.214 over 3 tests" without the paren closed. */
function testWords(c: RawComparison, pHolm: number | undefined, family: number): string {
  const seedWord = c.seeds.length === 1 ? "seed" : "seeds";
  if (c.p === undefined) return `paired t-test over ${c.seeds.length} ${seedWord}: n=1, no p-value`;
  const holm = pHolm === undefined
    ? ""
    : `, Holm ${formatP(pHolm)} over ${family} ${family === 1 ? "test" : "tests"}`;
  const bases = basesCount(c);
  const over = bases
    ? `the means of ${bases} Bases (${c.seeds.length} ${seedWord} nested in them)`
    : `${c.seeds.length} ${seedWord}`;
  return `paired t-test over ${over}, ${formatP(c.p)}${holm}`;
}

function bootstrapSentence(c: RawComparison): string | undefined {
  if (!c.bootstrap) return undefined;
  const levels = basesCount(c) ? "Bases, seeds within them," : "seeds";
  return `Paired bootstrap over ${levels} and test items: 95% interval ${
    formatInterval(c.bootstrap, true)
  } points.`;
}

/**
 * What a verdict is written from: the comparison, its Holm-adjusted p and the size of the
 * Holm family, the task's floor, and whether arms go by their names (a column has several).
 */
interface VerdictInput {
  c: RawComparison;
  pHolm: number | undefined;
  family: number;
  floor: TaskFloor | undefined;
  named: boolean;
}

/** "KLAL+NTP", or "KLAL+NTP (arm)" where arms go by their names. */
function klalNameOf({ c, named }: VerdictInput): string {
  return named ? `KLAL+NTP (${c.klal.arm})` : "KLAL+NTP";
}

/** The verdict of KLAL+NTP vs NTP, stated against the larger of the floor and NTP. */
function ntpVerdict(v: VerdictInput): string {
  const { c, pHolm, family, floor, named } = v;
  const klalName = klalNameOf(v);
  const ntpName = named ? `NTP (${c.other.arm})` : "NTP";
  if (c.seeds.length === 0) {
    return `${klalName} vs ${ntpName}: no seed has accuracy for both arms, so there is nothing ` +
      "to compare.";
  }
  const decisive = pHolm ?? c.p;
  const caveat = decisive !== undefined && decisive >= 0.05
    ? `; not significant at the 5% level${pHolm !== undefined && family > 1 ? " after Holm" : ""}`
    : "";
  const beats = Number(c.meanDiff.toFixed(1)) > 0;
  const head = beats
    ? `${klalName} vs ${ntpName}: ${signedPoints(c.meanDiff)} points`
    : `${klalName} does not beat ${ntpName} here: ${signedPoints(c.meanDiff)} points`;
  return [
    `${head} (${testWords(c, pHolm, family)}${beats ? caveat : ""}).`,
    bootstrapSentence(c),
    ...floorSentences(floor, c.klal, c.other),
  ].filter(Boolean).join(" ");
}

/**
 * The verdict of KLAL+NTP vs a control: whether directing attention to the target matters,
 * or only the extra signal. Read from the paired bootstrap (seeds and items) when there are
 * item outcomes, else from the Holm-adjusted t-test.
 */
function controlVerdict(v: VerdictInput): string {
  const { c, pHolm, family, floor } = v;
  const who = `${klalNameOf(v)} vs ${controlName(c.other.control ?? "")} (${c.other.arm})`;
  if (c.seeds.length === 0) {
    return `${who}: no seed has accuracy for both arms, so there is nothing to compare.`;
  }
  const parts = [
    `${who}: ${signedPoints(c.meanDiff)} points (${testWords(c, pHolm, family)}).`,
  ];
  const boot = bootstrapSentence(c);
  if (boot) parts.push(boot);
  let direction: "ahead" | "behind" | "unclear" | undefined;
  if (c.bootstrap) {
    direction = c.bootstrap.low > 0 ? "ahead" : c.bootstrap.high < 0 ? "behind" : "unclear";
  } else if (pHolm !== undefined) {
    direction = pHolm >= 0.05 ? "unclear" : c.meanDiff > 0 ? "ahead" : "behind";
  }
  const evidence = c.bootstrap ? "the interval excludes 0" : "Holm p < 0.05";
  if (direction === "ahead") {
    parts.push(
      `KLAL+NTP is ahead of the control (${evidence}): directing attention to the target ` +
        "matters here, not only the extra training signal.",
    );
  } else if (direction === "behind") {
    parts.push(
      `The control is ahead of KLAL+NTP (${evidence}): the extra signal, not where ` +
        "attention goes, carries the gain here.",
    );
  } else if (direction === "unclear") {
    parts.push(
      "This run cannot tell directing attention to the target from the extra training " +
        `signal (${c.bootstrap ? "the interval includes 0" : "Holm p ≥ 0.05"}).`,
    );
  } else parts.push("With one seed and no item-level outcomes there is no test.");
  if (floor && !Number.isNaN(floor.accuracy)) {
    const klalAt = atFloor(c.klal, floor);
    const controlAt = atFloor(c.other, floor);
    if (klalAt && controlAt) {
      parts.push(`Both are at ${floorName(floor)}: neither has left its prior.`);
    } else if (klalAt) parts.push(`KLAL+NTP is at ${floorName(floor)}.`);
    else if (controlAt) parts.push(`The control is at ${floorName(floor)}.`);
  }
  return parts.join(" ");
}

/** The KLAL+NTP arm a control is compared with: same λ, layers and queries, else the first. */
function klalForControl(input: ReportInput, klalArms: ArmSummary[], control: ArmSummary) {
  const c = input.spec.arms[control.arm];
  const same = (a: ArmSummary) => {
    const k = input.spec.arms[a.arm];
    return k && c && k.lambda === c.lambda && k.queries === c.queries &&
      JSON.stringify(k.layers) === JSON.stringify(c.layers);
  };
  return klalArms.find(same) ?? primaryArm(klalArms, "KLAL+NTP", "klal") ?? klalArms[0];
}

/**
 * Summaries of every task in the input: per-arm statistics, KLAL-vs-NTP and KLAL-vs-control
 * verdicts (the p-values of all of them, across tasks, one Holm family), confusion counts.
 */
export function summarize(input: ReportInput): TaskSummary[] {
  const partial = taskNames(input).map((task) => {
    const taskRows = input.rows.filter((row) => row.task === task);
    const arms = armsOfTask(input, taskRows).map((arm): ArmSummary => {
      const column = paperColumn(input.spec, arm);
      const accuracyBySeed = valuesBySeed(taskRows, arm, "accuracy");
      const metricMean = (metric: string) =>
        mean([...valuesBySeed(taskRows, arm, metric).values()]);
      const seeds = [...accuracyBySeed.keys()].sort((a, b) => a - b);
      const armSpec = input.spec.arms[arm];
      return {
        arm,
        column,
        label: armLabel(input.spec, arm),
        control: column === "Control" && armSpec ? controlKind(armSpec) : undefined,
        accuracy: ci95(seeds.map((s) => accuracyBySeed.get(s)!)),
        accuracyBySeed,
        bootstrap: armBootstrap(
          itemsOf(input, task, arm),
          seeds,
          baseGroups(input.spec, arm, seeds),
        ),
        attentionRatio: metricMean("target_attention_ratio"),
        attentionRatioFirst: metricMean("target_attention_ratio_first"),
        visualShare: metricMean("visual_share"),
        visualShareFirst: metricMean("visual_share_first"),
        attentionMass: metricMean("target_attention"),
        taskMetrics: Object.fromEntries(
          taskMetricNames(taskRows, arm).map((name) => [name, metricMean(name)]),
        ),
        poster: posterValue(task, column),
      };
    });
    const ntpArms = arms.filter((a) => a.column === "NTP");
    const klalArms = arms.filter((a) => a.column === "KLAL+NTP");
    const controls = arms.filter((a) => a.column === "Control");
    const raw: RawComparison[] = ntpArms.length > 0
      ? klalArms.map((klal) => compareArms(input, task, "ntp", klal, ntpArms[0]))
      : [];
    if (klalArms.length > 0) {
      for (const control of controls) {
        const klal = klalForControl(input, klalArms, control);
        raw.push(compareArms(input, task, "control", klal, control));
      }
    }
    let note: string | undefined;
    if (klalArms.length === 0) note = "No KLAL+NTP arm (lambda > 0), so no verdict.";
    else if (ntpArms.length === 0) note = "No NTP arm (lambda = 0) to compare KLAL+NTP with.";
    const withRatio = arms.filter((a) => !Number.isNaN(a.attentionRatio));
    const withFirst = arms.filter((a) => !Number.isNaN(a.attentionRatioFirst));
    // The first answer position leads: it has read no answer text, so its attention is the
    // model's own grounding, not a read-back of the answer it is writing.
    const list = (xs: ArmSummary[], value: (a: ArmSummary) => number) =>
      xs.map((a) => `${a.label} ${value(a).toFixed(3)}`).join(", ");
    const attentionLine = withRatio.length > 0
      ? "Target attention ratio (mass on target patches / uniform share; 1 = chance)" +
        (withFirst.length > 0
          ? `, at the first answer position: ${list(withFirst, (a) => a.attentionRatioFirst)}; ` +
            "over all answer positions: "
          : ", over all answer positions: ") +
        `${list(withRatio, (a) => a.attentionRatio)}${questionBlindWords(input.floors?.[task])}.`
      : undefined;
    const withMeasures = arms.filter((a) => Object.keys(a.taskMetrics).length > 0);
    const measuresLine = withMeasures.length > 0
      ? `The task's own measures, mean over seeds: ${
        withMeasures.map((a) =>
          `${a.label} ${
            Object.entries(a.taskMetrics).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ")
          }`
        ).join("; ")
      }.`
      : undefined;
    const classes = answerClasses(input, task);
    const confusion = classes
      ? arms.flatMap((a) => armConfusion(task, a.arm, itemsOf(input, task, a.arm), classes) ?? [])
      : [];
    return {
      task,
      label: reportTaskLabel(input, task),
      standIn: isStandIn(input.taskSpecs?.[task] ?? input.spec.task, task),
      floor: input.floors?.[task],
      arms,
      raw,
      named: ntpArms.length > 1 || klalArms.length > 1,
      note,
      attentionLine,
      measuresLine,
      overlapLine: overlapWords(input.promptOverlap?.[task]),
      confusion,
    };
  });
  // One Holm family: every comparison's paired t-test p of the whole report.
  const all = partial.flatMap((t) => t.raw);
  const adjusted = holmAdjust(all.map((c) => c.p));
  const family = all.filter((c) => c.p !== undefined && !Number.isNaN(c.p)).length;
  let at = 0;
  return partial.map(({ raw, named, ...rest }) => ({
    ...rest,
    comparisons: raw.map((c) => {
      const pHolm = adjusted[at++];
      const v = { c, pHolm, family, floor: rest.floor, named };
      const text = c.kind === "ntp" ? ntpVerdict(v) : controlVerdict(v);
      return { ...c, pHolm, family, text };
    }),
  }));
}

/** Every verdict line of the report (one per comparison and task), or the reason there is none. */
export function verdictLines(summaries: TaskSummary[]): string[] {
  const prefix = (s: TaskSummary) => summaries.length > 1 ? `${s.label}: ` : "";
  return summaries.flatMap((s) =>
    s.comparisons.length > 0
      ? s.comparisons.map((c) => prefix(s) + c.text)
      : [prefix(s) + (s.note ?? "No verdict.")]
  );
}

// ---------------------------------------------------------------------------------------
// Table 1, Table 2 and sample efficiency

/** One task's line of Table 1: our floor, Base / NTP / KLAL+NTP and controls beside the poster's. */
export interface Table1Row {
  /** Our task name (the poster's key when this experiment did not run the task). */
  task: string;
  /** The task's label (reportTaskLabel), else the poster's label for a task not run. */
  label: string;
  /** False when this experiment did not run the task: its cells read "not run". */
  run: boolean;
  floor: TaskFloor | undefined;
  base: ArmSummary | undefined;
  ntp: ArmSummary | undefined;
  klal: ArmSummary | undefined;
  /** Control arms with accuracy rows. */
  controls: ArmSummary[];
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
export function table1(input: ReportInput, summaries = summarize(input)): Table1Row[] {
  const fromSummary = (s: TaskSummary): Table1Row => {
    const base = primaryArm(s.arms, "Base", "base");
    const ntp = primaryArm(s.arms, "NTP", "ntp");
    const klal = primaryArm(s.arms, "KLAL+NTP", "klal");
    return {
      task: s.task,
      label: s.label,
      run: s.arms.some((a) => a.accuracy.n > 0),
      floor: s.floor,
      base,
      ntp,
      klal,
      controls: s.arms.filter((a) => a.column === "Control" && a.accuracy.n > 0),
      poster: posterRow(s.task),
      gain: s.comparisons.find((c) =>
        c.kind === "ntp" && c.klal.arm === klal?.arm && c.other.arm === ntp?.arm
      ),
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
        floor: undefined,
        base: undefined,
        ntp: undefined,
        klal: undefined,
        controls: [],
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

export {
  type AccuracyThreshold,
  formatStepsToReach,
  type LearningSummary,
  learningSummary,
  type StepsToReach,
} from "./learning.ts";

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

/**
 * What the experiment swept: KLAL arms (controls left out) differing only by lambda, or only
 * by layers.
 */
export function sweeps(spec: Spec): { lambda: string[][]; layers: string[][] } {
  const klal = Object.entries(spec.arms).filter(([, a]) =>
    a.finetune && a.lambda > 0 && controlKind(a) === undefined
  );
  const ntp = Object.entries(spec.arms).find(([, a]) => a.finetune && a.lambda === 0)?.[0];
  const group = (keyOf: (a: ArmSpec) => string, valueOf: (a: ArmSpec) => string) => {
    return groupBy(klal, (entry) => keyOf(entry[1]))
      .filter((g) => new Set(g.map(([, a]) => valueOf(a))).size > 1);
  };
  const layersOf = (a: ArmSpec) => JSON.stringify(supervisedLayers(spec, a));
  const lambda = group(layersOf, (a) => String(a.lambda)).map((g) => [
    ...(ntp ? [ntp] : []),
    ...g.sort((a, b) => a[1].lambda - b[1].lambda).map(([name]) => name),
  ]);
  const layers = group((a) => String(a.lambda), layersOf).map((g) => g.map(([name]) => name));
  return { lambda, layers };
}
