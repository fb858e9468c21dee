import assert from "node:assert/strict";
import { autoGrid, gridPatch } from "../tasks/grid_patch.ts";
import { COLOR_NAMES, COLORS, LIGHT_BACKGROUND, patchMassOfRect } from "../tasks/draw.ts";
import { PRETRAIN_TASK, TASKS, vocabularyOf } from "../tasks/registry.ts";
import type { RgbImage, Sample, TaskConfig } from "../tasks/task.ts";

function config(imageSize: number, patchSize: number, params: Record<string, unknown> = {}) {
  const merged = { ...gridPatch.defaultParams, ...params };
  return { imageSize, patchSize, params: merged } satisfies TaskConfig;
}

/** Nearest palette name (or "background") of pixel (x, y), or "?" when nothing is close. */
function colorAt(img: RgbImage, x: number, y: number): string {
  const p = 3 * (y * img.width + x);
  const pixel = [img.data[p], img.data[p + 1], img.data[p + 2]];
  const candidates: [string, readonly number[]][] = [
    ["background", LIGHT_BACKGROUND],
    ...Object.entries(COLORS),
  ];
  for (const [name, rgb] of candidates) {
    if (rgb.every((v, c) => Math.abs(v - pixel[c]) <= 0.1)) return name;
  }
  return "?";
}

/** Row and column parsed from an answer "R , C". */
function parseAnswer(answer: string): { row: number; col: number } {
  const match = /^(\d+) , (\d+)$/.exec(answer);
  assert.ok(match, `answer "${answer}" is not "R , C"`);
  return { row: Number(match[1]), col: Number(match[2]) };
}

function nonzeroIndices(target: Float32Array): number[] {
  return [...target.keys()].filter((i) => target[i] > 0);
}

function sum(values: Float32Array): number {
  return values.reduce((a, b) => a + b, 0);
}

Deno.test("grid-patch: same seed gives identical samples, other seeds differ", () => {
  const cfg = config(32, 8);
  const a = gridPatch.generate(3, 40, cfg);
  const b = gridPatch.generate(3, 40, cfg);
  assert.deepStrictEqual(a, b);
  for (let i = 0; i < a.length; i++) {
    assert.deepStrictEqual(
      new Uint8Array(a[i].image.data.buffer),
      new Uint8Array(b[i].image.data.buffer),
    );
  }
  const c = gridPatch.generate(4, 40, cfg);
  assert.notDeepStrictEqual(a[0].image.data, c[0].image.data);
  assert.notDeepStrictEqual(a.map((s) => s.answer), c.map((s) => s.answer));
  // Sample i does not depend on how many are generated.
  assert.deepStrictEqual(gridPatch.generate(3, 5, cfg), a.slice(0, 5));
});

Deno.test("grid-patch: 32 px, patch 8, grid 4: target is one-hot on the answer's cell", () => {
  const samples = gridPatch.generate(0, 300, config(32, 8));
  for (const s of samples) {
    assert.equal(s.target.length, 16);
    assert.ok(Math.abs(sum(s.target) - 1) < 1e-5);
    const { row, col } = parseAnswer(s.answer);
    assert.equal(row, s.meta.row);
    assert.equal(col, s.meta.col);
    assert.deepStrictEqual(nonzeroIndices(s.target), [row * 4 + col]);
    assert.equal(s.target[row * 4 + col], 1);
  }
  // By hand: cell (2, 3) is patch 2 * 4 + 3 = 11.
  const hand = patchMassOfRect(32, 8, { x: 24, y: 16, w: 8, h: 8 });
  assert.deepStrictEqual(nonzeroIndices(hand), [11]);
});

Deno.test("grid-patch: 64 px, patch 8, defaults: an 8 x 8 grid of 8 px cells, one patch each", () => {
  assert.equal(gridPatch.defaultParams.grid, "auto");
  const samples = gridPatch.generate(1, 2000, config(64, 8));
  for (const s of samples) {
    assert.equal(s.meta.grid, 8);
    const { row, col } = parseAnswer(s.answer);
    assert.deepStrictEqual(nonzeroIndices(s.target), [row * 8 + col]);
  }
  assert.equal(new Set(samples.map((s) => s.answer)).size, 64);
  // The rule: one cell per patch, at most 16 x 16 cells, cells a whole number of patches.
  const cases: [number, number, number][] = [
    [16, 8, 2],
    [32, 8, 4],
    [48, 8, 6],
    [64, 8, 8],
    [64, 16, 4],
    [64, 4, 16],
    [128, 8, 16],
    [256, 8, 16],
    [96, 16, 6],
  ];
  for (const [size, patch, grid] of cases) {
    assert.equal(autoGrid(size, patch), grid, `${size} px, patch ${patch}`);
    assert.deepStrictEqual(gridPatch.checkParams(config(size, patch)), []);
  }
});

