import assert from "node:assert/strict";
import {
  crossingsAreClean,
  curvePolyline,
  findCrossings,
  gaussianTarget,
  lineIntersection,
  rulesFor,
  uniformOverMaskPatches,
} from "../tasks/line_intersection.ts";
import { type Point, polylineMask } from "../tasks/draw.ts";
import { TASKS } from "../tasks/registry.ts";
import type { Sample, TaskConfig } from "../tasks/task.ts";

function config(imageSize: number, patchSize: number, params: Record<string, unknown> = {}) {
  const merged = { ...lineIntersection.defaultParams, ...params };
  return { imageSize, patchSize, params: merged } satisfies TaskConfig;
}

function sum(values: Float32Array): number {
  return values.reduce((a, b) => a + b, 0);
}

/** Number of 8-connected components of the set pixels of `mask` (size x size). */
function components(mask: Uint8Array, size: number): number {
  const seen = new Uint8Array(mask.length);
  let count = 0;
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    count++;
    const stack = [start];
    seen[start] = 1;
    while (stack.length > 0) {
      const p = stack.pop()!;
      const x = p % size;
      const y = Math.floor(p / size);
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= size || ny >= size) continue;
          const q = ny * size + nx;
          if (mask[q] && !seen[q]) {
            seen[q] = 1;
            stack.push(q);
          }
        }
      }
    }
  }
  return count;
}

/** `mask` grown by one pixel in all 8 directions. */
function dilate(mask: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(mask.length);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (!mask[y * size + x]) continue;
      for (let ny = Math.max(0, y - 1); ny <= Math.min(size - 1, y + 1); ny++) {
        for (let nx = Math.max(0, x - 1); nx <= Math.min(size - 1, x + 1); nx++) {
          out[ny * size + nx] = 1;
        }
      }
    }
  }
  return out;
}

/** The drawn polylines of a sample, rebuilt from its meta. */
function polylinesOf(sample: Sample): Point[][] {
  const controls = sample.meta.points as Point[][];
  return controls.map((c) => curvePolyline(sample.meta.curve as string, c));
}

Deno.test("line-intersection: crossing count equals overlap blobs of the curves drawn alone", () => {
  // An independent raster check: each curve alone into its own binary mask, then the
  // connected components of the pixels both cover. A shallow crossing's overlap is a
  // thin sliver whose tips, sampled at pixel centres, can leave a stray pixel one or two
  // pixels off the blob: grow the overlap by one pixel before counting to bridge those.
  // (Separate crossings are much farther apart: the generator keeps the curves 1.5 line
  // widths apart everywhere between them.)
  const size = 128;
  const settings: [string, number, number][] = [
    ["polyline", 3, 3],
    ["bezier", 4, 3],
    ["polyline", 4, 4],
  ];
  for (const [curve, points, maxCount] of settings) {
    const cfg = config(size, 16, { curve, points, max_count: maxCount, line_width: 2 });
    for (const s of lineIntersection.generate(11, 150, cfg)) {
      const [a, b] = polylinesOf(s).map((line) => polylineMask(size, line, 2));
      const both = dilate(a.map((v, p) => v & b[p]), size);
      assert.equal(components(both, size), s.meta.count, `${curve} ${JSON.stringify(s.meta)}`);
      assert.equal(s.answer, String(s.meta.count));
    }
  }
});

Deno.test("line-intersection: the geometric count is what meta and the answer say", () => {
  for (const s of lineIntersection.generate(4, 200, config(64, 8))) {
    const [a, b] = polylinesOf(s);
    const crossings = findCrossings(a, b);
    assert.equal(crossings.length, s.meta.count);
    assert.ok(crossingsAreClean(a, b, crossings, 2, rulesFor(2)));
    assert.equal(s.meta.difficulty, `${s.meta.count} crossings`);
    assert.equal((s.meta.intersections as Point[]).length, s.meta.count);
    assert.equal(s.meta.lineWidth, 2); // auto: 64 / 32
  }
});

Deno.test("line-intersection: target sums to 1 and peaks at (or next to) an intersection", () => {
  const patch = 8;
  for (const s of lineIntersection.generate(5, 300, config(64, patch))) {
    assert.equal(s.target.length, 64);
    assert.ok(Math.abs(sum(s.target) - 1) < 1e-5);
    if (s.meta.count === 0) continue;
    const argmax = s.target.indexOf(Math.max(...s.target));
    const [row, col] = [Math.floor(argmax / 8), argmax % 8];
    const near = (s.meta.intersections as Point[]).some(([x, y]) =>
      Math.abs(Math.floor(x / patch) - col) <= 1 && Math.abs(Math.floor(y / patch) - row) <= 1
    );
    assert.ok(near, JSON.stringify(s.meta));
  }
});

Deno.test("line-intersection: with no crossing, target is uniform on the curves' patches", () => {
  const size = 64;
  const patch = 8;
  const zeros = lineIntersection.generate(6, 200, config(size, patch)).filter((s) =>
    s.meta.count === 0
  );
  assert.equal(zeros.length, 50);
  for (const s of zeros) {
    const masks = polylinesOf(s).map((line) => polylineMask(size, line, 2));
    const touched = new Set<number>();
    for (const mask of masks) {
      mask.forEach((v, p) => {
        if (v) touched.add(Math.floor(p / size / patch) * 8 + Math.floor((p % size) / patch));
      });
    }
    const support = [...s.target.keys()].filter((i) => s.target[i] > 0);
    assert.deepStrictEqual(support, [...touched].sort((a, b) => a - b));
    for (const i of support) assert.ok(Math.abs(s.target[i] - 1 / touched.size) < 1e-6);
  }
});

