/**
 * Grounding on your own data (docs/own-data.md): point to, or box, what a prompt names in an
 * image, read from the formats grounding data comes in.
 *
 * - `coco`: a COCO instances JSON (`images`, `annotations`, `categories`) with its images in
 *   `source.images`. One item per (image, category): the category's name is the prompt's
 *   `{category}`; the answer is its instance first in reading order (by box centre, top to
 *   bottom, then left to right), any of its instances scores, and the map covers them all
 *   (`several: any`); `several: skip` keeps only categories with one instance in the image.
 *   Boxes are COCO's `[x, y, w, h]` pixels; polygons (`segmentation`), where given, make the
 *   map (`map: auto`); crowd annotations (`iscrowd: 1`) are skipped, and so is every item of a
 *   category one of whose instances in that image is a crowd.
 * - `jsonl`, `csv`: one item per row, the columns named in `task.params` (`image_column`,
 *   `prompt_column` or `category_column` with the `prompt` template, `point_column` /
 *   `point_columns` or `box_column` / `box_columns`), coordinates in the convention of
 *   `coordinates` (pixels of the image file, percent, 0-1 or 0-1000) and boxes as `box_format`.
 *
 * Prompts are lower-cased, with punctuation split off as words of their own; the answer is a
 * point `X , Y` or a box `X1 Y1 X2 Y2` in integer percent of the image's width and height (the
 * image is stretched to the model's square). Scores: a point within `radius` percent-units of
 * a target point or inside a target box; a box at IoU >= `min_iou` with a target box.
 *
 * Images are named relative to `source.images` (or to the annotation file's folder), never
 * outside it; each is decoded once.
 */

import type { DataSource, RealFormatTask, Sample, SourceProblem, TaskConfig } from "./task.ts";
import { Rng, seedFrom } from "../pipeline/lib/rng.ts";
import {
  baseName,
  type DecodedImage,
  decodeNamed,
  encodePng,
  sha256Hex,
  showName,
} from "./image_io.ts";
import { generateScene, SHAPES } from "./scenes.ts";
import { assertParams } from "./common.ts";
import { defineParams } from "../pipeline/lib/schema.ts";
import { assertHeldOut, sameFile } from "./holdout.ts";
import { boxIou, formatBox, parseBox, type PercentBox } from "./boxes.ts";
import {
  formatPoint,
  gaussianPointTarget,
  hitsAnyPoint,
  parsePoint,
  type PercentPoint,
  POINT_FIELDS,
  readingOrder,
} from "./pixmo_points.ts";
import { promptWords } from "./text.ts";
import { boxesTarget, centre, COORDINATES, polygonsTarget, sizeOf } from "./grounding_geometry.ts";
import {
  formatOf,
  GROUNDING_FORMATS,
  type GroundingParams,
  type Item,
  itemsOf,
} from "./grounding_formats.ts";

export { formatOf, imagePathIn } from "./grounding_formats.ts";
export {
  boxesTarget,
  fillTemplate,
  insidePolygon,
  percentBoxOf,
  percentPointOf,
  polygonsTarget,
} from "./grounding_geometry.ts";
export { promptWords };

