/**
 * Line Tracing (poster: "Is node E connected to node B?"): labelled nodes, joined in
 * pairs by curves that cross each other, all in one colour by default, so the answer
 * needs tracing a curve through its crossings rather than matching colours.
 *
 * Each sample places `nodes` nodes (small dark discs, each labelled with a distinct
 * letter from A..J drawn beside it), pairs them up uniformly at random, and joins each
 * pair with a cubic Bézier (or a two-piece polyline) that bends to one side or both;
 * `distractors` more curves of the same look run from one side of the image to another,
 * through no node (by default one when there are only 4 nodes, see distractorCount). A
 * draw is rejected when tracing could be ambiguous: a curve passing near a node it does
 * not end at, a curve crossing itself, two curves crossing at less than 20°, running
 * alongside or touching each other, or crossing near a node, two crossings within 3
 * line widths (a junction of three curves), or a label that finds no free spot.
 *
 * Labels are legible: where the glyph fits in a patch (5 x 7 px at 64 px with patch 8),
 * each label's box lies inside one patch, so one visual token sees the whole letter, and
 * no two labels share a patch; every box keeps clear of the curves, the nodes and the
 * other labels, and its centre is clearly nearer to its own node than to any other.
 *
 * No answer from positions alone. The layout is drawn before the answer is known and
 * fixes both candidate questions, so "yes" and "no" samples come from the same layouts:
 * "yes" asks both ends of a random curve, "no" the pair of nodes on different curves
 * that looks like it without tracing: its straight chord crosses as many chords between
 * other nodes, and as many drawn curves, and its length is within 10% (see lookalikes,
 * chooseAsked); a layout without such a pair is redrawn. The asked curve(s) must hold at
 * least `min_crossings` crossings, in both candidate questions. (Pairing the nodes so
 * that chords cross, and asking any unconnected pair, let the asked nodes' distance and
 * chord crossings predict the answer; tests/shortcut_test.ts measures these rules.)
 *
 * Prompt "is node X connected to node Y ?", answer "yes" or "no", alternating exactly
 * (even samples "yes"). Ground truth P: per-patch coverage of the pixels the answer
 * depends on: the curve traced from X (it ends at Y exactly when they are connected), the
 * discs of X and Y and the ink of their labels; normalised. One curve and two nodes for
 * either answer, so the map's size does not give the answer away.
 */

import type { ParamProblem, Sample, SyntheticTask, TaskConfig } from "./task.ts";
import { Rng } from "../pipeline/lib/rng.ts";
import {
  blankImage,
  COLORS,
  drawText,
  fillCircle,
  flattenBezier,
  GLYPH_HEIGHT,
  GLYPH_WIDTH,
  type Point,
  polylineDistance,
  polylineLength,
  type Rect,
  type Rgb,
  strokePolyline,
  targetFromMask,
} from "./draw.ts";
import {
  crossesItself,
  type Crossing,
  type CrossingRules,
  crossingsAreClean,
  findCrossings,
  lineWidthOf,
} from "./line_intersection.ts";
import { assertParams, exactMatch, perSample } from "./common.ts";
import { defineParams } from "../pipeline/lib/schema.ts";

/** Node names, in order; `nodes` of them are used per image. */
export const NODE_LETTERS = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"] as const;
/**
 * Smallest image. At 32 px (16 patches of 8 px) four labelled nodes with their labels
 * leave almost no room for two curves, or a distractor, to cross unless the curves'
 * straight chords cross; a 32 px generator could only pair the nodes whose chords cross,
 * and the chords would give the answer away (see chooseAsked).
 */
const MIN_IMAGE_SIZE = 48;
/** Palette colour of the curves when `same_color` is true. */
export const CURVE_COLOR_NAME = "blue";
/** Colours of the curves when `same_color` is false (distinct per curve). */
const CURVE_COLORS = ["blue", "red", "green", "purple", "orange"] as const;
/** Colour of the node discs and labels. */
export const NODE_COLOR: Rgb = [0.1, 0.1, 0.1];
const MAX_ATTEMPTS = 20_000;

interface LineTracingParams {
  nodes: number;
  curve: "bezier" | "polyline";
  line_width: number | "auto";
  same_color: boolean;
  min_crossings: number;
  distractors: number | "auto";
}

