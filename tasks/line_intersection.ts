/**
 * Line Intersection (poster, "Data & Tasks"): two curves on white, "how many times do
 * the lines intersect ?", answered with a number word. Modelled on the BlindTest "line
 * intersection" benchmark: there, each image holds two 3-point polylines, one red and
 * one blue, drawn 2-4 px wide on a white 384 px canvas, and the answer is 0, 1 or 2. The
 * defaults follow it: two 3-point polylines, 0-2 crossings, balanced.
 *
 * Rendering varies from sample to sample, so that a model does not learn one look:
 *
 * - Line width (`line_width`). Scaled with the image, the benchmark's 2-4 px at 384 px
 *   (0.5-1% of the side) would be 0.33-0.67 px at 64 px: thinner than a pixel, a faint
 *   and broken trace once rasterised. Widths are therefore relative to the image with a
 *   floor of one pixel: "auto" draws each sample's width uniformly from
 *   [max(1, s / 64), max(1, 3 s / 64)] px for an image of s px, i.e. 1-3 px at 64 px
 *   (1.6-4.7% of the side) and 1-1.5 px at 32 px: from the thinnest stroke that stays
 *   solid to a few times that. A number fixes the width, [min, max] sets the range.
 * - Anti-aliasing (`antialias`): smooth edges, hard pixel edges, or "mixed" (each sample
 *   one or the other).
 * - Colours (`colors`): "benchmark" (one red and one blue curve), "random" (two distinct
 *   colours of red, green, blue, purple, orange, pink) or "mixed" (each sample one or
 *   the other).
 *
 * Each curve is the graph of a function of x (its control points have increasing x):
 * the polyline through them (`curve: polyline`) or the smooth quadratic Bézier spline
 * that follows them (`curve: bezier`; one quadratic Bézier for 3 points). Béziers are
 * flattened into fine polylines (`flattenQuadraticSpline`) and that same polyline is
 * both drawn and measured. The count is geometric: segment-segment intersections of
 * the two polylines (`findCrossings`). Samples whose count could be misread in the
 * image are rejected and redrawn: crossings at less than 15°, crossings closer than 1.5
 * line widths to each other or 2 line widths to an end of either curve, and places
 * where the curves come within 1.5 line widths of each other other than at exactly one
 * clean crossing (near-tangencies, touching ends, two crossings that would merge into
 * one blob).
 *
 * Answers are balanced: sample i is assigned a count from a seeded permutation of
 * 0..max_count per block of max_count + 1 samples, and redrawn until it has it.
 * Two graphs of functions of x cross an odd number of times exactly when their vertical
 * order differs at the two ends of their common x-range, so the curves' end points tell
 * the parity of the count (the benchmark's line plots share this): with 0-2 crossings,
 * "1" against "0 or 2". tests/shortcut_test.ts prints that rule's accuracy.
 *
 * Ground truth P: around each intersection, the mass of an isotropic Gaussian of
 * `sigma_px` pixels over each patch's area ("auto": half the sample's line width, so
 * 95% of it lies within one line width of the crossing, on the crossing's own ink);
 * patches holding less than 1% of a crossing's mass get none of it; the crossings weigh
 * equally; normalised. With σ below 1.7 px and patches of 8 px, each crossing covers at
 * most 2 x 2 patches. With no intersection the evidence for "0" is the curves
 * themselves: P is uniform over the patches that either curve's stroke touches.
 */

import type { ParamProblem, Sample, ShortcutRule, SyntheticTask, TaskConfig } from "./task.ts";
import { Rng, seedFrom } from "../pipeline/lib/rng.ts";
import {
  blankImage,
  COLORS,
  flattenQuadraticSpline,
  type Point,
  polylineDistance,
  strokePolyline,
  strokePolylineAliased,
} from "./draw.ts";
import { assertParams, exactMatch, perSample } from "./common.ts";
import { defineParams } from "../pipeline/lib/schema.ts";