/** `task.params`, declared once: type, range, default and doc (docs/spec-keys.md). */
const PARAMS = defineParams({
  format: {
    type: "enum",
    values: GROUNDING_FORMATS,
    default: "auto",
    doc: "annotation format (auto: .json is COCO instances, .jsonl JSONL, .csv CSV)",
  },
  answer: {
    type: "enum",
    values: ["point", "box"],
    default: "point",
    doc: 'what the model answers: a point "X , Y" or a box "X1 Y1 X2 Y2" (integer percent)',
  },
  prompt: {
    type: "string",
    default: "point to the {category}",
    doc: "prompt template, {category} the category (or the category column); unused with " +
      "prompt_column",
  },
  image_column: { type: "string", default: "image", doc: "JSONL/CSV: the image file's column" },
  prompt_column: {
    type: "string",
    default: "",
    doc: "JSONL/CSV: a column holding each row's prompt (empty: the template)",
  },
  category_column: {
    type: "string",
    default: "category",
    doc: "JSONL/CSV: the column the template's {category} comes from",
  },
  point_column: {
    type: "string",
    default: "point",
    doc: "JSONL/CSV: a column holding the point [x, y] (or a list of points)",
  },
  point_columns: {
    type: "list",
    items: { type: "string" },
    default: [],
    doc: "JSONL/CSV: two columns holding x and y (instead of point_column)",
  },
  box_column: {
    type: "string",
    default: "box",
    doc: "JSONL/CSV: a column holding the box (four numbers, or a list of boxes)",
  },
  box_columns: {
    type: "list",
    items: { type: "string" },
    default: [],
    doc: "JSONL/CSV: four columns holding the box (instead of box_column)",
  },
  coordinates: {
    type: "enum",
    values: COORDINATES,
    default: "pixels",
    doc: "JSONL/CSV coordinates: pixels of the image file, percent, unit (0-1) or thousand " +
      "(0-1000); COCO is pixels",
  },
  box_format: {
    type: "enum",
    values: ["xyxy", "xywh"],
    default: "xyxy",
    doc: "JSONL/CSV boxes: corners [x1, y1, x2, y2] or corner and size [x, y, w, h]; COCO is " +
      "xywh",
  },
  several: {
    type: "enum",
    values: ["any", "skip"],
    default: "any",
    doc: "COCO, several instances of the asked category: any of them scores, or skip the item",
  },
  map: {
    type: "enum",
    values: ["auto", "box", "point"],
    default: "auto",
    doc: "ground-truth map: auto (polygons where given, else boxes, else points), boxes, or " +
      "Gaussians at the points (box centres)",
  },
  min_area: {
    type: "number",
    min: 0,
    max: 100,
    unit: "percent of the image",
    default: 0,
    doc: "skip objects whose box covers less of the image",
  },
  radius: {
    ...POINT_FIELDS.radius,
    doc: "point answers: a hit within this distance of a target point (or inside a target box)",
  },
  min_iou: {
    type: "number",
    min: 0,
    exclusiveMin: true,
    max: 1,
    default: 0.5,
    doc: "box answers: IoU at or above which a predicted box counts as correct",
  },
  sigma: { ...POINT_FIELDS.sigma, doc: "Gaussian sigma of a point's map" },
  limit: { type: "int", min: 0, default: 0, doc: "read at most this many items (0: all)" },
});

const DEFAULT_PARAMS = structuredClone(PARAMS.defaultParams) as unknown as GroundingParams;

/** Number words "0".."100": answers are integer percents. */
const PERCENT_WORDS = Array.from({ length: 101 }, (_, i) => String(i));

function paramsOf(config: TaskConfig): GroundingParams {
  return { ...DEFAULT_PARAMS, ...config.params } as GroundingParams;
}

// ---------------------------------------------------------------------------------------
// Samples.

/** The sample of an item, given its decoded image. */
function makeSample(item: Item, picture: DecodedImage, config: TaskConfig, p: GroundingParams) {
  const g = item.geometry(picture.naturalWidth, picture.naturalHeight);
  for (const b of g.boxes) {
    if (!(b[2] > b[0] && b[3] > b[1])) {
      throw new Error(`${item.where}: box ${JSON.stringify(b)} (percent) has no area`);
    }
  }
  // Answers in reading order (by centre); any target scores.
  const points = readingOrder(g.points.length > 0 ? g.points : g.boxes.map(centre));
  const boxes = [...g.boxes].sort((a, b) => {
    const [ca, cb] = [centre(a), centre(b)];
    return ca.y - cb.y || ca.x - cb.x;
  });
  const answer = p.answer === "box" ? formatBox(boxes[0]) : formatPoint(points[0]);
  const polygonMap = p.map === "auto" && g.polygons.length > 0
    ? polygonsTarget(g.polygons, config.imageSize, config.patchSize)
    : null;
  const useBoxes = p.map === "box" || (p.map === "auto" && boxes.length > 0);
  if (p.map === "box" && boxes.length === 0) {
    throw new Error(`${item.where}: task.params.map is box, but the item has no box`);
  }
  const target = polygonMap ??
    (useBoxes
      ? boxesTarget(boxes, config.imageSize, config.patchSize)
      : gaussianPointTarget(points, config.imageSize, config.patchSize, p.sigma));
  return {
    image: picture.image,
    prompt: item.prompt,
    answer,
    target,
    meta: {
      difficulty: boxes.length > 0 ? sizeOf(boxes[0]) : `${points.length} point(s)`,
      answerKind: p.answer,
      boxes,
      points,
      radius: p.radius,
      minIou: p.min_iou,
      file: item.imageName,
      ...(item.category ? { category: item.category } : {}),
    },
  } satisfies Sample;
}

