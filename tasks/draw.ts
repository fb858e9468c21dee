/**
 * Small raster helpers shared by the synthetic tasks: plain Float32Array RGB images
 * (HWC, values in [0, 1]) drawn in pure TypeScript, and the conversion of drawn
 * regions into a ground-truth distribution over the patch grid.
 */

import type { RgbImage } from "./task.ts";
import type { Rng } from "../pipeline/lib/rng.ts";

/** An RGB colour, each channel in [0, 1]. */
export type Rgb = readonly [number, number, number];

/** An axis-aligned rectangle in pixels: columns [x, x + w), rows [y, y + h). */
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * Named, well-separated colours (every pair differs by >= 0.4 in some channel, and each
 * by >= 0.5 from the light background), so a pixel's colour survives small noise.
 * Insertion order matters: tasks default to the first few names.
 */
export const COLORS: Readonly<Record<string, Rgb>> = {
  red: [0.9, 0.1, 0.1],
  green: [0.1, 0.7, 0.2],
  blue: [0.1, 0.25, 0.9],
  yellow: [0.95, 0.9, 0.1],
  purple: [0.55, 0.15, 0.75],
  orange: [1.0, 0.5, 0.0],
  cyan: [0.1, 0.8, 0.85],
  pink: [1.0, 0.45, 0.75],
};

/** Every palette name, in palette order. */
export const COLOR_NAMES: readonly string[] = Object.keys(COLORS);

/** The near-white background both tasks draw on before adding noise. */
export const LIGHT_BACKGROUND: Rgb = [0.95, 0.95, 0.95];

/** A `size` x `size` image filled with one colour. */
export function blankImage(size: number, rgb: Rgb): RgbImage {
  const data = new Float32Array(size * size * 3); // [H, W, 3]
  for (let i = 0; i < data.length; i += 3) {
    data[i] = rgb[0];
    data[i + 1] = rgb[1];
    data[i + 2] = rgb[2];
  }
  return { width: size, height: size, data };
}

/**
 * Paints the integer-pixel rectangle `rect` (clipped to the image); when `mask`
 * (length width * height, row-major) is given, marks the painted pixels in it too.
 */
export function fillRect(img: RgbImage, rect: Rect, rgb: Rgb, mask?: Uint8Array): void {
  const x0 = Math.max(0, Math.round(rect.x));
  const y0 = Math.max(0, Math.round(rect.y));
  const x1 = Math.min(img.width, Math.round(rect.x + rect.w));
  const y1 = Math.min(img.height, Math.round(rect.y + rect.h));
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const p = y * img.width + x;
      img.data[3 * p] = rgb[0];
      img.data[3 * p + 1] = rgb[1];
      img.data[3 * p + 2] = rgb[2];
      if (mask) mask[p] = 1;
    }
  }
}

/**
 * Paints every pixel whose centre lies within `radius` of (cx, cy) (pixel units, the
 * image's top-left corner is (0, 0)); marks them in `mask` when given.
 */
export function fillCircle(
  img: RgbImage,
  cx: number,
  cy: number,
  radius: number,
  rgb: Rgb,
  mask?: Uint8Array,
): void {
  const r2 = radius * radius;
  const x0 = Math.max(0, Math.floor(cx - radius));
  const y0 = Math.max(0, Math.floor(cy - radius));
  const x1 = Math.min(img.width - 1, Math.ceil(cx + radius));
  const y1 = Math.min(img.height - 1, Math.ceil(cy + radius));
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx;
      if (dx * dx + dy * dy > r2) continue;
      const p = y * img.width + x;
      img.data[3 * p] = rgb[0];
      img.data[3 * p + 1] = rgb[1];
      img.data[3 * p + 2] = rgb[2];
      if (mask) mask[p] = 1;
    }
  }
}

