/**
 * The generic image-text mix that pretrains the shared Base checkpoint (the Base model
 * never sees task data). Each sample asks one question of a kind drawn uniformly from
 * `kinds` (the spec's `base.mix.kinds`); the default is the original four, whose samples are
 * unchanged:
 *
 * - color: "what color is the shape ?" -> "red" (one shape)
 * - count: "how many shapes ?" -> "3"
 * - exists: "is there a red shape ?" -> "yes" / "no"
 * - where: "where is the red shape ?" -> "top left" (its quadrant)
 *
 * and more transferable skills, each opted into by naming it (./pretrain_skills.ts):
 *
 * - point: "locate the red shape ?" -> "37 , 62" (its centre, percent of the image); with
 *   `point_prompt: point to`, "point to the red shape" (the instruction words of PixMo's
 *   prompts, never its scenes or labels)
 * - count-color: "how many red shapes ?" -> "0" to "4"
 * - letter: "which letter is in the red square ?" -> "C"
 * - curve: "does the blue curve touch the square ?" -> "yes" / "no"
 * - compare: "is the red shape left of the blue shape ?" (or "above") -> "yes" / "no"
 * - cell: "where is the red shape ?" -> "2 , 5" (the row and column of its centre on the
 *   model's patch grid; it asks what `where` asks, finer, so a mix holds one of the two)
 * - object: "locate the red triangle ?" (or "locate the circle ?") -> "37 , 62": circles,
 *   squares and triangles in two colours, the asked one named by category, or by colour and
 *   category when another shares its category (the words of objects, as any pretrained
 *   model knows them; `point_prompt` words it as the point kind)
 * - box: "find the red triangle ?" -> "21 40 47 66": the object kind's images, the answer the
 *   asked object's box "X1 Y1 X2 Y2" in integer percent (RefCOCO's answer form), right at IoU
 *   >= 0.5
 * - label: "locate the letter C ?" -> "37 , 62": 2 to 4 small dark letters, each inside one
 *   patch (the size of Line Tracing's node labels), the answer the asked letter's centre
 *
 * Shapes are circles and squares at random pixel positions, one per image quadrant, on a
 * light noisy background. Nothing is grid-aligned, and with the default wording no prompt has
 * a task's form (Grid Patch's "where is the COLOR patch ?", PixMo's "point to the ...", Line
 * Intersection's "how many times do the lines intersect ?", Line Tracing's "is node A
 * connected to node B ?", RefCOCO's bare expressions); tests/pretrain_mix_test.ts checks it.
 * `point_prompt: point to` is the one exception, by choice: the point and object questions
 * then read as PixMo's ("point to the red triangle"), on the mix's own images.
 */

import type { ParamProblem, RgbImage, Sample, SyntheticTask, TaskConfig } from "./task.ts";
import { Rng } from "../pipeline/lib/rng.ts";
import {
  addNoise,
  blankImage,
  COLOR_NAMES,
  colorListProblem,
  COLORS,
  fillCircle,
  fillRect,
  LIGHT_BACKGROUND,
  targetFromMask,
  uniformTarget,
} from "./draw.ts";
import { assertParams, exactMatch, perSample } from "./common.ts";
import { defineParams, distinctListOf } from "../pipeline/lib/schema.ts";
import {
  BOX_WORDS,
  boxScore,
  LETTER_MIN_IMAGE_SIZE,
  OBJECT_WORDS,
  POINT_PROMPTS,
  type PointPrompt,
  pointScore,
  SKILL_KINDS,
  SKILL_MIN_COLORS,
  SKILL_WORDS,
  type SkillKind,
  skillSample,
} from "./pretrain_skills.ts";

/** The original question kinds (the default mix); each is also a sample's `meta.difficulty`. */
export const ORIGINAL_QUESTION_KINDS = ["color", "count", "exists", "where"] as const;
/** Every question kind a mix may name, the original four first. */
export const PRETRAIN_QUESTION_KINDS = [...ORIGINAL_QUESTION_KINDS, ...SKILL_KINDS] as const;
type QuestionKind = typeof ORIGINAL_QUESTION_KINDS[number];
export type PretrainKind = QuestionKind | SkillKind;

/** Quadrant answers, indexed by quadrant: 0 top left, 1 top right, 2 bottom left, 3 bottom right. */
const QUADRANTS = ["top left", "top right", "bottom left", "bottom right"] as const;

/** Shapes sit one per quadrant, so they never overlap: at most four. */
const MAX_SHAPES = 4;
/** Smallest image side whose quadrants fit the smallest shapes with a margin. */
const MIN_IMAGE_SIZE = 16;
const NOISE = 0.05;

