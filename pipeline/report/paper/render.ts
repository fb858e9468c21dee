/**
 * Rendering the paper record: `table.md` and the figures, every number read from the record.
 * Tables go through the report's markdown table writer; the figures take their colours from
 * the report's palette and their Vega-Lite set-up from its vega config, and each lives in one
 * entry of PAPER_CHARTS.
 */

import { markdownTable } from "../markdown.ts";
import { COLUMN_COLOURS, columnPalette } from "../palette.ts";
import { paperChart } from "../vega_config.ts";
import { formatValue } from "./template.ts";
import type {
  ArmRecord,
  ComparisonRecord,
  LearningRecord,
  PaperRecord,
  SeedStats,
  Table1Record,
} from "./types.ts";

const ci = (s: SeedStats | null | undefined) => formatValue(s ?? null, "ci");
const ratioText = (a: ArmRecord | null | undefined) => (a ? a.ratio.mean.toFixed(2) : "not run");

/** Table 1's columns, in order, with the arm each shows (null: not run). */
function armColumns(t: Table1Record): [string, ArmRecord | null][] {
  return [
    ["Base", t.base],
    ["NTP", t.ntp],
    ["KLAL+NTP", t.klal],
    ["Shuffled map", t.shuffled ?? null],
    ["Pointer head", t.pointer ?? null],
  ];
}

/** '+22.2 (p=0.001, Holm p=0.004)', or '–' without the comparison. */
function comparisonText(t: Table1Record, against: ArmRecord | null | undefined): string {
  const c: ComparisonRecord | undefined = against
    ? t.comparisons?.find((c) => c.against === against.arm)
    : undefined;
  if (!c) return "–";
  const holm = c.pHolm === null ? "" : `, Holm ${formatValue(c.pHolm, "p")}`;
  return `${formatValue(c.meanDiff, "signed")} (${formatValue(c.p, "p")}${holm})`;
}

/** '[40.1, 52.3]', or '–'. */
function bootText(a: ArmRecord | null | undefined): string {
  return a?.bootstrap ? `[${a.bootstrap.low.toFixed(1)}, ${a.bootstrap.high.toFixed(1)}]` : "–";
}

/** A per-seed metric's mean with two decimals, or '–'. */
function meanText(s: SeedStats | undefined, digits = 2): string {
  return s && s.n > 0 ? s.mean.toFixed(digits) : "–";
}

/** One row per swept value: the value, accuracy and target attention ratio. */
function sweepTable(
  axis: string,
  sweep: { values: number[]; points: Record<string, { accuracy: SeedStats; ratio: SeedStats }> },
): string[] {
  return markdownTable(
    [axis, "Accuracy %", "Target attention ratio"],
    sweep.values.map((v) => {
      const p = sweep.points[String(v)];
      return [String(v), ci(p.accuracy), p.ratio.mean.toFixed(2)];
    }),
  );
}

/** The floor as the tables show it: accuracy and the constant answer ('33.4 ("1")'). */
function floorText(t: Table1Record): string {
  return t.floor ? `${t.floor.accuracy.toFixed(1)} ("${t.floor.answer}")` : "–";
}

/** KLAL+NTP against the larger of the floor and NTP: '+22.2 over the floor (p=0.000)'. */
function referenceText(t: Table1Record): string {
  const r = t.reference;
  if (!r) return "–";
  const against = r.against === "floor" ? "the floor" : "NTP";
  return `${formatValue(r.klalOverReference, "signed")} vs ${against} (${formatValue(r.p, "p")})`;
}