/** `task.params`, declared once: type, range, default and doc (docs/spec-keys.md). */
const PARAMS = defineParams({
  nodes: {
    type: "int",
    min: 4,
    max: NODE_LETTERS.length,
    default: 6,
    doc: "labelled nodes, joined in pairs: even, at most 6 at 48 px, 8 at 64, 10 from 80",
  },
  curve: {
    type: "enum",
    values: ["bezier", "polyline"],
    default: "bezier",
    doc: "cubic Béziers, or two-piece polylines",
  },
  line_width: {
    type: "union",
    options: [{ type: "enum", values: ["auto"] }, { type: "number", min: 0.5, unit: "pixels" }],
    default: "auto",
    doc: "stroke width (auto: max(1, round(image_size / 32))); at most image_size / 16",
  },
  same_color: {
    type: "bool",
    default: true,
    doc: "every curve in one colour, so tracing is needed rather than matching colours",
  },
  min_crossings: {
    type: "int",
    min: 0,
    max: 4,
    default: 1,
    doc: "crossings the asked curve(s) hold at least",
  },
  distractors: {
    type: "union",
    options: [{ type: "enum", values: ["auto"] }, { type: "int", min: 0, max: 2 }],
    default: "auto",
    doc: "curves through no node (auto: 1 with 4 nodes, else 0)",
  },
}, crossRules);

const DEFAULT_PARAMS = structuredClone(PARAMS.defaultParams) as unknown as LineTracingParams;

function paramsOf(config: TaskConfig): LineTracingParams {
  return { ...DEFAULT_PARAMS, ...config.params } as LineTracingParams;
}

/**
 * Distractor curves drawn: `distractors`, or for "auto" 1 with 4 nodes and 0 with more.
 * With only two curves, the question must not be answerable from whether the asked
 * nodes' chord crosses the other two nodes' chord, so the two curves' chords never cross
 * (see chooseAsked); a distractor then gives the curves something to cross.
 */
export function distractorCount(distractors: number | "auto", nodes: number): number {
  return distractors === "auto" ? (nodes === 4 ? 1 : 0) : distractors;
}

/** Most nodes an image of this size holds with readable labels: 6 at 48 px, 8 at 64, 10 from 80. */
export function maxNodes(imageSize: number): number {
  return Math.max(4, Math.min(NODE_LETTERS.length, 2 * Math.floor(imageSize / 16)));
}

/**
 * Rules between the parameters and with the image size (each field checks its own type and
 * range): nodes in pairs that fit with their labels, a width that fits, colours enough.
 */
function crossRules(config: TaskConfig, invalid: ReadonlySet<string>): ParamProblem[] {
  const p = paramsOf(config);
  const size = config.imageSize;
  const problems: ParamProblem[] = [];
  const most = maxNodes(size);
  if (!invalid.has("nodes") && (p.nodes > most || p.nodes % 2 !== 0)) {
    const why = most < 10 ? ` (at most ${most} fit a ${size} px image with labels)` : "";
    problems.push({
      key: "nodes",
      expected: `an even integer from 4 to ${most}${why}`,
      found: p.nodes,
    });
  }
  if (!invalid.has("line_width") && p.line_width !== "auto" && p.line_width > size / 16) {
    problems.push({
      key: "line_width",
      expected: `"auto" or a number of pixels from 0.5 to image_size / 16 = ${size / 16}`,
      found: p.line_width,
    });
  }
  const valid = ["distractors", "same_color", "nodes"].every((key) => !invalid.has(key));
  if (
    valid && p.same_color === false &&
    p.nodes / 2 + distractorCount(p.distractors, p.nodes) > CURVE_COLORS.length
  ) {
    problems.push({
      key: "distractors",
      expected: `at most ${CURVE_COLORS.length} curves in all with same_color false`,
      found: p.distractors,
    });
  }
  if (size < MIN_IMAGE_SIZE) {
    problems.push({
      key: "image_size",
      expected: `at least ${MIN_IMAGE_SIZE} px for line-tracing`,
      found: size,
    });
  }
  return problems;
}

/** Sizes of the drawing at one image size. */
export interface TracingGeometry {
  lineWidth: number;
  /** Node disc radius, px. */
  nodeRadius: number;
  /** Bitmap font scale. */
  fontScale: number;
}

