/**
 * Resumable mid-training checkpoints of a fine-tune, kept outside its cache entry (an entry is
 * all-or-nothing): `<cache>/partial/<key>.ckpt`, the newest, and `<key>.prev.ckpt`, the one
 * before it (`Cache.partialPaths`).
 *
 * File layout: the 8 bytes `KLALCKP2`, the SHA-256 of everything after it (32 bytes), then a
 * u32 header length, the JSON header, padding to 4 bytes and the float32 weights, Adam m and
 * Adam v. A file whose hash does not match is damaged: it is discarded with a message and the
 * previous checkpoint, or step 0, is where training continues, so damaged weights are never
 * resumed and then cached under a valid manifest.
 */
import { writeFileAtomic } from "../lib/atomic.ts";
import type { Cache } from "../cache/store.ts";
import { sha256Bytes } from "../lib/hash.ts";
import type { WeightMap } from "../model/tiny_vlm.ts";
import type { TrainSnapshot } from "../train/options.ts";

const MAGIC = new TextEncoder().encode("KLALCKP2");
const HASH_BYTES = 32;

/** A checkpoint as read back. */
export interface ResumableCheckpoint {
  snapshot: TrainSnapshot;
  weights: WeightMap;
  extra: Record<string, unknown>;
}

/** The checkpoint's bytes: magic, hash of the rest, header, weights and moments. */
export async function encodePartial(
  snapshot: TrainSnapshot,
  weights: WeightMap,
  extra: Record<string, unknown>,
): Promise<Uint8Array> {
  const names = Object.keys(weights);
  const header = new TextEncoder().encode(JSON.stringify({
    step: snapshot.step,
    t: snapshot.optimizer.t,
    order: snapshot.order,
    log: snapshot.log,
    seconds: snapshot.seconds,
    tensors: names.map((n) => ({
      name: n,
      shape: weights[n].shape,
      length: weights[n].data.length,
    })),
    moments: snapshot.optimizer.m.length,
    extra,
  }));
  const floats = names.reduce((a, n) => a + weights[n].data.length, 0) +
    2 * snapshot.optimizer.m.length;
  const pad = (4 - ((4 + header.length) % 4)) % 4;
  const start = MAGIC.length + HASH_BYTES;
  const bytes = new Uint8Array(start + 4 + header.length + pad + 4 * floats);
  new DataView(bytes.buffer).setUint32(start, header.length, true);
  bytes.set(header, start + 4);
  const body = new Float32Array(bytes.buffer, start + 4 + header.length + pad, floats);
  let o = 0;
  for (const n of names) {
    body.set(weights[n].data, o);
    o += weights[n].data.length;
  }
  body.set(snapshot.optimizer.m, o);
  body.set(snapshot.optimizer.v, o + snapshot.optimizer.m.length);
  bytes.set(MAGIC, 0);
  bytes.set(await sha256Bytes(bytes.subarray(start)), MAGIC.length);
  return bytes;
}

/** The checkpoint in `bytes`, or why it cannot be used (a damaged or foreign file). */
export async function decodePartial(bytes: Uint8Array): Promise<ResumableCheckpoint | string> {
  const start = MAGIC.length + HASH_BYTES;
  if (bytes.length < start + 4 || !MAGIC.every((b, i) => bytes[i] === b)) {
    return "not a checkpoint of this format";
  }
  const recorded = bytes.subarray(MAGIC.length, start);
  const actual = await sha256Bytes(bytes.subarray(start));
  if (!actual.every((b, i) => b === recorded[i])) {
    return "its sha256 does not match its content";
  }
  try {
    const length = new DataView(bytes.buffer, bytes.byteOffset + start).getUint32(0, true);
    const h = JSON.parse(new TextDecoder().decode(bytes.subarray(start + 4, start + 4 + length)));
    const pad = (4 - ((4 + length) % 4)) % 4;
    const copy = bytes.slice(start + 4 + length + pad);
    const body = new Float32Array(copy.buffer, 0, copy.byteLength / 4);
    const weights: WeightMap = {};
    let o = 0;
    for (const t of h.tensors as { name: string; shape: number[]; length: number }[]) {
      weights[t.name] = { shape: t.shape, data: body.slice(o, o + t.length) };
      o += t.length;
    }
    const m = body.slice(o, o + h.moments);
    const v = body.slice(o + h.moments, o + 2 * h.moments);
    if (v.length !== h.moments) return "truncated";
    return {
      snapshot: {
        step: h.step,
        optimizer: { t: h.t, m, v },
        order: h.order,
        log: h.log,
        seconds: h.seconds,
      },
      weights,
      extra: h.extra,
    };
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Write a new checkpoint: the newest one becomes the previous one (a rename), then the new
 * file is written beside its final name and renamed over it. A kill at any moment leaves at
 * least one whole checkpoint.
 */
export async function writePartial(
  cache: Cache,
  key: string,
  snapshot: TrainSnapshot,
  weights: WeightMap,
  extra: Record<string, unknown>,
): Promise<void> {
  const { newest, previous } = cache.partialPaths(key);
  const bytes = await encodePartial(snapshot, weights, extra);
  await Deno.rename(newest, previous).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  await writeFileAtomic(newest, bytes);
}

/**
 * The newest sound checkpoint of stage `key`, or undefined (train from step 0). A damaged
 * file is removed, and `say` told which and why, so the next one is tried.
 */
export async function readPartial(
  cache: Cache,
  key: string,
  say: (line: string) => void,
): Promise<ResumableCheckpoint | undefined> {
  const { newest, previous } = cache.partialPaths(key);
  let discarded = false;
  for (const path of [newest, previous]) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch {
      continue;
    }
    const found = await decodePartial(bytes);
    if (typeof found !== "string") {
      if (discarded) say(`using the previous checkpoint ${path}`);
      return found;
    }
    say(`discarding the damaged checkpoint ${path} (${found})`);
    await Deno.remove(path).catch(() => {});
    discarded = true;
  }
  if (discarded) say("no sound checkpoint left: training restarts from step 0");
  return undefined;
}

/** Remove both checkpoints of stage `key` (its entry is written). */
export async function removePartials(cache: Cache, key: string): Promise<void> {
  for (const path of Object.values(cache.partialPaths(key))) {
    await Deno.remove(path).catch(() => {});
  }
}
