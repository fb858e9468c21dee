/**
 * The paper's side of the comparison: its columns (Base, NTP, KLAL+NTP) and our control arms
 * beside them, the numbers its poster reports in Tables 1 and 2 (quoted, never run here), how
 * an arm of a spec maps to a column and is labelled in every table and chart, and how a task
 * is labelled (a real-format task run on its offline stand-in says so).
 */

import type { ArmSpec, Spec, TaskSpec } from "../spec/types.ts";

/**
 * The paper's columns, an arm maps to one by the spec's convention; "Control" holds our
 * control arms (KLAL's weight on shuffled or uniform maps, or a pointer head instead of
 * attention), which the paper does not have.
 */
export type PaperColumn = "Base" | "NTP" | "KLAL+NTP" | "Control" | "other";

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

/** The paper's columns (and the controls) in table and legend order. */
export const COLUMN_ORDER: readonly PaperColumn[] = ["Base", "NTP", "KLAL+NTP", "Control", "other"];

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

/**
 * What makes a fine-tuned arm with lambda > 0 a control, in words ("shuffled maps", "uniform
 * maps", "pointer head", "pointer head, shuffled maps"); undefined for KLAL itself (attention
 * pulled toward the task's own maps). Specs written before these keys read as KLAL.
 */
export function controlKind(arm: ArmSpec): string | undefined {
  if (!arm.finetune || !(arm.lambda > 0)) return undefined;
  const parts: string[] = [];
  if (arm.supervision === "pointer") parts.push("pointer head");
  if (arm.target === "shuffled") parts.push("shuffled maps");
  if (arm.target === "uniform") parts.push("uniform maps");
  return parts.length > 0 ? parts.join(", ") : undefined;
}

/**
 * Map an arm to the paper's column: no finetune -> Base, lambda 0 -> NTP, lambda > 0 ->
 * KLAL+NTP when it pulls attention toward the task's maps, else Control.
 */
export function paperColumn(spec: Spec, arm: string): PaperColumn {
  const armSpec = spec.arms[arm];
  if (!armSpec) return arm.toLowerCase() === "base" ? "Base" : "other";
  if (!armSpec.finetune) return "Base";
  if (!(armSpec.lambda > 0)) return "NTP";
  return controlKind(armSpec) === undefined ? "KLAL+NTP" : "Control";
}

/**
 * "KLAL+NTP (klal)": the arm under its paper column; a control by what it changes,
 * "Control: shuffled maps (shuffled)"; "other" arms by their name alone.
 */
export function armLabel(spec: Spec, arm: string): string {
  const column = paperColumn(spec, arm);
  if (column === "other") return arm;
  if (column === "Control") return `Control: ${controlKind(spec.arms[arm])} (${arm})`;
  return `${column} (${arm})`;
}

/** Real-format tasks (read from public on-disk formats) by name, with their display names. */
const REAL_FORMAT: Readonly<Record<string, string>> = {
  "pixmo-points": "PixMo-Points",
  "refcoco": "RefCOCO",
};

/**
 * Whether `task` is a real-format task whose test split came from its offline stand-in
 * generator (the task spec names no `source.test`), not from the dataset's files.
 */
export function isStandIn(taskSpec: Pick<TaskSpec, "name" | "source">, task: string): boolean {
  const key = posterKey(task) ?? task;
  return key in REAL_FORMAT && taskSpec.name === task && !taskSpec.source?.test;
}

/** The label of a real-format task run on its stand-in, or null for a synthetic task. */
export function standInLabel(task: string): string | null {
  const key = posterKey(task) ?? task;
  return key in REAL_FORMAT ? `${REAL_FORMAT[key]} stand-in (synthetic scenes)` : null;
}

/**
 * The one label of a task in every table and chart: the poster's ("Grid Patch", "RefCOCO
 * (val)"), or for a real-format task run on its stand-in "RefCOCO stand-in (synthetic
 * scenes)", else the task name. `taskSpec` is the task's spec when it is not `spec.task`
 * (a task sweep's combined report).
 */
export function taskLabel(spec: Pick<Spec, "task">, task: string, taskSpec?: TaskSpec): string {
  const own = taskSpec ?? spec.task;
  if (isStandIn(own, task)) return standInLabel(task)!;
  return posterRow(task)?.label ?? task;
}
