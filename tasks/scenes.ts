/**
 * Offline stand-in scenes for the real-image tasks (PixMo-Points, RefCOCO): a few
 * labelled shapes on a textured background, deterministic in the Rng, drawn at their
 * own (often non-square) resolution so the loaders' resize path is exercised. Each
 * object knows its box, category and attributes, and `referringExpressions` lists the
 * expressions that pick it out and nothing else, with spatial relations where the
 * attributes alone do not.
 */

import type { RgbImage } from "./task.ts";
import type { Rng } from "../pipeline/lib/rng.ts";
import { addNoise, COLOR_NAMES, COLORS, fillCircle, fillRect, type Rgb } from "./draw.ts";

/** Object categories. */
export const SHAPES = ["circle", "square", "triangle"] as const;
export type Shape = typeof SHAPES[number];

/** Object sizes; their pixel ranges do not overlap, so "small" and "large" are clear. */
export const SIZES = ["small", "large"] as const;
export type Size = typeof SIZES[number];

/** Spatial relations, as they read in an expression ("the circle left of the square"). */
export const RELATIONS = ["left of", "right of", "above", "below"] as const;
export type Relation = typeof RELATIONS[number];

/** Every word a scene label or referring expression can contain. */
export const SCENE_WORDS: readonly string[] = [
  "the",
  ...SIZES,
  ...COLOR_NAMES,
  ...SHAPES,
  ...new Set(RELATIONS.flatMap((r) => r.split(" "))),
];

/** One drawn object. */
export interface SceneObject {
  shape: Shape;
  color: string;
  size: Size;
  /** Drawn extent [x, y, w, h] in pixels of the scene image. */
  bbox: [number, number, number, number];
  /** Centre in pixels. */
  cx: number;
  cy: number;
}

/** A generated scene: the image at its own resolution and its objects. */
export interface Scene {
  image: RgbImage;
  objects: SceneObject[];
}

/** Knobs of `generateScene`. */
export interface SceneOptions {
  minObjects: number;
  maxObjects: number;
  /** Image sides are drawn independently from [minSide, maxSide] pixels. */
  minSide: number;
  maxSide: number;
  /** Palette names the objects may take. */
  colors: readonly string[];
  /** The sizes objects are drawn at (both by default). */
  sizes: readonly Size[];
}

const DEFAULT_SCENE_OPTIONS: SceneOptions = {
  minObjects: 3,
  maxObjects: 6,
  minSide: 128,
  maxSide: 224,
  colors: COLOR_NAMES,
  sizes: SIZES,
};

/** Half-extent of an object as a fraction of the image's shorter side. */
const HALF_EXTENT: Record<Size, [number, number]> = {
  small: [0.06, 0.085],
  large: [0.13, 0.17],
};

/** An RGB image of any shape filled with one colour. */
export function solidImage(width: number, height: number, rgb: Rgb): RgbImage {
  const data = new Float32Array(width * height * 3); // [H, W, 3]
  for (let i = 0; i < data.length; i += 3) {
    data[i] = rgb[0];
    data[i + 1] = rgb[1];
    data[i + 2] = rgb[2];
  }
  return { width, height, data };
}

/**
 * Paints every pixel whose centre lies inside the triangle (a, b, c) (pixel units), and marks
 * it in `mask` when one is given.
 */
export function fillTriangle(
  img: RgbImage,
  a: readonly [number, number],
  b: readonly [number, number],
  c: readonly [number, number],
  rgb: Rgb,
  mask?: Uint8Array,
): void {
  const edge = (p: readonly [number, number], q: readonly [number, number], x: number, y: number) =>
    (q[0] - p[0]) * (y - p[1]) - (q[1] - p[1]) * (x - p[0]);
  const area = edge(a, b, c[0], c[1]);
  if (area === 0) return;
  const x0 = Math.max(0, Math.floor(Math.min(a[0], b[0], c[0])));
  const x1 = Math.min(img.width - 1, Math.ceil(Math.max(a[0], b[0], c[0])));
  const y0 = Math.max(0, Math.floor(Math.min(a[1], b[1], c[1])));
  const y1 = Math.min(img.height - 1, Math.ceil(Math.max(a[1], b[1], c[1])));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const px = x + 0.5;
      const py = y + 0.5;
      // Inside when all three edge functions share the triangle's orientation.
      const s = Math.sign(area);
      if (
        s * edge(a, b, px, py) < 0 || s * edge(b, c, px, py) < 0 || s * edge(c, a, px, py) < 0
      ) continue;
      const p = y * img.width + x;
      img.data[3 * p] = rgb[0];
      img.data[3 * p + 1] = rgb[1];
      img.data[3 * p + 2] = rgb[2];
      if (mask) mask[p] = 1;
    }
  }
}

