/**
 * The generic image-text mix that pretrains the shared Base checkpoint (the Base model
 * never sees task data). Images hold 1 to max_shapes coloured circles and
 * squares at random pixel positions, one per image quadrant, on a light noisy
 * background; questions ask a shape's colour, the number of shapes, whether a colour is
 * present, or which quadrant a shape is in. Nothing here is grid-aligned, and no prompt
 * or answer has Grid Patch's form ("where is the COLOR patch ?" -> "R , C").
 */

import type { ParamProblem, RgbImage, Sample, SyntheticTask, TaskConfig } from "./task.ts";
import { Rng } from "../pipeline/rng.ts";
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
import { defineParams } from "../pipeline/schema.ts";

/** The question kinds, drawn uniformly; each is also the sample's `meta.difficulty`. */
export const PRETRAIN_QUESTION_KINDS = ["color", "count", "exists", "where"] as const;
type QuestionKind = typeof PRETRAIN_QUESTION_KINDS[number];

/** Quadrant answers, indexed by quadrant: 0 top left, 1 top right, 2 bottom left, 3 bottom right. */
const QUADRANTS = ["top left", "top right", "bottom left", "bottom right"] as const;

/** Shapes sit one per quadrant, so they never overlap: at most four. */
const MAX_SHAPES = 4;
/** Smallest image side whose quadrants fit the smallest shapes with a margin. */
const MIN_IMAGE_SIZE = 16;
const NOISE = 0.05;

interface PretrainParams {
  max_shapes: number;
  colors: string[];
}

/** `task.params`, declared once: type, range, default and doc (docs/spec-keys.md). */
const PARAMS = defineParams({
  max_shapes: {
    type: "int",
    min: 1,
    max: MAX_SHAPES,
    default: 3,
    doc: "most shapes in an image (one per quadrant)",
  },
  colors: {
    type: "list",
    items: {
      type: "enum",
      values: COLOR_NAMES,
      expected: `colour names from ${COLOR_NAMES.join(", ")}`,
    },
    minItems: 2,
    distinct: true,
    default: [...COLOR_NAMES],
    doc: "the shapes' colours: at least max_shapes + 1, so a colour is always absent",
  },
}, crossRules);

const DEFAULT_PARAMS = structuredClone(PARAMS.defaultParams) as unknown as PretrainParams;

function paramsOf(config: TaskConfig): PretrainParams {
  return { ...DEFAULT_PARAMS, ...config.params } as PretrainParams;
}

/** Rules between the parameters, and with the image size (each field checks its own range). */
function crossRules(config: TaskConfig, invalid: ReadonlySet<string>): ParamProblem[] {
  const { max_shapes: maxShapes, colors } = paramsOf(config);
  const problems: ParamProblem[] = [];
  // One more colour than shapes, so "is there a COLOR shape ?" can always answer "no".
  if (!invalid.has("max_shapes") && !invalid.has("colors") && colors.length < maxShapes + 1) {
    problems.push({
      key: "colors",
      expected: colorListProblem(colors, maxShapes + 1)!,
      found: colors,
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
 * image's midlines, so the quadrant of its centre is unambiguous.
 */
function drawShape(
  rng: Rng,
  image: RgbImage,
  quadrant: number,
  color: string,
  mask?: Uint8Array,
): void {
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
  } else {
    const radius = rng.uniform(Math.max(1.2, 0.15 * half), Math.max(1.2, 0.3 * half));
    const cx = left + rng.uniform(margin + radius, half - margin - radius);
    const cy = top + rng.uniform(margin + radius, half - margin - radius);
    fillCircle(image, cx, cy, radius, COLORS[color], mask);
  }
}

/** One sample; all its randomness comes from `rng`. */
function generateOne(rng: Rng, config: TaskConfig, params: PretrainParams): Sample {
  const size = config.imageSize;
  const kind: QuestionKind = rng.pick(PRETRAIN_QUESTION_KINDS);
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

/** The generic pretraining mix (colour, count, presence, quadrant questions about shapes). */
export const pretrainMix: SyntheticTask = {
  name: "pretrain-mix",
  version: "1",
  vocabulary: [
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
  ],
  paramSchema: PARAMS.paramSchema,
  defaultParams: PARAMS.defaultParams,
  checkParams: PARAMS.checkParams,
  generate(seed: number, n: number, config: TaskConfig): Sample[] {
    assertParams("pretrain-mix", PARAMS.checkParams(config));
    const params = paramsOf(config);
    return perSample("pretrain-mix", seed, n, (rng) => generateOne(rng, config, params));
  },
  score: exactMatch,
};