Deno.test("line-intersection: answers are balanced over 0..max_count", () => {
  for (const maxCount of [1, 2, 3]) {
    const samples = lineIntersection.generate(7, 240, config(48, 8, { max_count: maxCount }));
    const counts = new Map<string, number>();
    for (const s of samples) counts.set(s.answer, (counts.get(s.answer) ?? 0) + 1);
    assert.deepStrictEqual(
      [...counts.entries()].sort(),
      Array.from({ length: maxCount + 1 }, (_, c) => [String(c), 240 / (maxCount + 1)]),
    );
  }
});

Deno.test("line-intersection: same seed gives identical samples, other seeds differ", () => {
  const cfg = config(64, 8, { curve: "bezier", points: 4 });
  const a = lineIntersection.generate(3, 30, cfg);
  assert.deepStrictEqual(lineIntersection.generate(3, 30, cfg), a);
  assert.deepStrictEqual(lineIntersection.generate(3, 7, cfg), a.slice(0, 7));
  const c = lineIntersection.generate(4, 30, cfg);
  assert.notDeepStrictEqual(a[0].image.data, c[0].image.data);
  for (const v of a[0].image.data) assert.ok(v >= 0 && v <= 1);
});

Deno.test("line-intersection: prompt, vocabulary, score and registry", () => {
  const vocab = new Set(lineIntersection.vocabulary);
  for (const s of lineIntersection.generate(8, 40, config(32, 8))) {
    assert.equal(s.prompt, "how many times do the lines intersect ?");
    for (const w of `${s.prompt} ${s.answer}`.split(" ")) assert.ok(vocab.has(w), w);
  }
  const sample = { answer: "2" } as Sample;
  assert.equal(lineIntersection.score(" 2 ", sample), true);
  assert.equal(lineIntersection.score("2 2", sample), false);
  assert.equal(lineIntersection.score("3", sample), false);
  assert.equal(lineIntersection.score("", sample), false);
  assert.equal(TASKS["line-intersection"], lineIntersection);
});

Deno.test("line-intersection: geometry helpers by hand", () => {
  // An X: one crossing at (5, 5), at 90 degrees.
  const x = findCrossings([[0, 0], [10, 10]], [[0, 10], [10, 0]]);
  assert.equal(x.length, 1);
  assert.deepStrictEqual([x[0].x, x[0].y], [5, 5]);
  assert.ok(Math.abs(x[0].angle - Math.PI / 2) < 1e-12);
  // A crossing exactly at a vertex of the first polyline counts once.
  assert.equal(findCrossings([[0, 0], [5, 5], [10, 10]], [[0, 10], [10, 0]]).length, 1);
  // Parallel segments never cross.
  assert.equal(findCrossings([[0, 0], [10, 0]], [[0, 1], [10, 1]]).length, 0);
  // A point at a patch centre: the map is symmetric around it and peaks there.
  const target = gaussianTarget([[12, 12]], 32, 8, 0.75);
  assert.ok(Math.abs(sum(target) - 1) < 1e-6);
  assert.equal(target.indexOf(Math.max(...target)), 5); // row 1, col 1 of a 4x4 grid
  assert.ok(Math.abs(target[4] - target[6]) < 1e-7 && Math.abs(target[1] - target[9]) < 1e-7);
  // Truncation: exp(-d^2 / (2 * 0.75^2)) < 0.01 from d = 2.28 patches on; d = 2 stays.
  assert.ok(target[7] > 0); // (1, 3): 2 patches away
  assert.equal(target[15], 0); // (3, 3): 2.83 patches away
  // Uniform over the patches a mask touches.
  const mask = new Uint8Array(16 * 16);
  mask[0] = 1;
  mask[15 * 16 + 15] = 1;
  assert.deepStrictEqual([...uniformOverMaskPatches(mask, 16, 8)], [0.5, 0, 0, 0.5]);
});

Deno.test("line-intersection: checkParams reports bad curve, points, max_count, line_width, sigma", () => {
  const keys = (size: number, params: Record<string, unknown>) =>
    lineIntersection.checkParams(config(size, 8, params)).map((p) => p.key);
  assert.deepStrictEqual(keys(64, {}), []);
  assert.deepStrictEqual(keys(64, { curve: "bezier", points: 4, max_count: 3 }), []);
  assert.deepStrictEqual(keys(64, { curve: "spline" }), ["curve"]);
  assert.deepStrictEqual(keys(64, { points: 1 }), ["points"]);
  assert.deepStrictEqual(keys(64, { points: 2.5 }), ["points"]);
  assert.deepStrictEqual(keys(64, { max_count: 4 }), ["max_count"]); // 3-point polylines: 3
  assert.deepStrictEqual(keys(64, { curve: "bezier", points: 3, max_count: 3 }), ["max_count"]);
  assert.deepStrictEqual(keys(64, { max_count: -1 }), ["max_count"]);
  assert.deepStrictEqual(keys(64, { line_width: 0 }), ["line_width"]);
  assert.deepStrictEqual(keys(64, { line_width: "thick" }), ["line_width"]);
  assert.deepStrictEqual(keys(64, { line_width: 3 }), []);
  assert.deepStrictEqual(keys(64, { sigma: 0 }), ["sigma"]);
  assert.deepStrictEqual(keys(8, {}), ["image_size"]);
  assert.throws(
    () => lineIntersection.generate(0, 1, config(64, 8, { max_count: 9 })),
    /max_count/,
  );
});

Deno.test("line-intersection: 2000 samples at 64 px generate quickly", () => {
  const start = performance.now();
  const samples = lineIntersection.generate(9, 2000, config(64, 8));
  const ms = performance.now() - start;
  assert.equal(samples.length, 2000);
  console.log(`line-intersection: 2000 samples at 64 px in ${ms.toFixed(0)} ms`);
  assert.ok(ms < 5000, `took ${ms} ms`);
});
