/**
 * Sweeps within one experiment: accuracy and target attention ratio along λ (KLAL arms that
 * differ only in λ, with the NTP arm as λ = 0) and along the supervised layers.
 */

import { type Palette, paletteFor } from "../palette.ts";
import { type ArmSummary, supervisedLayers, sweeps, type TaskSummary } from "../summary.ts";
import type { ReportInput } from "../types.ts";

/** Accuracy and target attention ratio of a set of arms along one swept axis. */
function sweepChart(
  s: TaskSummary,
  arms: string[],
  xOf: (arm: string) => string,
  text: { title: string; subtitle: string; x: string },
  reference: ArmSummary | undefined,
  palette: Palette,
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

/** The name of the i-th sweep of a kind on a task: "lambda_sweep:t", "lambda_sweep2:t", ... */
function sweepKey(kind: string, i: number, task: string): string {
  return `${kind}${i > 0 ? i + 1 : ""}:${task}`;
}

/** One λ-sweep chart per group of KLAL arms that differ only in λ, keyed `lambda_sweep[N]:<task>`. */
export function lambdaSweepCharts(
  input: ReportInput,
  s: TaskSummary,
  palette: Palette,
): Record<string, object> {
  const charts: Record<string, object> = {};
  sweeps(input.spec).lambda.forEach((arms, i) => {
    const klalArm = input.spec.arms[arms[arms.length - 1]];
    const layers = supervisedLayers(input.spec, klalArm);
    const chart = sweepChart(
      s,
      arms,
      (arm) => `λ=${input.spec.arms[arm].lambda}`,
      {
        title: `λ sweep: ${s.label}`,
        subtitle: `KLAL weight λ (λ=0 is NTP); supervised layers ${
          layers.length === input.spec.model.layers ? "all" : layers.join(", ")
        }; bar = mean, line = 95% CI, dots = seeds; right: dashed = chance (1)`,
        x: "λ",
      },
      undefined,
      palette,
    );
    if (chart) charts[sweepKey("lambda_sweep", i, s.task)] = chart;
  });
  return charts;
}

/**
 * One chart per group of KLAL arms that differ only in their supervised layers, keyed
 * `layer_ablation[N]:<task>`, with the NTP arm as a reference line.
 */
export function layerAblationCharts(
  input: ReportInput,
  s: TaskSummary,
  palette: Palette,
): Record<string, object> {
  const charts: Record<string, object> = {};
  const ntp = s.arms.find((a) => a.column === "NTP" && a.accuracy.n > 0);
  sweeps(input.spec).layers.forEach((arms, i) => {
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
        title: `Which layers to supervise: ${s.label}`,
        subtitle: `KLAL (λ=${lambda}) on different layers; dashed blue = the NTP arm; ` +
          "right: target attention ratio, dashed = chance (1)",
        x: "supervised layers",
      },
      ntp,
      palette,
    );
    if (chart) charts[sweepKey("layer_ablation", i, s.task)] = chart;
  });
  return charts;
}
