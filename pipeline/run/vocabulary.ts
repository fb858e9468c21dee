/**
 * The vocabulary of a run on real data: the words of every prompt its data stages read (train,
 * validation and test files, whole) join the Base's words, so that pretraining, fine-tunes and
 * evaluations share one tokenizer (the Base checkpoint stores it) and no word of the user's data
 * becomes `<unk>`. What each split brings is reported: its words, those new to the Base, and
 * those a split other than train holds but training never shows the model.
 */
import type { Task } from "../../tasks/task.ts";
import { UsageError } from "../lib/cli.ts";
import type { DataParams, Stage } from "../stages/types.ts";
import type { SplitWords, VocabularyReport } from "../report/types.ts";
import { splitWords } from "../model/tokenizer.ts";

/** Most words a run's data may add: beyond this the embedding table outgrows the tiny model. */
export const MAX_DATA_WORDS = 20_000;

/**
 * The words of the run's real data (their prompts as the tasks read them) and the report, or
 * undefined when no data stage reads a source. `base` is the vocabulary before the data.
 */
export async function dataVocabulary(
  stages: readonly Stage[],
  tasks: Record<string, Task>,
  base: readonly string[],
): Promise<{ words: string[]; report: VocabularyReport } | undefined> {
  const bySplit = new Map<string, Map<string, number>>();
  const prompts = new Map<string, number>();
  const seen = new Set<string>();
  // Training files first, so that a file read for two splits counts as train.
  const order = ["train", "val", "test"];
  const data = stages.filter((s) => s.kind === "data").map((s) => s.params as DataParams)
    .sort((a, b) => order.indexOf(a.split) - order.indexOf(b.split));
  for (const p of data) {
    const task = tasks[p.task];
    if (!p.source || !task?.prompts) continue;
    // The same file read for two splits (validation held out of train) counts once, as train.
    const id = `${p.source.path}\u0000${p.source.split ?? ""}`;
    if (seen.has(id) && p.split !== "test") continue;
    seen.add(id);
    const config = { imageSize: p.image_size, patchSize: p.patch_size, params: p.task_params };
    const counts = bySplit.get(p.split) ?? new Map<string, number>();
    const texts = await task.prompts(p.source, config);
    prompts.set(p.split, (prompts.get(p.split) ?? 0) + texts.length);
    for (const text of texts) {
      for (const w of text.split(" ").filter((x) => x !== "")) {
        counts.set(w, (counts.get(w) ?? 0) + 1);
      }
    }
    bySplit.set(p.split, counts);
  }
  if (bySplit.size === 0) return undefined;
  const known = new Set(base);
  const added = new Set<string>();
  for (const counts of bySplit.values()) {
    for (const w of counts.keys()) if (!known.has(w)) added.add(w);
  }
  if (added.size > MAX_DATA_WORDS) {
    throw new UsageError(
      `the data's prompts hold ${added.size} distinct words the Base does not know, expected at ` +
        `most ${MAX_DATA_WORDS} (MAX_DATA_WORDS: every one is a row of the embedding table)`,
    );
  }
  const train = bySplit.get("train") ?? new Map<string, number>();
  const splits: Record<string, SplitWords> = {};
  for (const [split, counts] of [...bySplit.entries()].sort()) {
    const unseen = split === "train"
      ? []
      : [...counts.entries()].filter(([w]) => !train.has(w)).sort((a, b) =>
        b[1] - a[1] || (a[0] < b[0] ? -1 : 1)
      );
    splits[split] = {
      prompts: prompts.get(split) ?? 0,
      tokens: [...counts.values()].reduce((a, b) => a + b, 0),
      distinct: counts.size,
      added: [...counts.keys()].filter((w) => !known.has(w)).length,
      unseenTokens: unseen.reduce((a, [, c]) => a + c, 0),
      unseenExamples: unseen.slice(0, 5).map(([w]) => w),
    };
  }
  return { words: [...added].sort(), report: { added: added.size, splits } };
}

/** One line per split for the run's output: "vocabulary: 12 words from the data; test: ...". */
export function vocabularyLines(report: VocabularyReport): string[] {
  return [
    `vocabulary: ${report.added} word(s) added from the data's prompts`,
    ...Object.entries(report.splits).map(([split, s]) =>
      `  ${split}: ${s.prompts} prompts, ${s.tokens} words (${s.distinct} distinct, ${s.added} ` +
      `new to the Base)` +
      (split === "train"
        ? ""
        : `; ${s.unseenTokens} of its words never occur in a training prompt` +
          (s.unseenExamples.length > 0 ? ` (${s.unseenExamples.join(", ")})` : ""))
    ),
  ];
}

/**
 * Most of an outside evaluation's prompt words (`deno task eval`) that may be unknown to the
 * checkpoint's vocabulary (each becomes `<unk>`): above it the command refuses the labels,
 * since the model would answer questions it cannot read. `--max-unknown` sets another rate.
 */
export const MAX_UNKNOWN_RATE = 0.05;

/** How many of the words of `texts` a vocabulary lacks: the counts and each unknown word. */
export interface UnknownWords {
  words: number;
  unknown: number;
  /** Unknown words, most frequent first, with their counts. */
  distinct: { word: string; count: number }[];
}

/** The words of `texts` (split as the tokenizer splits) that `known` lacks. */
export function unknownWords(texts: readonly string[], known: ReadonlySet<string>): UnknownWords {
  const counts = new Map<string, number>();
  let words = 0;
  let unknown = 0;
  for (const text of texts) {
    for (const w of splitWords(text)) {
      words++;
      if (known.has(w)) continue;
      unknown++;
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  const distinct = [...counts].map(([word, count]) => ({ word, count }))
    .sort((a, b) => b.count - a.count || (a.word < b.word ? -1 : 1));
  return { words, unknown, distinct };
}
