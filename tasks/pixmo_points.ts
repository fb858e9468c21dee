/**
 * PixMo-Points (poster, "Data & Tasks"): point to the object a label names in a real
 * image. Read from the public release's format (allenai/pixmo-points): rows with
 * `image_url`, `image_sha256`, `label`, `points` (a list of `{x, y}` in percent of the
 * image's width and height, 0-100), `count` and `collection_method`, as parquet or JSONL,
 * with the images in a local folder (nothing is downloaded).
 *
 * - Prompt: `point to the LABEL` (the label lower-cased, split on whitespace).
 * - Answer: one point `X , Y` in integer percent. A label may have several points (the
 *   counting rows); the answer is the first in reading order (sorted by y, then x), and
 *   the scorer accepts any of them.
 * - Rows with no points (labels of things absent from the image) are skipped: with no
 *   point there is nothing to point at and no ground-truth map.
 * - Ground truth P: a sum of isotropic Gaussians (sigma `sigma` patches) around all the
 *   points, evaluated at the patch centres and normalised.
 * - Score: a hit when the predicted point lies within `radius` percent-units of any
 *   ground-truth point. Percent-units are isotropic on the model's square image (it is
 *   stretched), and the default 10 is 0.8 patch at 8-px patches on 64-px images (one
 *   patch = 12.5 units), i.e. the answer must land on the right patch or next to it.
 *
 * Images are found by the basename of `image_url`, else as `<image_sha256>.<ext>`, and
 * must match `image_sha256`. Each is decoded once; rows of one image share its RgbImage.
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
import { COLOR_NAMES } from "./draw.ts";
import { type Attributes, generateScene, objectsMatching, SCENE_WORDS, SHAPES } from "./scenes.ts";
import { parquetWriteBuffer } from "hyparquet-writer";
import { assertParams } from "./common.ts";
import { defineParams } from "../pipeline/lib/schema.ts";
import { assertHeldOut, sameFile } from "./holdout.ts";

/** A point in percent of the image's width (x) and height (y). */
export interface PercentPoint {
  x: number;
  y: number;
}

interface PixmoParams {
  radius: number;
  sigma: number;
  limit: number;
}

/** The point fields a pointing task declares: hit radius and the map's sigma. */
export const POINT_FIELDS = {
  radius: {
    type: "number",
    min: 0,
    exclusiveMin: true,
    max: 100,
    unit: "percent-units",
    default: 10,
    doc: "hit radius: a predicted point within it of a ground-truth point scores",
  },
  sigma: {
    type: "number",
    min: 0,
    exclusiveMin: true,
    max: 16,
    unit: "patches",
    default: 0.75,
    doc: "Gaussian sigma of the ground-truth map",
  },
} as const;

/** `task.params`, declared once: type, range, default and doc (docs/spec-keys.md). */
const PARAMS = defineParams({
  ...POINT_FIELDS,
  limit: { type: "int", min: 0, default: 0, doc: "read at most this many samples (0: all)" },
});

const DEFAULT_PARAMS = structuredClone(PARAMS.defaultParams) as unknown as PixmoParams;

/** Number words "0".."100": answers are integer percents. */
const PERCENT_WORDS = Array.from({ length: 101 }, (_, i) => String(i));

/** Extensions tried for images stored as `<sha256>.<ext>`. */
const IMAGE_EXTENSIONS = ["jpg", "jpeg", "png", "webp", "gif"];

function paramsOf(config: TaskConfig): PixmoParams {
  return { ...DEFAULT_PARAMS, ...config.params } as PixmoParams;
}

function throwOnProblems(config: TaskConfig): void {
  assertParams("pixmo-points", PARAMS.checkParams(config));
}

/**
 * The ground-truth distribution over the patch grid: a sum of isotropic Gaussians with
 * standard deviation `sigma` patches, centred on `points` (percent), evaluated at the
 * patch centres, normalised to sum to 1.
 */
