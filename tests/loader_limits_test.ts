/**
 * Dataset files come from the internet: a file that lies about its size (a parquet footer
 * claiming 1e12 rows, a pickle of shared lists, a 20000 x 20000 PNG) is refused before it
 * can hang the loader or fill memory, with an error naming the file. Fixtures are built in
 * code; a loader that would hang or blow up runs in a child process with a small heap and a
 * deadline, so a regression fails instead of taking the machine down.
 */
import assert from "node:assert/strict";
import { crc32 as zlibCrc32, deflateSync } from "node:zlib";
import { createCanvas } from "@napi-rs/canvas";
import { ByteWriter, ParquetWriter } from "hyparquet-writer";
import type { RgbImage } from "../tasks/task.ts";
import { ROOT } from "./cli.ts";

/** Runs `code` (a module body) in a child Deno with a 384 MiB heap; killed after `ms`. */
async function inChild(code: string, ms = 30_000): Promise<{ ok: boolean; output: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--no-check",
      "--config",
      `${ROOT}deno.json`,
      "--v8-flags=--max-old-space-size=384",
      code,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ms),
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { ok: out.success, output: `${text(out.stdout)}${text(out.stderr)}` };
}

/** A module specifier for a repository file, for code run by `inChild`. */
function moduleUrl(path: string): string {
  return JSON.stringify(new URL(path, `file://${ROOT}`).href);
}

/** Reads every record of `path` in a child; prints `rows N` or `error: MESSAGE`. */
function readAllInChild(path: string): Promise<{ ok: boolean; output: string }> {
  return inChild(`
    import { readRecords } from ${moduleUrl("tasks/image_io.ts")};
    let n = 0;
    try {
      for await (const _ of readRecords(${JSON.stringify(path)})) n++;
      console.log("rows", n);
    } catch (e) {
      console.log("error:", e.message);
    }
  `);
}

/** A small valid parquet file of three labels, with its footer's row counts rewritten. */
function parquetClaiming(total: bigint, group: bigint | null): Uint8Array {
  const writer = new ByteWriter();
  const pq = new ParquetWriter({
    writer,
    schema: [
      { name: "root", num_children: 1 },
      { name: "label", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
    ],
  });
  pq.write({ columnData: [{ name: "label", data: ["cat", "dog", "cow"] }] });
  pq.num_rows = total;
  if (group !== null) pq.row_groups[0].num_rows = group;
  pq.finish();
  return new Uint8Array(writer.getBuffer());
}

Deno.test("parquet: a footer claiming 1e12 rows is refused before reading, naming the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "klal-limits-" });
  const honest = `${dir}/honest.parquet`;
  await Deno.writeFile(honest, parquetClaiming(3n, null));
  assert.match((await readAllInChild(honest)).output, /^rows 3$/m);

  // The total disagrees with the row groups (3 rows of data).
  const total = `${dir}/total.parquet`;
  await Deno.writeFile(total, parquetClaiming(10n ** 12n, null));
  const a = await readAllInChild(total);
  assert.match(
    a.output,
    /error: total\.parquet: damaged parquet footer: it claims 1000000000000 rows, but its 1 row groups hold 3/,
  );

  // Total and row group agree, but the column chunk holds 3 values.
  const both = `${dir}/both.parquet`;
  await Deno.writeFile(both, parquetClaiming(10n ** 12n, 10n ** 12n));
  const b = await readAllInChild(both);
  assert.match(
    b.output,
    /error: both\.parquet: damaged parquet footer: row group 1 column 1 holds 3 values, fewer than the 1000000000000 rows/,
  );

  // Consistent counts above the documented maximum.
  const { checkedRowCount, MAX_PARQUET_ROWS } = await import("../tasks/image_io.ts");
  const { parquetMetadata } = await import("hyparquet");
  const bytes = parquetClaiming(3n, null);
  const meta = parquetMetadata(bytes.buffer as ArrayBuffer);
  assert.equal(checkedRowCount(meta, bytes.length, "x.parquet"), 3);
  // Some writers give 0 as the dictionary page's offset: not an error.
  const dictionary = meta.row_groups[0].columns[0].meta_data!.dictionary_page_offset;
  meta.row_groups[0].columns[0].meta_data!.dictionary_page_offset = 0n;
  assert.equal(checkedRowCount(meta, bytes.length, "x.parquet"), 3);
  meta.row_groups[0].columns[0].meta_data!.dictionary_page_offset = dictionary;
  const many = BigInt(MAX_PARQUET_ROWS) + 1n;
  meta.num_rows = many;
  meta.row_groups[0].num_rows = many;
  meta.row_groups[0].columns[0].meta_data!.num_values = many;
  assert.throws(
    () => checkedRowCount(meta, bytes.length, "x.parquet"),
    /x\.parquet: damaged parquet footer: it claims 10000001 rows, expected at most 10000000/,
  );
  // A column chunk said to lie past the end of the data.
  meta.num_rows = 3n;
  meta.row_groups[0].num_rows = 3n;
  meta.row_groups[0].columns[0].meta_data!.total_compressed_size = 10n ** 9n;
  assert.throws(
    () => checkedRowCount(meta, bytes.length, "x.parquet"),
    /x\.parquet: damaged parquet footer: row group 1 column 1 spans bytes \d+-\d+, expected them inside the data section/,
  );
  await Deno.remove(dir, { recursive: true });
});

