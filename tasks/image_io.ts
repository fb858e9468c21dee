/**
 * File input and output for the real-format tasks: PNG/JPEG/GIF/WebP/BMP bytes to the
 * square Float32Array RGB images the model reads, RGB images to PNG bytes, the sha256 of
 * file bytes (PixMo-Points checks every image against its `image_sha256`), and annotation
 * records from JSONL or parquet files with their row numbers for error messages.
 *
 * Dataset files come from the internet. Sizes they claim are checked before anything is
 * allocated for them (`MAX_IMAGE_PIXELS`, `MAX_PARQUET_ROWS`), and error messages name the
 * file and the row or byte offset; they never quote the file's content (`describeValue`),
 * and names taken from it are shown escaped (`showName`).
 *
 * Decoding takes bytes only, never a path or URL: `@napi-rs/canvas`'s `loadImage`
 * would fetch a URL, and nothing here may touch the network.
 */

import { createCanvas, ImageData, loadImage } from "@napi-rs/canvas";
import { type FileMetaData, parquetMetadata, parquetReadObjects } from "hyparquet";
import { clip, escapeForTerminal } from "../pipeline/lib/terminal.ts";
import type { RgbImage } from "./task.ts";
import { sha256Hex } from "../pipeline/lib/hash.ts";

export { sha256Hex };

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
 * The largest image the loaders decode: 8192 x 8192 pixels (64 Mpx; 256 MiB once decoded
 * to RGBA), with no side longer than 16384. COCO images are at most 640 px a side and
 * PixMo's photos a few thousand; a header claiming more is refused before decoding, since a
 * small file (a 1 MB PNG of 20000 x 20000 zeros) can otherwise decode into gigabytes.
 */
export const MAX_IMAGE_PIXELS = 8192 * 8192;
/** The longest side an image may have, in pixels (see `MAX_IMAGE_PIXELS`). */
export const MAX_IMAGE_SIDE = 16384;

/** The image formats the loaders read. */
export type ImageFormat = "PNG" | "JPEG" | "GIF" | "WebP" | "BMP";

/** What an image file's header says, read without decoding. */
export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
}

/**
 * Decodes PNG, JPEG, GIF, WebP or BMP `bytes` and stretches the image to `size` x `size`.
 * Stretching, not cropping or padding, keeps coordinates given in percent of width and
 * height valid on the resized image. Transparent pixels are composited over white. Before
 * anything is decoded, the header's size is checked against `MAX_IMAGE_PIXELS` and
 * `MAX_IMAGE_SIDE`, and the file is checked to be complete (`checkComplete`). Throws on
 * bytes that are not a readable image; messages give byte offsets, never file content.
 */
export async function decodeImage(bytes: Uint8Array, size: number): Promise<DecodedImage> {
  if (bytes.length === 0) throw new Error("empty file");
  const header = imageHeader(bytes);
  checkImageSize(header);
  await checkComplete(bytes, header);
  const img = await loadImage(bytes);
  if (!(img.width > 0 && img.height > 0)) {
    throw new Error(`not a readable image (decoded size ${img.width}x${img.height})`);
  }
  checkImageSize({ ...header, width: img.width, height: img.height });
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

/** Throws when `header`'s size is outside `MAX_IMAGE_SIDE` / `MAX_IMAGE_PIXELS`. */
function checkImageSize({ format, width, height }: ImageHeader): void {
  if (!(width > 0 && height > 0)) {
    throw new Error(`${format} header gives a size of ${width}x${height}, expected at least 1x1`);
  }
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || width * height > MAX_IMAGE_PIXELS) {
    throw new Error(
      `${format} image of ${width}x${height} pixels is too large: expected at most ` +
        `${MAX_IMAGE_SIDE} pixels a side and ${MAX_IMAGE_PIXELS} pixels in all (8192x8192)`,
    );
  }
}

const u16be = (b: Uint8Array, i: number) => (b[i] << 8) | b[i + 1];
const u16le = (b: Uint8Array, i: number) => b[i] | (b[i + 1] << 8);
const u32be = (b: Uint8Array, i: number) =>
  ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