interface PretrainParams {
  kinds: PretrainKind[];
  max_shapes: number;
  colors: string[];
  point_prompt: PointPrompt;
}

/** `task.params`, declared once: type, range, default and doc (docs/spec-keys.md). */
const PARAMS = defineParams({
  kinds: distinctListOf(PRETRAIN_QUESTION_KINDS, "question kinds", {
    minItems: 1,
    default: [...ORIGINAL_QUESTION_KINDS],
    doc: "question kinds, drawn uniformly (tasks/pretrain_mix.ts lists each with an example)",
  }),
  max_shapes: {
    type: "int",
    min: 1,
    max: MAX_SHAPES,
    default: 3,
    doc: "most shapes in an image (one per quadrant)",
  },
  point_prompt: {
    type: "enum",
    values: POINT_PROMPTS,
    default: "locate",
    doc:
      'the point and object kinds\' wording: "locate the red shape ?" or "point to the red shape"',
  },
  colors: distinctListOf(COLOR_NAMES, "colour names", {
    minItems: 2,
    default: [...COLOR_NAMES],
    doc: "the shapes' colours: at least max_shapes + 1, so a colour is always absent",
  }),
}, crossRules);

const DEFAULT_PARAMS = structuredClone(PARAMS.defaultParams) as unknown as PretrainParams;

function paramsOf(config: TaskConfig): PretrainParams {
  return { ...DEFAULT_PARAMS, ...config.params } as PretrainParams;
}

/** Rules between the parameters, and with the image size (each field checks its own range). */
function crossRules(config: TaskConfig, invalid: ReadonlySet<string>): ParamProblem[] {
  const { max_shapes: maxShapes, colors, kinds } = paramsOf(config);
  const problems: ParamProblem[] = [];
  // One more colour than shapes, so "is there a COLOR shape ?" can always answer "no".
  if (!invalid.has("max_shapes") && !invalid.has("colors") && colors.length < maxShapes + 1) {
    problems.push({
      key: "colors",
      expected: colorListProblem(colors, maxShapes + 1)!,
      found: colors,
    });
  }
  if (!invalid.has("kinds") && !invalid.has("colors")) {
    for (const kind of kinds) {
      const need = SKILL_MIN_COLORS[kind as SkillKind] ?? 0;
      if (colors.length < need) {
        problems.push({
          key: "colors",
          expected: `${colorListProblem(colors, need)} (kind ${kind})`,
          found: colors,
        });
      }
    }
  }
  if (!invalid.has("kinds") && kinds.includes("where") && kinds.includes("cell")) {
    problems.push({
      key: "kinds",
      expected: 'at most one of "where" and "cell" (they ask the same question)',
      found: kinds,
    });
  }
  if (
    !invalid.has("kinds") && kinds.includes("letter") && config.imageSize < LETTER_MIN_IMAGE_SIZE
  ) {
    problems.push({
      key: "kinds",
      expected: `kinds without letter below ${LETTER_MIN_IMAGE_SIZE} px (a letter fits no square)`,
      found: kinds,
    });
  }
  if (config.imageSize < MIN_IMAGE_SIZE) {
    problems.push({
      key: "image_size",
      expected: `at least ${MIN_IMAGE_SIZE} px for the pretraining mix`,
      found: config.imageSize,
    });
  }
  return problems;
}

/**
 * Draws a random circle or square strictly inside `quadrant`, with a margin from the
 * image's midlines, so the quadrant of its centre is unambiguous; returns its centre (px).
 */
export function drawShape(
  rng: Rng,
  image: RgbImage,
  quadrant: number,
  color: string,
  mask?: Uint8Array,
): { cx: number; cy: number } {
  const half = image.width / 2;
  const left = (quadrant % 2) * half;
  const top = Math.floor(quadrant / 2) * half;
  const margin = Math.max(1, Math.round(0.1 * half));
  if (rng.next() < 0.5) {
    const lo = Math.max(2, Math.round(0.3 * half));
    const side = rng.int(lo, Math.max(lo, Math.round(0.6 * half)));
    const x = left + rng.int(margin, half - margin - side);
    const y = top + rng.int(margin, half - margin - side);
    fillRect(image, { x, y, w: side, h: side }, COLORS[color], mask);
    return { cx: x + side / 2, cy: y + side / 2 };
  } else {
    const radius = rng.uniform(Math.max(1.2, 0.15 * half), Math.max(1.2, 0.3 * half));
    const cx = left + rng.uniform(margin + radius, half - margin - radius);
    const cy = top + rng.uniform(margin + radius, half - margin - radius);
    fillCircle(image, cx, cy, radius, COLORS[color], mask);
    return { cx, cy };
  }
}

