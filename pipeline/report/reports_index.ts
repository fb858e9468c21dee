/**
 * reports/index.html: every experiment report under the reports root (depth 1 or 2), newest
 * first, with its date, backend and headline, and Table 1 across them (per poster task, the
 * newest report that ran it). Read from each report's results.json.
 */

import { NOT_RUN } from "./cells.ts";
import { CSS, escapeHtml } from "./html.ts";
import { POSTER_TABLE1, posterKey } from "./poster.ts";

/** What reports/index.html shows of one experiment (read from its results.json). */
export interface ReportEntry {
  /** Folder relative to the reports root, e.g. "quickstart" or "paper/grid-patch". */
  path: string;
  name: string;
  createdAt: string;
  backend: string;
  headline: string;
  /** Table 1's headers, naming each cell; absent in reports written before the floor column. */
  table1Headers?: string[];
  table1: {
    task: string;
    label: string;
    run: boolean;
    cells: string[];
  }[];
  /** The experiment's earlier runs kept in `<path>.runs/`, newest first (their ids). */
  runs?: string[];
}

/** The suffix of a report's history folder (write.ts's RUNS_SUFFIX). */
const HISTORY = ".runs";

/** Run ids in `<reportsDir>/<path>.runs/`, newest first. */
async function runsOf(reportsDir: string, path: string): Promise<string[]> {
  const ids: string[] = [];
  try {
    for await (const e of Deno.readDir(`${reportsDir}/${path}${HISTORY}`)) {
      if (e.isDirectory && !/\.(tmp|old)-/.test(e.name)) ids.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return ids.sort().reverse();
}

/** The columns reports/index.html shows of each report's Table 1, by header. */
const ACROSS_HEADERS = [
  "Floor (fixed answer)",
  "Base (ours)",
  "NTP (ours)",
  "KLAL+NTP (ours)",
  "KLAL − NTP (ours, paired t)",
];

/**
 * A Table 1 row's cells for ACROSS_HEADERS, found by header; a report written before
 * `table1Headers` has Base, NTP, KLAL+NTP and the gain in cells 1-4 and no floor.
 */
function acrossCells(entry: ReportEntry, cells: string[]): string[] {
  const headers = entry.table1Headers;
  if (!headers) return ["–", ...cells.slice(1, 5)];
  return ACROSS_HEADERS.map((h) => {
    const i = headers.indexOf(h);
    return i >= 0 && cells[i] !== undefined ? cells[i] : "–";
  });
}

/** Every report folder under `reportsDir` (depth 1 or 2) that has a results.json. */
export async function readReportEntries(reportsDir: string): Promise<ReportEntry[]> {
  const entries: ReportEntry[] = [];
  const visit = async (rel: string, depth: number) => {
    const dir = rel ? `${reportsDir}/${rel}` : reportsDir;
    let text: string | undefined;
    if (rel) text = await Deno.readTextFile(`${dir}/results.json`).catch(() => undefined);
    if (text !== undefined) {
      try {
        const r = JSON.parse(text);
        entries.push({
          path: rel,
          name: String(r.experiment ?? rel),
          createdAt: String(r.createdAt ?? ""),
          backend: String(r.backend ?? ""),
          headline: String(r.headline ?? ""),
          table1Headers: Array.isArray(r.table1Headers) ? r.table1Headers.map(String) : undefined,
          table1: Array.isArray(r.table1) ? r.table1 : [],
          runs: await runsOf(reportsDir, rel),
        });
      } catch {
        // A results.json that does not parse is not listed.
      }
      return;
    }
    if (depth >= 2) return;
    let children: string[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory && !/\.(tmp|old)-/.test(e.name) && !e.name.endsWith(HISTORY)) {
          children.push(e.name);
        }
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    children = children.sort();
    for (const child of children) await visit(rel ? `${rel}/${child}` : child, depth + 1);
  };
  await visit("", 0);
  return entries.sort((a, b) =>
    b.createdAt.localeCompare(a.createdAt) || a.path.localeCompare(b.path)
  );
}

/** The runs of one experiment, newest first: each run's report and the spec it ran. */
function runsCell(e: ReportEntry): string {
  const runs = e.runs ?? [];
  if (runs.length === 0) return "–";
  const base = `${e.path.split("/").map(encodeURIComponent).join("/")}${HISTORY}`;
  const when = (id: string) => {
    const m = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})/.exec(id);
    return m ? `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]} UTC` : id;
  };
  return runs.map((id) => {
    const dir = `${base}/${encodeURIComponent(id)}`;
    return `<a href="${escapeHtml(`${dir}/index.html`)}" title="${escapeHtml(id)}">${
      escapeHtml(when(id))
    }</a> (<a href="${escapeHtml(`${dir}/spec.json`)}">spec</a>)`;
  }).join("<br>");
}

