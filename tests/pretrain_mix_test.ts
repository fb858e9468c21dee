import assert from "node:assert/strict";
import { paramsOf } from "./cli.ts";
import {
  mixVocabulary,
  ORIGINAL_QUESTION_KINDS,
  PRETRAIN_QUESTION_KINDS,
  pretrainMix,
} from "../tasks/pretrain_mix.ts";
import { blankImage, COLOR_NAMES, COLORS, drawText, LIGHT_BACKGROUND } from "../tasks/draw.ts";
import { curveTouchesRect } from "../tasks/pretrain_skills.ts";
import { TASKS } from "../tasks/registry.ts";
import { parseSpec } from "../pipeline/spec/mod.ts";
import { buildPlan } from "../pipeline/run/plan.ts";
import type { RgbImage, Sample, TaskConfig } from "../tasks/task.ts";

function config(imageSize: number, patchSize: number, params: Record<string, unknown> = {}) {
  const merged = { ...pretrainMix.defaultParams, ...params };
  return { imageSize, patchSize, params: merged } satisfies TaskConfig;
}

/**
 * Independent reading of an image: for each palette colour present, its pixel count,
 * centroid and pixel list; every pixel must be background or one palette colour.
 */
function readColors(img: RgbImage) {
  const found = new Map<string, { n: number; sx: number; sy: number; pixels: number[] }>();
  const candidates: [string, readonly number[]][] = [
    ["background", LIGHT_BACKGROUND],
    ...Object.entries(COLORS),
  ];
  for (let p = 0; p < img.width * img.height; p++) {
    const [r, g, b] = img.data.subarray(3 * p, 3 * p + 3);
    const hit = candidates.find(([, rgb]) =>
      Math.abs(rgb[0] - r) <= 0.1 && Math.abs(rgb[1] - g) <= 0.1 && Math.abs(rgb[2] - b) <= 0.1
    );
    if (!hit) assert.fail(`pixel ${p} (${r}, ${g}, ${b}) matches no colour`);
    if (hit[0] === "background") continue;
    const entry = found.get(hit[0]) ?? { n: 0, sx: 0, sy: 0, pixels: [] };
    entry.n++;
    entry.sx += (p % img.width) + 0.5;
    entry.sy += Math.floor(p / img.width) + 0.5;
    entry.pixels.push(p);
    found.set(hit[0], entry);
  }
  return found;
}

function quadrantOf(x: number, y: number, size: number): string {
  return `${y < size / 2 ? "top" : "bottom"} ${x < size / 2 ? "left" : "right"}`;
}

/** The target implied by a set of pixels: per-patch pixel count, normalised. */
function targetOfPixels(pixels: number[], size: number, patch: number): Float32Array {
  const g = size / patch;
  const mass = new Float32Array(g * g);
  for (const p of pixels) {
    mass[Math.floor(Math.floor(p / size) / patch) * g + Math.floor((p % size) / patch)] += 1;
  }
  return mass.map((m) => m / pixels.length);
}

function assertClose(actual: Float32Array, expected: Float32Array, tol = 1e-6) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `patch ${i}: ${actual[i]} vs ${expected[i]}`,
    );
  }
}

const PROMPTS: [RegExp, string][] = [
  [/^what color is the shape \?$/, "color"],
  [/^how many shapes \?$/, "count"],
  [/^is there a (\w+) shape \?$/, "exists"],
  [/^where is the (\w+) shape \?$/, "where"],
];

Deno.test("pretrain-mix: same seed gives identical samples, other seeds differ", () => {
  const cfg = config(32, 8);
  const a = pretrainMix.generate(3, 40, cfg);
  const b = pretrainMix.generate(3, 40, cfg);
  assert.deepStrictEqual(a, b);
  for (let i = 0; i < a.length; i++) {
    assert.deepStrictEqual(
      new Uint8Array(a[i].image.data.buffer),
      new Uint8Array(b[i].image.data.buffer),
    );
  }
  const c = pretrainMix.generate(4, 40, cfg);
  assert.notDeepStrictEqual(a[0].image.data, c[0].image.data);
  assert.notDeepStrictEqual(a.map((s) => s.prompt), c.map((s) => s.prompt));
  assert.deepStrictEqual(pretrainMix.generate(3, 5, cfg), a.slice(0, 5));
});

Deno.test("pretrain-mix: the default mix never emits Grid Patch prompts or answers", () => {
  const samples = pretrainMix.generate(0, 2000, config(32, 8));
  const vocab = new Set(pretrainMix.vocabulary);
  assert.ok(!vocab.has("patch"));
  for (const s of samples) {
    assert.ok(!/patch/.test(s.prompt), s.prompt);
    assert.ok(!/^\d+\s*,\s*\d+$/.test(s.answer), s.answer);
    const kind = PROMPTS.find(([re]) => re.test(s.prompt))?.[1];
    assert.equal(kind, s.meta.difficulty, s.prompt);
    for (const w of `${s.prompt} ${s.answer}`.split(" ")) assert.ok(vocab.has(w), w);
  }
});

