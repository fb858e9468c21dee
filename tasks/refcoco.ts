/**
 * RefCOCO (poster, "Data & Tasks"): referring expression comprehension. Given an
 * expression ("the man on the left"), answer the referred object's box.
 *
 * Two public on-disk formats are read:
 * - the original release (`refer` toolkit): `refs(unc).p`, a Python pickle holding a
 *   list of refs `{ref_id, ann_id, image_id, split, sentences: [{sent, tokens, raw}],
 *   category_id, file_name}`, plus COCO's `instances.json` (`images`, `annotations` with
 *   `bbox: [x, y, w, h]` in pixels). The pickle is read as data only: an opcode that
 *   would name a Python global (GLOBAL, STACK_GLOBAL, INST...) or a persistent id or
 *   extension is refused with an error, so nothing in the file is ever instantiated or
 *   run. One sample per (ref, sentence) of the chosen split.
 * - the common parquet export (lmms-lab/RefCOCO layout): rows `question_id, image
 *   ({bytes, path} or absent), question, answer, bbox, file_name`, one file per split.
 *   There `question` is a fixed instruction and `answer` the referring expression(s) (a
 *   string or a list: one sample each); `bbox` is COCO `[x, y, w, h]` in pixels of the
 *   image. Without embedded bytes the image is `file_name` in the images folder.
 *
 * - Prompt: the expression, lower-cased, punctuation split off into its own words.
 * - Answer: the box `X1 Y1 X2 Y2` in integer percent of the width and height (0..100).
 * - Ground truth P: each patch weighted by the fraction of it the box covers, normalised.
 * - Score: Acc@IoU: correct when IoU(predicted box, ground-truth box) >= `min_iou`
 *   (0.5, the standard); unparseable predictions are wrong. Metric `iou`.
 *
 * Each image is decoded once; the samples of one image share its RgbImage.
 */

import type { DataSource, RealFormatTask, Sample, SourceProblem, TaskConfig } from "./task.ts";
import { Rng, seedFrom } from "../pipeline/lib/rng.ts";
import { Parser } from "pickleparser";
import {
  baseName,
  type DecodedImage,
  decodeNamed,
  describeValue as describe,
  encodePng,
  isRecord,
  jsonProblem,
  libraryMessage,
  numberOf,
  readRecords,
  sha256Hex,
  showName,
} from "./image_io.ts";
import { patchMassOfRect } from "./draw.ts";
import { boxIou, formatBox, parseBox, type PercentBox } from "./boxes.ts";
import { promptWords } from "./text.ts";

export { boxIou, formatBox, parseBox, type PercentBox };
import {
  chooseExpressions,
  generateScene,
  SCENE_WORDS,
  SHAPES,
  type Size,
  SIZES,
} from "./scenes.ts";
import { assertParams } from "./common.ts";
import { defineParams, distinctListOf } from "../pipeline/lib/schema.ts";
import { assertHeldOut, sameFile } from "./holdout.ts";

interface RefcocoParams {
  min_iou: number;
  split: string;
  limit: number;
  stand_in_sizes: Size[];
  stand_in_refs: number;
  stand_in_expressions: number;
}

const SPLITS = ["train", "val", "testA", "testB", "test"];

/** `task.params`, declared once: type, range, default and doc (docs/spec-keys.md). */
const PARAMS = defineParams({
  min_iou: {
    type: "number",
    min: 0,
    exclusiveMin: true,
    max: 1,
    default: 0.5,
    doc: "IoU at or above which a predicted box counts as correct",
  },
  split: {
    type: "enum",
    values: SPLITS,
    default: "val",
    doc: "split read when the source names none; the split a stand-in fills",
  },
  limit: { type: "int", min: 0, default: 0, doc: "read at most this many samples (0: all)" },
  stand_in_sizes: distinctListOf(SIZES, "object sizes", {
    minItems: 1,
    default: [...SIZES],
    doc: "the offline stand-in's object sizes (large alone: boxes big enough for IoU >= 0.5 " +
      "at 64 px)",
  }),
  stand_in_refs: {
    type: "int",
    min: 1,
    max: 6,
    default: 2,
    doc: "objects the stand-in refers to per image (1 with stand_in_expressions 1: one item " +
      "per image)",
  },
  stand_in_expressions: {
    type: "int",
    min: 1,
    max: 3,
    default: 3,
    doc: "most expressions per referred object in the stand-in (1 to this many)",
  },
});

