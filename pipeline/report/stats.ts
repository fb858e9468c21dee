/**
 * Small-sample statistics for reports: means, Student-t confidence intervals, a paired
 * t-test with an exact two-sided p-value, and the Wilson interval for a proportion.
 * Pure functions, so tests can check them against hand-computed values.
 */
import { Rng } from "../lib/rng.ts";

/** Arithmetic mean; NaN for an empty list. */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Sample standard deviation (n - 1 denominator); NaN when n < 2. */
export function sampleStd(values: readonly number[]): number {
  const n = values.length;
  if (n < 2) return NaN;
  const m = mean(values);
  let squares = 0;
  for (const v of values) squares += (v - m) * (v - m);
  return Math.sqrt(squares / (n - 1));
}

const tCriticalMemo = new Map<number, number>();

/**
 * t_{0.975, dof}, the two-sided 95% Student-t critical value, for any dof >= 1 (not only
 * whole ones): the t at which studentTTwoSidedP is 0.05, found by bisection to 1e-12 (the p
 * falls as t grows). NaN for dof < 1.
 *
 * @example tCritical95(4) // 2.7764451...
 */
export function tCritical95(dof: number): number {
  if (!(dof >= 1)) return NaN;
  const known = tCriticalMemo.get(dof);
  if (known !== undefined) return known;
  let lo = 1.9; // below t_{0.975, infinity} = 1.95996...
  let hi = 13; // above t_{0.975, 1} = 12.7062...
  while (hi - lo > 1e-12) {
    const mid = (lo + hi) / 2;
    if (studentTTwoSidedP(mid, dof) > 0.05) lo = mid;
    else hi = mid;
  }
  const t = (lo + hi) / 2;
  tCriticalMemo.set(dof, t);
  return t;
}

/** A mean with its 95% confidence interval; `halfWidth` is undefined when n < 2. */
export interface ConfidenceInterval {
  n: number;
  mean: number;
  halfWidth: number | undefined;
  low: number | undefined;
  high: number | undefined;
}

/** 95% CI of the mean: half-width = t_{0.975, n-1} * s / sqrt(n); undefined half-width for n < 2. */
export function ci95(values: readonly number[]): ConfidenceInterval {
  const n = values.length;
  const m = mean(values);
  if (n < 2) return { n, mean: m, halfWidth: undefined, low: undefined, high: undefined };
  const halfWidth = tCritical95(n - 1) * sampleStd(values) / Math.sqrt(n);
  return { n, mean: m, halfWidth, low: m - halfWidth, high: m + halfWidth };
}

/** Natural log of the gamma function (Lanczos approximation, g = 7, ~15 digits) for x > 0. */
export function logGamma(x: number): number {
  if (x < 0.5) {
    // Reflection keeps the series in its accurate range.
    return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  }
  const c = [
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  const z = x - 1;
  let sum = c[0];
  for (let i = 1; i < c.length; i++) sum += c[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** Continued fraction for the incomplete beta function (modified Lentz, Numerical Recipes). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - qab * x / qap;
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return h;
}

/** Regularized incomplete beta I_x(a, b) for 0 <= x <= 1, a, b > 0. */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0) || !(x >= 0 && x <= 1)) return NaN;
  if (x === 0) return 0;
  if (x === 1) return 1;
  const logFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) +
    b * Math.log(1 - x);
  const front = Math.exp(logFront);
  // The continued fraction converges fast for x < (a+1)/(a+b+2); use the symmetry otherwise.
  if (x < (a + 1) / (a + b + 2)) return front * betaContinuedFraction(x, a, b) / a;
  return 1 - front * betaContinuedFraction(1 - x, b, a) / b;
}

/** Two-sided p-value P(|T| >= |t|) for Student's t with `dof` degrees of freedom. */
export function studentTTwoSidedP(t: number, dof: number): number {
  if (Number.isNaN(t) || !(dof > 0)) return NaN;
  if (!Number.isFinite(t)) return 0;
  return regularizedIncompleteBeta(dof / (dof + t * t), dof / 2, 0.5);
}