/** Line width, node radius and font scale for an image size. */
export function tracingGeometry(imageSize: number, lineWidth: number | "auto"): TracingGeometry {
  const width = lineWidthOf(lineWidth, imageSize);
  return {
    lineWidth: width,
    nodeRadius: Math.max(2, 1.25 * width),
    fontScale: Math.max(1, Math.floor(imageSize / 64)),
  };
}

/** One curve as stored in meta: the labels it joins and its control points. */
export interface TracingCurve {
  from: string;
  to: string;
  control: Point[];
}

/**
 * The polyline drawn (and measured) for a curve's control points. Segments of ~3 px stay
 * within ~0.25 px of the true Bézier at the tightest bends these curves make.
 */
export function tracingPolyline(curve: string, control: readonly Point[]): Point[] {
  return curve === "bezier" ? flattenBezier(control, 3) : [...control];
}

/** Rounds to 1/100 px, so the points stored in meta redraw the same image. */
function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

/** Control points joining p to q, bent sideways; clamped inside [lo, hi]^2. */
function curveBetween(
  rng: Rng,
  curve: string,
  p: Point,
  q: Point,
  lo: number,
  hi: number,
): Point[] {
  const dx = q[0] - p[0];
  const dy = q[1] - p[1];
  const len = Math.hypot(dx, dy);
  const nx = -dy / len;
  const ny = dx / len;
  const clamp = (v: number) => Math.min(hi, Math.max(lo, v));
  const at = (along: number, side: number): Point => [
    round2(clamp(p[0] + along * dx + side * len * nx)),
    round2(clamp(p[1] + along * dy + side * len * ny)),
  ];
  if (curve === "polyline") {
    return [p, at(rng.uniform(0.3, 0.7), rng.uniform(-0.6, 0.6)), q];
  }
  return [
    p,
    at(rng.uniform(0.15, 0.5), rng.uniform(-0.8, 0.8)),
    at(rng.uniform(0.5, 0.85), rng.uniform(-0.8, 0.8)),
    q,
  ];
}

/** Random node centres at least `minGap` apart inside [lo, hi]^2, or null. */
function placeNodes(rng: Rng, n: number, lo: number, hi: number, minGap: number): Point[] | null {
  const out: Point[] = [];
  for (let tries = 0; out.length < n && tries < 500; tries++) {
    const p: Point = [round2(rng.uniform(lo, hi)), round2(rng.uniform(lo, hi))];
    if (out.every((q) => Math.hypot(p[0] - q[0], p[1] - q[1]) >= minGap)) out.push(p);
  }
  return out.length === n ? out : null;
}

/** Pairs the nodes up uniformly at random. */
function randomPairing(rng: Rng, count: number): [number, number][] {
  const order = rng.shuffle(Array.from({ length: count }, (_, i) => i));
  const pairs: [number, number][] = [];
  for (let k = 0; k < order.length; k += 2) pairs.push([order[k], order[k + 1]]);
  return pairs;
}

/** True when the open segments p1-p2 and q1-q2 cross properly. */
function chordsCross(p1: Point, p2: Point, q1: Point, q2: Point): boolean {
  const side = (a: Point, b: Point, c: Point) =>
    Math.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]));
  return side(p1, p2, q1) * side(p1, p2, q2) < 0 && side(q1, q2, p1) * side(q1, q2, p2) < 0;
}

/** How many chords between two nodes other than a and b the chord a-b crosses. */
function chordCrossingCount(nodes: readonly Point[], a: number, b: number): number {
  let count = 0;
  for (let i = 0; i < nodes.length; i++) {
    if (i === a || i === b) continue;
    for (let j = i + 1; j < nodes.length; j++) {
      if (j !== a && j !== b && chordsCross(nodes[a], nodes[b], nodes[i], nodes[j])) count++;
    }
  }
  return count;
}