/** Table 1's markdown rows (ours beside the poster's). */
function table1Markdown(tasks: string[], table1: Record<string, Table1Record>): string[] {
  const controls = tasks.some((t) => table1[t].shuffled || table1[t].pointer);
  return markdownTable(
    [
      "Task",
      "Base",
      "NTP",
      "KLAL+NTP",
      ...(controls ? ["Shuffled map", "Pointer head"] : []),
      "KLAL − NTP (paired t)",
      ...(controls ? ["KLAL − shuffled map", "KLAL − pointer head"] : []),
      "Floor",
      "KLAL+NTP − max(floor, NTP)",
      "Base (poster)",
      "NTP (poster)",
      "KLAL+NTP (poster)",
    ],
    tasks.map((task) => {
      const t = table1[task];
      const gain = t.comparisons
        ? comparisonText(t, t.ntp)
        : t.gain
        ? `${formatValue(t.gain.meanDiff, "signed")} (${formatValue(t.gain.p, "p")})`
        : "not run";
      return [
        t.label,
        ci(t.base?.accuracy),
        ci(t.ntp?.accuracy),
        ci(t.klal?.accuracy),
        ...(controls
          ? [t.shuffled ? ci(t.shuffled.accuracy) : "–", t.pointer ? ci(t.pointer.accuracy) : "–"]
          : []),
        gain,
        ...(controls ? [comparisonText(t, t.shuffled), comparisonText(t, t.pointer)] : []),
        floorText(t),
        referenceText(t),
        t.poster ? t.poster.base.toFixed(1) : "–",
        t.poster ? t.poster.ntp.toFixed(1) : "–",
        t.poster ? t.poster.klal.toFixed(1) : "–",
      ];
    }),
  );
}

/** Per task and arm: the bootstrap interval and the attention measures. */
function armDetailMarkdown(tasks: string[], table1: Record<string, Table1Record>): string[] {
  const rows: string[][] = [];
  for (const task of tasks) {
    const t = table1[task];
    for (const [column, arm] of armColumns(t)) {
      if (!arm) continue;
      rows.push([
        t.label,
        column,
        ci(arm.accuracy),
        bootText(arm),
        ratioText(arm),
        meanText(arm.ratioFirst),
        meanText(arm.visualShare, 3),
      ]);
    }
  }
  return markdownTable(
    [
      "Task",
      "Arm",
      "Accuracy % (t-interval over seeds)",
      "Bootstrap 95% (seeds × items)",
      "Target attention ratio",
      "Ratio, first answer position",
      "Visual share of attention",
    ],
    rows,
  );
}

/** Steps to NTP's final validation accuracy, per task that logged learning curves. */
function learningMarkdown(record: PaperRecord): string[] {
  const entries = Object.entries(record.learning ?? {});
  if (entries.length === 0) return [];
  const stepsText = (v: (number | null)[] | undefined) =>
    v ? v.map((x) => (x === null ? "not reached" : String(x))).join(", ") : "–";
  return markdownTable(
    [
      "Task",
      "Threshold (NTP's final validation accuracy %)",
      "NTP steps (per seed)",
      "KLAL+NTP steps (per seed)",
      "KLAL+NTP / NTP steps",
    ],
    entries.map(([task, l]) => {
      const t = record.table1[task];
      return [
        t?.label ?? task,
        l.threshold === null ? "–" : l.threshold.toFixed(1),
        stepsText(t?.ntp ? l.stepsToThreshold[t.ntp.arm] : undefined),
        stepsText(t?.klal ? l.stepsToThreshold[t.klal.arm] : undefined),
        l.klalOverNtpSteps === null ? "–" : l.klalOverNtpSteps.toFixed(2),
      ];
    }),
  );
}

