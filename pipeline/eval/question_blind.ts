/**
 * Question-blind attention baselines: attention that ignores what the question asks about,
 * spread evenly over every patch with ink (a patch that differs from the image's background)
 * or, where the data lists them, over the patches of every candidate object of the image,
 * scored with the target-attention ratio a model gets (./evaluate.ts): the mass on the target
 * patches over their share of the visual tokens. A model's ratio says something about the
 * question only above this: on a plain background, attending to "whatever is drawn" already
 * puts mass on the target.
 */
import type { Sample } from "../../tasks/task.ts";
import { targetSupport } from "./target_support.ts";

/** A pixel is ink when one of its channels differs from the background by more than this. */
export const INK_THRESHOLD = 0.15;

/** The background: the image's most common colour, channels quantised to 1/16. */
function background(image: Sample["image"]): [number, number, number] {
  const counts = new Map<number, number>();
  const q = (v: number) => Math.max(0, Math.min(15, Math.round(v * 15)));
  let best = 0;
  let bestCount = -1;
  for (let i = 0; i < image.width * image.height; i++) {
    const d = image.data;
    const key = (q(d[3 * i]) << 8) | (q(d[3 * i + 1]) << 4) | q(d[3 * i + 2]);
    const c = (counts.get(key) ?? 0) + 1;
    counts.set(key, c);
    if (c > bestCount) [best, bestCount] = [key, c];
  }
  return [(best >> 8) / 15, ((best >> 4) & 15) / 15, (best & 15) / 15];
}

/** Which patches of `image` (row-major, `patchSize` px squares) hold ink. */
export function inkPatches(image: Sample["image"], patchSize: number): boolean[] {
  const side = image.width / patchSize;
  const bg = background(image);
  const ink = new Array<boolean>(side * side).fill(false);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const i = 3 * (y * image.width + x);
      const differs = [0, 1, 2].some((c) => Math.abs(image.data[i + c] - bg[c]) > INK_THRESHOLD);
      if (differs) ink[Math.floor(y / patchSize) * side + Math.floor(x / patchSize)] = true;
    }
  }
  return ink;
}

/**
 * The target-attention ratio of attention spread evenly over the ink patches, for one sample:
 * |ink ∩ target| / |ink| over |target| / Tv (1 when the image has no ink: uniform attention).
 */
export function inkRatio(sample: Sample, patchSize: number): number {
  return spreadRatio(sample, inkPatches(sample.image, patchSize));
}

/**
 * The patches the candidate objects of a sample cover (`meta.candidates`: every object of its
 * image as a percent box [x1, y1, x2, y2], where the loader knows them), or undefined.
 */
export function candidatePatches(sample: Sample, patchSize: number): boolean[] | undefined {
  const boxes = sample.meta?.candidates as number[][] | undefined;
  if (!Array.isArray(boxes) || boxes.length === 0) return undefined;
  const side = sample.image.width / patchSize;
  const covered = new Array<boolean>(side * side).fill(false);
  for (const [x1, y1, x2, y2] of boxes) {
    const from = (v: number) => Math.max(0, Math.floor((v / 100) * side));
    const to = (v: number) => Math.min(side - 1, Math.ceil((v / 100) * side) - 1);
    for (let r = from(y1); r <= to(y2); r++) {
      for (let c = from(x1); c <= to(x2); c++) covered[r * side + c] = true;
    }
  }
  return covered;
}

/** The ratio of attention spread evenly over `patches` (see inkRatio); NaN without targets. */
function spreadRatio(sample: Sample, patches: boolean[]): number {
  const support = targetSupport(sample.target);
  const tv = support.length;
  const targets = support.filter(Boolean).length;
  if (targets === 0) return NaN;
  const spread = patches.filter(Boolean).length;
  if (spread === 0) return 1;
  const onTarget = patches.filter((v, j) => v && support[j]).length;
  return (onTarget / spread) / (targets / tv);
}

/** The question-blind baselines of a test set: mean ratios over its samples. */
export interface QuestionBlind {
  /** Attention spread evenly over the patches with ink, ratio as a model's is computed. */
  ink: number;
  /** Spread evenly over the patches of every candidate object, where samples list them. */
  objects?: number;
}

/** The question-blind baselines of `samples` (NaN when there are none). */
export function questionBlind(samples: readonly Sample[], patchSize: number): QuestionBlind {
  const meanOf = (values: number[]) => {
    const kept = values.filter((r) => !Number.isNaN(r));
    return kept.length === 0 ? NaN : kept.reduce((a, r) => a + r, 0) / kept.length;
  };
  const ink = meanOf(samples.map((s) => inkRatio(s, patchSize)));
  const objects = samples.map((s) => candidatePatches(s, patchSize));
  if (objects.some((o) => o === undefined)) return { ink };
  return { ink, objects: meanOf(samples.map((s, i) => spreadRatio(s, objects[i]!))) };
}
