/**
 * Small raster helpers shared by the synthetic tasks: plain Float32Array RGB images
 * (HWC, values in [0, 1]) drawn in pure TypeScript, and the conversion of drawn
 * regions into a ground-truth distribution over the patch grid.
 */

import type { RgbImage } from "./task.ts";
import type { Rng } from "../pipeline/rng.ts";

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