/** Answers are the number words "0".."9". */
const MAX_COUNT = 9;
const MIN_IMAGE_SIZE = 16;
/** Palette colours that stand out on white (yellow and cyan are too light). */
const CURVE_COLORS = ["red", "green", "blue", "purple", "orange", "pink"] as const;
/** The benchmark's two curve colours. */
const BENCHMARK_COLORS = ["red", "blue"] as const;
/** Gives up on a sample after this many redraws (a count the settings cannot reach). */
const MAX_ATTEMPTS = 50_000;

/** When crossings stop being unambiguous; distances in line widths unless noted. */
export interface CrossingRules {
  /** Smallest crossing angle, degrees. */
  minAngle: number;
  /** Curves within this distance of each other must be at one clean crossing. */
  nearDistance: number;
  /** Smallest distance between two crossings. */
  minSeparation: number;
  /** Smallest distance from a crossing to an end of either curve (pixels, absolute). */
  minEndDistance: number;
}

interface LineIntersectionParams {
  curve: "polyline" | "bezier";
  points: number;
  max_count: number;
  line_width: number | [number, number] | "auto";
  antialias: boolean | "mixed";
  colors: "benchmark" | "random" | "mixed";
  sigma_px: number | "auto";
}

/** `task.params`, declared once: type, range, default and doc (docs/spec-keys.md). */
const PARAMS = defineParams({
  curve: {
    type: "enum",
    values: ["polyline", "bezier"],
    default: "polyline",
    doc: "polylines through the control points, or the quadratic Bézier spline along them",
  },
  points: { type: "int", min: 2, max: 8, default: 3, doc: "control points per curve" },
  max_count: {
    type: "int",
    min: 0,
    max: MAX_COUNT,
    default: 2,
    doc: "largest count asked (balanced 0..max_count); at most what the curves reach " +
      "(polyline: min(2 points - 3, points), bezier: points - 1)",
  },
  line_width: {
    type: "union",
    options: [
      { type: "enum", values: ["auto"] },
      { type: "number", min: 0.5, unit: "pixels" },
      { type: "list", items: { type: "number", min: 0.5 }, minItems: 2, maxItems: 2 },
    ],
    default: "auto",
    doc: "stroke width: a number, a range [min, max], or auto (1-3 px at 64 px); at most " +
      "image_size / 8",
  },
  antialias: {
    type: "union",
    options: [{ type: "bool" }, { type: "enum", values: ["mixed"] }],
    default: "mixed",
    doc: "smooth edges, hard pixel edges, or mixed (each sample one or the other)",
  },
  colors: {
    type: "enum",
    values: ["benchmark", "random", "mixed"],
    default: "mixed",
    doc: "one red and one blue curve, two random distinct colours, or mixed",
  },
  sigma_px: {
    type: "union",
    options: [{ type: "enum", values: ["auto"] }, { type: "number", min: 0.25, unit: "pixels" }],
    default: "auto",
    doc: "Gaussian sigma of the map at each crossing (auto: half the line width); at most " +
      "image_size / 2",
  },
}, crossRules);

const DEFAULT_PARAMS = structuredClone(PARAMS.defaultParams) as unknown as LineIntersectionParams;

function paramsOf(config: TaskConfig): LineIntersectionParams {
  return { ...DEFAULT_PARAMS, ...config.params } as LineIntersectionParams;
}

/**
 * A single stroke width in pixels: `line_width`, or max(1, round(image_size / 32)) for
 * "auto" (Line Tracing's width; this task draws widths from `lineWidthRange`).
 */
export function lineWidthOf(lineWidth: number | "auto", imageSize: number): number {
  return lineWidth === "auto" ? Math.max(1, Math.round(imageSize / 32)) : lineWidth;
}

/**
 * The range each sample's stroke width is drawn from, px: a number is fixed, a pair is
 * [min, max], "auto" is [max(1, image_size / 64), max(1, 3 * image_size / 64)].
 */
export function lineWidthRange(
  lineWidth: number | [number, number] | "auto",
  imageSize: number,
): [number, number] {
  if (lineWidth === "auto") {
    return [Math.max(1, imageSize / 64), Math.max(1, (3 * imageSize) / 64)];
  }
  return typeof lineWidth === "number" ? [lineWidth, lineWidth] : [lineWidth[0], lineWidth[1]];
}

