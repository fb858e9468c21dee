/**
 * Fixed-answer floors: what a model that ignores the image and always gives one answer
 * scores on a test set. A claim about a trained arm is only worth stating above the larger
 * of this floor and NTP.
 *
 * The constant is chosen among the answers the test set itself holds (the majority answer
 * for classification-style tasks; for point and box answers the best single point or box,
 * scored with the task's own `score`), so the floor is the best any constant from that set
 * can do: an optimistic floor, which makes claims against it conservative.
 */
import type { Sample, ShortcutRule, Task } from "../../tasks/task.ts";

/** The best constant answer and its accuracy (%) on the test samples. */
export interface Floor {
  answer: string;
  accuracy: number;
  /** How the constant was found: the most common answer, or the best scored candidate. */
  kind: "majority" | "best-constant";
  /** Candidate answers scored (distinct answers, or a subsample of them). */
  candidates: number;
}

/** Up to this many distinct candidate answers are scored against every sample. */
const MAX_CANDIDATES = 400;

/**
 * The fixed-answer floor of `task` on `samples`. When every answer scores only itself
 * (exact-match tasks) the floor is the majority answer; otherwise each distinct answer
 * (the most common `MAX_CANDIDATES` of them) is scored as a constant prediction against
 * every sample with `task.score`, and the best wins (ties: the more common answer).
 *
 * @example fixedAnswerFloor(lineIntersection, testSamples) // { answer: "1", accuracy: 33.4, ... }
 */
export function fixedAnswerFloor(task: Pick<Task, "score">, samples: Sample[]): Floor {
  if (samples.length === 0) return { answer: "", accuracy: NaN, kind: "majority", candidates: 0 };
  const counts = new Map<string, number>();
  for (const s of samples) counts.set(s.answer, (counts.get(s.answer) ?? 0) + 1);
  const byFrequency = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const exactOnly = samples.every((s) =>
    byFrequency.every(([answer]) => task.score(answer, s) === (answer === s.answer))
  );
  if (exactOnly) {
    const [answer, count] = byFrequency[0];
    return {
      answer,
      accuracy: 100 * count / samples.length,
      kind: "majority",
      candidates: byFrequency.length,
    };
  }
  const candidates = byFrequency.slice(0, MAX_CANDIDATES);
  let best = { answer: candidates[0][0], hits: -1 };
  for (const [answer] of candidates) {
    let hits = 0;
    for (const s of samples) if (task.score(answer, s)) hits++;
    if (hits > best.hits) best = { answer, hits };
  }
  return {
    answer: best.answer,
    accuracy: 100 * best.hits / samples.length,
    kind: "best-constant",
    candidates: candidates.length,
  };
}

/** A shortcut rule's score: what answering from the rule's feature alone gets. */
export interface ShortcutFloor {
  rule: string;
  accuracy: number;
}

/**
 * Each rule's accuracy (%) on `samples`: for every value of the rule's feature, the most
 * common answer among the samples with that value, fitted on the scored samples themselves
 * like the fixed-answer floor, so an optimistic floor.
 * Exact answers only (the tasks with shortcut rules are exact-match ones). Sorted best first.
 *
 * @example shortcutFloors([PARITY_SHORTCUT], testSamples) // [{ rule: "...", accuracy: 66.7 }]
 */
export function shortcutFloors(
  rules: readonly ShortcutRule[],
  samples: readonly Sample[],
): ShortcutFloor[] {
  if (samples.length === 0) return [];
  return rules.map((rule) => {
    const byValue = new Map<string | number, Map<string, number>>();
    for (const s of samples) {
      const value = rule.feature(s);
      const counts = byValue.get(value) ?? new Map<string, number>();
      counts.set(s.answer, (counts.get(s.answer) ?? 0) + 1);
      byValue.set(value, counts);
    }
    let hits = 0;
    for (const counts of byValue.values()) {
      hits += Math.max(...counts.values());
    }
    return { rule: rule.name, accuracy: 100 * hits / samples.length };
  }).sort((a, b) => b.accuracy - a.accuracy);
}
