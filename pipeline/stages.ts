/**
 * What the rest of the pipeline uses from the stages, which live in ./stages/ (one module per
 * kind of stage, so that each kind's import closure is exactly the code it runs).
 */
export { type ReportExtra, runStage, type StageContext } from "./stages/mod.ts";
export { loadSamples, loadTask } from "./stages/_common.ts";
export { loadCheckpoint } from "./stages/_checkpoint.ts";
export { pngDataUrl } from "./stages/eval.ts";
export type { LearningPoint } from "./stages/finetune.ts";
export { listFiles, reportInput } from "./stages/report.ts";
