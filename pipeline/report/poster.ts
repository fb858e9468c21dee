/**
 * The paper's side of the comparison: its columns (Base, NTP, KLAL+NTP), the numbers its
 * poster reports in Tables 1 and 2 (quoted, never run here), and how an arm of a spec maps to
 * a column and is labelled in every table and chart.
 */

import type { Spec } from "../spec_types.ts";

/** The paper's columns; an arm maps to one by the spec's convention. */
export type PaperColumn = "Base" | "NTP" | "KLAL+NTP" | "other";

/** One task's row of the poster's Table 1 (Qwen 2.5-VL, grounding accuracy %). */
export interface PosterRow {
  label: string;
  base: number;
  ntp: number;
  klal: number;
}

/**
 * The poster's Table 1 (Qwen 2.5-VL, grounding accuracy %), keyed by our task names, in the
 * poster's row order.
 */
export const POSTER_TABLE1: Readonly<Record<string, PosterRow>> = {
  "line-intersection": { label: "Line Intersection", base: 47.6, ntp: 62.6, klal: 70.2 },
  "line-tracing": { label: "Line Tracing", base: 49.6, ntp: 53.8, klal: 62.2 },
  "grid-patch": { label: "Grid Patch", base: 6.1, ntp: 28.6, klal: 44.9 },
  "pixmo-points": { label: "PixMo-Points", base: 16.8, ntp: 26.3, klal: 35.8 },
  "refcoco": { label: "RefCOCO (val)", base: 90.1, ntp: 90.7, klal: 91.5 },
};

/** One model's row of the poster's Table 2 (grounding accuracy %). */
export interface PosterTable2Row {
  model: string;
  lineIntersection: number;
  lineTracing: number;
}

/**
 * The poster's Table 2, quoted: reported in the paper, not run here. The first row is the
 * paper's own NTP + KLAL on Qwen 2.5-VL.
 */
export const POSTER_TABLE2: readonly PosterTable2Row[] = [
  { model: "NTP + KLAL (paper, Qwen 2.5-VL)", lineIntersection: 70.23, lineTracing: 62.21 },
  { model: "Molmo-7B-D", lineIntersection: 41.07, lineTracing: 49.51 },
  { model: "GLaMM-FS-7B", lineIntersection: 27.50, lineTracing: 39.03 },
  { model: "InstructBLIP", lineIntersection: 36.67, lineTracing: 46.23 },
  { model: "GPT-4o", lineIntersection: 42.12, lineTracing: 55.34 },
  { model: "Gemini-2.0 Flash", lineIntersection: 56.41, lineTracing: 59.25 },
];

/** The paper's columns in table and legend order. */
export const COLUMN_ORDER: readonly PaperColumn[] = ["Base", "NTP", "KLAL+NTP", "other"];

/** The key of POSTER_TABLE1 for a task name ("grid_patch", "RefCOCO-val" are accepted). */
export function posterKey(task: string): string | undefined {
  const key = task.toLowerCase().replace(/[_\s]+/g, "-");
  if (key in POSTER_TABLE1) return key;
  return key.startsWith("refcoco") ? "refcoco" : undefined;
}

/** The poster's row for a task name ("grid_patch", "RefCOCO-val" and the like are accepted). */
export function posterRow(task: string): PosterRow | undefined {
  const key = posterKey(task);
  return key === undefined ? undefined : POSTER_TABLE1[key];
}

/** The poster's number for a column, if it has one. */
export function posterValue(task: string, column: PaperColumn): number | undefined {
  const row = posterRow(task);
  if (!row) return undefined;
  if (column === "Base") return row.base;
  if (column === "NTP") return row.ntp;
  if (column === "KLAL+NTP") return row.klal;
  return undefined;
}

/** Map an arm to the paper's column: no finetune -> Base, lambda 0 -> NTP, lambda > 0 -> KLAL+NTP. */
export function paperColumn(spec: Spec, arm: string): PaperColumn {
  const armSpec = spec.arms[arm];
  if (!armSpec) return arm.toLowerCase() === "base" ? "Base" : "other";
  if (!armSpec.finetune) return "Base";
  return armSpec.lambda > 0 ? "KLAL+NTP" : "NTP";
}

/** "KLAL+NTP (klal)": the arm under its paper column ("other" arms by their name alone). */
export function armLabel(spec: Spec, arm: string): string {
  const column = paperColumn(spec, arm);
  return column === "other" ? arm : `${column} (${arm})`;
}
