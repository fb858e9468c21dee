/**
 * Turns samples into the model's fixed token layout, as flat typed arrays.
 *
 *   position: 0 .. Tv-1        | Tv .. Tv+P-1            | Tv+P .. Tv+P+A-1 | Tv+P+A
 *   content:  visual patches   | <pad>.. prompt (left-padded) | answer <eos> <pad>.. (right-padded)
 *
 * Left-padding the prompt puts the first answer token at the same position in every
 * sample, so the answer-query positions form one [Tq] slice for the whole batch.
 */
import type { Sample } from "../../tasks/task.ts";
import type { Tokenizer } from "./tokenizer.ts";

/** Sizes of the token layout. */
export interface Layout {
  /** Visual tokens (patches). */
  visual: number;
  /** Prompt slots (left-padded). */
  prompt: number;
  /** Answer slots including the closing <eos>. */
  answer: number;
  /** Values per patch: patch_size^2 * 3. */
  patchDim: number;
}

/** Total sequence length of a layout. */
export function sequenceLength(layout: Layout): number {
  return layout.visual + layout.prompt + layout.answer;
}

/** Index of the first query position (the one that predicts the first answer token). */
export function queryStart(layout: Layout): number {
  return layout.visual + layout.prompt - 1;
}

/** Number of KLAL query positions: one per answer slot except the <eos> slot. */
export function queryCount(layout: Layout): number {
  return layout.answer - 1;
}

/** All samples of a split, laid out for the model. */
export interface Encoded {
  layout: Layout;
  n: number;
  /** [N, Tv, patchDim] pixel values of each patch (row-major patches, HWC inside). */
  patches: Float32Array;
  /** [N, T - Tv] token ids of the text part. */
  text: Int32Array;
  /** [N, T] 1 where a key may be attended (visual and real text), 0 for padding. */
  keyMask: Float32Array;
  /** [N, T] id each position should predict (0 where unused). */
  nextToken: Int32Array;
  /** [N, T] 1 where the next-token loss counts (answer tokens and <eos>). */
  lossMask: Float32Array;
  /** [N, Tq] 1 for query positions that predict a real answer token. */
  queryMask: Float32Array;
  /** [N, Tv] ground-truth attention distribution. */
  target: Float32Array;
}

/** The smallest layout that fits `samples` (answer slots: longest answer + <eos>). */
export function layoutFor(
  samples: Sample[],
  tokenizer: Tokenizer,
  patchSize: number,
  minimum?: Partial<Layout>,
): Layout {
  let prompt = minimum?.prompt ?? 1;
  let answer = minimum?.answer ?? 2;
  for (const s of samples) {
    prompt = Math.max(prompt, tokenizer.encode(s.prompt).length);
    answer = Math.max(answer, tokenizer.encode(s.answer).length + 1);
  }
  const side = samples[0].image.width / patchSize;
  return { visual: side * side, prompt, answer, patchDim: patchSize * patchSize * 3 };
}

/** A layout that fits both: the larger prompt and answer slots (same image geometry). */
export function mergeLayouts(a: Layout, b: Layout): Layout {
  return { ...a, prompt: Math.max(a.prompt, b.prompt), answer: Math.max(a.answer, b.answer) };
}

/** Cut an image into patch vectors: [Tv, patchSize*patchSize*3], written into `out` at `offset`. */
export function patchify(
  image: Sample["image"],
  patchSize: number,
  out: Float32Array,
  offset: number,
): void {
  const side = image.width / patchSize;
  let o = offset;
  for (let pr = 0; pr < side; pr++) {
    for (let pc = 0; pc < side; pc++) {
      for (let y = 0; y < patchSize; y++) {
        const rowStart = ((pr * patchSize + y) * image.width + pc * patchSize) * 3;
        out.set(image.data.subarray(rowStart, rowStart + patchSize * 3), o);
        o += patchSize * 3;
      }
    }
  }
}

/** Encode every sample into the layout; answers longer than the layout are an error. */
export function encodeSamples(
  samples: Sample[],
  tokenizer: Tokenizer,
  layout: Layout,
  patchSize: number,
): Encoded {
  const n = samples.length;
  const tv = layout.visual;
  const textLen = layout.prompt + layout.answer;
  const t = tv + textLen;
  const tq = queryCount(layout);
  const enc: Encoded = {
    layout,
    n,
    patches: new Float32Array(n * tv * layout.patchDim),
    text: new Int32Array(n * textLen),
    keyMask: new Float32Array(n * t),
    nextToken: new Int32Array(n * t),
    lossMask: new Float32Array(n * t),
    queryMask: new Float32Array(n * tq),
    target: new Float32Array(n * tv),
  };
  samples.forEach((s, i) => {
    const prompt = tokenizer.encode(s.prompt);
    const answer = [...tokenizer.encode(s.answer), tokenizer.eosId];
    if (prompt.length > layout.prompt || answer.length > layout.answer) {
      throw new Error(
        `sample ${i} does not fit the layout (prompt ${prompt.length}/${layout.prompt}, ` +
          `answer ${answer.length}/${layout.answer})`,
      );
    }
    if (s.target.length !== tv) {
      throw new Error(`sample ${i}: target has ${s.target.length} entries, expected ${tv}`);
    }
    patchify(s.image, patchSize, enc.patches, i * tv * layout.patchDim);
    enc.target.set(s.target, i * tv);
    const text = enc.text.subarray(i * textLen, (i + 1) * textLen);
    const promptStart = layout.prompt - prompt.length;
    text.set(prompt, promptStart);
    text.set(answer, layout.prompt);
    const keys = enc.keyMask.subarray(i * t, (i + 1) * t);
    keys.fill(1, 0, tv);
    keys.fill(1, tv + promptStart, tv + layout.prompt + answer.length);
    // Position p predicts token p+1: answer token j is predicted at queryStart + j.
    const q0 = queryStart(layout);
    for (let j = 0; j < answer.length; j++) {
      enc.nextToken[i * t + q0 + j] = answer[j];
      enc.lossMask[i * t + q0 + j] = 1;
    }
    enc.queryMask.fill(1, i * tq, i * tq + answer.length - 1);
  });
  return enc;
}
