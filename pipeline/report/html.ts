/**
 * index.html: one offline page (vega, vega-lite and vega-embed inlined) with the tables, every
 * chart pre-rendered as SVG for readers without JavaScript and made interactive when the
 * bundles load, and the run itself (stages, cache keys, the resolved spec).
 */

import { describeBases } from "../spec/bases.ts";
import { pathOf, projectUrl } from "../lib/paths.ts";
import { backendWithReason, confusionCells, NOT_RUN, setupLine } from "./cells.ts";
import {
  BASE_SKILLS_NOTE,
  BASE_SKILLS_TITLE,
  STAND_IN_NOTE,
  TABLE1_NOTE,
  taskHeading,
  TEST_SET_NOTE,
} from "./markdown.ts";
import { posterRow } from "./poster.ts";
import type { ChartSection, ReportChart } from "./registry.ts";
import {
  learningSummary,
  summarize,
  table1,
  type Table1Row,
  type Table2Ours,
  table2Ours,
  testSetSummaries,
  verdictLines,
} from "./summary.ts";
import * as tables from "./tables.ts";
import type { ReportInput, StageInfo } from "./types.ts";
import { figureName } from "./render.ts";

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

/** The browser bundles the page inlines, by package. */
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
  urls.push(projectUrl(`node_modules/${pkg}/build/${file}`));
  return urls;
}

let bundleCache: Promise<{ file: string; code: string }[]> | undefined;