/** True when segment a-b meets the box [x0, x1] x [y0, y1] (Liang-Barsky clipping). */
function segmentMeetsBox(a: Point, b: Point, x0: number, y0: number, x1: number, y1: number) {
  if (Math.max(a[0], b[0]) < x0 || Math.min(a[0], b[0]) > x1) return false;
  if (Math.max(a[1], b[1]) < y0 || Math.min(a[1], b[1]) > y1) return false;
  let t0 = 0;
  let t1 = 1;
  const clip = (p: number, q: number) => {
    if (p === 0) return q >= 0;
    const r = q / p;
    if (p < 0) t0 = Math.max(t0, r);
    else t1 = Math.min(t1, r);
    return t0 <= t1;
  };
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  return clip(-dx, a[0] - x0) && clip(dx, x1 - a[0]) && clip(-dy, a[1] - y0) &&
    clip(dy, y1 - a[1]);
}

/**
 * True when polyline `line` crosses itself. Most curves advance steadily along their
 * chord (every segment has a positive component along it) and so cannot; only the rest
 * are checked segment by segment.
 */
function loops(line: readonly Point[]): boolean {
  const n = line.length - 1;
  const cx = line[n][0] - line[0][0];
  const cy = line[n][1] - line[0][1];
  let monotone = true;
  for (let i = 0; i < n && monotone; i++) {
    monotone = (line[i + 1][0] - line[i][0]) * cx + (line[i + 1][1] - line[i][1]) * cy > 0;
  }
  return !monotone && crossesItself(line);
}

/** Which crossing rules tracing needs: stricter than counting, since all curves look alike. */
function tracingRules(geometry: TracingGeometry): CrossingRules {
  return {
    minAngle: 20,
    nearDistance: 2,
    minSeparation: 2,
    minEndDistance: geometry.nodeRadius + 2 * geometry.lineWidth,
  };
}

interface Layout {
  nodes: Point[];
  labels: string[];
  /** Node indices joined by each curve (curve c joins pairs[c]; distractors follow). */
  pairs: [number, number][];
  /** Control points of every curve: the pairs' curves, then the distractors. */
  controls: Point[][];
  lines: Point[][];
  /** found[i][j]: the crossings of curves i and j (distractors included). */
  found: Crossing[][][];
}

/**
 * Random nodes, labels, pairs and curves, or null when a curve passes near a node it does
 * not join or crosses itself. Crossings are found but not yet checked.
 */
function drawCurves(
  rng: Rng,
  size: number,
  params: LineTracingParams,
  geometry: TracingGeometry,
): Layout | null {
  const { lineWidth, nodeRadius } = geometry;
  const margin = nodeRadius + 2;
  const minGap = Math.max(
    4 * nodeRadius + 2 * lineWidth,
    (0.7 * size) / Math.sqrt(params.nodes),
  );
  const nodes = placeNodes(rng, params.nodes, margin, size - margin, minGap);
  if (!nodes) return null;
  const labels = rng.sample(NODE_LETTERS.length, params.nodes).map((k) => NODE_LETTERS[k]);
  const pairs = randomPairing(rng, nodes.length);
  // Cheap before any curve is drawn: some curve's question needs a lookalike "no" question.
  const curveOf = curveOfNodes(pairs, nodes.length);
  if (pairs.every(([a, b]) => lookalikes(nodes, curveOf, a, b).length === 0)) return null;

  // A distractor runs between two different sides of the image, through no node.
  const onSide = (side: number): Point => {
    const t = Math.round(rng.uniform(0.15, 0.85) * size);
    const points: Point[] = [[0, t], [size, t], [t, 0], [t, size]];
    return points[side];
  };
  // Each curve's ends, drawn anew on each try: fixed for the pairs' curves.
  const ends: (() => { from: Point; to: Point; joins: number[] })[] = pairs.map(([a, b]) => () => ({
    from: nodes[a],
    to: nodes[b],
    joins: [a, b],
  }));
  for (let k = 0; k < distractorCount(params.distractors, params.nodes); k++) {
    ends.push(() => {
      const [s1, s2] = rng.sample(4, 2);
      return { from: onSide(s1), to: onSide(s2), joins: [] };
    });
  }

  const curveMargin = lineWidth / 2 + 1;
  const controls: Point[][] = [];
  const lines: Point[][] = [];
  const clearance = nodeRadius + lineWidth + 1.5; // from a curve to a node it does not join
  // A curve that passes near a node it does not join, or crosses itself, is redrawn a
  // few times before the whole layout is.
  // A distractor that crosses none of the pairs' curves adds nothing to trace: it gets
  // more tries, and must cross one.
  for (const [index, drawEnds] of ends.entries()) {
    const distractor = index >= pairs.length;
    let ok = false;
    for (let tries = 0; tries < (distractor ? 24 : 8) && !ok; tries++) {
      const { from, to, joins } = drawEnds();
      const control = curveBetween(rng, params.curve, from, to, curveMargin, size - curveMargin);
      // A coarse look first (9 points of the curve), to skip flattening most curves
      // that pass near a node; the flattened polyline is then checked exactly.
      const coarse = params.curve === "bezier" ? flattenBezier(control, Infinity) : control;
      const near = nodes.some((node, k) =>
        !joins.includes(k) &&
        coarse.some(([x, y]) => Math.hypot(x - node[0], y - node[1]) < clearance)
      );
      if (near) continue;
      const line = tracingPolyline(params.curve, control);
      ok = nodes.every((node, k) =>
        joins.includes(k) || polylineDistance(node, line) >= clearance
      ) && !loops(line) &&
        (!distractor ||
          lines.slice(0, pairs.length).some((l) => findCrossings(l, line).length > 0));
      if (ok) {
        controls.push(control);
        lines.push(line);
      }
    }
    if (!ok) return null;
  }
  const found: Crossing[][][] = lines.map(() => lines.map(() => []));
  for (let i = 0; i < lines.length; i++) {
    for (let j = i + 1; j < lines.length; j++) {
      found[i][j] = findCrossings(lines[i], lines[j]);
      found[j][i] = found[i][j].map((c) => ({ ...c, ua: c.ub, ub: c.ua }));
    }
  }
  return { nodes, labels, pairs, controls, lines, found };
}

