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
  decodeImage,
  describeValue,
  encodePng,
  isRecord,
  numberOf,
  readRecords,
  sha256Hex,
  showName,
} from "./image_io.ts";
import { patchMassOfRect } from "./draw.ts";
import { generateScene, SHAPES } from "./scenes.ts";
import { assertParams } from "./common.ts";
import { defineParams } from "../pipeline/lib/schema.ts";
import { CsvError, parseCsv } from "../pipeline/lib/csv.ts";
import { assertHeldOut, sameFile } from "./holdout.ts";
import { boxIou, parseBox, type PercentBox } from "./boxes.ts";
import {
  formatPoint,
  gaussianPointTarget,
  hitsAnyPoint,
  parsePoint,
  type PercentPoint,
  readingOrder,
} from "./pixmo_points.ts";

/** The annotation formats this task reads. */
export const GROUNDING_FORMATS = ["auto", "coco", "jsonl", "csv"] as const;

/** Coordinate conventions of points and boxes in JSONL and CSV files. */
export const COORDINATES = ["pixels", "percent", "unit", "thousand"] as const;

type Format = typeof GROUNDING_FORMATS[number];
type Coordinates = typeof COORDINATES[number];

interface GroundingParams {
  format: Format;
  answer: "point" | "box";
  prompt: string;
  image_column: string;
  prompt_column: string;
  category_column: string;
  point_column: string;
  point_columns: string[];
  box_column: string;
  box_columns: string[];
  coordinates: Coordinates;
  box_format: "xyxy" | "xywh";
  several: "any" | "skip";
  map: "auto" | "box" | "point";
  min_area: number;
  radius: number;
  min_iou: number;
  sigma: number;
  limit: number;
}

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
    type: "number",
    min: 0,
    exclusiveMin: true,
    max: 100,
    unit: "percent-units",
    default: 10,
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
  sigma: {
    type: "number",
    min: 0,
    exclusiveMin: true,
    max: 16,
    unit: "patches",
    default: 0.75,
    doc: "Gaussian sigma of a point's map",
  },
  limit: { type: "int", min: 0, default: 0, doc: "read at most this many items (0: all)" },
});

const DEFAULT_PARAMS = structuredClone(PARAMS.defaultParams) as unknown as GroundingParams;

/** Number words "0".."100": answers are integer percents. */
const PERCENT_WORDS = Array.from({ length: 101 }, (_, i) => String(i));

function paramsOf(config: TaskConfig): GroundingParams {
  return { ...DEFAULT_PARAMS, ...config.params } as GroundingParams;
}

/** The format of `path` under `params.format` (auto: by extension). */
export function formatOf(path: string, format: Format): Exclude<Format, "auto"> {
  if (format !== "auto") return format;
  if (/\.json$/i.test(path)) return "coco";
  if (/\.jsonl$/i.test(path)) return "jsonl";
  if (/\.csv$/i.test(path)) return "csv";
  throw new Error(
    `${showName(baseName(path))}: expected a .json (COCO instances), .jsonl or .csv file, or ` +
      "task.params.format naming the format",
  );
}

// ---------------------------------------------------------------------------------------
// Text, geometry, maps.

