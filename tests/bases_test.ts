/**
 * Several Bases as a level of the analysis: which Base each fine-tune seed starts from
 * (pipeline/spec/bases.ts), and a report whose test is over the Bases' means and whose
 * bootstrap draws Bases before seeds, checked by hand.
 */
import assert from "node:assert/strict";
import {
  baseOfSeed,
  baseSeeds,
  describeBases,
  seedsByBase,
  severalBases,
} from "../pipeline/spec/bases.ts";
import {
  BOOTSTRAP_RESAMPLES,
  type ReportInput,
  resultsJson,
  summarize,
} from "../pipeline/report/mod.ts";
import { bootstrapCrossed } from "../pipeline/report/stats.ts";
import type { Spec } from "../pipeline/spec/types.ts";
import { reportSpec } from "./report_fixtures.ts";
import { armSpec } from "./spec_fixtures.ts";

const design = (seeds: number[], seed: Spec["base"]["seed"]) => ({ seeds, base: { seed } });

Deno.test("bases: one Base, one per seed, or equal blocks of seeds per listed Base", () => {
  const one = design([0, 1, 2], 4);
  assert.deepEqual(baseSeeds(one), [4]);
  assert.deepEqual([0, 1, 2].map((s) => baseOfSeed(one, s)), [4, 4, 4]);
  assert.equal(severalBases(one), false);
  assert.equal(describeBases(one), "one Base (seed 4)");
  const run = design([3, 5], "run");
  assert.deepEqual(baseSeeds(run), [3, 5]);
  assert.deepEqual([3, 5].map((s) => baseOfSeed(run, s)), [3, 5]);
  const listed = design([0, 1, 2, 3, 4, 5], [10, 11, 12]);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((s) => baseOfSeed(listed, s)), [10, 10, 11, 11, 12, 12]);
  assert.deepEqual([...seedsByBase(listed)], [[10, [0, 1]], [11, [2, 3]], [12, [4, 5]]]);
  assert.equal(severalBases(listed), true);
  assert.equal(describeBases(listed), "3 Bases (seeds 10, 11, 12) x 2 fine-tune seeds each");
  assert.throws(() => baseOfSeed(listed, 9), /seed 9 is not one of the spec's seeds/);
});

/** 50 items; the first `right` of them answered right. */
function outcomes(right: number) {
  return Array.from({ length: 50 }, (_, index) => ({
    index,
    answer: "1",
    prediction: index < right ? "1" : "0",
    correct: index < right,
  }));
}

/**
 * Seeds 0, 1 from Base 10 and 2, 3 from Base 11. NTP scores 50% on every seed; KLAL+NTP 60,
 * 70 (Base 10) and 52, 54 (Base 11): gains +10, +20, +2, +4, so Base means +15 and +3.
 */
function twoBases(): ReportInput {
  const spec = reportSpec({
    name: "two-bases",
    description: "",
    arms: { ntp: armSpec(), klal: armSpec({ lambda: 1 }) },
    base: { seed: [10, 11] },
  });
  spec.seeds = [0, 1, 2, 3];
  const right: Record<string, number[]> = { ntp: [25, 25, 25, 25], klal: [30, 35, 26, 27] };
  const input: ReportInput = {
    spec,
    rows: [],
    curves: [],
    stages: [],
    items: [],
    backend: "wasm",
    createdAt: "2026-01-02T03:04:05.000Z",
  };
  for (const [arm, counts] of Object.entries(right)) {
    counts.forEach((count, seed) => {
      input.rows.push({ task: "grid-patch", arm, seed, metric: "accuracy", value: 2 * count });
      input.items!.push({ task: "grid-patch", arm, seed, items: outcomes(count) });
    });
  }
  return input;
}