/** Result of a paired t-test on a - b. */
export interface PairedTTest {
  n: number;
  meanDiff: number;
  t: number;
  dof: number;
  /** Two-sided p; undefined when n < 2. */
  p: number | undefined;
}

/**
 * Paired two-sided t-test of mean(a - b) = 0. n < 2 gives t = NaN and p undefined;
 * identical pairs (all differences equal zero) give t = 0, p = 1.
 */
export function pairedTTest(a: readonly number[], b: readonly number[]): PairedTTest {
  if (a.length !== b.length) {
    throw new Error(`pairedTTest: expected equal lengths, got ${a.length} and ${b.length}`);
  }
  const diffs = a.map((v, i) => v - b[i]);
  const n = diffs.length;
  const meanDiff = mean(diffs);
  const dof = n - 1;
  if (n < 2) return { n, meanDiff, t: NaN, dof, p: undefined };
  const sd = sampleStd(diffs);
  if (sd === 0) {
    // Every pair differs by the same amount: no spread to test against.
    if (meanDiff === 0) return { n, meanDiff, t: 0, dof, p: 1 };
    return { n, meanDiff, t: meanDiff > 0 ? Infinity : -Infinity, dof, p: 0 };
  }
  const t = meanDiff / (sd / Math.sqrt(n));
  return { n, meanDiff, t, dof, p: studentTTwoSidedP(t, dof) };
}

/** A proportion with its Wilson score interval. */
export interface ProportionInterval {
  estimate: number;
  low: number;
  high: number;
}

/** Wilson score interval for successes / n (default z = 1.96, 95%); n = 0 gives [0, 1]. */
export function wilsonInterval(successes: number, n: number, z = 1.96): ProportionInterval {
  if (n <= 0) return { estimate: NaN, low: 0, high: 1 };
  const phat = successes / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const center = (phat + z2 / (2 * n)) / denominator;
  const half = z * Math.sqrt(phat * (1 - phat) / n + z2 / (4 * n * n)) / denominator;
  return { estimate: phat, low: Math.max(0, center - half), high: Math.min(1, center + half) };
}

/**
 * Holm's step-down adjustment of p-values for a family of tests (controls the family-wise
 * error rate). Returns adjusted p-values in the input order; undefined stays undefined
 * and is left out of the family.
 *
 * @example holmAdjust([0.01, 0.04, 0.03]) // [0.03, 0.06, 0.06]
 */
export function holmAdjust(pValues: readonly (number | undefined)[]): (number | undefined)[] {
  const present = pValues
    .map((p, index) => ({ p, index }))
    .filter((e): e is { p: number; index: number } => e.p !== undefined && !Number.isNaN(e.p))
    .sort((a, b) => a.p - b.p);
  const m = present.length;
  const adjusted: (number | undefined)[] = pValues.map(() => undefined);
  let running = 0;
  present.forEach(({ p, index }, rank) => {
    // Monotone: an adjusted p is never below the one of a smaller raw p.
    running = Math.max(running, Math.min(1, (m - rank) * p));
    adjusted[index] = running;
  });
  return adjusted;
}