/** `reports/paper/table.md`. */
export function renderPaperTable(record: PaperRecord): string {
  const s = record.setup;
  const lines = [
    "# KLAL reproduction: the paper record",
    "",
    `Tiny VLM (d_model ${s.dModel}, ${s.layers} layers, ${s.heads} heads), ${s.imageSize} px ` +
    `images in ${s.visualTokens} patches of ${s.patchSize} px; fine-tuning ${s.trainSteps} ` +
    `steps at batch ${s.batchSize}, lr ${s.lr}; ${s.trainSamples} training and ` +
    `${s.testSamples} held-out test samples per task (test seed ${s.testSeed}); seeds ` +
    `${s.seeds.join(", ")}. Backend ${record.backend}; ${record.hardware.cpu}, ` +
    `${record.hardware.cores} cores${
      record.hardware.gpu ? `, ${record.hardware.gpu}` : ", no GPU"
    }.`,
    "",
    `## Table 1: grounding accuracy %, ${s.trainSteps} steps, ours (mean ± 95% t-interval over ` +
    "seeds) beside the poster's (Qwen 2.5-VL)",
    "",
    ...table1Markdown(record.tasks, record.table1),
    "",
    "Floor: the fixed-answer floor, what one constant answer (in quotes) scores on the test set; " +
    "the last column is KLAL+NTP against the larger of the floor and NTP's mean (paired t-test " +
    "against NTP, one-sample t-test against the floor)." +
    (s.floorNote ? ` ${s.floorNote}` : ""),
    "",
    ...(record.table1Long
      ? [
        `## Table 1 with ${record.table1Long.steps} fine-tuning steps (${record.table1Long.experiment})`,
        "",
        ...table1Markdown(record.table1Long.tasks, record.table1Long.table1),
        "",
      ]
      : []),
    "## Per arm: intervals and attention",
    "",
    ...armDetailMarkdown(record.tasks, record.table1),
    "",
    "Target attention ratio: attention mass on the ground-truth patches over their uniform " +
    "share (1 = chance), mean over the answer positions and layers; the first answer position " +
    "alone; visual share: the raw share of the answer positions' attention on visual tokens.",
    "",
    ...(record.learning && Object.keys(record.learning).length > 0
      ? [
        "## Sample efficiency (validation data, during fine-tuning)",
        "",
        ...learningMarkdown(record),
        "",
      ]
      : []),
    "## Target attention ratio (attention mass on the ground-truth patches / their uniform share; 1 = chance)",
    "",
    ...markdownTable(
      record.table1Long
        ? [
          "Task",
          "Base",
          "NTP",
          "KLAL+NTP",
          `NTP, ${record.table1Long.steps} steps`,
          `KLAL+NTP, ${record.table1Long.steps} steps`,
        ]
        : ["Task", "Base", "NTP", "KLAL+NTP"],
      record.tasks.map((task) => {
        const t = record.table1[task];
        const long = record.table1Long?.table1[task];
        return [
          t.label,
          ratioText(t.base),
          ratioText(t.ntp),
          ratioText(t.klal),
          ...(record.table1Long
            ? [ratioText(long?.ntp ?? null), ratioText(long?.klal ?? null)]
            : []),
        ];
      }),
    ),
    "",
    "## Table 2: Line Intersection and Line Tracing, accuracy %",
    "",
    ...markdownTable(
      ["Model", "Line Intersection", "Line Tracing", "Source"],
      [
        [
          "NTP + KLAL (ours, tiny VLM)",
          ci(record.table2.lineIntersection),
          ci(record.table2.lineTracing),
          `this record, ${s.trainSteps} steps`,
        ],
        ...(record.table2.long
          ? [[
            `NTP + KLAL (ours, tiny VLM, ${record.table2.long.steps} steps)`,
            ci(record.table2.long.lineIntersection),
            ci(record.table2.long.lineTracing),
            `this record, ${record.table2.long.steps} steps`,
          ]]
          : []),
        ...record.table2.quoted.map((q) => [
          q.model,
          q.lineIntersection.toFixed(2),
          q.lineTracing.toFixed(2),
          "reported in the paper, not run here",
        ]),
      ],
    ),
  ];
  const lambdaSets: [number, PaperRecord["lambda"]][] = [[s.trainSteps, record.lambda]];
  if (record.lambdaLong) lambdaSets.push([record.lambdaLong.steps, record.lambdaLong.tasks]);
  for (const [steps, set] of lambdaSets) {
    for (const [task, sweep] of Object.entries(set)) {
      lines.push(
        "",
        `## λ sweep: ${record.table1[task]?.label ?? task}, ${steps} steps`,
        "",
        ...sweepTable("λ", sweep),
      );
    }
  }
  if (record.layers) {
    const l = record.layers;
    lines.push(
      "",
      `## Supervised layers: ${
        record.table1[l.task]?.label ?? l.task
      } (KLAL λ=1 on a subset of layers)`,
      "",
      ...markdownTable(
        ["Arm", "Layers", "Accuracy %", "Target attention ratio"],
        [
          ...(l.ntp ? [["NTP (λ=0)", "–", ci(l.ntp.accuracy), ratioText(l.ntp)]] : []),
          ...l.order.map((k) => {
            const p = l.points[k];
            return [k, p.layers.join(", "), ci(p.accuracy), ratioText(p)];
          }),
        ],
      ),
    );
  }
  const inv = record.investigation;
  if (inv.long) {
    const long = inv.long;
    lines.push(
      "",
      `## Investigation: ${long.steps} fine-tuning steps (validation data, seed ${long.testSeed})`,
      "",
      ...markdownTable(
        ["Task", "NTP accuracy %", "KLAL+NTP accuracy %", "NTP ratio", "KLAL+NTP ratio"],
        Object.entries(long.tasks).map(([task, t]) => [
          record.table1[task]?.label ?? task,
          ci(t.ntp?.accuracy),
          ci(t.klal?.accuracy),
          t.ntp ? t.ntp.ratio.mean.toFixed(2) : "not run",
          t.klal ? t.klal.ratio.mean.toFixed(2) : "not run",
        ]),
      ),
    );
  }
  if (inv.sigma) {
    const sigma = inv.sigma;
    for (const [task, sweep] of Object.entries(sigma.tasks)) {
      lines.push(
        "",
        `## Investigation: ground-truth sharpness, ${record.table1[task]?.label ?? task} ` +
          `(KLAL+NTP, ${sigma.steps} steps, validation data, seed ${sigma.testSeed})`,
        "",
        ...sweepTable("Gaussian σ (patches)", sweep),
      );
    }
  }
  if (inv.confirm) {
    const c = inv.confirm;
    const changed = Object.entries(c.params).map(([k, v]) => `${k} ${JSON.stringify(v)}`);
    lines.push(
      "",
      `## Confirmation on the test seed: ${c.experiment} (${c.steps} steps; ${changed.join(", ")})`,
      "",
      ...table1Markdown(c.tasks, c.table1),
    );
  }
  lines.push(
    "",
    "Every number above is in results.json; rows other than ours in Table 2 and the poster " +
      "columns are quoted from the poster, not run here.",
    "",
  );
  return lines.join("\n");
}

