/**
 * Statistics on the test items themselves (each eval entry's predictions.jsonl): bootstrap
 * intervals over seeds crossed with the test items (every seed scores the same items; items
 * that share an image are drawn together), item-level McNemar tests per seed, and the
 * confusion of truth and prediction for tasks whose answers form a small closed set. Pure
 * functions of a ReportInput's `items`.
 */

import {
  bootstrapCrossed,
  type BootstrapInterval,
  confusionMatrix,
  mcnemarExact,
  type McNemarTest,
} from "./stats.ts";
import type { ItemOutcome, ReportInput } from "./types.ts";
import type { Spec } from "../spec/types.ts";
import { baseOfSeed } from "../spec/bases.ts";

/** Resamples of every bootstrap in a report (fixed seed: a report is reproducible). */
export const BOOTSTRAP_RESAMPLES = 2000;

/** At most this many distinct answers make a closed set, shown as a confusion table. */
export const MAX_CONFUSION_CLASSES = 12;

/** One arm's item outcomes per seed, by item index. */
type ItemsBySeed = Map<number, Map<number, ItemOutcome>>;

/** The item outcomes of one task and arm, per seed and item index (empty without items). */
export function itemsOf(input: ReportInput, task: string, arm: string): ItemsBySeed {
  const bySeed: ItemsBySeed = new Map();
  for (const set of input.items ?? []) {
    if (set.task !== task || set.arm !== arm) continue;
    bySeed.set(set.seed, new Map(set.items.map((item) => [item.index, item])));
  }
  return bySeed;
}

// A report asks for the same bootstrap from every file it writes: keep the last few, keyed by
// their whole content, so a repeat costs one key.
const memo = new Map<string, BootstrapInterval>();
const MEMO_SIZE = 256;

function bitString(rows: readonly (readonly boolean[])[]): string {
  return rows.map((row) => row.map((v) => (v ? "1" : "0")).join("")).join("/");
}

function memoBootstrap(
  correct: boolean[][],
  baseline: boolean[][] | undefined,
  clusters: string[],
  groups: readonly number[] | undefined,
): BootstrapInterval {
  const key = `${BOOTSTRAP_RESAMPLES}|${bitString(correct)}|${
    baseline ? bitString(baseline) : ""
  }|${clusters.join("\u0000")}|${groups?.join(",") ?? ""}`;
  const hit = memo.get(key);
  if (hit) return hit;
  const interval = bootstrapCrossed(correct, {
    baseline,
    clusters,
    groups,
    resamples: BOOTSTRAP_RESAMPLES,
  });
  if (memo.size >= MEMO_SIZE) memo.delete(memo.keys().next().value!);
  memo.set(key, interval);
  return interval;
}

function correctness(items: Map<number, ItemOutcome>, indices: readonly number[]): boolean[] {
  return indices.map((i) => items.get(i)!.correct);
}

/** Item indices both arms have for one seed, ascending. */
function sharedIndices(a: Map<number, ItemOutcome>, b: Map<number, ItemOutcome>): number[] {
  return [...a.keys()].filter((i) => b.has(i)).sort((x, y) => x - y);
}

/** The item indices every one of `sets` holds, ascending (the crossed design's items). */
function commonIndices(sets: readonly Map<number, ItemOutcome>[]): number[] {
  if (sets.length === 0) return [];
  return [...sets[0].keys()].filter((i) => sets.every((m) => m.has(i))).sort((x, y) => x - y);
}

/** Each item's cluster: the image it asks about where items share images, else itself. */
function clustersOf(items: Map<number, ItemOutcome>, indices: readonly number[]): string[] {
  return indices.map((i) => items.get(i)!.image ?? `#${i}`);
}

/**
 * The bootstrap interval of one arm's accuracy over `seeds` crossed with the test items they
 * all scored; undefined unless every one of those seeds has item outcomes. `groups` (the Base
 * of each seed, when there are several) makes Bases a level: drawn first, then their seeds.
 */
export function armBootstrap(
  items: ItemsBySeed,
  seeds: readonly number[],
  groups?: readonly number[],
): BootstrapInterval | undefined {
  if (seeds.length === 0 || !seeds.every((s) => (items.get(s)?.size ?? 0) > 0)) return undefined;
  const sets = seeds.map((s) => items.get(s)!);
  const indices = commonIndices(sets);
  if (indices.length === 0) return undefined;
  return memoBootstrap(
    sets.map((set) => correctness(set, indices)),
    undefined,
    clustersOf(sets[0], indices),
    groups,
  );
}

/**
 * The paired bootstrap interval of accuracy(a) - accuracy(b) over `seeds` crossed with the
 * test items both arms scored on every seed (the same draws for both); undefined unless there
 * are such items. `groups` as for armBootstrap.
 */