/** Adds independent uniform noise in [-amount, amount] to every channel, clamped to [0, 1]. */
export function addNoise(img: RgbImage, rng: Rng, amount: number): void {
  if (amount <= 0) return;
  const data = img.data;
  const step = (2 * amount) / 1024;
  for (let i = 0; i < data.length; i += 3) {
    // One 32-bit draw gives three 10-bit channel offsets (3x fewer draws; the noise is
    // uniform on 1024 levels, far finer than any model can see).
    const bits = Math.floor(rng.next() * 4294967296);
    for (let c = 0; c < 3; c++) {
      const level = (bits >>> (10 * c)) & 1023; // 0..1023
      const v = data[i + c] + (level + 0.5) * step - amount;
      data[i + c] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
}

/** Divides `mass` in place by its sum; throws when the sum is not positive. */
function normalise(mass: Float32Array): Float32Array {
  let total = 0;
  for (const m of mass) total += m;
  if (!(total > 0)) throw new Error("Expected a region covering at least one pixel, got none");
  for (let i = 0; i < mass.length; i++) mass[i] /= total;
  return mass;
}

/** Patches per image side; throws unless `patch` divides `size`. */
function patchesPerSide(size: number, patch: number): number {
  if (!(patch > 0) || size % patch !== 0) {
    throw new Error(`Expected the patch size to divide the image size ${size}, got ${patch}`);
  }
  return size / patch;
}

/** The uniform distribution over the patch grid: length (size / patch)^2. */
export function uniformTarget(size: number, patch: number): Float32Array {
  const g = patchesPerSide(size, patch);
  return new Float32Array(g * g).fill(1 / (g * g));
}

/**
 * The distribution over the patch grid (row-major, length (size / patch)^2) whose mass
 * on each patch is proportional to the area of `rect` inside it.
 */
export function patchMassOfRect(size: number, patch: number, rect: Rect): Float32Array {
  const g = patchesPerSide(size, patch);
  const mass = new Float32Array(g * g);
  const overlap = (lo: number, len: number, p: number) =>
    Math.max(0, Math.min(lo + len, (p + 1) * patch) - Math.max(lo, p * patch));
  for (let py = 0; py < g; py++) {
    const oy = overlap(rect.y, rect.h, py);
    if (oy === 0) continue;
    for (let px = 0; px < g; px++) {
      mass[py * g + px] = (oy * overlap(rect.x, rect.w, px)) / (patch * patch);
    }
  }
  return normalise(mass);
}

/**
 * The distribution over the patch grid whose mass on each patch is proportional to the
 * fraction of its pixels set in `mask` (row-major, length size * size).
 */
export function targetFromMask(mask: Uint8Array, size: number, patch: number): Float32Array {
  const g = patchesPerSide(size, patch);
  if (mask.length !== size * size) {
    throw new Error(`Expected a mask of ${size * size} pixels, got ${mask.length}`);
  }
  const mass = new Float32Array(g * g);
  for (let y = 0; y < size; y++) {
    const row = Math.floor(y / patch) * g;
    for (let x = 0; x < size; x++) {
      if (mask[y * size + x]) mass[row + Math.floor(x / patch)] += 1;
    }
  }
  for (let i = 0; i < mass.length; i++) mass[i] /= patch * patch;
  return normalise(mass);
}

/**
 * Checks a `colors` task parameter: a list of distinct palette names, at least
 * `minCount` of them. Returns what was expected when it is not, else null.
 */
export function colorListProblem(value: unknown, minCount: number): string | null {
  const expected = `a list of at least ${minCount} distinct colour names from ${
    COLOR_NAMES.join(", ")
  }`;
  if (!Array.isArray(value) || value.length < minCount) return expected;
  if (value.some((c) => typeof c !== "string" || !Object.hasOwn(COLORS, c))) return expected;
  if (new Set(value).size !== value.length) return expected;
  return null;
}

// ---------------------------------------------------------------- curves and text

/** A point in pixel coordinates, `[x, y]`; the image's top-left corner is (0, 0). */
export type Point = readonly [number, number];

/** Squared distance from (px, py) to the segment (ax, ay)-(bx, by). */
export function segmentDistanceSquared(
  px: number,
  py: number,
  ax: number,
  ay: number,
  bx: number,
  by: number,
): number {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  let t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  const ex = ax + t * dx - px;
  const ey = ay + t * dy - py;
  return ex * ex + ey * ey;
}

/** Distance from `p` to the polyline `points` (a single point when it has one vertex). */
export function polylineDistance(p: Point, points: readonly Point[]): number {
  let best = Infinity;
  if (points.length === 1) {
    best = segmentDistanceSquared(
      p[0],
      p[1],
      points[0][0],
      points[0][1],
      points[0][0],
      points[0][1],
    );
  }
  for (let i = 0; i + 1 < points.length; i++) {
    const [ax, ay] = points[i];
    const [bx, by] = points[i + 1];
    best = Math.min(best, segmentDistanceSquared(p[0], p[1], ax, ay, bx, by));
  }
  return Math.sqrt(best);
}

/** Total length of a polyline in pixels. */
export function polylineLength(points: readonly Point[]): number {
  let total = 0;
  for (let i = 0; i + 1 < points.length; i++) {
    total += Math.hypot(points[i + 1][0] - points[i][0], points[i + 1][1] - points[i][1]);
  }
  return total;
}

/**
 * The Bézier curve with these control points (any degree >= 1), flattened into a
 * polyline of equal parameter steps, about `step` px apart (at least 8 segments).
 * Tasks draw and measure a curve with the same flattening, so what is counted is what
 * is drawn.
 */
export function flattenBezier(control: readonly Point[], step = 2): Point[] {
  if (control.length < 2) {
    throw new Error(`Expected at least 2 control points, got ${control.length}`);
  }
  const segments = Math.max(8, Math.ceil(polylineLength(control) / step));
  const out: Point[] = [];
  const xs = new Float64Array(control.length);
  const ys = new Float64Array(control.length);
  for (let s = 0; s <= segments; s++) {
    const t = s / segments;
    for (let k = 0; k < control.length; k++) {
      xs[k] = control[k][0];
      ys[k] = control[k][1];
    }
    // de Casteljau: numerically stable for any degree.
    for (let level = control.length - 1; level > 0; level--) {
      for (let k = 0; k < level; k++) {
        xs[k] += t * (xs[k + 1] - xs[k]);
        ys[k] += t * (ys[k + 1] - ys[k]);
      }
    }
    out.push([xs[0], ys[0]]);
  }
  return out;
}

/** Reused squared-distance buffer of `forPixelsNearPolyline` (grown on demand). */
let distanceScratch = new Float32Array(0);

/**
 * Calls `visit(p, d2)` for each pixel p (row-major index) whose centre is within `reach`
 * of the polyline (round joins and caps), with d2 its squared distance (float32).
 */
function forPixelsNearPolyline(
  width: number,
  height: number,
  points: readonly Point[],
  reach: number,
  visit: (p: number, d2: number) => void,
): void {
  const pts = points.length === 1 ? [points[0], points[0]] : points;
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (const [x, y] of pts) {
    minX = Math.min(minX, x);
    maxX = Math.max(maxX, x);
    minY = Math.min(minY, y);
    maxY = Math.max(maxY, y);
  }
  const bx0 = Math.max(0, Math.floor(minX - reach));
  const bx1 = Math.min(width - 1, Math.ceil(maxX + reach));
  const by0 = Math.max(0, Math.floor(minY - reach));
  const by1 = Math.min(height - 1, Math.ceil(maxY + reach));
  if (bx0 > bx1 || by0 > by1) return;
  const bw = bx1 - bx0 + 1;
  const cells = bw * (by1 - by0 + 1);
  if (distanceScratch.length < cells) distanceScratch = new Float32Array(cells);
  const d2 = distanceScratch;
  d2.fill(Infinity, 0, cells);
  for (let i = 0; i + 1 < pts.length; i++) {
    const [ax, ay] = pts[i];
    const [bx, by] = pts[i + 1];
    const x0 = Math.max(bx0, Math.floor(Math.min(ax, bx) - reach));
    const x1 = Math.min(bx1, Math.ceil(Math.max(ax, bx) + reach));
    const y0 = Math.max(by0, Math.floor(Math.min(ay, by) - reach));
    const y1 = Math.min(by1, Math.ceil(Math.max(ay, by) + reach));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const v = segmentDistanceSquared(x + 0.5, y + 0.5, ax, ay, bx, by);
        const q = (y - by0) * bw + (x - bx0);
        if (v < d2[q]) d2[q] = v;
      }
    }
  }
  const reach2 = reach * reach;
  for (let y = by0; y <= by1; y++) {
    for (let x = bx0; x <= bx1; x++) {
      const v = d2[(y - by0) * bw + (x - bx0)];
      if (v < reach2) visit(y * width + x, v);
    }
  }
}