/** The arms' colours in legend order: each paper column in its family's first colour. */
const ARM_COLOURS = {
  domain: ["Base", "NTP", "KLAL+NTP", "Shuffled map", "Pointer head"],
  range: [
    ...columnPalette(["Base", "NTP", "KLAL+NTP"]).range,
    COLUMN_COLOURS.Control[0],
    COLUMN_COLOURS.Control[1],
  ],
};

/** The x axis and colour of the per-arm bars: one bar per paper column. */
const ARM_X = { field: "arm", type: "nominal", sort: ARM_COLOURS.domain, title: null };
const ARM_COLOUR = { field: "arm", type: "nominal", scale: ARM_COLOURS, legend: null };

/** Per task and arm of a Table 1: mean accuracy with its interval, and the attention ratio. */
function table1ArmRows(tasks: string[], table1: Record<string, Table1Record>): object[] {
  const armRows: object[] = [];
  for (const task of tasks) {
    const t = table1[task];
    for (const [column, arm] of armColumns(t)) {
      if (!arm) continue;
      const hw = arm.accuracy.halfWidth ?? 0;
      armRows.push({
        task: t.label,
        arm: column,
        accuracy: arm.accuracy.mean,
        low: Math.max(0, arm.accuracy.mean - hw),
        high: Math.min(100, arm.accuracy.mean + hw),
        ratio: arm.ratio.mean,
      });
    }
  }
  return armRows;
}