/**
 * The largest count `max_count` may ask for. Two x-monotone polylines of `points`
 * vertices cross at most 2 * points - 3 times (once per piece between merged x
 * breakpoints); the clean-crossing rules make the top of that range very rare, so the
 * bound is what a 64 px image reaches at least once in ~10^4 draws: min(2p - 3, p) for
 * polylines, p - 1 for the smoother splines.
 */
export function maxReachableCount(curve: string, points: number): number {
  return curve === "bezier" ? points - 1 : Math.min(2 * points - 3, points);
}

/**
 * Rules between the parameters and with the image size (each field checks its own type and
 * range): a count the curves reach, widths and sigma that fit the image.
 */
function crossRules(config: TaskConfig, invalid: ReadonlySet<string>): ParamProblem[] {
  const p = paramsOf(config);
  const { curve, points, max_count: maxCount, line_width: lineWidth } = p;
  const size = config.imageSize;
  const problems: ParamProblem[] = [];
  const reach = invalid.has("curve") || invalid.has("points")
    ? MAX_COUNT
    : Math.min(MAX_COUNT, maxReachableCount(curve, points));
  if (!invalid.has("max_count") && maxCount > reach) {
    problems.push({
      key: "max_count",
      expected: `an integer from 0 to ${reach} (clean crossings of ${curve} curves of ${points} ` +
        `points reach at most ${reach})`,
      found: maxCount,
    });
  }
  const widest = size / 8;
  const widths = lineWidth === "auto"
    ? []
    : typeof lineWidth === "number"
    ? [lineWidth]
    : lineWidth;
  const ordered = widths.length < 2 || widths[0] <= widths[1];
  if (!invalid.has("line_width") && (widths.some((w) => w > widest) || !ordered)) {
    problems.push({
      key: "line_width",
      expected: `"auto", a number of pixels from 0.5 to image_size / 8 = ${widest}, ` +
        `or a range [min, max] of such numbers`,
      found: lineWidth,
    });
  }
  const sigma = p.sigma_px;
  if (!invalid.has("sigma_px") && sigma !== "auto" && sigma > size / 2) {
    problems.push({
      key: "sigma_px",
      expected: `"auto" or a number of pixels from 0.25 to image_size / 2 = ${size / 2}`,
      found: sigma,
    });
  }
  if (size < MIN_IMAGE_SIZE) {
    problems.push({
      key: "image_size",
      expected: `at least ${MIN_IMAGE_SIZE} px for line-intersection`,
      found: size,
    });
  }
  return problems;
}

// ---------------------------------------------------------------- geometry

/** Where two polylines cross: the point, the angle (radians, 0..pi/2), and each one's parameter. */
export interface Crossing {
  x: number;
  y: number;
  angle: number;
  /** Position along the first polyline: segment index + fraction. */
  ua: number;
  /** Position along the second polyline. */
  ub: number;
}

/** Segments per bounding box in `chunkBoxes`. */
const CHUNK = 8;
/** A box that overlaps everything: stands for the whole of a polyline of one chunk. */
const ONE_CHUNK = new Float64Array([-Infinity, Infinity, -Infinity, Infinity]);

/**
 * Bounding boxes of runs of CHUNK consecutive segments of `line`, 4 numbers each
 * (minX, maxX, minY, maxY): segment pairs whose runs' boxes are apart are skipped whole.
 */
function chunkBoxes(line: readonly Point[]): Float64Array {
  const segments = line.length - 1;
  const boxes = new Float64Array(4 * Math.ceil(segments / CHUNK));
  for (let k = 0; k * CHUNK < segments; k++) {
    let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    for (let v = k * CHUNK; v <= Math.min(segments, (k + 1) * CHUNK); v++) {
      minX = Math.min(minX, line[v][0]);
      maxX = Math.max(maxX, line[v][0]);
      minY = Math.min(minY, line[v][1]);
      maxY = Math.max(maxY, line[v][1]);
    }
    boxes[4 * k] = minX;
    boxes[4 * k + 1] = maxX;
    boxes[4 * k + 2] = minY;
    boxes[4 * k + 3] = maxY;
  }
  return boxes;
}

