import assert from "node:assert/strict";
import {
  crossingsAreClean,
  curvePolyline,
  findCrossings,
  gaussianPatchMass,
  lineIntersection,
  lineWidthRange,
  rulesFor,
  uniformOverMaskPatches,
} from "../tasks/line_intersection.ts";
import { COLORS, type Point, polylineMask } from "../tasks/draw.ts";
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
    const width = s.meta.lineWidth as number;
    const crossings = findCrossings(a, b);
    assert.equal(crossings.length, s.meta.count);
    assert.ok(crossingsAreClean(a, b, crossings, width, rulesFor(width)));
    assert.equal(s.meta.difficulty, `${s.meta.count} crossings`);
    assert.equal((s.meta.intersections as Point[]).length, s.meta.count);
    assert.ok(width >= 1 && width <= 3, `${width}`); // auto at 64 px: 1 to 3 px
    assert.equal(s.meta.sigmaPx, width / 2); // auto: half the line width
  }
});

Deno.test("line-intersection: defaults follow BlindTest: two 3-point polylines, 0-2 crossings", () => {
  const p = lineIntersection.defaultParams;
  assert.deepStrictEqual([p.curve, p.points, p.max_count], ["polyline", 3, 2]);
  const samples = lineIntersection.generate(12, 300, config(64, 8));
  const counts = new Map<string, number>();
  for (const s of samples) {
    counts.set(s.answer, (counts.get(s.answer) ?? 0) + 1);
    assert.deepStrictEqual((s.meta.points as Point[][]).map((c) => c.length), [3, 3]);
  }
  assert.deepStrictEqual([...counts.entries()].sort(), [["0", 100], ["1", 100], ["2", 100]]);
});

Deno.test("line-intersection: rendering varies: line width, anti-aliasing and colours", () => {
  assert.deepStrictEqual(lineWidthRange("auto", 64), [1, 3]);
  assert.deepStrictEqual(lineWidthRange("auto", 32), [1, 1.5]);
  assert.deepStrictEqual(lineWidthRange("auto", 16), [1, 1]);
  assert.deepStrictEqual(lineWidthRange(2, 64), [2, 2]);
  assert.deepStrictEqual(lineWidthRange([1.5, 2.5], 64), [1.5, 2.5]);
  const samples = lineIntersection.generate(13, 200, config(64, 8));
  const widths = samples.map((s) => s.meta.lineWidth as number);
  assert.ok(Math.min(...widths) < 1.2 && Math.max(...widths) > 2.8, `${widths}`);
  const smooth = samples.filter((s) => s.meta.antialias === true);
  const hard = samples.filter((s) => s.meta.antialias === false);
  assert.ok(smooth.length > 60 && hard.length > 60, `${smooth.length} ${hard.length}`);
  const pairs = samples.map((s) => [...(s.meta.colors as string[])].sort().join(" "));
  const benchmark = pairs.filter((p) => p === "blue red").length;
  assert.ok(benchmark > 80 && benchmark < 150, `${benchmark} red-and-blue of 200`);
  assert.ok(new Set(pairs).size >= 8, `${new Set(pairs).size} colour pairs`);
  // Without anti-aliasing every pixel is white or one of the two curve colours; with it,
  // edge pixels blend into the white.
  const levels = (s: (typeof samples)[0]) => {
    const found = new Set<string>();
    for (let p = 0; p < s.image.data.length; p += 3) {
      found.add([0, 1, 2].map((c) => s.image.data[p + c].toFixed(4)).join(","));
    }
    return found;
  };
  for (const s of hard.slice(0, 20)) {
    const allowed = new Set(
      ["white", ...(s.meta.colors as string[])].map((name) =>
        (name === "white" ? [1, 1, 1] : COLORS[name]).map((v) => v.toFixed(4)).join(",")
      ),
    );
    for (const l of levels(s)) assert.ok(allowed.has(l), `${l} in ${[...allowed]}`);
  }
  for (const s of smooth.slice(0, 20)) assert.ok(levels(s).size > 3);
  // Fixed settings: the benchmark's look.
  for (
    const s of lineIntersection.generate(
      14,
      30,
      config(64, 8, {
        line_width: 2,
        antialias: true,
        colors: "benchmark",
      }),
    )
  ) {
    assert.deepStrictEqual([...(s.meta.colors as string[])].sort(), ["blue", "red"]);
    assert.equal(s.meta.lineWidth, 2);
    assert.equal(s.meta.antialias, true);
  }
});

