/**
 * The report's charts, each in one place: its key, the page section it appears in, the caption
 * under it and the function that builds it. The order here is the page order; index.html, the
 * embedded specs and figures/ all take their charts from this list.
 *
 * To add a chart: write its builder in charts/ (a new file for a new family), then add one
 * entry below. A chart without a caption does not type-check, and tests/report_test.ts checks
 * that every caption is non-empty and distinct.
 */

import { accuracyChart } from "./charts/accuracy.ts";
import { headsChart, layerAttentionChart } from "./charts/attention.ts";
import { breakdownChart } from "./charts/breakdown.ts";
import { attentionFiguresChart, explorerChart } from "./charts/maps.ts";
import { lambdaSweepCharts, layerAblationCharts } from "./charts/sweeps.ts";
import { learningChart, lossChart } from "./charts/training.ts";
import { armPalette, type Palette } from "./palette.ts";
import {
  type LearningSummary,
  learningSummary,
  reportTaskLabel,
  summarize,
  type TaskSummary,
} from "./summary.ts";
import type { ReportInput } from "./types.ts";
import { reportChart } from "./vega_config.ts";

/** The sections of index.html that hold charts, in page order. */
export type ChartSection = "results" | "observation" | "maps" | "training" | "breakdowns";

/** What every builder gets: the input and what all charts share (colours, summaries). */
export interface ChartContext {
  input: ReportInput;
  palette: Palette;
  summaries: TaskSummary[];
  learning: LearningSummary | undefined;
}

/** One chart a builder made: its key (also its file name under figures/), task and spec. */
export interface BuiltChart {
  key: string;
  /** The task a per-task chart is about. */
  task?: string;
  spec: object;
}

/** A kind of chart: where it goes, what its caption says, how it is built. */
export interface ChartEntry {
  /** The kind; a chart's key is this, or `<key>:<task>` for per-task charts. */
  key: string;
  section: ChartSection;
  /** The text under the chart (the task is set for per-task charts). */
  caption: (input: ReportInput, task: string | undefined) => string;
  /** The charts of this kind the input has data for (none, one, or one per task). */
  build: (context: ChartContext) => BuiltChart[];
}

/** A chart of the report: what its builder made, with the report's Vega-Lite set-up applied. */
export interface ReportChart extends BuiltChart {
  entry: ChartEntry;
  caption: string;
}

/** A single chart keyed by its kind, when the builder returns one. */
function single(key: string, build: (c: ChartContext) => object | undefined) {
  return (c: ChartContext): BuiltChart[] => {
    const spec = build(c);
    return spec ? [{ key, spec }] : [];
  };
}

/** One chart per task, keyed `<kind>:<task>`, for the tasks the builder has data for. */
function perTask(key: string, build: (c: ChartContext, s: TaskSummary) => object | undefined) {
  return (c: ChartContext): BuiltChart[] =>
    c.summaries.flatMap((s) => {
      const spec = build(c, s);
      return spec ? [{ key: `${key}:${s.task}`, task: s.task, spec }] : [];
    });
}

/** Several keyed charts per task (the builder names them). */
function manyPerTask(build: (c: ChartContext, s: TaskSummary) => Record<string, object>) {
  return (c: ChartContext): BuiltChart[] =>
    c.summaries.flatMap((s) =>
      Object.entries(build(c, s)).map(([key, spec]) => ({ key, task: s.task, spec }))
    );
}

/** A task's label in a caption (a stand-in says so); "every task" for none. */
function label(input: ReportInput, task: string | undefined): string {
  return task === undefined ? "every task" : reportTaskLabel(input, task);
}

