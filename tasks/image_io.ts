/**
 * Image files in and out for the real-format tasks: PNG/JPEG bytes to the square
 * Float32Array RGB images the model reads, RGB images to PNG bytes, and the sha256 of
 * file bytes (PixMo-Points checks every image against its `image_sha256`).
 *
 * Decoding takes bytes only, never a path or URL: `@napi-rs/canvas`'s `loadImage`
 * would fetch a URL, and nothing here may touch the network.
 */

import { createCanvas, ImageData, loadImage } from "@napi-rs/canvas";
import type { RgbImage } from "./task.ts";

/** A decoded image resized to the model's square input, with the file's own size. */
export interface DecodedImage {
  /** `size` x `size`, RGB HWC in [0, 1]. */
  image: RgbImage;
  /** Width of the image in the file, in pixels. */
  naturalWidth: number;
  /** Height of the image in the file, in pixels. */
  naturalHeight: number;
}

/**
 * Decodes PNG/JPEG (anything Skia reads) `bytes` and stretches the image to
 * `size` x `size`. Stretching, not cropping or padding, keeps coordinates given in
 * percent of width and height valid on the resized image. Transparent pixels are
 * composited over white. Throws on bytes that are not a readable image.
 */
export async function decodeImage(bytes: Uint8Array, size: number): Promise<DecodedImage> {
  if (bytes.length === 0) throw new Error("empty file");
  const img = await loadImage(bytes);
  if (!(img.width > 0 && img.height > 0)) {
    throw new Error(`not a readable image (decoded size ${img.width}x${img.height})`);
  }
  const canvas = createCanvas(size, size);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, size, size);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(img, 0, 0, size, size);
  const rgba = ctx.getImageData(0, 0, size, size).data; // [H, W, 4], bytes
  const data = new Float32Array(size * size * 3); // [H, W, 3]
  for (let p = 0; p < size * size; p++) {
    data[3 * p] = rgba[4 * p] / 255;
    data[3 * p + 1] = rgba[4 * p + 1] / 255;
    data[3 * p + 2] = rgba[4 * p + 2] / 255;
  }
  return {
    image: { width: size, height: size, data },
    naturalWidth: img.width,
    naturalHeight: img.height,
  };
}

/** PNG bytes of `img` (values clamped to [0, 1] and rounded to 8 bits). */
export async function encodePng(img: RgbImage): Promise<Uint8Array> {
  const { width, height, data } = img;
  if (data.length !== width * height * 3) {
    throw new Error(`Expected ${width * height * 3} RGB values, got ${data.length}`);
  }
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    rgba[4 * p] = Math.round(data[3 * p] * 255);
    rgba[4 * p + 1] = Math.round(data[3 * p + 1] * 255);
    rgba[4 * p + 2] = Math.round(data[3 * p + 2] * 255);
    rgba[4 * p + 3] = 255;
  }
  const canvas = createCanvas(width, height);
  canvas.getContext("2d").putImageData(new ImageData(rgba, width, height), 0, 0);
  return new Uint8Array(await canvas.encode("png"));
}

/** Lower-case hex sha256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
