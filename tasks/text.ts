/** Prompt text as the tasks that read it from files store it. */

/**
 * Words of a prompt or expression: lower-cased, punctuation split off as words of its own.
 *
 * @example promptWords("The Dog, on the left!") // ["the", "dog", ",", "on", "the", "left", "!"]
 */
export function promptWords(text: string): string[] {
  return text.toLowerCase().replace(/([.,!?;:"()[\]{}])/g, " $1 ").trim().split(/\s+/)
    .filter((w) => w !== "");
}