/** Every chart kind of the report, in page order. */
export const REPORT_CHARTS: readonly ChartEntry[] = [
  {
    key: "accuracy",
    section: "results",
    caption: (input, task) =>
      `Grounding accuracy on ${label(input, task)}: mean over seeds with its 95% Student-t ` +
      "interval, each seed as a dot, the poster's number for the same column as a black " +
      "tick, and the fixed-answer floor (the best one constant answer on the test set) as a " +
      "dashed line where the evaluation recorded it.",
    build: perTask("accuracy", (c, s) => accuracyChart(s, c.palette)),
  },
  {
    key: "attention_layers",
    section: "observation",
    caption: (input, task) =>
      "The poster's empirical observation, measured: attention mass that the answer " +
      `tokens put on the target patches, divided by a uniform share, per layer, on ${
        label(input, task)
      }. ` +
      "Below the dashed line at 1 the target gets less than average attention.",
    build: perTask("attention_layers", (c, s) => layerAttentionChart(c.input, s, c.palette)),
  },
  {
    key: "heads",
    section: "observation",
    caption: () =>
      "Attention mass on the target patches per layer and head (held-out samples, mean " +
      "over seeds). KLAL supervises the head average; this shows which heads carry it.",
    build: single("heads", (c) => headsChart(c.input)),
  },
  {
    key: "attention_figures",
    section: "maps",
    caption: () =>
      'Like the poster\'s "KLAL sharpens attention maps": the same held-out samples for ' +
      "every arm (first seed), the attention of the answer tokens overlaid on the image, and " +
      "each model's answer. Last column: the ground-truth map P(S).",
    build: single("attention_figures", (c) => attentionFiguresChart(c.input)),
  },
  {
    key: "explorer",
    section: "maps",
    caption: () =>
      'Pick a held-out sample, a model (arm and seed), a layer and a head ("mean" = ' +
      "averaged) with the controls under the chart. Without JavaScript this shows the default " +
      "choice only.",
    build: single("explorer", (c) => explorerChart(c.input)),
  },
  {
    key: "loss",
    section: "training",
    caption: () =>
      "Training loss split into its NTP and KLAL parts (the KLAL part is logged for NTP " +
      "arms too, where it is not optimised).",
    build: single("loss", (c) => lossChart(c.input, c.palette)),
  },
  {
    key: "learning",
    section: "training",
    caption: (input) =>
      `Accuracy and grounding on a validation set (seed test_seed + 1, ${input.spec.train.eval_samples} ` +
      `samples) every ${input.spec.train.eval_every} fine-tuning steps: KLAL's ` +
      "sample efficiency, which the poster does not show.",
    build: single("learning", (c) => learningChart(c.input, c.palette, c.learning)),
  },
  {
    key: "breakdown",
    section: "breakdowns",
    caption: () => "Held-out accuracy per difficulty bucket of the task, pooled over seeds.",
    build: single("breakdown", (c) => breakdownChart(c.input, c.palette)),
  },
  {
    key: "lambda_sweep",
    section: "breakdowns",
    caption: (input, task) =>
      `How the KLAL weight λ trades off on ${label(input, task)}: accuracy and target ` +
      "attention ratio.",
    build: manyPerTask((c, s) => lambdaSweepCharts(c.input, s, c.palette)),
  },
  {
    key: "layer_ablation",
    section: "breakdowns",
    caption: (input, task) =>
      `Which layers KLAL supervises, on ${label(input, task)}: accuracy and target attention ` +
      "ratio.",
    build: manyPerTask((c, s) => layerAblationCharts(c.input, s, c.palette)),
  },
];

/** Every chart the input has data for, in page order, ready to embed and render. */
export function reportCharts(input: ReportInput): ReportChart[] {
  const context: ChartContext = {
    input,
    palette: armPalette(input),
    summaries: summarize(input),
    learning: learningSummary(input),
  };
  return REPORT_CHARTS.flatMap((entry) =>
    entry.build(context).map((chart) => ({
      ...chart,
      spec: reportChart(chart.spec),
      entry,
      caption: entry.caption(input, chart.task),
    }))
  );
}

/**
 * The report's Vega-Lite specs keyed like figures/, in page order: `accuracy:<task>`,
 * `attention_layers:<task>`, `heads`, `attention_figures`, `explorer`, `loss`, `learning`,
 * `breakdown`, `lambda_sweep[N]:<task>`, `layer_ablation[N]:<task>` (each only when its data
 * exists).
 */
export function chartSpecs(input: ReportInput): Record<string, object> {
  return Object.fromEntries(reportCharts(input).map((c) => [c.key, c.spec]));
}