/** Words of a prompt: lower-cased, punctuation split off as words of its own. */
export function promptWords(text: string): string[] {
  return text.toLowerCase().replace(/([.,!?;:"()[\]{}])/g, " $1 ").trim().split(/\s+/)
    .filter((w) => w !== "");
}

/** The prompt of a template and a category: `{category}` replaced, then as words. */
export function fillTemplate(template: string, category: string): string {
  return promptWords(template.replaceAll("{category}", category)).join(" ");
}

/** A box as answer text: `X1 Y1 X2 Y2`, integer percent clamped to 0..100. */
export function formatBox(box: PercentBox): string {
  return box.map((v) => String(Math.min(100, Math.max(0, Math.round(v))))).join(" ");
}

/** Scale factors from a convention to percent, given the image file's size. */
function toPercent(coordinates: Coordinates, width: number, height: number): [number, number] {
  switch (coordinates) {
    case "pixels":
      return [100 / width, 100 / height];
    case "percent":
      return [1, 1];
    case "unit":
      return [100, 100];
    case "thousand":
      return [0.1, 0.1];
  }
}

/** A box in the file's convention as a percent box [x1, y1, x2, y2], clamped to the image. */
export function percentBoxOf(
  values: readonly number[],
  coordinates: Coordinates,
  boxFormat: "xyxy" | "xywh",
  width: number,
  height: number,
): PercentBox {
  const [sx, sy] = toPercent(coordinates, width, height);
  const [a, b, c, d] = values;
  const [x2, y2] = boxFormat === "xywh" ? [a + c, b + d] : [c, d];
  const clamp = (v: number) => Math.min(100, Math.max(0, v));
  return [clamp(a * sx), clamp(b * sy), clamp(x2 * sx), clamp(y2 * sy)];
}

/** A point in the file's convention as percent of the image's width and height. */
export function percentPointOf(
  values: readonly number[],
  coordinates: Coordinates,
  width: number,
  height: number,
): PercentPoint {
  const [sx, sy] = toPercent(coordinates, width, height);
  return { x: values[0] * sx, y: values[1] * sy };
}

/**
 * P over the patch grid from boxes (percent): each box an equal share of the mass, spread over
 * the patches by the area of the box inside each.
 */
export function boxesTarget(
  boxes: readonly PercentBox[],
  imageSize: number,
  patchSize: number,
): Float32Array {
  const s = imageSize / 100;
  const sum = new Float32Array((imageSize / patchSize) ** 2);
  for (const b of boxes) {
    const m = patchMassOfRect(imageSize, patchSize, {
      x: b[0] * s,
      y: b[1] * s,
      w: (b[2] - b[0]) * s,
      h: (b[3] - b[1]) * s,
    });
    for (let i = 0; i < sum.length; i++) sum[i] += m[i];
  }
  return normalised(sum);
}

/** Subsamples per patch side when a polygon's share of a patch is measured. */
const POLYGON_SUBSAMPLES = 4;

/**
 * P over the patch grid from polygons (each a flat list x1, y1, x2, y2, ... in percent): each
 * patch weighted by the share of a 4 x 4 grid of points in it that lie inside any polygon
 * (even-odd rule). Null when no sample point falls inside (a sliver smaller than the grid).
 */
export function polygonsTarget(
  polygons: readonly (readonly number[])[],
  imageSize: number,
  patchSize: number,
): Float32Array | null {
  const g = imageSize / patchSize;
  const mass = new Float32Array(g * g);
  const k = POLYGON_SUBSAMPLES;
  for (let r = 0; r < g; r++) {
    for (let c = 0; c < g; c++) {
      let inside = 0;
      for (let i = 0; i < k; i++) {
        for (let j = 0; j < k; j++) {
          const x = ((c + (j + 0.5) / k) / g) * 100;
          const y = ((r + (i + 0.5) / k) / g) * 100;
          if (polygons.some((p) => insidePolygon(x, y, p))) inside++;
        }
      }
      mass[r * g + c] = inside;
    }
  }
  return mass.some((m) => m > 0) ? normalised(mass) : null;
}

/** Whether (x, y) is inside the polygon `flat` (x1, y1, x2, y2, ...), even-odd rule. */
export function insidePolygon(x: number, y: number, flat: readonly number[]): boolean {
  let inside = false;
  const n = flat.length / 2;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const [xi, yi, xj, yj] = [flat[2 * i], flat[2 * i + 1], flat[2 * j], flat[2 * j + 1]];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function normalised(mass: Float32Array): Float32Array {
  let total = 0;
  for (const m of mass) total += m;
  if (!(total > 0)) throw new Error("the ground-truth map has no mass");
  return mass.map((m) => m / total);
}

function centre(b: PercentBox): PercentPoint {
  return { x: (b[0] + b[2]) / 2, y: (b[1] + b[3]) / 2 };
}

/** Object size buckets by the box's share of the image (COCO's small / medium / large). */
function sizeOf(b: PercentBox): string {
  const area = ((b[2] - b[0]) * (b[3] - b[1])) / 100; // percent of the image
  return area < 1 ? "small (<1%)" : area < 10 ? "medium (1-10%)" : "large (>10%)";
}

// ---------------------------------------------------------------------------------------
// Reading: every format becomes items, each with its image still on disk.

/** One item as a file lists it, before its image is decoded. */
interface Item {
  /** Names the row (or image and category) in errors. */
  where: string;
  /** The image's path, and its name as the file gives it (for messages and `meta.file`). */
  imagePath: string;
  imageName: string;
  prompt: string;
  /** Targets given the image file's size: boxes and/or points, polygons where given. */
  geometry(width: number, height: number): Geometry;
  category?: string;
}

interface Geometry {
  boxes: PercentBox[];
  points: PercentPoint[];
  polygons: number[][];
}

function dirOf(path: string): string {
  const i = path.replace(/\\/g, "/").lastIndexOf("/");
  return i < 0 ? "." : path.slice(0, i);
}

/** The images folder of a source: `images`, else the annotation file's folder. */
function imagesDirOf(source: DataSource): string {
  return source.images ?? dirOf(source.path);
}

/** `dir/name`, refusing names that climb out of `dir` or are absolute. */
export function imagePathIn(dir: string, name: string, where: string): string {
  const parts = name.replace(/\\/g, "/").split("/");
  if (name === "" || name.startsWith("/") || /^[A-Za-z]:/.test(name) || parts.includes("..")) {
    throw new Error(
      `${where}: expected an image path inside the images folder (not empty, not absolute, ` +
        `no ".."), got ${showName(JSON.stringify(name))}`,
    );
  }
  return `${dir}/${parts.filter((p) => p !== "" && p !== ".").join("/")}`;
}

function fail(where: string, expected: string, value: unknown): never {
  throw new Error(`${where}: expected ${expected}, got ${describeValue(value)}`);
}

/** Numbers of a value: a list of numbers, or text "12 40" / "[12, 40]" / "12,40". */
function numbersOf(value: unknown): number[] | null {
  if (typeof value === "string") {
    const words = value.replace(/[[\](){}]/g, " ").split(/[\s,;]+/).filter((w) => w !== "");
    const out = words.map(Number);
    return out.length > 0 && out.every(Number.isFinite) ? out : null;
  }
  if (Array.isArray(value) && value.every((v) => Number.isFinite(numberOf(v)))) {
    return value.map(numberOf);
  }
  if (isRecord(value) && "x" in value && "y" in value) {
    const xy = [numberOf(value.x), numberOf(value.y)];
    return xy.every(Number.isFinite) ? xy : null;
  }
  return null;
}

/** One shape (`size` numbers) or a list of them, from a column's value. */
function shapesOf(value: unknown, size: number): number[][] | null {
  if (
    Array.isArray(value) && value.length > 0 && value.every((v) => !Number.isFinite(numberOf(v)))
  ) {
    const all = value.map(numbersOf);
    return all.every((s) => s !== null && s.length === size) ? all as number[][] : null;
  }
  const one = numbersOf(value);
  if (one === null || one.length === 0 || one.length % size !== 0) return null;
  return Array.from({ length: one.length / size }, (_, i) => one.slice(i * size, (i + 1) * size));
}

/** Rows of a JSONL or CSV file as records of column name -> value, with where each is. */
async function* tableRows(
  path: string,
  format: "jsonl" | "csv",
): AsyncGenerator<{ where: string; record: Record<string, unknown> }> {
  const file = showName(baseName(path));
  if (format === "jsonl") {
    for await (const { row, value } of readRecords(path)) {
      const where = `${file} row ${row}`;
      if (!isRecord(value)) fail(where, "a JSON object", value);
      yield { where, record: value };
    }
    return;
  }
  let records;
  try {
    records = parseCsv(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof CsvError) throw new Error(`${file}:${e.message}`);
    throw e;
  }
  if (records.length === 0) throw new Error(`${file}: expected a header row, found nothing`);
  const [header, ...rows] = records;
  for (const r of rows) {
    const where = `${file}:${r.line}`;
    if (r.fields.length !== header.fields.length) {
      throw new Error(
        `${where}: expected ${header.fields.length} columns (${header.fields.join(",")}), ` +
          `found ${r.fields.length}`,
      );
    }
    yield { where, record: Object.fromEntries(header.fields.map((h, i) => [h, r.fields[i]])) };
  }
}

/** The items of a JSONL or CSV source: one a row. */
async function* tableItems(
  source: DataSource,
  format: "jsonl" | "csv",
  p: GroundingParams,
): AsyncGenerator<Item> {
  const dir = imagesDirOf(source);
  const column = (record: Record<string, unknown>, name: string, where: string) => {
    if (!(name in record)) {
      throw new Error(
        `${where}: no column "${name}" (columns: ${Object.keys(record).join(", ")}); name the ` +
          "columns in task.params",
      );
    }
    return record[name];
  };
  const boxesNeeded = p.answer === "box";
  for await (const { where, record } of tableRows(source.path, format)) {
    const image = column(record, p.image_column, where);
    if (typeof image !== "string") fail(`${where} "${p.image_column}"`, "a file name", image);
    let prompt: string;
    let category: string | undefined;
    if (p.prompt_column !== "") {
      const text = column(record, p.prompt_column, where);
      if (typeof text !== "string" || promptWords(text).length === 0) {
        fail(`${where} "${p.prompt_column}"`, "a prompt", text);
      }
      prompt = promptWords(text).join(" ");
    } else {
      const c = column(record, p.category_column, where);
      if (typeof c !== "string" || promptWords(c).length === 0) {
        fail(`${where} "${p.category_column}"`, "a category name", c);
      }
      category = promptWords(c).join(" ");
      prompt = fillTemplate(p.prompt, category);
    }
    const fromColumns = (names: string[]) => [names.map((n) => column(record, n, where))];
    const boxColumnGiven = p.box_columns.length > 0 || p.box_column in record;
    const pointColumnGiven = p.point_columns.length > 0 || p.point_column in record;
    let rawBoxes: number[][] | null = null;
    let rawPoints: number[][] | null = null;
    if (boxColumnGiven) {
      const raw = p.box_columns.length > 0
        ? fromColumns(p.box_columns).map((v) => v.map((x) => Number(x)))
        : shapesOf(record[p.box_column], 4);
      if (raw === null || !raw.every((b) => b.length === 4 && b.every(Number.isFinite))) {
        fail(
          `${where} box`,
          `four numbers (${p.box_format}) or a list of them`,
          record[p.box_column],
        );
      }
      rawBoxes = raw;
    }
    if (pointColumnGiven) {
      const raw = p.point_columns.length > 0
        ? fromColumns(p.point_columns).map((v) => v.map((x) => Number(x)))
        : shapesOf(record[p.point_column], 2);
      if (raw === null || !raw.every((q) => q.length === 2 && q.every(Number.isFinite))) {
        fail(`${where} point`, "two numbers [x, y] or a list of them", record[p.point_column]);
      }
      rawPoints = raw;
    }
    if (boxesNeeded && !rawBoxes) {
      throw new Error(
        `${where}: task.params.answer is box, but the row has no box column ` +
          `("${p.box_column}" or box_columns)`,
      );
    }
    if (!rawBoxes && !rawPoints) {
      throw new Error(
        `${where}: no point ("${p.point_column}" or point_columns) and no box ` +
          `("${p.box_column}" or box_columns)`,
      );
    }
    const boxes = rawBoxes, points = rawPoints;
    yield {
      where,
      imagePath: imagePathIn(dir, image, where),
      imageName: image,
      prompt,
      category,
      geometry: (width, height) => ({
        boxes: (boxes ?? []).map((b) =>
          percentBoxOf(b, p.coordinates, p.box_format, width, height)
        ),
        points: (points ?? []).map((q) => percentPointOf(q, p.coordinates, width, height)),
        polygons: [],
      }),
    };
  }
}

/** The items of a COCO instances file: one per (image, category), in the file's image order. */
async function* cocoItems(source: DataSource, p: GroundingParams): AsyncGenerator<Item> {
  const file = showName(baseName(source.path));
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(source.path));
  } catch (e) {
    if (e instanceof SyntaxError) throw new Error(`${file}: not JSON (${e.message})`);
    throw e;
  }
  if (!isRecord(json)) fail(file, "a COCO instances object", json);
  for (const key of ["images", "annotations", "categories"]) {
    if (!Array.isArray(json[key])) fail(`${file} "${key}"`, "a list", json[key]);
  }
  const categories = new Map<number, string>();
  (json.categories as unknown[]).forEach((c, i) => {
    const where = `${file} categories[${i}]`;
    if (!isRecord(c) || !Number.isFinite(numberOf(c.id)) || typeof c.name !== "string") {
      fail(where, '{"id": number, "name": string}', c);
    }
    categories.set(numberOf(c.id), promptWords(c.name.replace(/_/g, " ")).join(" "));
  });
  const images = new Map<number, { name: string; width: number; height: number; at: number }>();
  (json.images as unknown[]).forEach((im, i) => {
    const where = `${file} images[${i}]`;
    if (!isRecord(im) || typeof im.file_name !== "string") fail(where, '{"file_name": ...}', im);
    const [id, width, height] = [numberOf(im.id), numberOf(im.width), numberOf(im.height)];
    if (![id, width, height].every(Number.isFinite) || width <= 0 || height <= 0) {
      fail(where, '"id", "width" and "height" numbers', im);
    }
    images.set(id, { name: im.file_name, width, height, at: i });
  });
  interface Instance {
    box: number[];
    polygons: number[][];
    crowd: boolean;
    where: string;
  }
  // image id -> category id -> instances, in the file's order.
  const byImage = new Map<number, Map<number, Instance[]>>();
  (json.annotations as unknown[]).forEach((a, i) => {
    const where = `${file} annotations[${i}]`;
    if (!isRecord(a)) fail(where, "an object", a);
    const imageId = numberOf(a.image_id);
    const categoryId = numberOf(a.category_id);
    if (!images.has(imageId)) {
      fail(`${where} "image_id"`, "the id of an image in images", a.image_id);
    }
    if (!categories.has(categoryId)) {
      fail(`${where} "category_id"`, "the id of a category in categories", a.category_id);
    }
    const box = numbersOf(a.bbox);
    if (!box || box.length !== 4 || box[2] < 0 || box[3] < 0) {
      fail(`${where} "bbox"`, "[x, y, width, height] in pixels", a.bbox);
    }
    const crowd = numberOf(a.iscrowd) === 1;
    const polygons = !crowd && Array.isArray(a.segmentation)
      ? (a.segmentation as unknown[]).flatMap((s) => {
        const flat = numbersOf(s);
        return flat && flat.length >= 6 && flat.length % 2 === 0 ? [flat] : [];
      })
      : [];
    const perCategory = byImage.get(imageId) ?? new Map<number, Instance[]>();
    const list = perCategory.get(categoryId) ?? [];
    list.push({ box, polygons, crowd, where });
    perCategory.set(categoryId, list);
    byImage.set(imageId, perCategory);
  });
  const dir = imagesDirOf(source);
  const ordered = [...byImage.entries()].sort((a, b) =>
    images.get(a[0])!.at - images.get(b[0])!.at
  );
  for (const [imageId, perCategory] of ordered) {
    const image = images.get(imageId)!;
    const imagePath = imagePathIn(dir, image.name, `${file} image ${imageId}`);
    for (const [categoryId, all] of [...perCategory.entries()].sort((a, b) => a[0] - b[0])) {
      if (all.some((x) => x.crowd)) continue;
      const big = all.filter((x) => {
        const b = percentBoxOf(x.box, "pixels", "xywh", image.width, image.height);
        return (b[2] - b[0]) * (b[3] - b[1]) / 100 >= p.min_area && b[2] > b[0] && b[3] > b[1];
      });
      if (big.length === 0 || (p.several === "skip" && all.length > 1)) continue;
      const category = categories.get(categoryId)!;
      yield {
        where: `${file} image ${imageId} (${showName(image.name)}) category ${categoryId}`,
        imagePath,
        imageName: image.name,
        prompt: fillTemplate(p.prompt, category),
        category,
        // The annotation's pixels are those of its width x height, whatever the file holds.
        geometry: () => ({
          boxes: big.map((x) => percentBoxOf(x.box, "pixels", "xywh", image.width, image.height)),
          points: [],
          polygons: big.flatMap((x) =>
            x.polygons.map((flat) =>
              flat.map((v, k) => (k % 2 === 0 ? (v / image.width) : (v / image.height)) * 100)
            )
          ),
        }),
      };
    }
  }
}

/** The items of a source, in its format. */
function itemsOf(source: DataSource, p: GroundingParams): AsyncGenerator<Item> {
  const format = formatOf(source.path, p.format);
  return format === "coco" ? cocoItems(source, p) : tableItems(source, format, p);
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
  const targets = g.boxes.length > 0 ? g.boxes : [];
  const points = g.points.length > 0 ? readingOrder(g.points) : readingOrder(targets.map(centre));
  const boxes = [...targets].sort((a, b) => {
    const [ca, cb] = [centre(a), centre(b)];
    return ca.y - cb.y || ca.x - cb.x;
  });
  let answer: string;
  if (p.answer === "box") answer = formatBox(boxes[0]);
  else answer = formatPoint(points[0]);
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

async function decodeOrThrow(bytes: Uint8Array, size: number, path: string, where: string) {
  try {
    return await decodeImage(bytes, size);
  } catch (e) {
    throw new Error(`${where}: cannot decode image ${showName(path)} (${(e as Error).message})`);
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
        decodeOrThrow(bytes, config.imageSize, item.imagePath, item.where)
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
