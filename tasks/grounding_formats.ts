/**
 * The grounding task's readers (./grounding.ts): COCO instances, JSONL and CSV files become
 * items (an image path, a prompt, and the targets once the image's size is known), with errors
 * that name the file and the row.
 */
import type { DataSource } from "./task.ts";
import { baseName, describeValue, isRecord, numberOf, readRecords, showName } from "./image_io.ts";
import { CsvError, parseCsv } from "../pipeline/lib/csv.ts";
import type { PercentBox } from "./boxes.ts";
import type { PercentPoint } from "./pixmo_points.ts";
import { promptWords } from "./text.ts";
import {
  type Coordinates,
  fillTemplate,
  percentBoxOf,
  percentPointOf,
} from "./grounding_geometry.ts";

/** The annotation formats this task reads. */
export const GROUNDING_FORMATS = ["auto", "coco", "jsonl", "csv"] as const;

export type Format = typeof GROUNDING_FORMATS[number];

export interface GroundingParams {
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

/** One item as a file lists it, before its image is decoded. */
export interface Item {
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

export interface Geometry {
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
export function itemsOf(source: DataSource, p: GroundingParams): AsyncGenerator<Item> {
  const format = formatOf(source.path, p.format);
  return format === "coco" ? cocoItems(source, p) : tableItems(source, format, p);
}
