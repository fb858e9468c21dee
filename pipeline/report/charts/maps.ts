/**
 * Attention over the image: the poster-like figure (the same held-out samples for every arm,
 * with each model's answer) and the interactive explorer (any sample, model, layer and head).
 */

import {
  clip,
  commonSamples,
  EXPLORER_BUDGET,
  EXPLORER_PX,
  explorerMaps,
  FIGURE_SAMPLES,
  figureSetsByArm,
  heatLayer,
  imageLayer,
  lightGrayImage,
  MAP_PX,
  mapCells,
  massOnTarget,
  meanMap,
  relativeToUniformExpr,
  wrap,
} from "../attention_maps.ts";
import { armLabel, COLUMN_ORDER, paperColumn } from "../poster.ts";
import { round4 } from "../summary.ts";
import type { FigureSet, ReportInput } from "../types.ts";

/** The poster's "KLAL sharpens attention maps": input, then each arm's map and answer. */
export function attentionFiguresChart(input: ReportInput) {
  const sets = figureSetsByArm(input).slice(0, 6);
  if (sets.length === 0) return undefined;
  const side = sets[0].gridSide;
  const indices = commonSamples(sets).slice(0, FIGURE_SAMPLES);
  if (indices.length === 0) return undefined;
  // Wrapped here, not clipped by Vega: headless Vega can only estimate text widths.
  const chars = Math.floor(MAP_PX / 6.6);
  const titleStyle = {
    fontSize: 11,
    subtitleFontSize: 10.5,
    anchor: "start",
    offset: 5,
    subtitlePadding: 2,
  };
  // Each image once in the spec; cells pick theirs by id.
  const images: { id: string; url: string }[] = [];
  const imageRef = (url: string) => {
    let entry = images.find((x) => x.url === url);
    if (!entry) images.push(entry = { id: `img${images.length}`, url });
    return entry.id;
  };
  const imageOf = (url: string) =>
    imageLayer(MAP_PX, { name: "figure_images" }, [{ filter: `datum.id === '${imageRef(url)}'` }]);
  const rows = indices.map((index) => {
    const first = sets[0].samples.find((s) => s.index === index)!;
    const gray = lightGrayImage(first.image);
    const cells: object[] = [{
      width: MAP_PX,
      height: MAP_PX,
      title: {
        ...titleStyle,
        text: wrap(first.prompt, chars),
        subtitle: clip(`#${index} · answer "${first.answer}"`, chars + 4),
        color: "#111",
      },
      layer: [imageOf(first.image)],
    }];
    for (const set of sets) {
      const sample = set.samples.find((s) => s.index === index)!;
      const map = meanMap(sample.layers);
      const mass = massOnTarget(map, sample.target);
      cells.push({
        width: MAP_PX,
        height: MAP_PX,
        title: {
          ...titleStyle,
          text: clip(armLabel(input.spec, set.arm), chars),
          subtitle: [
            clip(`says "${sample.prediction}"`, chars - 2) + (sample.correct ? " ✓" : " ✗"),
            `on target ${mass.toFixed(2)}`,
          ],
          subtitleColor: sample.correct ? "#1b7f3b" : "#b6372f",
        },
        layer: [imageOf(gray), heatLayer(side, { values: mapCells(map, side) })],
      });
    }
    cells.push({
      width: MAP_PX,
      height: MAP_PX,
      title: { ...titleStyle, text: "ground truth P(S)", subtitle: ["target patches", " "] },
      layer: [imageOf(gray), heatLayer(side, { values: mapCells(first.target, side) }, [], "P")],
    });
    return { hconcat: cells, spacing: 12 };
  });
  return {
    title: {
      text: "Attention of the answer tokens over the image",
      subtitle: [
        "maps averaged over heads and layers; colour = attention relative to a uniform spread " +
        "(log scale: clear at or below uniform,",
        'brightest when all attention sits on one patch); "on target" = attention mass on ' +
        "the ground-truth patches",
      ],
    },
    datasets: { figure_images: images },
    vconcat: rows,
    spacing: 16,
  };
}

/**
 * The attention explorer: pick a held-out sample, model (arm and seed), layer and head, and
 * see that map over the image beside the ground-truth map. Vega-Lite params bound to inputs.
 */