/**
 * Strokes the polyline `points` with an anti-aliased line `lineWidth` px wide (round
 * joins and caps): a pixel at distance d from the polyline gets opacity
 * clamp(lineWidth / 2 + 0.5 - d, 0, 1). When `mask` is given, marks the pixels whose
 * centre is within lineWidth / 2 of the polyline (the same set `polylineMask` gives).
 */
export function strokePolyline(
  img: RgbImage,
  points: readonly Point[],
  lineWidth: number,
  rgb: Rgb,
  mask?: Uint8Array,
): void {
  const half = lineWidth / 2;
  const reach = half + 0.5;
  const half2 = half * half;
  const data = img.data;
  forPixelsNearPolyline(img.width, img.height, points, reach, (p, v) => {
    const alpha = Math.min(1, reach - Math.sqrt(v));
    data[3 * p] += alpha * (rgb[0] - data[3 * p]);
    data[3 * p + 1] += alpha * (rgb[1] - data[3 * p + 1]);
    data[3 * p + 2] += alpha * (rgb[2] - data[3 * p + 2]);
    if (mask && v <= half2) mask[p] = 1;
  });
}

/**
 * Strokes the polyline `points` without anti-aliasing: every pixel whose centre lies
 * within lineWidth / 2 of the polyline is painted in full, no other pixel is touched
 * (for lineWidth >= 1 a straight stroke has no gaps). Marks the painted pixels in `mask`
 * when given: the same set `strokePolyline` and `polylineMask` mark.
 */
