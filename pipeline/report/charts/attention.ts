/**
 * The poster's empirical observation, measured: the target attention ratio per layer and arm,
 * and the attention mass on the target patches per layer and head.
 */

import { mean } from "../stats.ts";
import { armPalette, type Palette, paletteFor } from "../palette.ts";
import { armLabel } from "../poster.ts";
import { groupBy, round4, type TaskSummary } from "../summary.ts";
import type { ReportInput } from "../types.ts";

/** Metrics that hold one layer's target attention ratio. */
const PER_LAYER_RATIO = /^target_attention_ratio@L(\d+)$/;

/** Target attention ratio per layer of one task, bars per arm; undefined without layer rows. */
export function layerAttentionChart(
  input: ReportInput,
  s: TaskSummary,
  palette: Palette,
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
  const means = groupBy(perSeed, (d) => [d.label, d.index]).map((g) => ({
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
      text: `Target attention ratio per layer: ${s.label}`,
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

/** Target attention mass per layer x head, mean over seeds, one panel per arm. */
export function headsChart(input: ReportInput) {
  const rows = input.heads ?? [];
  if (rows.length === 0) return undefined;
  const values = groupBy(rows, (row) => [row.arm, row.layer, row.head]).map((g) => ({
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