export function gaussianPointTarget(
  points: readonly PercentPoint[],
  imageSize: number,
  patchSize: number,
  sigma: number,
): Float32Array {
  if (points.length === 0) throw new Error("Expected at least one point, got none");
  const g = imageSize / patchSize;
  if (!Number.isInteger(g)) {
    throw new Error(
      `Expected the patch size to divide the image size ${imageSize}, got ${patchSize}`,
    );
  }
  const mass = new Float64Array(g * g);
  for (const p of points) {
    const px = (p.x / 100) * g; // patch units; patch (r, c) has its centre at (c + 0.5, r + 0.5)
    const py = (p.y / 100) * g;
    for (let r = 0; r < g; r++) {
      for (let c = 0; c < g; c++) {
        const d2 = (c + 0.5 - px) ** 2 + (r + 0.5 - py) ** 2;
        mass[r * g + c] += Math.exp(-d2 / (2 * sigma * sigma));
      }
    }
  }
  let total = 0;
  for (const m of mass) total += m;
  if (!(total > 0)) throw new Error("Ground-truth map has no mass (sigma too small?)");
  return Float32Array.from(mass, (m) => m / total);
}

/** The points sorted in reading order: by y, then by x. */
export function readingOrder(points: readonly PercentPoint[]): PercentPoint[] {
  return [...points].sort((a, b) => a.y - b.y || a.x - b.x);
}

/** A point as answer text: `X , Y` in integer percent, clamped to 0..100. */
export function formatPoint(p: PercentPoint): string {
  const q = (v: number) => String(Math.min(100, Math.max(0, Math.round(v))));
  return `${q(p.x)} , ${q(p.y)}`;
}

/**
 * The point in a prediction: two numbers, optionally separated by a comma ("12 , 34",
 * "12 34"). Anything else (other words, more or fewer numbers) is unparseable: null.
 */
export function parsePoint(prediction: string): PercentPoint | null {
  const words = prediction.trim().split(/\s+/).filter((w) => w !== "" && w !== ",");
  if (words.length !== 2 || !words.every((w) => /^-?\d+(\.\d+)?$/.test(w))) return null;
  return { x: Number(words[0]), y: Number(words[1]) };
}

/** Whether `p` lies within `radius` percent-units of any of `points`. */
export function hitsAnyPoint(
  p: PercentPoint,
  points: readonly PercentPoint[],
  radius: number,
): boolean {
  return points.some((q) => Math.hypot(p.x - q.x, p.y - q.y) <= radius);
}

/** Lower-cased, whitespace-split words of a label. */
function labelWords(label: string): string[] {
  return label.toLowerCase().trim().split(/\s+/).filter((w) => w !== "");
}

/** A validated row. */
interface PixmoRow {
  imageUrl: string;
  sha256: string;
  label: string;
  points: PercentPoint[];
  count: number;
  collectionMethod: string;
}

/**
 * Checks one raw record; errors name the file and row and describe what was found without
 * quoting it (`describeValue`).
 */
function parseRow(value: unknown, where: string): PixmoRow {
  if (!isRecord(value)) {
    throw new Error(`${where}: expected an object, got ${describeValue(value)}`);
  }
  const text = (key: string): string => {
    const v = value[key];
    if (typeof v !== "string") {
      throw new Error(`${where}: expected "${key}" to be a string, got ${describeValue(v)}`);
    }
    return v;
  };
  const imageUrl = text("image_url");
  const sha256 = text("image_sha256").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha256)) {
    throw new Error(
      `${where}: expected "image_sha256" to be 64 hex digits, got ${describeValue(sha256)}`,
    );
  }
  const label = text("label");
  const rawPoints = value["points"] ?? [];
  if (!Array.isArray(rawPoints)) {
    throw new Error(
      `${where}: expected "points" to be a list of {x, y}, got ${describeValue(rawPoints)}`,
    );
  }
  const points = rawPoints.map((p, i) => {
    const x = isRecord(p) ? numberOf(p.x) : NaN;
    const y = isRecord(p) ? numberOf(p.y) : NaN;
    if (!(x >= 0 && x <= 100 && y >= 0 && y <= 100)) {
      const found = isRecord(p)
        ? `x ${describeValue(p.x)}, y ${describeValue(p.y)}`
        : describeValue(p);
      throw new Error(
        `${where}: expected point ${i + 1} to be {x, y} in percent 0..100, got ${found}`,
      );
    }
    return { x, y };
  });
  const count = value["count"] === undefined || value["count"] === null
    ? points.length
    : numberOf(value["count"]);
  const method = value["collection_method"];
  return {
    imageUrl,
    sha256,
    label,
    points,
    count,
    collectionMethod: typeof method === "string" ? method : "",
  };
}

