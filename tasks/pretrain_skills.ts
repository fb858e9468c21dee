/**
 * The transferable question kinds of the pretraining mix (./pretrain_mix.ts), beyond its
 * original four: pointing at a shape, counting the shapes of one colour, reading the
 * letter in a square, whether a curve touches a square, comparing two shapes' positions,
 * finding a small letter by its name (as Line Tracing's node labels), and naming the cell of the model's patch grid a shape's centre lies in. Generic skills
 * the tasks build on, never a task's data or prompt form; their answers share the tasks'
 * answer forms ("X , Y" in percent, "ROW , COLUMN", numbers, yes / no).
 *
 * Each sample's map P is the pixels the answer depends on: the shape pointed at, the shapes
 * counted (uniform when there are none), the square read, the curve asked about, or both
 * shapes compared. The Base trains on them with NTP, plus KLAL when `base.lambda` > 0.
 *
 * At 64 px, d = 64, 2 layers, a 3,000-step Base with any of these kinds added stayed on its
 * prior, where the original four alone did not (docs/pilots/base-mix.md).
 */
import type { RgbImage, Sample, TaskConfig } from "./task.ts";
import type { Rng } from "../pipeline/lib/rng.ts";
import {
  addNoise,
  blankImage,
  COLORS,
  drawText,
  fillCircle,
  fillRect,
  flattenBezier,
  FONT_CHARACTERS,
  GLYPH_HEIGHT,
  GLYPH_WIDTH,
  LIGHT_BACKGROUND,
  type Point,
  polylineMask,
  type Rgb,
  strokePolyline,
  targetFromMask,
  uniformTarget,
} from "./draw.ts";
import { normaliseWhitespace } from "./common.ts";
import { fillTriangle } from "./scenes.ts";
import { boxIou, parseBox, type PercentBox } from "./boxes.ts";

/** The kinds this module generates, in the order a mix lists them. */
export const SKILL_KINDS = [
  "point",
  "count-color",
  "letter",
  "curve",
  "compare",
  "cell",
  "object",
  "box",
  "label",
] as const;
export type SkillKind = typeof SKILL_KINDS[number];

/** The letters a square may hold (the bitmap font's). */
const LETTERS = FONT_CHARACTERS;

/** Every word these kinds' prompts and answers use. */
export const SKILL_WORDS: readonly string[] = [
  "locate",
  "point",
  "to",
  ",",
  ...Array.from({ length: 101 }, (_, i) => String(i)),
  "which",
  "letter",
  "in",
  "square",
  "does",
  "curve",
  "touch",
  "of",
  "above",
  ...LETTERS,
];

/** The object kind's categories ("square" is also the letter kind's word). */
export const OBJECT_SHAPES = ["circle", "square", "triangle"] as const;
type ObjectShape = typeof OBJECT_SHAPES[number];

/**
 * The words only the object kind adds, so that a mix without it keeps its vocabulary (and a
 * Base pretrained on it its initialisation).
 */
export const OBJECT_WORDS: readonly string[] = OBJECT_SHAPES.filter((w) =>
  !SKILL_WORDS.includes(w)
);

/** The words only the box kind adds (its objects' names, and its verb), for the same reason. */
export const BOX_WORDS: readonly string[] = ["find", "?", ...OBJECT_WORDS];

/** A box answer is right when its IoU with the asked shape's box is at least this (RefCOCO's). */
export const BOX_MIN_IOU = 0.5;

/** A point answer is right when both coordinates are within this many percent of the centre. */
export const POINT_TOLERANCE = 10;

/** Most shapes in an image: one per quadrant. */
const MAX_SHAPES = 4;

/** Colours a kind needs (distinct squares; two curve colours and the square's; one absent). */
export const SKILL_MIN_COLORS: Readonly<Partial<Record<SkillKind, number>>> = {
  letter: MAX_SHAPES,
  curve: 3,
  "count-color": 3,
};

/** Smallest image whose quadrants hold a square with a readable letter. */
export const LETTER_MIN_IMAGE_SIZE = 32;

const NOISE = 0.05;
/** Ink of the letters: dark on every palette colour. */
const INK: Rgb = [0.08, 0.08, 0.08];
/** Tries to draw a curve that gives the wanted yes / no before taking what comes. */
const CURVE_TRIES = 40;

/** Wordings of the point kind's question (the mix's `point_prompt`). */
export const POINT_PROMPTS = ["locate", "point to"] as const;
export type PointPrompt = typeof POINT_PROMPTS[number];