Deno.test("pretrain-mix: answers and targets agree with the image's pixels", () => {
  for (const [size, patch] of [[32, 8], [64, 8], [16, 4]]) {
    for (const s of pretrainMix.generate(1, 600, config(size, patch))) {
      const colors = readColors(s.image);
      const shapes = s.meta.shapes as number;
      assert.equal(colors.size, shapes, "shapes have distinct colours and never overlap away");
      for (const { n } of colors.values()) assert.ok(n >= 3);
      assert.ok(Math.abs(s.target.reduce((x, y) => x + y, 0) - 1) < 1e-5);
      const asked = /(?:a|the) (\w+) shape/.exec(s.prompt)?.[1];
      switch (s.meta.difficulty) {
        case "color": {
          assert.deepStrictEqual([...colors.keys()], [s.answer]);
          assertClose(s.target, targetOfPixels(colors.get(s.answer)!.pixels, size, patch));
          break;
        }
        case "count": {
          assert.equal(String(colors.size), s.answer);
          const all = [...colors.values()].flatMap((c) => c.pixels);
          assertClose(s.target, targetOfPixels(all, size, patch));
          break;
        }
        case "exists": {
          assert.ok(asked && Object.hasOwn(COLORS, asked));
          assert.equal(colors.has(asked) ? "yes" : "no", s.answer);
          const expected = colors.has(asked)
            ? targetOfPixels(colors.get(asked)!.pixels, size, patch)
            : new Float32Array(s.target.length).fill(1 / s.target.length);
          assertClose(s.target, expected);
          break;
        }
        case "where": {
          const c = colors.get(asked!);
          assert.ok(c, `asked colour ${asked} is drawn`);
          assert.equal(quadrantOf(c.sx / c.n, c.sy / c.n, size), s.answer);
          // The whole shape lies in that quadrant.
          for (const p of c.pixels) {
            assert.equal(quadrantOf((p % size) + 0.5, Math.floor(p / size) + 0.5, size), s.answer);
          }
          assertClose(s.target, targetOfPixels(c.pixels, size, patch));
          break;
        }
        default:
          assert.fail(`unknown kind ${s.meta.difficulty}`);
      }
    }
  }
});

Deno.test("pretrain-mix: kinds uniform, yes/no balanced, every quadrant and count used", () => {
  const samples = pretrainMix.generate(2, 2000, config(32, 8));
  const byKind = (k: string) => samples.filter((s) => s.meta.difficulty === k);
  for (const kind of ORIGINAL_QUESTION_KINDS) {
    const share = byKind(kind).length / samples.length;
    assert.ok(share > 0.2 && share < 0.3, `${kind}: ${share}`);
  }
  const exists = byKind("exists");
  const yes = exists.filter((s) => s.answer === "yes").length / exists.length;
  assert.ok(yes >= 0.45 && yes <= 0.55, `yes share ${yes}`);
  assert.deepStrictEqual(
    [...new Set(byKind("where").map((s) => s.answer))].sort(),
    ["bottom left", "bottom right", "top left", "top right"],
  );
  assert.deepStrictEqual([...new Set(byKind("count").map((s) => s.answer))].sort(), [
    "1",
    "2",
    "3",
  ]);
  assert.equal(new Set(byKind("color").map((s) => s.answer)).size, COLOR_NAMES.length);
});

Deno.test("pretrain-mix: max_shapes and colors params are honoured", () => {
  const allowed = ["red", "blue", "green", "pink", "cyan"];
  const cfg = config(32, 8, { max_shapes: 4, colors: allowed });
  const samples = pretrainMix.generate(6, 500, cfg);
  assert.ok(samples.some((s) => s.meta.shapes === 4));
  for (const s of samples) {
    assert.ok((s.meta.shapes as number) <= 4);
    for (const c of readColors(s.image).keys()) assert.ok(allowed.includes(c));
  }
});

Deno.test("pretrain-mix: score is exact match after whitespace normalisation", () => {
  const sample = { answer: "top left", meta: { difficulty: "where" } } as Sample;
  assert.equal(pretrainMix.score("top left", sample), true);
  assert.equal(pretrainMix.score("  top \n left ", sample), true);
  assert.equal(pretrainMix.score("top", sample), false);
  assert.equal(pretrainMix.score("left top", sample), false);
  const of = (answer: string) => ({ answer, meta: { difficulty: "count" } }) as Sample;
  assert.equal(pretrainMix.score("yes", of("no")), false);
  assert.equal(pretrainMix.score("3", of("3")), true);
});

