/**
 * Grounding accuracy per task: each arm's mean over seeds with its 95% interval, each seed as
 * a dot, the poster's number for the arm's column as a tick, and the task's fixed-answer
 * floor as a dashed rule across all arms.
 */

import { type Palette, paletteFor } from "../palette.ts";
import type { TaskSummary } from "../summary.ts";

/** The accuracy chart of one task; undefined when no arm has accuracy rows. */
export function accuracyChart(
  s: TaskSummary,
  palette: Palette,
) {
  const arms = s.arms.filter((a) => a.accuracy.n > 0);
  if (arms.length === 0) return undefined;
  const labels = arms.map((a) => a.label);
  // Wide enough for the longest label (control arms have long ones).
  const step = Math.max(110, Math.min(210, 6.2 * Math.max(...labels.map((l) => l.length))));
  const x = {
    field: "label",
    type: "nominal",
    sort: labels,
    title: null,
    axis: { labelAngle: 0, labelLimit: step - 6 },
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
  const floor = s.floor && !Number.isNaN(s.floor.accuracy) ? s.floor : undefined;
  if (floor) {
    const values = [{
      floor: floor.accuracy,
      text: `fixed-answer floor ${floor.accuracy.toFixed(1)}%`,
      answer: floor.answer,
    }];
    layer.push(
      {
        data: { values },
        mark: { type: "rule", strokeDash: [5, 4], strokeWidth: 1.6, color: "#555" },
        encoding: {
          y: { ...y, field: "floor" },
          tooltip: [
            { field: "text", title: "floor" },
            { field: "answer", title: "constant answer" },
          ],
        },
      },
      {
        data: { values },
        mark: {
          type: "text",
          align: "left",
          baseline: "bottom",
          dy: -2,
          x: 4,
          fontSize: 10,
          color: "#555",
        },
        encoding: { y: { ...y, field: "floor" }, text: { field: "text" } },
      },
    );
  }
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
      text: `Grounding accuracy: ${s.label}`,
      subtitle: [
        "bar = mean over seeds, line = 95% CI, dots = seeds",
        ...(poster.length > 0 ? ["black tick = poster (Qwen 2.5-VL)"] : []),
        ...(floor ? ["dashed line = fixed-answer floor (one constant answer)"] : []),
      ],
    },
    width: { step },
    height: 260,
    layer,
  };
}
