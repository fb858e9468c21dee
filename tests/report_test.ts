import { createCanvas, loadImage } from "@napi-rs/canvas";
import * as vega from "vega";
import * as vegaLite from "vega-lite";
import { Cache } from "../pipeline/cache/store.ts";
import { buildPlan, resolvePlan } from "../pipeline/run/plan.ts";
import {
  armLabel,
  armPalette,
  chartSpecs,
  type CurvePoint,
  debiasedEma,
  escapeHtml,
  figureName,
  formatAccuracy,
  inlineScriptSource,
  jsonForScript,
  learningSummary,
  markdownTable,
  massOnTarget,
  paperColumn,
  POSTER_TABLE1,
  POSTER_TABLE2,
  readReportEntries,
  relativeToUniform,
  renderReportsIndex,
  renderTableMarkdown,
  REPORT_CHARTS,
  reportCharts,
  type ReportInput,
  type ResultRow,
  summarize,
  svgToPng,
  sweeps,
  table1,
  table1Cells,
  targetSupport,
  VEGA_LITE_SCHEMA,
  verdictLines,
  writeReport,
} from "../pipeline/report/mod.ts";
import { combineSweepInputs } from "../pipeline/run/sweep_report.ts";
import type { Spec } from "../pipeline/spec/types.ts";
import { bootstrapCrossed, ci95 } from "../pipeline/report/stats.ts";
import { runScript } from "./cli.ts";
import { focusedMap, reportSpec } from "./report_fixtures.ts";
import { armSpec } from "./spec_fixtures.ts";

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function assertIncludes(text: string, part: string, what: string) {
  assert(text.includes(part), `${what}: expected to contain ${JSON.stringify(part)}`);
}

const HOSTILE = "<img src=x onerror=alert(1)>";

/** The report spec with Base, NTP and KLAL+NTP, and a description that tries to inject HTML. */
function fakeSpec(): Spec {
  return reportSpec({
    name: "grid-patch-test",
    description: `Fake run ${HOSTILE} & "quotes"`,
    task: { test: 50 },
    model: { d_model: 64, heads: 4, position_std: 0.1 },
    base: { steps: 100, batch_size: 16, train: 500, seed: 7 },
    train: { batch_size: 16, warmup: 5, eval_every: 0, eval_samples: 0 },
    eval: { batch_size: 64 },
    arms: { base: armSpec({ finetune: false }), ntp: armSpec(), klal: armSpec({ lambda: 1 }) },
  });
}

/** Accuracies per arm per seed; ratios per arm; layer ratios per arm per layer. */
function fakeInput(accuracy: Record<string, [number, number]>): ReportInput {
  const rows: ResultRow[] = [];
  const ratio: Record<string, number> = { base: 0.9, ntp: 1.1, klal: 8.5 };
  for (const [arm, values] of Object.entries(accuracy)) {
    values.forEach((value, seed) => {
      rows.push({ task: "grid-patch", arm, seed, metric: "accuracy", value });
      rows.push({
        task: "grid-patch",
        arm,
        seed,
        metric: "target_attention",
        value: 0.1 * (seed + 1),
      });
      rows.push({
        task: "grid-patch",
        arm,
        seed,
        metric: "target_attention_ratio",
        value: ratio[arm],
      });
      for (let layer = 0; layer < 2; layer++) {
        rows.push({
          task: "grid-patch",
          arm,
          seed,
          metric: `target_attention_ratio@L${layer}`,
          value: ratio[arm] + layer + 0.1 * seed,
        });
      }
    });
  }
  const curves: CurvePoint[] = [];
  for (const arm of ["ntp", "klal"]) {
    for (const seed of [0, 1]) {
      for (let step = 10; step <= 40; step += 10) {
        const ntp = 3 / step + seed * 0.01 + (arm === "klal" ? 0.02 : 0);
        const klal = arm === "klal" ? 2 / step : 2.5 - step / 100;
        curves.push({ arm, seed, step, ntp, klal, total: ntp + (arm === "klal" ? klal : 0) });
      }
    }
  }
  return {
    spec: fakeSpec(),
    rows,
    curves,
    stages: [
      { stage: "data", key: "abcdef0123456789abcdef", status: "cached", seconds: 0.01 },
      {
        stage: "finetune:klal:0",
        key: "0123456789abcdef0123",
        status: "ran",
        seconds: 12.5,
        samplesPerSecond: 51.2,
      },
    ],
    backend: "wasm",
    createdAt: "2026-01-02T03:04:05.000Z",
  };
}

/** `input` with its spec's task and every row moved to `task`. */
function onTask(input: ReportInput, task: string): ReportInput {
  input.spec.task.name = task;
  for (const row of input.rows) row.task = task;
  return input;
}

/** What writeReport wrote for a report, read back. */
interface WrittenReport {
  // deno-lint-ignore no-explicit-any
  results: any;
  md: string;
  html: string;
}