/** reports/index.html: every experiment with date, backend and headline, and Table 1 across them. */
export function renderReportsIndex(entries: ReportEntry[]): string {
  const link = (e: ReportEntry, file: string) =>
    `${e.path.split("/").map(encodeURIComponent).join("/")}/${file}`;
  const rows = entries.map((e) =>
    `<tr><td><a href="${escapeHtml(link(e, "index.html"))}">${escapeHtml(e.name)}</a>` +
    (e.path !== e.name ? ` <span class="note">(${escapeHtml(e.path)})</span>` : "") +
    `</td><td>${escapeHtml(e.createdAt.replace("T", " ").replace(/\.\d+Z$/, " UTC"))}</td>` +
    `<td>${escapeHtml(e.backend)}</td><td class="text">${escapeHtml(e.headline)}</td>` +
    `<td><a href="${escapeHtml(link(e, "results.json"))}">results.json</a> · ` +
    `<a href="${escapeHtml(link(e, "table.md"))}">table.md</a> · ` +
    `<a href="${escapeHtml(link(e, "spec.json"))}">spec</a></td>` +
    `<td class="runs">${runsCell(e)}</td></tr>`
  ).join("\n");
  // Table 1 across experiments: for each poster task the newest report that ran it, under
  // that report's label for it (a stand-in says so).
  const across = Object.entries(POSTER_TABLE1).map(([key, poster]) => {
    for (const e of entries) {
      const row = e.table1.find((r) => r.run && posterKey(String(r.task)) === key);
      if (row) return { label: String(row.label), entry: e, cells: acrossCells(e, row.cells) };
    }
    return { label: poster.label, entry: undefined, cells: [] as string[] };
  });
  const acrossRows = across.map((r) => {
    if (!r.entry) {
      return `<tr><td>${
        escapeHtml(r.label)
      }</td><td class="notrun" colspan="${ACROSS_HEADERS.length}">${NOT_RUN}</td><td class="note">–</td></tr>`;
    }
    return `<tr><td>${escapeHtml(r.label)}</td>${
      r.cells.map((c) => `<td class="num">${escapeHtml(c)}</td>`).join("")
    }<td><a href="${escapeHtml(link(r.entry, "index.html"))}">${
      escapeHtml(r.entry.name)
    }</a></td></tr>`;
  }).join("\n");
  return [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>KLAL reports</title>",
    `<style>${CSS}\ntd.text { white-space: normal; text-align: left; min-width: 320px; max-width: 520px; }\ntd.runs { white-space: nowrap; text-align: left; }</style>`,
    "</head>",
    "<body>",
    "<main>",
    "<header><h1>KLAL reports</h1>",
    `<p class="meta">${entries.length} experiment report${
      entries.length === 1 ? "" : "s"
    }, newest first. Rebuild one from the cache with <code>deno task report NAME</code>.</p>`,
    "</header>",
    "<h2>Experiments</h2>",
    entries.length === 0 ? '<p class="note">No reports yet.</p>' : [
      '<div class="scroll"><table id="experiments">',
      "<thead><tr><th>Experiment</th><th>Date</th><th>Backend</th><th>Headline</th>" +
      "<th>Files</th><th>Runs, newest first</th></tr></thead>",
      `<tbody>\n${rows}\n</tbody>`,
      "</table></div>",
    ].join("\n"),
    "<h2>Table 1 across experiments</h2>",
    '<p class="note">Per task of the poster&#39;s Table 1, the newest report that ran it: ours, ' +
    "mean ± 95% CI (n seeds), beside the task&#39;s fixed-answer floor. The poster&#39;s " +
    "numbers are in each report.</p>",
    '<div class="scroll"><table class="compact" id="table1-across">',
    '<thead><tr><th>Task</th><th class="num">Floor (fixed answer)</th>' +
    '<th class="num">Base</th><th class="num">NTP</th>' +
    '<th class="num">KLAL+NTP</th><th class="num">KLAL − NTP (paired t)</th>' +
    "<th>Report</th></tr></thead>",
    `<tbody>\n${acrossRows}\n</tbody>`,
    "</table></div>",
    "</main>",
    "</body>",
    "</html>",
  ].join("\n") + "\n";
}