/**
 * True when every pair of curves crosses cleanly (see CrossingRules) and no two
 * crossings anywhere in the image are within 3 line widths of each other (a third curve
 * through a crossing would make it a junction that cannot be traced).
 */
function crossingsAreTraceable(layout: Layout, geometry: TracingGeometry): boolean {
  const rules = tracingRules(geometry);
  const { lines, found } = layout;
  const points: Crossing[] = [];
  for (let i = 0; i < lines.length; i++) {
    for (let j = i + 1; j < lines.length; j++) {
      if (!crossingsAreClean(lines[i], lines[j], found[i][j], geometry.lineWidth, rules)) {
        return false;
      }
      points.push(...found[i][j]);
    }
  }
  const apart = 3 * geometry.lineWidth;
  for (let k = 0; k < points.length; k++) {
    for (let m = 0; m < k; m++) {
      if (Math.hypot(points[k].x - points[m].x, points[k].y - points[m].y) < apart) return false;
    }
  }
  return true;
}

/** Where a label may go around its node, in order of preference: unit vectors. */
const LABEL_DIRECTIONS: readonly Point[] = [0, 8, 4, 12, 2, 6, 10, 14, 1, 3, 5, 7, 9, 11, 13, 15]
  .map((k) => [Math.cos((k * Math.PI) / 8), -Math.sin((k * Math.PI) / 8)]);

/** Farthest a label's box may be from its node's centre, beyond the disc, px. */
const LABEL_REACH = 5;

/**
 * Candidate boxes for the label of the node at (x, y), nearest first. When a glyph fits
 * in a patch: every box lying inside one patch whose nearest point is between
 * nodeRadius + 2 and nodeRadius + LABEL_REACH px from the node's centre. Otherwise: 16
 * directions around the node, the box's edge nodeRadius + 3 px away.
 */