/** A light, low-saturation background with stripes, a checkerboard, or nothing. */
function paintBackground(rng: Rng, width: number, height: number): RgbImage {
  const grey = rng.uniform(0.74, 0.9);
  const base: Rgb = [0, 1, 2].map(() => grey + rng.uniform(-0.05, 0.05)) as unknown as Rgb;
  const shade = rng.uniform(0.05, 0.1);
  const second: Rgb = base.map((v) => v - shade) as unknown as Rgb;
  const image = solidImage(width, height, base);
  const pattern = rng.pick(["horizontal", "vertical", "diagonal", "checker", "plain"] as const);
  const period = rng.int(6, 18);
  const phase = rng.int(0, period - 1);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = Math.floor((x + phase) / period);
      const v = Math.floor((y + phase) / period);
      const dark = pattern === "horizontal"
        ? v % 2 === 1
        : pattern === "vertical"
        ? u % 2 === 1
        : pattern === "diagonal"
        ? Math.floor((x + y + phase) / period) % 2 === 1
        : pattern === "checker"
        ? (u + v) % 2 === 1
        : false;
      if (dark) fillRect(image, { x, y, w: 1, h: 1 }, second);
    }
  }
  return image;
}

function overlaps(a: SceneObject["bbox"], b: SceneObject["bbox"], gap: number): boolean {
  return a[0] < b[0] + b[2] + gap && b[0] < a[0] + a[2] + gap &&
    a[1] < b[1] + b[3] + gap && b[1] < a[1] + a[3] + gap;
}

function drawObject(image: RgbImage, o: SceneObject): void {
  const rgb = COLORS[o.color];
  const [x, y, w, h] = o.bbox;
  if (o.shape === "circle") fillCircle(image, o.cx, o.cy, w / 2, rgb);
  else if (o.shape === "square") fillRect(image, { x, y, w, h }, rgb);
  else fillTriangle(image, [o.cx, y], [x, y + h], [x + w, y + h], rgb);
}

/**
 * A scene with `minObjects`..`maxObjects` non-overlapping shapes (fewer when they do not
 * fit). A scene draws from only 2-3 colours and 2-3 shapes, so look-alike objects are
 * common and many objects need a relation to be named uniquely.
 */
export function generateScene(rng: Rng, options: Partial<SceneOptions> = {}): Scene {
  const opts = { ...DEFAULT_SCENE_OPTIONS, ...options };
  const width = rng.int(opts.minSide, opts.maxSide);
  const height = rng.int(opts.minSide, opts.maxSide);
  const shorter = Math.min(width, height);
  const image = paintBackground(rng, width, height);
  const colors = rng.shuffle([...opts.colors]).slice(
    0,
    Math.min(opts.colors.length, rng.int(2, 3)),
  );
  const shapes = rng.shuffle([...SHAPES]).slice(0, rng.int(2, 3));
  const wanted = rng.int(opts.minObjects, opts.maxObjects);
  const objects: SceneObject[] = [];
  for (let attempt = 0; attempt < 400 && objects.length < wanted; attempt++) {
    const size = rng.pick(opts.sizes);
    const [lo, hi] = HALF_EXTENT[size];
    const r = Math.round(shorter * rng.uniform(lo, hi));
    const cx = rng.int(r + 2, width - r - 2);
    const cy = rng.int(r + 2, height - r - 2);
    const shape = rng.pick(shapes);
    // Squares are drawn a little smaller than their circle so the areas look alike.
    const half = shape === "square" ? Math.round(0.85 * r) : r;
    const bbox: SceneObject["bbox"] = [cx - half, cy - half, 2 * half, 2 * half];
    if (objects.some((o) => overlaps(o.bbox, bbox, 3))) continue;
    objects.push({ shape, color: rng.pick(colors), size, bbox, cx, cy });
  }
  for (const o of objects) drawObject(image, o);
  addNoise(image, rng, 0.04);
  return { image, objects };
}

/** What an expression says about an object: its category, maybe colour and size. */
export interface Attributes {
  shape: Shape;
  color?: string;
  size?: Size;
}

/** A description: attributes, optionally related to a uniquely described anchor object. */
export interface Description extends Attributes {
  relation?: { kind: Relation; anchor: Attributes };
}

/** The words of a description: "the small blue circle left of the red square". */
export function phrase(d: Description): string {
  const head = ["the", d.size, d.color, d.shape].filter((w) => w !== undefined).join(" ");
  return d.relation ? `${head} ${d.relation.kind} ${phrase(d.relation.anchor)}` : head;
}

