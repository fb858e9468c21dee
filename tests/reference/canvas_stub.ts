/**
 * Stands in for `@napi-rs/canvas` in the GPU bundle (tests/reference/gpu.sh): the canvas is a
 * native addon that a single-file bundle cannot carry, and the bench never draws or decodes
 * with it (Grid Patch rasterises in tasks/draw.ts). Anything that does use it fails loudly.
 */
function missing(): never {
  throw new Error("@napi-rs/canvas is not part of the GPU bundle (tests/reference/gpu.sh)");
}

/** Throws: not available in the bundle. */
export function createCanvas(): never {
  return missing();
}

/** Throws: not available in the bundle. */
export function loadImage(): never {
  return missing();
}

/** Throws when constructed: not available in the bundle. */
export class Image {
  constructor() {
    missing();
  }
}

/** Throws when constructed: not available in the bundle. */
export class ImageData {
  constructor() {
    missing();
  }
}