function labelCandidates(
  x: number,
  y: number,
  size: number,
  patch: number,
  w: number,
  h: number,
  nodeRadius: number,
): Rect[] {
  if (w > patch || h > patch) {
    return LABEL_DIRECTIONS.map(([ux, uy]) => {
      const reach = nodeRadius + 3 + (Math.abs(ux) * w + Math.abs(uy) * h) / 2;
      return { x: Math.round(x + ux * reach - w / 2), y: Math.round(y + uy * reach - h / 2), w, h };
    });
  }
  const near = nodeRadius + 2;
  const far = nodeRadius + LABEL_REACH;
  const out: { rect: Rect; gap: number }[] = [];
  const p0 = Math.max(0, Math.floor((y - far - h) / patch));
  const p1 = Math.min(size / patch - 1, Math.floor((y + far) / patch));
  const q0 = Math.max(0, Math.floor((x - far - w) / patch));
  const q1 = Math.min(size / patch - 1, Math.floor((x + far) / patch));
  for (let py = p0; py <= p1; py++) {
    for (let px = q0; px <= q1; px++) {
      for (let oy = 0; oy <= patch - h; oy++) {
        for (let ox = 0; ox <= patch - w; ox++) {
          const rect = { x: px * patch + ox, y: py * patch + oy, w, h };
          const dx = Math.max(rect.x - x, 0, x - rect.x - w);
          const dy = Math.max(rect.y - y, 0, y - rect.y - h);
          const gap = Math.hypot(dx, dy);
          if (gap >= near && gap <= far) out.push({ rect, gap });
        }
      }
    }
  }
  // Nearest first; ties in a fixed order (row-major position), so placement is seeded only
  // by the layout.
  return out.sort((a, b) => a.gap - b.gap || a.rect.y - b.rect.y || a.rect.x - b.rect.x)
    .map((c) => c.rect);
}

/**
 * A box for each node's label: the first candidate (see labelCandidates) that keeps clear
 * of every curve (line_width / 2 + 2 px from its centre line), every node disc, and every
 * label placed before (a glyph's width apart, never in the same patch), and whose centre
 * is clearly nearer to its own node than to any other; null when a node has none.
 */
function placeLabels(
  layout: Layout,
  size: number,
  patch: number,
  geometry: TracingGeometry,
): Rect[] | null {
  const { lineWidth, nodeRadius, fontScale } = geometry;
  const w = GLYPH_WIDTH * fontScale;
  const h = GLYPH_HEIGHT * fontScale;
  const curveClearance = lineWidth / 2 + 2; // from a label's box to a curve's centre line
  const nodeClearance = nodeRadius + 2; // from a label's box to a node's centre
  const spacing = w; // between two labels' boxes, so they never read as one word
  const patchOf = (r: Rect) => Math.floor(r.y / patch) * size + Math.floor(r.x / patch);
  const rects: Rect[] = [];
  const isFree = (r: Rect, owner: number) => {
    if (r.x < 1 || r.y < 1 || r.x + r.w > size - 1 || r.y + r.h > size - 1) return false;
    // The label must read as its own node's: its centre clearly nearer to it than to
    // any other node.
    const [cx, cy] = [r.x + r.w / 2, r.y + r.h / 2];
    const own = Math.hypot(cx - layout.nodes[owner][0], cy - layout.nodes[owner][1]);
    for (let k = 0; k < layout.nodes.length; k++) {
      const other = Math.hypot(cx - layout.nodes[k][0], cy - layout.nodes[k][1]);
      if (k !== owner && other < own + Math.max(r.w, r.h) / 2 + 1) return false;
    }
    for (const line of layout.lines) {
      const [x0, y0] = [r.x - curveClearance, r.y - curveClearance];
      const [x1, y1] = [r.x + r.w + curveClearance, r.y + r.h + curveClearance];
      for (let i = 0; i + 1 < line.length; i++) {
        if (segmentMeetsBox(line[i], line[i + 1], x0, y0, x1, y1)) return false;
      }
    }
    for (const [x, y] of layout.nodes) {
      const dx = Math.max(r.x - x, 0, x - r.x - r.w);
      const dy = Math.max(r.y - y, 0, y - r.y - r.h);
      if (Math.hypot(dx, dy) < nodeClearance) return false;
    }
    return rects.every((o) =>
      patchOf(o) !== patchOf(r) &&
      (r.x >= o.x + o.w + spacing || o.x >= r.x + r.w + spacing || r.y >= o.y + o.h + spacing ||
        o.y >= r.y + r.h + spacing)
    );
  };
  for (const [k, [x, y]] of layout.nodes.entries()) {
    const rect = labelCandidates(x, y, size, patch, w, h, nodeRadius).find((r) => isFree(r, k));
    if (!rect) return null;
    rects.push(rect);
  }
  return rects;
}