Deno.test("grid-patch: 64 px, patch 8, grid 4: target is uniform over the cell's 2x2 patches", () => {
  const samples = gridPatch.generate(1, 300, config(64, 8, { grid: 4 }));
  for (const s of samples) {
    assert.equal(s.target.length, 64);
    assert.ok(Math.abs(sum(s.target) - 1) < 1e-5);
    const { row, col } = parseAnswer(s.answer);
    const top = 2 * row * 8 + 2 * col; // patch grid is 8 x 8; a cell spans 2 x 2 patches
    assert.deepStrictEqual(nonzeroIndices(s.target), [top, top + 1, top + 8, top + 9]);
    for (const i of nonzeroIndices(s.target)) assert.ok(Math.abs(s.target[i] - 0.25) < 1e-6);
  }
  // By hand: cell (1, 2) covers patch rows 2-3, columns 4-5: 20, 21, 28, 29.
  const hand = patchMassOfRect(64, 8, { x: 32, y: 16, w: 16, h: 16 });
  assert.deepStrictEqual(nonzeroIndices(hand), [20, 21, 28, 29]);
});

Deno.test("grid-patch: 64 px, patch 8, grid 16: cells of 4 px, the map one-hot on the patch that holds the cell", () => {
  const samples = gridPatch.generate(
    2,
    400,
    config(64, 8, { grid: 16, blobs: 8, colors: COLOR_NAMES }),
  );
  const quarters = new Set<string>();
  for (const s of samples) {
    const { row, col } = parseAnswer(s.answer);
    assert.ok(row < 16 && col < 16);
    // Cell (row, col) lies in patch (row >> 1, col >> 1) of the 8 x 8 patch grid.
    assert.deepStrictEqual(nonzeroIndices(s.target), [(row >> 1) * 8 + (col >> 1)]);
    assert.equal(colorAt(s.image, col * 4 + 2, row * 4 + 2), s.meta.color);
    quarters.add(`${row % 2},${col % 2}`);
  }
  // The answer tells apart the four cells of a patch: every quarter is asked.
  assert.equal(quarters.size, 4);
  // By hand: cell (5, 6) is patch (2, 3), index 19.
  assert.deepStrictEqual(nonzeroIndices(patchMassOfRect(64, 8, { x: 24, y: 20, w: 4, h: 4 })), [
    19,
  ]);
});

Deno.test("grid-patch: patchMassOfRect weighs partly covered patches by area", () => {
  // 16 px, patch 8: a 4x8 rect straddling the vertical patch border at x = 8.
  const mass = patchMassOfRect(16, 8, { x: 6, y: 0, w: 4, h: 8 });
  assert.deepStrictEqual([...mass], [0.5, 0.5, 0, 0]);
  const uneven = patchMassOfRect(16, 8, { x: 5, y: 0, w: 4, h: 8 }); // 3 px left, 1 px right
  assert.deepStrictEqual([...uneven], [0.75, 0.25, 0, 0]);
});

Deno.test("grid-patch: the asked colour is at the target cell's centre, and only there", () => {
  for (const [size, grid, blobs] of [[32, 4, 2], [64, 4, 4], [64, 8, 6], [32, 8, 3]]) {
    const cfg = config(size, 4, { grid, blobs, colors: COLOR_NAMES.slice(0, 6) });
    const cell = size / grid;
    for (const s of gridPatch.generate(5, 200, cfg)) {
      const color = /^where is the (\w+) patch \?$/.exec(s.prompt)?.[1];
      assert.ok(color, s.prompt);
      assert.equal(s.meta.color, color);
      const { row, col } = parseAnswer(s.answer);
      const half = Math.floor(cell / 2);
      assert.equal(colorAt(s.image, col * cell + half, row * cell + half), color);
      // Exactly `blobs` cells are coloured, with distinct colours: the answer is unique.
      const seen: string[] = [];
      for (let r = 0; r < grid; r++) {
        for (let c = 0; c < grid; c++) {
          const name = colorAt(s.image, c * cell + half, r * cell + half);
          assert.notEqual(name, "?");
          if (name !== "background") seen.push(name);
        }
      }
      assert.equal(seen.length, blobs);
      assert.equal(new Set(seen).size, blobs);
      assert.equal(s.meta.difficulty, `${blobs} patches`);
      assert.equal(s.meta.grid, grid);
      assert.equal(s.meta.blobs, blobs);
    }
  }
});

Deno.test("grid-patch: every cell and colour is a target, and words are in the vocabulary", () => {
  const samples = gridPatch.generate(2, 2000, config(32, 8));
  const cells = new Set(samples.map((s) => s.answer));
  assert.equal(cells.size, 16);
  const colors = new Set(samples.map((s) => s.meta.color));
  assert.deepStrictEqual([...colors].sort(), ["blue", "green", "red", "yellow"]);
  const vocab = new Set(gridPatch.vocabulary);
  for (const s of samples) {
    for (const w of `${s.prompt} ${s.answer}`.split(" ")) assert.ok(vocab.has(w), w);
  }
  for (const v of [...samples[0].image.data]) assert.ok(v >= 0 && v <= 1);
});

Deno.test("grid-patch: score is exact match after whitespace normalisation", () => {
  const sample = { answer: "2 , 3" } as Sample;
  assert.equal(gridPatch.score("2 , 3", sample), true);
  assert.equal(gridPatch.score("  2   ,\t3 ", sample), true);
  assert.equal(gridPatch.score("3 , 2", sample), false);
  assert.equal(gridPatch.score("2 ,3", sample), false);
  assert.equal(gridPatch.score("2 , 3 ,", sample), false);
  assert.equal(gridPatch.score("", sample), false);
});

