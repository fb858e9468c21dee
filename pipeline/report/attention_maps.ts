/**
 * Attention maps, the shared pieces of the poster-like figure and the attention explorer:
 * how strongly a patch is drawn (relative to a uniform spread, log scale), the greyed input
 * image under the heatmap, map cells and their Vega-Lite layers, and which figure sets and
 * samples the charts show.
 */

import { createCanvas, Image } from "@napi-rs/canvas";
import { targetSupport } from "../eval/target_support.ts";
import { mean } from "./stats.ts";
import { COLUMN_ORDER, paperColumn } from "./poster.ts";
import { round4 } from "./summary.ts";
import type { FigureSet, ReportInput } from "./types.ts";
import { clip as clipText } from "../lib/terminal.ts";

/** Pixels per side of one attention map in the figures. */
export const MAP_PX = 136;
/** Pixels per side of a map in the explorer. */
export const EXPLORER_PX = 230;
/** Samples in the poster-like figure. */
export const FIGURE_SAMPLES = 4;
/** Numbers the explorer may embed before it drops seeds, then samples. */
export const EXPLORER_BUDGET = 400_000;

/** Heatmap colours for `shown` in 0..1 (0 is also fully transparent). */
export const HEAT_COLOUR = { scheme: { name: "orangered", extent: [0.35, 1] }, domain: [0, 1] };

/**
 * How strongly a map cell is drawn, 0..1: attention relative to a uniform spread on a log
 * scale, log(v * n) / log(n) clamped to [0, 1]. At or below uniform it is invisible; all
 * attention on one patch is 1. The same scale for every arm, so maps compare across arms.
 */
export function relativeToUniform(value: number, n: number): number {
  if (n <= 1 || !(value > 0)) return 0;
  return Math.min(1, Math.max(0, Math.log(value * n) / Math.log(n)));
}

/** The same scaling as a Vega expression over `datum.value`, for the explorer. */
export function relativeToUniformExpr(n: number): string {
  return `clamp(log(max(datum.value * ${n}, 1e-12)) / log(${n}), 0, 1)`;
}

const grayCache = new Map<string, string>();

/**
 * A light grey copy of a PNG data URL, for drawing attention on top of it (colour belongs to
 * the heatmap). The original is returned when it cannot be decoded.
 */
export function lightGrayImage(url: string): string {
  const cached = grayCache.get(url);
  if (cached) return cached;
  let out = url;
  try {
    const image = new Image();
    const base64 = url.slice(url.indexOf(",") + 1);
    image.src = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)) as unknown as Buffer;
    if (image.complete && image.width > 0) {
      const canvas = createCanvas(image.width, image.height);
      const ctx = canvas.getContext("2d");
      ctx.drawImage(image, 0, 0);
      const pixels = ctx.getImageData(0, 0, image.width, image.height);
      const d = pixels.data;
      for (let i = 0; i < d.length; i += 4) {
        const gray = 0.3 * d[i] + 0.59 * d[i + 1] + 0.11 * d[i + 2];
        const light = 255 - (255 - gray) * 0.5;
        d[i] = d[i + 1] = d[i + 2] = light;
      }
      ctx.putImageData(pixels, 0, 0);
      out = canvas.toDataURL("image/png");
    }
  } catch {
    // Not a decodable PNG: overlay on the original.
  }
  grayCache.set(url, out);
  return out;
}

/** Split text into lines of at most `width` characters at spaces. */
export function wrap(text: string, width: number, maxLines = 2): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  if (lines.length > maxLines) {
    lines.length = maxLines;
    lines[maxLines - 1] = clip(lines[maxLines - 1] + " …", width);
  }
  return lines;
}

/** Element-wise mean of equally long maps. */
export function meanMap(maps: readonly number[][]): number[] {
  if (maps.length === 0) return [];
  return maps[0].map((_, i) => mean(maps.map((m) => m[i])));
}

/** Attention mass of a map on the target's support. */
export function massOnTarget(map: readonly number[], target: readonly number[]): number {
  const support = targetSupport(target);
  return map.reduce((sum, v, i) => sum + (support[i] ? v : 0), 0);
}

