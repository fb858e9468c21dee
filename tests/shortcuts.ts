/**
 * Shortcut probes for the synthetic tasks: simple rules that answer without looking at
 * what the question is about (the prompt alone, or a few numbers of the layout), each
 * fitted on the first half of a set of samples and scored on the second half. A task
 * whose answers such a rule predicts well above the majority answer can be learnt
 * without grounding, which defeats the point of supervising attention on it.
 *
 * The halves are contiguous (first half fits, second half scores), never even / odd,
 * because generators may order answers (Line Tracing alternates yes / no by index).
 */

import type { Point } from "../tasks/draw.ts";

/** How one rule did on the held-out half. */
export interface RuleScore {
  rule: string;
  /** Accuracy on the held-out half, percent. */
  accuracy: number;
  /** Accuracy of the fit half's majority answer on the held-out half, percent. */
  majority: number;
  /** Held-out samples scored. */
  n: number;
}

/** A fitted threshold rule: `below` when value <= threshold, else `above`. */
export interface ThresholdRule {
  threshold: number;
  below: string;
  above: string;
}

/** The most frequent label (ties: the smallest label in string order), or "" for none. */
export function majorityLabel(labels: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  let best = "";
  let bestCount = -1;
  for (const [label, count] of [...counts.entries()].sort((a, b) => a[0] < b[0] ? -1 : 1)) {
    if (count > bestCount) [best, bestCount] = [label, count];
  }
  return best;
}

/** Splits at n / 2 (rounded down): [fit half, held-out half]. */
export function halves<T>(items: readonly T[]): [T[], T[]] {
  const cut = Math.floor(items.length / 2);
  return [items.slice(0, cut), items.slice(cut)];
}

function percentCorrect(predictions: readonly string[], labels: readonly string[]): number {
  if (labels.length === 0) return 0;
  let right = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) right++;
  return (100 * right) / labels.length;
}

/**
 * The threshold on `values` and the label on each side that answer `labels` best (each
 * side answers its majority label); candidate thresholds lie between consecutive
 * distinct values, plus one below all (a single bin).
 */
export function fitThreshold(values: readonly number[], labels: readonly string[]): ThresholdRule {
  if (values.length !== labels.length) {
    throw new Error(`Expected as many values as labels, got ${values.length} and ${labels.length}`);
  }
  const order = [...values.keys()].sort((a, b) => values[a] - values[b]);
  const classes = [...new Set(labels)].sort();
  const index = new Map(classes.map((c, k) => [c, k]));
  const total = new Array(classes.length).fill(0);
  for (const l of labels) total[index.get(l)!]++;
  const left = new Array(classes.length).fill(0);
  const argmax = (counts: number[]) => counts.reduce((b, c, k) => c > counts[b] ? k : b, 0);
  const all = argmax(total);
  let best: ThresholdRule = {
    threshold: -Infinity,
    below: classes[all] ?? "",
    above: classes[all] ?? "",
  };
  let bestRight = total[all] ?? 0;
  for (let k = 0; k < order.length - 1; k++) {
    left[index.get(labels[order[k]])!]++;
    const v = values[order[k]];
    const next = values[order[k + 1]];
    if (next === v) continue;
    const right = total.map((t, c) => t - left[c]);
    const a = argmax(left);
    const b = argmax(right);
    const correct = left[a] + right[b];
    if (correct > bestRight) {
      bestRight = correct;
      best = { threshold: (v + next) / 2, below: classes[a], above: classes[b] };
    }
  }
  return best;
}

/** The rule's answer for one value. */
export function applyThreshold(rule: ThresholdRule, value: number): string {
  return value <= rule.threshold ? rule.below : rule.above;
}

/**
 * A threshold on one number per sample, fitted on the first half of (values, labels)
 * and scored on the second half, beside the majority answer fitted and scored the same way.
 */
