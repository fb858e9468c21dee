/**
 * The report's tables as text, each its header row and body rows, so that table.md
 * (./markdown.ts) and index.html (./html.ts) show the same tables; the cells come from
 * ./cells.ts.
 */

import {
  floorCells,
  REACH_HEADERS,
  reachCells,
  STATS_HEADERS,
  STATS_HEADERS_BASES,
  statsCells,
  TABLE1_HEADERS,
  table1Cells,
  TABLE2_HEADERS,
  table2Cells,
  TABLE_HEADERS,
  tableCells,
} from "./cells.ts";
import type { LearningSummary, Table1Row, Table2Ours, TaskSummary } from "./summary.ts";
import type { BaseSkills } from "./types.ts";

/** A table as text: its header row and its body rows. */
export interface TextTable {
  headers: string[];
  rows: string[][];
}

/** Table 1: a row per task. */
export function table1(rows: Table1Row[]): TextTable {
  return { headers: TABLE1_HEADERS, rows: rows.map(table1Cells) };
}

/** Table 2: ours, then the poster's quoted rows. */
export function table2(ours: Table2Ours): TextTable {
  return { headers: TABLE2_HEADERS, rows: table2Cells(ours) };
}

/** One task's table of every arm, under the rows of its floors when it has them. */
export function arms(s: TaskSummary): TextTable {
  return { headers: TABLE_HEADERS, rows: [...floorCells(s.floor), ...s.arms.map(tableCells)] };
}

/** One task's statistics: a row per comparison. */
export function stats(s: TaskSummary): TextTable {
  const nested = s.comparisons.some((c) => c.bases);
  return {
    headers: nested ? STATS_HEADERS_BASES : STATS_HEADERS,
    rows: s.comparisons.map(statsCells),
  };
}

/** Sample efficiency: the steps each arm needed to reach each accuracy. */
export function reach(summary: LearningSummary): TextTable {
  return { headers: REACH_HEADERS, rows: reachCells(summary) };
}

/** What each Base answers of its mix kinds on held-out samples, beside each kind's floor. */
export function baseSkills(bases: BaseSkills[]): TextTable {
  const many = bases.length > 1;
  return {
    headers: [...(many ? ["Base"] : []), "Mix kind", "Held-out items", "Base %", "Floor %"],
    rows: bases.flatMap((b) =>
      b.skills.map((k) => [
        ...(many ? [b.stage] : []),
        k.kind,
        String(k.n),
        k.accuracy.toFixed(1),
        `${k.floor.toFixed(1)} ("${k.floorAnswer}")`,
      ])
    ),
  };
}
