import assert from "node:assert/strict";
import {
  formatPoint,
  gaussianPointTarget,
  parsePoint,
  pixmoParquet,
  pixmoPoints,
  readingOrder,
} from "../tasks/pixmo_points.ts";
import { decodeImage, encodePng, sha256Hex } from "../tasks/image_io.ts";
import type { DataSource, RgbImage, Sample, TaskConfig } from "../tasks/task.ts";

function config(imageSize = 64, patchSize = 8, params: Record<string, unknown> = {}): TaskConfig {
  return { imageSize, patchSize, params: { ...pixmoPoints.defaultParams, ...params } };
}

function sum(values: Float32Array): number {
  return values.reduce((a, b) => a + b, 0);
}

/** A `width` x `height` image: left half red, right half blue. */
function halves(width: number, height: number): RgbImage {
  const data = new Float32Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const left = p % width < width / 2;
    data.set(left ? [1, 0, 0] : [0, 0, 1], 3 * p);
  }
  return { width, height, data };
}

/** A sample scored against `points` (percent) with the default radius. */
function sampleWith(points: { x: number; y: number }[]): Sample {
  return {
    image: { width: 1, height: 1, data: new Float32Array(3) },
    prompt: "point to the cat",
    answer: formatPoint(points[0]),
    target: new Float32Array([1]),
    meta: { difficulty: "1 point", points, radius: 10 },
  };
}

/** A temp folder with `images/cat.png` (40x20) and its sha256. */
async function fixtureDir(): Promise<{ dir: string; sha: string; png: Uint8Array }> {
  const dir = await Deno.makeTempDir({ prefix: "pixmo_test_" });
  await Deno.mkdir(`${dir}/images`);
  const png = await encodePng(halves(40, 20));
  await Deno.writeFile(`${dir}/images/cat.png`, png);
  return { dir, sha: await sha256Hex(png), png };
}

function row(sha: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    image_url: "https://example.com/photos/cat.png?size=large",
    image_sha256: sha,
    label: "Cat",
    points: [{ x: 75, y: 60 }, { x: 25, y: 60 }, { x: 50, y: 10 }],
    count: 3,
    collection_method: "counting",
    ...extra,
  });
}

async function loadJsonl(dir: string, lines: string[], cfg = config()): Promise<Sample[]> {
  await Deno.writeTextFile(`${dir}/fixture.jsonl`, lines.join("\n") + "\n");
  return await pixmoPoints.load({ path: `${dir}/fixture.jsonl`, images: `${dir}/images` }, cfg);
}

Deno.test("gaussianPointTarget: hand-computed 2x2 case, sums to 1", () => {
  // 16-px image, 8-px patches: point (25 %, 25 %) is patch (0, 0)'s centre (0.5, 0.5).
  const t = gaussianPointTarget([{ x: 25, y: 25 }], 16, 8, 0.75);
  const near = Math.exp(-1 / (2 * 0.5625)); // distance 1 patch
  const diag = Math.exp(-2 / (2 * 0.5625)); // distance sqrt(2)
  const z = 1 + 2 * near + diag;
  [1 / z, near / z, near / z, diag / z].forEach((v, i) => assert.ok(Math.abs(t[i] - v) < 1e-6));
  assert.ok(Math.abs(sum(t) - 1) < 1e-6);
});

Deno.test("gaussianPointTarget: peaks at each point's patch; two points share the mass", () => {
  const t = gaussianPointTarget([{ x: 10, y: 90 }, { x: 90, y: 10 }], 64, 8, 0.75);
  assert.ok(Math.abs(sum(t) - 1) < 1e-5);
  const order = [...t.keys()].sort((a, b) => t[b] - t[a]);
  // (10 %, 90 %) -> column 0, row 7 = index 56; (90 %, 10 %) -> row 0, column 7 = 7.
  assert.deepEqual(new Set(order.slice(0, 2)), new Set([56, 7]));
  assert.ok(Math.abs(t[56] - t[7]) < 1e-6);
});

Deno.test("answers: reading order, integer percent text, parsing", () => {
  const pts = readingOrder([{ x: 75, y: 60 }, { x: 25, y: 60 }, { x: 50, y: 10 }]);
  assert.deepEqual(pts, [{ x: 50, y: 10 }, { x: 25, y: 60 }, { x: 75, y: 60 }]);
  assert.equal(formatPoint({ x: 33.5, y: 100.4 }), "34 , 100");
  assert.deepEqual(parsePoint("12 , 34"), { x: 12, y: 34 });
  assert.deepEqual(parsePoint(" 12 34 "), { x: 12, y: 34 });
  assert.equal(parsePoint("12 , 34 , 5"), null);
  assert.equal(parsePoint("the cat"), null);
  assert.equal(parsePoint(""), null);
});

