/**
 * results.json of a report: the raw rows and stages, and every number the tables show, so
 * other tools (the reports index, the paper record) read numbers instead of parsing tables.
 */

import { formatAccuracy, table1Cells } from "./cells.ts";
import { POSTER_TABLE2 } from "./poster.ts";
import { type ArmSummary, headline, learningSummary, table1, table2Ours } from "./summary.ts";
import type { ReportInput } from "./types.ts";

/** An arm's accuracy as results.json stores it (null: no such arm). */
function ciJson(arm: ArmSummary | undefined) {
  if (!arm) return null;
  const { mean, halfWidth, n } = arm.accuracy;
  return {
    arm: arm.arm,
    mean,
    halfWidth: halfWidth ?? null,
    n,
    text: formatAccuracy(arm.accuracy),
  };
}

/**
 * results.json: `{ experiment, createdAt, backend, headline, spec, rows, stages, table1,
 * table2, learning, validation }`. `rows` are the raw numbers; `validation` the learning
 * curves (validation set, during fine-tuning); the rest is what the tables show.
 */
export function resultsJson(input: ReportInput): string {
  const { spec, rows, stages, backend, createdAt } = input;
  const rows1 = table1(input);
  const ours2 = table2Ours(rows1);
  const learning = learningSummary(input);
  return JSON.stringify(
    {
      experiment: spec.name,
      createdAt,
      backend,
      headline: headline(input),
      spec,
      rows,
      stages,
      table1: rows1.map((r) => ({
        task: r.task,
        label: r.label,
        run: r.run,
        base: ciJson(r.base),
        ntp: ciJson(r.ntp),
        klal: ciJson(r.klal),
        gain: r.gain && !Number.isNaN(r.gain.meanDiff)
          ? { meanDiff: r.gain.meanDiff, p: r.gain.p ?? null, seeds: r.gain.seeds }
          : null,
        poster: r.poster ?? null,
        cells: table1Cells(r),
      })),
      table2: {
        ours: {
          lineIntersection: ciJson(ours2.lineIntersection),
          lineTracing: ciJson(ours2.lineTracing),
        },
        quoted: POSTER_TABLE2,
      },
      learning: learning ?? null,
      // The validation curves themselves (accuracy and grounding every eval_every steps).
      validation: input.learning ?? [],
    },
    null,
    2,
  ) + "\n";
}