Deno.test("pretrain-mix: checkParams reports bad max_shapes, colors and image size", () => {
  const keys = (size: number, params: Record<string, unknown>) =>
    pretrainMix.checkParams(config(size, 8, params)).map((p) => p.key);
  assert.deepStrictEqual(keys(32, {}), []);
  assert.deepStrictEqual(keys(32, { max_shapes: 0 }), ["max_shapes"]);
  assert.deepStrictEqual(keys(32, { max_shapes: 5 }), ["max_shapes"]);
  assert.deepStrictEqual(keys(32, { max_shapes: 2.5 }), ["max_shapes"]);
  assert.deepStrictEqual(keys(32, { colors: ["red", "blue", "green"] }), ["colors"]); // needs 4
  assert.deepStrictEqual(keys(32, { colors: ["red", "nope", "blue", "green"] }), ["colors"]);
  assert.deepStrictEqual(keys(32, { max_shapes: 1, colors: ["red", "blue"] }), []);
  assert.deepStrictEqual(keys(8, {}), ["image_size"]);
  assert.throws(() => pretrainMix.generate(0, 1, config(32, 8, { max_shapes: 9 })), /max_shapes/);
});

Deno.test("pretrain-mix: 4000 samples at 32 px generate quickly", () => {
  const start = performance.now();
  const samples = pretrainMix.generate(9, 4000, config(32, 8));
  const ms = performance.now() - start;
  assert.equal(samples.length, 4000);
  console.log(`pretrain-mix: 4000 samples at 32 px in ${ms.toFixed(0)} ms`);
  assert.ok(ms < 3000, `took ${ms} ms`);
});

// ---------------------------------------------------------------------------------------
// The transferable kinds (tasks/pretrain_skills.ts), opted into through `kinds`