/** Whether `o` has every attribute `a` states. */
export function hasAttributes(o: SceneObject, a: Attributes): boolean {
  return o.shape === a.shape && (a.color === undefined || o.color === a.color) &&
    (a.size === undefined || o.size === a.size);
}

/** Indices of the objects having every attribute `a` states. */
export function objectsMatching(objects: readonly SceneObject[], a: Attributes): number[] {
  return objects.flatMap((o, i) => hasAttributes(o, a) ? [i] : []);
}

/**
 * Whether `a` stands in `relation` to `b`. `strict`: wholly beyond b's box (how the
 * referent must stand); otherwise its centre beyond b's centre (how no other candidate
 * may stand): the gap between the two keeps borderline layouts out of the expressions.
 */
function related(a: SceneObject, b: SceneObject, relation: Relation, strict: boolean): boolean {
  const [ax, ay, aw, ah] = a.bbox;
  const [bx, by, bw, bh] = b.bbox;
  switch (relation) {
    case "left of":
      return strict ? ax + aw <= bx : a.cx < b.cx;
    case "right of":
      return strict ? ax >= bx + bw : a.cx > b.cx;
    case "above":
      return strict ? ay + ah <= by : a.cy < b.cy;
    case "below":
      return strict ? ay >= by + bh : a.cy > b.cy;
  }
}

/** The attribute subsets of an object, shortest first. */
function attributeChoices(o: SceneObject): Attributes[] {
  return [
    { shape: o.shape },
    { shape: o.shape, color: o.color },
    { shape: o.shape, size: o.size },
    { shape: o.shape, color: o.color, size: o.size },
  ];
}

/** The attribute descriptions that match object `i` alone, shortest first. */
function uniqueAttributes(objects: readonly SceneObject[], i: number): Attributes[] {
  return attributeChoices(objects[i]).filter((a) => objectsMatching(objects, a).length === 1);
}

/** A referring expression with how it identifies its object. */
export interface ReferringExpression {
  description: Description;
  text: string;
  /** True when the attributes alone match more than one object. */
  needsRelation: boolean;
}

/**
 * Whether `d` picks out object `target` and no other: its attributes match only the
 * target, or (with a relation) the anchor is unique, the target stands strictly in the
 * relation to it, and no other object with the attributes stands in it even loosely.
 */
export function isUnambiguous(
  objects: readonly SceneObject[],
  d: Description,
  target: number,
): boolean {
  if (!hasAttributes(objects[target], d)) return false;
  const candidates = objectsMatching(objects, d);
  if (!d.relation) return candidates.length === 1;
  const anchors = objectsMatching(objects, d.relation.anchor);
  if (anchors.length !== 1 || anchors[0] === target) return false;
  const anchor = objects[anchors[0]];
  const { kind } = d.relation;
  if (!related(objects[target], anchor, kind, true)) return false;
  return candidates.every((i) =>
    i === target || i === anchors[0] || !related(objects[i], anchor, kind, false)
  );
}

/**
 * Every unambiguous expression for object `target`: attribute-only ones first (shortest
 * first), then relational ones, anchored on another object by any attribute description
 * unique to it. Deterministic; may be empty.
 */
export function referringExpressions(
  objects: readonly SceneObject[],
  target: number,
): ReferringExpression[] {
  const out: ReferringExpression[] = [];
  const heads = attributeChoices(objects[target]);
  const headUnique = (a: Attributes) => objectsMatching(objects, a).length === 1;
  for (const head of heads) {
    if (headUnique(head)) out.push({ description: head, text: phrase(head), needsRelation: false });
  }
  for (const head of heads) {
    for (let j = 0; j < objects.length; j++) {
      if (j === target) continue;
      for (const anchor of uniqueAttributes(objects, j)) {
        for (const kind of RELATIONS) {
          const d: Description = { ...head, relation: { kind, anchor } };
          if (isUnambiguous(objects, d, target)) {
            out.push({ description: d, text: phrase(d), needsRelation: !headUnique(head) });
          }
        }
      }
    }
  }
  return out;
}

/**
 * Up to `k` distinct expressions for `target`, chosen with `rng`: relational ones that
 * are needed come first when there are any (they are what the stand-in is for), then a
 * mix of the rest.
 */
export function chooseExpressions(
  rng: Rng,
  objects: readonly SceneObject[],
  target: number,
  k: number,
): string[] {
  const all = referringExpressions(objects, target);
  const needed = rng.shuffle(all.filter((e) => e.needsRelation));
  const rest = rng.shuffle(all.filter((e) => !e.needsRelation));
  return [...needed.slice(0, 1), ...rest, ...needed.slice(1)].slice(0, k).map((e) => e.text);
}