/**
 * Calls `visit(i, j)` for the segment pairs of `a` and `b` whose bounding boxes come
 * within `distance` of each other.
 */
function forNearSegmentPairs(
  a: readonly Point[],
  b: readonly Point[],
  distance: number,
  visit: (i: number, j: number) => void,
): void {
  const segmentsB = b.length - 1;
  // One chunk needs no boxes (short polylines, the common case when counting).
  const boxes = segmentsB <= CHUNK ? ONE_CHUNK : chunkBoxes(b);
  for (let i = 0; i + 1 < a.length; i++) {
    const minX = Math.min(a[i][0], a[i + 1][0]) - distance;
    const maxX = Math.max(a[i][0], a[i + 1][0]) + distance;
    const minY = Math.min(a[i][1], a[i + 1][1]) - distance;
    const maxY = Math.max(a[i][1], a[i + 1][1]) + distance;
    for (let k = 0; k < boxes.length / 4; k++) {
      if (boxes[4 * k + 1] < minX || boxes[4 * k] > maxX) continue;
      if (boxes[4 * k + 3] < minY || boxes[4 * k + 2] > maxY) continue;
      for (let j = k * CHUNK; j < Math.min(segmentsB, (k + 1) * CHUNK); j++) {
        const [cx, cy] = b[j];
        const [dx, dy] = b[j + 1];
        if (Math.max(cx, dx) < minX || Math.min(cx, dx) > maxX) continue;
        if (Math.max(cy, dy) < minY || Math.min(cy, dy) > maxY) continue;
        visit(i, j);
      }
    }
  }
}

/**
 * Segment-segment crossings of polylines `a` and `b`. Each segment is half-open (its end
 * belongs to the next segment, except the last), so a crossing at a vertex counts once.
 * Parallel overlapping segments are not crossings (the rules reject them as touching).
 */
export function findCrossings(a: readonly Point[], b: readonly Point[]): Crossing[] {
  const out: Crossing[] = [];
  const lastA = a.length - 2;
  const lastB = b.length - 2;
  forNearSegmentPairs(a, b, 0, (i, j) => {
    const [ax, ay] = a[i];
    const rx = a[i + 1][0] - ax;
    const ry = a[i + 1][1] - ay;
    const [cx, cy] = b[j];
    const sx = b[j + 1][0] - cx;
    const sy = b[j + 1][1] - cy;
    const denom = rx * sy - ry * sx;
    if (denom === 0) return;
    const t = ((cx - ax) * sy - (cy - ay) * sx) / denom;
    const u = ((cx - ax) * ry - (cy - ay) * rx) / denom;
    if (t < 0 || u < 0 || (i < lastA ? t >= 1 : t > 1) || (j < lastB ? u >= 1 : u > 1)) return;
    const cos = Math.abs(rx * sx + ry * sy) / (Math.hypot(rx, ry) * Math.hypot(sx, sy));
    out.push({
      x: ax + t * rx,
      y: ay + t * ry,
      angle: Math.acos(Math.min(1, cos)),
      ua: i + t,
      ub: j + u,
    });
  });
  return out;
}

/** True when polyline `line` crosses itself (two non-adjacent segments intersect). */
export function crossesItself(line: readonly Point[]): boolean {
  let crosses = false;
  forNearSegmentPairs(line, line, 0, (i, j) => {
    if (crosses || j < i + 2) return;
    const [ax, ay] = line[i];
    const rx = line[i + 1][0] - ax;
    const ry = line[i + 1][1] - ay;
    const [cx, cy] = line[j];
    const sx = line[j + 1][0] - cx;
    const sy = line[j + 1][1] - cy;
    const denom = rx * sy - ry * sx;
    if (denom === 0) return;
    const t = ((cx - ax) * sy - (cy - ay) * sx) / denom;
    const u = ((cx - ax) * ry - (cy - ay) * rx) / denom;
    crosses = t >= 0 && t <= 1 && u >= 0 && u <= 1;
  });
  return crosses;
}