/** The fixed-answer floor's colour: the palette's first colour outside the paper columns. */
const FLOOR_COLOUR = COLUMN_COLOURS.other[0];

/**
 * Table 1 as a chart: per task, each arm's mean, interval and seeds beside the poster's, and
 * the fixed-answer floor as a dashed rule across the task's arms.
 */
function table1Chart(tasks: string[], table1: Record<string, Table1Record>, steps: number) {
  const armRows = table1ArmRows(tasks, table1);
  const seedRows: object[] = [];
  const posterRows: object[] = [];
  const floorRows: object[] = [];
  for (const task of tasks) {
    const t = table1[task];
    if (t.floor && Number.isFinite(t.floor.accuracy)) {
      floorRows.push({ task: t.label, floor: t.floor.accuracy, answer: t.floor.answer });
    }
    for (const [column, arm] of armColumns(t)) {
      arm?.accuracy.values.forEach((v, i) =>
        seedRows.push({ task: t.label, arm: column, accuracy: v, seed: arm.accuracy.seeds[i] })
      );
    }
    if (t.poster) {
      posterRows.push({ task: t.label, arm: "Base", accuracy: t.poster.base });
      posterRows.push({ task: t.label, arm: "NTP", accuracy: t.poster.ntp });
      posterRows.push({ task: t.label, arm: "KLAL+NTP", accuracy: t.poster.klal });
    }
  }
  const labels = tasks.map((t) => table1[t].label);
  const x = ARM_X;
  const colour = ARM_COLOUR;
  // One dataset with a `kind` per row: layers inside a facet must share the faceted data.
  const table1Rows = [
    ...armRows.map((r) => ({ ...r, kind: "mean" })),
    ...seedRows.map((r) => ({ ...r, kind: "seed" })),
    ...posterRows.map((r) => ({ ...r, kind: "poster" })),
    ...floorRows.map((r) => ({ ...r, kind: "floor" })),
  ];
  const only = (kind: string) => [{ filter: `datum.kind === '${kind}'` }];
  return perTaskChart(
    {
      text:
        `Table 1 (${steps} fine-tuning steps): held-out accuracy %, ours (bars: mean, whiskers: 95% CI, dots: seeds)`,
      subtitle: [
        "black ticks: the poster's Qwen 2.5-VL numbers (quoted, not run here)",
        ...(floorRows.length > 0
          ? ["green dashed rule: the fixed-answer floor (one constant answer, test set)"]
          : []),
      ],
    },
    table1Rows,
    labels,
    200,
    [
      {
        transform: only("mean"),
        mark: "bar",
        encoding: {
          x,
          y: {
            field: "accuracy",
            type: "quantitative",
            scale: { domain: [0, 100] },
            title: "accuracy %",
          },
          color: colour,
        },
      },
      {
        transform: only("mean"),
        mark: "rule",
        encoding: { x, y: { field: "low", type: "quantitative" }, y2: { field: "high" } },
      },
      {
        transform: only("seed"),
        mark: { type: "circle", size: 22, color: "black", opacity: 0.6 },
        encoding: { x, y: { field: "accuracy", type: "quantitative" } },
      },
      {
        transform: only("poster"),
        mark: { type: "tick", color: "black", thickness: 2 },
        encoding: { x, y: { field: "accuracy", type: "quantitative" } },
      },
      {
        transform: only("floor"),
        mark: { type: "rule", strokeDash: [5, 3], strokeWidth: 2, color: FLOOR_COLOUR },
        encoding: {
          y: { field: "floor", type: "quantitative" },
          tooltip: [
            { field: "floor", title: "fixed-answer floor %", format: ".1f" },
            { field: "answer", title: "constant answer" },
          ],
        },
      },
    ],
  );
}

