/**
 * Training: the loss split into its NTP and KLAL parts, and the learning curves (validation
 * accuracy and grounding during fine-tuning) with the accuracy thresholds read off them.
 */

import { mean } from "../stats.ts";
import { type Palette, paletteFor } from "../palette.ts";
import { armLabel } from "../poster.ts";
import { debiasedEma, groupBy, type LearningSummary } from "../summary.ts";
import type { CurvePoint, ReportInput } from "../types.ts";

/** Training loss per part, raw and smoothed, one line per arm and seed; undefined without curves. */
export function lossChart(input: ReportInput, palette: Palette) {
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

/** Validation accuracy and target attention during fine-tuning, per arm (seeds faint). */
export function learningChart(
  input: ReportInput,
  palette: Palette,
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
  const means = groupBy(seeds, (p) => [p.label, p.step]).map((g) => ({
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