/** The two candidate questions of a layout: node pairs and the curves each depends on. */
interface AskedPairs {
  yes: { nodes: [number, number]; path: number[] };
  no: { nodes: [number, number]; path: number[] };
}

/** The curve joining each node (index into the pairs). */
function curveOfNodes(pairs: readonly [number, number][], count: number): number[] {
  const curveOf = new Array<number>(count);
  pairs.forEach(([a, b], c) => [curveOf[a], curveOf[b]] = [c, c]);
  return curveOf;
}

/**
 * The pairs of nodes on different curves that look like the connected pair (a, b) from
 * node positions alone, nearest distance first: their chord crosses as many chords
 * between other nodes, and their distance is within 10% of a-b's (at least 1.5 px).
 */
function lookalikes(
  nodes: readonly Point[],
  curveOf: readonly number[],
  a: number,
  b: number,
): [number, number][] {
  const distance = (u: number, v: number) =>
    Math.hypot(nodes[u][0] - nodes[v][0], nodes[u][1] - nodes[v][1]);
  const chords = chordCrossingCount(nodes, a, b);
  const d = distance(a, b);
  const tolerance = Math.max(1.5, 0.1 * d);
  const out: { pair: [number, number]; gap: number }[] = [];
  for (let u = 0; u < nodes.length; u++) {
    for (let v = u + 1; v < nodes.length; v++) {
      if (curveOf[u] === curveOf[v]) continue;
      const gap = Math.abs(distance(u, v) - d);
      if (gap <= tolerance && chordCrossingCount(nodes, u, v) === chords) {
        out.push({ pair: [u, v], gap });
      }
    }
  }
  return out.sort((p, q) => p.gap - q.gap).map((m) => m.pair);
}

/**
 * How many times the straight chord between nodes u and v crosses the drawn curves,
 * away from its two ends (where the curves leaving u and v start).
 */
function chordInkCrossings(layout: Layout, u: number, v: number, endZone: number): number {
  const chord: Point[] = [layout.nodes[u], layout.nodes[v]];
  let count = 0;
  for (const line of layout.lines) {
    for (const c of findCrossings(chord, line)) {
      const nearEnd = chord.some(([x, y]) => Math.hypot(c.x - x, c.y - y) <= endZone);
      if (!nearEnd) count++;
    }
  }
  return count;
}

/**
 * The two candidate questions: "yes" asks both ends of a curve, "no" the first of its
 * lookalikes (see lookalikes) whose chord also crosses the drawn curves as often as the
 * "yes" chord does; both paths must hold at least `minCrossings` crossings (a crossing
 * of the two curves of a "no" path counted once). The curve is drawn among those that
 * have such a lookalike; null when none has.
 */
function chooseAsked(
  rng: Rng,
  layout: Layout,
  minCrossings: number,
  geometry: TracingGeometry,
): AskedPairs | null {
  const { nodes, pairs, found } = layout;
  const onPath = (path: number[]) => {
    let total = 0;
    for (const c of path) total += found[c].reduce((s, f) => s + f.length, 0);
    return path.length === 2 ? total - found[path[0]][path[1]].length : total;
  };
  const endZone = geometry.nodeRadius + 1;
  const curveOf = curveOfNodes(pairs, nodes.length);
  const options: AskedPairs[] = [];
  pairs.forEach(([a, b], c) => {
    if (onPath([c]) < minCrossings) return;
    const ink = chordInkCrossings(layout, a, b, endZone);
    const match = lookalikes(nodes, curveOf, a, b).find(([u, v]) =>
      onPath([curveOf[u], curveOf[v]]) >= minCrossings &&
      chordInkCrossings(layout, u, v, endZone) === ink
    );
    if (match) {
      options.push({
        yes: { nodes: [a, b], path: [c] },
        no: { nodes: match, path: [curveOf[match[0]], curveOf[match[1]]] },
      });
    }
  });
  return options.length === 0 ? null : options[rng.int(0, options.length - 1)];
}

