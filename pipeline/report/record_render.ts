/**
 * The record's tables (Markdown) and figures (Vega-Lite), rendered from record.json alone
 * (record_write.ts computes it). The tables also reach README.md through `{{tables/NAME}}`.
 */
import { COLUMN_COLOURS } from "./palette.ts";
import { formatValue } from "./paper/template.ts";
import type { RecordWriteup, SweepArm } from "./record_write.ts";
import { reportChart } from "./vega_config.ts";

type Task = RecordWriteup["tasks"][string];

const f1 = (x: number | null | undefined) => x === null || x === undefined ? "–" : x.toFixed(1);
const f2 = (x: number | null | undefined) => x === null || x === undefined ? "–" : x.toFixed(2);
const signed = (x: number | null | undefined) =>
  x === null || x === undefined || !Number.isFinite(x) ? "–" : formatValue(x, "signed");
const pText = (p: number | null | undefined) =>
  p === null || p === undefined ? "–" : p < 0.001 ? "<0.001" : p.toFixed(3);
const span = (low: number | null | undefined, high: number | null | undefined, sign = false) =>
  low === null || low === undefined || high === null || high === undefined
    ? "–"
    : sign
    ? `[${signed(low)}, ${signed(high)}]`
    : `[${f1(low)}, ${f1(high)}]`;

function arm(a: Task["ntp"]): string {
  if (!a) return "not run";
  const hw = a.halfWidth === null ? "" : ` ± ${a.halfWidth.toFixed(1)}`;
  return `${a.mean.toFixed(1)}${hw} ${span(a.bootstrap?.low, a.bootstrap?.high)}`;
}

function floorText(t: Task): string {
  const fixed = t.floor === null ? "–" : f1(t.floor);
  return t.shortcut ? `${fixed}; shortcut ${f1(t.shortcut.accuracy)}` : fixed;
}

/** Table 1: every task of the record, Bases as a level. */
export function table1(r: RecordWriteup): string {
  const lines = [
    "| task | floor | Base | NTP | KLAL+NTP | KLAL+NTP − NTP [95%] | p (Bases' means) | Holm p | Holm p (report) | gain per Base | Bases × seeds | verdict |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
  ];
  for (const t of Object.values(r.tasks)) {
    lines.push(
      `| ${t.label} | ${floorText(t)} | ${t.base ? f1(t.base.mean) : "–"} | ${arm(t.ntp)} | ${
        arm(t.klal)
      } | ${signed(t.gain.diff)} ${span(t.gain.low, t.gain.high, true)} | ${pText(t.gain.p)} | ${
        pText(t.gain.pHolm)
      } | ${
        pText(t.gain.pHolmReport)
      } | ${t.baseGainsText} | ${t.bases} × ${t.seedsPerBase} | ${t.verdict} |`,
    );
  }
  return lines.join("\n");
}

/** The attention claim: first-position ratios against the question-blind baseline. */
export function attentionTable(r: RecordWriteup): string {
  const lines = [
    "| task | question-blind | NTP | KLAL+NTP | per Base: KLAL+NTP / NTP | KLAL+NTP above both | attention claim |",
    "| --- | ---: | ---: | ---: | --- | --- | --- |",
  ];
  for (const t of Object.values(r.tasks)) {
    const a = t.attention;
    lines.push(
      `| ${t.label} | ${f2(a.questionBlind)} | ${f2(a.ntp)} | ${
        f2(a.klal)
      } | ${a.perBase} | ${a.basesAbove} | ${a.verdict}${
        t.inRegime ? "" : " by the criterion alone; not read: the task is out of the regime"
      } |`,
    );
  }
  return lines.join("\n");
}

/** The controls, each against KLAL+NTP on the first Base's seeds. */
export function controlsTable(r: RecordWriteup): string {
  const lines = [
    "| task | control | control | NTP, same seeds | KLAL+NTP, same seeds | KLAL+NTP − control [95%] | Holm p (report) | reading |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const t of Object.values(r.tasks)) {
    for (const c of Object.values(t.controls) as Record<string, never>[]) {
      const x = c as unknown as {
        name: string;
        mean: number | null;
        ntpSameSeeds: number;
        klalSameSeeds: number;
        diff: number;
        low: number | null;
        high: number | null;
        pHolm: number | null;
        reading: string;
      };
      lines.push(
        `| ${t.label} | ${x.name} | ${f1(x.mean)} | ${f1(x.ntpSameSeeds)} | ${
          f1(x.klalSameSeeds)
        } | ${signed(x.diff)} ${span(x.low, x.high, true)} | ${pText(x.pHolm)} | ${x.reading} |`,
      );
    }
  }
  return lines.join("\n");
}

