/**
 * The experiment report: `table.md`, `results.json` and one offline `index.html` whose
 * tables and Vega-Lite figures sit beside the poster's numbers. Pure formatting functions
 * (`renderTableMarkdown`, `chartSpecs`, `escapeHtml`) are exported for tests; the only
 * side effects are in `writeReport`.
 */

import * as vega from "vega";
import * as vegaLite from "vega-lite";
import type { Spec } from "./spec_types.ts";
import { ci95, type ConfidenceInterval, mean, pairedTTest } from "./stats.ts";

/** One measured number: a metric of one arm and seed on one task. */
export interface ResultRow {
  task: string;
  arm: string;
  seed: number;
  metric: string;
  value: number;
}

/** One logged training step of one arm and seed, with the loss split into its parts. */
export interface CurvePoint {
  arm: string;
  seed: number;
  step: number;
  ntp: number;
  klal: number;
  total: number;
}

/** What a stage of the plan did: served from the cache or ran, and how long it took. */
export interface StageInfo {
  stage: string;
  key: string;
  status: "cached" | "ran";
  seconds: number;
  samplesPerSecond?: number;
}

/** Everything a report shows. */
export interface ReportInput {
  /** Resolved spec (shown in the report as JSON). */
  spec: Spec;
  /**
   * Metrics: "accuracy" (percent 0-100), "target_attention" (mass on GT patches, 0..1),
   * "target_attention_ratio" (mass / uniform share), per layer "target_attention_ratio@L<i>".
   */
  rows: ResultRow[];
  /** Training loss parts per arm and seed. */
  curves: CurvePoint[];
  stages: StageInfo[];
  /** Which tfjs backend ran, e.g. "wasm". */
  backend: string;
  /** ISO date. */
  createdAt: string;
  /** Validation accuracy and grounding measured during fine-tuning, per arm and seed. */
  learning?: LearningRow[];
  /** The first held-out samples with each arm's attention maps (attention figures). */
  figures?: FigureSet[];
  /** Attention mass on target patches per layer and head, per arm and seed. */
  heads?: HeadRow[];
  /** Held-out accuracy by the task's difficulty bucket, per arm and seed. */
  breakdown?: BreakdownRow[];
}

/** One point of a learning curve (validation set, during fine-tuning). */
export interface LearningRow {
  arm: string;
  seed: number;
  step: number;
  /** Percent. */
  accuracy: number;
  targetAttention: number;
  targetAttentionRatio: number;
}

/** Attention figures of one evaluated arm and seed. */
export interface FigureSet {
  arm: string;
  seed: number;
  /** Patches per image side (the maps are side x side, row-major). */
  gridSide: number;
  samples: FigureSample[];
}

/** One held-out sample with one model's answer and attention maps. */
export interface FigureSample {
  index: number;
  prompt: string;
  answer: string;
  prediction: string;
  correct: boolean;
  /** data:image/png;base64,... of the input image */
  image: string;
  /** Ground-truth P over the patch grid (row-major). */
  target: number[];
  /** Head-averaged visual attention of the answer positions, [layer][patch]. */
  layers: number[][];
  /** Per head, [layer][head][patch]. */
  heads: number[][][];
}

/** Attention mass on target patches of one layer and head. */
export interface HeadRow {
  arm: string;
  seed: number;
  layer: number;
  head: number;
  mass: number;
}

/** Accuracy of one arm and seed on one difficulty bucket. */
export interface BreakdownRow {
  arm: string;
  seed: number;
  difficulty: string;
  correct: number;
  n: number;
}

/** The paper's columns; an arm maps to one by the spec's convention. */
export type PaperColumn = "Base" | "NTP" | "KLAL+NTP" | "other";

/** One task's row of the poster's Table 1 (Qwen 2.5-VL, grounding accuracy %). */
export interface PosterRow {
  label: string;
  base: number;
  ntp: number;
  klal: number;
}