/** File names an image may have in the images folder: the URL's basename, then by hash. */
function candidateNames(imageUrl: string, sha256: string): string[] {
  const path = imageUrl.split(/[?#]/)[0];
  let base = baseName(path);
  try {
    base = decodeURIComponent(base);
  } catch {
    // keep the raw name
  }
  const names: string[] = [];
  if (base !== "" && base !== "." && base !== ".." && !base.includes("/")) names.push(base);
  const ext = /\.([a-z0-9]+)$/i.exec(base)?.[1]?.toLowerCase();
  for (const e of ext ? [ext, ...IMAGE_EXTENSIONS] : IMAGE_EXTENSIONS) names.push(`${sha256}.${e}`);
  names.push(sha256);
  return [...new Set(names)];
}

async function readIfExists(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Lower-cased difficulty bucket from the number of points. */
function difficultyOf(count: number): string {
  return count <= 1 ? "1 point" : count <= 5 ? "2-5 points" : "6+ points";
}

/**
 * A content key per sample `load` reads from `source`, without reading images: the row's
 * `image_sha256` (which `load` checks against the image's bytes) and its label's words.
 */
async function rowKeys(source: DataSource, config: TaskConfig): Promise<string[]> {
  const { limit } = paramsOf(config);
  const file = showName(baseName(source.path));
  const keys: string[] = [];
  for await (const { row, value } of readRecords(source.path)) {
    const r = parseRow(value, `${file} row ${row}`);
    if (r.points.length === 0) continue;
    keys.push(`${r.sha256} ${labelWords(r.label).join(" ")}`);
    if (limit > 0 && keys.length >= limit) break;
  }
  return keys;
}

/** The same annotation file for training and test: `split` is not read, so the same rows. */
function checkSources(train: DataSource, test: DataSource): SourceProblem | null {
  if (!sameFile(train.path, test.path)) return null;
  return {
    expected: "a test file other than source.train's (the test set must be held out)",
    found: `${JSON.stringify(test.path)}, the same file as task.source.train.path ` +
      `${JSON.stringify(train.path)}`,
  };
}

async function load(source: DataSource, config: TaskConfig): Promise<Sample[]> {
  throwOnProblems(config);
  const params = paramsOf(config);
  if (source.pair) await assertHeldOut(source.pair, (s) => rowKeys(s, config), "label");
  const file = showName(baseName(source.path));
  const imagesDir = source.images ??
    source.path.slice(0, source.path.replace(/\\/g, "/").lastIndexOf("/") + 1) + "images";
  // One decode per image file; rows often share an image.
  const decoded = new Map<string, Promise<{ name: string; decoded: DecodedImage }>>();
  const samples: Sample[] = [];
  for await (const { row, value } of readRecords(source.path)) {
    const where = `${file} row ${row}`;
    const r = parseRow(value, where);
    if (r.points.length === 0) continue;
    let pending = decoded.get(r.sha256);
    if (!pending) {
      pending = resolveImage(r, imagesDir, where, config.imageSize);
      decoded.set(r.sha256, pending);
    }
    const { name, decoded: picture } = await pending;
    const points = readingOrder(r.points);
    samples.push({
      image: picture.image,
      prompt: ["point", "to", "the", ...labelWords(r.label)].join(" "),
      answer: formatPoint(points[0]),
      target: gaussianPointTarget(points, config.imageSize, config.patchSize, params.sigma),
      meta: {
        difficulty: difficultyOf(points.length),
        label: r.label,
        points,
        count: r.count,
        collectionMethod: r.collectionMethod,
        imageUrl: r.imageUrl,
        file: name,
        row,
        radius: params.radius,
      },
    });
    if (params.limit > 0 && samples.length >= params.limit) break;
  }
  return samples;
}

/**
 * Finds, verifies (sha256) and decodes the image of a row. Messages name the row, the
 * folder and the file names tried (escaped), never the row's URL.
 */
async function resolveImage(
  r: PixmoRow,
  imagesDir: string,
  where: string,
  size: number,
): Promise<{ name: string; decoded: DecodedImage }> {
  const names = candidateNames(r.imageUrl, r.sha256);
  for (const name of names) {
    const bytes = await readIfExists(`${imagesDir}/${name}`);
    if (!bytes) continue;
    const found = await sha256Hex(bytes);
    if (found !== r.sha256) {
      throw new Error(
        `${where}: image sha256 mismatch for ${showName(name)} (expected ${
          r.sha256.slice(0, 12)
        }…, found ${found.slice(0, 12)}…)`,
      );
    }
    try {
      return { name, decoded: await decodeImage(bytes, size) };
    } catch (e) {
      throw new Error(`${where}: cannot decode image ${showName(name)} (${(e as Error).message})`);
    }
  }
  throw new Error(
    `${where}: image not found in ${showName(imagesDir)} (tried ${names.map(showName).join(", ")})`,
  );
}

/** Stand-in rows with no points, to exercise the skip: one per this many scenes. */
const EMPTY_ROW_EVERY = 4;

/**
 * Writes an offline stand-in in the public format under `dir`: `images/scene-*.png`,
 * `pixmo_points.parquet` (what the returned source names) and the same rows as
 * `pixmo_points.jsonl`. Labels are shape names, sometimes with a colour ("red circle");
 * points are the centres of every matching object, so `count` may exceed 1. Every
 * fourth scene adds a row with no points (an absent label), which loading skips.
 */
async function writeStandIn(
  dir: string,
  seed: number,
  n: number,
  config: TaskConfig,
): Promise<DataSource> {
  throwOnProblems(config);
  await Deno.mkdir(`${dir}/images`, { recursive: true });
  const rows: {
    image_url: string;
    image_sha256: string;
    label: string;
    points: PercentPoint[];
    count: number;
    collection_method: string;
  }[] = [];
  let withPoints = 0;
  for (let s = 0; withPoints < n; s++) {
    const rng = new Rng(seedFrom("pixmo-points", seed, s));
    const scene = generateScene(rng);
    const png = await encodePng(scene.image);
    const name = `scene-${String(s).padStart(6, "0")}.png`;
    await Deno.writeFile(`${dir}/images/${name}`, png);
    const sha = await sha256Hex(png);
    const url = `https://pixmo-standin.invalid/images/${name}`;
    const { width, height } = scene.image;
    const present = new Map<string, Attributes>();
    for (const o of scene.objects) {
      for (const a of [{ shape: o.shape }, { shape: o.shape, color: o.color }] as Attributes[]) {
        present.set(labelOf(a), a);
      }
    }
    const labels = rng.shuffle([...present.keys()].sort()).slice(
      0,
      Math.min(n - withPoints, rng.int(1, 2)),
    );
    for (const label of labels) {
      const points = objectsMatching(scene.objects, present.get(label)!).map((i) => ({
        x: round2((scene.objects[i].cx / width) * 100),
        y: round2((scene.objects[i].cy / height) * 100),
      }));
      rows.push({
        image_url: url,
        image_sha256: sha,
        label,
        points,
        count: points.length,
        collection_method: points.length > 1 ? "counting" : "pointing",
      });
      withPoints++;
    }
    if (s % EMPTY_ROW_EVERY === EMPTY_ROW_EVERY - 1) {
      const absent = COLOR_NAMES.flatMap((color) =>
        SHAPES.map((shape) => labelOf({ shape, color }))
      )
        .filter((l) => !present.has(l));
      rows.push({
        image_url: url,
        image_sha256: sha,
        label: rng.pick(absent),
        points: [],
        count: 0,
        collection_method: "counting",
      });
    }
  }
  await Deno.writeTextFile(
    `${dir}/pixmo_points.jsonl`,
    rows.map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  await Deno.writeFile(`${dir}/pixmo_points.parquet`, pixmoParquet(rows));
  return { path: `${dir}/pixmo_points.parquet`, images: `${dir}/images` };
}

function labelOf(a: Attributes): string {
  return a.color ? `${a.color} ${a.shape}` : a.shape;
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

/**
 * Parquet bytes for PixMo-Points rows, with the public release's schema: strings,
 * `points` a list of struct {x: double, y: double}, `count` int64.
 */
export function pixmoParquet(
  rows: readonly {
    image_url: string;
    image_sha256: string;
    label: string;
    points: readonly PercentPoint[];
    count: number;
    collection_method: string;
  }[],
): Uint8Array {
  const column = <K extends keyof (typeof rows)[number]>(key: K) => rows.map((r) => r[key]);
  const string = (name: string) =>
    ({ name, type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" }) as const;
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: "image_url", data: column("image_url") },
      { name: "image_sha256", data: column("image_sha256") },
      { name: "label", data: column("label") },
      { name: "points", data: rows.map((r) => r.points.map((p) => ({ x: p.x, y: p.y }))) },
      { name: "count", data: rows.map((r) => BigInt(r.count)) },
      { name: "collection_method", data: column("collection_method") },
    ],
    schema: [
      { name: "root", num_children: 6 },
      string("image_url"),
      string("image_sha256"),
      string("label"),
      { name: "points", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
      { name: "list", repetition_type: "REPEATED", num_children: 1 },
      { name: "element", repetition_type: "OPTIONAL", num_children: 2 },
      { name: "x", type: "DOUBLE", repetition_type: "OPTIONAL" },
      { name: "y", type: "DOUBLE", repetition_type: "OPTIONAL" },
      { name: "count", type: "INT64", repetition_type: "OPTIONAL" },
      string("collection_method"),
    ],
  });
  return new Uint8Array(buffer);
}

function pointsOf(sample: Sample): PercentPoint[] {
  return sample.meta.points as PercentPoint[];
}

/** The PixMo-Points task: point to what the label names. */
export const pixmoPoints: RealFormatTask = {
  name: "pixmo-points",
  version: "1",
  vocabulary: ["point", "to", ",", ...SCENE_WORDS, ...PERCENT_WORDS],
  paramSchema: PARAMS.paramSchema,
  defaultParams: PARAMS.defaultParams,
  checkParams: PARAMS.checkParams,
  checkSources,
  load,
  writeStandIn,
  /**
   * `hit`: 1 when the predicted point is within `radius` of a ground-truth point.
   * `precision`: the fraction of predicted points that hit one; a prediction is a single
   * point here, so it equals `hit`. Unparseable predictions score 0 on both.
   */
  metrics(prediction: string, sample: Sample): Record<string, number> {
    const hit = pixmoPoints.score(prediction, sample) ? 1 : 0;
    return { hit, precision: hit };
  },
  /** Its points (or the answer's one point), the map of Gaussians around them. */
  fromLabel(label, config) {
    const answer = parsePoint(label.answer);
    const points = label.points?.map(([x, y]) => ({ x, y })) ?? (answer ? [answer] : null);
    if (!points) return `the answer is not a point "X , Y" and the label gives no points`;
    const params = paramsOf(config);
    return {
      meta: { points, radius: params.radius, difficulty: difficultyOf(points.length) },
      target: gaussianPointTarget(points, config.imageSize, config.patchSize, params.sigma),
    };
  },
  score(prediction: string, sample: Sample): boolean {
    const p = parsePoint(prediction);
    const radius = typeof sample.meta.radius === "number"
      ? sample.meta.radius
      : DEFAULT_PARAMS.radius;
    return p !== null && hitsAnyPoint(p, pointsOf(sample), radius);
  },
};