/** One sample; all its randomness comes from `rng`. */
function generateOne(rng: Rng, config: TaskConfig, params: PretrainParams): Sample {
  const size = config.imageSize;
  const picked: PretrainKind = rng.pick(params.kinds);
  if ((SKILL_KINDS as readonly string[]).includes(picked)) {
    return skillSample(rng, config, params, picked as SkillKind, drawShape);
  }
  const kind = picked as QuestionKind;
  const count = kind === "color" ? 1 : rng.int(1, params.max_shapes);
  const quadrants = rng.sample(4, count);
  const palette = rng.shuffle([...params.colors]);
  const colors = palette.slice(0, count); // distinct: each colour names one shape
  const asked = rng.int(0, count - 1); // the shape a color / exists-yes / where question is about
  const exists = kind === "exists" ? rng.next() < 0.5 : true;

  const image = blankImage(size, LIGHT_BACKGROUND);
  const mask = new Uint8Array(size * size); // pixels of the shapes the question is about
  for (let s = 0; s < count; s++) {
    const relevant = kind === "count" || (s === asked && exists);
    drawShape(rng, image, quadrants[s], colors[s], relevant ? mask : undefined);
  }
  addNoise(image, rng, NOISE);

  let prompt: string;
  let answer: string;
  let color: string | undefined = colors[asked];
  switch (kind) {
    case "color":
      prompt = "what color is the shape ?";
      answer = colors[0];
      break;
    case "count":
      prompt = "how many shapes ?";
      answer = String(count);
      color = undefined;
      break;
    case "exists":
      // "no" asks for a colour that is not drawn (checkParams guarantees one is left).
      if (!exists) color = palette[count];
      prompt = `is there a ${color} shape ?`;
      answer = exists ? "yes" : "no";
      break;
    case "where":
      prompt = `where is the ${color} shape ?`;
      answer = QUADRANTS[quadrants[asked]];
      break;
  }
  return {
    image,
    prompt,
    answer,
    target: exists
      ? targetFromMask(mask, size, config.patchSize)
      : uniformTarget(size, config.patchSize),
    meta: { difficulty: kind, shapes: count, ...(color ? { color } : {}) },
  };
}

/** The words of the original four kinds (colour, count, existence, quadrant). */
const CORE_WORDS: readonly string[] = [
  "what",
  "color",
  "is",
  "the",
  "shape",
  "?",
  "how",
  "many",
  "shapes",
  "there",
  "a",
  "where",
  "top",
  "bottom",
  "left",
  "right",
  "yes",
  "no",
  ...COLOR_NAMES,
  ...Array.from({ length: MAX_SHAPES }, (_, i) => String(i + 1)),
];

/**
 * The words a Base pretrained on `kinds` can see: the skill kinds' words only when one of
 * them is in the mix, so a Base on the original four kinds keeps its vocabulary (and with it
 * its initialisation, and the numbers of every run made before the skill kinds existed).
 */
export function mixVocabulary(kinds: readonly string[]): string[] {
  const skills = kinds.some((k) => (SKILL_KINDS as readonly string[]).includes(k));
  const objects = kinds.includes("object");
  const boxes = kinds.includes("box");
  return [
    ...new Set([
      ...CORE_WORDS,
      ...(skills ? SKILL_WORDS : []),
      ...(objects ? OBJECT_WORDS : []),
      ...(boxes ? BOX_WORDS : []),
    ]),
  ];
}

/** The generic pretraining mix (questions about shapes, letters and curves; see the top). */
export const pretrainMix: SyntheticTask = {
  name: "pretrain-mix",
  version: "2",
  vocabulary: mixVocabulary(SKILL_KINDS),
  paramSchema: PARAMS.paramSchema,
  defaultParams: PARAMS.defaultParams,
  checkParams: PARAMS.checkParams,
  generate(seed: number, n: number, config: TaskConfig): Sample[] {
    assertParams("pretrain-mix", PARAMS.checkParams(config));
    const params = paramsOf(config);
    return perSample("pretrain-mix", seed, n, (rng) => generateOne(rng, config, params));
  },
  /**
   * Exact match; a point is right within the tolerance of ./pretrain_skills.ts, a box at IoU
   * >= 0.5 (RefCOCO's rule).
   */
  score(prediction: string, sample: Sample): boolean {
    if (sample.meta.difficulty === "box") return boxScore(prediction, sample);
    const kind = sample.meta.difficulty;
    return kind === "point" || kind === "object" || kind === "label"
      ? pointScore(prediction, sample)
      : exactMatch(prediction, sample);
  },
};