const SKILLS = [
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
const only = (kind: string, size = 64, patch = 8) => config(size, patch, { kinds: [kind] });

/** SHA-256 of samples' pixels, maps, prompts, answers and meta. */
async function fingerprint(samples: Sample[]): Promise<string> {
  const enc = new TextEncoder();
  const parts = samples.flatMap((x) => [
    new Uint8Array(x.image.data.buffer),
    new Uint8Array(x.target.buffer),
    enc.encode(`${x.prompt}|${x.answer}|${JSON.stringify(x.meta)}`),
  ]);
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    all.set(p, offset);
    offset += p.length;
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("pretrain-mix: the default kinds give the original four-kind mix, sample for sample", async () => {
  assert.deepStrictEqual(pretrainMix.defaultParams.kinds, ["color", "count", "exists", "where"]);
  assert.deepStrictEqual(PRETRAIN_QUESTION_KINDS, [...ORIGINAL_QUESTION_KINDS, ...SKILLS]);
  // Fingerprints of the mix before the new kinds were added (seed 7, 40 samples).
  assert.equal(
    await fingerprint(pretrainMix.generate(7, 40, config(32, 8))),
    "1000fa79474541e43d5adc88ad7a103a87460f8c247623643ff3890b4242e08f",
  );
  assert.equal(
    await fingerprint(pretrainMix.generate(7, 40, config(64, 8))),
    "211abbd69fc76e625ccaeb66683b0cad15859f3bb8680820cd46c22f5bbf1c91",
  );
});

Deno.test("pretrain-mix: every kind is deterministic per seed, and drawn uniformly", () => {
  // "where" and "cell" ask the same question, so no mix holds both: every kind but "where".
  const kinds = PRETRAIN_QUESTION_KINDS.filter((k) => k !== "where");
  const cfg = config(64, 8, { kinds });
  const a = pretrainMix.generate(11, 60, cfg);
  assert.deepStrictEqual(a, pretrainMix.generate(11, 60, cfg));
  assert.notDeepStrictEqual(
    a.map((s) => s.prompt),
    pretrainMix.generate(12, 60, cfg).map((s) => s.prompt),
  );
  const samples = pretrainMix.generate(2, 1800, cfg);
  for (const kind of kinds) {
    const share = samples.filter((s) => s.meta.difficulty === kind).length / samples.length;
    const expected = 1 / kinds.length; // 1,800 draws: a standard error of about 0.0065
    assert.ok(Math.abs(share - expected) < 0.025, `${kind}: ${share} against ${expected}`);
  }
  const vocab = new Set(pretrainMix.vocabulary);
  for (const s of samples) {
    for (const w of `${s.prompt} ${s.answer}`.split(" ")) assert.ok(vocab.has(w), w);
    assert.ok(Math.abs(s.target.reduce((x, y) => x + y, 0) - 1) < 1e-5);
  }
});

Deno.test("pretrain-mix point: the centre of the asked shape in percent; the map is the shape", () => {
  for (const [size, patch] of [[64, 8], [32, 8]]) {
    for (const s of pretrainMix.generate(3, 150, only("point", size, patch))) {
      const asked = /^locate the (\w+) shape \?$/.exec(s.prompt)![1];
      const c = readColors(s.image).get(asked)!;
      const [x, y] = s.answer.split(" , ").map(Number);
      // The centroid of the drawn pixels is the centre, to a pixel's rounding.
      assert.ok(Math.abs(x - (100 * c.sx) / c.n / size) <= 100 / size + 0.5, `${s.answer} x`);
      assert.ok(Math.abs(y - (100 * c.sy) / c.n / size) <= 100 / size + 0.5, `${s.answer} y`);
      assertClose(s.target, targetOfPixels(c.pixels, size, patch));
      assert.ok(pretrainMix.score(s.answer, s));
      assert.ok(
        pretrainMix.score(`${x + 9} , ${y - 9}`, s) ===
          (x + 9 - (s.meta.point as number[])[0] <= 10),
      );
      assert.ok(!pretrainMix.score(`${x + 21} , ${y}`, s));
      assert.ok(!pretrainMix.score("top left", s));
    }
  }
});

Deno.test("pretrain-mix cell: the patch-grid row and column of the asked shape's centre", () => {
  for (const [size, patch] of [[64, 8], [32, 8], [64, 16]]) {
    const side = size / patch;
    const answers = new Set<string>();
    for (const s of pretrainMix.generate(6, 150, only("cell", size, patch))) {
      const asked = /^where is the (\w+) shape \?$/.exec(s.prompt)![1];
      const c = readColors(s.image).get(asked)!;
      // The centroid of the drawn pixels (+ half a pixel: pixel centres) names the cell.
      const cx = c.sx / c.n + 0.5, cy = c.sy / c.n + 0.5;
      const [row, col] = s.answer.split(" , ").map(Number);
      assert.ok(row >= 0 && row < side && col >= 0 && col < side, s.answer);
      // Within a pixel of the cell (a centre on a cell border may round either way).
      assert.ok(cy >= row * patch - 1 && cy <= (row + 1) * patch + 1, `${s.answer} row, cy ${cy}`);
      assert.ok(cx >= col * patch - 1 && cx <= (col + 1) * patch + 1, `${s.answer} col, cx ${cx}`);
      assert.deepStrictEqual(s.meta.cell, [row, col]);
      assertClose(s.target, targetOfPixels(c.pixels, size, patch));
      assert.ok(pretrainMix.score(s.answer, s));
      assert.ok(!pretrainMix.score(`${row} , ${col + 1}`, s));
      answers.add(s.answer);
    }
    // Shapes sit anywhere in their quadrant: many cells are named, not one per quadrant.
    assert.ok(answers.size > Math.min(12, side * side - 1), `${size}/${patch}: ${answers.size}`);
  }
});

/**
 * The objects of an image read back, one per quadrant: colour, pixels, pixel box, and the
 * category from how much of its box the shape fills (square 1, circle ~0.79, triangle ~0.5).
 */
function readObjects(img: RgbImage) {
  const size = img.width;
  const objects: {
    color: string;
    shape: string;
    pixels: number[];
    box: [number, number, number, number];
  }[] = [];
  for (const [color, c] of readColors(img)) {
    const byQuadrant = new Map<string, number[]>();
    for (const p of c.pixels) {
      const q = quadrantOf(p % size, Math.floor(p / size), size);
      byQuadrant.set(q, [...(byQuadrant.get(q) ?? []), p]);
    }
    for (const pixels of byQuadrant.values()) {
      const xs = pixels.map((p) => p % size), ys = pixels.map((p) => Math.floor(p / size));
      const box: [number, number, number, number] = [
        Math.min(...xs),
        Math.min(...ys),
        Math.max(...xs) + 1,
        Math.max(...ys) + 1,
      ];
      const fill = pixels.length / ((box[2] - box[0]) * (box[3] - box[1]));
      const shape = fill > 0.97 ? "square" : fill > 0.65 ? "circle" : "triangle";
      objects.push({ color, shape, pixels, box });
    }
  }
  return objects;
}

Deno.test("pretrain-mix object: the name picks out one object; the answer is its centre, the map its pixels", () => {
  const samples = pretrainMix.generate(4, 300, only("object"));
  const names = new Set<string>();
  let bare = 0;
  for (const s of samples) {
    const words = /^locate the (.+) \?$/.exec(s.prompt)![1].split(" ");
    const [color, shape] = words.length === 2 ? words : [undefined, words[0]];
    const objects = readObjects(s.image);
    assert.ok(objects.length >= 2 && objects.length <= 3, `${objects.length} objects`);
    // The name fits exactly one object; a bare category only when no other shares it.
    const fits = objects.filter((o) => o.shape === shape && (!color || o.color === color));
    assert.equal(
      fits.length,
      1,
      `${s.prompt}: ${JSON.stringify(objects.map((o) => [o.color, o.shape]))}`,
    );
    if (!color) bare++;
    names.add(shape);
    const [o] = fits;
    const [x, y] = s.answer.split(" , ").map(Number);
    // The box centre, to a pixel's rounding (100 / 64 percent per pixel).
    assert.ok(Math.abs(x - (50 * (o.box[0] + o.box[2])) / 64) <= 2.5, `${s.answer} x, ${o.box}`);
    assert.ok(Math.abs(y - (50 * (o.box[1] + o.box[3])) / 64) <= 2.5, `${s.answer} y, ${o.box}`);
    assertClose(s.target, targetOfPixels(o.pixels, 64, 8));
    assert.ok(pretrainMix.score(s.answer, s));
    assert.ok(!pretrainMix.score(`${x + 21} , ${y}`, s));
  }
  assert.deepStrictEqual([...names].sort(), ["circle", "square", "triangle"]);
  assert.ok(bare > 30 && bare < 150, `${bare} bare names`);
  // "point to" rewords it as it does the point kind's question.
  const pointTo = pretrainMix.generate(
    4,
    20,
    config(64, 8, { kinds: ["object"], point_prompt: "point to" }),
  );
  for (const [i, s] of pointTo.entries()) {
    assert.equal(s.prompt, samples[i].prompt.replace(/^locate (.+) \?$/, "point to $1"));
    assert.equal(s.answer, samples[i].answer);
  }
  // Its words join the vocabulary only with the kind, so other mixes keep theirs.
  assert.ok(!mixVocabulary(["color", "point"]).includes("triangle"));
  assert.ok(mixVocabulary(["color", "object"]).includes("triangle"));
  assert.ok(mixVocabulary(["color", "object"]).includes("circle"));
});

Deno.test("pretrain-mix point_prompt: 'point to' rewords the point question, nothing else", () => {
  const kinds = ["color", "point"];
  const locate = pretrainMix.generate(8, 60, config(64, 8, { kinds }));
  const pointTo = pretrainMix.generate(8, 60, config(64, 8, { kinds, point_prompt: "point to" }));
  let points = 0;
  for (const [i, s] of locate.entries()) {
    const t = pointTo[i];
    assert.deepStrictEqual(t.image, s.image);
    assert.deepStrictEqual([t.answer, t.target, t.meta], [s.answer, s.target, s.meta]);
    if (s.meta.difficulty !== "point") {
      assert.equal(t.prompt, s.prompt);
      continue;
    }
    points++;
    const color = /^locate the (\w+) shape \?$/.exec(s.prompt)![1];
    assert.equal(t.prompt, `point to the ${color} shape`);
    for (const w of t.prompt.split(" ")) assert.ok(pretrainMix.vocabulary.includes(w), w);
  }
  assert.ok(points > 15, `${points} point questions`);
  assert.deepStrictEqual(
    pretrainMix.checkParams(config(64, 8, { kinds, point_prompt: "point at" })).map((p) => p.key),
    ["point_prompt"],
  );
});

Deno.test("pretrain-mix count-color: shapes of the asked colour, by quadrant; none: uniform map", () => {
  const answers = new Set<string>();
  for (const s of pretrainMix.generate(4, 300, only("count-color"))) {
    const asked = /^how many (\w+) shapes \?$/.exec(s.prompt)![1];
    const c = readColors(s.image).get(asked);
    const quadrants = new Set(
      (c?.pixels ?? []).map((p) => quadrantOf(p % 64 + 0.5, Math.floor(p / 64) + 0.5, 64)),
    );
    assert.equal(s.answer, String(quadrants.size));
    answers.add(s.answer);
    assertClose(s.target, c ? targetOfPixels(c.pixels, 64, 8) : new Float32Array(64).fill(1 / 64));
  }
  assert.deepStrictEqual([...answers].sort(), ["0", "1", "2", "3", "4"]);
});

Deno.test("pretrain-mix letter: the glyph inside the asked square; the map is the square", () => {
  for (const [size, scale] of [[64, 2], [32, 1]]) {
    const letters = new Set<string>();
    for (const s of pretrainMix.generate(5, 120, only("letter", size))) {
      const asked = /^which letter is in the (\w+) square \?$/.exec(s.prompt)![1];
      const rgb = COLORS[asked];
      const near = (p: number, c: readonly number[]) =>
        [0, 1, 2].every((k) => Math.abs(s.image.data[3 * p + k] - c[k]) <= 0.1);
      const fill: number[] = [];
      for (let p = 0; p < size * size; p++) if (near(p, rgb)) fill.push(p);
      const xs = fill.map((p) => p % size), ys = fill.map((p) => Math.floor(p / size));
      const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
      // Dark ink inside the square's box, drawn again from the answer's glyph, must match.
      const expected = blankImage(size, LIGHT_BACKGROUND);
      const lx = x0 + Math.floor((x1 - x0 + 1 - 5 * scale) / 2);
      const ly = y0 + Math.floor((y1 - y0 + 1 - 7 * scale) / 2);
      drawText(expected, s.answer, lx, ly, scale, [0, 0, 0]);
      const box: number[] = [];
      for (let y = y0; y <= y1; y++) {
        for (let x = x0; x <= x1; x++) {
          const p = y * size + x;
          box.push(p);
          assert.equal(
            near(p, [0.08, 0.08, 0.08]),
            expected.data[3 * p] === 0,
            `${s.answer} at ${x},${y}`,
          );
        }
      }
      assertClose(s.target, targetOfPixels(box, size, 8));
      letters.add(s.answer);
    }
    assert.ok(letters.size >= 8, [...letters].join(""));
  }
});

Deno.test("pretrain-mix label: small letters, each inside one patch, none touching; the answer is the asked letter's centre", () => {
  const size = 64, patch = 8;
  const counts = new Set<number>();
  for (const s of pretrainMix.generate(7, 80, only("label", size, patch))) {
    const letter = /^locate the letter ([A-J]) \?$/.exec(s.prompt)![1];
    // The ink, grouped by the patch it lies in: each group is one glyph's box.
    const dark = (p: number) => s.image.data[3 * p] < 0.3;
    const byPatch = new Map<number, number[]>();
    for (let p = 0; p < size * size; p++) {
      if (!dark(p)) continue;
      const k = Math.floor(Math.floor(p / size) / patch) * 8 + Math.floor((p % size) / patch);
      byPatch.set(k, [...(byPatch.get(k) ?? []), p]);
    }
    const patches = [...byPatch.keys()];
    counts.add(patches.length);
    assert.ok(patches.length >= 2 && patches.length <= 4, s.prompt);
    for (const a of patches) {
      for (const b of patches) {
        if (a === b) continue;
        const apart = Math.max(Math.abs((a >> 3) - (b >> 3)), Math.abs((a & 7) - (b & 7)));
        assert.ok(apart >= 2, `patches ${a} and ${b} touch`);
      }
    }
    // The map is one of those glyphs; drawn again from the asked letter, it matches the ink.
    const marked = [...s.target].flatMap((v, i) => v > 0 ? [i] : []);
    assert.equal(marked.length, 1);
    const ink = byPatch.get(marked[0])!;
    const xs = ink.map((p) => p % size), ys = ink.map((p) => Math.floor(p / size));
    const [x0, y0] = [Math.min(...xs), Math.min(...ys)];
    // The glyph's box starts at its leftmost column of ink (every glyph A-J has ink in column
    // 0 but I and J: redraw at each start the box allows and keep the one that matches).
    const starts = [0, 1, 2].map((d) => x0 - d).filter((x) => x >= 0);
    const start = starts.find((x) => {
      const e = blankImage(size, LIGHT_BACKGROUND);
      drawText(e, letter, x, y0, 1, [0, 0, 0]);
      return ink.every((p) => e.data[3 * p] === 0) &&
        ink.length === [...Array(size * size).keys()].filter((p) => e.data[3 * p] === 0).length;
    });
    assert.ok(start !== undefined, `${letter} drawn at ${x0},${y0}`);
    const [cx, cy] = s.answer.split(" , ").map(Number);
    assert.equal(cx, Math.round((100 * (start! + 2.5)) / size));
    assert.equal(cy, Math.round((100 * (y0 + 3.5)) / size));
    assert.equal(pretrainMix.score(s.answer, s), true);
    assert.equal(pretrainMix.score(`${cx} , ${cy > 50 ? cy - 15 : cy + 15}`, s), false);
  }
  assert.deepEqual([...counts].sort(), [2, 3, 4]);
});

Deno.test("pretrain-mix curve: touching by hand, and answers that follow the drawn curve", () => {
  const rect = { x: 10, y: 10, w: 6, h: 6 };
  assert.equal(curveTouchesRect([[0, 12.5], [31, 12.5]], 1, 32, rect), true); // through it
  assert.equal(curveTouchesRect([[0, 9.5], [31, 9.5]], 1, 32, rect), false); // the row above
  assert.equal(curveTouchesRect([[0, 9.5], [31, 9.5]], 3, 32, rect), true); // wide enough
  assert.equal(curveTouchesRect([[20, 0], [20, 31]], 2, 32, rect), false); // to the right
  let yes = 0;
  const samples = pretrainMix.generate(6, 300, only("curve"));
  for (const s of samples) {
    const asked = /^does the (\w+) curve touch the square \?$/.exec(s.prompt)![1];
    assert.equal(asked, s.meta.color);
    if (s.answer === "yes") yes++;
    else assert.equal(s.answer, "no");
    // The map lies on the asked curve: its heaviest patch holds pixels of that colour.
    const best = s.target.indexOf(Math.max(...s.target));
    const [pr, pc] = [Math.floor(best / 8), best % 8];
    let found = false;
    for (let y = pr * 8; y < pr * 8 + 8 && !found; y++) {
      for (let x = pc * 8; x < pc * 8 + 8 && !found; x++) {
        const p = y * 64 + x;
        found = [0, 1, 2].every((k) =>
          Math.abs(s.image.data[3 * p + k] - COLORS[asked][k]) <= 0.12
        );
      }
    }
    assert.ok(found, s.prompt);
  }
  assert.ok(yes / samples.length > 0.4 && yes / samples.length < 0.6, `yes ${yes}`);
});

Deno.test("pretrain-mix compare: left of / above from the shapes' centres; the map is both", () => {
  let yes = 0;
  const samples = pretrainMix.generate(8, 300, only("compare"));
  for (const s of samples) {
    const [, a, relation, b] = /^is the (\w+) shape (left of|above) the (\w+) shape \?$/.exec(
      s.prompt,
    )!;
    const colors = readColors(s.image);
    const [ca, cb] = [colors.get(a)!, colors.get(b)!];
    const truth = relation === "left of"
      ? ca.sx / ca.n < cb.sx / cb.n
      : ca.sy / ca.n < cb.sy / cb.n;
    assert.equal(s.answer, truth ? "yes" : "no", s.prompt);
    if (truth) yes++;
    assertClose(s.target, targetOfPixels([...ca.pixels, ...cb.pixels], 64, 8));
  }
  assert.ok(yes / samples.length > 0.4 && yes / samples.length < 0.6, `yes ${yes}`);
});

Deno.test("pretrain-mix: no prompt has a task's form (first three words, template)", async () => {
  const template = (prompt: string) =>
    prompt.split(" ").map((w) =>
      COLOR_NAMES.includes(w) ? "<color>" : /^\d+$/.test(w) ? "<n>" : /^[A-J]$/.test(w) ? "<L>" : w
    ).join(" ");
  const head = (prompt: string) =>
    prompt.split(" ").slice(0, 3).map((w) => COLOR_NAMES.includes(w) ? "<color>" : w).join(" ");
  const taskTemplates = new Set<string>();
  const taskHeads = new Set<string>();
  for (const task of Object.values(TASKS)) {
    const cfg = { imageSize: 64, patchSize: 8, params: task.defaultParams };
    let samples: Sample[];
    if (task.generate) samples = task.generate(1, 100, cfg);
    else {
      const dir = await Deno.makeTempDir();
      try {
        samples = await task.load!(await task.writeStandIn!(dir, 1, 100, cfg), cfg);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
    for (const s of samples) {
      taskTemplates.add(template(s.prompt));
      taskHeads.add(head(s.prompt));
    }
  }
  // No mix holds both "where" and "cell": one mix with each.
  const mix = ["cell", "where"].flatMap((left) =>
    pretrainMix.generate(
      3,
      900,
      config(64, 8, { kinds: PRETRAIN_QUESTION_KINDS.filter((k) => k !== left) }),
    )
  );
  for (const s of mix) {
    assert.ok(!taskTemplates.has(template(s.prompt)), s.prompt);
    // "cell" asks the original "where" question (finer), whose first words Grid Patch shares.
    const kind = String(s.meta.difficulty);
    if ((SKILLS as readonly string[]).includes(kind) && kind !== "cell") {
      assert.ok(!taskHeads.has(head(s.prompt)), `${s.prompt} starts like a task's prompt`);
    }
  }
});

Deno.test("pretrain-mix: kinds are checked (known, distinct, letter only from 32 px)", () => {
  const keys = (size: number, params: Record<string, unknown>) =>
    pretrainMix.checkParams(config(size, 8, params)).map((p) => p.key);
  assert.deepStrictEqual(
    keys(64, { kinds: PRETRAIN_QUESTION_KINDS.filter((k) => k !== "cell") }),
    [],
  );
  assert.deepStrictEqual(keys(64, { kinds: ["where", "cell"] }), ["kinds"]);
  assert.deepStrictEqual(keys(64, { kinds: ["color", "count", "exists", "cell", "point"] }), []);
  assert.deepStrictEqual(keys(64, { kinds: ["point", "nope"] }), ["kinds"]);
  assert.deepStrictEqual(keys(64, { kinds: ["point", "point"] }), ["kinds"]);
  assert.deepStrictEqual(keys(64, { kinds: [] }), ["kinds"]);
  assert.deepStrictEqual(keys(16, { kinds: ["letter"] }), ["kinds"]);
  // Enough colours for each kind: four distinct squares, two curves and a square, one absent.
  const two = { max_shapes: 1, colors: ["red", "blue"] };
  assert.deepStrictEqual(keys(64, { ...two, kinds: ["point", "compare"] }), []);
  assert.deepStrictEqual(keys(64, { ...two, kinds: ["curve"] }), ["colors"]);
  assert.deepStrictEqual(keys(64, { ...two, kinds: ["count-color"] }), ["colors"]);
  const three = { max_shapes: 2, colors: ["red", "blue", "green"] };
  assert.deepStrictEqual(keys(64, { ...three, kinds: ["letter"] }), ["colors"]);
  assert.deepStrictEqual(keys(64, { ...three, kinds: ["curve", "count-color", "compare"] }), []);
  assert.deepStrictEqual(keys(16, { kinds: ["point", "curve", "compare", "count-color"] }), []);
  for (
    const s of pretrainMix.generate(
      1,
      200,
      config(16, 4, { kinds: ["point", "curve", "compare", "count-color"] }),
    )
  ) {
    assert.ok(Math.abs(s.target.reduce((x, y) => x + y, 0) - 1) < 1e-5);
  }
});

Deno.test("pretrain-mix: a spec selects the mix with base.mix, which the plan's pretraining data takes", () => {
  const yaml = (mix: string) =>
    `name: t\ntask: { name: grid-patch, image_size: 64 }\nbase: { steps: 10${mix} }\n` +
    `arms: { ntp: { lambda: 0 } }\n`;
  const ctx = { tasks: TASKS };
  const plain = parseSpec(yaml(""), "t.yaml", [], ctx);
  assert.deepStrictEqual(plain.base.mix, pretrainMix.defaultParams);
  const rich = parseSpec(yaml(", mix: { kinds: [point, letter] }"), "t.yaml", [], ctx);
  assert.deepStrictEqual(rich.base.mix.kinds, ["point", "letter"]);
  assert.equal(rich.base.mix.max_shapes, 3);
  const data = buildPlan(rich).find((s) => s.id === "data:pretrain-mix:train:s0")!;
  assert.deepStrictEqual(paramsOf(data).task_params, rich.base.mix);
  // The Base's own params leave the mix to its data (an input).
  const pretrain = buildPlan(rich).find((s) => s.id === "pretrain")!;
  assert.equal((paramsOf(pretrain).base as Record<string, unknown>).mix, undefined);
  assert.throws(
    () => parseSpec(yaml(", mix: { kinds: [pointing] }"), "t.yaml", [], ctx),
    /base\.mix\.kinds/,
  );
  assert.throws(
    () => parseSpec(yaml(", mix: { shapes: 2 }"), "t.yaml", [], ctx),
    /base\.mix\.shapes/,
  );
});

Deno.test("experiments/paper/64px: each spec parses, names its Base; Table 1 tests on seed 3000, the rest on validation data", async () => {
  const dir = new URL("../experiments/paper/64px/", import.meta.url);
  const names: string[] = [];
  const lambdas = new Set<number>();
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".yaml")) continue;
    const text = await Deno.readTextFile(new URL(entry.name, dir));
    const spec = parseSpec(text, `experiments/paper/64px/${entry.name}`, [], { tasks: TASKS });
    assert.equal(spec.base.steps, 6000, entry.name);
    assert.equal(spec.task.image_size, 64, entry.name);
    if (spec.task.test_seed !== 3000) {
      // The sweep, the ablation and the probes: the pilots' validation seed, never the test
      // seed. The sample-efficiency probe runs from Table 1's Base; the others ran from the
      // previous Base (the original four kinds, NTP only).
      assert.equal(spec.task.test_seed, 2000, entry.name);
      if (entry.name === "sample-efficiency.yaml") {
        assert.match(text, /^base: bases\/grounded\.yaml$/m, entry.name);
      } else {
        assert.deepStrictEqual(spec.base.mix.kinds, [...ORIGINAL_QUESTION_KINDS], entry.name);
        assert.equal(spec.base.lambda, 0, entry.name);
      }
      continue;
    }
    // Table 1: the Base the answer-form pilots chose (docs/pilots/base-mix.md), one file for all.
    assert.match(text, /^base: bases\/grounded\.yaml$/m, entry.name);
    assert.deepStrictEqual(
      spec.base.mix.kinds,
      ["color", "count", "exists", "cell", "point", "object"],
      entry.name,
    );
    assert.equal(spec.base.mix.point_prompt, "point to", entry.name);
    assert.equal(spec.base.lambda, 0.3, entry.name);
    names.push(spec.task.name);
    assert.deepStrictEqual(spec.seeds, [0, 1, 2, 3, 4], entry.name);
    assert.equal(spec.train.lr, 1e-3, entry.name);
    assert.equal(spec.arms.shuffled.target, "shuffled", entry.name);
    const pointer = ["grid-patch", "line-intersection"].includes(spec.task.name);
    assert.equal(spec.arms.pointer?.supervision, pointer ? "pointer" : undefined, entry.name);
    // One λ for KLAL+NTP and its controls, the same in every Table 1 spec.
    for (const arm of ["klal", "shuffled", "pointer"]) {
      if (spec.arms[arm]) lambdas.add(spec.arms[arm].lambda);
    }
  }
  // Every benchmark task; the generic grounding task (the user's own data) has no record row.
  assert.deepStrictEqual(names.sort(), Object.keys(TASKS).filter((t) => t !== "grounding").sort());
  assert.deepStrictEqual([...lambdas], [0.3]);
});

Deno.test("pretrain-mix box kind: the asked object's pixel box in percent, scored at IoU >= 0.5", () => {
  const samples = pretrainMix.generate(5, 40, only("box"));
  for (const s of samples) {
    assert.match(s.prompt, /^find the ((\w+) )?(circle|square|triangle) \?$/);
    const box = s.answer.split(" ").map(Number);
    assert.equal(box.length, 4);
    assert.deepEqual(box, s.meta.box);
    assert.ok(box[0] < box[2] && box[1] < box[3], s.answer);
    assert.equal(pretrainMix.score(s.answer, s), true);
    // Every patch the map holds lies inside the box (the map is the object's pixels).
    const side = 8;
    s.target.forEach((p, i) => {
      if (p <= 0) return;
      const [x, y] = [(i % side) * 12.5, Math.floor(i / side) * 12.5];
      assert.ok(x + 12.5 > box[0] && x < box[2] && y + 12.5 > box[1] && y < box[3], `${i}`);
    });
    // A box of the whole image, or one half a box off, misses.
    assert.equal(pretrainMix.score("0 0 100 100", s), false);
    assert.equal(pretrainMix.score("not a box", s), false);
  }
  // Its words come only with it: a mix without the box kind keeps its vocabulary.
  assert.ok(mixVocabulary(["box"]).includes("find"));
  assert.ok(!mixVocabulary(["object", "point"]).includes("find"));
});