/**
 * A chart of one narrow column per task (in the order of their `labels`), each drawing
 * `layer` over `values`.
 */
function perTaskChart(
  title: { text: string; subtitle: string | string[] },
  values: object[],
  labels: string[],
  height: number,
  layer: object[],
) {
  return {
    title,
    data: { values },
    facet: { column: { field: "task", type: "nominal", sort: labels, title: null } },
    spec: { width: 110, height, layer },
  };
}

/** Attention ratio per task and arm (Table 1's arms). */
function attentionChart(record: PaperRecord) {
  const armRows = table1ArmRows(record.tasks, record.table1);
  const labels = record.tasks.map((t) => record.table1[t].label);
  const x = ARM_X;
  const colour = ARM_COLOUR;
  return perTaskChart(
    {
      text: "Attention mass on the ground-truth patches, relative to uniform (1 = chance)",
      subtitle: "mean over seeds and layers of the answer-predicting positions, held-out test set",
    },
    armRows,
    labels,
    180,
    [
      {
        mark: "bar",
        encoding: {
          x,
          y: { field: "ratio", type: "quantitative", title: "target attention ratio" },
          color: colour,
        },
      },
      {
        mark: { type: "rule", strokeDash: [4, 3], color: "black" },
        encoding: { y: { datum: 1 } },
      },
    ],
  );
}

/** The λ sweep (and its longer-training repeat): accuracy and attention ratio per λ. */
function lambdaChart(record: PaperRecord) {
  const lambdaRows: object[] = [];
  const lambdaSets: [number, PaperRecord["lambda"]][] = [[record.setup.trainSteps, record.lambda]];
  if (record.lambdaLong) lambdaSets.push([record.lambdaLong.steps, record.lambdaLong.tasks]);
  for (const [steps, set] of lambdaSets) {
    for (const [task, sweep] of Object.entries(set)) {
      for (const v of sweep.values) {
        const p = sweep.points[String(v)];
        const hw = p.accuracy.halfWidth ?? 0;
        lambdaRows.push({
          task: `${record.table1[task]?.label ?? task}, ${steps} steps`,
          lambda: v,
          accuracy: p.accuracy.mean,
          low: Math.max(0, p.accuracy.mean - hw),
          high: Math.min(100, p.accuracy.mean + hw),
          ratio: p.ratio.mean,
        });
      }
    }
  }
  if (lambdaRows.length === 0) return undefined;
  const lx = { field: "lambda", type: "ordinal", title: "λ (0 = NTP only)" };
  return {
    title: {
      text: "λ sweep: held-out accuracy % (line: mean over seeds, band: 95% CI)",
      subtitle: "and the target attention ratio (right panel per task)",
    },
    data: { values: lambdaRows },
    facet: {
      row: {
        field: "task",
        type: "nominal",
        title: null,
        sort: [...new Set(lambdaRows.map((r) => (r as { task: string }).task))],
      },
    },
    spec: {
      hconcat: [
        {
          width: 240,
          height: 150,
          layer: [
            {
              mark: { type: "area", opacity: 0.25, color: "#e45756" },
              encoding: {
                x: lx,
                y: {
                  field: "low",
                  type: "quantitative",
                  scale: { domain: [0, 100] },
                  title: "accuracy %",
                },
                y2: { field: "high" },
              },
            },
            {
              mark: { type: "line", point: true, color: "#e45756" },
              encoding: { x: lx, y: { field: "accuracy", type: "quantitative" } },
            },
          ],
        },
        {
          width: 240,
          height: 150,
          layer: [
            {
              mark: { type: "line", point: true, color: "#4c78a8" },
              encoding: {
                x: lx,
                y: { field: "ratio", type: "quantitative", title: "target attention ratio" },
              },
            },
            {
              mark: { type: "rule", strokeDash: [4, 3], color: "black" },
              encoding: { y: { datum: 1 } },
            },
          ],
        },
      ],
    },
  };
}

