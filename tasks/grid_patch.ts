/**
 * Grid Patch (poster, "Data & Tasks"): the image is a grid x grid grid of cells; a few
 * cells hold a coloured square. Asked "where is the COLOR patch ?", the model answers
 * the cell's "row , col". Ground truth P: uniform over the patches covering that cell.
 *
 * `grid: "auto"` (the default) gives one cell per patch where that is at most 16 x 16
 * cells: 8 x 8 cells of 8 px at 64 px with patch 8, 4 x 4 at 32 px (see autoGrid). A grid
 * may also have cells smaller than a patch, each patch holding a whole number of cells
 * (16 x 16 cells of 4 px at 64 px with patch 8: four cells to a patch); the map is then the
 * one patch that holds the asked cell, and the answer names a cell the patch grid cannot.
 */

import type { ParamProblem, Sample, SyntheticTask, TaskConfig } from "./task.ts";
import { Rng } from "../pipeline/lib/rng.ts";
import {
  addNoise,
  blankImage,
  COLOR_NAMES,
  colorListProblem,
  COLORS,
  fillRect,
  LIGHT_BACKGROUND,
  patchMassOfRect,
} from "./draw.ts";
import { assertParams, exactMatch, perSample } from "./common.ts";
import { defineParams, distinctListOf } from "../pipeline/lib/schema.ts";

/** Largest grid side: row and column answers are the number words "0".."15". */
const MAX_GRID = 16;

interface GridPatchParams {
  grid: number | "auto";
  blobs: number;
  colors: string[];
  noise: number;
}

/** `task.params`, declared once: type, range, default and doc (docs/spec-keys.md). */
const PARAMS = defineParams({
  grid: {
    type: "union",
    options: [{ type: "enum", values: ["auto"] }, { type: "int", min: 1, max: MAX_GRID }],
    default: "auto",
    doc: "grid side in cells (auto: one cell per patch, up to 16 x 16); divides image_size " +
      "into cells of whole patches, or into cells a patch holds a whole number of",
  },
  blobs: {
    type: "int",
    min: 1,
    max: MAX_GRID * MAX_GRID,
    default: 2,
    doc: "coloured cells per image, at most grid * grid",
  },
  colors: distinctListOf(COLOR_NAMES, "colour names", {
    minItems: 1,
    default: COLOR_NAMES.slice(0, 4),
    doc: "colours the squares are drawn in (distinct within an image): at least blobs",
  }),
  noise: { type: "number", min: 0, max: 0.5, default: 0.05, doc: "pixel noise amplitude" },
}, crossRules);

const DEFAULT_PARAMS = structuredClone(PARAMS.defaultParams) as unknown as GridPatchParams;

/** Params merged over the defaults (the spec validator has already checked them). */
function paramsOf(config: TaskConfig): GridPatchParams {
  return { ...DEFAULT_PARAMS, ...config.params } as GridPatchParams;
}

/**
 * The grid side for `grid: "auto"`: the largest side up to 16 whose cells are a whole
 * number of patches and a whole number of pixels, preferring one cell per patch
 * (image_size / patch_size): 8 at 64 px with patch 8, 4 at 32 px, 16 at 128 or 256 px.
 */
export function autoGrid(imageSize: number, patchSize: number): number {
  for (let g = Math.min(MAX_GRID, Math.floor(imageSize / patchSize)); g > 1; g--) {
    if (imageSize % g === 0 && (imageSize / g) % patchSize === 0) return g;
  }
  return 1;
}

/** The grid side a config uses: `grid`, or autoGrid's for "auto". */
function gridOf(config: TaskConfig, grid: number | "auto"): number {
  return grid === "auto" ? autoGrid(config.imageSize, config.patchSize) : grid;
}

/**
 * Rules between the parameters and with the image and patch size (each field checks its own
 * type and range): cells of whole patches, blobs that fit the grid, enough colours.
 */