export function explorerChart(input: ReportInput) {
  const all = (input.figures ?? []).filter((f) => f.samples.length > 0);
  if (all.length === 0) return undefined;
  const rank = (arm: string) => COLUMN_ORDER.indexOf(paperColumn(input.spec, arm));
  let sets = [...all].sort((a, b) => rank(a.arm) - rank(b.arm) || a.seed - b.seed);
  const side = sets[0].gridSide;
  const size = (s: FigureSet[], k: number) => {
    const first = s[0].samples[0];
    const per = (first.layers.length + 1) * ((first.heads[0]?.length ?? 0) + 1) *
      first.target.length * 2;
    return s.length * k * per;
  };
  let samples = commonSamples(sets);
  if (size(sets, samples.length) > EXPLORER_BUDGET) sets = figureSetsByArm(input);
  samples = commonSamples(sets);
  while (samples.length > 1 && size(sets, samples.length) > EXPLORER_BUDGET) samples.pop();
  const first = sets[0].samples[0];
  const layerCount = first.layers.length;
  const headCount = first.heads[0]?.length ?? 0;
  const range = (n: number) => Array.from({ length: n }, (_, i) => String(i));
  const models = sets.map((s) => `${s.arm}@${s.seed}`);
  const modelLabels = sets.map((s) => `${armLabel(input.spec, s.arm)}, seed ${s.seed}`);
  const firstSet = sets[0];
  const sampleLabels = samples.map((index) => {
    const s = firstSet.samples.find((x) => x.index === index)!;
    return `#${index}: ${clip(s.prompt, 40)}`;
  });
  const defaultModel =
    models[sets.findIndex((s) => paperColumn(input.spec, s.arm) === "KLAL+NTP")] ??
      models[0];
  // A drop-down: the signal `name` starts at `value`; `label` names it on the page.
  const select = (
    name: string,
    value: string,
    options: string[],
    labels: string[],
    label: string,
  ) => ({
    name,
    value,
    bind: { input: "select", options, labels, name: label },
  });
  // Layer or head by index, or `all` of them averaged ("mean over layers").
  const byIndex = (what: "layer" | "head", all: string, count: number) =>
    select(
      `explore_${what}`,
      all,
      [all, ...range(count)],
      [`mean over ${what}s`, ...range(count).map((i) => `${what} ${i}`)],
      `${what} `,
    );
  const params = [
    select("explore_sample", String(samples[0]), samples.map(String), sampleLabels, "sample "),
    select("explore_model", defaultModel, models, modelLabels, "model "),
    byIndex("layer", "all", layerCount),
    byIndex("head", "mean", headCount),
    {
      name: "explore_scaled",
      value: false,
      bind: {
        input: "checkbox",
        name: "scale each map to its own maximum (off: relative to uniform, log scale) ",
      },
    },
  ];
  const images = samples.map((index) => ({
    s: String(index),
    url: lightGrayImage(firstSet.samples.find((x) => x.index === index)!.image),
  }));
  const targets = samples.map((index) => {
    const t = firstSet.samples.find((x) => x.index === index)!.target;
    return { s: String(index), v: t.map(round4), i: t.map((_, i) => i) };
  });
  const info = sets.flatMap((set) =>
    set.samples.filter((s) => samples.includes(s.index)).map((s) => ({
      s: String(s.index),
      m: `${set.arm}@${set.seed}`,
      line1: `prompt: "${clip(s.prompt, 70)}"`,
      line0: `true answer: "${clip(s.answer, 40)}"`,
      line2: `${armLabel(input.spec, set.arm)}, seed ${set.seed}, says "${s.prediction}" ${
        s.correct ? "✓ correct" : "✗ wrong"
      }`,
      correct: s.correct,
    }))
  );
  const cellTransform = (valueScaled: string) => [
    { flatten: ["v", "i"], as: ["value", "i"] },
    { joinaggregate: [{ op: "max", field: "value", as: "peak" }] },
    { calculate: `floor(datum.i / ${side})`, as: "r" },
    { calculate: `datum.i % ${side}`, as: "c" },
    { calculate: "datum.r + 1", as: "r1" },
    { calculate: "datum.c + 1", as: "c1" },
    { calculate: valueScaled, as: "shown" },
  ];
  const onSample = { filter: "datum.s === explore_sample" };
  const panelTitle = (text: string) => ({ text, fontSize: 12, anchor: "start" });
  return {
    title: {
      text: "Attention explorer",
      subtitle: "answer tokens' attention over the visual tokens; choose below the chart",
    },
    params,
    datasets: {
      explore_maps: explorerMaps(sets, samples),
      explore_images: images,
      explore_targets: targets,
      explore_info: info,
    },
    vconcat: [
      {
        width: 2 * EXPLORER_PX + 20,
        height: 50,
        data: { name: "explore_info" },
        transform: [{ filter: "datum.s === explore_sample && datum.m === explore_model" }],
        layer: [
          {
            mark: { type: "text", align: "left", baseline: "top", fontSize: 12 },
            encoding: { text: { field: "line1" }, x: { value: 0 }, y: { value: 0 } },
          },
          {
            mark: { type: "text", align: "left", baseline: "top", fontSize: 12 },
            encoding: { text: { field: "line0" }, x: { value: 0 }, y: { value: 17 } },
          },
          {
            mark: {
              type: "text",
              align: "left",
              baseline: "top",
              fontSize: 12,
              fontWeight: "bold",
            },
            encoding: {
              text: { field: "line2" },
              x: { value: 0 },
              y: { value: 34 },
              color: {
                condition: { test: "datum.correct", value: "#1b7f3b" },
                value: "#b6372f",
              },
            },
          },
        ],
      },
      {
        hconcat: [
          {
            width: EXPLORER_PX,
            height: EXPLORER_PX,
            title: panelTitle("attention of the chosen model, layer and head"),
            layer: [
              imageLayer(EXPLORER_PX, { name: "explore_images" }, [onSample]),
              heatLayer(side, { name: "explore_maps" }, [
                {
                  filter: "datum.k === explore_sample + '|' + explore_model + '|' + " +
                    "explore_layer + '|' + explore_head",
                },
                ...cellTransform(
                  "explore_scaled ? (datum.peak > 0 ? datum.value / datum.peak : 0) : " +
                    relativeToUniformExpr(side * side),
                ),
              ]),
            ],
          },
          {
            width: EXPLORER_PX,
            height: EXPLORER_PX,
            title: panelTitle("ground truth P(S)"),
            layer: [
              imageLayer(EXPLORER_PX, { name: "explore_images" }, [onSample]),
              heatLayer(
                side,
                { name: "explore_targets" },
                [onSample, ...cellTransform(relativeToUniformExpr(side * side))],
                "P",
              ),
            ],
          },
        ],
        spacing: 20,
      },
    ],
  };
}
