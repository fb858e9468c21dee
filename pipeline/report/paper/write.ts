/**
 * Writing the paper record: `results.json` (collected from the experiments' reports) and what
 * is rendered from it, `table.md`, `README.md` (from `README.src.md`) and `figures/*.svg`.
 * Every file is written through a temporary file and a rename, never half-written.
 */

import type { Cache } from "../../cache/store.ts";
import { renderChartSvg } from "../render.ts";
import { collectPaper } from "./collect.ts";
import { standInLabel } from "../poster.ts";
import { paperCharts, renderPaperTable } from "./render.ts";
import { fillTemplate, strayNumbers } from "./template.ts";
import type { PaperRecord, PaperSources } from "./types.ts";

/** Write `text` to `path` through a temp file and a rename: never half-written. */
async function writeAtomic(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(temp, text);
    await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
}

/**
 * The record with its PixMo-Points and RefCOCO rows labelled as the stand-ins they ran on
 * ("PixMo-Points stand-in (synthetic scenes)"), as every table and chart names them.
 */
export function withStandInLabels(record: PaperRecord): PaperRecord {
  for (const [task, row] of Object.entries(record.table1)) {
    const label = standInLabel(task);
    if (label && !row.label.includes("stand-in")) row.label = label;
  }
  return record;
}

/** Serialise the record as committed (stable key order, two-space indent, final newline). */
export function recordJson(record: PaperRecord): string {
  return JSON.stringify(record, null, 2) + "\n";
}

/**
 * Gather the record from the experiments' reports under `reportsDir` and write it to
 * `dir/results.json`; returns that path.
 */
export async function collectPaperRecord(
  dir: string,
  options: { reportsDir: string; sources: PaperSources; cache?: Cache; gpu?: string | null },
): Promise<string> {
  const record = await collectPaper(options);
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/results.json`;
  await writeAtomic(path, recordJson(record));
  return path;
}

/**
 * Render table.md, README.md (from README.src.md) and figures/*.svg in `dir` from
 * `dir/results.json`. Returns the files written.
 */
export async function rebuildPaper(dir: string): Promise<string[]> {
  const record = withStandInLabels(
    JSON.parse(await Deno.readTextFile(`${dir}/results.json`)) as PaperRecord,
  );
  const template = await Deno.readTextFile(`${dir}/README.src.md`);
  const stray = strayNumbers(template);
  if (stray.length > 0) {
    throw new Error(
      `${dir}/README.src.md: numbers outside placeholders (${stray.slice(0, 5).join(", ")}); ` +
        "put them in results.json and refer to them as {{path:format}}",
    );
  }
  const readme = fillTemplate(template, record);
  const written: string[] = [];
  await writeAtomic(`${dir}/table.md`, renderPaperTable(record));
  written.push("table.md");
  await writeAtomic(`${dir}/README.md`, readme);
  written.push("README.md");
  await Deno.mkdir(`${dir}/figures`, { recursive: true });
  for (const [name, chart] of Object.entries(paperCharts(record))) {
    await writeAtomic(`${dir}/figures/${name}.svg`, await renderChartSvg(chart));
    written.push(`figures/${name}.svg`);
  }
  return written;
}
