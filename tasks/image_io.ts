/**
 * File input and output for the real-format tasks: PNG/JPEG bytes to the square
 * Float32Array RGB images the model reads, RGB images to PNG bytes, the sha256 of file
 * bytes (PixMo-Points checks every image against its `image_sha256`), and annotation
 * records from JSONL or parquet files with their row numbers for error messages.
 *
 * Decoding takes bytes only, never a path or URL: `@napi-rs/canvas`'s `loadImage`
 * would fetch a URL, and nothing here may touch the network.
 */

import { createCanvas, ImageData, loadImage } from "@napi-rs/canvas";
import { type FileMetaData, parquetMetadata, parquetReadObjects } from "hyparquet";
import type { RgbImage } from "./task.ts";

/** A decoded image resized to the model's square input, with the file's own size. */
export interface DecodedImage {
  /** `size` x `size`, RGB HWC in [0, 1]. */
  image: RgbImage;
  /** Width of the image in the file, in pixels. */
  naturalWidth: number;
  /** Height of the image in the file, in pixels. */
  naturalHeight: number;
}

/**
 * Decodes PNG/JPEG (anything Skia reads) `bytes` and stretches the image to
 * `size` x `size`. Stretching, not cropping or padding, keeps coordinates given in
 * percent of width and height valid on the resized image. Transparent pixels are
 * composited over white. Throws on bytes that are not a readable image.
 */
export async function decodeImage(bytes: Uint8Array, size: number): Promise<DecodedImage> {
  if (bytes.length === 0) throw new Error("empty file");
  const truncated = truncation(bytes);
  if (truncated) throw new Error(truncated);
  const img = await loadImage(bytes);
  if (!(img.width > 0 && img.height > 0)) {
    throw new Error(`not a readable image (decoded size ${img.width}x${img.height})`);
  }
  const canvas = createCanvas(size, size);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, size, size);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(img, 0, 0, size, size);
  const rgba = ctx.getImageData(0, 0, size, size).data; // [H, W, 4], bytes
  const data = new Float32Array(size * size * 3); // [H, W, 3]
  for (let p = 0; p < size * size; p++) {
    data[3 * p] = rgba[4 * p] / 255;
    data[3 * p + 1] = rgba[4 * p + 1] / 255;
    data[3 * p + 2] = rgba[4 * p + 2] / 255;
  }
  return {
    image: { width: size, height: size, data },
    naturalWidth: img.width,
    naturalHeight: img.height,
  };
}