/** Narrows `range` to the t where lo <= alpha + beta t <= hi; false when it empties. */
function clipLinear(
  alpha: number,
  beta: number,
  lo: number,
  hi: number,
  range: [number, number],
): boolean {
  if (Math.abs(beta) < 1e-12) return alpha >= lo && alpha <= hi;
  let t0 = (lo - alpha) / beta;
  let t1 = (hi - alpha) / beta;
  if (t0 > t1) [t0, t1] = [t1, t0];
  range[0] = Math.max(range[0], t0);
  range[1] = Math.min(range[1], t1);
  return range[0] <= range[1];
}

/**
 * The parameters t in [0, 1] for which p0 + t (p1 - p0) is within `radius` of segment
 * q0-q1: one interval (the capsule around q0-q1 is convex), or null.
 */
export function capsuleInterval(
  p0: Point,
  p1: Point,
  q0: Point,
  q1: Point,
  radius: number,
): [number, number] | null {
  const dx = p1[0] - p0[0];
  const dy = p1[1] - p0[1];
  let lo = Infinity;
  let hi = -Infinity;
  const add = (t0: number, t1: number) => {
    t0 = Math.max(0, t0);
    t1 = Math.min(1, t1);
    if (t0 <= t1) {
      lo = Math.min(lo, t0);
      hi = Math.max(hi, t1);
    }
  };
  // The two end discs.
  const dd = dx * dx + dy * dy;
  for (const c of [q0, q1]) {
    const ox = p0[0] - c[0];
    const oy = p0[1] - c[1];
    const cc = ox * ox + oy * oy - radius * radius;
    if (dd === 0) {
      if (cc <= 0) add(0, 1);
      continue;
    }
    const bb = 2 * (ox * dx + oy * dy);
    const disc = bb * bb - 4 * dd * cc;
    if (disc < 0) continue;
    const root = Math.sqrt(disc);
    add((-bb - root) / (2 * dd), (-bb + root) / (2 * dd));
  }
  // The rectangle between them.
  const ex = q1[0] - q0[0];
  const ey = q1[1] - q0[1];
  const len = Math.hypot(ex, ey);
  if (len > 0) {
    const ux = ex / len;
    const uy = ey / len;
    const ox = p0[0] - q0[0];
    const oy = p0[1] - q0[1];
    const range: [number, number] = [0, 1];
    if (
      clipLinear(ox * ux + oy * uy, dx * ux + dy * uy, 0, len, range) &&
      clipLinear(-ox * uy + oy * ux, -dx * uy + dy * ux, -radius, radius, range)
    ) {
      add(range[0], range[1]);
    }
  }
  return lo <= hi ? [lo, hi] : null;
}

/**
 * The stretches of polyline `a` (as [start, end] positions: segment index + fraction)
 * that lie within `distance` of polyline `b`, merged and sorted.
 */
export function nearStretches(
  a: readonly Point[],
  b: readonly Point[],
  distance: number,
): [number, number][] {
  const pieces: [number, number][] = [];
  forNearSegmentPairs(a, b, distance, (i, j) => {
    const range = capsuleInterval(a[i], a[i + 1], b[j], b[j + 1], distance);
    if (range) pieces.push([i + range[0], i + range[1]]);
  });
  pieces.sort((p, q) => p[0] - q[0]);
  const merged: [number, number][] = [];
  for (const piece of pieces) {
    const last = merged[merged.length - 1];
    if (last && piece[0] <= last[1] + 1e-9) last[1] = Math.max(last[1], piece[1]);
    else merged.push([piece[0], piece[1]]);
  }
  return merged;
}

/** Arc length of polyline `a` between positions u0 <= u1 (segment index + fraction). */
function arcLength(a: readonly Point[], u0: number, u1: number): number {
  let total = 0;
  for (let i = Math.floor(u0); i < Math.min(a.length - 1, Math.ceil(u1)); i++) {
    const from = Math.max(u0, i);
    const to = Math.min(u1, i + 1);
    if (to > from) total += (to - from) * Math.hypot(a[i + 1][0] - a[i][0], a[i + 1][1] - a[i][1]);
  }
  return total;
}