export function bestThresholdRule(
  values: readonly number[],
  labels: readonly string[],
  rule = "threshold",
): RuleScore & { fitted: ThresholdRule } {
  const [fitValues, testValues] = halves(values);
  const [fitLabels, testLabels] = halves(labels);
  const fitted = fitThreshold(fitValues, fitLabels);
  return {
    rule,
    accuracy: percentCorrect(testValues.map((v) => applyThreshold(fitted, v)), testLabels),
    majority: majorityRule(labels).accuracy,
    n: testLabels.length,
    fitted,
  };
}

/** The fit half's majority answer, scored on the held-out half. */
export function majorityRule(labels: readonly string[]): RuleScore {
  const [fit, test] = halves(labels);
  const answer = majorityLabel(fit);
  const accuracy = percentCorrect(test.map(() => answer), test);
  return { rule: "majority answer", accuracy, majority: accuracy, n: test.length };
}

/**
 * The prompt alone: each distinct prompt answers its majority answer on the fit half
 * (prompts not seen there answer the fit half's overall majority), scored on the other.
 */
export function promptMajorityRule(
  prompts: readonly string[],
  labels: readonly string[],
): RuleScore {
  const [fitPrompts, testPrompts] = halves(prompts);
  const [fitLabels, testLabels] = halves(labels);
  const byPrompt = new Map<string, string[]>();
  fitPrompts.forEach((p, i) => {
    const list = byPrompt.get(p) ?? [];
    list.push(fitLabels[i]);
    byPrompt.set(p, list);
  });
  const fallback = majorityLabel(fitLabels);
  const answer = new Map([...byPrompt].map(([p, ls]) => [p, majorityLabel(ls)]));
  return {
    rule: "prompt alone",
    accuracy: percentCorrect(testPrompts.map((p) => answer.get(p) ?? fallback), testLabels),
    majority: majorityRule(labels).accuracy,
    n: testLabels.length,
  };
}

/** The table of rules, one line each, for test logs. */
export function formatRuleTable(title: string, scores: readonly RuleScore[]): string {
  const width = Math.max(4, ...scores.map((s) => s.rule.length));
  const lines = [
    title,
    `  ${"rule".padEnd(width)}  accuracy %  majority %  held-out n`,
    ...scores.map((s) =>
      `  ${s.rule.padEnd(width)}  ${s.accuracy.toFixed(1).padStart(10)}  ${
        s.majority.toFixed(1).padStart(10)
      }  ${String(s.n).padStart(10)}`
    ),
  ];
  return lines.join("\n");
}

// ---------------------------------------------------------------- node geometry

/** True when the open segments p1-p2 and q1-q2 cross (proper crossing, not touching). */
export function segmentsCross(p1: Point, p2: Point, q1: Point, q2: Point): boolean {
  const side = (a: Point, b: Point, c: Point) =>
    Math.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]));
  return side(p1, p2, q1) * side(p1, p2, q2) < 0 && side(q1, q2, p1) * side(q1, q2, p2) < 0;
}

/**
 * How many straight chords between two of the other nodes (every pair not containing
 * node a or b) the chord a-b crosses: a layout number that needs no tracing.
 */
export function otherChordsCrossed(nodes: readonly Point[], a: number, b: number): number {
  let count = 0;
  for (let i = 0; i < nodes.length; i++) {
    if (i === a || i === b) continue;
    for (let j = i + 1; j < nodes.length; j++) {
      if (j === a || j === b) continue;
      if (segmentsCross(nodes[a], nodes[b], nodes[i], nodes[j])) count++;
    }
  }
  return count;
}

/** Straight-line distance between nodes a and b, px. */
export function nodeDistance(nodes: readonly Point[], a: number, b: number): number {
  return Math.hypot(nodes[a][0] - nodes[b][0], nodes[a][1] - nodes[b][1]);
}

/** Rank of node b among node a's other nodes by distance (0: a's nearest). */
export function neighbourRank(nodes: readonly Point[], a: number, b: number): number {
  const d = nodeDistance(nodes, a, b);
  let rank = 0;
  for (let k = 0; k < nodes.length; k++) {
    if (k !== a && k !== b && nodeDistance(nodes, a, k) < d) rank++;
  }
  return rank;
}
