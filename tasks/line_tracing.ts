/**
 * Line Tracing (poster: "Is node E connected to node B?"): labelled nodes, joined in
 * pairs by curves that cross each other, all in one colour by default, so the answer
 * needs tracing a curve through its crossings rather than matching colours.
 *
 * Each sample places `nodes` nodes (small dark discs, each labelled with a distinct
 * letter from A..J drawn beside it), pairs them up at random, and joins each pair with
 * a cubic Bézier (or a two-piece polyline) that bends to one side or both. A draw is
 * rejected when tracing could be ambiguous: a curve passing near a node it does not
 * end at, a curve crossing itself, two curves crossing at less than 20°, running
 * alongside or touching each other, or crossing near a node, two crossings within 3
 * line widths (a junction of three curves), or a label that finds no free spot near
 * its node and clearly nearer to it than to any other. The asked curve(s) must hold at least `min_crossings` crossings.
 *
 * Prompt "is node X connected to node Y ?", answer "yes" or "no", alternating exactly
 * (even samples "yes"). Ground truth P: per-patch coverage of the pixels of the curve
 * joining X and Y when they are connected, of both curves leaving X and Y when they are
 * not, together with the two asked nodes' discs; normalised.
 */

import type { ParamProblem, Sample, SyntheticTask, TaskConfig } from "./task.ts";
import { Rng } from "../pipeline/rng.ts";
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
import { assertParams, exactMatch, isInteger, perSample } from "./common.ts";

/** Node names, in order; `nodes` of them are used per image. */
export const NODE_LETTERS = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"] as const;
const MIN_IMAGE_SIZE = 32;
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
}

const DEFAULT_PARAMS: LineTracingParams = {
  nodes: 6,
  curve: "bezier",
  line_width: "auto",
  same_color: true,
  min_crossings: 1,
};

function paramsOf(config: TaskConfig): LineTracingParams {
  return { ...DEFAULT_PARAMS, ...config.params } as LineTracingParams;
}

/** Most nodes an image of this size holds with readable labels: 4 at 32 px, 8 at 64, 10 from 80. */
export function maxNodes(imageSize: number): number {
  return Math.max(4, Math.min(NODE_LETTERS.length, 2 * Math.floor(imageSize / 16)));
}