/** The three minified bundles' sources; throws naming the missing file and the fix. */
export function loadBundles(): Promise<{ file: string; code: string }[]> {
  bundleCache ??= Promise.all(BUNDLES.map(async ({ pkg, file }) => {
    const tried: string[] = [];
    for (const url of bundleUrls(pkg, file)) {
      try {
        return { file, code: await Deno.readTextFile(url) };
      } catch {
        tried.push(pathOf(url));
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

/** The page's stylesheet (also used by reports/index.html). */
export const CSS = `
:root { --fg: #1d2330; --muted: #5d6677; --line: #e3e6eb; --accent: #b6372f; --bg: #fafbfc; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 60px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header .desc { margin: 4px 0 8px; font-size: 16px; }
.meta { color: var(--muted); font-size: 13px; }
nav.toc { font-size: 13px; margin: 10px 0 0; color: var(--muted); }
nav.toc a { color: var(--fg); margin-right: 12px; white-space: nowrap; }
h2 { margin: 36px 0 10px; font-size: 19px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { margin: 22px 0 8px; font-size: 16px; }
.headline { background: white; border: 1px solid var(--line); border-left: 4px solid var(--accent);
  padding: 10px 16px; margin: 18px 0; border-radius: 4px; }
.headline p { margin: 6px 0; font-weight: 600; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; background: white; border: 1px solid var(--line); font-size: 14px; }
th, td { padding: 6px 12px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f4f7; font-weight: 600; }
th.group { text-align: center; border-left: 1px solid var(--line); }
td.num, th.num { font-variant-numeric: tabular-nums; }
td.split, th.split { border-left: 1px solid var(--line); }
td.notrun { color: var(--muted); font-style: italic; }
tr.quoted td { color: var(--muted); }
tr.ours td { font-weight: 600; }
table.compact { font-size: 13px; }
table.compact th, table.compact td { padding: 5px 9px; }
h4 { margin: 16px 0 6px; font-size: 14px; }
.confusions { display: flex; flex-wrap: wrap; gap: 8px 20px; }
.confusions p { margin: 4px 0; }
#table1 td.num { white-space: normal; min-width: 8.5em; }
.verdict { font-weight: 600; }
.note { color: var(--muted); }
figure { margin: 18px 0; background: white; border: 1px solid var(--line); border-radius: 4px;
  padding: 12px; overflow-x: auto; }
figure .fallback svg { max-width: 100%; height: auto; }
figcaption a { color: var(--muted); }
.vega-bindings { display: flex; flex-wrap: wrap; gap: 6px 18px; margin-top: 10px; font-size: 13px; }
.vega-bind-name { color: var(--muted); }
pre { background: white; border: 1px solid var(--line); padding: 12px; overflow-x: auto;
  font-size: 12.5px; line-height: 1.4; border-radius: 4px; }
code { font-size: 13px; }
details summary { cursor: pointer; font-weight: 600; margin: 14px 0 6px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; }
`;

// Replaces each pre-rendered SVG with an interactive view when the bundles load.
const BOOT = `
(function () {
  var specs = JSON.parse(document.getElementById("chart-specs").textContent);
  if (typeof vegaEmbed !== "function") return;
  document.querySelectorAll("figure[data-chart]").forEach(function (figure) {
    var key = figure.getAttribute("data-chart");
    var target = figure.querySelector(".live");
    var fallback = figure.querySelector(".fallback");
    if (!target || !specs[key]) return;
    vegaEmbed(target, specs[key], { mode: "vega-lite", renderer: "svg", actions: false })
      .then(function () {
        if (fallback) fallback.style.display = "none";
        figure.setAttribute("data-rendered", "true");
      })
      .catch(function (err) { target.textContent = ""; console.error(key, err); });
  });
})();
`;

function htmlTable({ headers, rows }: tables.TextTable, numericFrom = 1, cls = ""): string {
  const cellClass = (i: number) => (i >= numericFrom ? ' class="num"' : "");
  const head = headers.map((h, i) => `<th${cellClass(i)}>${escapeHtml(h)}</th>`).join("");
  const body = rows.map((r) =>
    `<tr>${r.map((c, i) => `<td${cellClass(i)}>${escapeHtml(c)}</td>`).join("")}</tr>`
  ).join("\n");
  return `<div class="scroll"><table${cls ? ` class="${cls}"` : ""}>\n<thead><tr>${head}</tr>` +
    `</thead>\n<tbody>\n${body}\n</tbody>\n</table></div>`;
}

/** Table 1 with grouped headers: ours (floor, arms, gain, controls) and the poster's. */
function table1Html(rows: Table1Row[]): string {
  const { headers, rows: cellRows } = tables.table1(rows);
  // Where the poster's columns begin.
  const posterFrom = headers.indexOf("Base (poster)");
  const sub = headers.slice(1).map((h) => h.replace(/ \((ours|poster)\)$/, ""))
    .map((h) => h.replace(" (ours, paired t)", " (paired t)"));
  const head = `<tr><th rowspan="2">Task</th>` +
    `<th class="group" colspan="${posterFrom - 1}">Ours: tiny VLM, mean ± 95% CI (n seeds)` +
    "</th>" +
    `<th class="group" colspan="${headers.length - posterFrom}">Poster: Qwen 2.5-VL</th></tr>\n` +
    "<tr>" +
    sub.map((h, i) =>
      `<th class="num${i === 0 || i + 1 === posterFrom ? " split" : ""}">${escapeHtml(h)}</th>`
    ).join("") + "</tr>";
  const body = cellRows.map((cells, r) => {
    return `<tr data-task="${escapeHtml(rows[r].task)}">` + cells.map((c, i) => {
      const classes = [
        i > 0 ? "num" : "",
        i === 1 || i === posterFrom ? "split" : "",
        c === NOT_RUN ? "notrun" : "",
      ].filter(Boolean).join(" ");
      return `<td${classes ? ` class="${classes}"` : ""}>${escapeHtml(c)}</td>`;
    }).join("") + "</tr>";
  }).join("\n");
  return `<div class="scroll"><table class="compact" id="table1">\n<thead>${head}</thead>\n` +
    `<tbody>\n${body}\n</tbody>\n</table></div>`;
}

function table2Html(ours: Table2Ours): string {
  const { headers, rows } = tables.table2(ours);
  const head = headers.map((h, i) =>
    `<th${i > 0 && i < 3 ? ' class="num"' : ""}>${escapeHtml(h)}</th>`
  ).join("");
  const body = rows.map((r, row) =>
    `<tr class="${row === 0 ? "ours" : "quoted"}">${
      r.map((c, i) =>
        `<td class="${
          [i > 0 && i < 3 ? "num" : "", c === NOT_RUN ? "notrun" : ""].join(" ").trim()
        }">${escapeHtml(c)}</td>`
      ).join("")
    }</tr>`
  ).join("\n");
  return `<div class="scroll"><table class="compact" id="table2">\n<thead><tr>${head}</tr>` +
    `</thead>\n<tbody>\n${body}\n</tbody>\n</table></div>`;
}

/** One chart as a figure: the live view, the pre-rendered SVG, the caption and file links. */
function figureHtml(chart: ReportChart, svg: string | undefined): string {
  const name = figureName(chart.key);
  return [
    `<figure id="fig-${escapeHtml(name)}" data-chart="${escapeHtml(chart.key)}">`,
    `<div class="live"></div>`,
    `<div class="fallback">${svg ?? ""}</div>`,
    `<figcaption class="note">${escapeHtml(chart.caption)} ` +
    `<a href="figures/${escapeHtml(name)}.svg">SVG</a> · ` +
    `<a href="figures/${escapeHtml(name)}.png">PNG</a></figcaption>`,
    "</figure>",
  ].join("\n");
}

/** The title of each section that holds charts (a new section needs its title here). */
const SECTION_TITLES: Readonly<Record<ChartSection, string>> = {
  results: "Results",
  observation: "Where the answer looks: the poster's empirical observation",
  maps: "Attention maps",
  training: "Training",
  breakdowns: "Breakdowns and sweeps",
};

/** Wall time of the stages that ran and of all stages (as cached entries recorded it). */
function wallTimes(stages: StageInfo[]): string {
  const ran = stages.filter((s) => s.status === "ran");
  const total = stages.reduce((sum, s) => sum + s.seconds, 0);
  const ranSeconds = ran.reduce((sum, s) => sum + s.seconds, 0);
  return `${stages.length} stages: ${ran.length} ran this time (${ranSeconds.toFixed(1)} s), ` +
    `${stages.length - ran.length} came from the cache; ${
      total.toFixed(1)
    } s of stage time in all (cached stages count the time they took when they ran).`;
}

/**
 * The whole offline index.html. `charts` are the registry's charts in page order, `svgs` their
 * pre-rendered SVGs by key.
 */
export function renderHtml(
  input: ReportInput,
  charts: ReportChart[],
  svgs: Record<string, string>,
  bundles: { file: string; code: string }[],
): string {
  const { spec } = input;
  const summaries = summarize(input);
  const verdicts = verdictLines(summaries);
  const rows1 = table1(input, summaries);
  const learning = learningSummary(input);
  const figures = (section: ChartSection) =>
    charts.filter((c) => c.entry.section === section).map((c) => figureHtml(c, svgs[c.key]));
  const sections: { id: string; title: string; html: string[] }[] = [];

  const results: string[] = [
    `<p>${escapeHtml(setupLine(input))}</p>`,
    "<h3>Table 1: grounding accuracy %, ours beside the poster's</h3>",
    table1Html(rows1),
    `<p class="note">${escapeHtml(TABLE1_NOTE)} Poster: Qwen 2.5-VL, Table 1.</p>`,
    ...figures("results"),
    "<h3>Table 2: Line Intersection and Line Tracing, accuracy %</h3>",
    table2Html(table2Ours(rows1)),
    '<p class="note">Every row but ours is quoted from the poster&#39;s Table 2: reported in ' +
    "the paper, not run here.</p>",
  ];
  for (const s of [...summaries, ...testSetSummaries(input)]) {
    const poster = posterRow(s.task);
    results.push(
      `<h3>Every arm: ${escapeHtml(taskHeading(s))}</h3>`,
      htmlTable(tables.arms(s)),
    );
    if (s.testSet) results.push(`<p class="note">${escapeHtml(TEST_SET_NOTE)}</p>`);
    else if (!poster) results.push('<p class="note">The poster has no number for this task.</p>');
    if (s.standIn) results.push(`<p class="note">${escapeHtml(STAND_IN_NOTE)}</p>`);
    for (const c of s.comparisons) results.push(`<p class="verdict">${escapeHtml(c.text)}</p>`);
    if (s.comparisons.length === 0 && s.note) {
      results.push(`<p class="note">${escapeHtml(s.note)}</p>`);
    }
    if (s.attentionLine) results.push(`<p>${escapeHtml(s.attentionLine)}</p>`);
    if (s.measuresLine) results.push(`<p>${escapeHtml(s.measuresLine)}</p>`);
    if (s.overlapLine) results.push(`<p>${escapeHtml(s.overlapLine)}</p>`);
    if (s.comparisons.length > 0) {
      const nested = s.comparisons.some((c) => c.bases);
      results.push(
        `<h4>Statistics: ${escapeHtml(s.label)}</h4>`,
        htmlTable(tables.stats(s), 1, "compact stats"),
        `<p class="note">Holm: one family of every comparison ${
          s.testSet ? "on this test set" : "in this report"
        } (paired t-test p over ${nested ? "the Bases' means, seeds nested in Bases" : "seeds"}` +
          `). Bootstrap: 2000 resamples of ${
            nested ? "Bases, then seeds within each drawn Base," : "seeds"
          } crossed with one draw of test items (items sharing an image drawn together) that ` +
          "every drawn seed is scored on, the same draws for both arms. McNemar: exact, on " +
          "the test items both arms answered, per seed.</p>",
      );
    }
    if (s.confusion.length > 0) {
      results.push(
        `<h4>Confusion: ${escapeHtml(s.label)} (true answer × prediction)</h4>`,
        '<div class="confusions">',
        ...s.confusion.map((c) => {
          const t = confusionCells(spec, c);
          return `<div><p class="note">${escapeHtml(t.title)}</p>${
            htmlTable(t, 1, "compact confusion")
          }</div>`;
        }),
        "</div>",
      );
    }
  }
  sections.push({ id: "results", title: SECTION_TITLES.results, html: results });

  const observation = figures("observation");
  if (observation.length > 0) {
    sections.push({ id: "observation", title: SECTION_TITLES.observation, html: observation });
  }
  const maps = figures("maps");
  if (maps.length > 0) sections.push({ id: "maps", title: SECTION_TITLES.maps, html: maps });

  const training = figures("training");
  if (learning) {
    training.push(
      "<h3>Sample efficiency: fine-tuning steps to reach an accuracy</h3>",
      htmlTable(tables.reach(learning), 1, "compact"),
      `<p class="note">${
        learning.thresholds.map((t) => escapeHtml(`${t.value.toFixed(1)}%: ${t.why}.`)).join(" ")
      } Steps are the first validation point at or above the threshold; "not reached" means ` +
        "no validation point got there within the run.</p>",
    );
  }
  if (training.length > 0) {
    sections.push({ id: "training", title: SECTION_TITLES.training, html: training });
  }

  const breakdowns = figures("breakdowns");
  if (breakdowns.length > 0) {
    sections.push({ id: "breakdowns", title: SECTION_TITLES.breakdowns, html: breakdowns });
  }

  if (input.baseSkills && input.baseSkills.length > 0) {
    sections.push({
      id: "base",
      title: BASE_SKILLS_TITLE,
      html: [
        htmlTable(tables.baseSkills(input.baseSkills), 2, "compact"),
        `<p class="note">${escapeHtml(BASE_SKILLS_NOTE)}</p>`,
      ],
    });
  }

  const runInfo = [
    `<p>Backend ${escapeHtml(backendWithReason(input))}. ${
      escapeHtml(wallTimes(input.stages))
    }</p>`,
  ];
  if (input.stages.length > 0) {
    runInfo.push(htmlTable(
      {
        headers: ["Stage", "Key", "Status", "Seconds", "Samples/s"],
        rows: input.stages.map((st) => [
          st.stage,
          st.key.slice(0, 12),
          st.status,
          st.seconds.toFixed(1),
          st.samplesPerSecond === undefined ? "–" : st.samplesPerSecond.toFixed(1),
        ]),
      },
      3,
      "compact",
    ));
    runInfo.push('<p class="note">Keys are cut to 12 characters; results.json has them whole.</p>');
  } else {
    runInfo.push('<p class="note">No stage information.</p>');
  }
  runInfo.push(
    "<details><summary>Resolved spec (JSON)</summary>",
    `<pre>${escapeHtml(JSON.stringify(spec, null, 2))}</pre>`,
    "</details>",
  );
  sections.push({ id: "run", title: "The run: stages, cache keys, spec", html: runInfo });

  const parts: string[] = [
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
  ];
  if (spec.description) parts.push(`<p class="desc">${escapeHtml(spec.description)}</p>`);
  parts.push(
    `<p class="meta">Created ${escapeHtml(input.createdAt)} · backend ${
      escapeHtml(input.backend)
    } · seeds ${escapeHtml(spec.seeds.join(", "))} · ${escapeHtml(describeBases(spec))}</p>`,
    `<nav class="toc">${
      sections.map((s) => `<a href="#${s.id}">${escapeHtml(s.title)}</a>`).join("")
    }</nav>`,
    "</header>",
    `<section class="headline" id="headline">${
      verdicts.map((v) => `<p>${escapeHtml(v)}</p>`).join("")
    }</section>`,
  );
  for (const section of sections) {
    parts.push(
      `<section id="${section.id}">`,
      `<h2>${escapeHtml(section.title)}</h2>`,
      ...section.html,
      "</section>",
    );
  }
  parts.push(
    "<footer>Poster numbers: Esmaeilkhani and Latecki, “Direct Visual Grounding by Directing " +
      "Attention of Visual Tokens”, WACV 2026, Tables 1 and 2 (Qwen 2.5-VL). Ours come from a " +
      "tiny VLM pretrained on a generic synthetic mix: compare the direction and size of the " +
      "gaps, not the absolute numbers. This file is self-contained and works offline; every " +
      "chart is also in figures/ as SVG and PNG.</footer>",
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
    `<script type="application/json" id="chart-specs">${
      jsonForScript(Object.fromEntries(charts.map((c) => [c.key, c.spec])))
    }</script>`,
    `<script>${BOOT}</script>`,
    "</body>",
    "</html>",
  );
  return parts.join("\n") + "\n";
}