/** The per-layer ablation: NTP, then KLAL on each supervised layer set. */
function layersChart(record: PaperRecord) {
  if (!record.layers) return undefined;
  const l = record.layers;
  const rows: object[] = [];
  const seeds: object[] = [];
  const add = (name: string, a: ArmRecord) => {
    const hw = a.accuracy.halfWidth ?? 0;
    rows.push({
      arm: name,
      group: a.lambda > 0 ? "KLAL+NTP" : "NTP",
      accuracy: a.accuracy.mean,
      low: Math.max(0, a.accuracy.mean - hw),
      high: Math.min(100, a.accuracy.mean + hw),
      ratio: a.ratio.mean,
    });
    a.accuracy.values.forEach((v) => seeds.push({ arm: name, accuracy: v }));
  };
  if (l.ntp) add("NTP (λ=0)", l.ntp);
  for (const k of l.order) add(`KLAL on ${k}`, l.points[k]);
  const names = rows.map((r) => (r as { arm: string }).arm);
  const lx = {
    field: "arm",
    type: "nominal",
    sort: names,
    title: null,
    axis: { labelAngle: -20 },
  };
  return {
    title: {
      text: `Which layers to supervise: ${
        record.table1[l.task]?.label ?? l.task
      }, held-out accuracy %`,
      subtitle: "bars: mean, whiskers: 95% CI, dots: seeds",
    },
    datasets: { rows, seeds },
    data: { name: "rows" },
    width: 300,
    height: 200,
    layer: [
      {
        mark: "bar",
        encoding: {
          color: { field: "group", type: "nominal", scale: ARM_COLOURS, legend: null },
          x: lx,
          y: {
            field: "accuracy",
            type: "quantitative",
            scale: { domain: [0, 100] },
            title: "accuracy %",
          },
        },
      },
      {
        mark: "rule",
        encoding: { x: lx, y: { field: "low", type: "quantitative" }, y2: { field: "high" } },
      },
      {
        data: { name: "seeds" },
        mark: { type: "circle", size: 22, color: "black", opacity: 0.6 },
        encoding: { x: lx, y: { field: "accuracy", type: "quantitative" } },
      },
    ],
  };
}

/**
 * The longer-training investigations (and Line Tracing's, when run): validation curves of NTP
 * and KLAL+NTP per task.
 */
function longTrainingChart(record: PaperRecord) {
  const long = record.investigation.long;
  if (!long) return undefined;
  const rows: object[] = [];
  const runs = [long, ...(record.investigation.tracing ? [record.investigation.tracing] : [])];
  for (const run of runs) {
    for (const [task, t] of Object.entries(run.tasks)) {
      for (const [label, arm] of [["NTP", t.ntp], ["KLAL+NTP", t.klal]] as const) {
        for (const p of arm?.curve ?? []) {
          rows.push({ task: record.table1[task]?.label ?? task, arm: label, ...p });
        }
      }
    }
  }
  if (rows.length === 0) return undefined;
  // Only the two fine-tuned arms are drawn here, so the legend lists only those.
  return curvesChart(
    {
      text: `Longer training (${
        [...new Set(runs.map((r) => r.steps))].join(" and ")
      } steps): validation accuracy % and target attention ratio`,
      subtitle: `one seed; validation data from seed ${long.testSeed + 1}, never the test seed`,
    },
    rows,
    columnPalette(["NTP", "KLAL+NTP"]),
    { width: 160, accuracyHeight: 130 },
  );
}

/**
 * Validation curves, one column per task: accuracy above, the target attention ratio below, one
 * line per arm in `palette`'s colours.
 */