Deno.test("score: a hit within radius 10 of any point, a miss just outside", () => {
  const s = sampleWith([{ x: 50, y: 50 }, { x: 20, y: 80 }]);
  assert.equal(pixmoPoints.score("60 , 50", s), true); // distance exactly 10
  assert.equal(pixmoPoints.score("56 , 58", s), true); // 6-8-10 triangle
  assert.equal(pixmoPoints.score("61 , 50", s), false); // 11 from (50, 50), far from (20, 80)
  assert.equal(pixmoPoints.score("20 , 89", s), true); // the second point
  assert.equal(pixmoPoints.score("20 , 91", s), false);
  assert.equal(pixmoPoints.score("point to the cat", s), false);
  assert.deepEqual(pixmoPoints.metrics!("20 , 89", s), { hit: 1, precision: 1 });
  assert.deepEqual(pixmoPoints.metrics!("0 , 0", s), { hit: 0, precision: 0 });
  assert.deepEqual(pixmoPoints.metrics!("nonsense", s), { hit: 0, precision: 0 });
  const wide = { ...s, meta: { ...s.meta, radius: 20 } };
  assert.equal(pixmoPoints.score("61 , 50", wide), true);
});

Deno.test("decodeImage stretches a non-square image to the square input", async () => {
  const { image, naturalWidth, naturalHeight } = await decodeImage(
    await encodePng(halves(40, 20)),
    16,
  );
  assert.deepEqual([naturalWidth, naturalHeight, image.width, image.height], [40, 20, 16, 16]);
  const at = (
    x: number,
    y: number,
  ) => [...image.data.slice(3 * (y * 16 + x), 3 * (y * 16 + x) + 3)];
  assert.deepEqual(at(2, 8), [1, 0, 0]);
  assert.deepEqual(at(13, 8), [0, 0, 1]);
  await assert.rejects(decodeImage(new Uint8Array([1, 2, 3, 4]), 16));
});

Deno.test("load JSONL: prompt, first point in reading order, GT map, meta", async () => {
  const { dir, sha } = await fixtureDir();
  const [s] = await loadJsonl(dir, [row(sha)]);
  assert.equal(s.prompt, "point to the cat");
  assert.equal(s.answer, "50 , 10");
  assert.equal(s.meta.count, 3);
  assert.equal(s.meta.file, "cat.png");
  assert.equal(s.meta.difficulty, "2-5 points");
  assert.equal(s.image.width, 64);
  assert.ok(Math.abs(sum(s.target) - 1) < 1e-5);
  // Each point lies on the border of two patches, 0.3 patch below their centres:
  // (50, 10) -> row 0, columns 3-4; (25, 60) -> row 4, 1-2; (75, 60) -> row 4, 5-6.
  const top = [...s.target.keys()].sort((a, b) => s.target[b] - s.target[a]).slice(0, 6);
  assert.deepEqual(new Set(top), new Set([3, 4, 33, 34, 37, 38]));
  assert.equal(pixmoPoints.score(s.answer, s), true);
  assert.equal(pixmoPoints.score("25 , 60", s), true);
});

Deno.test("load: a hostile label survives as plain text", async () => {
  const { dir, sha } = await fixtureDir();
  const label = `<img src=x onerror=alert(1)> & "quotes"`;
  const [s] = await loadJsonl(dir, [row(sha, { label })]);
  assert.equal(s.meta.label, label);
  assert.equal(s.prompt, `point to the <img src=x onerror=alert(1)> & "quotes"`);
});

Deno.test("load: rows with no points are skipped; limit caps the samples", async () => {
  const { dir, sha } = await fixtureDir();
  const lines = [row(sha, { points: [], count: 0 }), row(sha), row(sha, { label: "dog" })];
  assert.deepEqual((await loadJsonl(dir, lines)).map((s) => s.meta.row), [2, 3]);
  assert.equal((await loadJsonl(dir, lines, config(64, 8, { limit: 1 }))).length, 1);
});

Deno.test("load: finds an image by <sha256>.<ext> when the URL's name is absent", async () => {
  const { dir, sha, png } = await fixtureDir();
  await Deno.remove(`${dir}/images/cat.png`);
  await Deno.writeFile(`${dir}/images/${sha}.png`, png);
  const [s] = await loadJsonl(dir, [row(sha)]);
  assert.equal(s.meta.file, `${sha}.png`);
});

