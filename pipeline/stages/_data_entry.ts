/**
 * The format of a data entry, written and read here only:
 *
 *   images.u8      every image's RGB bytes, row after row (quantised like any stored image)
 *   targets.f32    every sample's ground-truth map P over the patch grid, [n, patches]
 *   samples.jsonl  one line per sample: prompt, answer, meta
 *   data.json      { n, image_size, patches }
 */
import type { Sample } from "../../tasks/task.ts";
import type { Cache, EntryWriter } from "../cache/store.ts";

/** Write `samples` (images of `imageSize` px, maps over `patchSize` px patches) as an entry. */
export async function writeSamples(
  out: EntryWriter,
  samples: Sample[],
  imageSize: number,
  patchSize: number,
): Promise<void> {
  const n = samples.length;
  const pixels = imageSize * imageSize * 3;
  const tv = (imageSize / patchSize) ** 2;
  const images = new Uint8Array(n * pixels);
  const targets = new Float32Array(n * tv);
  const lines: string[] = [];
  samples.forEach((s, i) => {
    for (let j = 0; j < pixels; j++) {
      images[i * pixels + j] = Math.round(Math.min(1, Math.max(0, s.image.data[j])) * 255);
    }
    targets.set(s.target, i * tv);
    lines.push(JSON.stringify({ prompt: s.prompt, answer: s.answer, meta: s.meta }));
  });
  await out.writeBytes("images.u8", images);
  await out.writeBytes("targets.f32", new Uint8Array(targets.buffer));
  await out.writeText("samples.jsonl", lines.join("\n") + "\n");
  await out.writeJson("data.json", { n, image_size: imageSize, patches: tv });
}

/** Read the samples of a data entry back. */
export async function loadSamples(cache: Cache, key: string): Promise<Sample[]> {
  const info = await cache.readJson<{ n: number; image_size: number; patches: number }>(
    key,
    "data.json",
  );
  const images = await cache.readBytes(key, "images.u8");
  const targetBytes = await cache.readBytes(key, "targets.f32");
  const targets = new Float32Array(
    targetBytes.buffer,
    targetBytes.byteOffset,
    info.n * info.patches,
  );
  const text = new TextDecoder().decode(await cache.readBytes(key, "samples.jsonl"));
  const rows = text.trim().split("\n").map((l) => JSON.parse(l));
  const pixels = info.image_size * info.image_size * 3;
  return rows.map((r, i) => {
    const data = new Float32Array(pixels);
    for (let j = 0; j < pixels; j++) data[j] = images[i * pixels + j] / 255;
    return {
      image: { width: info.image_size, height: info.image_size, data },
      prompt: r.prompt,
      answer: r.answer,
      target: targets.slice(i * info.patches, (i + 1) * info.patches),
      meta: r.meta,
    };
  });
}
