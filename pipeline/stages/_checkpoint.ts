/** Model checkpoints in a cache entry: weights as one float32 file plus a JSON index. */
import type { Layout } from "../model/batch.ts";
import type { Cache, EntryWriter } from "../cache/store.ts";
import { TinyVlm, type TinyVlmConfig, type WeightMap } from "../model/tiny_vlm.ts";
import { Tokenizer } from "../model/tokenizer.ts";

interface CheckpointIndex {
  config: TinyVlmConfig;
  vocabulary: string[];
  layout: Layout;
  tensors: { name: string; shape: number[]; offset: number; length: number }[];
}

/** Write `model`'s weights, its tokenizer's vocabulary and the batch layout it trained on. */
export async function saveCheckpoint(
  out: EntryWriter,
  model: TinyVlm,
  tokenizer: Tokenizer,
  layout: Layout,
): Promise<void> {
  const weights = await model.getWeights();
  const tensors: CheckpointIndex["tensors"] = [];
  let offset = 0;
  for (const [name, w] of Object.entries(weights)) {
    tensors.push({ name, shape: w.shape, offset, length: w.data.length });
    offset += w.data.length;
  }
  const flat = new Float32Array(offset);
  for (const t of tensors) flat.set(weights[t.name].data, t.offset);
  await out.writeBytes("weights.f32", new Uint8Array(flat.buffer));
  const index: CheckpointIndex = {
    config: model.config,
    vocabulary: [...tokenizer.words],
    layout,
    tensors,
  };
  await out.writeJson("checkpoint.json", index);
}

/** The model, tokenizer and layout of the checkpoint entry `key`. */
export async function loadCheckpoint(
  cache: Cache,
  key: string,
): Promise<{ model: TinyVlm; tokenizer: Tokenizer; layout: Layout }> {
  const index = await cache.readJson<CheckpointIndex>(key, "checkpoint.json");
  const bytes = await cache.readBytes(key, "weights.f32");
  const flat = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const weights: WeightMap = {};
  for (const t of index.tensors) {
    weights[t.name] = { shape: t.shape, data: flat.subarray(t.offset, t.offset + t.length) };
  }
  const model = new TinyVlm(index.config, 0);
  model.setWeights(weights);
  return { model, tokenizer: new Tokenizer(index.vocabulary), layout: index.layout };
}
