/**
 * Markdown: the one table writer that table.md of every report and of the paper record use,
 * and the report's table.md itself (title, setup, Table 1, Table 2, every arm per task with
 * the verdicts, and the steps each arm needed to reach the stated accuracies).
 */

import {
  REACH_HEADERS,
  reachCells,
  setupLine,
  TABLE1_HEADERS,
  table1Cells,
  TABLE2_HEADERS,
  table2Cells,
  TABLE_HEADERS,
  tableCells,
} from "./cells.ts";
import { posterRow } from "./poster.ts";
import { learningSummary, summarize, table1, table2Ours } from "./summary.ts";
import type { ReportInput } from "./types.ts";

/**
 * Markdown text that cannot open an HTML tag (renderers pass raw HTML through): for text that
 * comes from a spec, such as names and descriptions.
 */
export function markdownText(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/**
 * One table cell: a backslash or `|` escaped (either would end or alter the cell) and every
 * run of whitespace, line breaks included, one space (a line break would end the row).
 */
export function markdownCell(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("|", "\\|").replace(/\s+/g, " ");
}

/**
 * A markdown table: headers, the alignment row (columns from `numericFrom` on right-aligned,
 * for numbers) and the rows, every cell through markdownCell.
 */
export function markdownTable(headers: string[], rows: string[][], numericFrom = 1): string[] {
  const line = (cells: string[]) => `| ${cells.map(markdownCell).join(" | ")} |`;
  return [
    line(headers),
    `| ${headers.map((_, i) => (i >= numericFrom ? "---:" : "---")).join(" | ")} |`,
    ...rows.map(line),
  ];
}

/** markdownTable for text from a spec: every cell through markdownText first. */
function safeTable(headers: string[], rows: string[][]): string[] {
  return markdownTable(headers.map(markdownText), rows.map((r) => r.map(markdownText)));
}

/**
 * Markdown: title, setup, Table 1, Table 2, per task the arms with the verdicts, and the
 * steps each arm needed to reach the stated accuracies.
 */
export function renderTableMarkdown(input: ReportInput): string {
  const summaries = summarize(input);
  const rows1 = table1(input);
  const lines: string[] = [
    `# KLAL reproduction: ${markdownText(input.spec.name)}`,
    "",
  ];
  if (input.spec.description) lines.push(markdownText(input.spec.description.trim()), "");
  lines.push(markdownText(setupLine(input)), "");
  lines.push(
    "## Table 1: grounding accuracy %, ours beside the poster's (Qwen 2.5-VL)",
    "",
    ...safeTable(TABLE1_HEADERS, rows1.map(table1Cells)),
    "",
    'Ours: mean over seeds ± 95% Student-t interval (n seeds); "not run": this experiment ' +
      "did not run the task.",
    "",
    "## Table 2: Line Intersection and Line Tracing, accuracy %",
    "",
    ...safeTable(TABLE2_HEADERS, table2Cells(table2Ours(rows1))),
    "",
    "Every row but ours is quoted from the poster: reported in the paper, not run here.",
    "",
  );
  for (const s of summaries) {
    const poster = posterRow(s.task);
    lines.push(`## ${markdownText(s.task)}${poster ? ` (poster: ${poster.label})` : ""}`, "");
    lines.push(...safeTable(TABLE_HEADERS, s.arms.map(tableCells)), "");
    if (!poster) lines.push("The poster has no number for this task.", "");
    for (const c of s.comparisons) lines.push(markdownText(c.text), "");
    if (s.comparisons.length === 0 && s.note) lines.push(markdownText(s.note), "");
    if (s.attentionLine) lines.push(markdownText(s.attentionLine), "");
  }
  const learning = learningSummary(input);
  if (learning) {
    lines.push(
      "## Sample efficiency: fine-tuning steps to reach an accuracy",
      "",
      ...safeTable(REACH_HEADERS, reachCells(learning)),
      "",
      ...learning.thresholds.map((t) => markdownText(`${t.value.toFixed(1)}%: ${t.why}.`)),
      "",
    );
  }
  lines.push(
    `Created ${
      markdownText(input.createdAt)
    }. Poster numbers: Esmaeilkhani and Latecki, WACV 2026, ` +
      "Tables 1 and 2 (Qwen 2.5-VL); ours are a tiny VLM pretrained on a generic synthetic mix, " +
      "so compare the direction and size of the gaps, not the absolute numbers.",
  );
  return lines.join("\n") + "\n";
}
