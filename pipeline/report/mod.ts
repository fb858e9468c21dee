/**
 * The experiment report: `table.md`, `results.json`, Table 1 as `table1.csv` and `table1.tex`, one
 * offline `index.html` (vega, vega-lite and vega-embed inlined) and every chart as SVG, PNG and
 * Vega-Lite spec under `figures/`. It shows the
 * poster's Tables 1 and 2 beside ours, the empirical observation (attention on target patches
 * per layer and head), poster-like attention maps and an in-page attention explorer, training
 * and learning curves with steps-to-accuracy, difficulty breakdowns, λ and layer sweeps, and
 * the run itself (spec, cache keys, times); plus `reports/index.html`, the list of reports.
 *
 * One module per concern:
 *
 *   types.ts           what a report is made of (ReportInput and its rows)
 *   poster.ts          the paper's columns (and the controls) and quoted numbers; arm and
 *                      task labels (a stand-in named as one)
 *   summary.ts         summaries and statistics: verdicts against the fixed-answer floor,
 *                      Tables 1 and 2, sweeps; learning.ts: steps to reach a validation accuracy
 *   items.ts           statistics on test items: bootstraps, McNemar per seed, confusion
 *   cells.ts           the text of table cells shared by table.md, index.html, results.json
 *   tables.ts          the tables of table.md and index.html: header row and rows, as text
 *   markdown.ts        the one markdown table writer, and the report's table.md
 *   palette.ts         arm colours; vega_config.ts: the Vega-Lite schema and look
 *   charts/*.ts        chart builders, one file per family
 *   registry.ts        every chart kind: key, section, caption, builder (the page order)
 *   attention_maps.ts  shared pieces of the attention figure and explorer
 *   html.ts            index.html; render.ts: SVG and PNG; results.ts: results.json;
 *                      exports.ts: Table 1 as CSV and LaTeX
 *   write.ts           writing a report and reports/index.html (reports_index.ts)
 *
 * Beside them, reading a finished run from the cache (they use the stages, so they are not
 * re-exported here): rebuild.ts (`deno task report NAME`) and sweep.ts (a sweep's combined
 * report); and paper/, the committed paper record.
 */

export { targetSupport } from "../eval/target_support.ts";
export { lightGrayImage, massOnTarget, relativeToUniform } from "./attention_maps.ts";
export {
  formatAccuracy,
  formatArmAccuracy,
  formatFloor,
  NOT_RUN,
  setupLine,
  TABLE1_HEADERS,
  table1Cells,
} from "./cells.ts";
export { latexText, TABLE1_CSV_COLUMNS, table1Csv, table1Latex } from "./exports.ts";
export { CSS, escapeHtml, inlineScriptSource, jsonForScript, renderHtml } from "./html.ts";
export { markdownCell, markdownTable, markdownText, renderTableMarkdown } from "./markdown.ts";
export { armPalette, COLUMN_COLOURS, columnPalette, type Palette } from "./palette.ts";
export {
  armLabel,
  controlKind,
  isStandIn,
  type PaperColumn,
  paperColumn,
  POSTER_TABLE1,
  POSTER_TABLE2,
  posterKey,
  type PosterRow,
  posterRow,
  type PosterTable2Row,
  taskLabel,
} from "./poster.ts";
export {
  type BuiltChart,
  type ChartContext,
  type ChartEntry,
  type ChartSection,
  chartSpecs,
  REPORT_CHARTS,
  type ReportChart,
  reportCharts,
} from "./registry.ts";
export { figureName, prefixSvgIds, renderChartSvg, svgToPng } from "./render.ts";
export { readReportEntries, renderReportsIndex, type ReportEntry } from "./reports_index.ts";
export {
  answerClasses,
  type ArmConfusion,
  BOOTSTRAP_RESAMPLES,
  MAX_CONFUSION_CLASSES,
  type SeedMcNemar,
} from "./items.ts";
export { resultsJson } from "./results.ts";
export * as tables from "./tables.ts";
export {
  type AccuracyThreshold,
  type ArmSummary,
  atFloor,
  breakdownSummary,
  type Comparison,
  controlName,
  debiasedEma,
  FLOOR_MARGIN,
  formatInterval,
  formatP,
  formatStepsToReach,
  headline,
  type LearningSummary,
  learningSummary,
  reportTaskLabel,
  type StepsToReach,
  summarize,
  sweeps,
  table1,
  type Table1Row,
  type Table2Ours,
  table2Ours,
  type TaskSummary,
  verdictLines,
} from "./summary.ts";
export type {
  BaseSkills,
  BreakdownRow,
  CurvePoint,
  FigureSample,
  FigureSet,
  HeadRow,
  ItemOutcome,
  ItemSet,
  LearningRow,
  ReportInput,
  ResultRow,
  StageInfo,
  TaskFloor,
  TestSetInput,
} from "./types.ts";
export { paperChart, reportChart, VEGA_LITE_SCHEMA } from "./vega_config.ts";
export {
  REPORT_SOURCE,
  reportSource,
  RESOLVED_SPEC,
  RUNS_SUFFIX,
  writeReport,
  writeReportsIndex,
} from "./write.ts";
