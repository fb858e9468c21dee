/**
 * The one Vega-Lite set-up of every chart: the `$schema` of the Vega-Lite that compiles and
 * embeds the charts (its major version read from the installed package, so the two cannot
 * drift apart) and the report's look (font, axes, titles, a white background).
 */

import { version as vegaLiteVersion } from "vega-lite";

/** The JSON schema URL of the installed Vega-Lite's major version. */
export const VEGA_LITE_SCHEMA = `https://vega.github.io/schema/vega-lite/v${
  vegaLiteVersion.split(".")[0]
}.json`;

/** The report's chart look. */
export const REPORT_CONFIG = {
  font: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
  view: { stroke: null },
  axis: { gridColor: "#eee", domainColor: "#999", tickColor: "#999" },
  title: { anchor: "start", subtitleColor: "#666", fontSize: 14 },
  concat: { spacing: 24 },
} as const;

/** A chart as the report embeds and renders it: schema, spec, the report's look, white. */
export function reportChart(spec: object): object {
  return { $schema: VEGA_LITE_SCHEMA, ...spec, config: REPORT_CONFIG, background: "white" };
}

/**
 * A chart of the paper record: schema and spec, in Vega-Lite's default look (the committed
 * figures were drawn in it; the report's config would redraw them all).
 */
export function paperChart(spec: object): object {
  return { $schema: VEGA_LITE_SCHEMA, ...spec };
}