/**
 * True when every crossing of `a` and `b` is unambiguous at `lineWidth` (see
 * CrossingRules): steep enough, apart from each other and from the curves' ends, no end
 * of either curve near the other curve (a touching end reads as a crossing, even where
 * it lies within the near stretch of a true crossing, beyond a fold of the other curve),
 * and every stretch where the curves come near each other holds exactly one crossing and
 * is no longer than a straight crossing at that angle would make it.
 */
export function crossingsAreClean(
  a: readonly Point[],
  b: readonly Point[],
  crossings: readonly Crossing[],
  lineWidth: number,
  rules: CrossingRules,
): boolean {
  const minAngle = (rules.minAngle * Math.PI) / 180;
  const separation = rules.minSeparation * lineWidth;
  const ends = [a[0], a[a.length - 1], b[0], b[b.length - 1]];
  for (let k = 0; k < crossings.length; k++) {
    const c = crossings[k];
    if (c.angle < minAngle) return false;
    for (const e of ends) {
      if (Math.hypot(c.x - e[0], c.y - e[1]) < rules.minEndDistance) return false;
    }
    for (let m = 0; m < k; m++) {
      if (Math.hypot(c.x - crossings[m].x, c.y - crossings[m].y) < separation) return false;
    }
  }
  const near = rules.nearDistance * lineWidth;
  for (const [line, other] of [[a, b], [b, a]]) {
    for (const e of [line[0], line[line.length - 1]]) {
      if (polylineDistance(e, other) < near) return false;
    }
  }
  for (const [line, other, at] of [[a, b, "ua"], [b, a, "ub"]] as const) {
    for (const [u0, u1] of nearStretches(line, other, near)) {
      const inside = crossings.filter((c) => c[at] >= u0 && c[at] <= u1);
      if (inside.length !== 1) return false;
      // A straight crossing at angle θ is near for 2 * near / sin θ; much longer means
      // the curves run alongside each other.
      const expected = (2 * near) / Math.sin(inside[0].angle);
      if (arcLength(line, u0, u1) > 1.5 * expected + lineWidth) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------- ground truth

/** The standard normal CDF (erf by Abramowitz and Stegun 7.1.26, error below 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly = t *
    (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/**
 * The ground truth around `points` (pixels) on a size / patch grid: for each point, the
 * mass of an isotropic Gaussian of `sigmaPx` pixels over each patch's area (the part
 * inside the image), patches below 1% of that point's mass set to 0, renormalised; the
 * points weigh equally; the sum normalised to 1.
 */
export function gaussianPatchMass(
  points: readonly Point[],
  size: number,
  patch: number,
  sigmaPx: number,
): Float32Array {
  if (points.length === 0) throw new Error("Expected at least one point for a Gaussian target");
  const g = size / patch;
  const total = new Float64Array(g * g);
  const one = new Float64Array(g * g);
  const along = (centre: number) =>
    Array.from(
      { length: g },
      (_, k) =>
        normalCdf(((k + 1) * patch - centre) / sigmaPx) - normalCdf((k * patch - centre) / sigmaPx),
    );
  for (const [x, y] of points) {
    const mx = along(x);
    const my = along(y);
    let sum = 0;
    for (let r = 0; r < g; r++) {
      for (let c = 0; c < g; c++) {
        one[r * g + c] = my[r] * mx[c];
        sum += one[r * g + c];
      }
    }
    // 1% of the point's mass, but never the largest patch (a very wide Gaussian).
    const cut = Math.min(0.01 * sum, Math.max(...one));
    let kept = 0;
    for (let i = 0; i < one.length; i++) {
      if (one[i] < cut) one[i] = 0;
      kept += one[i];
    }
    for (let i = 0; i < one.length; i++) total[i] += one[i] / kept;
  }
  return Float32Array.from(total, (v) => v / points.length);
}

/** Uniform over the patches holding at least one pixel of `mask` (row-major, size * size). */
export function uniformOverMaskPatches(
  mask: Uint8Array,
  size: number,
  patch: number,
): Float32Array {
  const g = size / patch;
  const hit = new Uint8Array(g * g);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (mask[y * size + x]) hit[Math.floor(y / patch) * g + Math.floor(x / patch)] = 1;
    }
  }
  const count = hit.reduce((s, v) => s + v, 0);
  if (count === 0) throw new Error("Expected a mask covering at least one pixel, got none");
  return Float32Array.from(hit, (v) => v / count);
}

// ---------------------------------------------------------------- generator

/** The rules this task uses (exported for tests). */
export function rulesFor(lineWidth: number): CrossingRules {
  return { minAngle: 15, nearDistance: 1.5, minSeparation: 1.5, minEndDistance: 2 * lineWidth };
}

/** Rounds to 1/100 px, so the control points stored in meta redraw the same image. */
function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

/**
 * Control points of one curve into `xs`, `ys` (length = points): increasing x (first in
 * the left quarter, last in the right quarter of the drawable span), random y.
 */
function randomControlPoints(
  rng: Rng,
  xs: Float64Array,
  ys: Float64Array,
  lo: number,
  hi: number,
): void {
  const span = hi - lo;
  const n = xs.length;
  xs[0] = rng.uniform(lo, lo + span / 4);
  xs[n - 1] = rng.uniform(hi - span / 4, hi);
  for (let k = 1; k < n - 1; k++) xs[k] = rng.uniform(xs[0], xs[n - 1]);
  xs.sort();
  for (let k = 0; k < n; k++) ys[k] = rng.uniform(lo, hi);
}

/**
 * Number of crossings of two polylines given as coordinate arrays: the same count as
 * `findCrossings` gives (half-open segments), without allocating; for cheap rejection.
 */
function countCrossings(
  ax: Float64Array,
  ay: Float64Array,
  bx: Float64Array,
  by: Float64Array,
): number {
  let count = 0;
  const lastA = ax.length - 2;
  const lastB = bx.length - 2;
  for (let i = 0; i <= lastA; i++) {
    const rx = ax[i + 1] - ax[i];
    const ry = ay[i + 1] - ay[i];
    for (let j = 0; j <= lastB; j++) {
      const sx = bx[j + 1] - bx[j];
      const sy = by[j + 1] - by[j];
      const denom = rx * sy - ry * sx;
      if (denom === 0) continue;
      const qx = bx[j] - ax[i];
      const qy = by[j] - ay[i];
      const t = (qx * sy - qy * sx) / denom;
      const u = (qx * ry - qy * rx) / denom;
      if (t < 0 || u < 0 || (i < lastA ? t >= 1 : t > 1) || (j < lastB ? u >= 1 : u > 1)) continue;
      count++;
    }
  }
  return count;
}

/** The polyline that is drawn and measured for a curve's control points. */
export function curvePolyline(curve: string, control: readonly Point[]): Point[] {
  return curve === "bezier" ? flattenQuadraticSpline(control) : [...control];
}

/** The count sample i must have: per block of max_count + 1, a seeded permutation. */
function assignedCount(seed: number, i: number, maxCount: number): number {
  const buckets = maxCount + 1;
  const block = Math.floor(i / buckets);
  const order = new Rng(seedFrom("line-intersection", "counts", seed, block)).sample(
    buckets,
    buckets,
  );
  return order[i % buckets];
}

/** One sample's rendering: stroke width, anti-aliasing and colours. */
interface Rendering {
  lineWidth: number;
  antialias: boolean;
  colors: [string, string];
}

/** Draws one sample's rendering from the params' ranges. */
function drawRendering(rng: Rng, size: number, params: LineIntersectionParams): Rendering {
  const [lo, hi] = lineWidthRange(params.line_width, size);
  const lineWidth = round2(lo === hi ? lo : rng.uniform(lo, hi));
  const antialias = params.antialias === "mixed" ? rng.next() < 0.5 : params.antialias;
  const benchmark = params.colors === "mixed" ? rng.next() < 0.5 : params.colors === "benchmark";
  const palette: readonly string[] = benchmark ? BENCHMARK_COLORS : CURVE_COLORS;
  const [a, b] = rng.sample(palette.length, 2);
  return { lineWidth, antialias, colors: [palette[a], palette[b]] };
}

function generateOne(
  rng: Rng,
  count: number,
  config: TaskConfig,
  params: LineIntersectionParams,
): Sample {
  const size = config.imageSize;
  const rendering = drawRendering(rng, size, params);
  const { lineWidth } = rendering;
  const sigmaPx = params.sigma_px === "auto" ? lineWidth / 2 : params.sigma_px;
  const margin = lineWidth + 1;
  const rules = rulesFor(lineWidth);
  const xs = [0, 1].map(() => new Float64Array(params.points));
  const ys = [0, 1].map(() => new Float64Array(params.points));
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    randomControlPoints(rng, xs[0], ys[0], margin, size - margin);
    randomControlPoints(rng, xs[1], ys[1], margin, size - margin);
    // Most draws have the wrong count: reject those before rounding, without allocating;
    // then measure exactly the rounded points that meta records.
    if (params.curve === "polyline" && countCrossings(xs[0], ys[0], xs[1], ys[1]) !== count) {
      continue;
    }
    const controls = [0, 1].map((k) =>
      Array.from(xs[k], (x, v) => [round2(x), round2(ys[k][v])] as Point)
    );
    const lines = controls.map((c) => curvePolyline(params.curve, c));
    const crossings = findCrossings(lines[0], lines[1]);
    if (crossings.length !== count) continue;
    if (!crossingsAreClean(lines[0], lines[1], crossings, lineWidth, rules)) continue;

    const image = blankImage(size, [1, 1, 1]);
    const mask = new Uint8Array(size * size);
    const stroke = rendering.antialias ? strokePolyline : strokePolylineAliased;
    for (let k = 0; k < 2; k++) {
      stroke(image, lines[k], lineWidth, COLORS[rendering.colors[k]], mask);
    }
    const points = crossings.map((c) => [c.x, c.y] as Point);
    return {
      image,
      prompt: "how many times do the lines intersect ?",
      answer: String(count),
      target: count > 0
        ? gaussianPatchMass(points, size, config.patchSize, sigmaPx)
        : uniformOverMaskPatches(mask, size, config.patchSize),
      meta: {
        difficulty: `${count} crossings`,
        count,
        curve: params.curve,
        points: controls,
        intersections: points.map(([x, y]) => [round2(x), round2(y)]),
        colors: rendering.colors,
        lineWidth,
        antialias: rendering.antialias,
        sigmaPx,
      },
    };
  }
  throw new Error(
    `line-intersection: no clean sample with ${count} crossings in ${MAX_ATTEMPTS} attempts ` +
      `(${params.curve}, ${params.points} points); lower max_count or raise points`,
  );
}