/** The mix's parameters these kinds read. */
export interface SkillParams {
  max_shapes: number;
  colors: string[];
  point_prompt?: PointPrompt;
}

/** ./pretrain_mix.ts's shape drawer (passed in, so this module does not import the mix). */
export type DrawShape = (
  rng: Rng,
  image: RgbImage,
  quadrant: number,
  color: string,
  mask?: Uint8Array,
) => { cx: number; cy: number };

/** True when `prediction` is "X , Y" within POINT_TOLERANCE of the sample's point (percent). */
export function pointScore(prediction: string, sample: Sample): boolean {
  const match = /^(\d+) , (\d+)$/.exec(normaliseWhitespace(prediction));
  const point = sample.meta.point as [number, number] | undefined;
  if (!match || !point) return false;
  return Math.abs(Number(match[1]) - point[0]) <= POINT_TOLERANCE &&
    Math.abs(Number(match[2]) - point[1]) <= POINT_TOLERANCE;
}

/**
 * True when the curve `points`, stroked `width` px wide, marks a pixel of `rect` (the pixels
 * whose centre is within width / 2 of the curve, as it is drawn and as its map holds).
 */
export function curveTouchesRect(
  points: readonly Point[],
  width: number,
  size: number,
  rect: { x: number; y: number; w: number; h: number },
): boolean {
  const mask = polylineMask(size, points, width);
  for (let y = rect.y; y < rect.y + rect.h; y++) {
    for (let x = rect.x; x < rect.x + rect.w; x++) if (mask[y * size + x]) return true;
  }
  return false;
}

/**
 * Draws a `shape` strictly inside `quadrant` (the geometry of the mix's circles and squares,
 * and triangles in a square box the size of the squares), marking it in `mask`. Returns the
 * centre of its box (px), the point a pointing answer names.
 */
function drawObjectIn(
  rng: Rng,
  image: RgbImage,
  quadrant: number,
  shape: ObjectShape,
  color: string,
  mask: Uint8Array | undefined,
): { cx: number; cy: number } {
  const half = image.width / 2;
  const left = (quadrant % 2) * half;
  const top = Math.floor(quadrant / 2) * half;
  const margin = Math.max(1, Math.round(0.1 * half));
  if (shape === "circle") {
    const radius = rng.uniform(Math.max(1.2, 0.15 * half), Math.max(1.2, 0.3 * half));
    const cx = left + rng.uniform(margin + radius, half - margin - radius);
    const cy = top + rng.uniform(margin + radius, half - margin - radius);
    fillCircle(image, cx, cy, radius, COLORS[color], mask);
    return { cx, cy };
  }
  const lo = Math.max(3, Math.round(0.3 * half));
  const side = rng.int(lo, Math.max(lo, Math.round(0.6 * half)));
  const x = left + rng.int(margin, Math.max(margin, half - margin - side));
  const y = top + rng.int(margin, Math.max(margin, half - margin - side));
  if (shape === "square") fillRect(image, { x, y, w: side, h: side }, COLORS[color], mask);
  else {fillTriangle(
      image,
      [x + side / 2, y],
      [x, y + side],
      [x + side, y + side],
      COLORS[color],
      mask,
    );}
  return { cx: x + side / 2, cy: y + side / 2 };
}

/** True when `prediction` is a box "X1 Y1 X2 Y2" whose IoU with the sample's is >= BOX_MIN_IOU. */
export function boxScore(prediction: string, sample: Sample): boolean {
  const box = parseBox(normaliseWhitespace(prediction));
  const truth = sample.meta.box as PercentBox | undefined;
  return box !== null && truth !== undefined && boxIou(box, truth) >= BOX_MIN_IOU;
}

/** The bounding box of the marked pixels of a `size` x `size` mask, in integer percent. */
function maskBox(mask: Uint8Array, size: number): PercentBox {
  let [x1, y1, x2, y2] = [size, size, -1, -1];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (!mask[y * size + x]) continue;
      x1 = Math.min(x1, x);
      y1 = Math.min(y1, y);
      x2 = Math.max(x2, x);
      y2 = Math.max(y2, y);
    }
  }
  return [percent(x1, size), percent(y1, size), percent(x2 + 1, size), percent(y2 + 1, size)];
}