Deno.test("line-intersection: the map covers only the patches around the crossings", () => {
  // 64 px, patch 8: at most 4 patches per crossing hold 1% or more of the map's mass, and
  // each crossing's own patch holds mass.
  const patch = 8;
  let patches = 0;
  let crossings = 0;
  for (const s of lineIntersection.generate(15, 300, config(64, patch))) {
    const count = s.meta.count as number;
    if (count === 0) continue;
    const support = [...s.target].filter((v) => v >= 0.01).length;
    assert.ok(support <= 4 * count, `${support} patches for ${count} crossings`);
    for (const [x, y] of s.meta.intersections as Point[]) {
      const own = Math.floor(y / patch) * 8 + Math.floor(x / patch);
      assert.ok(s.target[own] > 0.1 / count, JSON.stringify(s.meta));
    }
    patches += support;
    crossings += count;
  }
  console.log(`line-intersection: ${(patches / crossings).toFixed(2)} patches per crossing`);
  // A fixed sigma_px sets the width in pixels: 6 px (0.75 patches) spreads wider.
  const wide = lineIntersection.generate(15, 30, config(64, patch, { sigma_px: 6 }));
  const spread = wide.filter((s) => s.meta.count === 1).map((s) =>
    [...s.target].filter((v) => v >= 0.01).length
  );
  assert.ok(Math.min(...spread) >= 4, `${spread}`);
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
  assert.equal(zeros.length, 200 / 3 + 1 / 3); // blocks of 3 answers: 67 zeros in 200
  for (const s of zeros) {
    const masks = polylinesOf(s).map((line) =>
      polylineMask(size, line, s.meta.lineWidth as number)
    );
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
  // One clean crossing, but one curve folds back right where the other curve's end
  // stops a pixel from it: a second overlap in the image, inside the same near stretch
  // (found at 128 px, width 2): rejected for the end that touches.
  const folded = curvePolyline("bezier", [[5.08, 108.85], [93.55, 68.73], [95.45, 86.83], [
    96.21,
    8.72,
  ]]);
  const ending = curvePolyline("bezier", [[19.44, 98.69], [36.49, 30.52], [37.42, 76.72], [
    96.6,
    78.86,
  ]]);
  const one = findCrossings(folded, ending);
  assert.equal(one.length, 1);
  assert.ok(!crossingsAreClean(folded, ending, one, 2, rulesFor(2)));
  // Gaussian mass over patches (32 px, patch 8: a 4 x 4 grid). A point at a patch's
  // centre with sigma 1 px: 4 sigma from every edge, all of it in that patch.
  const centre = gaussianPatchMass([[12, 12]], 32, 8, 1);
  assert.ok(Math.abs(centre[5] - 1) < 1e-6 && Math.abs(sum(centre) - 1) < 1e-6);
  // At a patch corner: a quarter in each of the four patches.
  const corner = gaussianPatchMass([[16, 16]], 32, 8, 1);
  for (const i of [5, 6, 9, 10]) assert.ok(Math.abs(corner[i] - 0.25) < 1e-6);
  // On an edge between two patches: half each.
  const edge = gaussianPatchMass([[12, 16]], 32, 8, 1);
  assert.ok(Math.abs(edge[5] - 0.5) < 1e-6 && Math.abs(edge[9] - 0.5) < 1e-6);
  // Sigma 3 px at a centre: 9.1% of each axis's mass beyond each edge, so the four side
  // neighbours hold 0.818 * 0.091 = 7.4% each and stay, the corners 0.8% and are cut.
  const wide = gaussianPatchMass([[12, 12]], 32, 8, 3);
  assert.deepStrictEqual([...wide.keys()].filter((i) => wide[i] > 0), [1, 4, 5, 6, 9]);
  assert.ok(Math.abs(wide[4] - wide[6]) < 1e-7 && Math.abs(wide[1] - wide[9]) < 1e-7);
  assert.ok(Math.abs(wide[4] / wide[5] - 0.0912 / 0.8176) < 1e-3);
  // Two crossings weigh equally, however their masses spread.
  const two = gaussianPatchMass([[12, 12], [16, 28]], 32, 8, 1);
  assert.ok(Math.abs(two[5] - 0.5) < 1e-6);
  assert.ok(Math.abs(two[13] - 0.25) < 1e-6 && Math.abs(two[14] - 0.25) < 1e-6);
  // Uniform over the patches a mask touches.
  const mask = new Uint8Array(16 * 16);
  mask[0] = 1;
  mask[15 * 16 + 15] = 1;
  assert.deepStrictEqual([...uniformOverMaskPatches(mask, 16, 8)], [0.5, 0, 0, 0.5]);
});

Deno.test("line-intersection: checkParams reports bad curve, points, max_count, line_width, ...", () => {
  const keys = (size: number, params: Record<string, unknown>) =>
    lineIntersection.checkParams(config(size, 8, params)).map((p) => p.key);
  assert.deepStrictEqual(keys(64, {}), []);
  assert.deepStrictEqual(keys(64, { curve: "bezier", points: 4, max_count: 3 }), []);
  assert.deepStrictEqual(keys(64, { curve: "spline" }), ["curve"]);
  assert.deepStrictEqual(keys(64, { points: 1 }), ["points"]);
  assert.deepStrictEqual(keys(64, { points: 2.5 }), ["points"]);
  assert.deepStrictEqual(keys(64, { max_count: 3 }), []);
  assert.deepStrictEqual(keys(64, { max_count: 4 }), ["max_count"]); // 3-point polylines: 3
  assert.deepStrictEqual(keys(64, { curve: "bezier", points: 3, max_count: 3 }), ["max_count"]);
  assert.deepStrictEqual(keys(64, { max_count: -1 }), ["max_count"]);
  assert.deepStrictEqual(keys(64, { line_width: 0 }), ["line_width"]);
  assert.deepStrictEqual(keys(64, { line_width: "thick" }), ["line_width"]);
  assert.deepStrictEqual(keys(64, { line_width: 3 }), []);
  assert.deepStrictEqual(keys(64, { line_width: [1, 3] }), []);
  assert.deepStrictEqual(keys(64, { line_width: [3, 1] }), ["line_width"]);
  assert.deepStrictEqual(keys(64, { line_width: [0, 2] }), ["line_width"]);
  assert.deepStrictEqual(keys(64, { line_width: [1, 2, 3] }), ["line_width"]);
  assert.deepStrictEqual(keys(64, { antialias: false }), []);
  assert.deepStrictEqual(keys(64, { antialias: "yes" }), ["antialias"]);
  assert.deepStrictEqual(keys(64, { colors: "benchmark" }), []);
  assert.deepStrictEqual(keys(64, { colors: "random" }), []);
  assert.deepStrictEqual(keys(64, { colors: ["red", "blue"] }), ["colors"]);
  assert.deepStrictEqual(keys(64, { sigma_px: 2.8 }), []);
  assert.deepStrictEqual(keys(64, { sigma_px: 0 }), ["sigma_px"]);
  assert.deepStrictEqual(keys(64, { sigma_px: 40 }), ["sigma_px"]); // at most 64 / 2
  // The width of the map is in pixels now: the old key in patches is gone (the spec
  // validator rejects keys a task does not list).
  assert.ok(!("sigma" in lineIntersection.defaultParams));
  assert.equal(lineIntersection.defaultParams.sigma_px, "auto");
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