/**
 * A pickle of shared lists built opcode by opcode: list 0 is empty; list i holds list i-1
 * `fanout` times (BINGET of its memo slot), so the top list has fanout^depth paths to the
 * empty list in a few hundred bytes.
 */
function sharedListsPickle(depth: number, fanout: number): Uint8Array {
  const PROTO = 0x80, EMPTY_LIST = 0x5d, BINPUT = 0x71, BINGET = 0x68, MARK = 0x28;
  const APPENDS = 0x65, POP = 0x30, STOP = 0x2e;
  const out = [PROTO, 2, EMPTY_LIST, BINPUT, 0, POP];
  for (let i = 1; i <= depth; i++) {
    out.push(EMPTY_LIST, BINPUT, i, MARK);
    for (let k = 0; k < fanout; k++) out.push(BINGET, i - 1);
    out.push(APPENDS, POP);
  }
  out.push(BINGET, depth, STOP);
  return new Uint8Array(out);
}

Deno.test("pickle: shared lists stay shared; 2^40 paths in 409 bytes are refused", async () => {
  const { readPickleData, MAX_PICKLE_VALUES } = await import("../tasks/refcoco.ts");
  // Small: every level's two items are one and the same list, as in the file.
  const small = readPickleData(sharedListsPickle(3, 2), "small.p") as unknown[][];
  assert.equal(small.length, 2);
  assert.equal(small[0], small[1], "a shared list was copied");
  assert.deepEqual(small[0], [[[], []], [[], []]]);

  const dir = await Deno.makeTempDir({ prefix: "klal-limits-" });
  const bomb = sharedListsPickle(40, 2);
  assert.equal(bomb.length, 409);
  await Deno.writeFile(`${dir}/refs(unc).p`, bomb);
  const { ok, output } = await inChild(`
    import { readPickleData } from ${moduleUrl("tasks/refcoco.ts")};
    const bytes = await Deno.readFile(${JSON.stringify(`${dir}/refs(unc).p`)});
    try {
      readPickleData(bytes, "refs(unc).p");
      console.log("read");
    } catch (e) {
      console.log("error:", e.message);
    }
  `);
  assert.ok(ok, output);
  assert.match(
    output,
    new RegExp(
      `error: refs\\(unc\\)\\.p: the pickle holds ${2 ** 41 - 1} values counting each place ` +
        `a shared list or dict appears, expected at most ${MAX_PICKLE_VALUES}`,
    ),
  );

  // A list that contains itself (APPEND of its own memo slot) is refused, not walked.
  const cycle = new Uint8Array([0x80, 2, 0x5d, 0x71, 0, 0x68, 0, 0x61, 0x2e]);
  assert.throws(
    () => readPickleData(cycle, "cycle.p"),
    /cycle\.p: pickle holds a list or dict that contains itself/,
  );
  await Deno.remove(dir, { recursive: true });
});

