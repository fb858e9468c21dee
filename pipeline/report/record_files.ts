/**
 * The record's files in docs/record/: reads the task reports (results/TASK/results.json), the
 * validation runs (validation/NAME/results.json) and the driver's timings (wall.json); writes
 * record.json, table.md, README.md (from README.src.md) and figures/NAME.vl.json and .svg, each
 * through a temporary file and a rename. `renderRecordFiles` returns the files' contents
 * without writing, so a check can compare them with what is committed.
 */
import { writeFileAtomic } from "../lib/atomic.ts";
import { formatMarkdown } from "../lib/format_markdown.ts";
import { renderChartSvg } from "./render.ts";
import { fillTemplate, strayCountWords, strayNumbers } from "./paper/template.ts";
import { RECORD_TASKS } from "./record.ts";
import { readmeTable, recordCharts, recordTableMd, recordTables } from "./record_render.ts";
import {
  buildRecord,
  type RecordWriteup,
  type TaskResults,
  type WallEntry,
} from "./record_write.ts";

/** The validation runs' experiment names: one report per task, `NAME--TASK`. */
export const VALIDATION_RUNS = {
  lambda: "record-validation-lambda",
  layers: "record-validation-layers",
} as const;

async function readJson<T>(path: string): Promise<T> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    throw new Error(`${path}: not readable as JSON (${(e as Error).message})`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The validation reports of one run under dir/validation/, in the record's task order. */
async function validationReports(dir: string, name: string): Promise<TaskResults[]> {
  const out: TaskResults[] = [];
  for (const task of RECORD_TASKS) {
    const path = `${dir}/validation/${name}--${task}/results.json`;
    if (await exists(path)) out.push(await readJson<TaskResults>(path));
  }
  return out;
}

/** Compute record.json's content from the files under `dir`. */
export async function collectRecord(dir: string): Promise<RecordWriteup> {
  const reports: TaskResults[] = [];
  for (const task of RECORD_TASKS) {
    const path = `${dir}/results/${task}/results.json`;
    if (await exists(path)) reports.push(await readJson<TaskResults>(path));
  }
  if (reports.length === 0) throw new Error(`${dir}/results/: no task report's results.json`);
  const wallPath = `${dir}/wall.json`;
  const wall = await exists(wallPath) ? await readJson<WallEntry[]>(wallPath) : [];
  return buildRecord(reports, {
    lambda: await validationReports(dir, VALIDATION_RUNS.lambda),
    layers: await validationReports(dir, VALIDATION_RUNS.layers),
  }, wall);
}

/** The markers in the top-level README between which its record table is rendered. */
export const README_MARKERS = {
  begin: /<!-- record-table:begin[^>]*-->\n/,
  end: "<!-- record-table:end -->",
};

/** `text` with the part between the record-table markers replaced by `table`. */
export function replaceBetweenMarkers(text: string, table: string, path: string): string {
  const begin = README_MARKERS.begin.exec(text);
  const end = text.indexOf(README_MARKERS.end);
  if (!begin || end < begin.index) {
    throw new Error(
      `${path}: no "<!-- record-table:begin ... -->" line followed by "${README_MARKERS.end}"`,
    );
  }
  const from = begin.index + begin[0].length;
  return `${text.slice(0, from)}\n${table}\n\n${text.slice(end)}`;
}

/**
 * Every file the record renders, by path (`dir/NAME`, and `readme` when given: the top-level
 * README whose record table is rendered between its markers), from record.json and README.src.md.
 */
export async function renderRecordFiles(
  dir: string,
  record: RecordWriteup,
  readme?: string,
): Promise<Map<string, string>> {
  const template = await Deno.readTextFile(`${dir}/README.src.md`);
  const problems = [
    ...strayNumbers(template).map((n) => `the number ${n}`),
    ...strayCountWords(template).map((w) => `the count word "${w}"`),
  ];
  if (problems.length > 0) {
    throw new Error(
      `${dir}/README.src.md: ${problems.slice(0, 6).join(", ")} outside placeholders; ` +
        "compute it into record.json and refer to it as {{path:format}}",
    );
  }
  const files = new Map<string, string>();
  files.set(`${dir}/record.json`, JSON.stringify(record, null, 2) + "\n");
  files.set(`${dir}/table.md`, await formatMarkdown(recordTableMd(record)));
  files.set(
    `${dir}/README.md`,
    await formatMarkdown(fillTemplate(template, { ...record, tables: recordTables(record) })),
  );
  for (const [name, chart] of Object.entries(recordCharts(record))) {
    files.set(`${dir}/figures/${name}.vl.json`, JSON.stringify(chart, null, 2) + "\n");
    files.set(`${dir}/figures/${name}.svg`, await renderChartSvg(chart));
  }
  if (readme !== undefined) {
    const text = await Deno.readTextFile(readme);
    files.set(
      readme,
      await formatMarkdown(replaceBetweenMarkers(text, readmeTable(record), readme)),
    );
  }
  return files;
}

/** Write the rendered files (each atomically); returns their paths. */
export async function writeRecordFiles(files: Map<string, string>): Promise<string[]> {
  for (const [path, text] of files) await writeFileAtomic(path, text);
  return [...files.keys()];
}

/** The paths whose current content differs from `files`. */
export async function staleRecordFiles(files: Map<string, string>): Promise<string[]> {
  const stale: string[] = [];
  for (const [path, text] of files) {
    const current = await exists(path) ? await Deno.readTextFile(path) : null;
    if (current !== text) stale.push(path);
  }
  return stale;
}