export const strokePolylineAliased: typeof strokePolyline = (img, points, lineWidth, rgb, mask) => {
  const half = lineWidth / 2;
  const half2 = half * half;
  forPixelsNearPolyline(img.width, img.height, points, half + 0.5, (p, v) => {
    if (v > half2) return;
    img.data.set(rgb, 3 * p);
    if (mask) mask[p] = 1;
  });
};

/**
 * Sets in `mask` (length size * size) the pixels whose centre lies within lineWidth / 2
 * of the polyline: the pixels `strokePolyline` draws at full or more than half opacity.
 */
export function markPolyline(
  mask: Uint8Array,
  size: number,
  points: readonly Point[],
  lineWidth: number,
): void {
  const half = lineWidth / 2;
  const half2 = half * half;
  forPixelsNearPolyline(size, size, points, half + 0.5, (p, v) => {
    if (v <= half2) mask[p] = 1;
  });
}

/** A new mask (length size * size) of the polyline's pixels, as `markPolyline` sets them. */
export function polylineMask(
  size: number,
  points: readonly Point[],
  lineWidth: number,
): Uint8Array {
  const mask = new Uint8Array(size * size);
  markPolyline(mask, size, points, lineWidth);
  return mask;
}

/** Glyph side of the built-in bitmap font, in font pixels (scale 1). */
export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 7;

/** 5x7 bitmap glyphs, one string of 5 characters per row, "#" = ink. */
const GLYPHS: Readonly<Record<string, readonly string[]>> = {
  A: [" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"],
  B: ["#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "],
  C: [" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "],
  D: ["#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "],
  E: ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"],
  F: ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "],
  G: [" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"],
  H: ["#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"],
  I: [" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "],
  J: ["  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "],
};

/** The characters the bitmap font can draw (a space leaves a gap). */
export const FONT_CHARACTERS: readonly string[] = Object.keys(GLYPHS);

/** Width in pixels of `text` drawn at `scale` (one font pixel of gap between glyphs). */
export function textWidth(text: string, scale: number): number {
  return text.length === 0 ? 0 : (text.length * (GLYPH_WIDTH + 1) - 1) * scale;
}

/**
 * Draws `text` (characters of FONT_CHARACTERS or spaces) with its top-left corner at
 * integer pixel (x, y), each font pixel a `scale` x `scale` block; marks ink in `mask`.
 */
export function drawText(
  img: RgbImage,
  text: string,
  x: number,
  y: number,
  scale: number,
  rgb: Rgb,
  mask?: Uint8Array,
): void {
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === " ") continue;
    const glyph = GLYPHS[ch];
    if (!glyph) throw new Error(`Expected a character of ${FONT_CHARACTERS.join("")}, got "${ch}"`);
    const left = x + i * (GLYPH_WIDTH + 1) * scale;
    for (let r = 0; r < GLYPH_HEIGHT; r++) {
      for (let c = 0; c < GLYPH_WIDTH; c++) {
        if (glyph[r][c] !== "#") continue;
        fillRect(img, { x: left + c * scale, y: y + r * scale, w: scale, h: scale }, rgb, mask);
      }
    }
  }
}

/**
 * A smooth curve that follows the control polygon: the clamped quadratic B-spline, i.e.
 * quadratic Bézier pieces joining the midpoints of the polygon's inner edges (the first
 * and last pieces start and end at the first and last control points), each flattened
 * with `flattenBezier`. Two control points give the straight segment; three give one
 * quadratic Bézier.
 */
export function flattenQuadraticSpline(control: readonly Point[], step = 2): Point[] {
  const n = control.length;
  if (n < 3) return flattenBezier(control, step);
  const mid = (p: Point, q: Point): Point => [(p[0] + q[0]) / 2, (p[1] + q[1]) / 2];
  const out: Point[] = [];
  for (let k = 1; k <= n - 2; k++) {
    const start = k === 1 ? control[0] : mid(control[k - 1], control[k]);
    const end = k === n - 2 ? control[n - 1] : mid(control[k], control[k + 1]);
    const piece = flattenBezier([start, control[k], end], step);
    out.push(...(k === 1 ? piece : piece.slice(1)));
  }
  return out;
}
