/**
 * Markdown: the one table writer that table.md of every report and of the paper record use,
 * and the report's table.md itself (title, setup, Table 1, Table 2, every arm per task with
 * the verdicts, and the steps each arm needed to reach the stated accuracies).
 */

import { setupLine } from "./cells.ts";
import { posterRow } from "./poster.ts";
import {
  learningSummary,
  summarize,
  table1,
  table2Ours,
  type TaskSummary,
  testSetSummaries,
} from "./summary.ts";
import * as tables from "./tables.ts";
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
function safeTable({ headers, rows }: tables.TextTable): string[] {
  return markdownTable(headers.map(markdownText), rows.map((r) => r.map(markdownText)));
}

/** One task's section heading: its label, and the task name when that differs. */
export function taskHeading(s: TaskSummary): string {
  return s.label === s.task ? s.task : `${s.label} (${s.task})`;
}

/** The note on a real-format task run on its offline stand-in. */
/** What a further test set's section is (task.source.tests). */
export const TEST_SET_NOTE = "Another test set, evaluating the same trainings as the main one " +
  "(task.source.tests): its numbers are not in Table 1, its comparisons are a Holm family of " +
  "their own, and the poster's number is for its own split, so none is shown.";

/** The heading of the Base's held-out skills table. */
export const BASE_SKILLS_TITLE = "The Base: what it answers of its pretraining mix";

/** What the Base's skills table shows and why. */
export const BASE_SKILLS_NOTE =
  "Greedy accuracy of the Base on held-out mix samples (a seed of their own, never trained " +
  "on), per question kind, beside what the kind's best constant answer scores on the same " +
  "samples: a kind the Base answers above its floor is a skill it brings to fine-tuning, " +
  "whatever a task's wording.";

export const STAND_IN_NOTE = "This task ran on its offline stand-in (synthetic scenes in the " +
  "real format), not on the dataset: the poster's numbers are for the real data, context " +
  "rather than a target.";

/** The note under Table 1: what the intervals and the floor are. */
export const TABLE1_NOTE = "Ours: mean over seeds ± 95% Student-t interval (n seeds); where the " +
  "test items' outcomes are recorded, also a 95% bootstrap interval over seeds crossed with the " +
  'test items ("boot"), which includes test-sampling error. Floor: the best one constant answer ' +
  "on the test set (majority answer, or the best constant point or box under the task's " +
  "scorer), and, where the task has one, the shortcut floor: the best answer per value of a " +
  "cue that needs no grounding; claims are stated against the larger. " +
  "KLAL − NTP: paired over seeds, with the two-sided paired t-test p, its Holm-adjusted p " +
  "over every comparison of the report, and the paired bootstrap interval. Controls: arms " +
  "that put KLAL's weight on shuffled or uniform maps or on a pointer head. " +
  '"not run": this experiment did not run the task.';

/**
 * Markdown: title, setup, Table 1, Table 2, per task the arms with the verdicts and the
 * statistics, and the steps each arm needed to reach the stated accuracies.
 */
export function renderTableMarkdown(input: ReportInput): string {
  const summaries = summarize(input);
  const rows1 = table1(input, summaries);
  const lines: string[] = [
    `# KLAL reproduction: ${markdownText(input.spec.name)}`,
    "",
  ];
  if (input.spec.description) lines.push(markdownText(input.spec.description.trim()), "");
  lines.push(markdownText(setupLine(input)), "");
  lines.push(
    "## Table 1: grounding accuracy %, ours beside the poster's (Qwen 2.5-VL)",
    "",
    ...safeTable(tables.table1(rows1)),
    "",
    markdownText(TABLE1_NOTE),
    "",
    "## Table 2: Line Intersection and Line Tracing, accuracy %",
    "",
    ...safeTable(tables.table2(table2Ours(rows1))),
    "",
    "Every row but ours is quoted from the poster: reported in the paper, not run here.",
    "",
  );
  for (const s of [...summaries, ...testSetSummaries(input)]) {
    const poster = posterRow(s.task);
    lines.push(`## ${markdownText(taskHeading(s))}`, "", ...safeTable(tables.arms(s)), "");
    if (s.testSet) lines.push(markdownText(TEST_SET_NOTE), "");
    else if (!poster) lines.push("The poster has no number for this task.", "");
    if (s.standIn) lines.push(STAND_IN_NOTE, "");
    for (const c of s.comparisons) lines.push(markdownText(c.text), "");
    if (s.comparisons.length === 0 && s.note) lines.push(markdownText(s.note), "");
    if (s.attentionLine) lines.push(markdownText(s.attentionLine), "");
    if (s.measuresLine) lines.push(markdownText(s.measuresLine), "");
    if (s.overlapLine) lines.push(markdownText(s.overlapLine), "");
    if (s.comparisons.length > 0) {
      lines.push(...safeTable(tables.stats(s)), "");
    }
  }
  if (input.baseSkills && input.baseSkills.length > 0) {
    lines.push(
      `## ${BASE_SKILLS_TITLE}`,
      "",
      ...safeTable(tables.baseSkills(input.baseSkills)),
      "",
      markdownText(BASE_SKILLS_NOTE),
      "",
    );
  }
  const learning = learningSummary(input);
  if (learning) {
    lines.push(
      "## Sample efficiency: fine-tuning steps to reach an accuracy",
      "",
      ...safeTable(tables.reach(learning)),
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
