/**
 * Learning from the validation curves: steps to reach a threshold per arm and seed (the
 * threshold NTP's final validation accuracy), for the report's sample-efficiency table.
 */
import { mean } from "./stats.ts";
import { armLabel, COLUMN_ORDER, paperColumn } from "./poster.ts";
import type { LearningRow, ReportInput } from "./types.ts";

/** An accuracy level the learning curves are read at, and why it was chosen. */
export interface AccuracyThreshold {
  /** Percent. */
  value: number;
  why: string;
}

/** How many fine-tuning steps one arm needed to reach a threshold, per seed. */
export interface StepsToReach {
  arm: string;
  label: string;
  threshold: number;
  /** `step` undefined: not reached by `lastStep`. */
  seeds: { seed: number; step: number | undefined; lastStep: number }[];
}

/** Learning curves read as sample efficiency. */
export interface LearningSummary {
  thresholds: AccuracyThreshold[];
  reach: StepsToReach[];
}

/** Per arm and seed, the learning-curve points in step order. */
function learningSeries(learning: LearningRow[]): Map<string, Map<number, LearningRow[]>> {
  const byArm = new Map<string, Map<number, LearningRow[]>>();
  for (const point of learning) {
    if (!byArm.has(point.arm)) byArm.set(point.arm, new Map());
    const bySeed = byArm.get(point.arm)!;
    if (!bySeed.has(point.seed)) bySeed.set(point.seed, []);
    bySeed.get(point.seed)!.push(point);
  }
  for (const bySeed of byArm.values()) {
    for (const points of bySeed.values()) points.sort((a, b) => a.step - b.step);
  }
  return byArm;
}

/**
 * Steps to a stated validation accuracy, per arm and seed. Thresholds, ascending: the NTP
 * arm's final validation accuracy (mean over seeds: how long KLAL needs to match what NTP ends
 * with), half the best arm's final accuracy (reached by at least that arm, so informative
 * when NTP stays near chance), and 50%; one of two within a point of each other is dropped.
 */
export function learningSummary(input: ReportInput): LearningSummary | undefined {
  const learning = input.learning ?? [];
  if (learning.length === 0) return undefined;
  const series = learningSeries(learning);
  const arms = [...series.keys()].sort((a, b) =>
    COLUMN_ORDER.indexOf(paperColumn(input.spec, a)) -
    COLUMN_ORDER.indexOf(paperColumn(input.spec, b))
  );
  const finalAccuracy = (arm: string) =>
    mean([...series.get(arm)!.values()].map((points) => points.at(-1)!.accuracy));
  const seedCount = (arm: string) => {
    const n = series.get(arm)!.size;
    return n === 1 ? "1 seed" : `${n} seeds`;
  };
  const candidates: AccuracyThreshold[] = [];
  const ntp = arms.find((arm) => paperColumn(input.spec, arm) === "NTP");
  if (ntp) {
    candidates.push({
      value: Math.round(finalAccuracy(ntp) * 10) / 10,
      why: `${armLabel(input.spec, ntp)}'s final validation accuracy (mean over ${seedCount(ntp)})`,
    });
  }
  const best = arms.reduce((a, b) => (finalAccuracy(b) > finalAccuracy(a) ? b : a));
  candidates.push({
    value: Math.round(finalAccuracy(best) * 5) / 10,
    why: `half of ${armLabel(input.spec, best)}'s final validation accuracy, the best arm's ` +
      `(mean over ${seedCount(best)})`,
  });
  candidates.push({ value: 50, why: "half of the validation answers right" });
  const thresholds: AccuracyThreshold[] = [];
  for (const c of candidates.filter((c) => c.value > 0).sort((a, b) => a.value - b.value)) {
    if (!thresholds.some((t) => Math.abs(t.value - c.value) < 1)) thresholds.push(c);
  }
  const reach: StepsToReach[] = [];
  for (const threshold of thresholds) {
    for (const arm of arms) {
      const bySeed = series.get(arm)!;
      reach.push({
        arm,
        label: armLabel(input.spec, arm),
        threshold: threshold.value,
        seeds: [...bySeed.keys()].sort((a, b) => a - b).map((seed) => {
          const points = bySeed.get(seed)!;
          return {
            seed,
            step: points.find((p) => p.accuracy >= threshold.value - 1e-9)?.step,
            lastStep: points.at(-1)!.step,
          };
        }),
      });
    }
  }
  return { thresholds, reach };
}

/** "40", "50 (s0 40, s1 60)", "s0 40, s1 not reached by 60", "not reached by step 60". */
export function formatStepsToReach(entry: StepsToReach): string {
  const reached = entry.seeds.filter((s) => s.step !== undefined);
  const last = Math.max(...entry.seeds.map((s) => s.lastStep));
  if (reached.length === 0) return `not reached by step ${last}`;
  if (entry.seeds.length === 1) return String(reached[0].step);
  const perSeed = entry.seeds.map((s) =>
    `s${s.seed} ${s.step === undefined ? `not reached by ${s.lastStep}` : s.step}`
  ).join(", ");
  if (reached.length < entry.seeds.length) return perSeed;
  return `${mean(reached.map((s) => s.step!)).toFixed(0)} (${perSeed})`;
}