Deno.test("grid-patch: checkParams reports bad grid, blobs, colors and noise", () => {
  const keys = (size: number, patch: number, params: Record<string, unknown>) =>
    gridPatch.checkParams(config(size, patch, params)).map((p) => p.key);
  assert.deepStrictEqual(keys(32, 8, {}), []);
  assert.deepStrictEqual(keys(32, 8, { grid: "auto" }), []);
  assert.deepStrictEqual(keys(32, 8, { grid: "big" }), ["grid"]);
  assert.deepStrictEqual(keys(16, 16, { grid: "auto", blobs: 2 }), ["blobs"]); // one cell
  assert.deepStrictEqual(keys(64, 8, { grid: 8, blobs: 4 }), []);
  assert.deepStrictEqual(keys(32, 8, { grid: 3 }), ["grid"]); // 32 % 3 != 0
  assert.deepStrictEqual(keys(32, 8, { grid: 8 }), []); // cells of 4 px, 4 to a patch of 8
  assert.deepStrictEqual(keys(64, 8, { grid: 16 }), []);
  assert.deepStrictEqual(keys(48, 16, { grid: 8 }), ["grid"]); // cell 6 px: 16 holds no whole number
  assert.deepStrictEqual(keys(48, 8, { grid: 4 }), ["grid"]); // cell 12 px, not a multiple of 8
  assert.deepStrictEqual(keys(32, 8, { grid: 0 }), ["grid"]);
  assert.deepStrictEqual(keys(32, 8, { grid: "4" }), ["grid"]);
  assert.deepStrictEqual(keys(32, 8, { blobs: 0 }), ["blobs"]);
  assert.deepStrictEqual(keys(32, 8, { blobs: 17, colors: COLOR_NAMES }), ["blobs", "colors"]);
  assert.deepStrictEqual(keys(32, 8, { grid: 2, blobs: 5, colors: COLOR_NAMES }), ["blobs"]);
  assert.deepStrictEqual(keys(32, 8, { blobs: 1.5 }), ["blobs"]);
  assert.deepStrictEqual(keys(32, 8, { colors: ["red", "mauve"] }), ["colors"]);
  assert.deepStrictEqual(keys(32, 8, { colors: ["red"] }), ["colors"]); // fewer than blobs
  assert.deepStrictEqual(keys(32, 8, { colors: ["red", "red"] }), ["colors"]);
  assert.deepStrictEqual(keys(32, 8, { colors: ["red", "toString"] }), ["colors"]);
  assert.deepStrictEqual(keys(32, 8, { colors: "red" }), ["colors"]);
  assert.deepStrictEqual(keys(32, 8, { noise: -1 }), ["noise"]);
  const problem = gridPatch.checkParams(config(48, 8, { grid: 4 }))[0];
  assert.equal(problem.found, 4);
  assert.match(
    problem.expected,
    /cell side \(image_size 48 \/ grid = 12 px\) is a multiple or a divisor of patch_size 8/,
  );
  assert.throws(() => gridPatch.generate(0, 1, config(32, 8, { grid: 3 })), /grid/);
});

Deno.test("grid-patch: registry and vocabulary", () => {
  assert.ok(Object.keys(TASKS).includes("grid-patch"));
  assert.equal(TASKS["grid-patch"], gridPatch);
  assert.equal(gridPatch.name, "grid-patch");
  const vocab = vocabularyOf([gridPatch, PRETRAIN_TASK]);
  assert.deepStrictEqual(vocab, [...new Set(vocab)].sort());
  for (const w of [...gridPatch.vocabulary, ...PRETRAIN_TASK.vocabulary]) {
    assert.ok(vocab.includes(w));
  }
  for (const n of ["0", "15", ",", "patch", "red"]) assert.ok(gridPatch.vocabulary.includes(n));
});

Deno.test("grid-patch: 4000 samples at 32 px generate quickly", () => {
  const start = performance.now();
  const samples = gridPatch.generate(9, 4000, config(32, 8));
  const ms = performance.now() - start;
  assert.equal(samples.length, 4000);
  console.log(`grid-patch: 4000 samples at 32 px in ${ms.toFixed(0)} ms`);
  assert.ok(ms < 3000, `took ${ms} ms`);
});

Deno.test("draw: palette colours are far apart and far from the background", () => {
  const entries = Object.entries(COLORS);
  const gap = (a: readonly number[], b: readonly number[]) =>
    Math.max(...a.map((v, c) => Math.abs(v - b[c])));
  assert.ok(entries.length >= 8);
  for (const [name, rgb] of entries) {
    assert.match(name, /^[a-z]+$/);
    assert.ok(gap(rgb, LIGHT_BACKGROUND) >= 0.5 - 1e-9, name);
    for (const [other, rgb2] of entries) {
      if (other !== name) assert.ok(gap(rgb, rgb2) >= 0.4 - 1e-9, `${name} ${other}`);
    }
  }
});
