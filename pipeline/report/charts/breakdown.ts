/**
 * Accuracy by the task's difficulty bucket (pooled over seeds, Wilson 95% interval).
 */

import { type Palette, paletteFor } from "../palette.ts";
import { breakdownSummary } from "../summary.ts";
import type { ReportInput } from "../types.ts";

/** Natural order of difficulty buckets: "2 crossings" before "10 crossings". */
export function difficultyOrder(buckets: string[]): string[] {
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

/** Accuracy per difficulty bucket and arm; undefined without breakdown rows. */
export function breakdownChart(input: ReportInput, palette: Palette) {
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
