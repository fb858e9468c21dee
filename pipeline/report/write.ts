/**
 * Writing a report: index.html, results.json, table.md and every chart as SVG and PNG under
 * figures/, into a temporary folder renamed into place; and reports/index.html, the list of
 * every report.
 */

import { loadBundles, renderHtml } from "./html.ts";
import { renderTableMarkdown } from "./markdown.ts";
import { reportCharts } from "./registry.ts";
import { readReportEntries, renderReportsIndex } from "./reports_index.ts";
import { figureName, prefixSvgIds, renderChartSvg, svgToPng } from "./render.ts";
import { resultsJson } from "./results.ts";
import type { ReportInput } from "./types.ts";

/**
 * Write index.html, results.json, table.md and figures/<chart>.{svg,png} into `dir`
 * (creating it). Writes to a temp dir next to `dir` and renames into place, so a crash never
 * leaves a half-written report.
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
  const target = dir.replace(/[\\/]+$/, "");
  const slash = Math.max(target.lastIndexOf("/"), target.lastIndexOf("\\"));
  const parent = slash >= 0 ? target.slice(0, slash) || "/" : ".";
  await Deno.mkdir(parent, { recursive: true });
  const suffix = `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
  const temp = `${target}.tmp-${suffix}`;
  const old = `${target}.old-${suffix}`;
  await Deno.mkdir(`${temp}/figures`, { recursive: true });
  try {
    await Deno.writeTextFile(`${temp}/results.json`, resultsJson(input));
    await Deno.writeTextFile(`${temp}/table.md`, renderTableMarkdown(input));
    await Deno.writeTextFile(`${temp}/index.html`, renderHtml(input, charts, svgs, bundles));
    for (const [key, svg] of Object.entries(raw)) {
      const name = figureName(key);
      await Deno.writeTextFile(`${temp}/figures/${name}.svg`, svg);
      await Deno.writeFile(`${temp}/figures/${name}.png`, await svgToPng(svg));
    }
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

/** Write `<reportsDir>/index.html` from the reports there (atomic replace). */
export async function writeReportsIndex(reportsDir: string): Promise<void> {
  await Deno.mkdir(reportsDir, { recursive: true });
  const html = renderReportsIndex(await readReportEntries(reportsDir));
  const temp = `${reportsDir}/.index-${crypto.randomUUID().slice(0, 8)}.html`;
  await Deno.writeTextFile(temp, html);
  await Deno.rename(temp, `${reportsDir}/index.html`);
}
