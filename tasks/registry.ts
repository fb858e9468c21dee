/** The task registry: spec names to Task objects (a new task is one line here). */

import type { SyntheticTask, Task } from "./task.ts";
import { gridPatch } from "./grid_patch.ts";
import { lineIntersection } from "./line_intersection.ts";
import { lineTracing } from "./line_tracing.ts";
import { pretrainMix } from "./pretrain_mix.ts";
import { pixmoPoints } from "./pixmo_points.ts";
import { refcoco } from "./refcoco.ts";
import { grounding } from "./grounding.ts";

/** The tasks a spec's `task.name` may select. */
export const TASKS: Record<string, Task> = {
  "grid-patch": gridPatch,
  "grounding": grounding,
  "line-intersection": lineIntersection,
  "line-tracing": lineTracing,
  "pixmo-points": pixmoPoints,
  "refcoco": refcoco,
};

/** The generic mix that pretrains the shared Base checkpoint (not selectable in specs). */
export const PRETRAIN_TASK: SyntheticTask = pretrainMix;

/** Sorted, de-duplicated union of the tasks' vocabularies. */
export function vocabularyOf(tasks: Task[]): string[] {
  return [...new Set(tasks.flatMap((task) => task.vocabulary))].sort();
}