/** Index of the last occurrence of `pattern` in `bytes` at or after `from`, or -1. */
function lastIndexOf(bytes: Uint8Array, pattern: readonly number[], from = 0): number {
  outer: for (let i = bytes.length - pattern.length; i >= from; i--) {
    for (let k = 0; k < pattern.length; k++) if (bytes[i + k] !== pattern[k]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Why a PNG or JPEG file is cut short, or null. Skia decodes a truncated file without
 * complaint (the missing rows come out blank), so completeness is checked here: a PNG
 * ends with an IEND chunk; a JPEG has an end-of-image marker after its last scan.
 */
function truncation(bytes: Uint8Array): string | null {
  const PNG = [0x89, 0x50, 0x4e, 0x47];
  if (PNG.every((b, i) => bytes[i] === b)) {
    return lastIndexOf(bytes, [0x49, 0x45, 0x4e, 0x44]) < 0
      ? "truncated PNG (no IEND chunk)"
      : null;
  }
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    const lastScan = lastIndexOf(bytes, [0xff, 0xda], 2);
    return lastScan < 0 || lastIndexOf(bytes, [0xff, 0xd9], lastScan) < 0
      ? "truncated JPEG (no end-of-image marker after the last scan)"
      : null;
  }
  return null;
}

/** PNG bytes of `img` (values clamped to [0, 1] and rounded to 8 bits). */
export async function encodePng(img: RgbImage): Promise<Uint8Array> {
  const { width, height, data } = img;
  if (data.length !== width * height * 3) {
    throw new Error(`Expected ${width * height * 3} RGB values, got ${data.length}`);
  }
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    rgba[4 * p] = Math.round(data[3 * p] * 255);
    rgba[4 * p + 1] = Math.round(data[3 * p + 1] * 255);
    rgba[4 * p + 2] = Math.round(data[3 * p + 2] * 255);
    rgba[4 * p + 3] = 255;
  }
  const canvas = createCanvas(width, height);
  canvas.getContext("2d").putImageData(new ImageData(rgba, width, height), 0, 0);
  return new Uint8Array(await canvas.encode("png"));
}

/** Lower-case hex sha256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** One annotation record and where it came from. */
export interface RecordAt {
  /** 1-based: the line of a JSONL file, the row of a parquet file. */
  row: number;
  value: unknown;
}

/** Rows a parquet file is read in at a time (keeps memory flat on large files). */
const PARQUET_CHUNK_ROWS = 4096;

/**
 * The most rows an annotation file may hold: 10 million. PixMo-Points has about 2.4 million
 * rows and RefCOCO's parquet export tens of thousands; every row read becomes a sample held
 * in memory, so a footer claiming more is refused before anything is read.
 */
export const MAX_PARQUET_ROWS = 10_000_000;

/**
 * The row count of a parquet file, checked against what the file can hold before any row
 * is read: the footer's total must equal the sum of its row groups' counts and be at most
 * `MAX_PARQUET_ROWS`; every column chunk must lie inside the file, before the footer; and a
 * column chunk holds at least one value (or null) per row of its group. A footer that
 * claims more rows than its data would otherwise make the reader loop over empty rows.
 */
export function checkedRowCount(metadata: FileMetaData, fileBytes: number, name: string): number {
  const fail = (what: string): never => {
    throw new Error(`${name}: damaged parquet footer: ${what}`);
  };
  const total = BigInt(metadata.num_rows);
  let sum = 0n;
  const dataEnd = BigInt(fileBytes - 8 - metadata.metadata_length); // footer and "PAR1"
  metadata.row_groups.forEach((group, g) => {
    const rows = BigInt(group.num_rows);
    if (rows < 0n) fail(`row group ${g + 1} claims ${rows} rows`);
    sum += rows;
    group.columns.forEach((column, c) => {
      const meta = column.meta_data;
      const where = `row group ${g + 1} column ${c + 1}`;
      if (!meta) return fail(`${where} has no metadata`);
      if (BigInt(meta.num_values) < rows) {
        fail(
          `${where} holds ${meta.num_values} values, fewer than the ${rows} rows its group ` +
            `claims (expected at least one value or null per row)`,
        );
      }
      const first = meta.dictionary_page_offset !== undefined &&
          BigInt(meta.dictionary_page_offset) < BigInt(meta.data_page_offset)
        ? BigInt(meta.dictionary_page_offset)
        : BigInt(meta.data_page_offset);
      const end = first + BigInt(meta.total_compressed_size);
      if (first < 4n || BigInt(meta.total_compressed_size) < 0n || end > dataEnd) {
        fail(
          `${where} spans bytes ${first}-${end}, expected them inside the data section ` +
            `(bytes 4-${dataEnd} of ${fileBytes})`,
        );
      }
    });
  });
  if (total !== sum) {
    fail(`it claims ${total} rows, but its ${metadata.row_groups.length} row groups hold ${sum}`);
  }
  if (total > BigInt(MAX_PARQUET_ROWS)) {
    fail(`it claims ${total} rows, expected at most ${MAX_PARQUET_ROWS} (MAX_PARQUET_ROWS)`);
  }
  if (total < 0n) fail(`it claims ${total} rows`);
  return Number(total);
}

/** The last path component, for messages. */
export function baseName(path: string): string {
  return path.slice(path.replace(/\\/g, "/").lastIndexOf("/") + 1);
}

/**
 * The records of a `.jsonl` file (one JSON value a line; blank lines skipped) or a
 * `.parquet` file (one object a row; byte-array columns without a string annotation come
 * back as Uint8Array, 64-bit integers as bigint). Errors name the file and the row.
 */
export async function* readRecords(path: string): AsyncGenerator<RecordAt> {
  const name = baseName(path);
  if (/\.jsonl$/i.test(path)) {
    const text = await Deno.readTextFile(path);
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].trim();
      if (line === "") continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (e) {
        throw new Error(
          `${name} row ${i + 1}: malformed JSON (${(e as Error).message}); ` +
            `expected one JSON object per line`,
        );
      }
      yield { row: i + 1, value };
    }
  } else if (/\.parquet$/i.test(path)) {
    const bytes = await Deno.readFile(path);
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    let metadata: FileMetaData;
    try {
      metadata = parquetMetadata(file);
    } catch (e) {
      throw new Error(`${name}: not a readable parquet file (${(e as Error).message})`);
    }
    const rowCount = checkedRowCount(metadata, bytes.length, name);
    for (let start = 0; start < rowCount; start += PARQUET_CHUNK_ROWS) {
      const end = Math.min(rowCount, start + PARQUET_CHUNK_ROWS);
      let rows: Record<string, unknown>[];
      try {
        rows = await parquetReadObjects({ file, rowStart: start, rowEnd: end, utf8: false });
      } catch (e) {
        throw new Error(
          `${name} rows ${start + 1}-${end}: unreadable parquet data (${(e as Error).message})`,
        );
      }
      if (rows.length !== end - start) {
        throw new Error(
          `${name} rows ${start + 1}-${end}: expected ${end - start} rows, found ${rows.length} ` +
            `(the footer claims ${rowCount} rows; the file is damaged)`,
        );
      }
      for (let i = 0; i < rows.length; i++) yield { row: start + i + 1, value: rows[i] };
    }
  } else {
    throw new Error(`${name}: expected a .jsonl or .parquet annotation file`);
  }
}

/** True when `value` is a plain object (a record), not an array or null. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !ArrayBuffer.isView(value);
}

/** A number from a JSON/parquet/pickle value (bigint included), or NaN. */
export function numberOf(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  return NaN;
}