const DEFAULT_PARAMS = structuredClone(PARAMS.defaultParams) as unknown as RefcocoParams;

/** Number words "0".."100": answers are integer percents. */
const PERCENT_WORDS = Array.from({ length: 101 }, (_, i) => String(i));

function paramsOf(config: TaskConfig): RefcocoParams {
  return { ...DEFAULT_PARAMS, ...config.params } as RefcocoParams;
}

function throwOnProblems(config: TaskConfig): void {
  assertParams("refcoco", PARAMS.checkParams(config));
}

// ---------------------------------------------------------------------------------------
// Pickle: read as data only; write (protocol 2) for the stand-in.

/** A value a data-only pickle can hold. */
export type PickleValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | PickleValue[]
  | { [key: string]: PickleValue };

/**
 * The most values a pickle may hold, counting a value once for every place it appears: 10
 * million. RefCOCO's `refs(unc).p` holds about 2 million (50,000 refs of some 40 values
 * each). A pickle can refer to one list from many places (BINGET of a memoised object), so
 * a few hundred bytes can describe 2^depth paths; such a file is refused here instead of
 * being walked by the loader.
 */
export const MAX_PICKLE_VALUES = 10_000_000;

/**
 * The plain data in pickle `bytes` (lists and tuples as arrays, dicts as objects,
 * strings, numbers, booleans, None as null, bytes as Uint8Array). Any opcode that names
 * code (a global, a persistent id, an extension) is refused before anything could use
 * it; `file` names the file in errors. A list or dict the pickle refers to from several
 * places is converted once and stays shared; a pickle holding more than
 * `MAX_PICKLE_VALUES` values (shared ones counted at each place) or a cycle is refused.
 */
export function readPickleData(bytes: Uint8Array, file: string): PickleValue {
  const refuse = (what: string): never => {
    throw new PickleRefused(
      `${file}: refusing pickle opcode ${what}: the file must hold plain data (lists, dicts, ` +
        `strings, numbers) only, nothing to import or call`,
    );
  };
  const parser = new Parser({
    nameResolver: {
      resolve: (module, name) => refuse(`naming global ${showName(`${module}.${name}`)}`),
    },
    persistentResolver: { resolve: () => refuse(`PERSID (a persistent id)`) },
    extensionResolver: { resolve: (code) => refuse(`EXT ${code}`) },
    unpicklingTypeOfDictionary: "Map",
    unpicklingTypeOfSet: "array",
  });
  let value: unknown;
  try {
    value = parser.parse(bytes);
  } catch (e) {
    if (e instanceof PickleRefused) throw e;
    throw new Error(`${file}: not a readable data pickle (${libraryMessage(e)})`);
  }
  const converted = new PlainData(file).convert(value, 0);
  if (converted.count > MAX_PICKLE_VALUES) {
    throw new Error(
      `${file}: the pickle holds ${converted.count} values counting each place a shared list ` +
        `or dict appears, expected at most ${MAX_PICKLE_VALUES} (MAX_PICKLE_VALUES)`,
    );
  }
  return converted.value;
}

class PickleRefused extends Error {}

/**
 * Converts the parser's output to plain data; anything else is an error. Each list or dict
 * is converted once (by identity), so structure the pickle shares stays shared and the work
 * is linear in the file; `count` is the number of values as if every share were a copy.
 */
class PlainData {
  readonly #done = new Map<object, { value: PickleValue; count: number }>();
  readonly #open = new Set<object>();
  constructor(readonly file: string) {}