export function pairedBootstrap(
  a: ItemsBySeed,
  b: ItemsBySeed,
  seeds: readonly number[],
  groups?: readonly number[],
): BootstrapInterval | undefined {
  if (seeds.length === 0 || !seeds.every((s) => a.has(s) && b.has(s))) return undefined;
  const setsA = seeds.map((s) => a.get(s)!);
  const setsB = seeds.map((s) => b.get(s)!);
  const indices = commonIndices([...setsA, ...setsB]);
  if (indices.length === 0) return undefined;
  return memoBootstrap(
    setsA.map((set) => correctness(set, indices)),
    setsB.map((set) => correctness(set, indices)),
    clustersOf(setsA[0], indices),
    groups,
  );
}

/** McNemar on one seed's shared items: onlyA = items only the first arm got right. */
export interface SeedMcNemar extends McNemarTest {
  seed: number;
  /** Items both arms were scored on. */
  n: number;
}

/** The exact McNemar test of two arms per seed, on the test items both have. */
export function mcnemarBySeed(
  a: ItemsBySeed,
  b: ItemsBySeed,
  seeds: readonly number[],
): SeedMcNemar[] {
  return seeds.flatMap((seed) => {
    if (!a.has(seed) || !b.has(seed)) return [];
    const indices = sharedIndices(a.get(seed)!, b.get(seed)!);
    if (indices.length === 0) return [];
    const test = mcnemarExact(
      correctness(a.get(seed)!, indices),
      correctness(b.get(seed)!, indices),
    );
    return [{ seed, n: indices.length, ...test }];
  });
}

/** Whitespace-normalised answer text, as the exact-match scorer compares it. */
export function normaliseAnswer(text: string): string {
  return text.trim().replace(/\s+/g, " ");
}

/** Numbers in numeric order ("2" before "10"), then other answers alphabetically. */
function answerOrder(a: string, b: string): number {
  const x = Number(a);
  const y = Number(b);
  const numeric = (v: string, n: number) => v !== "" && Number.isFinite(n);
  if (numeric(a, x) && numeric(b, y)) return x - y;
  if (numeric(a, x) !== numeric(b, y)) return numeric(a, x) ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The closed answer set of a task: its distinct true answers over every item outcome, in
 * order, when there are at most MAX_CONFUSION_CLASSES; undefined otherwise (free-form answers
 * such as points and boxes, or a grid of many cells).
 */
export function answerClasses(input: ReportInput, task: string): string[] | undefined {
  const answers = new Set<string>();
  for (const set of input.items ?? []) {
    if (set.task !== task) continue;
    for (const item of set.items) answers.add(normaliseAnswer(item.answer));
    if (answers.size > MAX_CONFUSION_CLASSES) return undefined;
  }
  return answers.size > 0 ? [...answers].sort(answerOrder) : undefined;
}

/** Truth x prediction counts of one arm, pooled over its seeds. */
export interface ArmConfusion {
  task: string;
  arm: string;
  seeds: number[];
  /** The true answers, then "other" (a prediction outside them) as the last column. */
  classes: string[];
  /** matrix[truth][prediction]: rows are the true answers (without "other"). */
  matrix: number[][];
}

/** An arm's confusion counts on a closed-set task, pooled over seeds. */
export function armConfusion(
  task: string,
  arm: string,
  items: ItemsBySeed,
  classes: readonly string[],
): ArmConfusion | undefined {
  const seeds = [...items.keys()].sort((a, b) => a - b);
  if (seeds.length === 0) return undefined;
  const truths: string[] = [];
  const predictions: string[] = [];
  for (const seed of seeds) {
    for (const item of items.get(seed)!.values()) {
      truths.push(normaliseAnswer(item.answer));
      predictions.push(normaliseAnswer(item.prediction));
    }
  }
  const { classes: columns, matrix } = confusionMatrix(truths, predictions, classes);
  return { task, arm, seeds, classes: columns, matrix };
}

/**
 * Per seed of a fine-tuned arm, the seed of its Base, when the spec lists several Bases
 * (base.seed a list; ../spec/bases.ts) and `seeds` span more than one; undefined otherwise
 * (one Base, one per seed, or seeds of one Base only).
 */
export function baseGroups(
  spec: Spec,
  arm: string,
  seeds: readonly number[],
): number[] | undefined {
  if (!Array.isArray(spec.base.seed) || !spec.arms[arm]?.finetune) return undefined;
  if (!seeds.every((s) => spec.seeds.includes(s))) return undefined;
  const groups = seeds.map((s) => baseOfSeed(spec, s));
  // Seeds of one Base only (a control on the first Base's seeds): Bases are no level there.
  return new Set(groups).size > 1 ? groups : undefined;
}