Deno.test("load errors name the file and row", async () => {
  const { dir, sha } = await fixtureDir();
  const wrong = "ab12".repeat(16);
  await assert.rejects(
    loadJsonl(dir, [row(sha), row(sha), '{"image_url": "cat.png", "image_sha256": "']),
    /fixture\.jsonl row 3: malformed JSON/,
  );
  await assert.rejects(
    loadJsonl(dir, [row(sha), row(wrong)]),
    new RegExp(
      `fixture\\.jsonl row 2: image sha256 mismatch for cat\\.png \\(expected ab12ab12ab12…, found ${
        sha.slice(0, 12)
      }…\\)`,
    ),
  );
  await assert.rejects(
    loadJsonl(dir, [row(sha, { image_url: "http://x/dog.jpg", image_sha256: wrong })]),
    /fixture\.jsonl row 1: image not found in .*images \(tried dog\.jpg, ab12/,
  );
  await assert.rejects(
    loadJsonl(dir, [row(sha, { label: undefined })]),
    /fixture\.jsonl row 1: expected "label" to be a string, got nothing/,
  );
  await assert.rejects(
    loadJsonl(dir, [row(sha, { points: [{ x: 140, y: 5 }] })]),
    /fixture\.jsonl row 1: expected point 1 to be \{x, y\} in percent 0\.\.100, got x 140, y 5/,
  );
  await assert.rejects(
    loadJsonl(dir, ["[1, 2]"]),
    /fixture\.jsonl row 1: expected an object/,
  );
});

Deno.test("load: a truncated image file is an error naming the row and file", async () => {
  const { dir, png } = await fixtureDir();
  const cut = png.slice(0, Math.floor(png.length / 2));
  await Deno.writeFile(`${dir}/images/cut.png`, cut);
  const sha = await sha256Hex(cut);
  await assert.rejects(
    loadJsonl(dir, [row(sha, { image_url: "cut.png" })]),
    /fixture\.jsonl row 1: cannot decode image cut\.png/,
  );
});

Deno.test("load parquet: public schema round-trips; a truncated file is a clear error", async () => {
  const { dir, sha } = await fixtureDir();
  const rows = [
    { image_url: "cat.png", image_sha256: sha, label: "cat", points: [], count: 0 },
    {
      image_url: "cat.png",
      image_sha256: sha,
      label: "red thing",
      points: [{ x: 30.5, y: 40 }, { x: 10, y: 40 }],
      count: 2,
    },
  ].map((r) => ({ ...r, collection_method: "pointing" }));
  const bytes = pixmoParquet(rows);
  await Deno.writeFile(`${dir}/p.parquet`, bytes);
  const source: DataSource = { path: `${dir}/p.parquet`, images: `${dir}/images` };
  const samples = await pixmoPoints.load(source, config());
  assert.equal(samples.length, 1);
  assert.equal(samples[0].prompt, "point to the red thing");
  assert.equal(samples[0].answer, "10 , 40");
  assert.equal(samples[0].meta.row, 2);
  assert.equal(samples[0].meta.count, 2);
  await Deno.writeFile(`${dir}/cut.parquet`, bytes.slice(0, bytes.length - 20));
  await assert.rejects(
    pixmoPoints.load({ ...source, path: `${dir}/cut.parquet` }, config()),
    /cut\.parquet: not a readable parquet file/,
  );
  await assert.rejects(
    pixmoPoints.load({ ...source, path: `${dir}/p.csv` }, config()),
    /p\.csv: expected a \.jsonl or \.parquet/,
  );
});

Deno.test("stand-in: parquet and JSONL load alike, deterministic, in vocabulary", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pixmo_standin_" });
  const cfg = config();
  const source = await pixmoPoints.writeStandIn(`${dir}/a`, 3, 10, cfg);
  assert.ok(source.path.endsWith("pixmo_points.parquet"));
  const fromParquet = await pixmoPoints.load(source, cfg);
  const fromJsonl = await pixmoPoints.load(
    { ...source, path: `${dir}/a/pixmo_points.jsonl` },
    cfg,
  );
  assert.equal(fromParquet.length, 10);
  const strip = (s: Sample) => ({ ...s, meta: { ...s.meta, row: 0 } });
  assert.deepEqual(fromParquet.map(strip), fromJsonl.map(strip));
  const lines = (await Deno.readTextFile(`${dir}/a/pixmo_points.jsonl`)).trim().split("\n");
  assert.ok(lines.length > 10, "the stand-in has rows with no points, which loading skips");
  const vocab = new Set(pixmoPoints.vocabulary);
  let multi = 0;
  for (const s of fromParquet) {
    for (const w of `${s.prompt} ${s.answer}`.split(" ")) assert.ok(vocab.has(w), w);
    assert.ok(Math.abs(sum(s.target) - 1) < 1e-5);
    assert.equal(pixmoPoints.score(s.answer, s), true);
    assert.equal(s.image.data.length, 64 * 64 * 3);
    if ((s.meta.count as number) > 1) multi++;
  }
  assert.ok(multi > 0, "some labels match several objects");
  await pixmoPoints.writeStandIn(`${dir}/b`, 3, 10, cfg);
  for (const f of ["pixmo_points.jsonl", "pixmo_points.parquet", "images/scene-000000.png"]) {
    assert.deepEqual(await Deno.readFile(`${dir}/a/${f}`), await Deno.readFile(`${dir}/b/${f}`));
  }
});

Deno.test("checkParams rejects a bad radius and sigma", () => {
  assert.deepEqual(pixmoPoints.checkParams(config()), []);
  const problems = pixmoPoints.checkParams(config(64, 8, { radius: -1, sigma: "x", limit: 1.5 }));
  assert.deepEqual(problems.map((p) => p.key), ["radius", "sigma", "limit"]);
});