/**
 * The object and box kinds' layout: 2 to max_shapes objects (circle, square, triangle) in two
 * colours, one per quadrant; the asked one, marked in `mask`, is named by its category alone
 * when no other shares it (half the time; else also by its colour) and by colour and category
 * otherwise, which no other object shares. Returns its name and centre (px) and the count.
 */
function drawNamedObjects(
  rng: Rng,
  image: RgbImage,
  params: SkillParams,
  mask: Uint8Array,
): { name: string; centre: { cx: number; cy: number }; count: number } {
  const count = rng.int(2, Math.max(2, params.max_shapes));
  const quadrants = rng.sample(4, count);
  const palette = rng.shuffle([...params.colors]).slice(0, 2);
  const objects = Array.from({ length: count }, () => ({
    shape: rng.pick(OBJECT_SHAPES),
    color: rng.pick(palette),
  }));
  const asked = rng.int(0, count - 1);
  const target = objects[asked];
  for (let s = 0; s < count; s++) {
    const o = objects[s];
    if (s !== asked && o.shape === target.shape && o.color === target.color) {
      o.shape = rng.pick(OBJECT_SHAPES.filter((k) => k !== target.shape));
    }
  }
  const shared = objects.some((o, s) => s !== asked && o.shape === target.shape);
  const name = !shared && rng.next() < 0.5 ? target.shape : `${target.color} ${target.shape}`;
  let centre = { cx: 0, cy: 0 };
  for (let s = 0; s < count; s++) {
    const c = drawObjectIn(
      rng,
      image,
      quadrants[s],
      objects[s].shape,
      objects[s].color,
      s === asked ? mask : undefined,
    );
    if (s === asked) centre = c;
  }
  return { name, centre, count };
}

/**
 * The label kind's layout: 2 to 4 distinct letters at scale 1, dark on the background, each
 * inside one cell of a grid of cells of max(patch, glyph) px (so at patch 8 one visual token
 * holds the whole letter), no two in cells that touch (even at a corner). The asked letter's
 * ink goes into `mask`. Returns it, the centre of its glyph box (px) and the count.
 */
function drawLabels(
  rng: Rng,
  image: RgbImage,
  config: TaskConfig,
  mask: Uint8Array,
): { letter: string; centre: { cx: number; cy: number }; count: number } {
  const size = image.width;
  const cell = Math.max(config.patchSize, GLYPH_WIDTH + 1, GLYPH_HEIGHT + 1);
  const side = Math.floor(size / cell);
  const wanted = rng.int(2, MAX_SHAPES);
  const cells: Array<[number, number]> = [];
  for (const k of rng.shuffle(Array.from({ length: side * side }, (_, i) => i))) {
    const [r, c] = [Math.floor(k / side), k % side];
    if (cells.every(([r2, c2]) => Math.max(Math.abs(r - r2), Math.abs(c - c2)) >= 2)) {
      cells.push([r, c]);
    }
    if (cells.length === wanted) break;
  }
  const letters = rng.shuffle([...LETTERS]).slice(0, cells.length);
  const asked = rng.int(0, cells.length - 1);
  let centre = { cx: 0, cy: 0 };
  for (let s = 0; s < cells.length; s++) {
    const [r, c] = cells[s];
    const x = c * cell + rng.int(0, cell - GLYPH_WIDTH);
    const y = r * cell + rng.int(0, cell - GLYPH_HEIGHT);
    drawText(image, letters[s], x, y, 1, INK, s === asked ? mask : undefined);
    if (s === asked) centre = { cx: x + GLYPH_WIDTH / 2, cy: y + GLYPH_HEIGHT / 2 };
  }
  return { letter: letters[asked], centre, count: cells.length };
}

/** Percent of the image side, rounded to an integer in [0, 100]. */
function percent(px: number, size: number): number {
  return Math.min(100, Math.max(0, Math.round((100 * px) / size)));
}

/**
 * 1 to `max_shapes` shapes of distinct colours, one per quadrant; one of them, the asked one,
 * also drawn into `mask`. Returns how many, the asked shape's colour and its centre (px).
 */
function drawAskedShape(
  rng: Rng,
  image: RgbImage,
  mask: Uint8Array,
  params: SkillParams,
  drawShape: DrawShape,
): { count: number; color: string; centre: { cx: number; cy: number } } {
  const count = rng.int(1, params.max_shapes);
  const quadrants = rng.sample(4, count);
  const colors = rng.shuffle([...params.colors]).slice(0, count);
  const asked = rng.int(0, count - 1);
  let centre = { cx: 0, cy: 0 };
  for (let s = 0; s < count; s++) {
    const c = drawShape(rng, image, quadrants[s], colors[s], s === asked ? mask : undefined);
    if (s === asked) centre = c;
  }
  return { count, color: colors[asked], centre };
}

