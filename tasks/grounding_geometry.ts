/**
 * The grounding task's text and geometry (./grounding.ts): prompts as words, the coordinate
 * conventions of points and boxes, and ground-truth maps from boxes, polygons and points.
 */
import type { PercentPoint } from "./pixmo_points.ts";
import { patchMassOfRect } from "./draw.ts";
import type { PercentBox } from "./boxes.ts";
import { promptWords } from "./text.ts";

/** Coordinate conventions of points and boxes in JSONL and CSV files. */
export const COORDINATES = ["pixels", "percent", "unit", "thousand"] as const;

export type Coordinates = typeof COORDINATES[number];

/** The prompt of a template and a category: `{category}` replaced, then as words. */
export function fillTemplate(template: string, category: string): string {
  return promptWords(template.replaceAll("{category}", category)).join(" ");
}

/** Scale factors from a convention to percent, given the image file's size. */
function toPercent(coordinates: Coordinates, width: number, height: number): [number, number] {
  switch (coordinates) {
    case "pixels":
      return [100 / width, 100 / height];
    case "percent":
      return [1, 1];
    case "unit":
      return [100, 100];
    case "thousand":
      return [0.1, 0.1];
  }
}

/** A box in the file's convention as a percent box [x1, y1, x2, y2], clamped to the image. */
export function percentBoxOf(
  values: readonly number[],
  coordinates: Coordinates,
  boxFormat: "xyxy" | "xywh",
  width: number,
  height: number,
): PercentBox {
  const [sx, sy] = toPercent(coordinates, width, height);
  const [a, b, c, d] = values;
  const [x2, y2] = boxFormat === "xywh" ? [a + c, b + d] : [c, d];
  const clamp = (v: number) => Math.min(100, Math.max(0, v));
  return [clamp(a * sx), clamp(b * sy), clamp(x2 * sx), clamp(y2 * sy)];
}

/** A point in the file's convention as percent of the image's width and height. */
export function percentPointOf(
  values: readonly number[],
  coordinates: Coordinates,
  width: number,
  height: number,
): PercentPoint {
  const [sx, sy] = toPercent(coordinates, width, height);
  return { x: values[0] * sx, y: values[1] * sy };
}

/**
 * P over the patch grid from boxes (percent): each box an equal share of the mass, spread over
 * the patches by the area of the box inside each.
 */
export function boxesTarget(
  boxes: readonly PercentBox[],
  imageSize: number,
  patchSize: number,
): Float32Array {
  const s = imageSize / 100;
  const sum = new Float32Array((imageSize / patchSize) ** 2);
  for (const b of boxes) {
    const m = patchMassOfRect(imageSize, patchSize, {
      x: b[0] * s,
      y: b[1] * s,
      w: (b[2] - b[0]) * s,
      h: (b[3] - b[1]) * s,
    });
    for (let i = 0; i < sum.length; i++) sum[i] += m[i];
  }
  return normalised(sum);
}

/** Subsamples per patch side when a polygon's share of a patch is measured. */
const POLYGON_SUBSAMPLES = 4;

/**
 * P over the patch grid from polygons (each a flat list x1, y1, x2, y2, ... in percent): each
 * patch weighted by the share of a 4 x 4 grid of points in it that lie inside any polygon
 * (even-odd rule). Null when no sample point falls inside (a sliver smaller than the grid).
 */
export function polygonsTarget(
  polygons: readonly (readonly number[])[],
  imageSize: number,
  patchSize: number,
): Float32Array | null {
  const g = imageSize / patchSize;
  const mass = new Float32Array(g * g);
  const k = POLYGON_SUBSAMPLES;
  for (let r = 0; r < g; r++) {
    for (let c = 0; c < g; c++) {
      let inside = 0;
      for (let i = 0; i < k; i++) {
        for (let j = 0; j < k; j++) {
          const x = ((c + (j + 0.5) / k) / g) * 100;
          const y = ((r + (i + 0.5) / k) / g) * 100;
          if (polygons.some((p) => insidePolygon(x, y, p))) inside++;
        }
      }
      mass[r * g + c] = inside;
    }
  }
  return mass.some((m) => m > 0) ? normalised(mass) : null;
}

/** Whether (x, y) is inside the polygon `flat` (x1, y1, x2, y2, ...), even-odd rule. */
export function insidePolygon(x: number, y: number, flat: readonly number[]): boolean {
  let inside = false;
  const n = flat.length / 2;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const [xi, yi, xj, yj] = [flat[2 * i], flat[2 * i + 1], flat[2 * j], flat[2 * j + 1]];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function normalised(mass: Float32Array): Float32Array {
  let total = 0;
  for (const m of mass) total += m;
  if (!(total > 0)) throw new Error("the ground-truth map has no mass");
  return mass.map((m) => m / total);
}

export function centre(b: PercentBox): PercentPoint {
  return { x: (b[0] + b[2]) / 2, y: (b[1] + b[3]) / 2 };
}

/** Object size buckets by the box's share of the image (COCO's small / medium / large). */
export function sizeOf(b: PercentBox): string {
  const area = ((b[2] - b[0]) * (b[3] - b[1])) / 100; // percent of the image
  return area < 1 ? "small (<1%)" : area < 10 ? "medium (1-10%)" : "large (>10%)";
}
