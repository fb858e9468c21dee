/**
 * Colours: each paper column has its own hue family (Base grey, NTP blue, KLAL+NTP red and
 * orange, control arms purple and teal, other arms green and beyond), so an arm keeps one colour across every chart of a report, and the
 * paper record's figures use each family's first colour.
 */

import { armLabel, COLUMN_ORDER, type PaperColumn, paperColumn } from "./poster.ts";
import type { ReportInput } from "./types.ts";

/** Colours per paper column; the n-th arm of a column takes the n-th (cycling). */
export const COLUMN_COLOURS: Readonly<Record<PaperColumn, readonly string[]>> = {
  "Base": ["#9e9e9e", "#bdbdbd"],
  "NTP": ["#4c78a8", "#72a1d6", "#2f4b7c"],
  "KLAL+NTP": ["#e45756", "#f58518", "#b6372f", "#ff9d98"],
  "Control": ["#7b4fa6", "#3a9ca0", "#b48fd6", "#1f6f73"],
  "other": ["#54a24b", "#b279a2", "#9d755d", "#eeca3b"],
};

/** A Vega-Lite ordinal colour scale: labels and their colours, index for index. */
export interface Palette {
  domain: string[];
  range: string[];
}

/** Arm labels and one colour each, stable across all charts. */
export function armPalette(input: ReportInput): Palette {
  const arms = [
    ...new Set([
      ...Object.keys(input.spec.arms),
      ...input.rows.map((r) => r.arm),
      ...input.curves.map((c) => c.arm),
    ]),
  ];
  const used: Record<PaperColumn, number> = {
    "Base": 0,
    "NTP": 0,
    "KLAL+NTP": 0,
    "Control": 0,
    "other": 0,
  };
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
export function paletteFor(palette: Palette, labels: Iterable<string>): Palette {
  const shown = new Set(labels);
  const keep = palette.domain.map((label, i) => ({ label, colour: palette.range[i] }))
    .filter((entry) => shown.has(entry.label));
  return { domain: keep.map((e) => e.label), range: keep.map((e) => e.colour) };
}

/** The columns themselves as labels, each in its family's first colour (one arm per column). */
export function columnPalette(columns: readonly PaperColumn[]): Palette {
  return { domain: [...columns], range: columns.map((c) => COLUMN_COLOURS[c][0]) };
}
