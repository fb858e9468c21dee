/**
 * The text of every table cell and line that table.md, index.html and results.json share, so
 * the three files cannot disagree on a number or its rounding.
 */

import type { Spec } from "../spec/types.ts";
import type { ConfidenceInterval } from "./stats.ts";
import type { ArmConfusion } from "./items.ts";
import { armLabel, controlKind, POSTER_TABLE2 } from "./poster.ts";
import {
  type ArmSummary,
  type Comparison,
  controlName,
  formatInterval,
  formatP,
  formatStepsToReach,
  type LearningSummary,
  signedPoints,
  type Table1Row,
  type Table2Ours,
} from "./summary.ts";
import type { ReportInput, TaskFloor } from "./types.ts";

/** "62.0 ± 25.4 (n=2)", "40.0 (n=1)", "–" (no value). */
export function formatAccuracy(ci: ConfidenceInterval): string {
  if (ci.n === 0) return "–";
  if (ci.halfWidth === undefined) return `${ci.mean.toFixed(1)} (n=1)`;
  return `${ci.mean.toFixed(1)} ± ${ci.halfWidth.toFixed(1)} (n=${ci.n})`;
}

/** "62.0 ± 25.4 (n=2); boot [58.1, 65.9]": the seed interval, then the bootstrap if any. */
export function formatArmAccuracy(arm: ArmSummary): string {
  const seeds = formatAccuracy(arm.accuracy);
  return arm.bootstrap && arm.accuracy.n > 0
    ? `${seeds}; boot ${formatInterval(arm.bootstrap)}`
    : seeds;
}

function formatRatio(value: number): string {
  return Number.isNaN(value) ? "–" : value.toFixed(3);
}

/** '33.4 (always "1")', '12.0 (constant "50 , 50")', "–" (not recorded). */
export function formatFloor(floor: TaskFloor | undefined): string {
  if (!floor || Number.isNaN(floor.accuracy)) return "–";
  const how = floor.kind === "majority" ? "always" : "constant";
  const shortcut = floor.shortcut
    ? `; shortcut ${floor.shortcut.accuracy.toFixed(1)} (${floor.shortcut.rule})`
    : "";
  return `${floor.accuracy.toFixed(1)} (${how} "${floor.answer}")${shortcut}`;
}

function formatPoster(value: number | undefined): string {
  return value === undefined ? "–" : value.toFixed(1);
}

function describeArm(spec: Spec, arm: string): string {
  const a = spec.arms[arm];
  if (!a) return arm;
  if (!a.finetune) return `${arm} (Base checkpoint, no fine-tuning)`;
  const layers = a.layers === "all" ? "all layers" : `layers ${a.layers.join(", ")}`;
  if (!(a.lambda > 0)) return `${arm} (λ=0, NTP only)`;
  const control = controlKind(a);
  const queries = a.queries === "first" ? ", first answer position only" : "";
  return control
    ? `${arm} (control: ${control}, λ=${a.lambda}, ${layers}${queries})`
    : `${arm} (λ=${a.lambda}, ${layers}${queries})`;
}

/** "wasm+openblas (auto: no GPU adapter)", or the backend alone when no reason was recorded. */
export function backendWithReason(input: ReportInput): string {
  return input.backendReason ? `${input.backend} (${input.backendReason})` : input.backend;
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
    `(${spec.train.optimizer}); seeds ${seeds} (n=${spec.seeds.length}); backend ${
      backendWithReason(input)
    }. ` +
    `Arms: ${Object.keys(spec.arms).map((arm) => describeArm(spec, arm)).join("; ")}.`;
}

/** Headers of the per-task table of every arm. */
export const TABLE_HEADERS = [
  "Arm",
  "Accuracy % (ours, mean ± 95% CI)",
  "Bootstrap 95% (seeds × test items)",
  "Target attention ratio",
  "Ratio, first answer position",
  "Visual share",
  "Visual share, first position",
  "Poster, Qwen 2.5-VL %",
];

function formatShare(value: number): string {
  return Number.isNaN(value) ? "–" : value.toFixed(3);
}

/** The per-task table's cells for one arm, in TABLE_HEADERS order. */
export function tableCells(arm: ArmSummary): string[] {
  return [
    arm.label,
    formatAccuracy(arm.accuracy),
    arm.bootstrap && arm.accuracy.n > 0 ? formatInterval(arm.bootstrap) : "–",
    formatRatio(arm.attentionRatio),
    formatRatio(arm.attentionRatioFirst),
    formatShare(arm.visualShare),
    formatShare(arm.visualShareFirst),
    formatPoster(arm.poster),
  ];
}

/**
 * The per-task table's first rows, from what the eval stage recorded: the fixed-answer
 * floor, the best shortcut rule, and the question-blind attention baseline (attention spread
 * evenly over the patches with ink, whatever the question: its ratio, at every position).
 */