function generateOne(
  rng: Rng,
  connected: boolean,
  config: TaskConfig,
  params: LineTracingParams,
): Sample {
  const size = config.imageSize;
  const geometry = tracingGeometry(size, params.line_width);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const layout = drawCurves(rng, size, params, geometry);
    if (!layout) continue;
    const { nodes, labels, pairs, lines, found } = layout;
    // Both candidate questions are fixed before the answer is used, so "yes" and "no"
    // samples come from the same layouts.
    const choice = chooseAsked(rng, layout, params.min_crossings, geometry);
    if (!choice) continue;
    const labelRects = placeLabels(layout, size, config.patchSize, geometry);
    if (!labelRects) continue;
    if (!crossingsAreTraceable(layout, geometry)) continue; // the costliest check last
    const { nodes: pair, path } = connected ? choice.yes : choice.no;
    const asked: [number, number] = rng.next() < 0.5 ? [pair[0], pair[1]] : [pair[1], pair[0]];
    let pathCrossings = 0;
    for (const c of path) pathCrossings += found[c].reduce((s, f) => s + f.length, 0);
    if (path.length === 2) pathCrossings -= found[path[0]][path[1]].length;

    const image = blankImage(size, [1, 1, 1]);
    const colorNames = params.same_color
      ? lines.map(() => CURVE_COLOR_NAME)
      : rng.sample(CURVE_COLORS.length, lines.length).map((k) => CURVE_COLORS[k]);
    // The pixels the answer depends on: the curve traced from the first-named node and the
    // two asked nodes with their labels. "yes": that curve ends at the second node; "no": it
    // ends elsewhere, which settles the answer as well. One curve and two nodes either way,
    // so the map's size says little of the answer (tests/line_tracing_test.ts measures it).
    const traced = path.find((c) => pairs[c].includes(asked[0]))!;
    const marked = new Set([asked[0], asked[1]]);
    const mask = new Uint8Array(size * size);
    lines.forEach((line, c) => {
      strokePolyline(
        image,
        line,
        geometry.lineWidth,
        COLORS[colorNames[c]],
        c === traced ? mask : undefined,
      );
    });
    nodes.forEach(([x, y], k) => {
      fillCircle(
        image,
        x,
        y,
        geometry.nodeRadius,
        NODE_COLOR,
        marked.has(k) ? mask : undefined,
      );
    });
    labelRects.forEach((r, k) => {
      const ink = marked.has(k) ? mask : undefined;
      drawText(image, labels[k], r.x, r.y, geometry.fontScale, NODE_COLOR, ink);
    });

    const curves: TracingCurve[] = pairs.map(([a, b], c) => ({
      from: labels[a],
      to: labels[b],
      control: layout.controls[c],
    }));
    return {
      image,
      prompt: `is node ${labels[asked[0]]} connected to node ${labels[asked[1]]} ?`,
      answer: connected ? "yes" : "no",
      target: targetFromMask(mask, size, config.patchSize),
      meta: {
        difficulty: `${pathCrossings} crossings`,
        crossings: pathCrossings,
        pathLength: Math.round(path.reduce((s, c) => s + polylineLength(lines[c]), 0)),
        connected,
        nodes: params.nodes,
        asked: [labels[asked[0]], labels[asked[1]]],
        nodeList: nodes.map(([x, y], k) => ({ label: labels[k], x, y, box: labelRects[k] })),
        curves,
        distractors: layout.controls.slice(pairs.length),
        curve: params.curve,
        colors: colorNames,
        ...geometry,
      },
    };
  }
  throw new Error(
    `line-tracing: no valid layout of ${params.nodes} nodes in ${MAX_ATTEMPTS} attempts at ` +
      `${size} px; use fewer nodes, a larger image_size or a thinner line_width`,
  );
}

/** The Line Tracing task: are two labelled nodes joined by one of the crossing curves? */
export const lineTracing: SyntheticTask = {
  name: "line-tracing",
  version: "3",
  vocabulary: ["is", "node", "connected", "to", "?", "yes", "no", ...NODE_LETTERS],
  paramSchema: PARAMS.paramSchema,
  defaultParams: PARAMS.defaultParams,
  checkParams: PARAMS.checkParams,
  generate(seed: number, n: number, config: TaskConfig): Sample[] {
    assertParams("line-tracing", PARAMS.checkParams(config));
    const params = paramsOf(config);
    // Answers alternate exactly: even samples are connected.
    return perSample(
      "line-tracing",
      seed,
      n,
      (rng, i) => generateOne(rng, i % 2 === 0, config, params),
    );
  },
  score: exactMatch,
};