/** Box tasks: mean IoU and accuracy at IoU ≥ 0.3 beside the headline IoU ≥ 0.5. */
export function iouTable(r: RecordWriteup): string {
  const lines = [
    "| task | arm | accuracy (IoU ≥ 0.5) | accuracy (IoU ≥ 0.3) | mean IoU |",
    "| --- | --- | ---: | ---: | ---: |",
  ];
  for (const t of Object.values(r.tasks)) {
    if (!t.iou) continue;
    lines.push(
      `| ${t.label} | NTP | ${f1(t.ntp?.mean)} | ${f1(t.iou.ntpAt30)} | ${t.iou.ntp.toFixed(3)} |`,
    );
    lines.push(
      `| ${t.label} | KLAL+NTP | ${f1(t.klal?.mean)} | ${f1(t.iou.klalAt30)} | ${
        t.iou.klal?.toFixed(3) ?? "–"
      } |`,
    );
  }
  return lines.join("\n");
}

/** Per-class accuracy on the closed-answer tasks. */
export function confusionTable(r: RecordWriteup): string {
  const lines = [
    "| task | true answer | NTP: % right | NTP: most common wrong answer (%) | KLAL+NTP: % right | KLAL+NTP: most common wrong answer (%) |",
    "| --- | --- | ---: | --- | ---: | --- |",
  ];
  for (const t of Object.values(r.tasks)) {
    const c = t.confusion;
    if (!c) continue;
    c.classes.forEach((name, i) => {
      const wrong = (w: { answer: string; share: number } | null) =>
        w ? `"${w.answer}" (${f1(w.share)})` : "–";
      lines.push(
        `| ${t.label} | "${name}" | ${f1(c.ntp[i])} | ${wrong(c.ntpConfused[i])} | ${
          f1(c.klal[i])
        } | ${wrong(c.klalConfused[i])} |`,
      );
    });
  }
  return lines.join("\n");
}

/** Sample efficiency: steps to NTP's plateau on the tasks in the regime. */
export function learningTable(r: RecordWriteup): string {
  const lines = [
    "| task | NTP's final validation mean (%) | NTP: seeds reaching it, median step | KLAL+NTP: seeds reaching it, median step |",
    "| --- | ---: | --- | --- |",
  ];
  for (const t of Object.values(r.tasks)) {
    if (!t.inRegime || !t.learning) continue;
    const l = t.learning;
    lines.push(
      `| ${t.label} | ${
        f1(l.threshold)
      } | ${l.ntp.reachedCount} of ${l.ntp.seeds}, ${l.ntp.medianStepText} | ${l.klal.reachedCount} of ${l.klal.seeds}, ${l.klal.medianStepText} |`,
    );
  }
  return lines.join("\n");
}

/** NTP (no supervised layer) first, then single layers in order, then every layer. */
function layerOrder(layers: string): number {
  if (layers === "none") return -1;
  if (layers === "all") return Number.MAX_SAFE_INTEGER;
  return Number(/\d+/.exec(layers)?.[0] ?? 0);
}

function sweepTable(
  sets: Record<string, { label: string; arms: SweepArm[] }>,
  by: "lambda" | "layers",
) {
  const lines = [
    `| task | ${
      by === "lambda" ? "λ" : "supervised layers"
    } | accuracy (validation) | − NTP | first-position ratio |`,
    "| --- | --- | ---: | ---: | ---: |",
  ];
  for (const s of Object.values(sets)) {
    const arms = [...s.arms].sort((a, b) =>
      by === "lambda" ? a.lambda - b.lambda : layerOrder(a.layers) - layerOrder(b.layers)
    );
    for (const a of arms) {
      const hw = a.accuracy.halfWidth === null ? "" : ` ± ${a.accuracy.halfWidth.toFixed(1)}`;
      lines.push(
        `| ${s.label} | ${by === "lambda" ? a.lambda : a.layers} | ${
          a.accuracy.mean.toFixed(1)
        }${hw} (n=${a.accuracy.n}) | ${signed(a.gain)} | ${a.ratio.toFixed(2)} |`,
      );
    }
  }
  return lines.join("\n");
}