export function floorCells(floor: TaskFloor | undefined): string[][] {
  if (!floor || Number.isNaN(floor.accuracy)) return [];
  const how = floor.kind === "majority" ? "always" : "best constant";
  const dashes = (from: number) => TABLE_HEADERS.slice(from).map(() => "–");
  const rows = [[
    `Fixed-answer floor (${how} "${floor.answer}")`,
    floor.accuracy.toFixed(1),
    ...dashes(2),
  ]];
  if (floor.shortcut) {
    rows.push([
      `Shortcut floor (${floor.shortcut.rule})`,
      floor.shortcut.accuracy.toFixed(1),
      ...dashes(2),
    ]);
  }
  const blindRows: [string, number | undefined][] = [
    ["Question-blind: uniform over patches with ink", floor.questionBlind?.ink],
    ["Question-blind: uniform over every candidate object", floor.questionBlind?.objects],
  ];
  for (const [label, blind] of blindRows) {
    if (blind === undefined || Number.isNaN(blind)) continue;
    const ratio = formatRatio(blind);
    rows.push([label, "–", "–", ratio, ratio, ...dashes(5)]);
  }
  return rows;
}

/** Headers of the per-task statistics table (one row per comparison). */
export const STATS_HEADERS = [
  "Comparison",
  "Difference, points",
  "Paired t over seeds",
  "Holm p (whole report)",
  "Paired bootstrap 95% (seeds × items)",
  "McNemar per seed (only KLAL / only other, p)",
];

/** The statistics table's headers when seeds are nested in several Bases. */
export const STATS_HEADERS_BASES = STATS_HEADERS.map((h, i) =>
  i === 2
    ? "Paired t over Bases' means"
    : i === 4
    ? "Paired bootstrap 95% (Bases › seeds × items)"
    : h
);

/** "KLAL+NTP (klal) vs NTP (ntp)", "KLAL+NTP (klal) vs shuffled-map control (shuffled)". */
export function comparisonName(c: Comparison): string {
  return `${c.klal.label} vs ${
    c.kind === "ntp" ? c.other.label : `${controlName(c.other.control ?? "")} (${c.other.arm})`
  }`;
}

/** The statistics table's cells for one comparison, in STATS_HEADERS order. */
export function statsCells(c: Comparison): string[] {
  const none = Number.isNaN(c.meanDiff);
  return [
    comparisonName(c),
    none ? "–" : signedPoints(c.meanDiff),
    c.p === undefined ? (none ? "–" : `n=${c.seeds.length}, no p`) : formatP(c.p),
    c.pHolm === undefined ? "–" : formatP(c.pHolm),
    c.bootstrap ? formatInterval(c.bootstrap, true) : "–",
    c.mcnemar.length === 0
      ? "–"
      : c.mcnemar.map((m) => `s${m.seed} ${m.onlyA} / ${m.onlyB}, ${formatP(m.p)}`).join("; "),
  ];
}

/** A confusion table: headers (truth, then each predicted answer) and one row per truth. */
export function confusionCells(
  spec: Spec,
  confusion: ArmConfusion,
): { title: string; headers: string[]; rows: string[][] } {
  const seeds = confusion.seeds.length === 1 ? "seed" : "seeds";
  return {
    title: `${armLabel(spec, confusion.arm)}, ${confusion.seeds.length} ${seeds} pooled`,
    headers: ["truth ↓ predicted →", ...confusion.classes],
    rows: confusion.matrix.map((row, t) => [confusion.classes[t], ...row.map(String)]),
  };
}

/** What a cell says for a task this experiment did not run. */
export const NOT_RUN = "not run";

/** Headers of Table 1 (one row per task). */
export const TABLE1_HEADERS = [
  "Task",
  "Floor (fixed answer)",
  "Base (ours)",
  "NTP (ours)",
  "KLAL+NTP (ours)",
  "KLAL − NTP (ours, paired t)",
  "Controls (ours)",
  "Base (poster)",
  "NTP (poster)",
  "KLAL+NTP (poster)",
  "KLAL − NTP (poster)",
];

/** "+17.0 (p=0.107, Holm p=0.214; boot [+10.0, +24.0])", "+20.0 (n=1, no p)". */
function gainCell(row: Table1Row): string {
  if (!row.run) return NOT_RUN;
  const gain = row.gain;
  if (!gain || Number.isNaN(gain.meanDiff)) return "–";
  const test = gain.p === undefined
    ? "n=1, no p"
    : `${formatP(gain.p)}${gain.pHolm === undefined ? "" : `, Holm ${formatP(gain.pHolm)}`}`;
  const boot = gain.bootstrap ? `; boot ${formatInterval(gain.bootstrap, true)}` : "";
  return `${signedPoints(gain.meanDiff)} (${test}${boot})`;
}

/** "shuffled maps (shuffled) 30.0 ± 2.0 (n=2); pointer head (pointer) 25.0 (n=1)", or "–". */
function controlsCell(row: Table1Row): string {
  if (!row.run) return NOT_RUN;
  if (row.controls.length === 0) return "–";
  return row.controls.map((c) => `${c.control} (${c.arm}) ${formatAccuracy(c.accuracy)}`)
    .join("; ");
}

/** Table 1's cells for one task, in TABLE1_HEADERS order. */
export function table1Cells(row: Table1Row): string[] {
  const ours = (arm: ArmSummary | undefined) =>
    !row.run ? NOT_RUN : arm ? formatArmAccuracy(arm) : "–";
  const p = row.poster;
  return [
    row.label,
    row.run ? formatFloor(row.floor) : NOT_RUN,
    ours(row.base),
    ours(row.ntp),
    ours(row.klal),
    gainCell(row),
    controlsCell(row),
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