/** The poster's Table 1 (Qwen 2.5-VL, grounding accuracy %), keyed by our task names. */
export const POSTER_TABLE1: Readonly<Record<string, PosterRow>> = {
  "grid-patch": { label: "Grid Patch", base: 6.1, ntp: 28.6, klal: 44.9 },
  "line-intersection": { label: "Line Intersection", base: 47.6, ntp: 62.6, klal: 70.2 },
  "line-tracing": { label: "Line Tracing", base: 49.6, ntp: 53.8, klal: 62.2 },
  "pixmo-points": { label: "PixMo-Points", base: 16.8, ntp: 26.3, klal: 35.8 },
  "refcoco": { label: "RefCOCO (val)", base: 90.1, ntp: 90.7, klal: 91.5 },
};

const COLUMN_ORDER: readonly PaperColumn[] = ["Base", "NTP", "KLAL+NTP", "other"];
const PER_LAYER_RATIO = /^target_attention_ratio@L(\d+)$/;

/** The poster's row for a task name ("grid_patch", "RefCOCO-val" and the like are accepted). */
export function posterRow(task: string): PosterRow | undefined {
  const key = task.toLowerCase().replace(/[_\s]+/g, "-");
  return POSTER_TABLE1[key] ?? (key.startsWith("refcoco") ? POSTER_TABLE1.refcoco : undefined);
}

