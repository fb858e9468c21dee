/**
 * results.json of a report: the raw rows and stages, and every number the tables show, so
 * other tools (the reports index, the paper record) read numbers instead of parsing tables.
 */

import { seedsByBase } from "../spec/bases.ts";
import { formatAccuracy, TABLE1_HEADERS, table1Cells } from "./cells.ts";
import { BOOTSTRAP_RESAMPLES, MAX_CONFUSION_CLASSES } from "./items.ts";
import { POSTER_TABLE2 } from "./poster.ts";
import {
  type ArmSummary,
  atFloor,
  type Comparison,
  FLOOR_MARGIN,
  learningSummary,
  summarize,
  table1,
  table2Ours,
  type TaskSummary,
  testSetSummaries,
  verdictLines,
} from "./summary.ts";
import type { ReportInput } from "./types.ts";
import type { BootstrapInterval } from "./stats.ts";

/** A bootstrap interval as results.json stores it (null: no item outcomes). */
function bootJson(interval: BootstrapInterval | undefined) {
  if (!interval) return null;
  const { estimate, low, high, resamples } = interval;
  return { estimate, low, high, resamples };
}

/** A number, or null for NaN (JSON has no NaN). */
function num(value: number): number | null {
  return Number.isNaN(value) ? null : value;
}

/** An arm's accuracy as results.json stores it (null: no such arm). */
function ciJson(arm: ArmSummary | undefined) {
  if (!arm) return null;
  const { mean, halfWidth, n } = arm.accuracy;
  return {
    arm: arm.arm,
    mean,
    halfWidth: halfWidth ?? null,
    n,
    text: formatAccuracy(arm.accuracy),
    bootstrap: bootJson(arm.bootstrap),
  };
}

/** A comparison's statistics as results.json stores them. */
function comparisonJson(c: Comparison) {
  return {
    task: c.task,
    kind: c.kind,
    arms: [c.klal.arm, c.other.arm],
    seeds: c.seeds,
    bases: c.bases ?? null,
    meanDiff: num(c.meanDiff),
    p: c.p ?? null,
    pHolm: c.pHolm ?? null,
    bootstrap: bootJson(c.bootstrap),
  };
}

/**
 * results.json: `{ experiment, createdAt, backend, backendReason, headline, spec, bases, rows, stages, floors,
 * baseSkills, table1Headers, table1, table2, tasks, testSets, statistics, learning, validation }`. `bases` which
 * fine-tune seeds started from which Base; `rows` are the raw numbers; `floors` each task's fixed-answer floor (with its best shortcut rule and question-blind attention ratio; also `table1[].shortcut` and `tasks[].questionBlind`); `tasks` every arm per task with its
 * attention measures; `testSets` each further test set (task.source.tests) as `tasks` lists a
 * task, with its own comparisons; `statistics` the comparisons (paired t, Holm, bootstrap), item-level
 * McNemar per seed and confusion counts; `validation` the learning curves (validation set,
 * during fine-tuning); the rest is what the tables show.
 */
export function resultsJson(input: ReportInput): string {
  const { spec, rows, stages, backend, createdAt } = input;
  const summaries = summarize(input);
  const rows1 = table1(input, summaries);
  const ours2 = table2Ours(rows1);
  const learning = learningSummary(input);
  const comparisons = summaries.flatMap((s) => s.comparisons);
  const several = comparisons.some((c) => c.bases);
  return JSON.stringify(
    {
      experiment: spec.name,
      createdAt,
      backend,
      ...(input.backendReason ? { backendReason: input.backendReason } : {}),
      headline: verdictLines(summaries).join(" "),
      spec,
      // Which Base each fine-tune seed started from (base.seed; ../spec/bases.ts).
      bases: [...seedsByBase(spec)].map(([seed, seeds]) => ({ seed, seeds })),
      rows,
      stages,
      floors: input.floors ?? {},
      baseSkills: input.baseSkills ?? [],
      vocabulary: input.vocabulary ?? null,
      table1Headers: TABLE1_HEADERS,
      table1: rows1.map((r) => ({
        task: r.task,
        label: r.label,
        run: r.run,
        floor: r.floor ?? null,
        shortcut: r.floor?.shortcut ?? null,
        base: ciJson(r.base),
        ntp: ciJson(r.ntp),
        klal: ciJson(r.klal),
        controls: r.controls.map((c) => ({ ...ciJson(c)!, control: c.control })),
        gain: r.gain && !Number.isNaN(r.gain.meanDiff)
          ? {
            meanDiff: r.gain.meanDiff,
            p: r.gain.p ?? null,
            pHolm: r.gain.pHolm ?? null,
            seeds: r.gain.seeds,
            bootstrap: bootJson(r.gain.bootstrap),
          }
          : null,
        poster: r.poster ?? null,
        cells: table1Cells(r),
      })),
      tasks: summaries.map((s) => taskJson(input, s)),
      // Further test sets (task.source.tests): the same trainings, each its own Holm family.
      testSets: testSetSummaries(input).map((s) => ({
        name: s.testSet,
        ...taskJson(input, s),
        comparisons: s.comparisons.map(comparisonJson),
      })),
      statistics: {
        holm: {
          family: "every KLAL+NTP vs NTP and KLAL+NTP vs control comparison of the report " +
            (several
              ? "(paired t-test p over the Bases' means where a comparison's seeds come " +
                "from several Bases, seeds nested in them; over seeds otherwise)"
              : "(paired t-test p over seeds)"),
          tests: comparisons.filter((c) => c.p !== undefined).length,
        },
        bootstrap: {
          resamples: BOOTSTRAP_RESAMPLES,
          levels: (several ? "Bases, then seeds within each drawn Base, " : "seeds ") +
            "crossed with test items (the same items for every seed), items sharing an image drawn together",
        },
        floorMargin: FLOOR_MARGIN,
        comparisons: comparisons.map(comparisonJson),
        mcnemar: comparisons.flatMap((c) =>
          c.mcnemar.map((m) => ({
            task: c.task,
            kind: c.kind,
            arms: [c.klal.arm, c.other.arm],
            seed: m.seed,
            n: m.n,
            onlyA: m.onlyA,
            onlyB: m.onlyB,
            p: m.p,
          }))
        ),
        confusionMaxClasses: MAX_CONFUSION_CLASSES,
        confusion: summaries.flatMap((s) => s.confusion),
      },
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

/** One task's summary as results.json lists it (every arm with its measures, the verdicts). */
function taskJson(input: ReportInput, s: TaskSummary) {
  return {
    task: s.task,
    label: s.label,
    standIn: s.standIn,
    floor: s.floor ?? null,
    questionBlind: s.floor?.questionBlind ?? null,
    promptOverlap: input.promptOverlap?.[s.task] ?? null,
    arms: s.arms.map((a) => ({
      arm: a.arm,
      label: a.label,
      column: a.column,
      control: a.control ?? null,
      accuracy: ciJson(a),
      atFloor: s.floor && a.accuracy.n > 0 ? atFloor(a, s.floor) : null,
      target_attention: num(a.attentionMass),
      target_attention_ratio: num(a.attentionRatio),
      target_attention_ratio_first: num(a.attentionRatioFirst),
      visual_share: num(a.visualShare),
      visual_share_first: num(a.visualShareFirst),
      task_metrics: a.taskMetrics,
    })),
    verdicts: s.comparisons.map((c) => c.text),
  };
}