  convert(value: unknown, depth: number): { value: PickleValue; count: number } {
    if (depth > 64) throw new Error(`${this.file}: pickle nests deeper than 64 levels`);
    if (value === null || typeof value === "boolean" || typeof value === "string") {
      return { value, count: 1 };
    }
    if (typeof value === "number") return { value, count: 1 };
    if (typeof value === "bigint") return { value: Number(value), count: 1 };
    if (value instanceof Uint8Array) return { value, count: 1 };
    if (!Array.isArray(value) && !(value instanceof Map)) {
      throw new Error(`${this.file}: pickle holds a ${typeof value} that is not plain data`);
    }
    const done = this.#done.get(value);
    if (done) return done;
    if (this.#open.has(value)) {
      throw new Error(`${this.file}: pickle holds a list or dict that contains itself`);
    }
    this.#open.add(value);
    let count = 1;
    let out: PickleValue;
    if (Array.isArray(value)) {
      out = value.map((v) => {
        const c = this.convert(v, depth + 1);
        count += c.count;
        return c.value;
      });
    } else {
      // Own properties too: the parser's DICT opcode sets properties even on a Map.
      const entries = [...value.entries(), ...Object.entries(value)];
      out = Object.fromEntries(entries.map(([k, v]) => {
        const c = this.convert(v, depth + 1);
        count += c.count;
        return [String(k), c.value];
      }));
    }
    this.#open.delete(value);
    const result = { value: out, count };
    this.#done.set(value, result);
    return result;
  }
}

/**
 * Protocol-2 pickle bytes of plain data, as Python's `pickle.dumps(value, 2)` would
 * read it: integers as ints, other numbers as floats, strings as unicode.
 */
export function writePickle(value: PickleValue): Uint8Array {
  const out: number[] = [0x80, 2]; // PROTO 2
  const utf8 = new TextEncoder();
  const u32 = (n: number) => out.push(n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255);
  const write = (v: PickleValue): void => {
    if (v === null) out.push(0x4e); // NONE
    else if (v === true) out.push(0x88); // NEWTRUE
    else if (v === false) out.push(0x89); // NEWFALSE
    else if (typeof v === "number") {
      if (Number.isInteger(v) && v >= 0 && v < 256) out.push(0x4b, v); // BININT1
      else if (Number.isInteger(v) && v >= 0 && v < 65536) out.push(0x4d, v & 255, v >>> 8); // BININT2
      else if (Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) {
        out.push(0x4a); // BININT
        u32(v);
      } else if (Number.isSafeInteger(v)) {
        // LONG1: little-endian two's complement, 8 bytes.
        out.push(0x8a, 8);
        let big = BigInt.asUintN(64, BigInt(v));
        for (let i = 0; i < 8; i++, big >>= 8n) out.push(Number(big & 255n));
      } else {
        out.push(0x47); // BINFLOAT, big-endian
        const b = new DataView(new ArrayBuffer(8));
        b.setFloat64(0, v);
        for (let i = 0; i < 8; i++) out.push(b.getUint8(i));
      }
    } else if (typeof v === "string") {
      const bytes = utf8.encode(v);
      out.push(0x58); // BINUNICODE
      u32(bytes.length);
      for (const b of bytes) out.push(b);
    } else if (v instanceof Uint8Array) {
      throw new Error("writePickle: bytes need protocol 3; not supported");
    } else if (Array.isArray(v)) {
      out.push(0x5d); // EMPTY_LIST
      for (let i = 0; i < v.length; i += 1000) {
        out.push(0x28); // MARK
        for (const item of v.slice(i, i + 1000)) write(item);
        out.push(0x65); // APPENDS
      }
    } else {
      out.push(0x7d); // EMPTY_DICT
      const entries = Object.entries(v);
      for (let i = 0; i < entries.length; i += 1000) {
        out.push(0x28); // MARK
        for (const [k, item] of entries.slice(i, i + 1000)) {
          write(k);
          write(item);
        }
        out.push(0x75); // SETITEMS
      }
    }
  };
  write(value);
  out.push(0x2e); // STOP
  return new Uint8Array(out);
}

// ---------------------------------------------------------------------------------------
// Text, boxes, scoring.

/** Words of an expression: lower-cased, punctuation split off as words of its own. */
export const expressionWords = promptWords;