/** Table 2: the poster's quoted rows, and ours beside them. */
export function table2(r: RecordWriteup): string {
  const lines = [
    "| model | Line Intersection | Line Tracing |",
    "| --- | ---: | ---: |",
    `| KLAL+NTP here (tiny model trained on the task's own distribution) | ${
      f1(r.table2.ours.lineIntersection)
    } | ${f1(r.table2.ours.lineTracing)}${
      r.tasks.lineTracing && !r.tasks.lineTracing.inRegime ? " (out of the regime)" : ""
    } |`,
  ];
  for (const q of r.table2.quoted) {
    lines.push(`| ${q.model} (quoted) | ${f1(q.lineIntersection)} | ${f1(q.lineTracing)} |`);
  }
  return lines.join("\n");
}

/** The time each spec took. */
export function timeTable(r: RecordWriteup): string {
  const lines = [
    "| spec | stage compute (h) | wall clock (min) | peak memory (GiB) |",
    "| --- | ---: | ---: | ---: |",
  ];
  for (const t of Object.values(r.tasks)) {
    lines.push(
      `| ${t.experiment} | ${t.stageHours.toFixed(2)} | ${f1(t.wallMinutes)} | ${f1(t.maxRssGb)} |`,
    );
  }
  lines.push(
    `| the record's specs | ${r.time.stageHours.toFixed(2)} | ${r.time.wallMinutes.toFixed(1)} | |`,
  );
  for (const v of r.time.validation) {
    lines.push(`| ${v.spec} | – | ${f1(v.wallMinutes)} | ${f1(v.maxRssGb)} |`);
  }
  return lines.join("\n");
}

/** The top-level README's summary of Table 1 (between its record-table markers). */
export function readmeTable(r: RecordWriteup): string {
  const lines = [
    "| task | floor | NTP | KLAL+NTP | KLAL+NTP − NTP [95%] | Holm p | Bases × seeds | verdict | attention claim |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
  ];
  for (const t of Object.values(r.tasks)) {
    lines.push(
      `| ${t.label} | ${f1(t.largerFloor)} | ${f1(t.ntp?.mean)} | ${f1(t.klal?.mean)} | ${
        signed(t.gain.diff)
      } ${span(t.gain.low, t.gain.high, true)} | ${
        pText(t.gain.pHolm)
      } | ${t.bases} × ${t.seedsPerBase} | ${t.verdict} | ${
        t.inRegime ? t.attention.verdict : "not read (out of the regime)"
      } |`,
    );
  }
  lines.push(
    "",
    `Test accuracy % on ${r.design.testItems} items per task (test seed ${r.design.testSeed}), ` +
      `mean over seeds; the interval is the hierarchical bootstrap (Bases, seeds, items); Holm ` +
      `over the ${r.design.tasks} tasks of the paired t-test over the Bases' means; the floor is ` +
      "the larger of the fixed-answer and shortcut floors.",
  );
  return lines.join("\n");
}

/** Every table, by the name `{{tables/NAME}}` uses. */
export function recordTables(r: RecordWriteup): Record<string, string> {
  return {
    table1: table1(r),
    attention: attentionTable(r),
    controls: controlsTable(r),
    iou: iouTable(r),
    confusion: confusionTable(r),
    learning: learningTable(r),
    lambda: sweepTable(r.lambda, "lambda"),
    layers: sweepTable(r.layers, "layers"),
    table2: table2(r),
    time: timeTable(r),
  };
}

/** table.md: every table under a heading. */
export function recordTableMd(r: RecordWriteup): string {
  const t = recordTables(r);
  const titles: Record<string, string> = {
    table1: "Table 1 (test seed, accuracy %)",
    attention: "Attention at the first answer position (ratio to the uniform share)",
    controls: "Controls (first Base)",
    iou: "Box measures",
    confusion: "Per-class accuracy (closed answers)",
    learning: "Sample efficiency (validation, learning curves)",
    lambda: "λ sweep (validation, first Base)",
    layers: "Layer ablation (validation, first Base)",
    table2: "Table 2",
    time: "Time",
  };
  const parts = ["<!-- Rendered from record.json by `deno task record`. -->", ""];
  for (const [name, text] of Object.entries(t)) parts.push(`## ${titles[name]}`, "", text, "");
  return parts.join("\n");
}

const ARM_COLOURS = {
  field: "arm",
  type: "nominal",
  scale: {
    domain: ["NTP", "KLAL+NTP"],
    range: [COLUMN_COLOURS["NTP"][0], COLUMN_COLOURS["KLAL+NTP"][0]],
  },
};

/** One column per task, in the record's order ("... stand-in": synthetic scenes, said in the subtitle). */
function taskColumns(r: RecordWriteup) {
  return {
    column: {
      field: "task",
      type: "nominal",
      title: null,
      sort: Object.values(r.tasks).map((t) => t.label),
      header: {
        labelExpr: "split(datum.label, ' (')[0]",
      },
    },
  };
}

