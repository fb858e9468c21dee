import assert from "node:assert/strict";
import { PRETRAIN_QUESTION_KINDS, pretrainMix } from "../tasks/pretrain_mix.ts";
import { COLOR_NAMES, COLORS, LIGHT_BACKGROUND } from "../tasks/draw.ts";
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

Deno.test("pretrain-mix: never emits Grid Patch prompts or answers", () => {
  const samples = pretrainMix.generate(0, 2000, config(32, 8));
  const vocab = new Set(pretrainMix.vocabulary);
  assert.ok(!vocab.has("patch") && !vocab.has(","));
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
  for (const kind of PRETRAIN_QUESTION_KINDS) {
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
  const sample = { answer: "top left" } as Sample;
  assert.equal(pretrainMix.score("top left", sample), true);
  assert.equal(pretrainMix.score("  top \n left ", sample), true);
  assert.equal(pretrainMix.score("top", sample), false);
  assert.equal(pretrainMix.score("left top", sample), false);
  assert.equal(pretrainMix.score("yes", { answer: "no" } as Sample), false);
  assert.equal(pretrainMix.score("3", { answer: "3" } as Sample), true);
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