/** Writes `input`'s report into a temporary folder, reads it back for `check`, removes it. */
async function withWrittenReport(
  input: ReportInput,
  check: (report: WrittenReport) => void | Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir();
  try {
    await writeReport(`${root}/r`, input);
    const read = (file: string) => Deno.readTextFile(`${root}/r/${file}`);
    const results = JSON.parse(await read("results.json"));
    await check({ results, md: await read("table.md"), html: await read("index.html") });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const KLAL_WINS = { base: [5, 7], ntp: [40, 50], klal: [60, 64] } as Record<
  string,
  [number, number]
>;

Deno.test("writeReport writes the three files and results.json round-trips the rows", async () => {
  const input = fakeInput(KLAL_WINS);
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/reports/grid-patch-test`;
    await writeReport(dir, input);
    for (const file of ["index.html", "results.json", "table.md"]) {
      assert((await Deno.stat(`${dir}/${file}`)).isFile, `${file} exists`);
    }
    const results = JSON.parse(await Deno.readTextFile(`${dir}/results.json`));
    assert(results.experiment === "grid-patch-test", "experiment name");
    assert(results.backend === "wasm" && results.createdAt === input.createdAt, "meta");
    assert(JSON.stringify(results.rows) === JSON.stringify(input.rows), "rows round-trip");
    assert(JSON.stringify(results.spec) === JSON.stringify(input.spec), "spec round-trips");
    assert(results.stages.length === 2, "stages");
    // A second write replaces the report in place and leaves no temp or old dirs behind.
    await writeReport(dir, fakeInput({ base: [1, 2], ntp: [3, 4], klal: [5, 6] }));
    const again = JSON.parse(await Deno.readTextFile(`${dir}/results.json`));
    assert(again.rows[0].value === 1, "second write replaced the first");
    const siblings = [...Deno.readDirSync(`${root}/reports`)].map((e) => e.name);
    assert(siblings.length === 1 && siblings[0] === "grid-patch-test", `siblings: ${siblings}`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("table.md has hand-computed means, CIs, poster numbers and the verdict", () => {
  const md = renderTableMarkdown(fakeInput(KLAL_WINS));
  assertIncludes(md, "# KLAL reproduction: grid-patch-test", "title");
  assert(!md.includes(HOSTILE), "markdown never carries raw HTML from the spec");
  assertIncludes(md, "backend wasm", "setup line");
  assertIncludes(md, "40 steps at batch 16", "setup line");
  // NTP 40, 50: mean 45.0, half-width 12.706 * 5 = 63.53
  assertIncludes(md, "| NTP (ntp) | 45.0 ± 63.5 (n=2) | – | 1.100 | – | – | – | 28.6 |", "NTP row");
  // KLAL 60, 64: mean 62.0, half-width 12.706 * 2 = 25.41
  assertIncludes(
    md,
    "| KLAL+NTP (klal) | 62.0 ± 25.4 (n=2) | – | 8.500 | – | – | – | 44.9 |",
    "KLAL",
  );
  assertIncludes(md, "| Base (base) | 6.0 ± 12.7 (n=2) | – | 0.900 | – | – | – | 6.1 |", "Base");
  // diffs 20, 14: mean 17, s = sqrt(18), t = 17 / 3 = 5.667, dof 1: p = 1 - 2/pi atan(5.667)
  const p = 1 - 2 / Math.PI * Math.atan(17 / 3);
  assertIncludes(
    md,
    `KLAL+NTP vs NTP: +17.0 points (paired t-test over 2 seeds, p=${p.toFixed(3)}`,
    "verdict",
  );
  assertIncludes(md, "not significant at the 5% level", "honest caveat with p > 0.05");
  const perArm = md.slice(md.indexOf("## Grid Patch (grid-patch)"));
  const rows = perArm.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| ---"));
  assert(
    rows[1].includes("Base") && rows[2].includes("NTP (") && rows[3].includes("KLAL"),
    "order",
  );
});

Deno.test("verdict says 'does not beat' when NTP is better", () => {
  const md = renderTableMarkdown(fakeInput({ base: [5, 7], ntp: [60, 70], klal: [50, 52] }));
  assertIncludes(md, "KLAL+NTP does not beat NTP here: -14.0 points", "negative verdict");
  assert(!md.includes("KLAL+NTP vs NTP: +"), "no positive claim");
});

Deno.test("arms map to the paper's columns, several KLAL arms each get a row and verdict", () => {
  const input = fakeInput(KLAL_WINS);
  input.spec.arms.klal_l0 = armSpec({ lambda: 2, layers: [0] });
  input.rows.push(
    { task: "grid-patch", arm: "klal_l0", seed: 0, metric: "accuracy", value: 30 },
    { task: "grid-patch", arm: "klal_l0", seed: 1, metric: "accuracy", value: 70 },
  );
  assert(paperColumn(input.spec, "base") === "Base", "base");
  assert(paperColumn(input.spec, "ntp") === "NTP", "ntp");
  assert(paperColumn(input.spec, "klal_l0") === "KLAL+NTP", "klal_l0");
  assert(paperColumn(input.spec, "mystery") === "other", "unknown arm");
  const md = renderTableMarkdown(input);
  assertIncludes(
    md,
    "| KLAL+NTP (klal_l0) | 50.0 ± 254.1 (n=2) | – | – | – | – | – | 44.9 |",
    "second KLAL row",
  );
  assertIncludes(md, "KLAL+NTP (klal) vs NTP (ntp): +17.0 points", "named verdict 1");
  assertIncludes(md, "KLAL+NTP (klal_l0) vs NTP (ntp): +5.0 points", "named verdict 2");
});

Deno.test("one seed: CI shown as n=1 and no p-value", () => {
  const input = fakeInput(KLAL_WINS);
  input.rows = input.rows.filter((r) => r.seed === 0);
  const md = renderTableMarkdown(input);
  assertIncludes(md, "| NTP (ntp) | 40.0 (n=1) |", "n=1 cell");
  assertIncludes(
    md,
    "KLAL+NTP vs NTP: +20.0 points (paired t-test over 1 seed: n=1, no p-value)",
    "n=1",
  );
});

Deno.test("poster table holds the paper's numbers", () => {
  assert(POSTER_TABLE1["grid-patch"].klal === 44.9, "grid patch");
  assert(POSTER_TABLE1["line-intersection"].ntp === 62.6, "line intersection");
  assert(POSTER_TABLE1["line-tracing"].base === 49.6, "line tracing");
  assert(POSTER_TABLE1["pixmo-points"].klal === 35.8, "pixmo");
  assert(POSTER_TABLE1["refcoco"].ntp === 90.7, "refcoco");
});

Deno.test("index.html is offline, inlines the bundles, shows numbers, escapes text", async () => {
  await withWrittenReport(fakeInput(KLAL_WINS), ({ html }) => {
    assert(!/<script[^>]*\ssrc\s*=/i.test(html), "no external script src");
    assert(!/<link[^>]*href\s*=\s*["']?https?:/i.test(html), "no external stylesheet");
    assertIncludes(html, `var n="6.5.0"`, "vega-lite bundle (its version) is inlined");
    assertIncludes(html, "vegaEmbed", "vega-embed bundle is inlined");
    assertIncludes(html, 'data-bundle="vega.min.js"', "vega bundle");
    assert(!/sourceMappingURL/.test(html), "no source map references");
    const scripts = html.split(/<script[^>]*>/i).length - 1;
    const closes = html.split(/<\/script>/i).length - 1;
    assert(
      scripts === closes && scripts === 5,
      `balanced scripts: ${scripts} open, ${closes} close`,
    );
    assertIncludes(html, "45.0 ± 63.5 (n=2)", "NTP accuracy");
    assertIncludes(html, "44.9", "poster number");
    assertIncludes(html, "KLAL+NTP vs NTP: +17.0 points", "headline verdict");
    assertIncludes(html, "&lt;img src=x onerror=alert(1)&gt;", "escaped hostile description");
    assert(!html.includes(HOSTILE), "hostile description never raw");
    assertIncludes(html, "abcdef012345<", "stage key prefix of 12 chars");
    assert(!html.includes("abcdef0123456"), "key cut at 12 chars");
    assertIncludes(html, "<svg", "pre-rendered charts for readers without JavaScript");
    const json = /<script type="application\/json" id="chart-specs">([^]*?)<\/script>/.exec(html);
    assert(json, "chart specs embedded");
    assert(!json[1].includes("<"), "embedded JSON has no raw <");
    assert(Object.keys(JSON.parse(json[1])).includes("loss"), "embedded specs parse");
  });
});

Deno.test("every chart spec compiles and renders to SVG with marks", async () => {
  const input = fakeInput(KLAL_WINS);
  const charts = chartSpecs(input);
  const keys = Object.keys(charts).sort();
  assert(
    JSON.stringify(keys) ===
      JSON.stringify(["accuracy:grid-patch", "attention_layers:grid-patch", "loss"]),
    `chart keys: ${keys}`,
  );
  for (const [key, spec] of Object.entries(charts)) {
    // deno-lint-ignore no-explicit-any
    const view = new vega.View(vega.parse(vegaLite.compile(spec as any).spec), {
      renderer: "none",
    });
    const svg = await view.toSVG();
    view.finalize();
    assert(svg.startsWith("<svg"), `${key}: svg`);
    const marks = (svg.match(/<(path|rect|line|circle)\b/g) ?? []).length;
    assert(svg.includes('class="mark-'), `${key}: has marks`);
    assert(marks > 5, `${key}: ${marks} mark elements`);
  }
  // No per-layer rows: no per-layer chart.
  input.rows = input.rows.filter((r) => !r.metric.includes("@L"));
  assert(!("attention_layers:grid-patch" in chartSpecs(input)), "layer chart only with rows");
});

Deno.test("debiased EMA starts at the first value and follows the recurrence", () => {
  const ema = debiasedEma([2, 4, 4], 0.1);
  assert(Math.abs(ema[0] - 2) < 1e-12, "first value");
  // m1 = 0.2, m2 = 0.18 + 0.4 = 0.58; debias 1 - 0.81 = 0.19
  assert(Math.abs(ema[1] - 0.58 / 0.19) < 1e-12, "second value");
  const m3 = 0.1 * 4 + 0.9 * 0.58;
  assert(Math.abs(ema[2] - m3 / (1 - 0.9 ** 3)) < 1e-12, "third value");
});

Deno.test("escaping helpers", () => {
  assert(
    escapeHtml(`<a href="x">'&'</a>`) === "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;",
    "html",
  );
  assert(jsonForScript({ s: "</script><b>" }) === '{"s":"\\u003c/script>\\u003cb>"}', "json");
  assert(JSON.parse(jsonForScript({ s: "</script>" })).s === "</script>", "json round-trips");
  assert(inlineScriptSource('x="</script>"') === 'x="<\\/script>"', "inline js");
  assert(!inlineScriptSource("a\n//# sourceMappingURL=a.map\n").includes("sourceMapping"), "maps");
});

Deno.test("inlined bundles run on their own and render the embedded chart specs", async () => {
  await withWrittenReport(fakeInput(KLAL_WINS), async ({ html }) => {
    const scripts = [...html.matchAll(/<script([^>]*)>([^]*?)<\/script>/g)];
    const code = scripts.filter((m) => !m[1].includes("application/json")).map((m) => m[2]);
    for (const source of code) new Function(source); // throws SyntaxError if escaping broke it
    const specs = scripts.find((m) => m[1].includes("application/json"))![2];
    // A worker with no imports: only the inlined bundles define vega, vegaLite and vegaEmbed.
    const worker = `
      self.onmessage = async (event) => {
        for (const source of event.data.bundles) (0, eval)(source);
        const specs = JSON.parse(event.data.specs);
        const marks = {};
        for (const [key, spec] of Object.entries(specs)) {
          const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: "none" });
          marks[key] = (await view.toSVG()).split('class="mark-').length - 1;
        }
        self.postMessage({ embed: typeof vegaEmbed, marks });
      };`;
    const url = URL.createObjectURL(new Blob([worker], { type: "text/javascript" }));
    const w = new Worker(url, { type: "module" });
    const result = await new Promise<{ embed: string; marks: Record<string, number> }>(
      (resolve, reject) => {
        w.onmessage = (event) => resolve(event.data);
        w.onerror = (event) => {
          event.preventDefault();
          reject(new Error(event.message));
        };
        w.postMessage({ bundles: code.slice(0, 3), specs });
      },
    );
    w.terminate();
    URL.revokeObjectURL(url);
    assert(result.embed === "function", `vegaEmbed is ${result.embed}`);
    for (const [key, count] of Object.entries(result.marks)) {
      assert(count > 2, `${key}: ${count} mark groups from the inlined bundles`);
    }
    assert(Object.keys(result.marks).length === 3, "all charts rendered");
  });
});

// ---------------------------------------------------------------------------------------
// Tables 1 and 2, learning curves, figures, sweeps, results.json, the reports index

function tinyPng(): string {
  const canvas = createCanvas(32, 32);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ddd";
  ctx.fillRect(0, 0, 32, 32);
  ctx.fillStyle = "#d22";
  ctx.fillRect(8, 0, 8, 8);
  return canvas.toDataURL("image/png");
}

/** fakeInput plus learning curves, attention figures, per-head mass and a difficulty breakdown. */
function richInput(): ReportInput {
  const input = fakeInput(KLAL_WINS);
  const image = tinyPng();
  const focus: Record<string, number> = { base: 0.05, ntp: 0.07, klal: 0.6 };
  input.figures = Object.keys(focus).map((arm) => ({
    arm,
    seed: 0,
    gridSide: 4,
    samples: [0, 1].map((index) => {
      const m = focusedMap(1, focus[arm]);
      return {
        index,
        prompt: "where is the red patch ?",
        answer: "0 , 1",
        prediction: arm === "klal" ? "0 , 1" : "2 , 2",
        correct: arm === "klal",
        image,
        target: focusedMap(1, 1),
        layers: [m, m],
        heads: [[m, m, m, m], [m, m, m, m]],
      };
    }),
  }));
  input.heads = [];
  input.breakdown = [];
  for (const [arm, mass] of Object.entries(focus)) {
    for (const seed of [0, 1]) {
      for (let layer = 0; layer < 2; layer++) {
        for (let head = 0; head < 4; head++) input.heads.push({ arm, seed, layer, head, mass });
      }
      input.breakdown.push(
        { arm, seed, difficulty: "10 patches", correct: 2, n: 10 },
        { arm, seed, difficulty: "2 patches", correct: 6, n: 10 },
      );
    }
  }
  // NTP ends at 40 and 30 (mean 35); KLAL passes 35 at step 20 on both seeds.
  const accuracy: Record<string, number[][]> = {
    ntp: [[10, 20, 30, 40], [10, 15, 20, 30]],
    klal: [[20, 40, 60, 70], [30, 50, 55, 60]],
  };
  input.learning = [];
  for (const [arm, bySeed] of Object.entries(accuracy)) {
    bySeed.forEach((values, seed) => {
      values.forEach((value, i) => {
        input.learning!.push({
          arm,
          seed,
          step: 10 * (i + 1),
          accuracy: value,
          targetAttention: value / 100,
          targetAttentionRatio: value / 6.25,
        });
      });
    });
  }
  return input;
}

Deno.test("Table 1 lists the poster's five tasks; those this run skipped read 'not run'", () => {
  const input = fakeInput(KLAL_WINS);
  const rows = table1(input);
  assert(
    JSON.stringify(rows.map((r) => r.label)) ===
      JSON.stringify(Object.values(POSTER_TABLE1).map((p) => p.label)),
    `poster order: ${rows.map((r) => r.label)}`,
  );
  const grid = rows.find((r) => r.task === "grid-patch")!;
  // diffs 20, 14 -> t = 17/3 with 1 dof, p = 1 - 2/pi atan(17/3)
  const p = (1 - 2 / Math.PI * Math.atan(17 / 3)).toFixed(3);
  assert(
    JSON.stringify(table1Cells(grid)) === JSON.stringify([
      "Grid Patch",
      "–",
      "6.0 ± 12.7 (n=2)",
      "45.0 ± 63.5 (n=2)",
      "62.0 ± 25.4 (n=2)",
      `+17.0 (p=${p}, Holm p=${p})`,
      "–",
      "6.1",
      "28.6",
      "44.9",
      "+16.3",
    ]),
    `grid patch cells: ${table1Cells(grid)}`,
  );
  const md = renderTableMarkdown(input);
  assertIncludes(
    md,
    "| Line Intersection | not run | not run | not run | not run | not run | not run | 47.6 | 62.6 " +
      "| 70.2 | +7.6 |",
    "a task this run skipped",
  );
  assertIncludes(
    md,
    "| RefCOCO (val) | not run | not run | not run | not run | not run",
    "refcoco",
  );
  assert(rows.filter((r) => r.run).length === 1, "only the task that ran has numbers");
});

Deno.test("Table 2: ours on Line Intersection beside the quoted rows, marked not run here", () => {
  const md = renderTableMarkdown(onTask(fakeInput(KLAL_WINS), "line-intersection"));
  assertIncludes(
    md,
    "| NTP + KLAL (ours, tiny VLM) | 62.0 ± 25.4 (n=2) | not run | this experiment |",
    "ours",
  );
  for (const quoted of POSTER_TABLE2) {
    assertIncludes(
      md,
      `| ${quoted.model} | ${quoted.lineIntersection.toFixed(2)} | ` +
        `${quoted.lineTracing.toFixed(2)} | reported in the paper, not run here |`,
      quoted.model,
    );
  }
  assertIncludes(md, "| Molmo-7B-D | 41.07 | 49.51 |", "a quoted number");
  assertIncludes(md, "| Gemini-2.0 Flash | 56.41 | 59.25 |", "another");
  assertIncludes(md, "| Line Intersection | – | 6.0 ± 12.7 (n=2) |", "Table 1 row of the task");
  const grid = renderTableMarkdown(fakeInput(KLAL_WINS));
  assertIncludes(grid, "| NTP + KLAL (ours, tiny VLM) | not run | not run |", "grid patch run");
});

Deno.test("steps to reach NTP's final accuracy and 50%, hand-computed", () => {
  const summary = learningSummary(richInput())!;
  assert(
    JSON.stringify(summary.thresholds.map((t) => t.value)) === "[32.5,35,50]",
    `thresholds ${JSON.stringify(summary.thresholds)}`,
  );
  assertIncludes(summary.thresholds[0].why, "half of KLAL+NTP (klal)'s final", "why 1");
  assertIncludes(summary.thresholds[1].why, "NTP (ntp)'s final validation accuracy", "why 2");
  const md = renderTableMarkdown(richInput());
  // NTP 40 and 30 at the end, KLAL 70 and 60: half the best is 32.5.
  assertIncludes(md, "| KLAL+NTP (klal) | ≥ 32.5% | 20 (s0 20, s1 20) |", "KLAL to 32.5");
  assertIncludes(md, "| NTP (ntp) | ≥ 35.0% | s0 40, s1 not reached by 40 |", "NTP to 35");
  assertIncludes(md, "| KLAL+NTP (klal) | ≥ 35.0% | 20 (s0 20, s1 20) |", "KLAL to 35");
  assertIncludes(md, "| NTP (ntp) | ≥ 50.0% | not reached by step 40 |", "NTP to 50");
  assertIncludes(md, "| KLAL+NTP (klal) | ≥ 50.0% | 25 (s0 30, s1 20) |", "KLAL to 50");
  assert(learningSummary(fakeInput(KLAL_WINS)) === undefined, "no curves, no summary");
});

Deno.test("sweeps: a λ sweep and a per-layer ablation are found from the arms", () => {
  const spec = fakeSpec();
  assert(JSON.stringify(sweeps(spec)) === '{"lambda":[],"layers":[]}', "plain spec");
  spec.arms.klal_2 = armSpec({ lambda: 2 });
  spec.arms.klal_05 = armSpec({ lambda: 0.5, layers: [1, 0] });
  spec.arms.klal_l1 = armSpec({ lambda: 1, layers: [1] });
  const found = sweeps(spec);
  // [1, 0] is all of a 2-layer model: klal_05 joins the λ sweep.
  assert(
    JSON.stringify(found.lambda) === '[["ntp","klal_05","klal","klal_2"]]',
    `lambda ${JSON.stringify(found.lambda)}`,
  );
  assert(JSON.stringify(found.layers) === '[["klal","klal_l1"]]', `layers ${found.layers}`);
  const input = fakeInput(KLAL_WINS);
  input.spec = spec;
  for (const arm of ["klal_2", "klal_05", "klal_l1"]) {
    for (const seed of [0, 1]) {
      input.rows.push({ task: "grid-patch", arm, seed, metric: "accuracy", value: 50 + seed });
    }
  }
  const keys = Object.keys(chartSpecs(input));
  assert(keys.includes("lambda_sweep:grid-patch"), `λ chart in ${keys}`);
  assert(keys.includes("layer_ablation:grid-patch"), `layer chart in ${keys}`);
});

Deno.test("attention maps: support, mass on target, colour relative to uniform", () => {
  assert(
    JSON.stringify(targetSupport([0, 0.5, 0.004, 0.496])) === "[false,true,false,true]",
    "1% of the peak",
  );
  assert(Math.abs(massOnTarget([0.1, 0.6, 0.1, 0.2], [0, 0.5, 0, 0.5]) - 0.8) < 1e-12, "mass");
  assert(relativeToUniform(1 / 16, 16) === 0, "uniform is clear");
  assert(relativeToUniform(0.01, 16) === 0, "below uniform is clear");
  assert(Math.abs(relativeToUniform(0.25, 16) - 0.5) < 1e-12, "4x uniform of 16: log 4 / log 16");
  assert(relativeToUniform(1, 16) === 1, "everything on one patch");
});

Deno.test("every chart of a full report compiles, and figures/ has its SVG and PNG", async () => {
  const input = richInput();
  const charts = chartSpecs(input);
  const keys = Object.keys(charts);
  for (
    const key of [
      "accuracy:grid-patch",
      "attention_layers:grid-patch",
      "heads",
      "attention_figures",
      "explorer",
      "loss",
      "learning",
      "breakdown",
    ]
  ) assert(keys.includes(key), `${key} in ${keys}`);
  const breakdown = JSON.stringify(charts.breakdown);
  assert(
    breakdown.indexOf('"2 patches","10 patches"') > 0,
    "difficulty buckets in natural order",
  );
  const root = await Deno.makeTempDir();
  try {
    await writeReport(`${root}/r`, input);
    const files = [...Deno.readDirSync(`${root}/r/figures`)].map((e) => e.name).sort();
    const expected = keys.flatMap((k) =>
      [".png", ".svg", ".vl.json"].map((ext) => `${figureName(k)}${ext}`)
    ).sort();
    assert(JSON.stringify(files) === JSON.stringify(expected), `figures: ${files}`);
    for (const key of keys) {
      const svg = await Deno.readTextFile(`${root}/r/figures/${figureName(key)}.svg`);
      assert(svg.startsWith("<svg") && svg.includes('class="mark-'), `${key}: svg with marks`);
      const png = await Deno.readFile(`${root}/r/figures/${figureName(key)}.png`);
      assert(png[1] === 0x50 && png[2] === 0x4e && png[3] === 0x47, `${key}: PNG signature`);
      const width = Number(/width="([\d.]+)"/.exec(svg)![1]);
      const image = await loadImage(png);
      assert(Math.abs(image.width - 2 * width) <= 1, `${key}: PNG at twice the SVG's size`);
    }
    const figures = await Deno.readTextFile(`${root}/r/figures/attention_figures.svg`);
    assert(figures.includes("<image"), "the attention figure draws the input images");
    const html = await Deno.readTextFile(`${root}/r/index.html`);
    for (const key of keys) assertIncludes(html, `data-chart="${key}"`, `figure for ${key}`);
    assertIncludes(html, 'href="figures/attention_figures.png"', "links to the PNG");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("svgToPng draws text", async () => {
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="30">' +
    '<text x="4" y="22" font-size="20" font-family="sans-serif">KLAL 42</text></svg>';
  const image = await loadImage(await svgToPng(svg, 1));
  const canvas = createCanvas(image.width, image.height);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0);
  const pixels = ctx.getImageData(0, 0, image.width, image.height).data;
  let dark = 0;
  for (let i = 0; i < pixels.length; i += 4) if (pixels[i] < 128) dark++;
  assert(image.width === 120 && image.height === 30, `size ${image.width}x${image.height}`);
  assert(dark > 40, `text pixels drawn: ${dark}`);
});

/** The text of each <td> of the first <tr> of `html` that matches `rowStart`. */
function htmlRowCells(html: string, rowStart: string): string[] {
  const at = html.indexOf(rowStart);
  assert(at >= 0, `row ${rowStart} in the HTML`);
  const row = html.slice(at, html.indexOf("</tr>", at));
  return [...row.matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((m) =>
    m[1].replaceAll("&#39;", "'").replaceAll("&quot;", '"').replaceAll("&lt;", "<")
      .replaceAll("&gt;", ">").replaceAll("&amp;", "&")
  );
}

Deno.test("results.json, table.md and index.html show the same numbers", async () => {
  const input = richInput();
  await withWrittenReport(input, ({ results, md, html }) => {
    // Table 1: recomputed from the raw rows, then found cell for cell in table.md and the HTML.
    assert(results.table1.length === 5, "five poster tasks");
    for (const row of results.table1) {
      assertIncludes(md, `| ${row.cells.join(" | ")} |`, `table.md row ${row.label}`);
      const cells = htmlRowCells(html, `<tr data-task="${row.task}">`);
      assert(
        JSON.stringify(cells) === JSON.stringify(row.cells),
        `HTML row ${row.label}: ${cells} vs ${row.cells}`,
      );
      if (!row.run) {
        assert(row.cells.slice(1, 7).every((c: string) => c === "not run"), "not run cells");
        continue;
      }
      for (const column of ["base", "ntp", "klal"]) {
        const cell = row[column];
        const values = results.rows.filter((r: ResultRow) =>
          r.task === row.task && r.arm === cell.arm && r.metric === "accuracy"
        ).map((r: ResultRow) => r.value);
        const ci = ci95(values);
        assert(Math.abs(cell.mean - ci.mean) < 1e-9 && cell.n === ci.n, `${column} mean and n`);
        assert(cell.text === formatAccuracy(ci), `${column}: ${cell.text}`);
      }
    }
    // The accuracy chart plots the same means.
    const specs = JSON.parse(
      /<script type="application\/json" id="chart-specs">([^]*?)<\/script>/.exec(html)![1],
    );
    const bars = specs["accuracy:grid-patch"].layer[0].data.values;
    const grid = results.table1.find((r: { task: string }) => r.task === "grid-patch");
    for (const column of ["base", "ntp", "klal"]) {
      const bar = bars.find((b: { label: string }) => b.label.endsWith(`(${grid[column].arm})`));
      assert(Math.abs(bar.mean - grid[column].mean) < 1e-9, `chart bar ${column}`);
    }
    // The headline: one sentence per verdict, the same in all three files.
    const verdicts = verdictLines(summarize(input));
    assert(results.headline === verdicts.join(" "), `headline: ${results.headline}`);
    for (const v of verdicts) {
      assertIncludes(md, v, "verdict in table.md");
      assertIncludes(html, `<p>${escapeHtml(v)}</p>`, "verdict in the HTML headline");
    }
    // Table 2's row of ours, and the steps to reach an accuracy.
    const ours = htmlRowCells(html, '<tr class="ours">');
    assert(ours[1] === "not run" && ours[2] === "not run", `Table 2 ours: ${ours}`);
    for (const reach of results.learning.reach) {
      const line = md.split("\n").find((l: string) =>
        l.startsWith(`| ${reach.label} | ≥ ${reach.threshold.toFixed(1)}% |`)
      );
      assert(line, `table.md has steps for ${reach.label} at ${reach.threshold}`);
      const cell = line.split(" | ")[2].replace(/ \|$/, "");
      assertIncludes(html, `<td class="num">${escapeHtml(cell)}</td>`, "same steps in HTML");
    }
  });
});

Deno.test("reports/index.html lists every report, newest first, and Table 1 across them", async () => {
  const root = await Deno.makeTempDir();
  try {
    const older = fakeInput(KLAL_WINS);
    older.spec.name = "older";
    older.createdAt = "2026-01-01T00:00:00.000Z";
    const newer = fakeInput({ base: [1, 2], ntp: [10, 20], klal: [30, 40] });
    newer.spec.name = `newer ${HOSTILE}`;
    newer.createdAt = "2026-02-01T00:00:00.000Z";
    await writeReport(`${root}/older`, older);
    await writeReport(`${root}/paper/newer`, newer);
    await Deno.mkdir(`${root}/not-a-report`);
    const entries = await readReportEntries(root);
    assert(
      JSON.stringify(entries.map((e) => e.path)) === '["paper/newer","older"]',
      `entries ${entries.map((e) => e.path)}`,
    );
    const html = renderReportsIndex(entries);
    assertIncludes(html, 'href="older/index.html"', "link to a report");
    assertIncludes(html, 'href="paper/newer/index.html"', "link to a nested report");
    assertIncludes(html, escapeHtml(headlineOf(older)), "headline of the older run");
    assert(!html.includes(HOSTILE), "names are escaped");
    assertIncludes(html, "2026-02-01 00:00:00 UTC", "date");
    // Grid Patch comes from the newest report that ran it; the other four were not run.
    assertIncludes(
      html,
      '<td>Grid Patch</td><td class="num">–</td><td class="num">1.5 ± 6.4 (n=2)</td>',
      "newest",
    );
    assert(html.split("not run").length - 1 === 4, "four tasks not run anywhere");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

function headlineOf(input: ReportInput): string {
  return verdictLines(summarize(input)).join(" ");
}

/** A cache holding every stage of a tiny spec's plan, as a finished run leaves it. */
async function cachedRun(root: string): Promise<{ cache: Cache; spec: Spec }> {
  const cache = new Cache(`${root}/cache`);
  const spec = fakeSpec();
  spec.name = "cached-run";
  const plan = await resolvePlan(buildPlan(spec));
  const accuracy: Record<string, number> = { base: 5, ntp: 30, klal: 50 };
  for (const stage of plan) {
    if (stage.kind === "report") continue;
    const meta = {
      stage: stage.id,
      kind: stage.kind,
      params: stage.params,
      inputs: stage.inputKeys,
      codeVersion: stage.codeVersion,
    };
    await cache.write(stage.key, meta, async (out) => {
      if (stage.kind === "eval") {
        const layer = (l: number) => ({ layer: l, mass: 0.2, ratio: 3.2, headMass: [0.2, 0.2] });
        await out.writeJson("metrics.json", {
          accuracy: accuracy[stage.arm!] + stage.seed!,
          targetAttention: 0.2,
          targetAttentionRatio: 3.2,
          layers: [layer(0), layer(1)],
        });
        const item = (index: number, prediction: string) =>
          JSON.stringify({
            index,
            prompt: "where is the red patch ?",
            answer: "1 , 2",
            prediction,
            correct: prediction === "1 , 2",
            difficulty: "1 patch",
            targetAttention: 0.25,
          });
        await out.writeText("predictions.jsonl", `${item(0, "1 , 2")}\n${item(1, "0 , 0")}\n`);
      } else if (stage.kind === "finetune") {
        await out.writeJson("log.json", {
          log: [{ step: 0, ntp: 2, klal: 1, total: 3 }, { step: 9, ntp: 1, klal: 0.5, total: 1.5 }],
          learning: [],
        });
      } else await out.writeText("done.txt", "ok");
      return { backend: "wasm", samplesPerSecond: 100 };
    });
  }
  for (const stage of plan) {
    await cache.writeRef(spec.name, stage.id, {
      key: stage.key,
      params: stage.params,
      inputs: stage.inputKeys,
      codeVersion: stage.codeVersion,
    });
  }
  return { cache, spec };
}

/** `deno task report ...args` on the cache and reports under `root`. */
function reportCli(args: string[], root: string) {
  const env = { KLAL_CACHE_DIR: `${root}/cache`, KLAL_REPORTS_DIR: `${root}/reports` };
  return runScript("pipeline/commands/report.ts", args, env);
}

Deno.test("deno task report NAME rebuilds the report from the cache; clear errors otherwise", async () => {
  const root = await Deno.makeTempDir();
  try {
    const { cache } = await cachedRun(root);
    const ok = await reportCli(["cached-run"], root);
    assert(ok.code === 0, `exit ${ok.code}: ${ok.stderr}`);
    const results = JSON.parse(await Deno.readTextFile(`${root}/reports/cached-run/results.json`));
    const ntp = results.rows.filter((r: ResultRow) => r.arm === "ntp" && r.metric === "accuracy");
    assert(JSON.stringify(ntp.map((r: ResultRow) => r.value)) === "[30,31]", "rows from cache");
    assert(typeof results.headline === "string" && results.headline.length > 0, "headline");
    assert((await Deno.stat(`${root}/reports/cached-run/figures/loss.png`)).isFile, "figures");
    const index = await Deno.readTextFile(`${root}/reports/index.html`);
    assertIncludes(index, 'href="cached-run/index.html"', "reports index lists it");
    assertIncludes(index, escapeHtml(results.headline), "with its headline");

    // --samples: each evaluation's items as lmms-eval samples, one file per arm and seed.
    const withSamples = await reportCli(["cached-run", "--samples"], root);
    assert(withSamples.code === 0, `--samples: exit ${withSamples.code}: ${withSamples.stderr}`);
    assertIncludes(withSamples.stdout, "samples: 10 items in 5 files", "says what it wrote");
    const lines = (await Deno.readTextFile(
      `${root}/reports/cached-run/samples/grid-patch/samples_klal_s1.jsonl`,
    )).trim().split("\n").map((l) => JSON.parse(l));
    assert(lines.length === 2, `${lines.length} samples`);
    assert(lines[0].doc_id === 0 && lines[1].doc_id === 1, "doc ids are the items' indices");
    assert(JSON.stringify(lines[1].resps) === '[["0 , 0"]]', "resps");
    assert(JSON.stringify(lines[1].filtered_resps) === '["0 , 0"]', "filtered_resps");
    assert(lines[0].exact_match === 1 && lines[1].exact_match === 0, "exact_match");
    assert(lines[0].target === "1 , 2" && lines[0].arm === "klal" && lines[0].seed === 1, "target");

    const unknown = await reportCli(["no-such-run"], root);
    assert(unknown.code === 2, `unknown name: exit ${unknown.code}`);
    assertIncludes(unknown.stderr, "known: cached-run", "lists the known experiments");
    const usage = await reportCli([], root);
    assert(usage.code === 2 && usage.stderr.includes("usage:"), "no NAME: usage, exit 2");

    const evalRef = await cache.readRef("cached-run", "eval:ntp:s1");
    await cache.evict(evalRef!.key);
    const missing = await reportCli(["cached-run"], root);
    assert(missing.code === 1, `missing stage: exit ${missing.code}`);
    assertIncludes(missing.stderr, "eval:ntp:s1", "names the missing stage");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------
// The chart registry, the markdown table writer, the Vega-Lite schema, sweep reports

/** richInput plus a λ sweep and a layer ablation, so every kind of chart has data. */
function everyChartInput(): ReportInput {
  const input = richInput();
  input.spec.arms.klal_2 = armSpec({ lambda: 2 });
  input.spec.arms.klal_l1 = armSpec({ lambda: 1, layers: [1] });
  for (const arm of ["klal_2", "klal_l1"]) {
    for (const seed of [0, 1]) {
      input.rows.push({ task: "grid-patch", arm, seed, metric: "accuracy", value: 50 + seed });
    }
  }
  return input;
}

Deno.test("chart registry: every kind has its own non-empty caption, and builds under its key", () => {
  const input = everyChartInput();
  const kinds = REPORT_CHARTS.map((e) => e.key);
  assert(new Set(kinds).size === kinds.length, `kinds are unique: ${kinds}`);
  const captions = REPORT_CHARTS.map((e) => e.caption(input, "grid-patch"));
  for (const [i, caption] of captions.entries()) {
    assert(caption.trim().length > 20, `${kinds[i]}: a caption that says something`);
    assert(!caption.includes("undefined"), `${kinds[i]}: ${caption}`);
  }
  assert(new Set(captions).size === captions.length, "no two kinds share a caption");
  const charts = reportCharts(input);
  // Every kind has data here, so each builds at least one chart, in registry (page) order.
  assert(
    JSON.stringify([...new Set(charts.map((c) => c.entry.key))]) === JSON.stringify(kinds),
    `kinds built: ${charts.map((c) => c.key)}`,
  );
  const keys = charts.map((c) => c.key);
  assert(new Set(keys).size === keys.length, `chart keys are unique: ${keys}`);
  for (const c of charts) {
    assert(c.key === c.entry.key || c.key.startsWith(`${c.entry.key}:`), `${c.key} of its kind`);
    assert(c.caption === c.entry.caption(input, c.task), `${c.key}: the entry's caption`);
  }
  assert(JSON.stringify(Object.keys(chartSpecs(input))) === JSON.stringify(keys), "chartSpecs");
});

Deno.test("index.html shows every registered chart, in registry order, with its caption", async () => {
  const input = everyChartInput();
  await withWrittenReport(input, ({ html }) => {
    let at = 0;
    for (const chart of reportCharts(input)) {
      const figure = html.indexOf(`data-chart="${chart.key}"`, at);
      assert(figure > at, `${chart.key}: its figure, after the previous one`);
      const caption = html.slice(figure, html.indexOf("</figcaption>", figure));
      assertIncludes(caption, escapeHtml(chart.caption), `${chart.key}: its caption`);
      at = figure;
    }
    const sections = [...html.matchAll(/<section id="([a-z]+)">/g)].map((m) => m[1]);
    const order = [...new Set(REPORT_CHARTS.map((e) => e.section))];
    assert(
      JSON.stringify(sections.filter((s) => (order as string[]).includes(s))) ===
        JSON.stringify(order),
      `chart sections in page order: ${sections}`,
    );
  });
});

Deno.test("markdownTable escapes pipes, backslashes and line breaks in cells", () => {
  const table = markdownTable(["a|b", "n"], [["x\\|y", "1\n2"], ["p<0.001", "3\r\n\t4"]]);
  assert(
    JSON.stringify(table) === JSON.stringify([
      "| a\\|b | n |",
      "| --- | ---: |",
      "| x\\\\\\|y | 1 2 |",
      "| p<0.001 | 3 4 |",
    ]),
    `table: ${JSON.stringify(table)}`,
  );
  // A row still has as many cells as the header: split on the unescaped pipes only.
  const cells = table[2].slice(2, -2).split(/(?<!\\)\|/).length;
  assert(cells === 2, `cells in an escaped row: ${cells}`);
  // The report's table.md also keeps spec text from opening an HTML tag.
  const input = fakeInput(KLAL_WINS);
  for (const row of input.rows) row.task = "grid|<b>patch</b>";
  const md = renderTableMarkdown(input);
  assertIncludes(
    md,
    "| grid\\|&lt;b&gt;patch&lt;/b&gt; | – | 6.0 ± 12.7 (n=2) |",
    "escaped task cell",
  );
});

Deno.test("every chart carries the $schema of the installed Vega-Lite", () => {
  const major = vegaLite.version.split(".")[0];
  assert(VEGA_LITE_SCHEMA === `https://vega.github.io/schema/vega-lite/v${major}.json`, "schema");
  for (const [key, spec] of Object.entries(chartSpecs(everyChartInput()))) {
    assert((spec as { $schema?: string }).$schema === VEGA_LITE_SCHEMA, `${key}: $schema`);
  }
});

Deno.test("sweep report: points' arms renamed by label, or kept when only the task differs", () => {
  const point = (name: string, task: string, accuracy: number) => {
    const input = onTask(
      fakeInput({ ntp: [accuracy, accuracy], klal: [accuracy + 10, accuracy + 10] }),
      task,
    );
    input.spec.name = name;
    delete input.spec.arms.base;
    return { spec: input.spec, input };
  };
  const lr = combineSweepInputs([
    point("s--lr1", "grid-patch", 10),
    point("s--lr2", "grid-patch", 20),
  ]);
  assert(lr.spec.name === "s", `base name ${lr.spec.name}`);
  assert(
    JSON.stringify(Object.keys(lr.spec.arms)) === '["ntp@lr1","klal@lr1","ntp@lr2","klal@lr2"]',
    `arms ${Object.keys(lr.spec.arms)}`,
  );
  assert(lr.rows.some((r) => r.arm === "klal@lr2" && r.value === 30), "rows renamed");
  assert(lr.curves.every((c) => c.arm.includes("@")), "curves renamed");
  assert(lr.stages[0].stage.startsWith("lr1 "), `stages prefixed: ${lr.stages[0].stage}`);
  const byTask = combineSweepInputs([
    point("t--grid", "grid-patch", 10),
    point("t--lines", "line-tracing", 20),
  ]);
  assert(JSON.stringify(Object.keys(byTask.spec.arms)) === '["ntp","klal"]', "names kept");
  assert(byTask.curves.length === 0, "curves stay in the per-task reports");
  assert(
    JSON.stringify([...new Set(byTask.rows.map((r) => r.task))]) ===
      '["grid-patch","line-tracing"]',
    "rows keep their tasks",
  );
});

// ---------------------------------------------------------------------------------------
// Floors, control arms, item-level statistics, attention measures, stand-in labels

/** The test set of a closed-answer task: ten items, majority answer "1" (5 of 10). */
const TRUTH = ["0", "1", "1", "1", "2", "0", "1", "2", "1", "0"];

/** Predictions per arm and seed: an answer per item where it differs from "1". */
const PREDICTED: Record<string, Record<number, Record<number, string>>> = {
  // Always "1": right on items 1, 2, 3, 6, 8 (the floor's 50%).
  ntp: { 0: {}, 1: {} },
  // s0 wrong on 2 (says "2") and 7 (says "1"): 80%; s1 wrong on 4 (says "0"): 90%.
  klal: {
    0: { 0: "0", 2: "2", 4: "2", 5: "0", 9: "0" },
    1: { 0: "0", 4: "0", 5: "0", 7: "2", 9: "0" },
  },
  // NTP's answers and item 0 right: 60% on both seeds.
  shuffled: { 0: { 0: "0" }, 1: { 0: "0" } },
  // s0 like the shuffled control (60%), s1 like NTP (50%); item 9 answered "3", outside the set.
  pointer: { 0: { 0: "0", 9: "3" }, 1: { 9: "3" } },
};

/** Line Intersection with NTP, KLAL+NTP, a shuffled-map and a pointer-head control. */
function controlsInput(): ReportInput {
  const input = fakeInput({});
  const control = (target: "task" | "shuffled", supervision: "attention" | "pointer") =>
    armSpec({ lambda: 1, target, supervision });
  input.spec.task.name = "line-intersection";
  delete input.spec.arms.base;
  input.spec.arms.shuffled = control("shuffled", "attention");
  input.spec.arms.pointer = control("task", "pointer");
  input.curves = [];
  input.floors = { "line-intersection": { answer: "1", accuracy: 50, kind: "majority" } };
  input.items = [];
  const measures: Record<string, number[]> = {
    // ratio, ratio at the first answer position, visual share, visual share at the first
    ntp: [1.1, 0.9, 0.3, 0.25],
    klal: [6, 4.5, 0.6, 0.55],
    shuffled: [1.2, 1.0, 0.5, 0.45],
    pointer: [1.0, 1.0, 0.3, 0.3],
  };
  for (const [arm, bySeed] of Object.entries(PREDICTED)) {
    for (const seed of [0, 1]) {
      const items = TRUTH.map((answer, index) => {
        const prediction = bySeed[seed][index] ?? "1";
        return { index, answer, prediction, correct: prediction === answer };
      });
      input.items.push({ task: "line-intersection", arm, seed, items });
      const accuracy = 100 * items.filter((i) => i.correct).length / items.length;
      const [ratio, ratioFirst, share, shareFirst] = measures[arm];
      const push = (metric: string, value: number) =>
        input.rows.push({ task: "line-intersection", arm, seed, metric, value });
      push("accuracy", accuracy);
      push("target_attention_ratio", ratio);
      push("target_attention_ratio_first", ratioFirst);
      push("visual_share", share);
      push("visual_share_first", shareFirst);
    }
  }
  return input;
}

/** The per-seed correctness of an arm in controlsInput. */
function correctOf(input: ReportInput, arm: string): boolean[][] {
  return [0, 1].map((seed) =>
    input.items!.find((set) => set.arm === arm && set.seed === seed)!.items.map((i) => i.correct)
  );
}

/** t-test p of two paired seeds with differences d1, d2 (1 dof): 1 - 2/pi atan(|t|). */
function pairP(d1: number, d2: number): number {
  const meanDiff = (d1 + d2) / 2;
  const sd = Math.abs(d1 - d2) / Math.SQRT2;
  return 1 - 2 / Math.PI * Math.atan(Math.abs(meanDiff / (sd / Math.SQRT2)));
}

Deno.test("control arms: their own column, label and colour, never KLAL+NTP", () => {
  const input = controlsInput();
  assert(paperColumn(input.spec, "shuffled") === "Control", "shuffled maps are a control");
  assert(paperColumn(input.spec, "pointer") === "Control", "a pointer head is a control");
  assert(paperColumn(input.spec, "klal") === "KLAL+NTP", "KLAL itself");
  assert(armLabel(input.spec, "shuffled") === "Control: shuffled maps (shuffled)", "label");
  assert(armLabel(input.spec, "pointer") === "Control: pointer head (pointer)", "label");
  input.spec.arms.uniform = { ...input.spec.arms.shuffled, target: "uniform" };
  assert(armLabel(input.spec, "uniform") === "Control: uniform maps (uniform)", "uniform");
  // λ = 0 weighs nothing: whatever its maps, the arm is NTP.
  input.spec.arms.uniform.lambda = 0;
  assert(paperColumn(input.spec, "uniform") === "NTP", "lambda 0 is NTP");
  const palette = armPalette(controlsInput());
  const colour = (label: string) => palette.range[palette.domain.indexOf(label)];
  assert(colour("Control: shuffled maps (shuffled)") === "#7b4fa6", "first control colour");
  assert(colour("Control: pointer head (pointer)") === "#3a9ca0", "second control colour");
  assert(colour("KLAL+NTP (klal)") === "#e45756", "KLAL keeps its red");
  // Controls are not points of a λ sweep.
  input.spec.arms.klal2 = { ...input.spec.arms.klal, lambda: 2 };
  assert(
    JSON.stringify(sweeps(input.spec).lambda) === '[["ntp","klal","klal2"]]',
    `λ sweep without controls: ${JSON.stringify(sweeps(input.spec).lambda)}`,
  );
});

Deno.test("Table 1: floor column, controls, bootstrap intervals and Holm p, hand-checked", () => {
  const input = controlsInput();
  const row = table1(input).find((r) => r.task === "line-intersection")!;
  const cells = table1Cells(row);
  const klal = correctOf(input, "klal");
  const ntp = correctOf(input, "ntp");
  const f = (v: number) => v.toFixed(1);
  const sp = (v: number) => (v > 0 ? "+" : v < 0 ? "-" : "") + Math.abs(v).toFixed(1);
  const klalBoot = bootstrapCrossed(klal, { resamples: 2000 });
  const ntpBoot = bootstrapCrossed(ntp, { resamples: 2000 });
  const gainBoot = bootstrapCrossed(klal, { baseline: ntp, resamples: 2000 });
  // Diffs KLAL - NTP 30, 40; vs shuffled 20, 30; vs pointer 20, 40. Holm over the three:
  // the smallest p (vs NTP) times 3, and the others no lower than it.
  const pNtp = pairP(30, 40);
  const holm = Math.max(3 * pNtp, 2 * pairP(20, 30), pairP(20, 40));
  assert(Math.abs(holm - 3 * pNtp) < 1e-12, "Holm: the smallest p times three dominates");
  const expected = [
    "Line Intersection",
    '50.0 (always "1")',
    "–",
    `50.0 ± 0.0 (n=2); boot [${f(ntpBoot.low)}, ${f(ntpBoot.high)}]`,
    `85.0 ± 63.5 (n=2); boot [${f(klalBoot.low)}, ${f(klalBoot.high)}]`,
    `+35.0 (p=${pNtp.toFixed(3)}, Holm p=${holm.toFixed(3)}; boot [${sp(gainBoot.low)}, ${
      sp(gainBoot.high)
    }])`,
    "shuffled maps (shuffled) 60.0 ± 0.0 (n=2); pointer head (pointer) 55.0 ± 63.5 (n=2)",
    "47.6",
    "62.6",
    "70.2",
    "+7.6",
  ];
  assert(
    JSON.stringify(cells) === JSON.stringify(expected),
    `cells:\n${JSON.stringify(cells)}\nexpected:\n${JSON.stringify(expected)}`,
  );
  const md = renderTableMarkdown(input);
  const parts: [string, string][] = [
    [`| ${cells.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`, "table.md"],
    ["| Floor (fixed answer) |", "floor column header"],
    ['| Fixed-answer floor (always "1") | 50.0 |', "floor row of the task table"],
    ["| Control: shuffled maps (shuffled) | 60.0 ± 0.0 (n=2) |", "control row of the task table"],
    // The statistics table: raw and Holm p side by side, McNemar per seed.
    [
      `| KLAL+NTP (klal) vs NTP (ntp) | +35.0 | p=${pNtp.toFixed(3)} | p=${holm.toFixed(3)} | ` +
      `[${sp(gainBoot.low)}, ${sp(gainBoot.high)}] | s0 4 / 1, p=0.375; s1 4 / 0, p=0.125 |`,
      "statistics row",
    ],
  ];
  for (const [part, what] of parts) assertIncludes(md, part, what);
});

Deno.test("verdicts: against the floor, and one line per control vs KLAL+NTP", () => {
  const input = controlsInput();
  const lines = verdictLines(summarize(input));
  assert(lines.length === 3, `three verdicts: ${lines.join("\n")}`);
  assertIncludes(lines[0], "KLAL+NTP vs NTP: +35.0 points (paired t-test over 2 seeds", "head");
  // Diffs 30, 40: p = 1 - 2/pi atan(7); Holm over three tests: three times the smallest p.
  const p = pairP(30, 40);
  assertIncludes(
    lines[0],
    `p=${p.toFixed(3)}, Holm p=${(3 * p).toFixed(3)} over 3 tests`,
    "Holm p beside the raw p",
  );
  assertIncludes(
    lines[0],
    'NTP is exactly at the fixed-answer floor (50.0%, always "1"), so NTP has not left its ' +
      "prior: the comparison measures getting off the prior.",
    "NTP at the floor",
  );
  // Seeds crossed with the 10 items: the interval reaches 0 (the items, not only the seeds,
  // are a sample).
  assertIncludes(
    lines[0],
    "Paired bootstrap over seeds and test items: 95% interval [0.0, +",
    "boot",
  );
  assertIncludes(lines[1], "KLAL+NTP vs shuffled-map control (shuffled): +25.0 points", "ctl");
  assertIncludes(lines[2], "KLAL+NTP vs pointer-head control (pointer): +30.0 points", "ptr");
  for (const line of lines.slice(1)) {
    assert(
      /directing attention to the target matters here|cannot tell directing attention/.test(line),
      `a control verdict says what it shows: ${line}`,
    );
  }
  // The shuffled control is 10.0 points above the floor: not at it. The pointer's 55.0 is
  // 5.0 above: not at it either (the margin is 2 points).
  assert(!lines[1].includes("The control is at"), lines[1]);
});

Deno.test("verdict wording rules at the floor, hand-built", () => {
  const withFloor = (accuracy: number) => {
    const input = fakeInput(KLAL_WINS); // NTP 45, KLAL+NTP 62 (means)
    input.floors = { "grid-patch": { answer: "0 , 0", accuracy, kind: "majority" } };
    return verdictLines(summarize(input))[0];
  };
  // Floor 61: NTP below it, KLAL+NTP within 2 points: neither has left the prior.
  const both = withFloor(61);
  assertIncludes(
    both,
    'NTP is 16.0 points below the fixed-answer floor (61.0%, always "0 , 0"), so NTP has ' +
      "not left its prior: the comparison measures getting off the prior.",
    "NTP below the floor",
  );
  assertIncludes(
    both,
    "KLAL+NTP is 1.0 points above the floor: it has not left its prior either",
    "",
  );
  // Floor 50: NTP at it, KLAL+NTP well above: its gain is also stated from the floor.
  const fromFloor = withFloor(50);
  assertIncludes(
    fromFloor,
    "From the larger of the floor and NTP (the floor), KLAL+NTP is +12.0 points.",
    "from the floor",
  );
  // Floor 10: NTP well above it; no claim about a prior.
  const above = withFloor(10);
  assertIncludes(
    above,
    'NTP is 35.0 points above the fixed-answer floor (10.0%, always "0 , 0").',
    "",
  );
  assert(!above.includes("prior"), above);
  // No floor recorded: the verdict as before.
  assert(!verdictLines(summarize(fakeInput(KLAL_WINS)))[0].includes("floor"), "no floor");
});

Deno.test("shortcut floor: claims against the larger of it and the fixed-answer floor", async () => {
  const input = fakeInput(KLAL_WINS); // NTP 45, KLAL+NTP 62 (means)
  input.floors = {
    "grid-patch": {
      answer: "0 , 0",
      accuracy: 10,
      kind: "majority",
      shortcut: { rule: "a rule", accuracy: 46 },
      questionBlind: { ink: 3.25 },
    },
  };
  const verdict = verdictLines(summarize(input))[0];
  // NTP 45 is 1 point below the shortcut's 46: at the floor (within 2), whatever the
  // fixed-answer floor says; KLAL+NTP's 62 is stated from the shortcut floor.
  assertIncludes(
    verdict,
    "NTP is 1.0 points below the shortcut floor (46.0%, answering from a rule; fixed-answer " +
      'floor (10.0%, always "0 , 0") is lower), so NTP has not left its prior',
    "NTP against the shortcut floor",
  );
  assertIncludes(
    verdict,
    "From the larger of the floor and NTP (the floor), KLAL+NTP is +16.0 points.",
    "from the shortcut floor",
  );
  await withWrittenReport(input, ({ results, md }) => {
    const row = results.table1.find((r: { task: string }) => r.task === "grid-patch");
    assert(row.shortcut.rule === "a rule" && row.shortcut.accuracy === 46, "table1[].shortcut");
    assert(row.cells[1] === '10.0 (always "0 , 0"); shortcut 46.0 (a rule)', row.cells[1]);
    const task = results.tasks.find((t: { task: string }) => t.task === "grid-patch");
    assert(task.questionBlind.ink === 3.25, "tasks[].questionBlind");
    assertIncludes(md, "| Shortcut floor (a rule) | 46.0 |", "shortcut row");
    assertIncludes(
      md,
      "| Question-blind: uniform over patches with ink | – | – | 3.250 | 3.250 |",
      "question-blind row",
    );
  });
});

Deno.test("a task's own measures (mean IoU) reach the task's notes and results.json", async () => {
  const input = fakeInput(KLAL_WINS);
  for (const [arm, values] of [["ntp", [0.2, 0.4]], ["klal", [0.5, 0.7]]] as const) {
    values.forEach((value, seed) =>
      input.rows.push({ task: "grid-patch", arm, seed, metric: "iou", value })
    );
  }
  await withWrittenReport(input, ({ results, md }) => {
    const arms = results.tasks[0].arms;
    const klal = arms.find((a: { arm: string }) => a.arm === "klal");
    assert(Math.abs(klal.task_metrics.iou - 0.6) < 1e-12, JSON.stringify(klal.task_metrics));
    assert(
      Object.keys(arms.find((a: { arm: string }) => a.arm === "base").task_metrics).length === 0,
      "base",
    );
    assertIncludes(md, "The task's own measures, mean over seeds: ", "measures line");
    assertIncludes(md, "iou 0.300", "NTP's mean IoU");
    assertIncludes(md, "iou 0.600", "KLAL+NTP's mean IoU");
  });
});

Deno.test("results.json: floors, McNemar per seed, confusion counts, attention measures", async () => {
  const input = controlsInput();
  await withWrittenReport(input, ({ results, html }) => {
    assert(
      JSON.stringify(results.floors) ===
        '{"line-intersection":{"answer":"1","accuracy":50,"kind":"majority"}}',
      `floors: ${JSON.stringify(results.floors)}`,
    );
    const row = results.table1.find((r: { task: string }) => r.task === "line-intersection");
    assert(row.floor.accuracy === 50 && row.controls.length === 2, "Table 1 floor and controls");
    assert(row.controls[0].control === "shuffled maps" && row.controls[0].mean === 60, "control");
    assert(row.gain.pHolm > row.gain.p && row.gain.bootstrap.resamples === 2000, "gain stats");
    // McNemar, KLAL vs NTP on the same items. s0: KLAL alone right on 0, 4, 5, 9 and NTP
    // alone on 2: p = 2 (1 + 5) / 2^5 = 0.375. s1: KLAL alone on 0, 5, 7, 9: p = 2 / 2^4.
    const mcnemar = results.statistics.mcnemar.filter((m: { arms: string[] }) =>
      m.arms[1] === "ntp"
    );
    assert(
      JSON.stringify(mcnemar) === JSON.stringify([
        {
          task: "line-intersection",
          kind: "ntp",
          arms: ["klal", "ntp"],
          seed: 0,
          n: 10,
          onlyA: 4,
          onlyB: 1,
          p: 0.375,
        },
        {
          task: "line-intersection",
          kind: "ntp",
          arms: ["klal", "ntp"],
          seed: 1,
          n: 10,
          onlyA: 4,
          onlyB: 0,
          p: 0.125,
        },
      ]),
      `mcnemar: ${JSON.stringify(mcnemar)}`,
    );
    // vs the shuffled control (right on NTP's items and item 0): s0 KLAL alone on 4, 5, 9.
    const shuffled = results.statistics.mcnemar.find((m: { arms: string[]; seed: number }) =>
      m.arms[1] === "shuffled" && m.seed === 0
    );
    assert(
      shuffled.onlyA === 3 && shuffled.onlyB === 1,
      `vs shuffled: ${JSON.stringify(shuffled)}`,
    );
    // Holm: one family of the three comparisons, raw and adjusted both kept.
    const comparisons = results.statistics.comparisons;
    assert(comparisons.length === 3 && results.statistics.holm.tests === 3, "family of three");
    for (const c of comparisons) assert(c.pHolm >= c.p, `${c.arms}: Holm p ≥ p`);
    // Confusion, pooled over both seeds: truth rows 0, 1, 2; columns 0, 1, 2, other.
    const confusion = (arm: string) =>
      results.statistics.confusion.find((c: { arm: string }) => c.arm === arm);
    assert(
      JSON.stringify(confusion("klal").classes) === '["0","1","2","other"]',
      `classes: ${JSON.stringify(confusion("klal").classes)}`,
    );
    assert(
      JSON.stringify(confusion("klal").matrix) === "[[6,0,0,0],[0,9,1,0],[1,1,2,0]]",
      `klal: ${JSON.stringify(confusion("klal").matrix)}`,
    );
    assert(
      JSON.stringify(confusion("pointer").matrix) === "[[1,3,0,2],[0,10,0,0],[0,4,0,0]]",
      `pointer: ${JSON.stringify(confusion("pointer").matrix)}`,
    );
    assert(JSON.stringify(confusion("ntp").matrix) === "[[0,6,0,0],[0,10,0,0],[0,4,0,0]]", "ntp");
    // Attention measures per arm (means over seeds) and in the raw rows.
    const task = results.tasks.find((t: { task: string }) => t.task === "line-intersection");
    const klal = task.arms.find((a: { arm: string }) => a.arm === "klal");
    assert(
      klal.target_attention_ratio === 6 && klal.target_attention_ratio_first === 4.5 &&
        klal.visual_share === 0.6 && klal.visual_share_first === 0.55,
      `klal measures: ${JSON.stringify(klal)}`,
    );
    assert(task.arms.find((a: { arm: string }) => a.arm === "ntp").atFloor === true, "at floor");
    assert(klal.atFloor === false, "KLAL is off the floor");
    assert(
      results.rows.some((r: ResultRow) => r.metric === "target_attention_ratio_first"),
      "raw rows keep the first-position ratio",
    );
    // The HTML: the floor column, a confusion table per arm, the first-position ratio.
    assertIncludes(html, "Floor (fixed answer)", "floor column");
    assert(html.split('class="compact confusion"').length - 1 === 4, "one confusion table per arm");
    assertIncludes(html, "at the first answer position: NTP (ntp) 0.900", "attention line");
    // The accuracy chart marks the floor with a rule at 50.
    const chart = chartSpecs(input)["accuracy:line-intersection"] as {
      layer: { mark: { type: string }; data: { values: { floor?: number }[] } }[];
    };
    assert(
      chart.layer.some((l) => l.mark.type === "rule" && l.data.values[0]?.floor === 50),
      "a rule at the floor",
    );
  });
});

Deno.test("stand-ins are named as stand-ins in every table and chart", () => {
  for (
    const [task, standIn, real] of [
      ["refcoco", "RefCOCO stand-in (synthetic scenes)", "RefCOCO (val)"],
      ["pixmo-points", "PixMo-Points stand-in (synthetic scenes)", "PixMo-Points"],
    ]
  ) {
    const input = onTask(fakeInput(KLAL_WINS), task);
    const md = renderTableMarkdown(input);
    assertIncludes(md, `| ${standIn} |`, `${task}: Table 1 label`);
    assertIncludes(md, `## ${standIn} (${task})`, `${task}: section heading`);
    assert(!md.includes(`| ${real} |`), `${task}: the real dataset's label is not ours`);
    const charts = reportCharts(input);
    const accuracy = charts.find((c) => c.key === `accuracy:${task}`)!;
    assertIncludes(JSON.stringify(accuracy.spec), `Grounding accuracy: ${standIn}`, "chart");
    assertIncludes(accuracy.caption, standIn, `${task}: caption`);
    // With the dataset's own test files, the poster's label.
    input.spec.task.source = {
      test: { path: "/data/x", images: "/data/img", split: "val", extra: {} },
    } as unknown as Spec["task"]["source"];
    assertIncludes(renderTableMarkdown(input), `| ${real} |`, `${task}: real data`);
  }
});

Deno.test("sweep report: item outcomes travel with their arms; a floor only where points agree", () => {
  const point = (name: string, floor: number) => {
    const input = controlsInput();
    input.spec.name = name;
    input.floors = { "line-intersection": { answer: "1", accuracy: floor, kind: "majority" } };
    return { spec: input.spec, input };
  };
  const same = combineSweepInputs([point("s--a", 50), point("s--b", 50)]);
  assert(same.floors!["line-intersection"]?.accuracy === 50, "the shared floor is kept");
  assert(same.items!.some((set) => set.arm === "klal@b"), "items renamed like rows");
  const differ = combineSweepInputs([point("s--a", 50), point("s--b", 40), point("s--c", 50)]);
  assert(!("line-intersection" in differ.floors!), "points disagree: no one floor");
});
