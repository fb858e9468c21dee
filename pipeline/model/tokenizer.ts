/** Word-level tokenizer over a fixed vocabulary (special tokens first). */

export const PAD = "<pad>";
export const EOS = "<eos>";
export const UNK = "<unk>";
const SPECIALS = [PAD, EOS, UNK] as const;

/** Maps words to ids and back. Prompts and answers are words separated by whitespace. */
export class Tokenizer {
  readonly words: readonly string[];
  private readonly ids: Map<string, number>;

  constructor(words: readonly string[]) {
    const unique = [...new Set(words)].filter((w) => !(SPECIALS as readonly string[]).includes(w));
    this.words = [...SPECIALS, ...unique.sort()];
    this.ids = new Map(this.words.map((w, i) => [w, i]));
  }

  get size(): number {
    return this.words.length;
  }

  get padId(): number {
    return 0;
  }

  get eosId(): number {
    return 1;
  }

  /** Ids of the words of `text`; unknown words become <unk>. */
  encode(text: string): number[] {
    const unk = this.ids.get(UNK)!;
    return splitWords(text).map((w) => this.ids.get(w) ?? unk);
  }

  /** Words of `ids` up to (not including) the first <eos>, joined by spaces; <pad> skipped. */
  decode(ids: ArrayLike<number>): string {
    const out: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] === this.eosId) break;
      if (ids[i] === this.padId) continue;
      out.push(this.words[ids[i]] ?? UNK);
    }
    return out.join(" ");
  }
}

/** Whitespace-separated words of `text`. */
export function splitWords(text: string): string[] {
  return text.trim().split(/\s+/).filter((w) => w.length > 0);
}