/** The percent box of a COCO `[x, y, w, h]` pixel box in a `width` x `height` image. */
export function percentBox(bbox: readonly number[], width: number, height: number): PercentBox {
  const clamp = (v: number) => Math.min(100, Math.max(0, v));
  return [
    clamp((bbox[0] / width) * 100),
    clamp((bbox[1] / height) * 100),
    clamp(((bbox[0] + bbox[2]) / width) * 100),
    clamp(((bbox[1] + bbox[3]) / height) * 100),
  ];
}

/** P over the patch grid: each patch weighted by the fraction of it `box` covers. */
export function boxTarget(box: PercentBox, imageSize: number, patchSize: number): Float32Array {
  const s = imageSize / 100;
  return patchMassOfRect(imageSize, patchSize, {
    x: box[0] * s,
    y: box[1] * s,
    w: (box[2] - box[0]) * s,
    h: (box[3] - box[1]) * s,
  });
}

function difficultyOf(words: number): string {
  return words <= 3 ? "1-3 words" : words <= 6 ? "4-6 words" : "7+ words";
}

/** A sample from an expression and a box; `where` names the row in errors. */
function makeSample(
  text: string,
  box: PercentBox,
  image: DecodedImage,
  config: TaskConfig,
  params: RefcocoParams,
  where: string,
  meta: Record<string, unknown>,
): Sample {
  const words = expressionWords(text);
  if (words.length === 0) throw new Error(`${where}: empty referring expression`);
  if (!(box[2] > box[0] && box[3] > box[1])) {
    throw new Error(`${where}: box ${JSON.stringify(box)} (percent) has no area`);
  }
  return {
    image: image.image,
    prompt: words.join(" "),
    answer: formatBox(box),
    target: boxTarget(box, config.imageSize, config.patchSize),
    meta: { difficulty: difficultyOf(words.length), box, minIou: params.min_iou, ...meta },
  };
}

// ---------------------------------------------------------------------------------------
// Loading.

function dirOf(path: string): string {
  const i = path.replace(/\\/g, "/").lastIndexOf("/");
  return i < 0 ? "." : path.slice(0, i);
}

async function readImageFile(dir: string, name: string, where: string): Promise<Uint8Array> {
  if (name === "" || name.includes("/") || name.includes("\\") || name === "..") {
    throw new Error(
      `${where}: expected an image file name (not empty, no folder, not ".."), got ${
        showName(JSON.stringify(name))
      }`,
    );
  }
  try {
    return await Deno.readFile(`${dir}/${name}`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`${where}: image ${showName(name)} not found in ${showName(dir)}`);
    }
    throw e;
  }
}

/** `record[key]` when it is a finite number, else an error naming `where`. */
function numberField(record: Record<string, unknown>, key: string, where: string): number {
  const v = numberOf(record[key]);
  if (!Number.isFinite(v)) {
    throw new Error(`${where}: expected "${key}" to be a number, got ${describe(record[key])}`);
  }
  return v;
}

function stringField(record: Record<string, unknown>, key: string, where: string): string {
  const v = record[key];
  if (typeof v !== "string") {
    throw new Error(`${where}: expected "${key}" to be a string, got ${describe(v)}`);
  }
  return v;
}

function bboxField(record: Record<string, unknown>, where: string): number[] {
  const b = record["bbox"];
  const values = Array.isArray(b) ? b.map(numberOf) : [];
  if (values.length !== 4 || !values.every(Number.isFinite)) {
    throw new Error(`${where}: expected "bbox" to be [x, y, w, h] numbers, got ${describe(b)}`);
  }
  return values;
}

/**
 * One referred object as a source lists it, before its image is decoded: what `load` turns
 * into samples and `rowKeys` into content keys.
 */
interface RefRow {
  /** Names the row in errors. */
  where: string;
  /** Identifies the image among the rows: each image is decoded (or hashed) once. */
  imageKey: string;
  /** The image's file name, for messages and `meta.file`. */
  imageName: string;
  /** The image file it reads (none when its bytes are embedded in the row). */
  imagePath?: string;
  readImage(): Promise<Uint8Array>;
  /** The box in percent, given the decoded image. */
  box(image: DecodedImage): PercentBox;
  /** Its expressions, each with where it is (for errors) and its sample's meta. */
  texts: { text: string; where: string; meta: Record<string, unknown> }[];
}

