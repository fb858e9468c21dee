/**
 * The paper record, `reports/paper/`: one committed results file that gathers Table 1 (every
 * task's Base, NTP and KLAL+NTP arms), Table 2, the λ sweep, the per-layer ablation and the
 * investigations from the experiments that ran them, plus everything rendered from it:
 * `table.md`, `README.md` (a short paper section whose every number is a placeholder filled
 * from `results.json`) and the key figures as SVG.
 *
 *   deno task report paper             rebuild table.md, README.md, figures/ from results.json
 *   deno task report paper --collect   first gather results.json from the experiments' reports
 */

export {
  collectPaper,
  layerSetName,
  majorityShare,
  MissingReport,
  NTP_MARGIN,
  RECORD_SOURCES,
  referenceOf,
  regimeOf,
} from "./collect.ts";
export { PAPER_CHARTS, type PaperChartEntry, paperCharts, renderPaperTable } from "./render.ts";
export {
  COUNT_WORDS,
  fillTemplate,
  formatValue,
  lookup,
  strayCountWords,
  strayNumbers,
} from "./template.ts";
export type * from "./types.ts";
export { collectPaperRecord, rebuildPaper, recordJson, withStandInLabels } from "./write.ts";
