/**
 * The text of every table cell and line that table.md, index.html and results.json share, so
 * the three files cannot disagree on a number or its rounding.
 */

import type { Spec } from "../spec_types.ts";
import type { ConfidenceInterval } from "../stats.ts";
import { POSTER_TABLE2 } from "./poster.ts";
import {
  type ArmSummary,
  formatP,
  formatStepsToReach,
  type LearningSummary,
  signedPoints,
  type Table1Row,
  type Table2Ours,
} from "./summary.ts";
import type { ReportInput } from "./types.ts";

/** "62.0 ± 25.4 (n=2)", "40.0 (n=1)", "–" (no value). */
export function formatAccuracy(ci: ConfidenceInterval): string {
  if (ci.n === 0) return "–";
  if (ci.halfWidth === undefined) return `${ci.mean.toFixed(1)} (n=1)`;
  return `${ci.mean.toFixed(1)} ± ${ci.halfWidth.toFixed(1)} (n=${ci.n})`;
}

function formatRatio(value: number): string {
  return Number.isNaN(value) ? "–" : value.toFixed(3);
}

function formatPoster(value: number | undefined): string {
  return value === undefined ? "–" : value.toFixed(1);
}

function describeArm(spec: Spec, arm: string): string {
  const a = spec.arms[arm];
  if (!a) return arm;
  if (!a.finetune) return `${arm} (Base checkpoint, no fine-tuning)`;
  const layers = a.layers === "all" ? "all layers" : `layers ${a.layers.join(", ")}`;
  return a.lambda > 0 ? `${arm} (λ=${a.lambda}, ${layers})` : `${arm} (λ=0, NTP only)`;
}

/** One paragraph: task, model size, steps, seeds, backend, arms. */
export function setupLine(input: ReportInput): string {
  const { spec } = input;
  const t = spec.task;
  const m = spec.model;
  const tokensPerSide = Math.floor(t.image_size / m.patch_size);
  const seeds = spec.seeds.join(", ");
  return `Task ${t.name} (${t.image_size} px images, ${t.train} training samples per seed, ` +
    `${t.test} held-out test samples); model ${m.name} (d_model ${m.d_model}, ${m.layers} layers, ` +
    `${m.heads} heads, patch ${m.patch_size} px = ${
      tokensPerSide * tokensPerSide
    } visual tokens); ` +
    `fine-tuning ${spec.train.steps} steps at batch ${spec.train.batch_size}, lr ${spec.train.lr} ` +
    `(${spec.train.optimizer}); seeds ${seeds} (n=${spec.seeds.length}); backend ${input.backend}. ` +
    `Arms: ${Object.keys(spec.arms).map((arm) => describeArm(spec, arm)).join("; ")}.`;
}

/** Headers of the per-task table of every arm. */
export const TABLE_HEADERS = [
  "Arm",
  "Accuracy % (ours, mean ± 95% CI)",
  "Target attention ratio",
  "Poster, Qwen 2.5-VL %",
];

/** The per-task table's cells for one arm, in TABLE_HEADERS order. */
export function tableCells(arm: ArmSummary): string[] {
  return [
    arm.label,
    formatAccuracy(arm.accuracy),
    formatRatio(arm.attentionRatio),
    formatPoster(arm.poster),
  ];
}

/** What a cell says for a task this experiment did not run. */
export const NOT_RUN = "not run";

/** Headers of Table 1 (one row per task). */
export const TABLE1_HEADERS = [
  "Task",
  "Base (ours)",
  "NTP (ours)",
  "KLAL+NTP (ours)",
  "KLAL − NTP (ours, paired t)",
  "Base (poster)",
  "NTP (poster)",
  "KLAL+NTP (poster)",
  "KLAL − NTP (poster)",
];

function gainCell(row: Table1Row): string {
  if (!row.run) return NOT_RUN;
  const gain = row.gain;
  if (!gain || Number.isNaN(gain.meanDiff)) return "–";
  const test = gain.p === undefined ? "n=1, no p" : formatP(gain.p);
  return `${signedPoints(gain.meanDiff)} (${test})`;
}

/** Table 1's cells for one task, in TABLE1_HEADERS order. */
export function table1Cells(row: Table1Row): string[] {
  const ours = (arm: ArmSummary | undefined) =>
    !row.run ? NOT_RUN : arm ? formatAccuracy(arm.accuracy) : "–";
  const p = row.poster;
  return [
    row.label,
    ours(row.base),
    ours(row.ntp),
    ours(row.klal),
    gainCell(row),
    formatPoster(p?.base),
    formatPoster(p?.ntp),
    formatPoster(p?.klal),
    p ? signedPoints(p.klal - p.ntp) : "–",
  ];
}

/** Headers of Table 2 (one row per model). */
export const TABLE2_HEADERS = ["Model", "Line Intersection", "Line Tracing", "Source"];

/** Table 2's rows: ours first, then the poster's quoted rows. */
export function table2Cells(ours: Table2Ours): string[][] {
  const cell = (arm: ArmSummary | undefined) => arm ? formatAccuracy(arm.accuracy) : NOT_RUN;
  return [
    [
      "NTP + KLAL (ours, tiny VLM)",
      cell(ours.lineIntersection),
      cell(ours.lineTracing),
      "this experiment",
    ],
    ...POSTER_TABLE2.map((r) => [
      r.model,
      r.lineIntersection.toFixed(2),
      r.lineTracing.toFixed(2),
      "reported in the paper, not run here",
    ]),
  ];
}

/** Headers of the sample-efficiency table. */
export const REACH_HEADERS = ["Arm", "Accuracy reached", "Steps (validation set)"];

/** The sample-efficiency table's rows: arm, accuracy threshold, steps to reach it. */
export function reachCells(summary: LearningSummary): string[][] {
  return summary.reach.map((r) => [r.label, `≥ ${r.threshold.toFixed(1)}%`, formatStepsToReach(r)]);
}