/** The COCO instances file a pickle source reads (its `extra.instances`, else beside it). */
function instancesPathOf(source: DataSource): string {
  return source.extra?.instances ?? `${dirOf(source.path)}/instances.json`;
}

/** The original release: refs(unc).p + instances.json. */
async function* refsRows(source: DataSource, params: RefcocoParams): AsyncGenerator<RefRow> {
  const file = showName(baseName(source.path));
  const split = source.split ?? params.split;
  const imagesDir = source.images ?? `${dirOf(source.path)}/images`;
  const instancesPath = instancesPathOf(source);
  const instancesName = showName(baseName(instancesPath));
  const refs = readPickleData(await Deno.readFile(source.path), file);
  if (!Array.isArray(refs)) {
    throw new Error(`${file}: expected a list of refs, got ${describe(refs)}`);
  }
  let instances: unknown;
  try {
    instances = JSON.parse(await Deno.readTextFile(instancesPath));
  } catch (e) {
    const why = e instanceof SyntaxError ? jsonProblem(e) : libraryMessage(e);
    throw new Error(`${instancesName}: cannot read COCO instances (${why})`);
  }
  if (
    !isRecord(instances) || !Array.isArray(instances.images) ||
    !Array.isArray(instances.annotations)
  ) {
    throw new Error(`${instancesName}: expected an object with "images" and "annotations" lists`);
  }
  const images = new Map<number, Record<string, unknown>>();
  instances.images.forEach((im, i) => {
    const where = `${instancesName} images[${i}]`;
    if (!isRecord(im)) throw new Error(`${where}: expected an object, got ${describe(im)}`);
    images.set(numberField(im, "id", where), im);
  });
  const annotations = new Map<number, { ann: Record<string, unknown>; where: string }>();
  // Every object of each image (crowd regions aside): the candidates a referring expression
  // picks from, for the question-blind baseline that attends to all of them.
  const objectsOf = new Map<number, number[][]>();
  instances.annotations.forEach((ann, i) => {
    const where = `${instancesName} annotations[${i}]`;
    if (!isRecord(ann)) throw new Error(`${where}: expected an object, got ${describe(ann)}`);
    annotations.set(numberField(ann, "id", where), { ann, where });
    const box = Array.isArray(ann.bbox) ? ann.bbox.map(numberOf) : [];
    if (ann.iscrowd === 1 || typeof ann.image_id !== "number") return;
    if (box.length !== 4 || !box.every(Number.isFinite)) return; // checked where referred
    const list = objectsOf.get(ann.image_id) ?? [];
    list.push(box);
    objectsOf.set(ann.image_id, list);
  });

  for (let r = 0; r < refs.length; r++) {
    const ref = refs[r];
    let where = `${file} ref ${r + 1}`;
    if (!isRecord(ref)) throw new Error(`${where}: expected a dict, got ${describe(ref)}`);
    const refId = numberField(ref, "ref_id", where);
    where += ` (ref_id ${refId})`;
    if (stringField(ref, "split", where) !== split) continue;
    const annId = numberField(ref, "ann_id", where);
    const imageId = numberField(ref, "image_id", where);
    const sentences = ref["sentences"];
    if (!Array.isArray(sentences) || sentences.length === 0) {
      throw new Error(
        `${where}: expected "sentences" to be a non-empty list, got ${describe(sentences)}`,
      );
    }
    const found = annotations.get(annId);
    if (!found) throw new Error(`${where}: ann_id ${annId} is not in ${instancesName}`);
    const bbox = bboxField(found.ann, found.where);
    const image = images.get(imageId);
    if (!image) throw new Error(`${where}: image_id ${imageId} is not in ${instancesName}`);
    const imageWhere = `${instancesName} image ${imageId}`;
    const name = stringField(image, "file_name", imageWhere);
    const width = numberField(image, "width", imageWhere);
    const height = numberField(image, "height", imageWhere);
    const texts = sentences.map((sentence, s) => {
      const sWhere = `${where} sentence ${s + 1}`;
      if (!isRecord(sentence)) {
        throw new Error(`${sWhere}: expected a dict, got ${describe(sentence)}`);
      }
      const text = typeof sentence.sent === "string"
        ? sentence.sent
        : typeof sentence.raw === "string"
        ? sentence.raw
        : Array.isArray(sentence.tokens)
        ? sentence.tokens.join(" ")
        : undefined;
      if (text === undefined) throw new Error(`${sWhere}: expected "sent", "raw" or "tokens"`);
      const candidates = (objectsOf.get(imageId) ?? []).map((b) => percentBox(b, width, height));
      const meta = {
        expression: text,
        split,
        refId,
        annId,
        imageId,
        file: name,
        row: r + 1,
        candidates,
      };
      return { text, where: sWhere, meta };
    });
    yield {
      where,
      imageKey: name,
      imageName: name,
      imagePath: `${imagesDir}/${name}`,
      readImage: () => readImageFile(imagesDir, name, where),
      // The annotation's pixels are those of instances.json's width x height.
      box: () => percentBox(bbox, width, height),
      texts,
    };
  }
}