async function readImage(path: string, where: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`${where}: image ${showName(path)} not found`);
    }
    throw e;
  }
}

function checkAnswerable(p: GroundingParams, source: DataSource): void {
  const format = formatOf(source.path, p.format);
  if (format === "coco" && p.prompt_column !== "") {
    throw new Error(
      `${showName(baseName(source.path))}: COCO prompts come from the template ` +
        "(task.params.prompt); prompt_column is for JSONL and CSV",
    );
  }
}

/**
 * A content key per item `load` reads from `source`: the sha256 of its image's bytes and
 * its prompt, so a test item that repeats a training item is found whatever the file names.
 */
async function rowKeys(source: DataSource, config: TaskConfig): Promise<string[]> {
  const p = paramsOf(config);
  const hashes = new Map<string, Promise<string>>();
  const keys: string[] = [];
  for await (const item of itemsOf(source, p)) {
    let hash = hashes.get(item.imagePath);
    if (!hash) {
      hash = readImage(item.imagePath, item.where).then(sha256Hex);
      hashes.set(item.imagePath, hash);
    }
    keys.push(`${await hash} ${item.prompt}`);
    if (p.limit > 0 && keys.length >= p.limit) break;
  }
  return keys;
}

function checkSources(train: DataSource, test: DataSource): SourceProblem | null {
  if (!sameFile(train.path, test.path)) return null;
  return {
    expected: "a test file other than source.train's (the test set must be held out)",
    found: `${JSON.stringify(test.path)}, the same file as task.source.train`,
  };
}

async function load(source: DataSource, config: TaskConfig): Promise<Sample[]> {
  assertParams("grounding", PARAMS.checkParams(config));
  const p = paramsOf(config);
  checkAnswerable(p, source);
  if (source.pair) await assertHeldOut(source.pair, (s) => rowKeys(s, config), "prompt");
  const decoded = new Map<string, Promise<DecodedImage>>();
  const samples: Sample[] = [];
  for await (const item of itemsOf(source, p)) {
    let pending = decoded.get(item.imagePath);
    if (!pending) {
      pending = readImage(item.imagePath, item.where).then((bytes) =>
        decodeNamed(bytes, config.imageSize, item.imagePath, item.where)
      );
      decoded.set(item.imagePath, pending);
    }
    samples.push(makeSample(item, await pending, config, p));
    if (p.limit > 0 && samples.length >= p.limit) break;
  }
  if (samples.length === 0) {
    throw new Error(`${showName(baseName(source.path))}: no items (every row skipped or none)`);
  }
  return samples;
}

/** The prompts `load` would read from `source`, without reading an image. */
async function prompts(source: DataSource, config: TaskConfig): Promise<string[]> {
  const p = paramsOf(config);
  const out: string[] = [];
  for await (const item of itemsOf(source, p)) {
    out.push(item.prompt);
    if (p.limit > 0 && out.length >= p.limit) break;
  }
  return out;
}

/** The image files `load` reads from `source` (each once). */
async function images(source: DataSource, config: TaskConfig): Promise<string[]> {
  const p = paramsOf(config);
  const out = new Set<string>();
  let n = 0;
  for await (const item of itemsOf(source, p)) {
    out.add(item.imagePath);
    if (p.limit > 0 && ++n >= p.limit) break;
  }
  return [...out];
}

// ---------------------------------------------------------------------------------------
// Stand-in: synthetic scenes written as a COCO instances file.

/**
 * Writes an offline stand-in in COCO's instances format under `dir`: `images/scene-*.png` and
 * `instances.json` (circles, squares and triangles as categories; triangles with a polygon),
 * until it holds `n` items as `load` reads them with `params`.
 */