/**
 * The parity shortcut: two graphs of functions of x swap their vertical order an odd number
 * of times exactly when they cross an odd number of times, so whether the curves' end points
 * swap order tells "1" from "0 or 2" without finding a crossing (BlindTest's plots share
 * this). +1: the same order at both ends, -1: swapped.
 */
export const PARITY_SHORTCUT: ShortcutRule = {
  name: "the curves' end points swap order (parity)",
  feature(sample) {
    const [a, b] = sample.meta.points as Point[][];
    return Math.sign(a[0][1] - b[0][1]) * Math.sign(a[a.length - 1][1] - b[b.length - 1][1]);
  },
};

/** The Line Intersection task: count the crossings of two coloured curves. */
export const lineIntersection: SyntheticTask = {
  name: "line-intersection",
  version: "2",
  vocabulary: [
    "how",
    "many",
    "times",
    "do",
    "the",
    "lines",
    "intersect",
    "?",
    ...Array.from({ length: MAX_COUNT + 1 }, (_, i) => String(i)),
  ],
  paramSchema: PARAMS.paramSchema,
  defaultParams: PARAMS.defaultParams,
  checkParams: PARAMS.checkParams,
  generate(seed: number, n: number, config: TaskConfig): Sample[] {
    assertParams("line-intersection", PARAMS.checkParams(config));
    const params = paramsOf(config);
    return perSample(
      "line-intersection",
      seed,
      n,
      (rng, i) => generateOne(rng, assignedCount(seed, i, params.max_count), config, params),
    );
  },
  score: exactMatch,
  shortcuts: [PARITY_SHORTCUT],
};
