/**
 * Rendering charts without a browser: a Vega-Lite spec to SVG (headless Vega), SVG to PNG
 * (Skia, text included), and SVG ids made unique so several SVGs can share one page.
 */

import { createCanvas, Image } from "@napi-rs/canvas";
import * as vega from "vega";
import * as vegaLite from "vega-lite";

/** Render a Vega-Lite spec to SVG headless (used for the no-JavaScript fallback and figures). */
export async function renderChartSvg(spec: object): Promise<string> {
  // deno-lint-ignore no-explicit-any
  const compiled = vegaLite.compile(spec as any).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterise an SVG (text included) to PNG with Skia, at `scale` times its size. */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array> {
  const image = new Image();
  const loaded = new Promise<void>((resolve, reject) => {
    image.onload = () => resolve();
    image.onerror = (e) => reject(new Error(`could not rasterise the SVG: ${e}`));
  });
  image.src = new TextEncoder().encode(svg) as unknown as Buffer;
  if (!image.complete) await loaded;
  const width = Math.max(1, Math.round(image.width * scale));
  const height = Math.max(1, Math.round(image.height * scale));
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(image, 0, 0, width, height);
  return new Uint8Array(canvas.toBuffer("image/png"));
}

/** Prefix every id in an SVG (and its references) so several inline SVGs cannot clash. */
export function prefixSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_, id) => `id="${prefix}${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id) => `url(#${prefix}${id})`)
    .replace(/href="#([^"]+)"/g, (_, id) => `href="#${prefix}${id}"`);
}

/** File name (no extension) of a chart under figures/: "accuracy:grid-patch" -> "accuracy-grid-patch". */
export function figureName(key: string): string {
  return key.replace(/[^A-Za-z0-9_-]+/g, "-");
}