/** log of the binomial coefficient C(n, k). */
function logChoose(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/** Item-level McNemar test of two classifiers scored on the same items. */
export interface McNemarTest {
  /** Items only the first got right. */
  onlyA: number;
  /** Items only the second got right. */
  onlyB: number;
  /** Exact two-sided p (binomial on the discordant items, p = 1/2); 1 when none differ. */
  p: number;
}

/**
 * Exact McNemar test: under the null, each discordant item is equally likely to favour
 * either arm, so min(onlyA, onlyB) ~ Binomial(onlyA + onlyB, 1/2); two-sided p doubles the
 * tail (capped at 1).
 */
export function mcnemarExact(a: readonly boolean[], b: readonly boolean[]): McNemarTest {
  if (a.length !== b.length) {
    throw new Error(`mcnemarExact: expected equal lengths, got ${a.length} and ${b.length}`);
  }
  let onlyA = 0;
  let onlyB = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] && !b[i]) onlyA++;
    else if (!a[i] && b[i]) onlyB++;
  }
  const n = onlyA + onlyB;
  if (n === 0) return { onlyA, onlyB, p: 1 };
  const k = Math.min(onlyA, onlyB);
  let tail = 0;
  if (n <= 1000) {
    // Products of small integers and a power of two: exact for the counts that matter.
    let term = Math.pow(0.5, n);
    for (let i = 0; i <= k; i++) {
      tail += term;
      term = term * (n - i) / (i + 1);
    }
  } else {
    for (let i = 0; i <= k; i++) tail += Math.exp(logChoose(n, i) - n * Math.LN2);
  }
  return { onlyA, onlyB, p: Math.min(1, 2 * tail) };
}

/** A percentile bootstrap interval. */
export interface BootstrapInterval {
  estimate: number;
  low: number;
  high: number;
  resamples: number;
}

/** The mean of `values` within each group, in first-seen order of the groups. */
export function groupMeans(values: readonly number[], groups: readonly number[]): number[] {
  const byGroup = new Map<number, number[]>();
  groups.forEach((g, i) => byGroup.set(g, [...byGroup.get(g) ?? [], values[i]]));
  return [...byGroup.values()].map(mean);
}

/** The q-quantile (0..1) of sorted values, linear between order statistics. */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const position = (sorted.length - 1) * q;
  const lo = Math.floor(position);
  const hi = Math.ceil(position);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (position - lo);
}

/** How the test items and seeds of a bootstrap were drawn in the experiment. */
export interface BootstrapDesign {
  /**
   * The cluster of each test item (items that share an image): a resample draws clusters with
   * replacement and takes all their items; by default every item is its own cluster.
   */
  clusters?: readonly (string | number)[];
  /**
   * The group of each seed (the Base it was fine-tuned from): a resample draws groups with
   * replacement, then seeds within each drawn group; by default seeds are drawn directly.
   */
  groups?: readonly (string | number)[];
}

/** A crossed bootstrap's options: the paired arm, the resamples and their seed, the design. */
export type BootstrapOptions = {
  /** The other arm's outcomes (same shape): the statistic is then the paired difference. */
  baseline?: readonly (readonly boolean[])[];
  /** Resamples drawn (default 2000). */
  resamples?: number;
  /** The resampling's seed (default 12345: a report is reproducible). */
  seed?: number;
} & BootstrapDesign;

/** Indices 0..n-1 grouped by label, in first-seen order. */
function groupIndices(labels: readonly (string | number)[]): number[][] {
  const byLabel = new Map<string | number, number[]>();
  labels.forEach((label, i) => {
    const list = byLabel.get(label) ?? [];
    list.push(i);
    byLabel.set(label, list);
  });
  return [...byLabel.values()];
}

/**
 * The resampled statistics of a crossed bootstrap (see bootstrapCrossed): one accuracy, or
 * paired difference, per resample, in draw order.
 */