/** The figures: per-seed accuracy by Base, the λ sweep, the learning curves. */
export function recordCharts(r: RecordWriteup): Record<string, object> {
  const seeds: object[] = [];
  for (const t of Object.values(r.tasks)) {
    for (const s of t.perSeed) {
      seeds.push({ task: t.label, arm: "NTP", base: `Base ${s.base}`, accuracy: s.ntp });
      if (s.klal !== null) {
        seeds.push({ task: t.label, arm: "KLAL+NTP", base: `Base ${s.base}`, accuracy: s.klal });
      }
    }
  }
  const accuracy = {
    title: {
      text: "Test accuracy % per fine-tune seed (dots), by Base (shape), NTP and KLAL+NTP",
      subtitle:
        "a panel per task (stand-ins: synthetic scenes); the tick is the arm's mean over seeds",
    },
    data: { values: seeds },
    facet: taskColumns(r),
    spec: {
      width: 110,
      height: 220,
      layer: [
        {
          mark: { type: "point", filled: true, opacity: 0.7 },
          encoding: {
            x: {
              field: "arm",
              type: "nominal",
              sort: ["NTP", "KLAL+NTP"],
              title: null,
              axis: { labelAngle: 0 },
            },
            y: {
              field: "accuracy",
              type: "quantitative",
              scale: { domain: [0, 100] },
              title: "accuracy %",
            },
            color: { ...ARM_COLOURS, legend: null },
            shape: { field: "base", type: "nominal", title: "Base" },
            xOffset: { field: "base", type: "nominal" },
          },
        },
        {
          mark: { type: "tick", thickness: 2, size: 30, color: "black" },
          encoding: {
            x: { field: "arm", type: "nominal", sort: ["NTP", "KLAL+NTP"] },
            y: { aggregate: "mean", field: "accuracy", type: "quantitative" },
          },
        },
      ],
    },
  };
  const lambdaRows: object[] = [];
  for (const s of Object.values(r.lambda)) {
    for (const a of s.arms) {
      const hw = a.accuracy.halfWidth ?? 0;
      lambdaRows.push({
        task: s.label,
        lambda: a.lambda,
        accuracy: a.accuracy.mean,
        low: Math.max(0, a.accuracy.mean - hw),
        high: Math.min(100, a.accuracy.mean + hw),
      });
    }
  }
  const lambda = {
    title: {
      text: "λ sweep on validation data from the first Base (line: mean over seeds; band: 95% CI)",
      subtitle: "stand-ins: synthetic scenes",
    },
    data: { values: lambdaRows },
    facet: taskColumns(r),
    spec: {
      width: 180,
      height: 160,
      layer: [
        {
          mark: { type: "area", opacity: 0.25, color: COLUMN_COLOURS["KLAL+NTP"][0] },
          encoding: {
            x: { field: "lambda", type: "ordinal", title: "λ (0 = NTP)", axis: { labelAngle: 0 } },
            y: { field: "low", type: "quantitative", title: "accuracy %" },
            y2: { field: "high" },
          },
        },
        {
          mark: {
            type: "line",
            color: COLUMN_COLOURS["KLAL+NTP"][0],
            point: { color: COLUMN_COLOURS["KLAL+NTP"][0] },
          },
          encoding: {
            x: { field: "lambda", type: "ordinal" },
            y: { field: "accuracy", type: "quantitative" },
          },
        },
      ],
    },
    resolve: { scale: { y: "independent" } },
  };
  const curveRows: object[] = [];
  for (const t of Object.values(r.tasks)) {
    if (!t.learning) continue;
    for (
      const [name, curve] of [["NTP", t.learning.curves.ntp], [
        "KLAL+NTP",
        t.learning.curves.klal,
      ]] as const
    ) {
      for (const p of curve) curveRows.push({ task: t.label, arm: name, ...p });
    }
  }
  const learning = {
    title: {
      text: "Validation accuracy % during fine-tuning (mean over seeds)",
      subtitle: "the record's validation seed (stand-ins: synthetic scenes)",
    },
    data: { values: curveRows },
    facet: taskColumns(r),
    spec: {
      width: 150,
      height: 160,
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "step", type: "quantitative", title: "step" },
        y: { field: "accuracy", type: "quantitative", title: "accuracy %" },
        color: { ...ARM_COLOURS, title: null },
      },
    },
  };
  return {
    accuracy: reportChart(accuracy),
    lambda: reportChart(lambda),
    learning: reportChart(learning),
  };
}
