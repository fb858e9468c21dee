/**
 * What the Base has seen of a task's questions: how many of the task's distinct test prompts
 * occur word for word among the Base's pretraining prompts, and how many of their words occur
 * there at all. A gain measured on prompts the Base was pretrained on is a gain on a question
 * it already knows; the report states this beside every task.
 */

/** The overlap of a task's test prompts with the Base's pretraining prompts. */
export interface PromptOverlap {
  /** Distinct test prompts (lower-cased, spaces collapsed). */
  distinct: number;
  /** How many of them occur word for word among the pretraining prompts. */
  seen: number;
  /** Distinct words of the test prompts, and how many of them the pretraining prompts use. */
  words: number;
  wordsSeen: number;
  /** Up to three of the prompts seen, in sorted order. */
  examples: string[];
}

const normalise = (prompt: string) => prompt.trim().toLowerCase().split(/\s+/).join(" ");

/**
 * The overlap of `test` prompts with `pretraining` prompts.
 *
 * @example promptOverlap(["point to the cat"], ["point to the dog"]) // seen 0, wordsSeen 3 of 4
 */
export function promptOverlap(
  test: readonly string[],
  pretraining: readonly string[],
): PromptOverlap {
  const seenPrompts = new Set(pretraining.map(normalise));
  const seenWords = new Set([...seenPrompts].flatMap((p) => p.split(" ")));
  const distinct = [...new Set(test.map(normalise))].sort();
  const shared = distinct.filter((p) => seenPrompts.has(p));
  const words = [...new Set(distinct.flatMap((p) => p.split(" ")))];
  return {
    distinct: distinct.length,
    seen: shared.length,
    words: words.length,
    wordsSeen: words.filter((w) => seenWords.has(w)).length,
    examples: shared.slice(0, 3),
  };
}