async function writeStandIn(
  dir: string,
  seed: number,
  n: number,
  config: TaskConfig,
): Promise<DataSource> {
  assertParams("grounding", PARAMS.checkParams(config));
  const p = paramsOf(config);
  await Deno.mkdir(`${dir}/images`, { recursive: true });
  const images: unknown[] = [];
  const annotations: unknown[] = [];
  let items = 0;
  for (let s = 0; items < n; s++) {
    const rng = new Rng(seedFrom("grounding", seed, s));
    const scene = generateScene(rng, { sizes: ["large"] });
    const name = `scene-${String(s).padStart(6, "0")}.png`;
    await Deno.writeFile(`${dir}/images/${name}`, await encodePng(scene.image));
    const { width, height } = scene.image;
    images.push({ id: s + 1, file_name: name, width, height });
    const shapes = new Set<string>();
    scene.objects.forEach((o, i) => {
      const [x, y, w, h] = o.bbox;
      annotations.push({
        id: (s + 1) * 100 + i,
        image_id: s + 1,
        category_id: SHAPES.indexOf(o.shape) + 1,
        bbox: [x, y, w, h],
        area: w * h,
        iscrowd: 0,
        ...(o.shape === "triangle"
          ? { segmentation: [[x + w / 2, y, x + w, y + h, x, y + h]] }
          : { segmentation: [[x, y, x + w, y, x + w, y + h, x, y + h]] }),
      });
      shapes.add(o.shape);
    });
    const counts = SHAPES.map((shape) => scene.objects.filter((o) => o.shape === shape).length);
    items += p.several === "skip" ? counts.filter((c) => c === 1).length : shapes.size;
  }
  const categories = SHAPES.map((shape, i) => ({ id: i + 1, name: shape, supercategory: "shape" }));
  await Deno.writeTextFile(
    `${dir}/instances.json`,
    JSON.stringify({ images, annotations, categories }),
  );
  return { path: `${dir}/instances.json`, images: `${dir}/images` };
}

// ---------------------------------------------------------------------------------------
// Scoring.

function boxesOf(sample: Sample): PercentBox[] {
  return (sample.meta.boxes as PercentBox[] | undefined) ?? [];
}

function pointsOf(sample: Sample): PercentPoint[] {
  return (sample.meta.points as PercentPoint[] | undefined) ?? [];
}

function bestIou(prediction: string, sample: Sample): number {
  const box = parseBox(prediction);
  return box ? Math.max(0, ...boxesOf(sample).map((b) => boxIou(box, b))) : 0;
}

function pointHit(prediction: string, sample: Sample): boolean {
  const q = parsePoint(prediction);
  if (!q) return false;
  const radius = typeof sample.meta.radius === "number"
    ? sample.meta.radius
    : DEFAULT_PARAMS.radius;
  const inBox = boxesOf(sample).some((b) =>
    q.x >= b[0] && q.x <= b[2] && q.y >= b[1] && q.y <= b[3]
  );
  return inBox || hitsAnyPoint(q, pointsOf(sample), radius);
}

/** The generic grounding task over your own COCO, JSONL or CSV data. */
export const grounding: RealFormatTask = {
  name: "grounding",
  version: "1",
  // The default templates' words and the answers' numbers; a source's own words enter the
  // model's vocabulary from the data (`prompts`).
  vocabulary: [...promptWords("point to the"), ",", ...PERCENT_WORDS],
  paramSchema: PARAMS.paramSchema,
  defaultParams: PARAMS.defaultParams,
  checkParams: PARAMS.checkParams,
  checkSources,
  load,
  writeStandIn,
  prompts,
  images,
  /** Box answers: `iou` with the best-matching target box and accuracy at IoU >= 0.3. */
  metrics(prediction: string, sample: Sample): Record<string, number> {
    if (sample.meta.answerKind !== "box") return {};
    const iou = bestIou(prediction, sample);
    return { iou, accuracy_iou30: iou >= 0.3 ? 100 : 0 };
  },
  fromLabel(label, config) {
    const p = paramsOf(config);
    const box = label.box ?? (p.answer === "box" ? parseBox(label.answer) : null);
    const point = parsePoint(label.answer);
    const points = label.points?.map(([x, y]) => ({ x, y })) ?? (point ? [point] : []);
    if (p.answer === "box" && !box) {
      return `the answer is not a box "X1 Y1 X2 Y2" and the label gives no box`;
    }
    if (!box && points.length === 0) {
      return `the answer is not a point "X , Y" and the label gives none`;
    }
    return {
      meta: {
        answerKind: p.answer,
        boxes: box ? [box] : [],
        points,
        radius: p.radius,
        minIou: p.min_iou,
        difficulty: "outside",
      },
      target: box
        ? boxesTarget([box], config.imageSize, config.patchSize)
        : gaussianPointTarget(points, config.imageSize, config.patchSize, p.sigma),
    };
  },
  score(prediction: string, sample: Sample): boolean {
    if (sample.meta.answerKind === "box") {
      const minIou = typeof sample.meta.minIou === "number"
        ? sample.meta.minIou
        : DEFAULT_PARAMS.min_iou;
      return bestIou(prediction, sample) >= minIou;
    }
    return pointHit(prediction, sample);
  },
};