/** Bytes of an embedded `{bytes}` image: Uint8Array, or a binary string. */
function embeddedBytes(image: unknown): Uint8Array | null {
  if (!isRecord(image)) return null;
  const b = image["bytes"];
  if (b instanceof Uint8Array) return b;
  if (typeof b === "string" && b.length > 0) {
    return Uint8Array.from(b, (c) => c.charCodeAt(0) & 255);
  }
  return null;
}

/** The parquet (or JSONL) export: one row per object, expressions in `answer`. */
async function* exportRows(source: DataSource, params: RefcocoParams): AsyncGenerator<RefRow> {
  const file = showName(baseName(source.path));
  const split = source.split ?? params.split;
  const imagesDir = source.images ?? `${dirOf(source.path)}/images`;
  for await (const { row, value } of readRecords(source.path)) {
    const where = `${file} row ${row}`;
    if (!isRecord(value)) throw new Error(`${where}: expected an object, got ${describe(value)}`);
    if (typeof value.split === "string" && value.split !== split) continue;
    const bbox = bboxField(value, where);
    const rawTexts = value.answer ?? value.question;
    const texts = typeof rawTexts === "string"
      ? [rawTexts]
      : Array.isArray(rawTexts) && rawTexts.every((t) => typeof t === "string")
      ? rawTexts as string[]
      : null;
    if (!texts || texts.length === 0) {
      throw new Error(
        `${where}: expected "answer" to be an expression or a list of them, got ${
          describe(rawTexts)
        }`,
      );
    }
    const fileName = typeof value.file_name === "string" ? value.file_name : undefined;
    const bytes = embeddedBytes(value.image);
    if (!bytes && !fileName) {
      throw new Error(`${where}: no embedded image bytes and no "file_name"`);
    }
    const name = fileName ?? `embedded image of row ${row}`;
    const questionId = typeof value.question_id === "bigint"
      ? Number(value.question_id)
      : value.question_id ?? null;
    yield {
      where,
      // Embedded bytes belong to their row; a named file is shared by the rows naming it.
      imageKey: bytes ? `embedded image of row ${row}` : name,
      imageName: name,
      imagePath: bytes ? undefined : `${imagesDir}/${name}`,
      readImage: () => bytes ? Promise.resolve(bytes) : readImageFile(imagesDir, name, where),
      box: (image) => percentBox(bbox, image.naturalWidth, image.naturalHeight),
      texts: texts.map((text) => ({
        text,
        where,
        meta: { expression: text, split, questionId, file: name, row },
      })),
    };
  }
}

/** The rows of either format: a pickle is the original release, anything else the export. */
function rowsOf(source: DataSource, params: RefcocoParams): AsyncGenerator<RefRow> {
  return /\.(p|pkl|pickle)$/i.test(source.path)
    ? refsRows(source, params)
    : exportRows(source, params);
}

/**
 * A content key per sample `load` reads from `source`: the sha256 of its image file's
 * bytes (each image read once, not decoded) and the expression's words.
 */