/** One PNG chunk: length, type, data, CRC-32 (zlib's). */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const body = new Uint8Array([...new TextEncoder().encode(type), ...data]);
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(body, 4);
  view.setUint32(8 + data.length, zlibCrc32(body));
  return out;
}

const SIGNATURE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const concat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));

/** IHDR data: 8-bit RGB, not interlaced. */
function ihdr(width: number, height: number): Uint8Array {
  const data = new Uint8Array(13);
  const view = new DataView(data.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  data.set([8, 2, 0, 0, 0], 8);
  return data;
}

/** A `width` x `height` image of deterministic noise (so its PNG data does not compress away). */
function noise(width: number, height: number): RgbImage {
  const data = new Float32Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761) >>> 24) / 255;
  return { width, height, data };
}

/** The chunks of a PNG file as [type, data] (no checks: the fixture is our own). */
function chunksOf(png: Uint8Array): [string, Uint8Array][] {
  const out: [string, Uint8Array][] = [];
  for (let at = 8; at < png.length;) {
    const length = new DataView(png.buffer, png.byteOffset + at).getUint32(0);
    out.push([
      new TextDecoder().decode(png.subarray(at + 4, at + 8)),
      png.slice(at + 8, at + 8 + length),
    ]);
    at += 12 + length;
  }
  return out;
}