/** Grid cells of a row-major side x side map; `shown` is relativeToUniform of the value. */
export function mapCells(values: readonly number[], side: number) {
  return values.map((v, i) => {
    const r = Math.floor(i / side);
    const c = i % side;
    const shown = round4(relativeToUniform(v, values.length));
    return { r, c, r1: r + 1, c1: c + 1, value: round4(v), shown };
  });
}

/** The input image as a Vega-Lite image mark filling a size x size view. */
export function imageLayer(size: number, data: object, transform: object[] = []) {
  return {
    data,
    transform,
    mark: {
      type: "image",
      width: size,
      height: size,
      align: "left",
      baseline: "top",
      aspect: false,
      smooth: false,
    },
    encoding: { url: { field: "url", type: "nominal" }, x: { value: 0 }, y: { value: 0 } },
  };
}

/** Rects over the image: colour and opacity follow `shown` (0..1). */
export function heatLayer(
  side: number,
  data: object,
  transform: object[] = [],
  what = "attention",
) {
  const axis = (reverse: boolean) => ({
    type: "quantitative",
    scale: { domain: [0, side], nice: false, zero: false, reverse },
    axis: null,
  });
  return {
    data,
    transform,
    mark: { type: "rect", strokeWidth: 0 },
    encoding: {
      x: { field: "c", ...axis(false) },
      x2: { field: "c1" },
      y: { field: "r", ...axis(true) },
      y2: { field: "r1" },
      color: { field: "shown", type: "quantitative", scale: HEAT_COLOUR, legend: null },
      opacity: {
        field: "shown",
        type: "quantitative",
        scale: { domain: [0, 1], range: [0, 0.9] },
        legend: null,
      },
      tooltip: [
        { field: "r", title: "patch row" },
        { field: "c", title: "patch column" },
        { field: "value", title: what, format: ".4f" },
      ],
    },
  };
}

/** One figure set per arm (its first seed), arms in paper-column order. */
export function figureSetsByArm(input: ReportInput): FigureSet[] {
  const sets = (input.figures ?? []).filter((f) => f.samples.length > 0);
  const byArm = new Map<string, FigureSet>();
  for (const set of [...sets].sort((a, b) => a.seed - b.seed)) {
    if (!byArm.has(set.arm)) byArm.set(set.arm, set);
  }
  const rank = (arm: string) => COLUMN_ORDER.indexOf(paperColumn(input.spec, arm));
  return [...byArm.values()].sort((a, b) => rank(a.arm) - rank(b.arm));
}

/** Sample indices every given set has, in the first set's order. */
export function commonSamples(sets: FigureSet[]): number[] {
  return sets[0].samples.map((s) => s.index)
    .filter((index) => sets.every((set) => set.samples.some((s) => s.index === index)));
}

/** `text` cut to at most `max` characters, ending in "…" when cut. */
export function clip(text: string, max: number): string {
  return clipText(text, max, "…");
}

/** Every map the explorer can show, keyed "sample|model|layer|head" (layer "all", head "mean"). */
export function explorerMaps(sets: FigureSet[], samples: number[]) {
  const maps: { k: string; v: number[]; i: number[] }[] = [];
  for (const set of sets) {
    for (const sample of set.samples.filter((s) => samples.includes(s.index))) {
      const model = `${set.arm}@${set.seed}`;
      const n = sample.target.length;
      const index = Array.from({ length: n }, (_, i) => i);
      const layerCount = sample.layers.length;
      const headCount = sample.heads[0]?.length ?? 0;
      const add = (layer: string, head: string, values: number[]) =>
        maps.push({
          k: `${sample.index}|${model}|${layer}|${head}`,
          v: values.map(round4),
          i: index,
        });
      add("all", "mean", meanMap(sample.layers));
      for (let h = 0; h < headCount; h++) {
        add("all", String(h), meanMap(sample.heads.map((layer) => layer[h])));
      }
      for (let l = 0; l < layerCount; l++) {
        add(String(l), "mean", sample.layers[l]);
        for (let h = 0; h < headCount; h++) add(String(l), String(h), sample.heads[l][h]);
      }
    }
  }
  return maps;
}