function checkParams(config: TaskConfig): ParamProblem[] {
  const p = paramsOf(config);
  const size = config.imageSize;
  const problems: ParamProblem[] = [];
  const most = maxNodes(size);
  if (!isInteger(p.nodes) || p.nodes < 4 || p.nodes > most || p.nodes % 2 !== 0) {
    const why = most < 10 ? ` (at most ${most} fit a ${size} px image with labels)` : "";
    problems.push({
      key: "nodes",
      expected: `an even integer from 4 to ${most}${why}`,
      found: p.nodes,
    });
  }
  if (p.curve !== "bezier" && p.curve !== "polyline") {
    problems.push({ key: "curve", expected: `"bezier" or "polyline"`, found: p.curve });
  }
  const widthOk = p.line_width === "auto" ||
    (typeof p.line_width === "number" && p.line_width >= 0.5 && p.line_width <= size / 16);
  if (!widthOk) {
    problems.push({
      key: "line_width",
      expected: `"auto" or a number of pixels from 0.5 to image_size / 16 = ${size / 16}`,
      found: p.line_width,
    });
  }
  if (typeof p.same_color !== "boolean") {
    problems.push({ key: "same_color", expected: "true or false", found: p.same_color });
  }
  if (!isInteger(p.min_crossings) || p.min_crossings < 0 || p.min_crossings > 4) {
    problems.push({
      key: "min_crossings",
      expected: "an integer from 0 to 4",
      found: p.min_crossings,
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

/**
 * Pairs the nodes up: the random pairing, of 4 drawn, whose straight chords cross each
 * other most often (ties: the first), so that the curves usually cross.
 */
function crossingPairing(rng: Rng, nodes: readonly Point[]): [number, number][] {
  let best: [number, number][] = [];
  let bestCrossings = -1;
  for (let draw = 0; draw < 4; draw++) {
    const order = rng.shuffle(Array.from({ length: nodes.length }, (_, i) => i));
    const pairs: [number, number][] = [];
    for (let k = 0; k < order.length; k += 2) pairs.push([order[k], order[k + 1]]);
    let crossings = 0;
    for (let i = 0; i < pairs.length; i++) {
      for (let j = i + 1; j < pairs.length; j++) {
        const a = [nodes[pairs[i][0]], nodes[pairs[i][1]]];
        const b = [nodes[pairs[j][0]], nodes[pairs[j][1]]];
        crossings += findCrossings(a, b).length;
      }
    }
    if (crossings > bestCrossings) [best, bestCrossings] = [pairs, crossings];
  }
  return best;
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
  /** Node indices joined by each curve. */
  pairs: [number, number][];
  controls: Point[][];
  lines: Point[][];
  /** found[i][j]: the crossings of curves i and j. */
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
  const pairs = crossingPairing(rng, nodes);

  const curveMargin = lineWidth / 2 + 1;
  const controls: Point[][] = [];
  const lines: Point[][] = [];
  const clearance = nodeRadius + lineWidth + 1.5; // from a curve to a node it does not join
  // A curve that passes near a node it does not join, or crosses itself, is redrawn a
  // few times before the whole layout is.
  for (const [a, b] of pairs) {
    let ok = false;
    for (let tries = 0; tries < 8 && !ok; tries++) {
      const control = curveBetween(
        rng,
        params.curve,
        nodes[a],
        nodes[b],
        curveMargin,
        size - curveMargin,
      );
      // A coarse look first (9 points of the curve), to skip flattening most curves
      // that pass near a node; the flattened polyline is then checked exactly.
      const coarse = params.curve === "bezier" ? flattenBezier(control, Infinity) : control;
      const near = nodes.some((node, k) =>
        k !== a && k !== b &&
        coarse.some(([x, y]) => Math.hypot(x - node[0], y - node[1]) < clearance)
      );
      if (near) continue;
      const line = tracingPolyline(params.curve, control);
      ok = nodes.every((node, k) =>
        k === a || k === b || polylineDistance(node, line) >= clearance
      ) && !loops(line);
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

/**
 * A spot for each node's label: the first of 16 around it whose box keeps clear of every
 * curve (line_width / 2 + 2 px from its centre line), node and label placed before; null
 * when a node has none.
 */
function placeLabels(layout: Layout, size: number, geometry: TracingGeometry): Rect[] | null {
  const { lineWidth, nodeRadius, fontScale } = geometry;
  const w = GLYPH_WIDTH * fontScale;
  const h = GLYPH_HEIGHT * fontScale;
  const gap = nodeRadius + 3;
  const curveClearance = lineWidth / 2 + 2; // from a label's box to a curve's centre line
  const nodeClearance = nodeRadius + 2; // from a label's box to a node's centre
  const spacing = w; // between two labels' boxes, so they never read as one word
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
      r.x >= o.x + o.w + spacing || o.x >= r.x + r.w + spacing || r.y >= o.y + o.h + spacing ||
      o.y >= r.y + r.h + spacing
    );
  };
  for (const [k, [x, y]] of layout.nodes.entries()) {
    let rect: Rect | undefined;
    for (const [ux, uy] of LABEL_DIRECTIONS) {
      // The box's edge `gap` from the node, in this direction.
      const reach = gap + (Math.abs(ux) * w + Math.abs(uy) * h) / 2;
      const r = {
        x: Math.round(x + ux * reach - w / 2),
        y: Math.round(y + uy * reach - h / 2),
        w,
        h,
      };
      if (isFree(r, k)) {
        rect = r;
        break;
      }
    }
    if (!rect) return null;
    rects.push(rect);
  }
  return rects;
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
    // The curve(s) the answer depends on: one when connected, two when not; drawn among
    // those with at least min_crossings crossings (on them, each counted once).
    const onPath = (path: number[]) => {
      let total = 0;
      for (const c of path) total += found[c].reduce((s, f) => s + f.length, 0);
      return path.length === 2 ? total - found[path[0]][path[1]].length : total;
    };
    const candidates: number[][] = [];
    for (let c1 = 0; c1 < pairs.length; c1++) {
      if (connected) candidates.push([c1]);
      else for (let c2 = c1 + 1; c2 < pairs.length; c2++) candidates.push([c1, c2]);
    }
    const eligible = candidates.filter((path) => onPath(path) >= params.min_crossings);
    if (eligible.length === 0) continue;
    const labelRects = placeLabels(layout, size, geometry);
    if (!labelRects) continue;
    if (!crossingsAreTraceable(layout, geometry)) continue; // the costliest check last
    const path = rng.shuffle(eligible[rng.int(0, eligible.length - 1)].slice());
    const pathCrossings = onPath(path);
    // The asked nodes: both ends of the one curve, or one end of each of the two.
    const ends = path.map((c) => rng.next() < 0.5 ? pairs[c] : [pairs[c][1], pairs[c][0]]);
    const asked: [number, number] = connected ? [ends[0][0], ends[0][1]] : [ends[0][0], ends[1][0]];

    const image = blankImage(size, [1, 1, 1]);
    const colorNames = params.same_color
      ? lines.map(() => CURVE_COLOR_NAME)
      : rng.sample(CURVE_COLORS.length, lines.length).map((k) => CURVE_COLORS[k]);
    const mask = new Uint8Array(size * size); // the pixels the answer depends on
    lines.forEach((line, c) => {
      strokePolyline(
        image,
        line,
        geometry.lineWidth,
        COLORS[colorNames[c]],
        path.includes(c) ? mask : undefined,
      );
    });
    nodes.forEach(([x, y], k) => {
      fillCircle(
        image,
        x,
        y,
        geometry.nodeRadius,
        NODE_COLOR,
        asked.includes(k) ? mask : undefined,
      );
    });
    labelRects.forEach((r, k) =>
      drawText(image, labels[k], r.x, r.y, geometry.fontScale, NODE_COLOR)
    );

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
        nodeList: nodes.map(([x, y], k) => ({ label: labels[k], x, y })),
        curves,
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
  version: "1",
  vocabulary: ["is", "node", "connected", "to", "?", "yes", "no", ...NODE_LETTERS],
  defaultParams: { ...DEFAULT_PARAMS },
  checkParams,
  generate(seed: number, n: number, config: TaskConfig): Sample[] {
    assertParams("line-tracing", checkParams(config));
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