Deno.test("images: the header's size is checked before decoding (PNG, JPEG), errors name the file", async () => {
  const { decodeImage, imageHeader, MAX_IMAGE_PIXELS, sha256Hex } = await import(
    "../tasks/image_io.ts"
  );
  // 20000 x 20000 RGB: 1.2 GB of scanlines; the file need not hold them for the check.
  const idat = new Uint8Array(deflateSync(new Uint8Array(60001 * 4)));
  const big = concat(
    SIGNATURE,
    chunk("IHDR", ihdr(20000, 20000)),
    chunk("IDAT", idat),
    chunk("IEND", new Uint8Array()),
  );
  assert.deepEqual(imageHeader(big), { format: "PNG", width: 20000, height: 20000 });
  await assert.rejects(
    decodeImage(big, 16),
    new RegExp(
      `PNG image of 20000x20000 pixels is too large: expected at most 16384 pixels a side and ${MAX_IMAGE_PIXELS} pixels in all`,
    ),
  );
  // 9000 x 8000 is within a side but over the pixel budget.
  const wide = concat(
    SIGNATURE,
    chunk("IHDR", ihdr(9000, 8000)),
    chunk("IDAT", idat),
    chunk("IEND", new Uint8Array()),
  );
  await assert.rejects(decodeImage(wide, 16), /PNG image of 9000x8000 pixels is too large/);

  // JPEG: the size in the frame header (SOF0), rewritten to 20000 x 20000.
  const canvas = createCanvas(40, 30);
  const jpeg = new Uint8Array(await canvas.encode("jpeg"));
  assert.deepEqual(imageHeader(jpeg), { format: "JPEG", width: 40, height: 30 });
  const sof = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xc0);
  const huge = jpeg.slice();
  new DataView(huge.buffer).setUint16(sof + 5, 20000);
  new DataView(huge.buffer).setUint16(sof + 7, 20000);
  await assert.rejects(decodeImage(huge, 16), /JPEG image of 20000x20000 pixels is too large/);

  // Other formats the loaders accept report their size; anything else is refused.
  const webp = new Uint8Array(await createCanvas(33, 17).encode("webp"));
  assert.deepEqual(imageHeader(webp), { format: "WebP", width: 33, height: 17 });
  assert.equal((await decodeImage(webp, 8)).naturalWidth, 33);
  const gif = Uint8Array.from(
    atob("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="),
    (c) => c.charCodeAt(0),
  );
  assert.deepEqual(imageHeader(gif), { format: "GIF", width: 1, height: 1 });
  const svg = new TextEncoder().encode(
    '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
  );
  await assert.rejects(
    decodeImage(svg, 8),
    /unsupported image format: expected PNG, JPEG, GIF, WebP or BMP/,
  );

  // Through a loader: the row and the file are named.
  const dir = await Deno.makeTempDir({ prefix: "klal-limits-" });
  await Deno.mkdir(`${dir}/images`);
  await Deno.writeFile(`${dir}/images/big.png`, big);
  const sha = await sha256Hex(big);
  const row = { image_url: "big.png", image_sha256: sha, label: "cat", points: [{ x: 1, y: 2 }] };
  await Deno.writeTextFile(`${dir}/rows.jsonl`, JSON.stringify(row) + "\n");
  const { pixmoPoints } = await import("../tasks/pixmo_points.ts");
  const config = { imageSize: 16, patchSize: 8, params: { ...pixmoPoints.defaultParams } };
  await assert.rejects(
    pixmoPoints.load({ path: `${dir}/rows.jsonl`, images: `${dir}/images` }, config),
    /rows\.jsonl row 1: cannot decode image big\.png \(PNG image of 20000x20000 pixels is too large/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("images: a PNG cut short is refused however it ends (chunk lengths, CRC-32, image data)", async () => {
  const { crc32, decodeImage, encodePng } = await import("../tasks/image_io.ts");
  const bytes = new TextEncoder().encode("123456789 and some more bytes");
  assert.equal(crc32(bytes), zlibCrc32(bytes));
  assert.equal(crc32(new TextEncoder().encode("IEND")), 0xae426082);

  const png = await encodePng(noise(64, 48));
  assert.equal((await decodeImage(png, 16)).naturalWidth, 64);
  const iend = chunk("IEND", new Uint8Array());

  // Cut in half with IEND appended: the IDAT chunk claims more bytes than the file holds.
  const half = concat(png.subarray(0, png.length >> 1), iend);
  await assert.rejects(
    decodeImage(half, 16),
    /truncated PNG: the IDAT chunk at byte \d+ claims \d+ bytes of data, \d+ remain/,
  );

  // Whole chunks, every CRC right, but only half of the image data: the zlib stream is short.
  const chunks = chunksOf(png);
  const data = concat(...chunks.filter(([t]) => t === "IDAT").map(([, d]) => d));
  const quarter = Math.ceil(data.length / 4);
  const idats = [0, 1, 2, 3].map((k) =>
    chunk("IDAT", data.subarray(k * quarter, (k + 1) * quarter))
  );
  const head = concat(
    SIGNATURE,
    ...chunks.filter(([t]) => t !== "IDAT" && t !== "IEND").map(([t, d]) => chunk(t, d)),
  );
  const split = concat(head, ...idats, iend);
  assert.equal(
    (await decodeImage(split, 16)).naturalHeight,
    48,
    "image data over four IDAT chunks",
  );
  await assert.rejects(
    decodeImage(concat(head, idats[0], idats[1], iend), 16),
    /truncated PNG: the image data inflates to \d+ bytes, expected 12336 for 64x48 pixels/, // 48 rows of 1 + 64 x 4 (RGBA) bytes,
  );

  // One flipped bit in the image data.
  const flipped = split.slice();
  flipped[head.length + 20] ^= 1;
  await assert.rejects(
    decodeImage(flipped, 16),
    new RegExp(`damaged PNG: the IDAT chunk at byte ${head.length} fails its CRC-32 check`),
  );
  // No IEND at all.
  await assert.rejects(
    decodeImage(concat(head, ...idats), 16),
    /truncated PNG: the file ends at byte \d+ before IEND/,
  );
});