async function rowKeys(source: DataSource, config: TaskConfig): Promise<string[]> {
  const params = paramsOf(config);
  const hashes = new Map<string, Promise<string>>();
  const keys: string[] = [];
  for await (const row of rowsOf(source, params)) {
    let hash = hashes.get(row.imageKey);
    if (!hash) {
      hash = row.readImage().then(sha256Hex);
      hashes.set(row.imageKey, hash);
    }
    const image = await hash;
    for (const { text } of row.texts) {
      keys.push(`${image} ${expressionWords(text).join(" ")}`);
      if (params.limit > 0 && keys.length >= params.limit) return keys;
    }
  }
  return keys;
}

/**
 * The same file for training and test is fine when the two read different splits (the
 * original release keeps every split in one pickle); the same split twice is the same rows.
 * A split left out on both sides is `params.split` on both.
 */
function checkSources(train: DataSource, test: DataSource): SourceProblem | null {
  if (!sameFile(train.path, test.path) || train.split !== test.split) return null;
  const split = test.split === undefined ? "task.params.split" : JSON.stringify(test.split);
  return {
    expected: "a test file or split other than source.train's (the test set must be held out)",
    found: `${JSON.stringify(test.path)} split ${split}, the same file and split as ` +
      `task.source.train`,
  };
}

async function load(source: DataSource, config: TaskConfig): Promise<Sample[]> {
  throwOnProblems(config);
  const params = paramsOf(config);
  if (source.pair) await assertHeldOut(source.pair, (s) => rowKeys(s, config), "expression");
  const decoded = new Map<string, Promise<DecodedImage>>();
  const samples: Sample[] = [];
  for await (const row of rowsOf(source, params)) {
    let pending = decoded.get(row.imageKey);
    if (!pending) {
      pending = row.readImage().then((bytes) =>
        decodeNamed(bytes, config.imageSize, row.imageName, row.where)
      );
      decoded.set(row.imageKey, pending);
    }
    const picture = await pending;
    const box = row.box(picture);
    for (const { text, where, meta } of row.texts) {
      samples.push(makeSample(text, box, picture, config, params, where, meta));
      if (params.limit > 0 && samples.length >= params.limit) return samples;
    }
  }
  return samples;
}

// ---------------------------------------------------------------------------------------
// Stand-in.

/** One scene in this many (the second, seventh...) goes to another split than the one filled. */
const OTHER_SPLIT_EVERY = 5;

/**
 * Writes an offline stand-in in the original release's format under `dir`:
 * `images/scene-*.png`, `refs(unc).p` (protocol-2 pickle) and `instances.json`. Splits
 * go by image, as in RefCOCO: deterministically, most scenes to `params.split`, one in
 * five to one of the others, until `params.split` holds `n` (ref, sentence) samples.
 * Each scene refers to up to two objects with 1-3 unambiguous expressions each.
 */