function curvesChart(
  title: { text: string; subtitle: string },
  rows: object[],
  palette: { domain: string[]; range: string[] },
  size: { width: number; accuracyHeight: number },
) {
  const sx = { field: "step", type: "quantitative", title: "fine-tuning step" };
  const colourBy = { field: "arm", type: "nominal", scale: palette, title: null };
  const panel = (height: number, field: string, axis: string) => ({
    width: size.width,
    height,
    mark: { type: "line", point: true },
    encoding: { x: sx, y: { field, type: "quantitative", title: axis }, color: colourBy },
  });
  return {
    title,
    data: { values: rows },
    facet: { column: { field: "task", type: "nominal", title: null } },
    spec: {
      vconcat: [
        panel(size.accuracyHeight, "accuracy", "accuracy %"),
        panel(110, "ratio", "target attention ratio"),
      ],
    },
  };
}

/** Validation accuracy during fine-tuning, per task that logged it, one line per arm. */
function learningChart(record: PaperRecord) {
  const rows: object[] = [];
  for (const [task, l] of Object.entries(record.learning ?? {}) as [string, LearningRecord][]) {
    const t = record.table1[task];
    if (!t) continue;
    for (const [column, arm] of armColumns(t)) {
      for (const p of arm ? l.curves[arm.arm] ?? [] : []) {
        rows.push({ task: t.label, arm: column, ...p });
      }
    }
  }
  if (rows.length === 0) return undefined;
  const shown = new Set(rows.map((r) => (r as { arm: string }).arm));
  const palette = {
    domain: ARM_COLOURS.domain.filter((d) => shown.has(d)),
    range: ARM_COLOURS.range.filter((_, i) => shown.has(ARM_COLOURS.domain[i])),
  };
  return curvesChart(
    {
      text: "Learning curves: validation accuracy % and target attention ratio during fine-tuning",
      subtitle: "mean over seeds; validation data from the test seed + 1, never the test set",
    },
    rows,
    palette,
    { width: 200, accuracyHeight: 150 },
  );
}

/** A figure of the paper record: its file name under figures/, what it shows, its builder. */
export interface PaperChartEntry {
  /** File name without `.svg`. */
  key: string;
  /** What the figure shows (the write-up's text around it says what it means). */
  caption: string;
  /** The Vega-Lite spec, or undefined when the record lacks the part it draws. */
  build: (record: PaperRecord) => object | undefined;
}

/** Every figure of the paper record, in the order they are written. */
export const PAPER_CHARTS: readonly PaperChartEntry[] = [
  {
    key: "table1",
    caption: "Table 1: held-out accuracy per task and arm, ours beside the poster's.",
    build: (r) => table1Chart(r.tasks, r.table1, r.setup.trainSteps),
  },
  {
    key: "table1_long",
    caption: "Table 1 again with longer fine-tuning.",
    build: (r) =>
      r.table1Long
        ? table1Chart(r.table1Long.tasks, r.table1Long.table1, r.table1Long.steps)
        : undefined,
  },
  {
    key: "learning",
    caption: "Learning curves: validation accuracy and attention ratio of every fine-tuned arm.",
    build: learningChart,
  },
  {
    key: "attention",
    caption: "Attention mass on the ground-truth patches relative to uniform, per task and arm.",
    build: attentionChart,
  },
  {
    key: "lambda",
    caption: "The λ sweep: accuracy and target attention ratio per λ, per task and length.",
    build: lambdaChart,
  },
  {
    key: "layers",
    caption: "Which layers to supervise: accuracy of NTP and of KLAL on each layer set.",
    build: layersChart,
  },
  {
    key: "long_training",
    caption: "Longer training: validation accuracy and attention ratio of NTP and KLAL+NTP.",
    build: longTrainingChart,
  },
];

/** The record's figures as Vega-Lite specs, keyed by file name (without .svg). */
export function paperCharts(record: PaperRecord): Record<string, object> {
  const charts: Record<string, object> = {};
  for (const entry of PAPER_CHARTS) {
    const spec = entry.build(record);
    if (spec) charts[entry.key] = paperChart(spec);
  }
  return charts;
}
