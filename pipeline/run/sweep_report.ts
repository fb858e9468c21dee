/**
 * The report of a non-arm sweep (`train.lr=1e-3,3e-3`, a task sweep, ...): one experiment per
 * point, and one report comparing them under `reports/<base name>/`. Each point's arms appear
 * as `<arm>@<point label>`; points that differ only in their task keep their arm names.
 */
import type { Cache } from "../cache/store.ts";
import type { ResolvedStage } from "./plan.ts";
import type { Spec } from "../spec/types.ts";
import { reportInput } from "../stages/report.ts";
import type { ReportInput } from "../report/types.ts";
import { writeReport } from "../report/write.ts";

/** What the runner reports of one point: its resolved plan and what each stage did. */
export interface SweepRun {
  plan: ResolvedStage[];
  statuses: Map<string, { status: "cached" | "ran"; seconds: number }>;
}

/** The sweep's base name: the points are named `<base>--<label>`. */
export function sweepBaseName(specs: readonly Spec[]): string {
  return specs[0].name.slice(0, specs[0].name.indexOf("--"));
}

/**
 * One report input comparing every point of a sweep: rows and stages of all points, arms
 * renamed `<arm>@<label>` unless the points differ only in their task.
 */
export function combineSweepInputs(
  points: readonly { spec: Spec; input: ReportInput }[],
): ReportInput {
  const specs = points.map((p) => p.spec);
  const baseName = sweepBaseName(specs);
  // Points that differ only in their task keep their arm names: rows already carry the task.
  const byTask = new Set(specs.map((s) => s.task.name)).size === specs.length;
  let combined: ReportInput | undefined;
  const conflicting = new Set<string>();
  for (const { spec, input } of points) {
    const label = spec.name.slice(baseName.length + 2);
    const rename = <T extends { arm: string }>(x: T): T =>
      byTask ? x : { ...x, arm: `${x.arm}@${label}` };
    const arms = Object.fromEntries(
      Object.entries(spec.arms).map(([name, arm]) => [byTask ? name : `${name}@${label}`, arm]),
    );
    if (!combined) {
      combined = {
        ...input,
        spec: { ...spec, name: baseName, arms: {} },
        rows: [],
        curves: [],
        stages: [],
        learning: [],
        figures: [],
        heads: [],
        breakdown: [],
        floors: {},
        items: [],
        taskSpecs: {},
      };
    }
    combined.spec.arms = { ...combined.spec.arms, ...arms };
    combined.rows.push(...input.rows.map(rename));
    combined.stages.push(...input.stages.map((s) => ({ ...s, stage: `${label} ${s.stage}` })));
    // Item outcomes carry their task, so they travel like rows.
    combined.items!.push(...(input.items ?? []).map(rename));
    // A floor belongs to a test set: points that share a task but not its floor (a swept
    // task parameter) have no one floor, so that task shows none.
    for (const [task, floor] of Object.entries(input.floors ?? {})) {
      const known = combined.floors![task];
      if (known === undefined && !conflicting.has(task)) combined.floors![task] = floor;
      else if (known && JSON.stringify(known) !== JSON.stringify(floor)) {
        delete combined.floors![task];
        conflicting.add(task);
      }
    }
    combined.taskSpecs![spec.task.name] ??= spec.task;
    // Loss and learning curves, attention figures, heads and breakdowns carry no task: across
    // tasks under the same arm names they would mix, so those stay in the per-task reports.
    if (byTask) continue;
    combined.curves.push(...input.curves.map(rename));
    combined.learning!.push(...(input.learning ?? []).map(rename));
    combined.figures!.push(...(input.figures ?? []).map(rename));
    combined.heads!.push(...(input.heads ?? []).map(rename));
    combined.breakdown!.push(...(input.breakdown ?? []).map(rename));
  }
  return combined!;
}

/**
 * Read every point's results from the cache and write the one report comparing them to
 * `<reportsDir>/<base name>/`; returns that folder.
 */
export async function writeSweepReport(
  specs: Spec[],
  runs: SweepRun[],
  cache: Cache,
  reportsDir: string,
): Promise<string> {
  const points: { spec: Spec; input: ReportInput }[] = [];
  for (const [i, spec] of specs.entries()) {
    points.push({ spec, input: await reportInput(spec, runs[i].plan, cache, runs[i].statuses) });
  }
  const dir = `${reportsDir}/${sweepBaseName(specs)}`;
  await writeReport(dir, combineSweepInputs(points));
  return dir;
}