Deno.test("bases: the test is over the Bases' means, the bootstrap draws Bases first", () => {
  const input = twoBases();
  const [summary] = summarize(input);
  const [c] = summary.comparisons;
  assert.deepEqual(c.bases, [10, 10, 11, 11]);
  assert.equal(c.meanDiff, 9);
  // Base means +15 and +3: t = 9 / (sqrt(72) / sqrt(2)) = 1.5 on 1 dof, p = 1 - 2/pi atan(1.5).
  const byHand = 1 - 2 / Math.PI * Math.atan(1.5);
  assert.ok(Math.abs(c.p! - byHand) < 1e-9, `p ${c.p} vs ${byHand}`);
  // Over the four seeds as if independent it would be t = 2.23 on 3 dof, p about 0.11.
  assert.ok(c.p! > 0.3);
  assert.match(c.text, /paired t-test over the means of 2 Bases \(4 seeds nested in them\)/);
  assert.match(c.text, /Paired bootstrap over Bases, seeds within them, and test items/);
  // The intervals are the grouped bootstrap of the same outcomes.
  const rows = (arm: string) =>
    input.items!.filter((s) => s.arm === arm).map((s) => s.items.map((i) => i.correct));
  const grouped = bootstrapCrossed(rows("klal"), {
    baseline: rows("ntp"),
    groups: [10, 10, 11, 11],
    resamples: BOOTSTRAP_RESAMPLES,
  });
  assert.deepEqual(c.bootstrap, grouped);
  const ungrouped = bootstrapCrossed(rows("klal"), {
    baseline: rows("ntp"),
    resamples: BOOTSTRAP_RESAMPLES,
  });
  assert.notDeepEqual(c.bootstrap, ungrouped);
  const klal = summary.arms.find((a) => a.arm === "klal")!;
  assert.deepEqual(
    klal.bootstrap,
    bootstrapCrossed(rows("klal"), { groups: [10, 10, 11, 11], resamples: BOOTSTRAP_RESAMPLES }),
  );
  const json = JSON.parse(resultsJson(input));
  assert.deepEqual(json.bases, [{ seed: 10, seeds: [0, 1] }, { seed: 11, seeds: [2, 3] }]);
  assert.deepEqual(json.statistics.comparisons[0].bases, [10, 10, 11, 11]);
  assert.match(json.statistics.bootstrap.levels, /^Bases, then seeds within each drawn Base/);
  assert.match(json.statistics.holm.family, /over the Bases' means/);
});

Deno.test("bases: with one Base the test stays over seeds", () => {
  const input = twoBases();
  input.spec.base.seed = 0;
  const [c] = summarize(input)[0].comparisons;
  assert.equal(c.bases, undefined);
  assert.match(c.text, /paired t-test over 4 seeds/);
  assert.match(c.text, /Paired bootstrap over seeds and test items/);
  const json = JSON.parse(resultsJson(input));
  assert.deepEqual(json.bases, [{ seed: 0, seeds: [0, 1, 2, 3] }]);
  assert.equal(json.statistics.comparisons[0].bases, null);
});

Deno.test("bases: a control on the first Base's seeds is compared over those seeds", () => {
  const input = twoBases();
  input.spec.arms.shuffled = armSpec({ lambda: 1, target: "shuffled", seeds: [0, 1] });
  // The control: 50% and 56% (28 of 50) on Base 10's seeds; KLAL+NTP 60 and 70 there.
  [25, 28].forEach((count, seed) => {
    input.rows.push({
      task: "grid-patch",
      arm: "shuffled",
      seed,
      metric: "accuracy",
      value: 2 * count,
    });
    input.items!.push({ task: "grid-patch", arm: "shuffled", seed, items: outcomes(count) });
  });
  const [, control] = summarize(input)[0].comparisons;
  assert.equal(control.kind, "control");
  assert.deepEqual(control.seeds, [0, 1]);
  assert.equal(control.bases, undefined);
  // Gains +10 and +14: t = 12 / (sqrt(8) / sqrt(2)) = 6 on 1 dof.
  const byHand = 1 - 2 / Math.PI * Math.atan(6);
  assert.ok(Math.abs(control.p! - byHand) < 1e-9, `p ${control.p} vs ${byHand}`);
  assert.match(control.text, /paired t-test over 2 seeds/);
});