/** The poster's number for a column, if it has one. */
function posterValue(task: string, column: PaperColumn): number | undefined {
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

/** Escape text for HTML content and attribute values. */
export function escapeHtml(text: unknown): string {
  return String(text)
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** JSON that is safe inside a <script> element (`<` as \u003c, line separators escaped). */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replaceAll("<", "\\u003c")
    .replaceAll("\u2028", "\\u2028")
    .replaceAll("\u2029", "\\u2029");
}

/** JavaScript source made safe to inline in a <script> element; source-map comments dropped. */
export function inlineScriptSource(code: string): string {
  return code
    .replace(/^\/\/# sourceMappingURL=.*$/gm, "")
    .replace(/<\/(script)/gi, "<\\/$1")
    .replaceAll("<!--", "<\\!--");
}

/**
 * Debiased exponential moving average (Adam-style): m_t = a*x_t + (1-a)*m_{t-1} with m_0 = 0,
 * reported as m_t / (1 - (1-a)^t), so the first value equals x_1.
 */
export function debiasedEma(values: readonly number[], alpha = 0.1): number[] {
  const out: number[] = [];
  let biased = 0;
  let decay = 1;
  for (const x of values) {
    biased = alpha * x + (1 - alpha) * biased;
    decay *= 1 - alpha;
    out.push(biased / (1 - decay));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Summaries

/** One arm of one task, summarised over seeds. */
export interface ArmSummary {
  arm: string;
  column: PaperColumn;
  /** "KLAL+NTP (klal)". */
  label: string;
  accuracy: ConfidenceInterval;
  accuracyBySeed: Map<number, number>;
  /** Mean over seeds of target_attention_ratio; NaN when absent. */
  attentionRatio: number;
  /** Mean over seeds of target_attention (mass); NaN when absent. */
  attentionMass: number;
  poster: number | undefined;
}

/** One KLAL arm against the NTP arm on the seeds both have. */
export interface Comparison {
  task: string;
  klal: ArmSummary;
  ntp: ArmSummary;
  seeds: number[];
  meanDiff: number;
  p: number | undefined;
  /** The one-line honest verdict. */
  text: string;
}

/** A task's summaries, in paper-column order, and its verdicts. */
export interface TaskSummary {
  task: string;
  arms: ArmSummary[];
  comparisons: Comparison[];
  /** Shown when there is nothing to compare. */
  note: string | undefined;
  /** "Target attention ratio ...: NTP 1.020, KLAL+NTP 11.300." when the rows exist. */
  attentionLine: string | undefined;
}

/** Tasks in the order they first appear in the rows (the spec's task when there are none). */
function taskNames(input: ReportInput): string[] {
  const names = [...new Set(input.rows.map((row) => row.task))];
  return names.length > 0 ? names : [input.spec.task.name];
}

function valuesBySeed(rows: ResultRow[], arm: string, metric: string): Map<number, number> {
  const bySeed = new Map<number, number>();
  for (const row of rows) {
    if (row.arm === arm && row.metric === metric) bySeed.set(row.seed, row.value);
  }
  return bySeed;
}

/** Arms of a task: spec order, then arms found only in rows; sorted Base, NTP, KLAL+NTP, other. */
function armsOfTask(input: ReportInput, taskRows: ResultRow[]): string[] {
  const seen = [...new Set([...Object.keys(input.spec.arms), ...taskRows.map((r) => r.arm)])];
  const withRows = seen.filter((arm) => taskRows.some((row) => row.arm === arm));
  const arms = withRows.length > 0 ? withRows : Object.keys(input.spec.arms);
  const rank = (arm: string) => COLUMN_ORDER.indexOf(paperColumn(input.spec, arm));
  return arms.map((arm, i) => ({ arm, i })).sort((a, b) => rank(a.arm) - rank(b.arm) || a.i - b.i)
    .map((entry) => entry.arm);
}

/** Format a p-value for a verdict: "p=0.073", "p<0.001". */
export function formatP(p: number | undefined): string {
  if (p === undefined || Number.isNaN(p)) return "p undefined";
  return p < 0.001 ? "p<0.001" : `p=${p.toFixed(3)}`;
}

function signedPoints(diff: number): string {
  const text = Math.abs(diff).toFixed(1);
  if (text === "0.0") return "0.0";
  return `${diff > 0 ? "+" : "-"}${text}`;
}

function compare(task: string, klal: ArmSummary, ntp: ArmSummary, named: boolean): Comparison {
  const seeds = [...klal.accuracyBySeed.keys()].filter((s) => ntp.accuracyBySeed.has(s))
    .sort((a, b) => a - b);
  const who = named ? `KLAL+NTP (${klal.arm}) vs NTP (${ntp.arm})` : "KLAL+NTP vs NTP";
  if (seeds.length === 0) {
    return {
      task,
      klal,
      ntp,
      seeds,
      meanDiff: NaN,
      p: undefined,
      text: `${who}: no seed has accuracy for both arms, so there is nothing to compare.`,
    };
  }
  const test = pairedTTest(
    seeds.map((s) => klal.accuracyBySeed.get(s)!),
    seeds.map((s) => ntp.accuracyBySeed.get(s)!),
  );
  const seedWord = seeds.length === 1 ? "seed" : "seeds";
  const testText = test.p === undefined
    ? `paired t-test over ${seeds.length} ${seedWord}: n=1, no p-value`
    : `paired t-test over ${seeds.length} ${seedWord}, ${formatP(test.p)}`;
  const caveat = test.p !== undefined && test.p >= 0.05 ? "; not significant at the 5% level" : "";
  const beats = Number(test.meanDiff.toFixed(1)) > 0;
  const head = beats
    ? `${who}: ${signedPoints(test.meanDiff)} points`
    : `${named ? `KLAL+NTP (${klal.arm})` : "KLAL+NTP"} does not beat ${
      named ? `NTP (${ntp.arm})` : "NTP"
    } here: ${signedPoints(test.meanDiff)} points`;
  return {
    task,
    klal,
    ntp,
    seeds,
    meanDiff: test.meanDiff,
    p: test.p,
    text: `${head} (${testText}${beats ? caveat : ""}).`,
  };
}

/** Summaries of every task in the input: per-arm statistics and KLAL-vs-NTP verdicts. */
export function summarize(input: ReportInput): TaskSummary[] {
  return taskNames(input).map((task) => {
    const taskRows = input.rows.filter((row) => row.task === task);
    const arms = armsOfTask(input, taskRows).map((arm): ArmSummary => {
      const column = paperColumn(input.spec, arm);
      const accuracyBySeed = valuesBySeed(taskRows, arm, "accuracy");
      const ratio = [...valuesBySeed(taskRows, arm, "target_attention_ratio").values()];
      const mass = [...valuesBySeed(taskRows, arm, "target_attention").values()];
      const seeds = [...accuracyBySeed.keys()].sort((a, b) => a - b);
      return {
        arm,
        column,
        label: column === "other" ? arm : `${column} (${arm})`,
        accuracy: ci95(seeds.map((s) => accuracyBySeed.get(s)!)),
        accuracyBySeed,
        attentionRatio: mean(ratio),
        attentionMass: mean(mass),
        poster: posterValue(task, column),
      };
    });
    const ntpArms = arms.filter((a) => a.column === "NTP");
    const klalArms = arms.filter((a) => a.column === "KLAL+NTP");
    const named = ntpArms.length > 1 || klalArms.length > 1;
    const comparisons = ntpArms.length > 0
      ? klalArms.map((klal) => compare(task, klal, ntpArms[0], named))
      : [];
    let note: string | undefined;
    if (klalArms.length === 0) note = "No KLAL+NTP arm (lambda > 0), so no verdict.";
    else if (ntpArms.length === 0) note = "No NTP arm (lambda = 0) to compare KLAL+NTP with.";
    const withRatio = arms.filter((a) => !Number.isNaN(a.attentionRatio));
    const attentionLine = withRatio.length > 0
      ? `Target attention ratio (mass on target patches / uniform share; 1 = chance): ${
        withRatio.map((a) => `${a.label} ${a.attentionRatio.toFixed(3)}`).join(", ")
      }.`
      : undefined;
    return { task, arms, comparisons, note, attentionLine };
  });
}

/** Every verdict line of the report (one per KLAL arm and task), or the reason there is none. */
export function verdictLines(summaries: TaskSummary[]): string[] {
  const prefix = (task: string) => summaries.length > 1 ? `${task}: ` : "";
  return summaries.flatMap((s) =>
    s.comparisons.length > 0
      ? s.comparisons.map((c) => prefix(s.task) + c.text)
      : [prefix(s.task) + (s.note ?? "No verdict.")]
  );
}

// ---------------------------------------------------------------------------------------
// Text pieces shared by table.md and index.html

function formatAccuracy(ci: ConfidenceInterval): string {
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

const TABLE_HEADERS = [
  "Arm",
  "Accuracy % (ours, mean ± 95% CI)",
  "Target attention ratio",
  "Poster, Qwen 2.5-VL %",
];

function tableCells(arm: ArmSummary): string[] {
  return [
    arm.label,
    formatAccuracy(arm.accuracy),
    formatRatio(arm.attentionRatio),
    formatPoster(arm.poster),
  ];
}

/** Markdown text that cannot open an HTML tag (renderers pass raw HTML through). */
function markdownText(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

function markdownCell(text: string): string {
  return markdownText(text).replaceAll("|", "\\|").replace(/\s+/g, " ");
}

/** Markdown table: title, setup paragraph, then per task a table and the verdict lines. */
export function renderTableMarkdown(input: ReportInput): string {
  const summaries = summarize(input);
  const lines: string[] = [
    `# KLAL reproduction: ${markdownText(input.spec.name)}`,
    "",
  ];
  if (input.spec.description) lines.push(markdownText(input.spec.description.trim()), "");
  lines.push(markdownText(setupLine(input)), "");
  for (const s of summaries) {
    const poster = posterRow(s.task);
    lines.push(`## ${markdownText(s.task)}${poster ? ` (poster: ${poster.label})` : ""}`, "");
    lines.push(`| ${TABLE_HEADERS.join(" | ")} |`);
    lines.push(`| --- | ${TABLE_HEADERS.slice(1).map(() => "---:").join(" | ")} |`);
    for (const arm of s.arms) {
      lines.push(`| ${tableCells(arm).map(markdownCell).join(" | ")} |`);
    }
    lines.push("");
    if (!poster) lines.push("The poster has no number for this task.", "");
    for (const c of s.comparisons) lines.push(markdownText(c.text), "");
    if (s.comparisons.length === 0 && s.note) lines.push(markdownText(s.note), "");
    if (s.attentionLine) lines.push(markdownText(s.attentionLine), "");
  }
  lines.push(
    `Created ${
      markdownText(input.createdAt)
    }. Poster numbers: Esmaeilkhani and Latecki, WACV 2026, ` +
      "Table 1 (Qwen 2.5-VL); ours are a tiny VLM pretrained on a generic synthetic mix, " +
      "so compare the direction and size of the gaps, not the absolute numbers.",
  );
  return lines.join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------
// Charts

const COLUMN_COLOURS: Record<PaperColumn, string[]> = {
  "Base": ["#9e9e9e", "#bdbdbd"],
  "NTP": ["#4c78a8", "#72a1d6", "#2f4b7c"],
  "KLAL+NTP": ["#e45756", "#f58518", "#b6372f", "#ff9d98"],
  "other": ["#54a24b", "#b279a2", "#9d755d", "#eeca3b"],
};

/** Arm labels and one colour each, stable across all charts. */
function armPalette(input: ReportInput): { domain: string[]; range: string[] } {
  const arms = [
    ...new Set([
      ...Object.keys(input.spec.arms),
      ...input.rows.map((r) => r.arm),
      ...input.curves.map((c) => c.arm),
    ]),
  ];
  const used: Record<PaperColumn, number> = { "Base": 0, "NTP": 0, "KLAL+NTP": 0, "other": 0 };
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
function paletteFor(palette: { domain: string[]; range: string[] }, labels: Iterable<string>) {
  const shown = new Set(labels);
  const keep = palette.domain.map((label, i) => ({ label, colour: palette.range[i] }))
    .filter((entry) => shown.has(entry.label));
  return { domain: keep.map((e) => e.label), range: keep.map((e) => e.colour) };
}

function armLabel(spec: Spec, arm: string): string {
  const column = paperColumn(spec, arm);
  return column === "other" ? arm : `${column} (${arm})`;
}

function accuracyChart(
  s: TaskSummary,
  palette: ReturnType<typeof armPalette>,
) {
  const arms = s.arms.filter((a) => a.accuracy.n > 0);
  if (arms.length === 0) return undefined;
  const labels = arms.map((a) => a.label);
  const x = {
    field: "label",
    type: "nominal",
    sort: labels,
    title: null,
    axis: { labelAngle: 0, labelLimit: 160 },
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
      text: `Grounding accuracy: ${s.task}`,
      subtitle: [
        "bar = mean over seeds, line = 95% CI, dots = seeds",
        ...(poster.length > 0 ? ["black tick = poster (Qwen 2.5-VL)"] : []),
      ],
    },
    width: { step: 110 },
    height: 260,
    layer,
  };
}

function lossChart(input: ReportInput, palette: ReturnType<typeof armPalette>) {
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

function layerAttentionChart(
  input: ReportInput,
  s: TaskSummary,
  palette: ReturnType<typeof armPalette>,
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
  const groups = new Map<string, typeof perSeed>();
  for (const d of perSeed) {
    const id = JSON.stringify([d.label, d.index]);
    if (!groups.has(id)) groups.set(id, []);
    groups.get(id)!.push(d);
  }
  const means = [...groups.values()].map((g) => ({
    label: g[0].label,
    layer: g[0].layer,
    index: g[0].index,
    mean: mean(g.map((d) => d.value)),
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
      text: `Target attention ratio per layer: ${s.task}`,
      subtitle: "attention mass on target patches / uniform share; dashed rule = chance (1)",
    },
    width: { step: Math.max(24, 18 * labels.length) },
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

/**
 * The report's Vega-Lite specs: `accuracy:<task>`, `loss`, and `attention_layers:<task>`
 * (the last only when per-layer ratio rows exist).
 */
export function chartSpecs(input: ReportInput): Record<string, object> {
  const palette = armPalette(input);
  const summaries = summarize(input);
  const charts: Record<string, object> = {};
  for (const s of summaries) {
    const chart = accuracyChart(s, palette);
    if (chart) charts[`accuracy:${s.task}`] = chart;
  }
  const loss = lossChart(input, palette);
  if (loss) charts.loss = loss;
  for (const s of summaries) {
    const chart = layerAttentionChart(input, s, palette);
    if (chart) charts[`attention_layers:${s.task}`] = chart;
  }
  const config = {
    font: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
    view: { stroke: null },
    axis: { gridColor: "#eee", domainColor: "#999", tickColor: "#999" },
    title: { anchor: "start", subtitleColor: "#666", fontSize: 14 },
  };
  for (const key of Object.keys(charts)) {
    charts[key] = { ...charts[key], config, background: "white" };
  }
  return charts;
}

/** Render a Vega-Lite spec to SVG headless (used for the no-JavaScript fallback and tests). */
export async function renderChartSvg(spec: object): Promise<string> {
  // deno-lint-ignore no-explicit-any
  const compiled = vegaLite.compile(spec as any).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Prefix every id in an SVG (and its references) so several inline SVGs cannot clash. */
export function prefixSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_, id) => `id="${prefix}${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id) => `url(#${prefix}${id})`)
    .replace(/href="#([^"]+)"/g, (_, id) => `href="#${prefix}${id}"`);
}

// ---------------------------------------------------------------------------------------
// index.html

const BUNDLES = [
  { pkg: "vega", file: "vega.min.js" },
  { pkg: "vega-lite", file: "vega-lite.min.js" },
  { pkg: "vega-embed", file: "vega-embed.min.js" },
] as const;

/** Candidate locations of a package's minified browser bundle, best first. */
function bundleUrls(pkg: string, file: string): URL[] {
  const urls: URL[] = [];
  try {
    // Resolves to node_modules/<pkg>/build/<entry>.js when nodeModulesDir is on.
    const resolved = new URL(import.meta.resolve(pkg));
    if (resolved.protocol === "file:") urls.push(new URL(file, resolved));
  } catch {
    // Not resolvable this way; fall through to the repository-relative path.
  }
  urls.push(new URL(`../node_modules/${pkg}/build/${file}`, import.meta.url));
  return urls;
}

let bundleCache: Promise<{ file: string; code: string }[]> | undefined;

/** The three minified bundles' sources; throws naming the missing file and the fix. */
function loadBundles(): Promise<{ file: string; code: string }[]> {
  bundleCache ??= Promise.all(BUNDLES.map(async ({ pkg, file }) => {
    const tried: string[] = [];
    for (const url of bundleUrls(pkg, file)) {
      try {
        return { file, code: await Deno.readTextFile(url) };
      } catch {
        tried.push(url.pathname);
      }
    }
    throw new Error(
      `Report: expected the ${pkg} browser bundle at ${tried.join(" or ")}, found nothing; ` +
        "run `deno install` in the repository root (deno.json has nodeModulesDir: auto)",
    );
  }));
  bundleCache.catch(() => (bundleCache = undefined));
  return bundleCache;
}

const CSS = `
:root { --fg: #1d2330; --muted: #5d6677; --line: #e3e6eb; --accent: #b6372f; --bg: #fafbfc; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 28px 24px 60px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header .desc { margin: 4px 0 8px; font-size: 16px; }
.meta { color: var(--muted); font-size: 13px; }
h2 { margin: 36px 0 10px; font-size: 19px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { margin: 22px 0 8px; font-size: 16px; }
.headline { background: white; border: 1px solid var(--line); border-left: 4px solid var(--accent);
  padding: 10px 16px; margin: 18px 0; border-radius: 4px; }
.headline p { margin: 6px 0; font-weight: 600; }
table { border-collapse: collapse; background: white; border: 1px solid var(--line); font-size: 14px; }
th, td { padding: 6px 12px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f4f7; font-weight: 600; }
td.num, th.num { font-variant-numeric: tabular-nums; }
.verdict { font-weight: 600; }
.note { color: var(--muted); }
figure { margin: 18px 0; background: white; border: 1px solid var(--line); border-radius: 4px;
  padding: 12px; overflow-x: auto; }
figure .fallback svg { max-width: 100%; height: auto; }
pre { background: white; border: 1px solid var(--line); padding: 12px; overflow-x: auto;
  font-size: 12.5px; line-height: 1.4; border-radius: 4px; }
code { font-size: 13px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; }
`;

// Replaces each pre-rendered SVG with an interactive view when the bundles load.
const BOOT = `
(function () {
  var specs = JSON.parse(document.getElementById("chart-specs").textContent);
  if (typeof vegaEmbed !== "function") return;
  Object.keys(specs).forEach(function (key, i) {
    var target = document.getElementById("chart-live-" + i);
    var fallback = document.getElementById("chart-static-" + i);
    if (!target) return;
    vegaEmbed(target, specs[key], { mode: "vega-lite", renderer: "svg", actions: false })
      .then(function () { if (fallback) fallback.style.display = "none"; })
      .catch(function (err) { target.textContent = ""; console.error(key, err); });
  });
})();
`;

function htmlTable(headers: string[], rows: string[][], numericFrom = 1): string {
  const cls = (i: number) => (i >= numericFrom ? ' class="num"' : "");
  const head = headers.map((h, i) => `<th${cls(i)}>${escapeHtml(h)}</th>`).join("");
  const body = rows.map((r) =>
    `<tr>${r.map((c, i) => `<td${cls(i)}>${escapeHtml(c)}</td>`).join("")}</tr>`
  ).join("\n");
  return `<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

function chartCaption(key: string): string {
  const [kind, task] = key.split(":");
  if (kind === "accuracy") {
    return `Grounding accuracy on ${task}: mean over seeds with its 95% Student-t interval, ` +
      "each seed as a dot, and the poster's number for the same column as a black tick.";
  }
  if (kind === "loss") {
    return "Training loss split into its NTP and KLAL parts (the KLAL part is logged for NTP " +
      "arms too, where it is not optimised).";
  }
  return `Attention mass on the target patches relative to a uniform spread, per layer, on ${task}. ` +
    "Above 1: the answer looks at the target more than chance.";
}

/** The whole offline index.html. `svgs` are pre-rendered charts keyed like `chartSpecs`. */
export function renderHtml(
  input: ReportInput,
  charts: Record<string, object>,
  svgs: Record<string, string>,
  bundles: { file: string; code: string }[],
): string {
  const { spec } = input;
  const summaries = summarize(input);
  const verdicts = verdictLines(summaries);
  const parts: string[] = [];
  parts.push(
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>KLAL: ${escapeHtml(spec.name)}</title>`,
    `<style>${CSS}</style>`,
    "</head>",
    "<body>",
    "<main>",
    "<header>",
    `<h1>KLAL reproduction: ${escapeHtml(spec.name)}</h1>`,
  );
  if (spec.description) parts.push(`<p class="desc">${escapeHtml(spec.description)}</p>`);
  parts.push(
    `<p class="meta">Created ${escapeHtml(input.createdAt)} · backend ${
      escapeHtml(input.backend)
    } · seeds ${escapeHtml(spec.seeds.join(", "))}</p>`,
    "</header>",
    `<section class="headline">${
      verdicts.map((v) => `<p>${escapeHtml(v)}</p>`).join("")
    }</section>`,
    "<h2>Results</h2>",
    `<p>${escapeHtml(setupLine(input))}</p>`,
  );
  for (const s of summaries) {
    const poster = posterRow(s.task);
    parts.push(
      `<h3>${escapeHtml(s.task)}${
        poster ? ` <span class="note">(poster: ${escapeHtml(poster.label)})</span>` : ""
      }</h3>`,
      htmlTable(TABLE_HEADERS, s.arms.map(tableCells)),
    );
    if (!poster) parts.push('<p class="note">The poster has no number for this task.</p>');
    for (const c of s.comparisons) parts.push(`<p class="verdict">${escapeHtml(c.text)}</p>`);
    if (s.comparisons.length === 0 && s.note) {
      parts.push(`<p class="note">${escapeHtml(s.note)}</p>`);
    }
    if (s.attentionLine) parts.push(`<p>${escapeHtml(s.attentionLine)}</p>`);
  }
  const keys = Object.keys(charts);
  if (keys.length > 0) parts.push("<h2>Figures</h2>");
  keys.forEach((key, i) => {
    parts.push(
      "<figure>",
      `<div id="chart-live-${i}"></div>`,
      `<div class="fallback" id="chart-static-${i}">${svgs[key] ?? ""}</div>`,
      `<figcaption class="note">${escapeHtml(chartCaption(key))}</figcaption>`,
      "</figure>",
    );
  });
  parts.push(
    "<h2>Resolved spec</h2>",
    `<pre>${escapeHtml(JSON.stringify(spec, null, 2))}</pre>`,
    "<h2>Stages</h2>",
  );
  if (input.stages.length > 0) {
    parts.push(htmlTable(
      ["Stage", "Key", "Status", "Seconds", "Samples/s"],
      input.stages.map((st) => [
        st.stage,
        st.key.slice(0, 12),
        st.status,
        st.seconds.toFixed(1),
        st.samplesPerSecond === undefined ? "–" : st.samplesPerSecond.toFixed(1),
      ]),
      3,
    ));
  } else {
    parts.push('<p class="note">No stage information.</p>');
  }
  parts.push(
    "<footer>Poster numbers: Esmaeilkhani and Latecki, “Direct Visual Grounding by Directing " +
      "Attention of Visual Tokens”, WACV 2026, Table 1 (Qwen 2.5-VL). Ours come from a tiny " +
      "VLM pretrained on a generic synthetic mix: compare the direction and size of the gaps, not the " +
      "absolute numbers. This file is self-contained and works offline.</footer>",
    "</main>",
  );
  for (const bundle of bundles) {
    parts.push(
      `<script data-bundle="${escapeHtml(bundle.file)}">${
        inlineScriptSource(bundle.code)
      }</script>`,
    );
  }
  parts.push(
    `<script type="application/json" id="chart-specs">${jsonForScript(charts)}</script>`,
    `<script>${BOOT}</script>`,
    "</body>",
    "</html>",
  );
  return parts.join("\n") + "\n";
}

/** results.json's content: `{ experiment, createdAt, backend, spec, rows, stages }`. */
export function resultsJson(input: ReportInput): string {
  const { spec, rows, stages, backend, createdAt } = input;
  return JSON.stringify(
    { experiment: spec.name, createdAt, backend, spec, rows, stages },
    null,
    2,
  ) +
    "\n";
}

/**
 * Write index.html, results.json, table.md into `dir` (creating it). Writes to a temp dir
 * next to `dir` and renames into place, so a crash never leaves a half-written report.
 */
export async function writeReport(dir: string, input: ReportInput): Promise<void> {
  const bundles = await loadBundles();
  const charts = chartSpecs(input);
  const svgs: Record<string, string> = {};
  for (const [i, [key, chart]] of Object.entries(charts).entries()) {
    svgs[key] = prefixSvgIds(await renderChartSvg(chart), `chart${i}-`);
  }
  const target = dir.replace(/[\\/]+$/, "");
  const slash = Math.max(target.lastIndexOf("/"), target.lastIndexOf("\\"));
  const parent = slash >= 0 ? target.slice(0, slash) || "/" : ".";
  await Deno.mkdir(parent, { recursive: true });
  const suffix = `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
  const temp = `${target}.tmp-${suffix}`;
  const old = `${target}.old-${suffix}`;
  await Deno.mkdir(temp);
  try {
    await Deno.writeTextFile(`${temp}/results.json`, resultsJson(input));
    await Deno.writeTextFile(`${temp}/table.md`, renderTableMarkdown(input));
    await Deno.writeTextFile(`${temp}/index.html`, renderHtml(input, charts, svgs, bundles));
    let hadOld = false;
    try {
      await Deno.rename(target, old);
      hadOld = true;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    try {
      await Deno.rename(temp, target);
    } catch (error) {
      if (hadOld) await Deno.rename(old, target);
      throw error;
    }
    if (hadOld) await Deno.remove(old, { recursive: true });
  } catch (error) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    throw error;
  }
}
