/**
 * Table 1 in the formats other tools read: CSV with one number per column (spreadsheets,
 * pandas, R), and a LaTeX table of the same cells the Markdown and HTML tables show (booktabs).
 */
import { TABLE1_HEADERS, table1Cells } from "./cells.ts";
import type { ArmSummary, Table1Row } from "./summary.ts";

/** The columns of table1.csv, in order. */
export const TABLE1_CSV_COLUMNS = [
  "task",
  "label",
  "run",
  "floor",
  "floor_answer",
  "shortcut_floor",
  "shortcut_rule",
  ...["base", "ntp", "klal"].flatMap((arm) => [
    `${arm}_arm`,
    `${arm}_mean`,
    `${arm}_ci95_half_width`,
    `${arm}_n`,
    `${arm}_bootstrap_low`,
    `${arm}_bootstrap_high`,
  ]),
  "gain",
  "gain_p",
  "gain_p_holm",
  "gain_bootstrap_low",
  "gain_bootstrap_high",
  "gain_seeds",
  "gain_bases",
  "controls",
  "poster_base",
  "poster_ntp",
  "poster_klal",
] as const;

/** One CSV field: quoted when it holds a comma, quote or line break; numbers as they are. */
function csvField(value: string | number | boolean | undefined): string {
  if (value === undefined || (typeof value === "number" && !Number.isFinite(value))) return "";
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function armFields(arm: ArmSummary | undefined): (string | number | undefined)[] {
  if (!arm || arm.accuracy.n === 0) return Array(6).fill(undefined);
  return [
    arm.arm,
    arm.accuracy.mean,
    arm.accuracy.halfWidth,
    arm.accuracy.n,
    arm.bootstrap?.low,
    arm.bootstrap?.high,
  ];
}

/**
 * table1.csv: one row per Table 1 task (TABLE1_CSV_COLUMNS): accuracies in percent, the 95%
 * t half-width over seeds, the crossed bootstrap's bounds, KLAL+NTP − NTP with its p and Holm
 * p; empty where there is no value (a task not run, an arm absent, one seed).
 */
export function table1Csv(rows: readonly Table1Row[]): string {
  const lines = [TABLE1_CSV_COLUMNS.join(",")];
  for (const row of rows) {
    const gain = row.gain && !Number.isNaN(row.gain.meanDiff) ? row.gain : undefined;
    const shortcut = row.floor?.shortcut;
    const fields = [
      row.task,
      row.label,
      row.run,
      row.floor?.accuracy,
      row.floor?.answer,
      shortcut?.accuracy,
      shortcut?.rule,
      ...armFields(row.base),
      ...armFields(row.ntp),
      ...armFields(row.klal),
      gain?.meanDiff,
      gain?.p,
      gain?.pHolm,
      gain?.bootstrap?.low,
      gain?.bootstrap?.high,
      gain?.seeds.length,
      gain?.bases ? new Set(gain.bases).size : undefined,
      row.controls.map((c) => `${c.arm}=${c.accuracy.mean}`).join(" "),
      row.poster?.base,
      row.poster?.ntp,
      row.poster?.klal,
    ];
    lines.push(fields.map(csvField).join(","));
  }
  return lines.join("\n") + "\n";
}

const LATEX_SPECIALS: Record<string, string> = {
  "\\": "\\textbackslash{}",
  "&": "\\&",
  "%": "\\%",
  "$": "\\$",
  "#": "\\#",
  "_": "\\_",
  "{": "\\{",
  "}": "\\}",
  "~": "\\textasciitilde{}",
  "^": "\\textasciicircum{}",
  "−": "$-$",
  "±": "$\\pm$",
  "×": "$\\times$",
  "≥": "$\\geq$",
  "λ": "$\\lambda$",
};

/** Text as LaTeX: its special characters escaped, a few symbols in math mode. */
export function latexText(text: string): string {
  return text.replace(/[\\&%$#_{}~^−±×≥λ]/g, (c) => LATEX_SPECIALS[c]);
}

/**
 * table1.tex: Table 1's cells (as the Markdown and HTML tables show them) as a booktabs
 * `table` environment, ready to `\input`; needs `\usepackage{booktabs}`.
 */
export function table1Latex(rows: readonly Table1Row[], caption: string): string {
  const columns = "l" + "r".repeat(TABLE1_HEADERS.length - 1);
  const row = (cells: readonly string[]) => cells.map(latexText).join(" & ") + " \\\\";
  return [
    "% Generated with the report; needs \\usepackage{booktabs}.",
    "\\begin{table}",
    "\\centering",
    "\\scriptsize",
    `\\caption{${latexText(caption)}}`,
    `\\begin{tabular}{${columns}}`,
    "\\toprule",
    row(TABLE1_HEADERS),
    "\\midrule",
    ...rows.map((r) => row(table1Cells(r))),
    "\\bottomrule",
    "\\end{tabular}",
    "\\end{table}",
    "",
  ].join("\n");
}
