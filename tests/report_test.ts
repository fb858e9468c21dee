import * as vega from "vega";
import * as vegaLite from "vega-lite";
import {
  chartSpecs,
  type CurvePoint,
  debiasedEma,
  escapeHtml,
  inlineScriptSource,
  jsonForScript,
  paperColumn,
  POSTER_TABLE1,
  renderTableMarkdown,
  type ReportInput,
  type ResultRow,
  writeReport,
} from "../pipeline/report.ts";
import type { Spec } from "../pipeline/spec_types.ts";

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function assertIncludes(text: string, part: string, what: string) {
  assert(text.includes(part), `${what}: expected to contain ${JSON.stringify(part)}`);
}

const HOSTILE = "<img src=x onerror=alert(1)>";

function fakeSpec(): Spec {
  return {
    name: "grid-patch-test",
    description: `Fake run ${HOSTILE} & "quotes"`,
    seeds: [0, 1],
    backend: "wasm",
    task: { name: "grid-patch", image_size: 32, train: 200, test: 50, test_seed: 999, params: {} },
    model: {
      name: "tiny-vlm",
      patch_size: 8,
      d_model: 64,
      layers: 2,
      heads: 4,
      mlp_ratio: 4,
      position_std: 0.1,
    },
    base: { steps: 100, batch_size: 16, lr: 1e-3, train: 500, seed: 7 },
    train: {
      steps: 40,
      batch_size: 16,
      lr: 1e-3,
      optimizer: "adamw",
      weight_decay: 0.01,
      warmup: 5,
      log_every: 10,
      eval_every: 0,
      eval_samples: 0,
      checkpoint_every: 0,
    },
    eval: { batch_size: 64 },
    arms: {
      base: { finetune: false, lambda: 0, layers: "all" },
      ntp: { finetune: true, lambda: 0, layers: "all" },
      klal: { finetune: true, lambda: 1, layers: "all" },
    },
  };
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
  assertIncludes(md, "| NTP (ntp) | 45.0 ± 63.5 (n=2) | 1.100 | 28.6 |", "NTP row");
  // KLAL 60, 64: mean 62.0, half-width 12.706 * 2 = 25.41
  assertIncludes(md, "| KLAL+NTP (klal) | 62.0 ± 25.4 (n=2) | 8.500 | 44.9 |", "KLAL row");
  assertIncludes(md, "| Base (base) | 6.0 ± 12.7 (n=2) | 0.900 | 6.1 |", "Base row");
  // diffs 20, 14: mean 17, s = sqrt(18), t = 17 / 3 = 5.667, dof 1: p = 1 - 2/pi atan(5.667)
  const p = 1 - 2 / Math.PI * Math.atan(17 / 3);
  assertIncludes(
    md,
    `KLAL+NTP vs NTP: +17.0 points (paired t-test over 2 seeds, p=${p.toFixed(3)}`,
    "verdict",
  );
  assertIncludes(md, "not significant at the 5% level", "honest caveat with p > 0.05");
  const perArm = md.slice(md.indexOf("## grid-patch (poster"));
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
  input.spec.arms.klal_l0 = { finetune: true, lambda: 2, layers: [0] };
  input.rows.push(
    { task: "grid-patch", arm: "klal_l0", seed: 0, metric: "accuracy", value: 30 },
    { task: "grid-patch", arm: "klal_l0", seed: 1, metric: "accuracy", value: 70 },
  );
  assert(paperColumn(input.spec, "base") === "Base", "base");
  assert(paperColumn(input.spec, "ntp") === "NTP", "ntp");
  assert(paperColumn(input.spec, "klal_l0") === "KLAL+NTP", "klal_l0");
  assert(paperColumn(input.spec, "mystery") === "other", "unknown arm");
  const md = renderTableMarkdown(input);
  assertIncludes(md, "| KLAL+NTP (klal_l0) | 50.0 ± 254.1 (n=2) | – | 44.9 |", "second KLAL row");
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
  const root = await Deno.makeTempDir();
  try {
    await writeReport(root + "/r", fakeInput(KLAL_WINS));
    const html = await Deno.readTextFile(`${root}/r/index.html`);
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
  } finally {
    await Deno.remove(root, { recursive: true });
  }
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
  const root = await Deno.makeTempDir();
  try {
    await writeReport(root + "/r", fakeInput(KLAL_WINS));
    const html = await Deno.readTextFile(`${root}/r/index.html`);
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
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
