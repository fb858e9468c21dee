import nodeAssert from "node:assert/strict";
import {
  bootstrapCrossed,
  ci95,
  confusionMatrix,
  crossedBootstrapDraws,
  holmAdjust,
  logGamma,
  mcnemarExact,
  mean,
  pairedTTest,
  regularizedIncompleteBeta,
  sampleStd,
  studentTTwoSidedP,
  tCritical95,
  wilsonInterval,
} from "../pipeline/report/stats.ts";

function assertClose(actual: number | undefined, expected: number, tolerance = 1e-9, what = "") {
  if (actual === undefined || !(Math.abs(actual - expected) <= tolerance)) {
    throw new Error(`${what}: expected ${expected} ± ${tolerance}, got ${actual}`);
  }
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

Deno.test("mean and sampleStd match hand values", () => {
  assertClose(mean([1, 2, 3, 4]), 2.5);
  assert(Number.isNaN(mean([])), "mean([]) is NaN");
  // deviations -1.5, -0.5, 0.5, 1.5 -> squares sum 5, / 3
  assertClose(sampleStd([1, 2, 3, 4]), Math.sqrt(5 / 3));
  assert(Number.isNaN(sampleStd([7])), "std of one value is NaN");
});

Deno.test("ci95 uses Student t with n-1 dof", () => {
  const ci = ci95([1, 2, 3]);
  assertClose(ci.mean, 2);
  // t_{0.975, 2} = 0.95 sqrt(2 / (1 - 0.95^2)) = 4.3026527...
  const t2 = 0.95 * Math.sqrt(2 / (1 - 0.95 * 0.95));
  assertClose(ci.halfWidth, t2 / Math.sqrt(3), 1e-9, "half-width [1,2,3]");
  assertClose(ci.low, 2 - t2 / Math.sqrt(3), 1e-9);
  assertClose(ci.high, 2 + t2 / Math.sqrt(3), 1e-9);
  // n = 2: t(1) = tan(0.475 pi) = 12.7062..., half = t(1) * |a-b| / 2
  assertClose(ci95([40, 50]).halfWidth, Math.tan(0.475 * Math.PI) * 5, 1e-8, "n=2");
  const one = ci95([5]);
  assert(one.halfWidth === undefined && one.n === 1 && one.mean === 5, "n=1 has no half-width");
});

Deno.test("tCritical95: exact for every dof, closed forms at 1 and 2, no jump after 30", () => {
  // dof 1 (Cauchy): tan(pi (0.975 - 0.5)); dof 2: a sqrt(2 / (1 - a^2)) with a = 2 * 0.975 - 1.
  assertClose(tCritical95(1), Math.tan(0.475 * Math.PI), 1e-9, "dof 1");
  const a = 2 * 0.475;
  assertClose(tCritical95(2), a * Math.sqrt(2 / (1 - a * a)), 1e-9, "dof 2");
  // Standard table values (more digits than the usual three).
  assertClose(tCritical95(10), 2.228138852, 1e-8, "dof 10");
  assertClose(tCritical95(30), 2.042272456, 1e-8, "dof 30");
  assertClose(tCritical95(31), 2.039513446, 1e-8, "dof 31");
  assertClose(tCritical95(60), 2.000297822, 1e-8, "dof 60");
  assertClose(tCritical95(1000), 1.962339081, 1e-8, "dof 1000");
  // Monotone, toward 1.95996 from above.
  for (let dof = 1; dof < 80; dof++) {
    assert(tCritical95(dof + 1) < tCritical95(dof), `t(${dof + 1}) < t(${dof})`);
  }
  assert(tCritical95(1e6) > 1.959963 && tCritical95(1e6) < 1.96, "large dof");
  assert(Number.isNaN(tCritical95(0)), "dof 0");
});

Deno.test("incomplete beta and t distribution match closed forms", () => {
  assertClose(logGamma(5), Math.log(24), 1e-12, "lgamma(5)");
  assertClose(logGamma(0.5), Math.log(Math.sqrt(Math.PI)), 1e-12, "lgamma(1/2)");
  // I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1, b) = 1 - (1-x)^b
  assertClose(regularizedIncompleteBeta(0.3, 1, 1), 0.3, 1e-12);
  assertClose(regularizedIncompleteBeta(0.6, 3, 1), 0.216, 1e-12);
  assertClose(regularizedIncompleteBeta(0.2, 1, 4), 1 - 0.8 ** 4, 1e-12);
  // dof 1 is Cauchy: p = 1 - (2/pi) atan|t|; dof 2: p = 1 - |t| / sqrt(2 + t^2)
  for (const t of [0.1, 1, 2.5, 12.706, 40]) {
    assertClose(studentTTwoSidedP(t, 1), 1 - 2 / Math.PI * Math.atan(t), 1e-10, `dof1 t=${t}`);
    assertClose(studentTTwoSidedP(-t, 2), 1 - t / Math.sqrt(2 + t * t), 1e-10, `dof2 t=${t}`);
  }
  assertClose(studentTTwoSidedP(2.0, 10), 0.0733880, 1e-6, "t=2 dof=10");
  assertClose(studentTTwoSidedP(1.5, 30), 0.1440659, 1e-6, "t=1.5 dof=30");
  assertClose(studentTTwoSidedP(3.0, 100), 0.0034079, 1e-6, "t=3 dof=100");
  assertClose(studentTTwoSidedP(0, 7), 1, 1e-12, "t=0");
  // The critical values in the table sit at p = 0.05.
  for (const dof of [1, 2, 3, 10, 30]) {
    assertClose(studentTTwoSidedP(tCritical95(dof), dof), 0.05, 2e-4, `critical dof=${dof}`);
  }
});

Deno.test("pairedTTest matches a hand-computed example", () => {
  // diffs 2,1,3,1: mean 1.75, s^2 = (0.0625+0.5625+1.5625+0.5625)/3 = 2.75/3
  const result = pairedTTest([3, 5, 7, 9], [1, 4, 4, 8]);
  const expectedT = 1.75 / (Math.sqrt(2.75 / 3) / 2);
  assertClose(result.meanDiff, 1.75);
  assertClose(result.t, expectedT, 1e-12, "t");
  assert(result.dof === 3 && result.n === 4, "dof = n - 1");
  assertClose(result.p, 0.0353528, 1e-6, "p"); // scipy.stats.ttest_rel
  const swapped = pairedTTest([1, 4, 4, 8], [3, 5, 7, 9]);
  assertClose(swapped.t, -expectedT, 1e-12);
  assertClose(swapped.p, result.p!, 1e-12);
});

Deno.test("pairedTTest edge cases", () => {
  const single = pairedTTest([50], [40]);
  assert(single.p === undefined && single.meanDiff === 10 && single.dof === 0, "n=1: no p");
  const same = pairedTTest([1, 2], [1, 2]);
  assert(same.p === 1 && same.t === 0, "identical pairs: p = 1");
  const constantShift = pairedTTest([2, 3], [1, 2]);
  assert(constantShift.p === 0 && constantShift.t === Infinity, "constant shift: p = 0");
  let threw = false;
  try {
    pairedTTest([1, 2], [1]);
  } catch {
    threw = true;
  }
  assert(threw, "length mismatch throws");
});

Deno.test("wilsonInterval matches hand values", () => {
  // 8/10, z=1.96: center (0.8+0.19208)/1.38416, half 1.96*sqrt(0.016+0.009604)/1.38416
  const w = wilsonInterval(8, 10);
  assertClose(w.estimate, 0.8);
  const denominator = 1 + 1.96 ** 2 / 10;
  const center = (0.8 + 1.96 ** 2 / 20) / denominator;
  const half = 1.96 * Math.sqrt(0.016 + 1.96 ** 2 / 400) / denominator;
  assertClose(w.low, center - half, 1e-12);
  assertClose(w.high, center + half, 1e-12);
  assertClose(w.low, 0.4902, 1e-4);
  assertClose(w.high, 0.9433, 1e-4);
  const zero = wilsonInterval(0, 20);
  assert(zero.low === 0 && zero.high > 0 && zero.high < 0.2, "0/20 has a non-trivial upper bound");
  const empty = wilsonInterval(0, 0);
  assert(empty.low === 0 && empty.high === 1, "n=0 gives [0, 1]");
});

Deno.test("holmAdjust: step-down by hand, monotone, undefined left out", () => {
  // Sorted 0.01, 0.03, 0.04 -> 3*0.01 = 0.03, 2*0.03 = 0.06, max(0.06, 1*0.04) = 0.06.
  const adjusted = holmAdjust([0.01, 0.04, 0.03]);
  nodeAssert.ok(Math.abs(adjusted[0]! - 0.03) < 1e-12);
  nodeAssert.ok(Math.abs(adjusted[1]! - 0.06) < 1e-12);
  nodeAssert.ok(Math.abs(adjusted[2]! - 0.06) < 1e-12);
  // m counts only the defined p-values; capped at 1.
  nodeAssert.deepEqual(holmAdjust([undefined, 0.2, 0.6]), [undefined, 0.4, 0.6]);
  nodeAssert.deepEqual(holmAdjust([0.9, 0.8]), [1, 1]);
});

Deno.test("mcnemarExact: discordant counts and the exact binomial p", () => {
  const a = [true, true, true, false, false, true];
  const b = [false, false, true, false, true, true];
  // onlyA = 2, onlyB = 1, n = 3: P(X <= 1) = (1 + 3) / 8 = 0.5, two-sided 1.
  nodeAssert.deepEqual(mcnemarExact(a, b), { onlyA: 2, onlyB: 1, p: 1 });
  // 10 discordant, all favouring A: 2 * (1/2)^10 = 0.001953125.
  const many = mcnemarExact(Array(10).fill(true), Array(10).fill(false));
  nodeAssert.equal(many.onlyA, 10);
  nodeAssert.ok(Math.abs(many.p - 2 / 1024) < 1e-12);
  // 8 vs 2: P(X <= 2) = (1 + 10 + 45) / 1024, doubled = 0.109375.
  const mixed = mcnemarExact(
    [...Array(8).fill(true), false, false],
    [...Array(8).fill(false), true, true],
  );
  nodeAssert.ok(Math.abs(mixed.p - 112 / 1024) < 1e-12, String(mixed.p));
  nodeAssert.equal(mcnemarExact([true], [true]).p, 1);
  nodeAssert.throws(() => mcnemarExact([true], []), /equal lengths/);
});

Deno.test("bootstrapCrossed: estimate, deterministic, wider with fewer items, paired zero", () => {
  const seeds = [
    [true, false, true, true],
    [true, true, false, false],
  ];
  const interval = bootstrapCrossed(seeds, { resamples: 500, seed: 7 });
  nodeAssert.equal(interval.estimate, 62.5); // 5 of 8
  nodeAssert.ok(interval.low < 62.5 && interval.high > 62.5);
  nodeAssert.ok(interval.low >= 0 && interval.high <= 100);
  nodeAssert.deepEqual(bootstrapCrossed(seeds, { resamples: 500, seed: 7 }), interval);
  // Every seed perfect: no spread at all.
  const perfect = bootstrapCrossed([[true, true], [true, true]], { resamples: 100 });
  nodeAssert.deepEqual([perfect.low, perfect.high], [100, 100]);
  // Test sampling alone: one seed, 400 items at 50% gives about +-4.9 points (1.96*sqrt(.25/400)).
  const half = [Array.from({ length: 400 }, (_, i) => i % 2 === 0)];
  const wide = bootstrapCrossed(half, { resamples: 2000, seed: 1 });
  nodeAssert.ok(Math.abs((wide.high - wide.low) / 2 - 4.9) < 0.8, JSON.stringify(wide));
  // A paired difference of an arm with itself is exactly zero in every resample.
  const self = bootstrapCrossed(seeds, { baseline: seeds, resamples: 200 });
  nodeAssert.deepEqual([self.estimate, self.low, self.high], [0, 0, 0]);
});

Deno.test("confusionMatrix: rows are truths, columns predictions, unknown answers in 'other'", () => {
  const { classes, matrix } = confusionMatrix(
    ["0", "1", "2", "1", "0"],
    ["0", "2", "2", "x", "1"],
    ["0", "1", "2"],
  );
  nodeAssert.deepEqual(classes, ["0", "1", "2", "other"]);
  nodeAssert.deepEqual(matrix, [
    [1, 1, 0, 0],
    [0, 0, 1, 1],
    [0, 0, 1, 0],
  ]);
});

/** The distinct values a bootstrap's resamples took, rounded to 1e-9. */
function drawnValues(draws: Float64Array): number[] {
  return [...new Set(Array.from(draws, (v) => Math.round(v * 1e9) / 1e9))].sort((a, b) => a - b);
}

Deno.test("crossed bootstrap: one seed, two items: 0, 50, 100 with probabilities 1/4, 1/2, 1/4", () => {
  const draws = crossedBootstrapDraws([[true, false]], { resamples: 4000 });
  nodeAssert.deepEqual(drawnValues(draws), [0, 50, 100]);
  const half = draws.filter((v) => v === 50).length / draws.length;
  nodeAssert.ok(Math.abs(half - 0.5) < 0.03, `P(50) = ${half}`);
  const interval = bootstrapCrossed([[true, false]], { resamples: 4000 });
  nodeAssert.deepEqual([interval.estimate, interval.low, interval.high], [50, 0, 100]);
});

Deno.test("crossed bootstrap: seeds share the drawn items; nested draws them per seed", () => {
  // Two seeds with the same outcomes: crossed, every resample is one item set scored by both,
  // so only 0, 50, 100 occur (drawing items per seed would also give 25 and 75).
  const rows = [[true, false], [true, false]];
  nodeAssert.deepEqual(drawnValues(crossedBootstrapDraws(rows, { resamples: 2000 })), [0, 50, 100]);
  // Everything right: a degenerate interval at 100.
  const all = bootstrapCrossed([[true, true, true], [true, true, true]]);
  nodeAssert.deepEqual([all.estimate, all.low, all.high], [100, 100, 100]);
});

Deno.test("crossed bootstrap: clusters are drawn whole", () => {
  // Items 0, 1 share one image (both right), items 2, 3 another (both wrong): drawing images,
  // a resample holds 0, 2 or 4 right items of 4; drawing items, also 1 or 3.
  const rows = [[true, true, false, false]];
  const byImage = crossedBootstrapDraws(rows, { clusters: ["a", "a", "b", "b"], resamples: 2000 });
  nodeAssert.deepEqual(drawnValues(byImage), [0, 50, 100]);
  const byItem = crossedBootstrapDraws(rows, { resamples: 2000 });
  nodeAssert.deepEqual(drawnValues(byItem), [0, 25, 50, 75, 100]);
});

Deno.test("crossed bootstrap: Bases drawn before seeds (groups)", () => {
  // Base A's two seeds get everything right, Base B's nothing: drawing Bases, a resample is
  // A + A (100), A + B (50) or B + B (0); drawing the four seeds directly also gives 25, 75.
  const right = [true, true];
  const wrong = [false, false];
  const rows = [right, right, wrong, wrong];
  const byBase = crossedBootstrapDraws(rows, { groups: ["A", "A", "B", "B"], resamples: 2000 });
  nodeAssert.deepEqual(drawnValues(byBase), [0, 50, 100]);
  nodeAssert.deepEqual(
    drawnValues(crossedBootstrapDraws(rows, { resamples: 2000 })),
    [0, 25, 50, 75, 100],
  );
});

Deno.test("crossed bootstrap: a paired difference, and shapes that do not cross are refused", () => {
  const a = [[true, true, false, true]];
  const b = [[true, false, false, true]];
  const diff = bootstrapCrossed(a, { baseline: b, resamples: 2000 });
  nodeAssert.equal(diff.estimate, 25);
  nodeAssert.ok(diff.low >= 0 && diff.high <= 100, `${diff.low} ${diff.high}`);
  const same = bootstrapCrossed(a, { baseline: a });
  nodeAssert.deepEqual([same.estimate, same.low, same.high], [0, 0, 0]);
  nodeAssert.throws(
    () => crossedBootstrapDraws([[true], [true, false]]),
    /every seed must score the same test items/,
  );
  nodeAssert.throws(
    () => crossedBootstrapDraws([[true, false]], { clusters: ["a"] }),
    /1 clusters for 2 items/,
  );
});