function crossRules(config: TaskConfig, invalid: ReadonlySet<string>): ParamProblem[] {
  const params = paramsOf(config);
  const { blobs, colors } = params;
  const size = config.imageSize;
  const problems: ParamProblem[] = [];
  let gridOk = false;
  const grid = gridOf(config, params.grid);
  if (invalid.has("grid")) {
    // Reported by the field.
  } else if (size % grid !== 0) {
    problems.push({
      key: "grid",
      expected: `a divisor of image_size ${size}`,
      found: grid,
    });
  } else if (
    (size / grid) % config.patchSize !== 0 && config.patchSize % (size / grid) !== 0
  ) {
    problems.push({
      key: "grid",
      expected: `a grid whose cell side (image_size ${size} / grid = ${
        size / grid
      } px) is a multiple or a divisor of patch_size ${config.patchSize}`,
      found: grid,
    });
  } else {
    gridOk = true;
  }
  if (gridOk && !invalid.has("blobs") && blobs > grid * grid) {
    problems.push({
      key: "blobs",
      expected: `an integer from 1 to grid * grid = ${grid * grid}`,
      found: blobs,
    });
  }
  if (!invalid.has("blobs") && !invalid.has("colors") && colors.length < blobs) {
    problems.push({ key: "colors", expected: colorListProblem(colors, blobs)!, found: colors });
  }
  return problems;
}

/** One sample; all its randomness comes from `rng`. */
function generateOne(
  rng: Rng,
  config: TaskConfig,
  params: GridPatchParams,
  grid: number,
): Sample {
  const { blobs, noise } = params;
  const size = config.imageSize;
  const cell = size / grid;
  const image = blankImage(size, LIGHT_BACKGROUND);
  const cells = rng.sample(grid * grid, blobs); // distinct cell indices, row-major
  const colors = rng.shuffle([...params.colors]).slice(0, blobs);
  for (let b = 0; b < blobs; b++) {
    const row = Math.floor(cells[b] / grid);
    const col = cells[b] % grid;
    // 60-100% of the cell; with side >= ceil(0.6 * cell) the cell's centre pixel is
    // always inside the square, whatever the offset.
    const side = rng.int(Math.ceil(0.6 * cell), cell);
    const x = col * cell + rng.int(0, cell - side);
    const y = row * cell + rng.int(0, cell - side);
    fillRect(image, { x, y, w: side, h: side }, COLORS[colors[b]]);
  }
  addNoise(image, rng, noise);
  const which = rng.int(0, blobs - 1);
  const row = Math.floor(cells[which] / grid);
  const col = cells[which] % grid;
  const color = colors[which];
  return {
    image,
    prompt: `where is the ${color} patch ?`,
    answer: `${row} , ${col}`,
    // The whole target cell, not just its square: the cell is what the answer names.
    target: patchMassOfRect(size, config.patchSize, {
      x: col * cell,
      y: row * cell,
      w: cell,
      h: cell,
    }),
    meta: { difficulty: `${blobs} patches`, grid, blobs, row, col, color },
  };
}

/** The Grid Patch task: find the cell of the coloured square named in the prompt. */
export const gridPatch: SyntheticTask = {
  name: "grid-patch",
  version: "1",
  vocabulary: [
    "where",
    "is",
    "the",
    "patch",
    "?",
    ",",
    ...COLOR_NAMES,
    ...Array.from({ length: MAX_GRID }, (_, i) => String(i)),
  ],
  paramSchema: PARAMS.paramSchema,
  defaultParams: PARAMS.defaultParams,
  checkParams: PARAMS.checkParams,
  generate(seed: number, n: number, config: TaskConfig): Sample[] {
    assertParams("grid-patch", PARAMS.checkParams(config));
    const params = paramsOf(config);
    const grid = gridOf(config, params.grid);
    return perSample("grid-patch", seed, n, (rng) => generateOne(rng, config, params, grid));
  },
  score: exactMatch,
};