async function writeStandIn(
  dir: string,
  seed: number,
  n: number,
  config: TaskConfig,
): Promise<DataSource> {
  throwOnProblems(config);
  const params = paramsOf(config);
  const { split } = params;
  await Deno.mkdir(`${dir}/images`, { recursive: true });
  const refs: PickleValue[] = [];
  const images: PickleValue[] = [];
  const annotations: PickleValue[] = [];
  let filled = 0;
  let refId = 0;
  let sentId = 0;
  for (let s = 0; filled < n; s++) {
    const rng = new Rng(seedFrom("refcoco", seed, s));
    const others = SPLITS.filter((x) => x !== split && x !== "test");
    const sceneSplit = s % OTHER_SPLIT_EVERY === 1 ? rng.pick(others) : split;
    const scene = generateScene(rng, { sizes: params.stand_in_sizes });
    const imageId = 1000 + s;
    const name = `scene-${String(s).padStart(6, "0")}.png`;
    await Deno.writeFile(`${dir}/images/${name}`, await encodePng(scene.image));
    const { width, height } = scene.image;
    images.push({ id: imageId, file_name: name, width, height });
    scene.objects.forEach((o, i) => {
      annotations.push({
        id: imageId * 100 + i,
        image_id: imageId,
        bbox: [...o.bbox],
        category_id: SHAPES.indexOf(o.shape) + 1,
        area: o.bbox[2] * o.bbox[3],
        iscrowd: 0,
      });
    });
    const order = rng.shuffle(scene.objects.map((_, i) => i));
    let referred = 0;
    for (const i of order) {
      if (referred === params.stand_in_refs || (sceneSplit === split && filled >= n)) break;
      let texts = chooseExpressions(rng, scene.objects, i, rng.int(1, params.stand_in_expressions));
      if (texts.length === 0) continue;
      if (sceneSplit === split) {
        texts = texts.slice(0, n - filled);
        filled += texts.length;
      }
      referred++;
      const annId = imageId * 100 + i;
      const sentences = texts.map((t) => ({
        tokens: t.split(" "),
        raw: t.charAt(0).toUpperCase() + t.slice(1) + ".",
        sent_id: sentId++,
        sent: t,
      }));
      refs.push({
        sent_ids: sentences.map((x) => x.sent_id),
        file_name: `${name.replace(/\.png$/, "")}_${annId}.png`,
        ann_id: annId,
        ref_id: refId++,
        image_id: imageId,
        split: sceneSplit,
        sentences,
        category_id: SHAPES.indexOf(scene.objects[i].shape) + 1,
      });
    }
  }
  await Deno.writeFile(`${dir}/refs(unc).p`, writePickle(refs));
  const categories = SHAPES.map((shape, i) => ({ id: i + 1, name: shape, supercategory: "shape" }));
  await Deno.writeTextFile(
    `${dir}/instances.json`,
    JSON.stringify({ images, annotations, categories }),
  );
  return {
    path: `${dir}/refs(unc).p`,
    images: `${dir}/images`,
    split,
    extra: { instances: `${dir}/instances.json` },
  };
}

// ---------------------------------------------------------------------------------------

function iouOf(prediction: string, sample: Sample): number {
  const box = parseBox(prediction);
  return box ? boxIou(box, sample.meta.box as PercentBox) : 0;
}

/** The RefCOCO task: answer the box of the object an expression refers to. */
export const refcoco: RealFormatTask = {
  name: "refcoco",
  version: "1",
  // Real expressions are open-vocabulary: words outside this list become <unk>.
  vocabulary: [...SCENE_WORDS, ...PERCENT_WORDS],
  paramSchema: PARAMS.paramSchema,
  defaultParams: PARAMS.defaultParams,
  checkParams: PARAMS.checkParams,
  checkSources,
  load,
  writeStandIn,
  /** The pickle format reads COCO's instances.json beside its refs; the export reads one file. */
  sourceFiles(source) {
    return /\.(p|pkl|pickle)$/i.test(source.path) ? [instancesPathOf(source)] : [];
  },
  /** The image files the split's rows name (embedded images are in the annotation file). */
  async images(source, config) {
    const params = paramsOf(config);
    const out = new Set<string>();
    let n = 0;
    for await (const row of rowsOf(source, params)) {
      if (row.imagePath) out.add(row.imagePath);
      n += row.texts.length;
      if (params.limit > 0 && n >= params.limit) break;
    }
    return [...out];
  },
  /** `iou`: IoU of the predicted and ground-truth boxes (0 when unparseable). */
  metrics(prediction: string, sample: Sample): Record<string, number> {
    const iou = iouOf(prediction, sample);
    // Mean IoU tells whether a model learnt the answer's form at all; IoU >= 0.3 beside the
    // task's own threshold (0.5) shows how close the boxes come.
    return { iou, accuracy_iou30: iou >= 0.3 ? 100 : 0 };
  },
  /** Its box (or the answer's), the map of the patches the box covers. */
  fromLabel(label, config) {
    const box = label.box ?? parseBox(label.answer);
    if (!box) return `the answer is not a box "X1 Y1 X2 Y2" and the label gives no box`;
    return {
      meta: { box, minIou: paramsOf(config).min_iou, difficulty: "outside" },
      target: boxTarget(box, config.imageSize, config.patchSize),
    };
  },
  score(prediction: string, sample: Sample): boolean {
    const minIou = typeof sample.meta.minIou === "number"
      ? sample.meta.minIou
      : DEFAULT_PARAMS.min_iou;
    return iouOf(prediction, sample) >= minIou;
  },
};