const u32le = (b: Uint8Array, i: number) =>
  (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
const startsWith = (b: Uint8Array, text: string, at = 0) =>
  [...text].every((c, k) => b[at + k] === c.charCodeAt(0));

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** `decodeImage`, with an error that names the image and where it was asked for. */
export async function decodeNamed(
  bytes: Uint8Array,
  size: number,
  name: string,
  where: string,
): Promise<DecodedImage> {
  try {
    return await decodeImage(bytes, size);
  } catch (e) {
    throw new Error(`${where}: cannot decode image ${showName(name)} (${(e as Error).message})`);
  }
}

/**
 * The format and size an image file's header gives, read without decoding: PNG (IHDR),
 * JPEG (the first SOF marker), GIF (logical screen), WebP (VP8, VP8L or VP8X) or BMP
 * (DIB header). Anything else is an error.
 */
export function imageHeader(bytes: Uint8Array): ImageHeader {
  const short = (format: ImageFormat, need: number) => {
    if (bytes.length < need) {
      throw new Error(`truncated ${format} (${bytes.length} bytes, the header needs ${need})`);
    }
  };
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) {
    short("PNG", 33);
    if (!startsWith(bytes, "IHDR", 12) || u32be(bytes, 8) !== 13) {
      throw new Error("damaged PNG: expected a 13-byte IHDR chunk at byte 8");
    }
    return { format: "PNG", width: u32be(bytes, 16), height: u32be(bytes, 20) };
  }
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return jpegHeader(bytes);
  if (startsWith(bytes, "GIF87a") || startsWith(bytes, "GIF89a")) {
    short("GIF", 10);
    return { format: "GIF", width: u16le(bytes, 6), height: u16le(bytes, 8) };
  }
  if (startsWith(bytes, "RIFF") && startsWith(bytes, "WEBP", 8)) {
    short("WebP", 30);
    if (startsWith(bytes, "VP8X", 12)) {
      const u24 = (i: number) => bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16);
      return { format: "WebP", width: u24(24) + 1, height: u24(27) + 1 };
    }
    if (startsWith(bytes, "VP8L", 12)) {
      const bits = u32le(bytes, 21);
      return { format: "WebP", width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    if (startsWith(bytes, "VP8 ", 12)) {
      return {
        format: "WebP",
        width: u16le(bytes, 26) & 0x3fff,
        height: u16le(bytes, 28) & 0x3fff,
      };
    }
    throw new Error("damaged WebP: expected a VP8, VP8L or VP8X chunk at byte 12");
  }
  if (startsWith(bytes, "BM")) {
    short("BMP", 26);
    if (u32le(bytes, 14) === 12) {
      return { format: "BMP", width: u16le(bytes, 18), height: u16le(bytes, 20) };
    }
    const height = u32le(bytes, 22) | 0; // negative: rows stored top-down
    return { format: "BMP", width: u32le(bytes, 18) | 0, height: Math.abs(height) };
  }
  throw new Error("unsupported image format: expected PNG, JPEG, GIF, WebP or BMP");
}

/**
 * A JPEG's size from its first frame header (SOF0-SOF15, not DHT, JPG or DAC), walking the
 * marker segments from the start; every segment must fit in the file.
 */
function jpegHeader(bytes: Uint8Array): ImageHeader {
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) {
      throw new Error(`damaged JPEG: expected a marker at byte ${at} before the frame header`);
    }
    const marker = bytes[at + 1];
    if (marker === 0xff) { // fill byte
      at++;
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { // no length
      at += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) {
      throw new Error(`damaged JPEG: no frame header (SOF) before byte ${at}`);
    }
    const length = u16be(bytes, at + 2);
    if (length < 2 || at + 2 + length > bytes.length) {
      throw new Error(
        `truncated JPEG: the segment at byte ${at} claims ${length} bytes, ` +
          `${bytes.length - at - 2} remain`,
      );
    }
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 &&
      marker !== 0xcc;
    if (isFrame) {
      if (length < 7) throw new Error(`damaged JPEG: the frame header at byte ${at} is too short`);
      return { format: "JPEG", width: u16be(bytes, at + 7), height: u16be(bytes, at + 5) };
    }
    at += 2 + length;
  }
  throw new Error(`truncated JPEG: no frame header (SOF) in ${bytes.length} bytes`);
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
 * Throws when a PNG or JPEG file is cut short or damaged. Skia decodes a truncated file
 * without complaint (the missing rows come out blank), so completeness is checked here. A
 * PNG's chunks are walked from the signature to IEND: each chunk's length must fit in the
 * file and its CRC-32 must match, and the image data (the IDAT chunks' zlib stream) must
 * inflate to every scanline IHDR implies. A JPEG must have an end-of-image marker after
 * its last scan.
 */
async function checkComplete(bytes: Uint8Array, header: ImageHeader): Promise<void> {
  if (header.format === "PNG") {
    await checkPng(bytes);
  } else if (header.format === "JPEG") {
    const lastScan = lastIndexOf(bytes, [0xff, 0xda], 2);
    if (lastScan < 0 || lastIndexOf(bytes, [0xff, 0xd9], lastScan) < 0) {
      throw new Error("truncated JPEG (no end-of-image marker after the last scan)");
    }
  }
}

/** The CRC-32 table (polynomial 0xEDB88320, as in PNG and zlib). */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 of `bytes[start, end)` (PNG's chunk checksum). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const hex32 = (v: number) => v.toString(16).padStart(8, "0");

/** Channels per PNG colour type (greyscale, RGB, palette, grey + alpha, RGBA). */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Bit depths each PNG colour type allows. */
const PNG_DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

/** Bytes the filtered scanlines of a PNG hold: one filter byte plus the row, per row. */
function pngRawBytes(
  width: number,
  height: number,
  bitsPerPixel: number,
  interlaced: boolean,
): number {
  const rows = (w: number, h: number) =>
    w > 0 && h > 0 ? h * (1 + Math.ceil((w * bitsPerPixel) / 8)) : 0;
  if (!interlaced) return rows(width, height);
  // Adam7: pass p starts at (x0, y0) and steps (dx, dy).
  const passes = [
    [0, 0, 8, 8],
    [4, 0, 8, 8],
    [0, 4, 4, 8],
    [2, 0, 4, 4],
    [0, 2, 2, 4],
    [1, 0, 2, 2],
    [0, 1, 1, 2],
  ];
  let total = 0;
  for (const [x0, y0, dx, dy] of passes) {
    total += rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy));
  }
  return total;
}

/**
 * Walks a PNG's chunks (length, type, data, CRC) from byte 8 to IEND and inflates the
 * image data, counting bytes without keeping them. Errors give the chunk and its offset.
 */
async function checkPng(bytes: Uint8Array): Promise<void> {
  const width = u32be(bytes, 16);
  const height = u32be(bytes, 20);
  const [depth, colorType, compression, filter, interlace] = bytes.subarray(24, 29);
  if (
    !(colorType in PNG_CHANNELS) || !PNG_DEPTHS[colorType].includes(depth) || compression !== 0 ||
    filter !== 0 || interlace > 1
  ) {
    throw new Error(
      `damaged PNG: IHDR gives colour type ${colorType}, bit depth ${depth}, compression ` +
        `${compression}, filter ${filter}, interlace ${interlace}; expected a valid combination`,
    );
  }
  const idat: Uint8Array[] = [];
  let at = 8;
  let ended = false;
  while (!ended) {
    if (at + 8 > bytes.length) {
      throw new Error(`truncated PNG: the file ends at byte ${bytes.length} before IEND`);
    }
    const length = u32be(bytes, at);
    const typeBytes = bytes.subarray(at + 4, at + 8);
    if (!typeBytes.every((b) => (b >= 65 && b <= 90) || (b >= 97 && b <= 122))) {
      throw new Error(`damaged PNG: the chunk at byte ${at} has no valid type (4 letters)`);
    }
    const type = String.fromCharCode(...typeBytes);
    if (length > 0x7fffffff || at + 12 + length > bytes.length) {
      throw new Error(
        `truncated PNG: the ${type} chunk at byte ${at} claims ${length} bytes of data, ` +
          `${Math.max(0, bytes.length - at - 12)} remain`,
      );
    }
    const stored = u32be(bytes, at + 8 + length);
    const computed = crc32(bytes, at + 4, at + 8 + length);
    if (stored !== computed) {
      throw new Error(
        `damaged PNG: the ${type} chunk at byte ${at} fails its CRC-32 check ` +
          `(expected ${hex32(stored)}, found ${hex32(computed)})`,
      );
    }
    if (type === "IDAT") idat.push(bytes.subarray(at + 8, at + 8 + length));
    ended = type === "IEND";
    at += 12 + length;
  }
  if (idat.length === 0) throw new Error("damaged PNG: no image data (IDAT) before IEND");
  const expected = pngRawBytes(width, height, PNG_CHANNELS[colorType] * depth, interlace === 1);
  const found = await inflatedLength(idat, expected);
  if (found < expected) {
    throw new Error(
      `truncated PNG: the image data inflates to ${found} bytes, expected ${expected} ` +
        `for ${width}x${height} pixels`,
    );
  }
}

/**
 * How many bytes the zlib stream in `parts` inflates to, stopping once past `limit`
 * (nothing is kept). A stream that is cut short inflates to fewer bytes; one that is not
 * zlib data is an error.
 */
async function inflatedLength(parts: Uint8Array[], limit: number): Promise<number> {
  const stream = new DecompressionStream("deflate");
  const writer = stream.writable.getWriter();
  const writing = (async () => {
    for (const part of parts) await writer.write(part as Uint8Array<ArrayBuffer>);
    await writer.close();
  })().catch(() => {});
  let n = 0;
  try {
    for await (const chunk of stream.readable) {
      n += chunk.length;
      if (n > limit) break;
    }
  } catch {
    throw new Error(`damaged PNG: the image data (IDAT) is not a valid zlib stream`);
  }
  await writing;
  return n;
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
      // The chunk starts at its dictionary page, if any. Some writers put 0 there for "none":
      // then only where the data pages start is known, and the chunk may begin before it.
      const data = BigInt(meta.data_page_offset);
      const dictionary = meta.dictionary_page_offset === undefined
        ? undefined
        : BigInt(meta.dictionary_page_offset);
      const known = dictionary === undefined || dictionary >= 4n;
      const first = known && dictionary !== undefined && dictionary < data ? dictionary : data;
      const size = BigInt(meta.total_compressed_size);
      const end = first + size;
      if (first < 4n || first >= dataEnd || size < 0n || (known ? end : size + 4n) > dataEnd) {
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
 * A file name or path (the spec's, or one a data file gives), safe to print in a message:
 * at most 80 characters, control characters and other terminal-steering ones escaped.
 */
export function showName(name: string): string {
  return escapeForTerminal(clip(name, 80));
}

/**
 * A value read from a data file, described for an error message without its content:
 * numbers, booleans and null as they are (they cannot carry text), anything else by its
 * kind and size ("a string of 12 characters", "a list of 3 items"). The message names the
 * file and row, where the value can be looked at.
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null || typeof value === "boolean" || typeof value === "number") {
    return String(value);
  }
  if (typeof value === "bigint") return String(value);
  if (typeof value === "string") {
    return value === "" ? "an empty string" : `a string of ${[...value].length} characters`;
  }
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (Array.isArray(value)) {
    return value.length === 0 ? "an empty list" : `a list of ${value.length} items`;
  }
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

/**
 * The message of an error thrown by a file-format library, safe to print: clipped and
 * escaped (some quote names from the file, such as a column's).
 */
export function libraryMessage(error: unknown): string {
  return escapeForTerminal(clip(String((error as Error)?.message ?? error), 160));
}

/**
 * Where `JSON.parse` failed, without the text it quotes: "malformed JSON at character 12",
 * or "malformed JSON" when the engine gives no position.
 */
export function jsonProblem(error: unknown): string {
  const message = String((error as Error)?.message ?? "");
  const position = /at position (\d+)/.exec(message);
  if (position) return `malformed JSON at character ${Number(position[1]) + 1}`;
  if (/unexpected end/i.test(message)) return "malformed JSON (it ends too early)";
  return "malformed JSON";
}

/**
 * The records of a `.jsonl` file (one JSON value a line; blank lines skipped) or a
 * `.parquet` file (one object a row; byte-array columns without a string annotation come
 * back as Uint8Array, 64-bit integers as bigint). Errors name the file and the row.
 */
export async function* readRecords(path: string): AsyncGenerator<RecordAt> {
  const name = showName(baseName(path));
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
          `${name} row ${i + 1}: ${jsonProblem(e)}; expected one JSON object per line`,
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
      throw new Error(`${name}: not a readable parquet file (${libraryMessage(e)})`);
    }
    const rowCount = checkedRowCount(metadata, bytes.length, name);
    for (let start = 0; start < rowCount; start += PARQUET_CHUNK_ROWS) {
      const end = Math.min(rowCount, start + PARQUET_CHUNK_ROWS);
      let rows: Record<string, unknown>[];
      try {
        rows = await parquetReadObjects({ file, rowStart: start, rowEnd: end, utf8: false });
      } catch (e) {
        throw new Error(
          `${name} rows ${start + 1}-${end}: unreadable parquet data (${libraryMessage(e)})`,
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
