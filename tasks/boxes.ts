/**
 * Boxes as the box answers write them, "X1 Y1 X2 Y2" in percent of the image's width and
 * height (RefCOCO, ./refcoco.ts, and the pretraining mix's box kind, ./pretrain_skills.ts),
 * and how two boxes are compared.
 */

/** A box in percent of the image's width and height: [x1, y1, x2, y2]. */
export type PercentBox = [number, number, number, number];

/** The box in a prediction: exactly four numbers (commas allowed between); else null. */
export function parseBox(prediction: string): PercentBox | null {
  const words = prediction.trim().split(/\s+/).filter((w) => w !== "" && w !== ",");
  if (words.length !== 4 || !words.every((w) => /^-?\d+(\.\d+)?$/.test(w))) return null;
  return words.map(Number) as PercentBox;
}

/** Intersection over union of two [x1, y1, x2, y2] boxes; 0 when either has no area. */
export function boxIou(a: PercentBox, b: PercentBox): number {
  const area = (r: PercentBox) => Math.max(0, r[2] - r[0]) * Math.max(0, r[3] - r[1]);
  const inter = area([
    Math.max(a[0], b[0]),
    Math.max(a[1], b[1]),
    Math.min(a[2], b[2]),
    Math.min(a[3], b[3]),
  ]);
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** A box as answer text: `X1 Y1 X2 Y2`, integer percent clamped to 0..100. */
export function formatBox(box: PercentBox): string {
  return box.map((v) => String(Math.min(100, Math.max(0, Math.round(v))))).join(" ");
}
