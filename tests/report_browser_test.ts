/**
 * The report in a real browser: headless Chromium (Debian's `chromium`), network off, opens
 * index.html of a small but complete report, and checks that every chart drew, that the
 * explorer's controls redraw it, and that the console stayed free of errors. Skipped, with a
 * message, where /usr/bin/chromium is absent (`.ci/run` installs it).
 */
import assert from "node:assert/strict";
import { createCanvas } from "@napi-rs/canvas";
import { chromium } from "playwright-core";
import {
  chartSpecs,
  type FigureSet,
  type ReportInput,
  type ResultRow,
  writeReport,
} from "../pipeline/report/mod.ts";
import type { Spec } from "../pipeline/spec/types.ts";
import { focusedMap, reportSpec } from "./report_fixtures.ts";
import { armSpec } from "./spec_fixtures.ts";

const CHROMIUM = "/usr/bin/chromium";
// Only the browser has a DOM: functions passed to page.evaluate run there, not here.
// deno-lint-ignore no-explicit-any
const document: any = undefined;
const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
if (!hasChromium) {
  console.warn(`report_browser_test: ${CHROMIUM} not found, skipping (apt-get install chromium)`);
}

/** The report spec with a λ sweep, a layer ablation and a shuffled-map control. */
function spec(): Spec {
  return reportSpec({
    name: "browser-test",
    description: "every chart of the report, on made-up but consistent numbers",
    arms: {
      base: armSpec({ finetune: false }),
      ntp: armSpec(),
      klal: armSpec({ lambda: 1 }),
      klal_l2: armSpec({ lambda: 2 }),
      klal_first: armSpec({ lambda: 1, layers: [0] }),
      shuffled: armSpec({ lambda: 1, target: "shuffled" }),
    },
  });
}

/** A 32 px image: grey noise with one coloured square on the target cell. */
function image(cell: number): string {
  const canvas = createCanvas(32, 32);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#eeeeee";
  ctx.fillRect(0, 0, 32, 32);
  ctx.fillStyle = "#2255dd";
  ctx.fillRect((cell % 4) * 8 + 1, Math.floor(cell / 4) * 8 + 1, 6, 6);
  return canvas.toDataURL("image/png");
}

/** A complete report input: every optional part filled, numbers consistent with each other. */
export function richInput(): ReportInput {
  const s = spec();
  const focus: Record<string, number> = {
    base: 0.06,
    ntp: 0.08,
    klal: 0.7,
    klal_l2: 0.8,
    klal_first: 0.4,
    shuffled: 0.1,
  };
  // Multiples of 2.5: whole numbers of the 40 test items.
  const accuracy: Record<string, number[]> = {
    base: [5],
    ntp: [20, 30],
    klal: [55, 60],
    klal_l2: [57.5, 65],
    klal_first: [35, 40],
    shuffled: [25, 32.5],
  };
  const rows: ResultRow[] = [];
  const figures: FigureSet[] = [];
  const input: ReportInput = {
    spec: s,
    rows,
    curves: [],
    stages: [
      { stage: "data:grid-patch:test:s999", key: "a".repeat(64), status: "cached", seconds: 0.2 },
      {
        stage: "finetune:klal:s0",
        key: "b".repeat(64),
        status: "ran",
        seconds: 3.5,
        samplesPerSecond: 91.4,
      },
    ],
    backend: "wasm",
    createdAt: "2026-01-02T03:04:05.000Z",
    learning: [],
    figures,
    heads: [],
    breakdown: [],
    // The most common of the 40 answers (cells 0-7 three times each) is "0 , 0": 3 of 40.
    floors: { "grid-patch": { answer: "0 , 0", accuracy: 7.5, kind: "majority" } },
    items: [],
  };
  for (const [arm, values] of Object.entries(accuracy)) {
    values.forEach((value, i) => {
      const seed = arm === "base" ? 0 : i;
      const mass = focus[arm];
      const push = (metric: string, v: number) =>
        rows.push({ task: "grid-patch", arm, seed, metric, value: v });
      push("accuracy", value);
      push("target_attention", mass);
      push("target_attention_ratio", mass * 16);
      push("target_attention_ratio_first", mass * 16 * 0.9);
      push("visual_share", 0.5 + mass / 4);
      push("visual_share_first", 0.45 + mass / 4);
      // The first `value`% of the 40 items right, the rest answered "4 , 4" (no such cell).
      const right = Math.round(value * 40 / 100);
      input.items!.push({
        task: "grid-patch",
        arm,
        seed,
        items: Array.from({ length: 40 }, (_, index) => {
          const cell = index % 16;
          const answer = `${Math.floor(cell / 4)} , ${cell % 4}`;
          const prediction = index < right ? answer : "4 , 4";
          return { index, answer, prediction, correct: prediction === answer };
        }),
      });
      for (let layer = 0; layer < 2; layer++) {
        push(`target_attention_ratio@L${layer}`, mass * 16 * (layer === 0 ? 0.8 : 1.2));
        for (let head = 0; head < 2; head++) {
          input.heads!.push({ arm, seed, layer, head, mass: mass * (head === 0 ? 0.9 : 1.1) });
        }
      }
      input.breakdown!.push(
        { arm, seed, difficulty: "1 patches", correct: Math.round(value / 5), n: 20 },
        { arm, seed, difficulty: "2 patches", correct: Math.round(value / 10), n: 20 },
      );
      const samples = [3, 9, 12].map((cell, index) => {
        const m = focusedMap(cell, mass);
        return {
          index,
          prompt: "where is the blue patch ?",
          answer: `${Math.floor(cell / 4)} , ${cell % 4}`,
          prediction: index < 2 && mass > 0.5 ? `${Math.floor(cell / 4)} , ${cell % 4}` : "0 , 0",
          correct: index < 2 && mass > 0.5,
          image: image(cell),
          target: focusedMap(cell, 1),
          layers: [m, m],
          heads: [[m, m], [m, m]],
        };
      });
      figures.push({ arm, seed, gridSide: 4, samples });
      if (arm === "base") return;
      for (let step = 10; step <= 40; step += 10) {
        const ntp = 2 / step + 0.1 * seed;
        const klal = arm === "ntp" ? 2.7 : 1.5 / step;
        input.curves.push({ arm, seed, step, ntp, klal, total: ntp + s.arms[arm].lambda * klal });
        input.learning!.push({
          arm,
          seed,
          step,
          accuracy: value * step / 40,
          targetAttention: mass * step / 40,
          targetAttentionRatio: 16 * mass * step / 40,
        });
      }
    });
  }
  return input;
}

