/**
 * Writing a report: index.html, results.json, table.md, Table 1 as table1.csv and table1.tex,
 * and every chart as SVG, PNG and its Vega-Lite spec under figures/, into a temporary folder
 * renamed into place; and reports/index.html, the list of every report.
 */

import { replaceFolderAtomic, writeFileAtomic } from "../lib/atomic.ts";
import { loadBundles, renderHtml } from "./html.ts";
import { renderTableMarkdown } from "./markdown.ts";
import { reportCharts } from "./registry.ts";
import { readReportEntries, renderReportsIndex } from "./reports_index.ts";
import { figureName, prefixSvgIds, renderChartSvg, svgToPng } from "./render.ts";
import { resultsJson } from "./results.ts";
import { table1Csv, table1Latex } from "./exports.ts";
import { summarize, table1 } from "./summary.ts";
import type { ReportInput } from "./types.ts";

/**
 * Write index.html, results.json, spec.json (the spec, resolved), table.md, table1.{csv,tex} and
 * figures/<chart>.{svg,png,vl.json} into `dir` (creating it), replacing the folder in one step (../lib/atomic.ts), so a crash never leaves a
 * half-written report.
 */
export async function writeReport(dir: string, input: ReportInput): Promise<void> {
  const bundles = await loadBundles();
  const charts = reportCharts(input);
  const raw: Record<string, string> = {};
  const svgs: Record<string, string> = {};
  for (const [i, { key, spec }] of charts.entries()) {
    raw[key] = await renderChartSvg(spec);
    svgs[key] = prefixSvgIds(raw[key], `chart${i}-`);
  }
  // A trailing slash would put the temporary sibling inside the folder it replaces.
  const target = dir.replace(/[\\/]+$/, "");
  await replaceFolderAtomic(target, async (temp) => {
    await Deno.mkdir(`${temp}/figures`);
    await Deno.writeTextFile(`${temp}/results.json`, resultsJson(input));
    await Deno.writeTextFile(
      `${temp}/${RESOLVED_SPEC}`,
      JSON.stringify(input.spec, null, 2) + "\n",
    );
    await Deno.writeTextFile(`${temp}/table.md`, renderTableMarkdown(input));
    const rows = table1(input, summarize(input));
    await Deno.writeTextFile(`${temp}/table1.csv`, table1Csv(rows));
    const caption = `Table 1 of ${input.spec.name}: grounding accuracy %, ours beside the ` +
      "poster's (Qwen 2.5-VL)";
    await Deno.writeTextFile(`${temp}/table1.tex`, table1Latex(rows, caption));
    await Deno.writeTextFile(`${temp}/index.html`, renderHtml(input, charts, svgs, bundles));
    for (const { key, spec } of charts) {
      const name = figureName(key);
      await Deno.writeTextFile(`${temp}/figures/${name}.svg`, raw[key]);
      await Deno.writeFile(`${temp}/figures/${name}.png`, await svgToPng(raw[key]));
      // The chart's Vega-Lite spec, data inline: open it in the Vega editor or vl-convert.
      await Deno.writeTextFile(
        `${temp}/figures/${name}.vl.json`,
        JSON.stringify(spec, null, 2) + "\n",
      );
    }
  });
}

/** File in a published report naming the spec file it was made from. */
export const REPORT_SOURCE = "source.json";

/** File in a published report holding the spec it ran, fully resolved (every default filled). */
export const RESOLVED_SPEC = "spec.json";

/** A report folder's history of runs: `reports/<name>.runs/<run id>/`, one report per run. */
export const RUNS_SUFFIX = ".runs";

/** The spec file the report in `dir` was made from, if it records one. */
export async function reportSource(dir: string): Promise<string | undefined> {
  try {
    const spec = JSON.parse(await Deno.readTextFile(`${dir}/${REPORT_SOURCE}`)).spec;
    return typeof spec === "string" ? spec : undefined;
  } catch {
    return undefined;
  }
}

/** Write `<reportsDir>/index.html` from the reports there (atomic replace). */
export async function writeReportsIndex(reportsDir: string): Promise<void> {
  await Deno.mkdir(reportsDir, { recursive: true });
  const html = renderReportsIndex(await readReportEntries(reportsDir));
  await writeFileAtomic(`${reportsDir}/index.html`, html);
}
