/**
 * Labels of outside images for `deno task eval`: from a CSV (`file,answer[,prompt]`; see
 * ../lib/csv.ts: an answer that holds a comma is quoted, `"2 , 2"`), a JSON file (a list of
 * `{file, answer, prompt?, points?, box?}` or an object file -> answer), or file names
 * (`answerFromName`). Points and boxes are in percent of the image, as the point and box tasks
 * answer. Errors name file:line (or row) and never quote the file's content beyond file names.
 */
import { CsvError, parseCsv } from "../lib/csv.ts";

/** One image's label. */
export interface Label {
  answer: string;
  /** The question asked about this image (else the command's --prompt or the task's own). */
  prompt?: string;
  /** Where the answer lies, for pointing tasks: [x, y] in percent. */
  points?: [number, number][];
  /** The answer's box, for box tasks: [x1, y1, x2, y2] in percent. */
  box?: [number, number, number, number];
}

/** A labels file that cannot be read as labels (the command's exit 2). */
export class LabelsError extends Error {}

/** What a labels row is, without its content (the labels file is not echoed). */
function describeRow(row: unknown): string {
  if (row === null || typeof row !== "object") return row === null ? "null" : `a ${typeof row}`;
  if (Array.isArray(row)) return `a list of ${row.length} items`;
  const r = row as Record<string, unknown>;
  const kind = (v: unknown) => v === undefined ? "none" : Array.isArray(v) ? "a list" : typeof v;
  return `an object with file: ${kind(r.file)}, answer: ${kind(r.answer)}`;
}

const isPercent = (v: unknown): v is number =>
  typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= 100;

/** The label of a JSON row, or what is wrong with it. */
function jsonLabel(row: unknown): { file: string; label: Label } | string {
  const r = row as Record<string, unknown> | null;
  if (
    r === null || typeof r !== "object" || typeof r.file !== "string" ||
    (typeof r.answer !== "string" && typeof r.answer !== "number")
  ) {
    return `expected {file, answer} with a string file and a string or number answer, found ${
      describeRow(row)
    }`;
  }
  const label: Label = { answer: String(r.answer) };
  if (r.prompt !== undefined) {
    if (typeof r.prompt !== "string" || r.prompt.trim() === "") {
      return "expected prompt to be a non-empty string";
    }
    label.prompt = r.prompt;
  }
  if (r.points !== undefined) {
    const ok = Array.isArray(r.points) && r.points.length > 0 &&
      r.points.every((p) => Array.isArray(p) && p.length === 2 && p.every(isPercent));
    if (!ok) return "expected points to be a non-empty list of [x, y] in percent (0-100)";
    label.points = r.points as [number, number][];
  }
  if (r.box !== undefined) {
    const b = r.box;
    const ok = Array.isArray(b) && b.length === 4 && b.every(isPercent) && b[0] < b[2] &&
      b[1] < b[3];
    if (!ok) return "expected box to be [x1, y1, x2, y2] in percent, x1 < x2 and y1 < y2";
    label.box = b as [number, number, number, number];
  }
  return { file: r.file, label };
}

/**
 * file name -> label. A CSV row with more columns than its header names, or a second row for a
 * file with another answer, is refused naming file:line.
 */
export async function readLabels(path: string): Promise<Map<string, Label>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new LabelsError(`${path}: cannot read labels (${(e as Error).message})`);
  }
  const labels = new Map<string, Label>();
  const firstAt = new Map<string, string>();
  const add = (file: string, label: Label, where: string, place: string) => {
    const known = labels.get(file);
    if (known !== undefined && known.answer !== label.answer) {
      throw new LabelsError(
        `${where}: a second, different answer for ${file} (first given at ${firstAt.get(file)})`,
      );
    }
    labels.set(file, label);
    if (!firstAt.has(file)) firstAt.set(file, place);
  };
  if (/\.json$/i.test(path)) {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      // The parser's message quotes the file's text: keep only where it stopped.
      const at = /at position \d+( \(line \d+ column \d+\))?/.exec((e as Error).message)?.[0];
      throw new LabelsError(`${path}: not valid JSON${at ? ` (${at})` : ""}`);
    }
    const rows = Array.isArray(data) ? data : Object.entries(data as Record<string, unknown>)
      .map(([file, answer]) => ({ file, answer }));
    rows.forEach((row, i) => {
      const found = jsonLabel(row);
      if (typeof found === "string") throw new LabelsError(`${path} row ${i + 1}: ${found}`);
      add(found.file, found.label, `${path} row ${i + 1}`, `row ${i + 1}`);
    });
    return labels;
  }
  let records;
  try {
    records = parseCsv(text);
  } catch (e) {
    if (e instanceof CsvError) throw new LabelsError(`${path}:${e.message}`);
    throw e;
  }
  // A header names the columns: file, answer and optionally prompt, in that order.
  const header = records[0]?.fields[0].toLowerCase() === "file" ? records[0] : undefined;
  const columns = header ? header.fields.map((f) => f.toLowerCase()) : ["file", "answer"];
  const known = ["file", "answer", "prompt"];
  if (columns.length < 2 || columns.some((c, i) => c !== known[i])) {
    throw new LabelsError(
      `${path}:${header!.line}: expected the header "file,answer" or "file,answer,prompt", ` +
        `found ${columns.length} columns`,
    );
  }
  for (const { line, fields } of header ? records.slice(1) : records) {
    if (fields.length !== columns.length || fields[0] === "") {
      const what = fields.length < 2
        ? "a line with no comma"
        : fields.length > columns.length
        ? `${fields.length} columns (quote an answer that holds a comma: "2 , 2")`
        : fields.length < columns.length
        ? `${fields.length} columns`
        : "an empty file name";
      throw new LabelsError(`${path}:${line}: expected "${columns.join(",")}", found ${what}`);
    }
    const label: Label = { answer: fields[1] };
    if (columns.length === 3) {
      if (fields[2] === "") throw new LabelsError(`${path}:${line}: expected a prompt, found none`);
      label.prompt = fields[2];
    }
    add(fields[0], label, `${path}:${line}`, `line ${line}`);
  }
  return labels;
}

/** The answer a file name carries, by `regex` (group `answer`, else the first group). */
export function answerFromName(name: string, regex: RegExp): string | undefined {
  const m = name.match(regex);
  if (!m) return undefined;
  return m.groups?.answer ?? m[1] ?? m[0];
}