Deno.test({
  name: "report renders every chart in headless Chromium, offline, without console errors",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const input = richInput();
    const keys = Object.keys(chartSpecs(input));
    for (
      const expected of [
        "accuracy:grid-patch",
        "attention_layers:grid-patch",
        "heads",
        "attention_figures",
        "explorer",
        "loss",
        "learning",
        "breakdown",
        "lambda_sweep:grid-patch",
        "layer_ablation:grid-patch",
      ]
    ) assert.ok(keys.includes(expected), `chart ${expected} among ${keys.join(", ")}`);

    const root = await Deno.makeTempDir({ prefix: "klal-browser-" });
    const context = await chromium.launchPersistentContext(`${root}/profile`, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1200, height: 900 },
    });
    try {
      await writeReport(`${root}/report`, input);
      const page = await context.newPage();
      const errors: string[] = [];
      const blocked: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.route("**/*", (route) => {
        const url = route.request().url();
        if (url.startsWith("file:") || url.startsWith("data:")) return route.continue();
        blocked.push(url);
        return route.abort();
      });
      await page.goto(`file://${root}/report/index.html`);
      await page.waitForFunction(
        (n) => document.querySelectorAll("figure[data-chart][data-rendered]").length >= n,
        keys.length,
        { timeout: 20_000 },
      ).catch(() => {});
      const drawn = await page.evaluate(() =>
        // deno-lint-ignore no-explicit-any
        [...document.querySelectorAll("figure[data-chart]")].map((f: any) => ({
          key: f.getAttribute("data-chart"),
          rendered: f.getAttribute("data-rendered") === "true",
          svgs: f.querySelectorAll(".live svg").length,
          marks: f.querySelectorAll(".live svg [class*='mark-']").length,
          images: f.querySelectorAll(".live svg image").length,
          fallbackHidden: f.querySelector(".fallback").style.display === "none",
        }))
      );
      assert.deepEqual(drawn.map((d) => d.key).sort(), [...keys].sort(), "one figure per chart");
      for (const d of drawn) {
        assert.ok(d.rendered && d.svgs > 0, `${d.key}: vega-embed drew an SVG`);
        assert.ok(d.marks > 2, `${d.key}: ${d.marks} mark groups`);
        assert.ok(d.fallbackHidden, `${d.key}: the static fallback made way`);
      }
      for (const key of ["attention_figures", "explorer"]) {
        const d = drawn.find((x) => x.key === key)!;
        assert.ok(d.images > 0, `${key}: the input images are drawn`);
      }

      // The explorer redraws when a control changes: layer 1, head 1 of the NTP arm.
      const explorer = page.locator('figure[data-chart="explorer"] .live svg');
      const before = await explorer.innerHTML();
      const selects = page.locator('figure[data-chart="explorer"] select');
      assert.ok((await selects.count()) >= 4, "sample, model, layer and head controls");
      await page.selectOption('figure[data-chart="explorer"] select[name="explore_model"]', {
        value: "ntp@0",
      });
      await page.selectOption('figure[data-chart="explorer"] select[name="explore_layer"]', {
        value: "1",
      });
      await page.waitForTimeout(200);
      const after = await explorer.innerHTML();
      assert.notEqual(after, before, "the explorer redrew for the new choice");
      assert.ok(after.includes("ntp") || after.includes("NTP"), "it shows the chosen model");

      const tables = await page.evaluate(() =>
        ["table1", "table2"].map((id) => document.getElementById(id)?.querySelectorAll("tr").length)
      );
      assert.ok(tables[0]! >= 7 && tables[1]! >= 7, `Table 1 and 2 rows: ${tables}`);
      // The floor drawn in the accuracy chart, and the control listed in Table 1.
      const floorText = await page.locator(
        'figure[data-chart="accuracy:grid-patch"] .live svg',
      ).innerHTML();
      assert.ok(floorText.includes("fixed-answer floor 7.5%"), "the floor's rule is labelled");
      const table1Text = await page.locator("#table1").innerText();
      assert.ok(table1Text.includes("Floor (fixed answer)"), "Table 1 has the floor column");
      assert.ok(table1Text.includes("shuffled maps (shuffled)"), "Table 1 lists the control");
      assert.deepEqual(blocked, [], "the report asked for nothing over the network");
      assert.deepEqual(errors, [], "no console errors");
      const screenshot = Deno.env.get("KLAL_REPORT_SCREENSHOT");
      if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    } finally {
      await context.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});