export function crossedBootstrapDraws(
  correct: readonly (readonly boolean[])[],
  options: BootstrapOptions = {},
): Float64Array {
  const resamples = options.resamples ?? 2000;
  const k = correct.length;
  const n = k === 0 ? 0 : correct[0].length;
  const { baseline } = options;
  if (correct.some((row) => row.length !== n)) {
    throw new Error("crossed bootstrap: every seed must score the same test items");
  }
  if (baseline && (baseline.length !== k || baseline.some((row) => row.length !== n))) {
    throw new Error(`crossed bootstrap: the baseline must have ${k} seeds of ${n} items`);
  }
  if (options.clusters && options.clusters.length !== n) {
    throw new Error(`crossed bootstrap: ${options.clusters.length} clusters for ${n} items`);
  }
  if (options.groups && options.groups.length !== k) {
    throw new Error(`crossed bootstrap: ${options.groups.length} groups for ${k} seeds`);
  }
  const draws = new Float64Array(resamples);
  if (k === 0 || n === 0) return draws.fill(NaN);
  // Per seed, per item: 1 right, 0 wrong (the difference with the baseline: -1, 0 or 1).
  const value = correct.map((row, s) =>
    Int8Array.from(row, (v, i) => (v ? 1 : 0) - (baseline?.[s][i] ? 1 : 0))
  );
  const clusters = groupIndices(options.clusters ?? Array.from({ length: n }, (_, i) => i));
  const groups = groupIndices(options.groups ?? Array.from({ length: k }, () => 0));
  const direct = options.groups === undefined;
  const rng = new Rng(options.seed ?? 12345);
  const pick = (m: number) => Math.floor(rng.next() * m);
  for (let r = 0; r < resamples; r++) {
    // Seeds: groups drawn, then seeds within each drawn group (or seeds drawn directly).
    const seeds: number[] = [];
    if (direct) { for (let j = 0; j < k; j++) seeds.push(pick(k)); }
    else {
      for (let g = 0; g < groups.length; g++) {
        const group = groups[pick(groups.length)];
        for (let j = 0; j < group.length; j++) seeds.push(group[pick(group.length)]);
      }
    }
    // Items: clusters drawn with replacement; the same items for every drawn seed (crossed).
    const items: number[] = [];
    for (let c = 0; c < clusters.length; c++) items.push(...clusters[pick(clusters.length)]);
    let sum = 0;
    for (const s of seeds) {
      const row = value[s];
      for (const i of items) sum += row[i];
    }
    draws[r] = 100 * sum / (seeds.length * items.length);
  }
  return draws;
}

/**
 * Percentile bootstrap of accuracy (%) for a crossed design: every seed scored the same test
 * items, so a resample draws seeds (or, with `groups`, Bases and then seeds within each) and,
 * independently, one set of items (or, with `clusters`, of images) that every drawn seed is
 * scored on. The interval then holds the seed-to-seed and Base-to-Base variation and the
 * test-sampling error, without counting one test item as independent draws per seed. With
 * `baseline` (same shape) the statistic is the paired difference, the same draws for both.
 */
export function bootstrapCrossed(
  correct: readonly (readonly boolean[])[],
  options: BootstrapOptions = {},
): BootstrapInterval {
  const resamples = options.resamples ?? 2000;
  const k = correct.length;
  if (k === 0) return { estimate: NaN, low: NaN, high: NaN, resamples: 0 };
  const draws = crossedBootstrapDraws(correct, options);
  let sum = 0;
  let total = 0;
  correct.forEach((row, s) =>
    row.forEach((v, i) => {
      sum += (v ? 1 : 0) - (options.baseline?.[s][i] ? 1 : 0);
      total++;
    })
  );
  const sorted = Array.from(draws).sort((a, b) => a - b);
  return {
    estimate: total === 0 ? NaN : 100 * sum / total,
    low: quantileSorted(sorted, 0.025),
    high: quantileSorted(sorted, 0.975),
    resamples,
  };
}

/**
 * Confusion counts: `matrix[t][p]` = items whose true class is `classes[t]` and predicted
 * class `classes[p]`; predictions outside `classes` are counted in the last column "other".
 */
export function confusionMatrix(
  truths: readonly string[],
  predictions: readonly string[],
  classes: readonly string[],
): { classes: string[]; matrix: number[][] } {
  const columns = [...classes, "other"];
  const matrix = classes.map(() => columns.map(() => 0));
  truths.forEach((truth, i) => {
    const t = classes.indexOf(truth);
    if (t < 0) return;
    const p = classes.indexOf(predictions[i]);
    matrix[t][p < 0 ? classes.length : p]++;
  });
  return { classes: columns, matrix };
}