/** One sample of a skill kind; all its randomness comes from `rng`. */
export function skillSample(
  rng: Rng,
  config: TaskConfig,
  params: SkillParams,
  kind: SkillKind,
  drawShape: DrawShape,
): Sample {
  const size = config.imageSize;
  const image = blankImage(size, LIGHT_BACKGROUND);
  const mask = new Uint8Array(size * size);
  let prompt: string;
  let answer: string;
  const meta: Sample["meta"] = { difficulty: kind };
  let uniform = false;
  switch (kind) {
    case "point": {
      // Shapes of distinct colours; the answer is the asked shape's centre in percent.
      const { count, color, centre } = drawAskedShape(rng, image, mask, params, drawShape);
      const point: [number, number] = [(100 * centre.cx) / size, (100 * centre.cy) / size];
      prompt = params.point_prompt === "point to"
        ? `point to the ${color} shape`
        : `locate the ${color} shape ?`;
      answer = `${percent(centre.cx, size)} , ${percent(centre.cy, size)}`;
      Object.assign(meta, { color, point, shapes: count });
      break;
    }
    case "object": {
      // The answer is the asked object's centre in percent, as the point kind's.
      const { name, centre, count } = drawNamedObjects(rng, image, params, mask);
      const point: [number, number] = [(100 * centre.cx) / size, (100 * centre.cy) / size];
      prompt = params.point_prompt === "point to" ? `point to the ${name}` : `locate the ${name} ?`;
      answer = `${percent(centre.cx, size)} , ${percent(centre.cy, size)}`;
      Object.assign(meta, { name, point, shapes: count });
      break;
    }
    case "box": {
      // The answer is the asked object's bounding box "X1 Y1 X2 Y2" in integer percent
      // (RefCOCO's answer form), from the pixels drawn.
      const { name, count } = drawNamedObjects(rng, image, params, mask);
      const box = maskBox(mask, size);
      prompt = `find the ${name} ?`;
      answer = box.join(" ");
      Object.assign(meta, { name, box, shapes: count });
      break;
    }
    case "label": {
      // Small dark letters, each wholly inside one patch (Line Tracing's node labels), no two
      // in touching patches; the answer is the asked letter's centre in percent.
      const { letter, centre, count } = drawLabels(rng, image, config, mask);
      const point: [number, number] = [(100 * centre.cx) / size, (100 * centre.cy) / size];
      prompt = `locate the letter ${letter} ?`;
      answer = `${percent(centre.cx, size)} , ${percent(centre.cy, size)}`;
      Object.assign(meta, { letter, point, letters: count });
      break;
    }
    case "cell": {
      // "where" at the patch grid's resolution: the row and column of the shape's centre.
      const { count, color, centre } = drawAskedShape(rng, image, mask, params, drawShape);
      const side = Math.floor(size / config.patchSize);
      const cellOf = (px: number) => Math.min(side - 1, Math.floor(px / config.patchSize));
      const row = cellOf(centre.cy);
      const col = cellOf(centre.cx);
      prompt = `where is the ${color} shape ?`;
      answer = `${row} , ${col}`;
      Object.assign(meta, { color, cell: [row, col], shapes: count });
      break;
    }
    case "count-color": {
      // 1 to 4 shapes in two colours; the asked colour is one of them or (1 in 4) absent.
      const count = rng.int(1, MAX_SHAPES);
      const quadrants = rng.sample(4, count);
      const palette = rng.shuffle([...params.colors]);
      const colors = Array.from({ length: count }, () => palette[rng.int(0, 1)]);
      const color = rng.next() < 0.25 ? palette[2] : palette[rng.int(0, 1)];
      let n = 0;
      for (let s = 0; s < count; s++) {
        const relevant = colors[s] === color;
        if (relevant) n++;
        drawShape(rng, image, quadrants[s], colors[s], relevant ? mask : undefined);
      }
      prompt = `how many ${color} shapes ?`;
      answer = String(n);
      uniform = n === 0;
      Object.assign(meta, { color, shapes: count });
      break;
    }
    case "letter": {
      // 2 to 4 squares of distinct colours, one per quadrant, each with a distinct letter.
      const count = rng.int(2, MAX_SHAPES);
      const quadrants = rng.sample(4, count);
      const colors = rng.shuffle([...params.colors]).slice(0, count);
      const letters = rng.shuffle([...LETTERS]).slice(0, count);
      const asked = rng.int(0, count - 1);
      const half = size / 2;
      const scale = half >= 32 ? 2 : 1;
      const lo = GLYPH_HEIGHT * scale + 4;
      const hi = Math.max(lo, Math.floor(0.85 * half));
      for (let s = 0; s < count; s++) {
        const side = rng.int(lo, hi);
        const left = (quadrants[s] % 2) * half;
        const top = Math.floor(quadrants[s] / 2) * half;
        const x = left + rng.int(1, Math.max(1, half - 1 - side));
        const y = top + rng.int(1, Math.max(1, half - 1 - side));
        fillRect(
          image,
          { x, y, w: side, h: side },
          COLORS[colors[s]],
          s === asked ? mask : undefined,
        );
        const lx = x + Math.floor((side - GLYPH_WIDTH * scale) / 2);
        const ly = y + Math.floor((side - GLYPH_HEIGHT * scale) / 2);
        drawText(image, letters[s], lx, ly, scale, INK);
      }
      prompt = `which letter is in the ${colors[asked]} square ?`;
      answer = letters[asked];
      Object.assign(meta, { color: colors[asked], squares: count });
      break;
    }
    case "curve": {
      // One square and two curves of distinct colours; does the asked curve touch it?
      const palette = rng.shuffle([...params.colors]);
      const squareColor = palette[0];
      const curveColors = [palette[1], palette[2]];
      const side = rng.int(Math.round(0.2 * size), Math.round(0.3 * size));
      const square = { x: rng.int(0, size - side), y: rng.int(0, size - side), w: side, h: side };
      const width = Math.max(1, Math.round(size / 32));
      const asked = rng.int(0, 1);
      const wanted = rng.next() < 0.5;
      const touches = (points: Point[]) => curveTouchesRect(points, width, size, square);
      const randomCurve = () =>
        flattenBezier(
          Array.from({ length: 3 }, (): Point => [rng.uniform(0, size), rng.uniform(0, size)]),
        );
      fillRect(image, square, COLORS[squareColor]);
      let touch = false;
      for (let c = 0; c < 2; c++) {
        let points = randomCurve();
        if (c === asked) {
          for (let t = 1; t < CURVE_TRIES && touches(points) !== wanted; t++) {
            points = randomCurve();
          }
          touch = touches(points);
        }
        strokePolyline(
          image,
          points,
          width,
          COLORS[curveColors[c]],
          c === asked ? mask : undefined,
        );
      }
      prompt = `does the ${curveColors[asked]} curve touch the square ?`;
      answer = touch ? "yes" : "no";
      Object.assign(meta, { color: curveColors[asked], square });
      break;
    }
    case "compare": {
      // Two shapes in quadrants that differ along the asked axis (so the answer is sure).
      const relation = rng.next() < 0.5 ? "left of" : "above";
      const count = rng.int(2, Math.max(2, params.max_shapes));
      // a and b: a pair apart along the axis (left of: columns differ; above: rows differ).
      const pairs = relation === "left of"
        ? [[0, 1], [2, 3], [0, 3], [2, 1]]
        : [[0, 2], [1, 3], [0, 3], [1, 2]];
      const pair = rng.pick(pairs);
      const [a, b] = rng.next() < 0.5 ? pair : [pair[1], pair[0]];
      const others = [0, 1, 2, 3].filter((q) => q !== a && q !== b);
      const quadrants = [a, b, ...rng.shuffle(others).slice(0, count - 2)];
      const colors = rng.shuffle([...params.colors]).slice(0, count);
      for (let s = 0; s < count; s++) {
        drawShape(rng, image, quadrants[s], colors[s], s < 2 ? mask : undefined);
      }
      const yes = relation === "left of" ? a % 2 < b % 2 : Math.floor(a / 2) < Math.floor(b / 2);
      prompt = `is the ${colors[0]} shape ${relation} the ${colors[1]} shape ?`;
      answer = yes ? "yes" : "no";
      Object.assign(meta, { relation, shapes: count });
      break;
    }
  }
  addNoise(image, rng, NOISE);
  return {
    image,
    prompt,
    answer,
    target: uniform
      ? uniformTarget(size, config.patchSize)
      : targetFromMask(mask, size, config.patchSize),
    meta,
  };
}
